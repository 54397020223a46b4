// conv2d_batch_norm_inference: an inference block's convolution with eval-mode batch norm, the residual add and
// ReLU folded in (kernels' conv2d_batch_norm_forward: on the CPU, oneDNN post-ops on the accumulator).
#include "core/raw.h"
#include "kernels/nn_kernels.h"
#include "nn/functional.h"
#include "nn/functional_internal.h"

namespace ht::nn::functional {

Tensor conv2d_batch_norm_inference(const Tensor& x, const Tensor& conv_weight, Size2 stride, Size2 padding,
                                   Size2 dilation, int64_t groups, const Tensor& running_mean,
                                   const Tensor& running_var, const Tensor& bn_weight, const Tensor& bn_bias,
                                   double eps, const Tensor& residual, bool relu) {
  constexpr const char* kOp = "conv2d_batch_norm_inference";
  internal::check_no_history({&x, &conv_weight, &bn_weight, &bn_bias, &residual}, kOp);
  kernels::Conv2dShape s = internal::conv2d_shape(x, conv_weight, Tensor(), stride, padding, dilation, groups);
  s.inference = true;
  MemoryFormat format = internal::conv2d_memory_format(x, conv_weight);
  Tensor y =
      empty({s.n, s.c_out, s.out_h, s.out_w}, {.dtype = x.dtype(), .device = x.device(), .memory_format = format});
  internal::batch_norm_shape(y, running_mean, running_var, bn_weight, bn_bias, /*training=*/false);
  Tensor rc;
  kernels::RawView residual_view;
  kernels::BnEpilogue epilogue{.relu = relu};
  if (residual.defined()) {
    rc = internal::residual_like(residual, y, "output", format, kOp);
    residual_view = detail::raw(rc, kOp);
    epilogue.residual = &residual_view;
  }
  auto [mean, invstd] = internal::eval_statistics(
      running_mean, running_var, eps, {.dtype = internal::batch_norm_stats_dtype(x.dtype()), .device = x.device()});
  kernels::BnInference bn{detail::raw(mean, kOp), detail::raw(invstd, kOp)};
  kernels::RawView wv, bv;
  if (bn_weight.defined()) {
    wv = detail::raw(bn_weight, kOp);
    bn.weight = &wv;
  }
  if (bn_bias.defined()) {
    bv = detail::raw(bn_bias, kOp);
    bn.bias = &bv;
  }
  Tensor xc = x.contiguous(format), wc = conv_weight.contiguous(format);
  if (y.numel() > 0) kernels::conv2d_batch_norm_forward(s, detail::raw(xc, kOp), detail::raw(wc, kOp), bn, epilogue,
                                                        detail::raw(y, kOp));
  return y;
}

}  // namespace ht::nn::functional
