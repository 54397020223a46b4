// The standard layers as Modules, named, defaulted and initialised as torch.nn's: Conv2d, BatchNorm2d, ReLU,
// MaxPool2d, AdaptiveAvgPool2d, Linear, Flatten, Dropout, Identity, Sequential, LayerNorm, GroupNorm, Embedding,
// SiLU, GELU, LeakyReLU, AvgPool2d and Dropout2d. Parameter names (and so state_dict keys) are PyTorch's. The
// loss modules are in nn/losses.h.
#pragma once
#include <initializer_list>
#include <optional>

#include "halftorch/nn/functional.h"
#include "halftorch/nn/module.h"

namespace ht::nn {

struct Conv2dOptions {
  Size2 stride = 1, padding = 0, dilation = 1;
  int64_t groups = 1;
  bool bias = true;
};
class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, Size2 kernel_size, Conv2dOptions options = {});
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Conv2d"; }
  // kaiming_uniform_(a = sqrt(5)) for the weight, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the bias.
  void reset_parameters();
  int64_t in_channels, out_channels;
  Size2 kernel_size;
  Conv2dOptions options;
  Tensor weight, bias;  // bias undefined when options.bias is false
};

struct BatchNormOptions {
  double eps = 1e-5;
  std::optional<double> momentum = 0.1;  // nullopt: cumulative average (1 / num_batches_tracked)
  bool affine = true;
  bool track_running_stats = true;
};
class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t num_features, BatchNormOptions options = {});
  Tensor forward(const Tensor& x) override;
  // relu(forward(x) + residual) (residual may be undefined, relu false): one pass over x
  // (functional::batch_norm_inference) in eval mode with running statistics when nothing needs gradients and
  // autocast is off; otherwise forward, add and relu one after another.
  Tensor forward_fused(const Tensor& x, const Tensor& residual, bool relu);
  std::string type_name() const override { return "BatchNorm2d"; }
  int64_t version() const override { return 2; }
  int64_t num_features;
  BatchNormOptions options;
  Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 protected:
  bool fill_missing(const std::string& local_name, int64_t file_version) override;
};
// bn.forward_fused(conv.forward(x), residual, relu); where forward_fused would run its one inference pass and
// the convolution has no bias, the batch norm, residual and ReLU are folded into the convolution instead
// (functional::conv2d_batch_norm_inference): torchvision's blocks at inference, one pass per convolution.
Tensor conv_batch_norm(Conv2d& conv, BatchNorm2d& bn, const Tensor& x, const Tensor& residual, bool relu);

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override { return relu(x); }
  std::string type_name() const override { return "ReLU"; }
};

class MaxPool2d : public Module {
 public:
  // stride 0 means stride = kernel_size.
  explicit MaxPool2d(Size2 kernel_size, Size2 stride = 0, Size2 padding = 0, Size2 dilation = 1,
                     bool ceil_mode = false)
      : kernel_size(kernel_size), stride(stride), padding(padding), dilation(dilation), ceil_mode(ceil_mode) {}
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "MaxPool2d"; }
  Size2 kernel_size, stride, padding, dilation;
  bool ceil_mode;
};

class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(Size2 output_size) : output_size(output_size) {}
  Tensor forward(const Tensor& x) override { return functional::adaptive_avg_pool2d(x, output_size); }
  std::string type_name() const override { return "AdaptiveAvgPool2d"; }
  Size2 output_size;
};

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true);
  Tensor forward(const Tensor& x) override { return linear(x, weight, bias); }
  std::string type_name() const override { return "Linear"; }
  void reset_parameters();
  int64_t in_features, out_features;
  Tensor weight, bias;
};

class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1) : start_dim(start_dim), end_dim(end_dim) {}
  Tensor forward(const Tensor& x) override { return x.flatten(start_dim, end_dim); }
  std::string type_name() const override { return "Flatten"; }
  int64_t start_dim, end_dim;
};

class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& x) override { return functional::dropout(x, p, is_training()); }
  std::string type_name() const override { return "Dropout"; }
  double p;
};

class Identity : public Module {
 public:
  Tensor forward(const Tensor& x) override { return x; }
  std::string type_name() const override { return "Identity"; }
};

// Children named "0", "1", ... run in order.
class Sequential : public Module {
 public:
  Sequential() = default;
  Sequential(std::initializer_list<ModulePtr> modules);
  void push_back(ModulePtr m);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Sequential"; }
  size_t size() const { return modules_.size(); }
  const ModulePtr& operator[](size_t i) const { return modules_.at(i); }

 private:
  std::vector<ModulePtr> modules_;
};

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

}  // namespace ht::nn
