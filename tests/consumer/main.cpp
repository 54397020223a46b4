// Uses the installed umbrella header: a tiny autograd computation whose result the test checks.
#include <halftorch/halftorch.h>

#include <cstdio>

int main() {
  ht::Tensor x = ht::tensor<float>({1, 2, 3}).requires_grad_();
  ht::Tensor y = ht::sum(ht::mul(x, x));
  y.backward();
  std::printf("%s %s\n", y.str().c_str(), x.grad().str().c_str());
  return x.grad().to_vector<float>() == std::vector<float>{2, 4, 6} ? 0 : 1;
}
