// snippet: custom_module
#include <halftorch/halftorch.h>

#include <iostream>

// A module is a class deriving from ht::nn::Module that overrides forward() and type_name(), and registers
// its members in the constructor: submodules with register_module, trainable tensors with register_parameter,
// state that is saved but not trained (running statistics, masks) with register_buffer. The names given there
// are the state_dict keys, exactly as in PyTorch.
struct TinyNetImpl : ht::nn::Module {
  TinyNetImpl(int64_t in, int64_t classes) {
    conv = register_module("conv", std::make_shared<ht::nn::Conv2d>(in, 8, 3, ht::nn::Conv2dOptions{.padding = 1}));
    norm = register_module("norm", std::make_shared<ht::nn::GroupNorm>(2, 8));
    head = register_module("head", std::make_shared<ht::nn::Linear>(8, classes));
    scale = register_parameter("scale", ht::ones({1}));
    seen = register_buffer("seen", ht::zeros({1}, {.dtype = ht::kInt64}));
  }
  ht::Tensor forward(const ht::Tensor& x) override {
    if (is_training()) {
      ht::NoGradGuard no_grad;  // a buffer update is not part of the graph
      seen += x.size(0);
    }
    ht::Tensor h = ht::nn::functional::silu(norm->forward(conv->forward(x)));
    return head->forward(h.mean({2, 3})) * scale;
  }
  std::string type_name() const override { return "TinyNet"; }

  std::shared_ptr<ht::nn::Conv2d> conv;
  std::shared_ptr<ht::nn::GroupNorm> norm;
  std::shared_ptr<ht::nn::Linear> head;
  ht::Tensor scale, seen;
};
HT_MODULE(TinyNet);  // TinyNet: a shared handle, as TORCH_MODULE makes

int main() {
  ht::manual_seed(0);
  TinyNet net(3, 10);
  ht::Tensor x = ht::randn({4, 3, 8, 8});
  ht::Tensor target = ht::tensor<int64_t>({1, 0, 4, 9});
  ht::Tensor loss = ht::nn::functional::cross_entropy(net(x), target);
  loss.backward();
  for (const auto& [name, t] : net->state_dict().tensors) std::cout << name << " " << ht::shape_str(t.sizes()) << "\n";
  std::cout << "loss " << loss.item<float>() << ", seen " << net->seen.item<int64_t>() << "\n";
  return net->conv->weight.grad().defined() ? 0 : 1;
}
