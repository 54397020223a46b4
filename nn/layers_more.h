// More of torch.nn's layers and loss modules (nn/layers_more.cpp): LayerNorm, GroupNorm, Embedding, SiLU,
// LeakyReLU, AvgPool2d, Dropout2d, and MSELoss ... BCEWithLogitsLoss, CrossEntropyLoss. Parameter names (and so
// state_dict keys) are PyTorch's: weight and bias.
#pragma once
#include "halftorch/nn/functional.h"
#include "halftorch/nn/module.h"

namespace ht::nn {

class LayerNorm : public Module {
 public:
  explicit LayerNorm(Shape normalized_shape, double eps = 1e-5, bool elementwise_affine = true);
  Tensor forward(const Tensor& x) override { return functional::layer_norm(x, normalized_shape, weight, bias, eps); }
  std::string type_name() const override { return "LayerNorm"; }
  Shape normalized_shape;
  double eps;
  Tensor weight, bias;
};

class GroupNorm : public Module {
 public:
  GroupNorm(int64_t num_groups, int64_t num_channels, double eps = 1e-5, bool affine = true);
  Tensor forward(const Tensor& x) override { return functional::group_norm(x, num_groups, weight, bias, eps); }
  std::string type_name() const override { return "GroupNorm"; }
  int64_t num_groups, num_channels;
  double eps;
  Tensor weight, bias;
};

// weight [num_embeddings, embedding_dim] drawn from N(0, 1), as torch.nn.Embedding
class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t embedding_dim);
  Tensor forward(const Tensor& indices) override { return functional::embedding(indices, weight); }
  std::string type_name() const override { return "Embedding"; }
  int64_t num_embeddings, embedding_dim;
  Tensor weight;
};

class SiLU : public Module {
 public:
  Tensor forward(const Tensor& x) override { return functional::silu(x); }
  std::string type_name() const override { return "SiLU"; }
};

class GELU : public Module {
 public:
  explicit GELU(std::string approximate = "none") : approximate(std::move(approximate)) {}
  Tensor forward(const Tensor& x) override { return functional::gelu(x, approximate); }
  std::string type_name() const override { return "GELU"; }
  std::string approximate;
};

class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(double negative_slope = 0.01) : negative_slope(negative_slope) {}
  Tensor forward(const Tensor& x) override { return functional::leaky_relu(x, negative_slope); }
  std::string type_name() const override { return "LeakyReLU"; }
  double negative_slope;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(Size2 kernel_size, Size2 stride = 0, Size2 padding = 0)
      : kernel_size(kernel_size), stride(stride), padding(padding) {}
  Tensor forward(const Tensor& x) override { return functional::avg_pool2d(x, kernel_size, stride, padding); }
  std::string type_name() const override { return "AvgPool2d"; }
  Size2 kernel_size, stride, padding;
};

class Dropout2d : public Module {
 public:
  explicit Dropout2d(double p = 0.5);
  Tensor forward(const Tensor& x) override { return functional::dropout2d(x, p, is_training()); }
  std::string type_name() const override { return "Dropout2d"; }
  double p;
};

// Loss modules take (input, target); the one-argument forward of Module refuses.
class LossModule : public Module {
 public:
  Tensor forward(const Tensor&) override;
  virtual Tensor forward(const Tensor& input, const Tensor& target) = 0;
  Tensor operator()(const Tensor& input, const Tensor& target) { return forward(input, target); }
};

#define HT_LOSS_MODULE(Name, call)                                                      \
  class Name : public LossModule {                                                      \
   public:                                                                              \
    explicit Name(functional::Reduction reduction = functional::Reduction::Mean)        \
        : reduction(reduction) {}                                                       \
    using LossModule::forward;                                                          \
    Tensor forward(const Tensor& input, const Tensor& target) override { return call; } \
    std::string type_name() const override { return #Name; }                            \
    functional::Reduction reduction;                                                    \
  };
HT_LOSS_MODULE(MSELoss, functional::mse_loss(input, target, reduction))
HT_LOSS_MODULE(L1Loss, functional::l1_loss(input, target, reduction))
HT_LOSS_MODULE(SmoothL1Loss, functional::smooth_l1_loss(input, target, reduction))
HT_LOSS_MODULE(NLLLoss, functional::nll_loss(input, target, reduction))
HT_LOSS_MODULE(BCELoss, functional::binary_cross_entropy(input, target, reduction))
HT_LOSS_MODULE(BCEWithLogitsLoss, functional::binary_cross_entropy_with_logits(input, target, reduction))
#undef HT_LOSS_MODULE

// mean cross-entropy (functional::cross_entropy's reduction)
class CrossEntropyLoss : public LossModule {
 public:
  explicit CrossEntropyLoss(functional::CrossEntropyOptions options = {}) : options(options) {}
  using LossModule::forward;
  Tensor forward(const Tensor& input, const Tensor& target) override {
    return functional::cross_entropy(input, target, options);
  }
  std::string type_name() const override { return "CrossEntropyLoss"; }
  functional::CrossEntropyOptions options;
};

}  // namespace ht::nn
