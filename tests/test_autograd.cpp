// Autograd engine: accumulation in the leaf's dtype, shared subgraphs, explicit gradients, NoGradGuard,
// detach, and the error on a second backward through a freed graph.
#include "tests/helpers.h"

using namespace ht;

TEST_CASE("gradients accumulate across backward calls and through shared subexpressions") {
  Tensor x = tensor<float>({1, 2, 3}).requires_grad_();
  Tensor y = x * x;             // used twice below
  Tensor z = sum(y + y * 2.0);  // dz/dx = 3 * 2x
  z.backward();
  REQUIRE(x.grad().to_vector<float>() == std::vector<float>{6, 12, 18});
  sum(x).backward();
  REQUIRE(x.grad().to_vector<float>() == std::vector<float>{7, 13, 19});
  x.grad().zero_();
  REQUIRE(x.grad().to_vector<float>() == std::vector<float>{0, 0, 0});
}

TEST_CASE("a leaf's gradient keeps the leaf's dtype and never aliases another leaf's") {
  Tensor h = ones({2}, {.dtype = kFloat16}).requires_grad_();
  Tensor f = ones({2}).requires_grad_();
  Tensor out = sum(h + f);  // promoted to float32
  out.backward();
  REQUIRE(h.grad().dtype() == kFloat16);
  REQUIRE(f.grad().dtype() == kFloat32);
  Tensor a = ones({2}).requires_grad_(), b = ones({2}).requires_grad_();
  sum(a + b).backward();
  a.grad().fill_(5);
  REQUIRE(b.grad().to_vector<float>() == std::vector<float>{1, 1});
}

TEST_CASE("a fresh gradient becomes the leaf's .grad without a copy; one the user or a view holds is copied") {
  // the root's own gradient, which the caller keeps, is never taken: changing it later leaves x.grad alone
  Tensor x = tensor<float>({1, 2}).requires_grad_();
  Tensor g = tensor<float>({5, 7});
  x.backward(g);
  g.fill_(0);
  REQUIRE(x.grad().to_vector<float>() == std::vector<float>{5, 7});
  // nor is one passed straight through an identity-like op, nor a view of a larger gradient
  Tensor a = tensor<float>({1, 2}).requires_grad_();
  Tensor g2 = tensor<float>({3, 4});
  a.contiguous().backward(g2);
  g2.fill_(0);
  REQUIRE(a.grad().to_vector<float>() == std::vector<float>{3, 4});
  Tensor b = tensor<float>({1, 2, 3, 4}).requires_grad_();
  Tensor c = b.narrow(0, 1, 2);
  sum(mul(c, 2.0)).backward();
  REQUIRE(b.grad().to_vector<float>() == std::vector<float>{0, 2, 2, 0});
  // a stolen gradient accumulates in place on the next backward, like any other
  Tensor p = tensor<float>({1, 2}).requires_grad_();
  sum(mul(p, 3.0)).backward();
  Tensor held = p.grad();
  sum(mul(p, 4.0)).backward();
  REQUIRE(p.grad().to_vector<float>() == std::vector<float>{7, 7});
  REQUIRE(held.to_vector<float>() == std::vector<float>{7, 7});  // the same tensor, as in PyTorch
}

TEST_CASE("backward with an explicit gradient, non-scalar roots, and shape errors") {
  Tensor x = tensor<float>({1, 2}).requires_grad_();
  Tensor y = x * 3.0;
  REQUIRE_THROWS_WITH(y.backward(), Catch::Contains("only for scalar outputs"));
  y.backward(tensor<float>({1, 10}));
  REQUIRE(x.grad().to_vector<float>() == std::vector<float>{3, 30});
  Tensor y2 = x * 3.0;
  REQUIRE_THROWS_WITH(y2.backward(ones({3})), Catch::Contains("does not match the tensor's shape"));
}

TEST_CASE("the graph is freed after backward; a second backward is a clear error") {
  Tensor x = tensor<float>({1, 2}).requires_grad_();
  Tensor loss = sum(exp(x));
  loss.backward();
  REQUIRE_THROWS_WITH(loss.backward(), Catch::Contains("backward through the graph a second time"));
}

TEST_CASE("NoGradGuard and detach stop recording") {
  Tensor x = ones({2}).requires_grad_();
  {
    NoGradGuard g;
    Tensor y = x * 2.0;
    REQUIRE_FALSE(y.requires_grad());
    REQUIRE(y.grad_fn() == nullptr);
  }
  Tensor d = x.detach();
  REQUIRE_FALSE(d.requires_grad());
  REQUIRE(d.storage() == x.storage());
  Tensor y = x * 2.0;
  REQUIRE(y.requires_grad());
  REQUIRE(y.grad_fn_name() == "MulBackward0");
  REQUIRE(y.str().find("grad_fn=<MulBackward0>") != std::string::npos);
  REQUIRE_THROWS_WITH(x.copy_(ones({2})), Catch::Contains("a leaf Variable that requires grad is being used in an in-place operation"));
}

TEST_CASE("gradients flow through dtype casts and device moves", "[cuda]") {
  for (Device dev : testing::test_devices()) {
    Tensor x = tensor<float>({0.5f, -1.f}).requires_grad_();
    Tensor y = sum(square(x.to(dev).to(kFloat64)));
    y.backward();
    REQUIRE(x.grad().dtype() == kFloat32);
    REQUIRE(x.grad().device() == kCPU);
    REQUIRE(x.grad().to_vector<float>() == std::vector<float>{1.f, -2.f});
  }
}

TEST_CASE("a node keeps the values of only what its backward reads, as derivatives.yaml saves them") {
  Tensor x = randn({1000}).requires_grad_();
  auto released = [](Tensor& t) {
    std::weak_ptr<Storage> w = t.storage();
    t = Tensor();
    return w.expired();
  };
  Tensor h = x * 2;
  Tensor y = relu(h);  // relu's rule reads its output, not its input
  REQUIRE(released(h));
  Tensor a = x * 3, b = x * 4;
  Tensor s = a + b;  // add reads neither operand
  REQUIRE(released(a));
  REQUIRE(released(b));
  Tensor e = exp(s);  // exp keeps its output
  Tensor l = log(y + 1);  // log keeps its input (y + 1)
  Tensor p = y + 1;
  Tensor q = log(p);
  REQUIRE_FALSE(released(p));
  sum(e + l + q).backward();
  // the gradient through the released tensors is still right: relu'(2x) * 2 / (relu(2x) + 1) twice, plus
  // exp(7x) * 7
  std::vector<float> xv = x.detach().to_vector<float>(), gv = x.grad().to_vector<float>();
  for (size_t i = 0; i < xv.size(); ++i) {
    double want = std::exp(7.0 * xv[i]) * 7 + (xv[i] > 0 ? 2 * 2 / (2.0 * xv[i] + 1) : 0);
    REQUIRE(gv[i] == Approx(want).epsilon(1e-4));
  }
}

TEST_CASE("a backward rule reading a tensor it did not save fails naming it, instead of reading freed memory") {
  Tensor x = tensor<float>({1, 2}).requires_grad_();
  Tensor h = x * 1;
  Tensor out = autograd::record("peek", h.detach() * 2, {h}, [](const autograd::Inputs& in, const Tensor&,
                                                                 const Tensor& g) {
    return autograd::Grads{mul(g, in[0])};  // reads in[0], which Saves does not list
  });
  REQUIRE_THROWS_WITH(sum(out).backward(), Catch::Contains("float32 tensor of shape [2] were not kept for backward"));
}
