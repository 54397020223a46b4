// batch_norm: training (batch statistics, running-stat update in place) and eval (running statistics), with
// one backward rule for both; batch_norm_inference, eval mode with a residual add and ReLU in the same pass.
#include <tuple>
#include <utility>

#include "core/autograd.h"
#include "core/raw.h"
#include "kernels/nn_kernels.h"
#include "nn/functional.h"
#include "nn/functional_internal.h"

namespace ht::nn::functional {

using autograd::Grads;
using autograd::Inputs;

namespace {
void check_channel_vector(const Tensor& t, const Tensor& x, const char* what) {
  if (!t.defined()) return;
  HT_CHECK(t.dim() == 1 && t.size(0) == x.size(1), "[batch_norm] expected ", what, " of shape [", x.size(1),
           "], got ", shape_str(t.sizes()));
  // a 16-bit input may take float32 parameters and statistics (PyTorch's mixed-precision rule)
  bool mixed = t.dtype() == kFloat32 && (x.dtype() == kFloat16 || x.dtype() == kBFloat16);
  HT_CHECK((t.dtype() == x.dtype() || mixed) && t.device() == x.device(), "[batch_norm] expected ", what, " as ",
           dtype_name(x.dtype()), (x.dtype() == kFloat16 || x.dtype() == kBFloat16) ? " or float32" : "", " on ",
           x.device().str(), " like the input, got ", dtype_name(t.dtype()), " on ", t.device().str());
  HT_CHECK(t.is_contiguous(), "[batch_norm] expected a contiguous ", what);
}
}  // namespace

namespace internal {

DType batch_norm_stats_dtype(DType t) { return t == kFloat64 ? kFloat64 : kFloat32; }

kernels::BatchNormShape batch_norm_shape(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                                         const Tensor& weight, const Tensor& bias, bool training) {
  HT_CHECK(x.dim() >= 2, "[batch_norm] expected input (N, C, *), got shape ", shape_str(x.sizes()));
  HT_CHECK(x.is_floating_point(), "[batch_norm] expected a floating-point input, got ", dtype_name(x.dtype()));
  check_channel_vector(running_mean, x, "running_mean");
  check_channel_vector(running_var, x, "running_var");
  check_channel_vector(weight, x, "weight");
  check_channel_vector(bias, x, "bias");
  DType param_dtype = x.dtype();
  bool seen = false;
  for (const Tensor* t : {&weight, &bias, &running_mean, &running_var}) {
    if (!t->defined()) continue;
    HT_CHECK(!seen || t->dtype() == param_dtype, "[batch_norm] expected weight, bias, running_mean and running_var "
             "of one dtype, got ", dtype_name(param_dtype), " and ", dtype_name(t->dtype()));
    param_dtype = t->dtype();
    seen = true;
  }
  HT_CHECK(training || (running_mean.defined() && running_var.defined()),
           "[batch_norm] expected running_mean and running_var in eval mode");
  kernels::BatchNormShape s{x.size(0), x.size(1), x.numel() / std::max<int64_t>(x.size(0) * x.size(1), 1)};
  HT_CHECK(!training || s.n * s.hw > 1, "[batch_norm] expected more than 1 value per channel when training, got input ",
           shape_str(x.sizes()));
  s.channels_last = x.suggest_memory_format() == MemoryFormat::ChannelsLast;
  return s;
}

std::pair<Tensor, Tensor> eval_statistics(const Tensor& running_mean, const Tensor& running_var, double eps,
                                          const TensorOptions& stats_options) {
  NoGradGuard ng;
  return {running_mean.to(stats_options.dtype).contiguous(),
          rsqrt(add(running_var.to(stats_options.dtype), eps)).contiguous()};
}

void check_no_history(std::initializer_list<const Tensor*> inputs, const char* op) {
  if (!autograd::grad_enabled()) return;
  for (const Tensor* t : inputs)
    HT_CHECK(!t->defined() || !t->requires_grad(), "[", op, "] records no autograd history, but an input requires "
             "grad; run it under NoGradGuard, or use the ops it fuses one after another");
}

Tensor residual_like(const Tensor& residual, const Tensor& like, const char* like_name, MemoryFormat format,
                     const char* op) {
  HT_CHECK(residual.sizes() == like.sizes() && residual.dtype() == like.dtype() && residual.device() == like.device(),
           "[", op, "] expected a residual like the ", like_name, " (", shape_str(like.sizes()), ", ",
           dtype_name(like.dtype()), ", ", like.device().str(), "), got ", shape_str(residual.sizes()), ", ",
           dtype_name(residual.dtype()), ", ", residual.device().str());
  return residual.contiguous(format);
}

}  // namespace internal

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  kernels::BatchNormShape s = internal::batch_norm_shape(x, running_mean, running_var, weight, bias, training);
  MemoryFormat format = s.channels_last ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous;
  Tensor xc = x.detach().contiguous(format);
  Tensor y = empty(x.sizes(), {.dtype = x.dtype(), .device = x.device(), .memory_format = format});
  TensorOptions so{.dtype = internal::batch_norm_stats_dtype(x.dtype()), .device = x.device()};
  Tensor mean, invstd;
  auto opt_raw = [](const Tensor& t, kernels::RawView& v) -> const kernels::RawView* {
    if (!t.defined()) return nullptr;
    v = detail::raw(t.detach(), "batch_norm");
    return &v;
  };
  kernels::RawView wv, bv, rmv, rvv;
  if (training) {
    mean = empty({s.c}, so);
    invstd = empty({s.c}, so);
    kernels::batch_norm_forward_train(s, detail::raw(xc), opt_raw(weight, wv), opt_raw(bias, bv),
                                      opt_raw(running_mean, rmv), opt_raw(running_var, rvv), momentum, eps,
                                      detail::raw(y), detail::raw(mean), detail::raw(invstd));
  } else {
    std::tie(mean, invstd) = internal::eval_statistics(running_mean, running_var, eps, so);
    if (y.numel() > 0)
      kernels::batch_norm_apply(s, detail::raw(xc), detail::raw(mean), detail::raw(invstd), opt_raw(weight, wv),
                                opt_raw(bias, bv), kernels::BnEpilogue{}, detail::raw(y));
  }
  return autograd::record("batch_norm", y, {x, weight, bias},
                          [s, mean, invstd, training, format](const Inputs& in, const Tensor&, const Tensor& g) {
                            Tensor gy = g.to(in[0].dtype()).contiguous(format);
                            Tensor xc = in[0].contiguous(format);
                            TensorOptions o{.dtype = in[0].dtype(), .device = in[0].device(), .memory_format = format};
                            Tensor gx, gw, gb;
                            if (in[0].requires_grad()) gx = empty(in[0].sizes(), o);
                            auto param_grad = [&](const Tensor& p) {
                              return empty({s.c}, {.dtype = p.dtype(), .device = p.device()});
                            };
                            if (in[1].defined() && in[1].requires_grad()) gw = param_grad(in[1]);
                            if (in[2].defined() && in[2].requires_grad()) gb = param_grad(in[2]);
                            kernels::RawView gxv, gwv, gbv, wv;
                            auto opt = [](const Tensor& t, kernels::RawView& v) -> const kernels::RawView* {
                              if (!t.defined()) return nullptr;
                              v = detail::raw(t, "batch_norm_backward");
                              return &v;
                            };
                            if (xc.numel() > 0)
                              kernels::batch_norm_backward(s, detail::raw(xc), detail::raw(gy), detail::raw(mean),
                                                           detail::raw(invstd), opt(in[1], wv), training,
                                                           opt(gx, gxv), opt(gw, gwv), opt(gb, gbv));
                            return Grads{gx, gw, gb};
                          },
                          {.inputs = {0, 1}});
}

