// Everyday libtorch habits, spelled with ht:: instead of torch::, built against the installed library. Every
// line it prints is printed the same way by everyday.py with PyTorch; run.sh compares the two outputs.
#include <halftorch/halftorch.h>

#include <cstdio>
#include <string>

using namespace ht::indexing;
namespace F = ht::nn::functional;

struct NetImpl : ht::nn::Module {
  NetImpl(int64_t in, int64_t hidden, int64_t out) {
    fc1 = register_module("fc1", std::make_shared<ht::nn::Linear>(in, hidden));
    norm = register_module("norm", std::make_shared<ht::nn::LayerNorm>(ht::Shape{hidden}));
    fc2 = register_module("fc2", std::make_shared<ht::nn::Linear>(hidden, out));
  }
  ht::Tensor forward(const ht::Tensor& x) override { return fc2->forward(F::silu(norm->forward(fc1->forward(x)))); }
  std::string type_name() const override { return "Net"; }
  std::shared_ptr<ht::nn::Linear> fc1, fc2;
  std::shared_ptr<ht::nn::LayerNorm> norm;
};
HT_MODULE(Net);

static void show(const char* name, const ht::Tensor& t) {
  std::printf("%s %s", name, ht::dtype_name(t.dtype()));
  for (int64_t s : t.sizes()) std::printf(" %lld", static_cast<long long>(s));
  std::printf(" :");
  for (double v : t.to_vector<double>()) std::printf(" %.5g", v);
  std::printf("\n");
}

int main() {
  ht::Tensor x = ht::tensor({{1.0, -2.0, 3.0}, {0.5, 4.0, -1.0}});
  ht::Tensor w = ht::ones({3}).requires_grad_();
  ht::Tensor y = (x * w).sum(1);
  ht::Tensor loss = (y - 1).pow(2).mean();
  loss.backward();
  show("loss", loss);
  show("w.grad", w.grad());
  show("argmax", x.argmax(1));
  show("positives", (x > 0).sum());
  show("max", std::get<0>(x.max(1)));
  show("gram", x.t().matmul(x));
  show("var", x.var(1));
  show("softmax", x.softmax(1));
  show("column", x.index({Slice(), 1}));
  show("masked", x.index({x > 0}));
  show("uint8", (ht::full({2}, 200, {.dtype = ht::kUInt8}) - 128.0) / 128.0);
  show("arange", ht::arange(0, 5) * 2);
  ht::Tensor z = x.clone();
  z += 1;
  z *= 2;
  z.clamp_(0, 5);
  show("inplace", z);
  show("eye", ht::eye(2, 3));
  show("linspace", ht::linspace(0, 1, 5));
  show("stack", ht::stack({x, x * 2}, 0).sum(0));
  show("topk", std::get<1>(x.topk(2, 1)));
  show("cumsum", x.cumsum(1));
  show("mse", F::mse_loss(x, ht::zeros_like(x)));
  show("bce", F::binary_cross_entropy_with_logits(x, ht::ones_like(x)));
  show("nll", F::nll_loss(x.log_softmax(1), ht::tensor<int64_t>({2, 1})));
  ht::Tensor v = ht::ones({3}).requires_grad_();
  ht::Tensor rows = x * v;
  rows.select(0, 1).mul_(3);  // an in-place write through a view: rows takes a CopySlices history
  rows.sum().backward();
  show("view_write", v.grad());
  show("scatter_add", ht::scatter_add(ht::zeros({2, 3}), 1, ht::tensor<int64_t>({{0, 0}, {2, 1}}), x.slice(1, 0, 2)));
  Net net(3, 4, 2);
  show("net", ht::tensor<int64_t>({net(x).size(0), net(x).size(1), int64_t(net->parameters().size())}));
  return 0;
}
