// batch_norm: training (batch statistics, running-stat update in place) and eval (running statistics), with
// one backward rule for both.
#include "core/autograd.h"
#include "core/raw.h"
#include "kernels/nn_kernels.h"
#include "nn/functional.h"

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
DType stats_dtype(DType t) { return t == kFloat64 ? kFloat64 : kFloat32; }
}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
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

  MemoryFormat format = x.suggest_memory_format();
  s.channels_last = format == MemoryFormat::ChannelsLast;
  Tensor xc = x.detach().contiguous(format);
  Tensor y = empty(x.sizes(), {.dtype = x.dtype(), .device = x.device(), .memory_format = format});
  TensorOptions so{.dtype = stats_dtype(x.dtype()), .device = x.device()};
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
    NoGradGuard ng;
    mean = running_mean.to(so.dtype).contiguous();
    invstd = rsqrt(add(running_var.to(so.dtype), eps)).contiguous();
    if (y.numel() > 0)
      kernels::batch_norm_apply(s, detail::raw(xc), detail::raw(mean), detail::raw(invstd), opt_raw(weight, wv),
                                opt_raw(bias, bv), detail::raw(y));
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

}  // namespace ht::nn::functional
