// Entry points of the nn kernels (convolution, batch norm, pooling) on raw views, beside kernels/kernels.h.
// Activations are dense NCHW or dense channels_last (NHWC strides on the NCHW shape); per-channel vectors are
// contiguous [C]. core/nn turns tensors into views.
#pragma once
#include <cstdint>

#include "kernels/kernels.h"

namespace ht::kernels {

// A 2-d convolution: input [n, c_in, h, w], weight [c_out, c_in / groups, kh, kw], output [n, c_out, out_h, out_w].
struct Conv2dShape {
  int64_t n = 0, c_in = 0, h = 0, w = 0;
  int64_t c_out = 0, kh = 0, kw = 0;
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1, groups = 1;
  int64_t out_h = 0, out_w = 0;
};
// y = conv(x, w) (+ bias [c_out] when given); 16-bit tensors accumulate in float.
void conv2d_forward(const Conv2dShape& s, const RawView& x, const RawView& w, const RawView* bias, const RawView& y);
// gx = conv_transpose(gy, w): the gradient of the input.
void conv2d_backward_data(const Conv2dShape& s, const RawView& gy, const RawView& w, const RawView& gx);
// gw = the gradient of the weight, from the input and gy.
void conv2d_backward_weight(const Conv2dShape& s, const RawView& x, const RawView& gy, const RawView& gw);

// Batch norm over x viewed as [n, c, hw], or as [n, hw, c] in memory when channels_last (x, y, gy and gx
// share the layout). weight, bias and the running stats are [c] (each may be absent), all of one dtype: x's,
// or float32 for a float16 / bfloat16 x (PyTorch's mixed-precision rule; cuDNN and oneDNN keep them in fp32
// too); gweight / gbias take that dtype. mean / invstd are [c] in opmath (float32, float64 for float64 x).
struct BatchNormShape {
  int64_t n = 0, c = 0, hw = 0;
  bool channels_last = false;
};
// Training: normalises with the batch's biased variance, writes mean / invstd, and (when given) updates the
// running stats with momentum and the unbiased variance, as PyTorch does.
void batch_norm_forward_train(const BatchNormShape& s, const RawView& x, const RawView* weight, const RawView* bias,
                              const RawView* running_mean, const RawView* running_var, double momentum, double eps,
                              const RawView& y, const RawView& mean, const RawView& invstd);
// y = (x - mean) * invstd * weight + bias with given per-channel mean / invstd (eval mode).
void batch_norm_apply(const BatchNormShape& s, const RawView& x, const RawView& mean, const RawView& invstd,
                      const RawView* weight, const RawView* bias, const RawView& y);
// Gradients of either mode: `train` says whether mean / invstd came from the batch (and so depend on x).
// Any of gx, gweight, gbias may be null.
void batch_norm_backward(const BatchNormShape& s, const RawView& x, const RawView& gy, const RawView& mean,
                         const RawView& invstd, const RawView* weight, bool train, const RawView* gx,
                         const RawView* gweight, const RawView* gbias);

// 2-d pooling over planes: input [n * c, h, w], output [n * c, out_h, out_w]; or, when channels_last, input
// [n, h, w, c] and output [n, out_h, out_w, c] in memory (planes = n * c as before, channels = c).
struct Pool2dShape {
  int64_t planes = 0, h = 0, w = 0;
  int64_t kh = 1, kw = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1;
  int64_t out_h = 0, out_w = 0;
  int64_t channels = 1;
  bool channels_last = false;
};
// indices (int64, like y) hold the flat position of each maximum within its input plane, as PyTorch's do.
void max_pool2d_forward(const Pool2dShape& s, const RawView& x, const RawView& y, const RawView& indices);
void max_pool2d_backward(const Pool2dShape& s, const RawView& gy, const RawView& indices, const RawView& gx);
// Adaptive average pooling: output cell (i, j) averages input rows [floor(i*h/oh), ceil((i+1)*h/oh)) and the
// same for columns. Only planes, h, w, out_h, out_w of the shape are used.
void adaptive_avg_pool2d_forward(const Pool2dShape& s, const RawView& x, const RawView& y);
void adaptive_avg_pool2d_backward(const Pool2dShape& s, const RawView& gy, const RawView& gx);

}  // namespace ht::kernels
