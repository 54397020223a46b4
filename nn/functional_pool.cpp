// max_pool2d (with indices) and adaptive_avg_pool2d, with their backward rules.
#include "core/autograd.h"
#include "core/raw.h"
#include "kernels/nn_kernels.h"
#include "nn/functional.h"

namespace ht::nn::functional {

using autograd::Grads;
using autograd::Inputs;

namespace {
int64_t pooled_size(int64_t in, int64_t k, int64_t pad, int64_t stride, int64_t dil, bool ceil_mode) {
  // PyTorch's pooling_output_shape: floor division (C++'s `/` truncates a negative span toward zero, which would
  // turn a kernel larger than the input into a 1x1 output)
  auto floor_div = [](int64_t a, int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); };
  int64_t span = in + 2 * pad - dil * (k - 1) - 1;
  int64_t out = floor_div(ceil_mode ? span + stride - 1 : span, stride) + 1;
  // with ceil_mode the last window must start inside the input or its left padding, as PyTorch requires
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

// [N, C, H, W] or [C, H, W] -> (planes, h, w), leading shape.
void planes_of(const Tensor& x, const char* op, kernels::Pool2dShape& s) {
  HT_CHECK(x.dim() == 3 || x.dim() == 4, "[", op, "] expected input (N, C, H, W) or (C, H, W), got shape ",
           shape_str(x.sizes()));
  HT_CHECK(x.is_floating_point(), "[", op, "] expected a floating-point input, got ", dtype_name(x.dtype()));
  s.h = x.size(-2);
  s.w = x.size(-1);
  s.planes = s.h > 0 && s.w > 0 ? x.numel() / (s.h * s.w) : (x.dim() == 4 ? x.size(0) * x.size(1) : x.size(0));
  s.channels = x.size(-3);
  s.channels_last = x.dim() == 4 && x.suggest_memory_format() == MemoryFormat::ChannelsLast;
}
MemoryFormat format_of(const kernels::Pool2dShape& s) {
  return s.channels_last ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous;
}

Shape out_shape(const Tensor& x, int64_t oh, int64_t ow) {
  Shape sh(x.sizes().begin(), x.sizes().end() - 2);
  sh.push_back(oh);
  sh.push_back(ow);
  return sh;
}
}  // namespace

namespace {
// max_pool2d's checks, and the kernels' shape.
kernels::Pool2dShape max_pool_shape(const Tensor& x, Size2 kernel_size, Size2 stride, Size2 padding, Size2 dilation,
                                    bool ceil_mode) {
  kernels::Pool2dShape s;
  planes_of(x, "max_pool2d", s);
  if (stride.h == 0 && stride.w == 0) stride = kernel_size;
  HT_CHECK(kernel_size.h > 0 && kernel_size.w > 0 && stride.h > 0 && stride.w > 0 && dilation.h > 0 && dilation.w > 0,
           "[max_pool2d] expected positive kernel_size, stride and dilation, got kernel (", kernel_size.h, ", ",
           kernel_size.w, "), stride (", stride.h, ", ", stride.w, "), dilation (", dilation.h, ", ", dilation.w, ")");
  HT_CHECK(padding.h >= 0 && padding.w >= 0 && padding.h * 2 <= kernel_size.h && padding.w * 2 <= kernel_size.w,
           "[max_pool2d] expected padding at most half the kernel size, got padding (", padding.h, ", ", padding.w,
           ") for kernel (", kernel_size.h, ", ", kernel_size.w, ")");
  s.kh = kernel_size.h; s.kw = kernel_size.w; s.stride_h = stride.h; s.stride_w = stride.w;
  s.pad_h = padding.h; s.pad_w = padding.w; s.dil_h = dilation.h; s.dil_w = dilation.w;
  s.out_h = pooled_size(s.h, s.kh, s.pad_h, s.stride_h, s.dil_h, ceil_mode);
  s.out_w = pooled_size(s.w, s.kw, s.pad_w, s.stride_w, s.dil_w, ceil_mode);
  HT_CHECK(s.out_h > 0 && s.out_w > 0, "[max_pool2d] given input size ", shape_str(x.sizes()), ", kernel (",
           s.kh, ", ", s.kw, "), padding (", s.pad_h, ", ", s.pad_w, "), dilation (", s.dil_h, ", ", s.dil_w,
           "): calculated output size (", s.out_h, " x ", s.out_w, "). Output size is too small");
  return s;
}
}  // namespace

namespace {
// The forward of both max_pool2d entries: y, and the indices of the maxima when `with_indices`.
struct MaxPoolForward {
  kernels::Pool2dShape s;
  MemoryFormat format;
  Tensor y, indices;
};
MaxPoolForward max_pool_forward(const Tensor& x, Size2 kernel_size, Size2 stride, Size2 padding, Size2 dilation,
                                bool ceil_mode, bool with_indices) {
  MaxPoolForward f;
  f.s = max_pool_shape(x, kernel_size, stride, padding, dilation, ceil_mode);
  f.format = format_of(f.s);
  Tensor xc = x.detach().contiguous(f.format);
  f.y = empty(out_shape(x, f.s.out_h, f.s.out_w),
              {.dtype = x.dtype(), .device = x.device(), .memory_format = f.format});
  kernels::RawView indices_view;
  if (with_indices) {
    f.indices = empty(f.y.sizes(), {.dtype = kInt64, .device = x.device(), .memory_format = f.format});
    indices_view = detail::raw(f.indices);
  }
  if (f.y.numel() > 0)
    kernels::max_pool2d_forward(f.s, detail::raw(xc), detail::raw(f.y), with_indices ? &indices_view : nullptr);
  return f;
}
}  // namespace

std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& x, Size2 kernel_size, Size2 stride, Size2 padding,
                                                  Size2 dilation, bool ceil_mode) {
  auto [s, format, y, idx] = max_pool_forward(x, kernel_size, stride, padding, dilation, ceil_mode, true);
  y = autograd::record("max_pool2d", y, {x}, [s, idx, format](const Inputs& in, const Tensor&, const Tensor& g) {
    Tensor gy = g.to(in[0].dtype()).contiguous(format);
    Tensor gx = empty(in[0].sizes(), {.dtype = in[0].dtype(), .device = in[0].device(), .memory_format = format});
    if (gx.numel() > 0) kernels::max_pool2d_backward(s, detail::raw(gy), detail::raw(idx), detail::raw(gx));
    return Grads{gx};
  });
  return {y, idx};
}

