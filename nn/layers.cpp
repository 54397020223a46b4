// Layer constructors (PyTorch's default initialisation) and forwards.
#include "nn/layers.h"

#include <cmath>

#include "core/autocast.h"
#include "core/autograd.h"
#include "nn/init.h"

namespace ht::nn {

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, Size2 kernel_size, Conv2dOptions options)
    : in_channels(in_channels), out_channels(out_channels), kernel_size(kernel_size), options(options) {
  HT_CHECK(in_channels > 0 && out_channels > 0 && options.groups > 0 && in_channels % options.groups == 0 &&
               out_channels % options.groups == 0,
           "[Conv2d] expected positive channels divisible by groups, got in_channels ", in_channels,
           ", out_channels ", out_channels, ", groups ", options.groups);
  weight = register_parameter(
      "weight", empty({out_channels, in_channels / options.groups, kernel_size.h, kernel_size.w}));
  if (options.bias) bias = register_parameter("bias", empty({out_channels}));
  reset_parameters();
}

void Conv2d::reset_parameters() {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    auto [fan_in, fan_out] = init::calculate_fan_in_and_fan_out(weight);
    double bound = fan_in > 0 ? 1.0 / std::sqrt(double(fan_in)) : 0.0;
    init::uniform_(bias, -bound, bound);
  }
}

Tensor Conv2d::forward(const Tensor& x) {
  return functional::conv2d(x, weight, bias, options.stride, options.padding, options.dilation, options.groups);
}

BatchNorm2d::BatchNorm2d(int64_t num_features, BatchNormOptions options)
    : num_features(num_features), options(options) {
  if (options.affine) {
    weight = register_parameter("weight", ones({num_features}));
    bias = register_parameter("bias", zeros({num_features}));
  }
  if (options.track_running_stats) {
    running_mean = register_buffer("running_mean", zeros({num_features}));
    running_var = register_buffer("running_var", ones({num_features}));
    num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, {.dtype = kInt64}));
  }
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  HT_CHECK(x.dim() == 4, "[BatchNorm2d] expected 4D input (got ", x.dim(), "D input)");
  double factor = options.momentum.value_or(0.0);
  if (is_training() && options.track_running_stats) {
    NoGradGuard ng;
    num_batches_tracked.copy_(add(num_batches_tracked, 1.0));
    if (!options.momentum) factor = 1.0 / double(num_batches_tracked.item<int64_t>());
  }
  bool use_batch = is_training() || !options.track_running_stats;
  bool pass_stats = !is_training() || options.track_running_stats;
  return functional::batch_norm(x, pass_stats ? running_mean : Tensor(), pass_stats ? running_var : Tensor(), weight,
                                bias, use_batch, factor, options.eps);
}

namespace {
// Whether an eval-mode batch norm `bn` over `inputs` can run as one inference pass: running statistics, nothing
// that needs gradients, autocast off.
bool runs_as_inference(const BatchNorm2d& bn, std::initializer_list<const Tensor*> inputs) {
  if (bn.is_training() || !bn.options.track_running_stats || amp::is_autocast_enabled()) return false;
  if (!autograd::grad_enabled()) return true;
  for (std::initializer_list<const Tensor*> group : {inputs, {&bn.weight, &bn.bias}})
    for (const Tensor* t : group)
      if (t->defined() && t->requires_grad()) return false;
  return true;
}
}  // namespace

Tensor BatchNorm2d::forward_fused(const Tensor& x, const Tensor& residual, bool relu) {
  if (x.dim() == 4 && runs_as_inference(*this, {&x, &residual}))
    return functional::batch_norm_inference(x, running_mean, running_var, weight, bias, options.eps, residual, relu);
  Tensor y = forward(x);
  if (residual.defined()) y = add(y, residual);
  return relu ? ht::relu(y) : y;
}

Tensor conv_batch_norm(Conv2d& conv, BatchNorm2d& bn, const Tensor& x, const Tensor& residual, bool relu) {
  if (x.dim() == 4 && !conv.bias.defined() && runs_as_inference(bn, {&x, &residual, &conv.weight}))
    return functional::conv2d_batch_norm_inference(x, conv.weight, conv.options.stride, conv.options.padding,
                                                   conv.options.dilation, conv.options.groups, bn.running_mean,
                                                   bn.running_var, bn.weight, bn.bias, bn.options.eps, residual, relu);
  return bn.forward_fused(conv.forward(x), residual, relu);
}

bool BatchNorm2d::fill_missing(const std::string& local_name, int64_t file_version) {
  // files written before BatchNorm's version 2 have no counter: start it at 0, as PyTorch does
  if (local_name != "num_batches_tracked" || file_version >= 2) return false;
  num_batches_tracked.zero_();
  return true;
}

Tensor MaxPool2d::forward(const Tensor& x) {
  return functional::max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode);
}

Linear::Linear(int64_t in_features, int64_t out_features, bool with_bias)
    : in_features(in_features), out_features(out_features) {
  HT_CHECK(in_features >= 0 && out_features >= 0, "[Linear] expected non-negative sizes, got ", in_features, " and ",
           out_features);
  weight = register_parameter("weight", empty({out_features, in_features}));
  if (with_bias) bias = register_parameter("bias", empty({out_features}));
  reset_parameters();
}

void Linear::reset_parameters() {
  if (in_features > 0) init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    double bound = in_features > 0 ? 1.0 / std::sqrt(double(in_features)) : 0.0;
    init::uniform_(bias, -bound, bound);
  }
}

Dropout::Dropout(double p) : p(p) {
  HT_CHECK(p >= 0.0 && p <= 1.0, "[Dropout] dropout probability has to be between 0 and 1, but got ", p);
}

Sequential::Sequential(std::initializer_list<ModulePtr> modules) {
  for (const auto& m : modules) push_back(m);
}

void Sequential::push_back(ModulePtr m) {
  register_module(std::to_string(modules_.size()), m);
  modules_.push_back(std::move(m));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (const auto& m : modules_) y = m->forward(y);
  return y;
}

LayerNorm::LayerNorm(Shape shape, double eps, bool affine) : normalized_shape(std::move(shape)), eps(eps) {
  HT_CHECK(!normalized_shape.empty(), "[LayerNorm] expected a non-empty normalized_shape");
  if (affine) {
    weight = register_parameter("weight", ones(normalized_shape));
    bias = register_parameter("bias", zeros(normalized_shape));
  }
}

GroupNorm::GroupNorm(int64_t groups, int64_t channels, double eps, bool affine)
    : num_groups(groups), num_channels(channels), eps(eps) {
  HT_CHECK(groups > 0 && channels % groups == 0, "[GroupNorm] num_channels must be divisible by num_groups, got ",
           channels, " and ", groups);
  if (affine) {
    weight = register_parameter("weight", ones({channels}));
    bias = register_parameter("bias", zeros({channels}));
  }
}

Embedding::Embedding(int64_t n, int64_t dim) : num_embeddings(n), embedding_dim(dim) {
  HT_CHECK(n >= 0 && dim >= 0, "[Embedding] expected non-negative sizes, got ", n, " and ", dim);
  Tensor w = empty({n, dim});
  init::normal_(w);
  weight = register_parameter("weight", w);
}

Dropout2d::Dropout2d(double p) : p(p) {
  HT_CHECK(p >= 0.0 && p <= 1.0, "[Dropout2d] dropout probability has to be between 0 and 1, but got ", p);
}

}  // namespace ht::nn
