// Entry points of the nn kernels (convolution, batch norm, pooling) on raw views, beside kernels/kernels.h.
// Activations are dense NCHW or dense channels_last (NHWC strides on the NCHW shape); per-channel vectors are
// contiguous [C]. core/nn turns tensors into views.
#pragma once
#include <cstdint>

#include "kernels/kernels.h"

namespace ht::kernels {

// A 2-d convolution: input [n, c_in, h, w], weight [c_out, c_in / groups, kh, kw], output [n, c_out, out_h, out_w].
// All of a convolution's 4-d tensors (x, w, y; gy, gx, gw) lie in one layout, NCHW or channels_last, as PyTorch
// hands them to oneDNN and cuDNN; a tensor that is dense in both (C == 1, a 1x1 map or kernel) counts as either.
struct Conv2dShape {
  int64_t n = 0, c_in = 0, h = 0, w = 0;
  int64_t c_out = 0, kh = 0, kw = 0;
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1, groups = 1;
  int64_t out_h = 0, out_w = 0;
  // No backward follows this forward (grad mode off, or nothing requires grad): a backend may pick kernels that
  // suit inference. The values are the same to within rounding.
  bool inference = false;
};
// conv2d_forward: y = conv(x, w) (+ bias [c_out] when given); 16-bit tensors accumulate in float.
// conv2d_backward: the gradient of the input, gx = conv_transpose(gy, w), and of the weight, gw (from x and gy);
// either may be null, and each is written in full. One call for both, so that a backend prepares gy (widens,
// reorders) once.

// Batch norm over x viewed as [n, c, hw], or as [n, hw, c] in memory when channels_last (x, y, gy and gx
// share the layout). weight, bias and the running stats are [c] (each may be absent), all of one dtype: x's,
// or float32 for a float16 / bfloat16 x (PyTorch's mixed-precision rule; cuDNN and oneDNN keep them in fp32
// too); gweight / gbias take that dtype. mean / invstd are [c] in opmath (float32, float64 for float64 x).
struct BatchNormShape {
  int64_t n = 0, c = 0, hw = 0;
  bool channels_last = false;
};
// What an inference block does after eval-mode batch norm, in the same pass: add `residual` (x's dtype and
// layout; may be null), then ReLU.
struct BnEpilogue {
  const RawView* residual = nullptr;
  bool relu = false;
};
// Eval-mode batch norm's per-channel arguments (as batch_norm_apply takes them): mean and invstd in opmath,
// weight and bias (each may be absent).
struct BnInference {
  RawView mean, invstd;
  const RawView* weight = nullptr;
  const RawView* bias = nullptr;
};
// The batch-norm shape of a convolution's output y (dense NCHW or channels_last).
inline BatchNormShape conv2d_output_bn_shape(const Conv2dShape& s, const RawView& y) {
  return {s.n, s.c_out, s.out_h * s.out_w, y.ndim == 4 && y.strides[1] == 1 && s.c_out > 1};
}
// conv2d_batch_norm_forward: an inference block's convolution (no bias) with eval-mode batch norm, the residual
// add and ReLU folded into it: y = epilogue(batch_norm_apply(conv(x, w))). A backend may apply the batch norm to
// the convolution's accumulator (float) before rounding y once; the values then differ from the unfused ops by
// that one rounding.
// batch_norm_forward_train: normalises with the batch's biased variance, writes mean / invstd, and (when given)
// updates the running stats with momentum and the unbiased variance, as PyTorch does.
// batch_norm_apply: y = (x - mean) * invstd * weight + bias with given per-channel mean / invstd (eval mode),
// then the epilogue (inference blocks): + residual, ReLU. y may be x (in place).
// batch_norm_backward: gradients of either mode; `train` says whether mean / invstd came from the batch (and so
// depend on x). Any of gx, gweight, gbias may be null.

// 2-d pooling over planes: input [n * c, h, w], output [n * c, out_h, out_w]; or, when channels_last, input
// [n, h, w, c] and output [n, out_h, out_w, c] in memory (planes = n * c as before, channels = c).
struct Pool2dShape {
  int64_t planes = 0, h = 0, w = 0;
  int64_t kh = 1, kw = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1;
  int64_t out_h = 0, out_w = 0;
  int64_t channels = 1;
  bool channels_last = false;
};
// max_pool2d: indices (int64, like y) hold the flat position of each maximum within its input plane, as
// PyTorch's do; null indices ask for the values alone (a forward no backward follows).
// adaptive_avg_pool2d: output cell (i, j) averages input rows [floor(i*h/oh), ceil((i+1)*h/oh)) and the same
// for columns. Only planes, h, w, out_h, out_w of the shape are used.

// The entry points, each once (X(name, (parameters), (arguments), (device)), as HT_CORE_KERNELS in
// kernels/kernels.h): declared here and in the backends, switched on by kernels/dispatch.cpp.
#define HT_NN_KERNELS(X)                                                                                          \
  X(conv2d_forward, (const Conv2dShape& s, const RawView& x, const RawView& w, const RawView* bias,                \
                     const RawView& y),                                                                           \
    (s, x, w, bias, y), (common_device("conv2d", {&x, &w, bias, &y})))                                            \
  X(conv2d_batch_norm_forward, (const Conv2dShape& s, const RawView& x, const RawView& w, const BnInference& bn,  \
                                const BnEpilogue& epilogue, const RawView& y),                                    \
    (s, x, w, bn, epilogue, y),                                                                                   \
    (common_device("conv2d_batch_norm", {&x, &w, &bn.mean, &bn.invstd, bn.weight, bn.bias, epilogue.residual, &y}))) \
  X(conv2d_backward, (const Conv2dShape& s, const RawView& x, const RawView& w, const RawView& gy,                \
                      const RawView* gx, const RawView* gw),                                                      \
    (s, x, w, gy, gx, gw), (common_device("conv2d_backward", {&x, &w, &gy, gx, gw})))                             \
  X(batch_norm_forward_train, (const BatchNormShape& s, const RawView& x, const RawView* weight,                  \
                               const RawView* bias, const RawView* running_mean, const RawView* running_var,      \
                               double momentum, double eps, const RawView& y, const RawView& mean,                \
                               const RawView& invstd),                                                            \
    (s, x, weight, bias, running_mean, running_var, momentum, eps, y, mean, invstd),                              \
    (common_device("batch_norm", {&x, weight, bias, running_mean, running_var, &y, &mean, &invstd})))             \
  X(batch_norm_apply, (const BatchNormShape& s, const RawView& x, const RawView& mean, const RawView& invstd,     \
                       const RawView* weight, const RawView* bias, const BnEpilogue& epilogue, const RawView& y), \
    (s, x, mean, invstd, weight, bias, epilogue, y),                                                              \
    (common_device("batch_norm", {&x, &mean, &invstd, weight, bias, epilogue.residual, &y})))                     \
  X(batch_norm_backward, (const BatchNormShape& s, const RawView& x, const RawView& gy, const RawView& mean,      \
                          const RawView& invstd, const RawView* weight, bool train, const RawView* gx,            \
                          const RawView* gweight, const RawView* gbias),                                          \
    (s, x, gy, mean, invstd, weight, train, gx, gweight, gbias),                                                  \
    (common_device("batch_norm_backward", {&x, &gy, &mean, &invstd, weight, gx, gweight, gbias})))                \
  X(max_pool2d_forward, (const Pool2dShape& s, const RawView& x, const RawView& y, const RawView* indices),       \
    (s, x, y, indices), (common_device("max_pool2d", {&x, &y, indices})))                                         \
  X(max_pool2d_backward, (const Pool2dShape& s, const RawView& gy, const RawView& indices, const RawView& gx),    \
    (s, gy, indices, gx), (common_device("max_pool2d_backward", {&gy, &indices, &gx})))                           \
  X(adaptive_avg_pool2d_forward, (const Pool2dShape& s, const RawView& x, const RawView& y), (s, x, y),           \
    (common_device("adaptive_avg_pool2d", {&x, &y})))                                                             \
  X(adaptive_avg_pool2d_backward, (const Pool2dShape& s, const RawView& gy, const RawView& gx), (s, gy, gx),      \
    (common_device("adaptive_avg_pool2d_backward", {&gy, &gx})))

HT_NN_KERNELS(HT_DECLARE_KERNEL)

}  // namespace ht::kernels