// Without a backward to come, the values alone: no int64 indices written (four times the bytes of a 16-bit
// output).
Tensor max_pool2d(const Tensor& x, Size2 kernel_size, Size2 stride, Size2 padding, Size2 dilation, bool ceil_mode) {
  if (autograd::grad_enabled() && x.requires_grad())
    return max_pool2d_with_indices(x, kernel_size, stride, padding, dilation, ceil_mode).first;
  return max_pool_forward(x, kernel_size, stride, padding, dilation, ceil_mode, false).y;
}

Tensor adaptive_avg_pool2d(const Tensor& x, Size2 output_size) {
  kernels::Pool2dShape s;
  planes_of(x, "adaptive_avg_pool2d", s);
  HT_CHECK(output_size.h > 0 && output_size.w > 0, "[adaptive_avg_pool2d] expected a positive output size, got (",
           output_size.h, ", ", output_size.w, ")");
  HT_CHECK(s.h > 0 && s.w > 0, "[adaptive_avg_pool2d] expected a non-empty input plane, got shape ",
           shape_str(x.sizes()));
  s.out_h = output_size.h;
  s.out_w = output_size.w;
  MemoryFormat format = format_of(s);
  Tensor xc = x.detach().contiguous(format);
  Tensor y = empty(out_shape(x, s.out_h, s.out_w), {.dtype = x.dtype(), .device = x.device(), .memory_format = format});
  if (y.numel() > 0) kernels::adaptive_avg_pool2d_forward(s, detail::raw(xc), detail::raw(y));
  return autograd::record("adaptive_avg_pool2d", y, {x}, [s, format](const Inputs& in, const Tensor&, const Tensor& g) {
    Tensor gy = g.to(in[0].dtype()).contiguous(format);
    Tensor gx = empty(in[0].sizes(), {.dtype = in[0].dtype(), .device = in[0].device(), .memory_format = format});
    if (gx.numel() > 0) kernels::adaptive_avg_pool2d_backward(s, detail::raw(gy), detail::raw(gx));
    return Grads{gx};
  });
}

}  // namespace ht::nn::functional