Tensor batch_norm_inference(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                            const Tensor& weight, const Tensor& bias, double eps, const Tensor& residual, bool relu) {
  kernels::BatchNormShape s =
      internal::batch_norm_shape(x, running_mean, running_var, weight, bias, /*training=*/false);
  internal::check_no_history({&x, &weight, &bias, &residual}, "batch_norm_inference");
  MemoryFormat format = s.channels_last ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous;
  Tensor xc = x.contiguous(format), rc;
  kernels::RawView residual_view;
  kernels::BnEpilogue epilogue{.relu = relu};
  if (residual.defined()) {
    rc = internal::residual_like(residual, x, "input", format, "batch_norm_inference");
    residual_view = detail::raw(rc, "batch_norm_inference");
    epilogue.residual = &residual_view;
  }
  Tensor y = empty(x.sizes(), {.dtype = x.dtype(), .device = x.device(), .memory_format = format});
  auto [mean, invstd] = internal::eval_statistics(
      running_mean, running_var, eps, {.dtype = internal::batch_norm_stats_dtype(x.dtype()), .device = x.device()});
  kernels::RawView wv, bv;
  if (weight.defined()) wv = detail::raw(weight, "batch_norm_inference");
  if (bias.defined()) bv = detail::raw(bias, "batch_norm_inference");
  if (y.numel() > 0)
    kernels::batch_norm_apply(s, detail::raw(xc), detail::raw(mean), detail::raw(invstd),
                              weight.defined() ? &wv : nullptr, bias.defined() ? &bv : nullptr, epilogue,
                              detail::raw(y));
  return y;
}

}  // namespace ht::nn::functional
