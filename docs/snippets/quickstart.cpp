// snippet: quickstart
#include <halftorch/halftorch.h>

#include <iostream>

int main() {
  ht::manual_seed(0);
  ht::Tensor w = ht::randn({3, 2}).requires_grad_();
  ht::Tensor x = ht::ones({4, 3});
  ht::Tensor loss = ht::mean(ht::relu(ht::matmul(x, w)));
  loss.backward();
  std::cout << loss << "\n" << w.grad() << "\n";

  // Devices: CUDA when a GPU is present, the CPU otherwise.
  ht::Device dev = ht::cuda::is_available() ? ht::kCUDA : ht::kCPU;
  ht::Tensor h = ht::rand({2, 2}, {.dtype = ht::kFloat16, .device = dev});
  std::cout << h.cpu() << "\n";
}
