// conv2d: checks, the kernel call, and its backward rule (input and weight gradients from the kernels,
// the bias gradient as a sum over batch and space).
#include "core/autocast.h"
#include "core/autograd.h"
#include "core/raw.h"
#include "kernels/nn_kernels.h"
#include "nn/functional.h"
#include "nn/functional_internal.h"

namespace ht::nn::functional {

using autograd::Grads;
using autograd::Inputs;

namespace internal {

kernels::Conv2dShape conv2d_shape(const Tensor& x, const Tensor& weight, const Tensor& bias, Size2 stride,
                                  Size2 padding, Size2 dilation, int64_t groups) {
  HT_CHECK(x.dim() == 4, "[conv2d] expected input (N, C, H, W) or (C, H, W), got shape ", shape_str(x.sizes()));
  HT_CHECK(weight.dim() == 4, "[conv2d] expected weight (C_out, C_in / groups, kH, kW), got shape ",
           shape_str(weight.sizes()));
  HT_CHECK(x.dtype() == weight.dtype(), "[conv2d] expected input and weight of one dtype, got ",
           dtype_name(x.dtype()), " and ", dtype_name(weight.dtype()));
  HT_CHECK(x.is_floating_point(), "[conv2d] expected a floating-point input, got ", dtype_name(x.dtype()));
  HT_CHECK(x.device() == weight.device(), "[conv2d] expected input and weight on one device, got ", x.device().str(),
           " and ", weight.device().str());
  HT_CHECK(groups > 0 && x.size(1) % groups == 0 && weight.size(0) % groups == 0, "[conv2d] expected groups (",
           groups, ") to divide in_channels (", x.size(1), ") and out_channels (", weight.size(0), ")");
  HT_CHECK(weight.size(1) * groups == x.size(1), "[conv2d] expected input with ", weight.size(1) * groups,
           " channels (weight ", shape_str(weight.sizes()), ", groups ", groups, "), got input ",
           shape_str(x.sizes()));
  HT_CHECK(stride.h > 0 && stride.w > 0 && dilation.h > 0 && dilation.w > 0 && padding.h >= 0 && padding.w >= 0,
           "[conv2d] expected positive stride and dilation and non-negative padding, got stride (", stride.h, ", ",
           stride.w, "), padding (", padding.h, ", ", padding.w, "), dilation (", dilation.h, ", ", dilation.w, ")");
  if (bias.defined())
    HT_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0) && bias.dtype() == x.dtype() &&
                 bias.device() == x.device(),
             "[conv2d] expected bias of shape [", weight.size(0), "] (", dtype_name(x.dtype()), ", ",
             x.device().str(), "), got ", shape_str(bias.sizes()), " (", dtype_name(bias.dtype()), ", ",
             bias.device().str(), ")");
  kernels::Conv2dShape s;
  s.n = x.size(0); s.c_in = x.size(1); s.h = x.size(2); s.w = x.size(3);
  s.c_out = weight.size(0); s.kh = weight.size(2); s.kw = weight.size(3);
  s.stride_h = stride.h; s.stride_w = stride.w; s.pad_h = padding.h; s.pad_w = padding.w;
  s.dil_h = dilation.h; s.dil_w = dilation.w; s.groups = groups;
  s.out_h = (s.h + 2 * s.pad_h - s.dil_h * (s.kh - 1) - 1) / s.stride_h + 1;
  s.out_w = (s.w + 2 * s.pad_w - s.dil_w * (s.kw - 1) - 1) / s.stride_w + 1;
  HT_CHECK(s.h + 2 * s.pad_h >= s.dil_h * (s.kh - 1) + 1 && s.w + 2 * s.pad_w >= s.dil_w * (s.kw - 1) + 1,
           "[conv2d] expected the padded input (", s.h + 2 * s.pad_h, " x ", s.w + 2 * s.pad_w,
           ") to be at least the dilated kernel (", s.dil_h * (s.kh - 1) + 1, " x ", s.dil_w * (s.kw - 1) + 1, ")");
  return s;
}

MemoryFormat conv2d_memory_format(const Tensor& x, const Tensor& weight) {
  // channels_last when the input or the weight is (PyTorch's rule for oneDNN and cuDNN): no reorder per layer.
  // Except float64 on CUDA: cuDNN's double convolutions are NCHW only, so PyTorch runs them contiguous
  // (cudnn_conv_suggest_memory_format, aten/src/ATen/native/ConvUtils.h) and so does halftorch.
  if (x.is_cuda() && (x.dtype() == kFloat64 || weight.dtype() == kFloat64)) return MemoryFormat::Contiguous;
  return x.suggest_memory_format() == MemoryFormat::ChannelsLast ||
                 weight.suggest_memory_format() == MemoryFormat::ChannelsLast
             ? MemoryFormat::ChannelsLast
             : MemoryFormat::Contiguous;
}

}  // namespace internal

Tensor conv2d(const Tensor& x_in, const Tensor& weight_in, const Tensor& bias_in, Size2 stride, Size2 padding,
              Size2 dilation, int64_t groups) {
  using amp::CastPolicy;
  Tensor x = amp::autocast_input(x_in, CastPolicy::LowerPrecision);
  Tensor weight = amp::autocast_input(weight_in, CastPolicy::LowerPrecision);
  Tensor bias = bias_in.defined() ? amp::autocast_input(bias_in, CastPolicy::LowerPrecision) : bias_in;
  if (x.dim() == 3) return conv2d(x.unsqueeze(0), weight, bias, stride, padding, dilation, groups).squeeze(0);
  kernels::Conv2dShape s = internal::conv2d_shape(x, weight, bias, stride, padding, dilation, groups);
  s.inference = !autograd::grad_enabled() ||
                !(x.requires_grad() || weight.requires_grad() || (bias.defined() && bias.requires_grad()));
  MemoryFormat format = internal::conv2d_memory_format(x, weight);
  Tensor xc = x.detach().contiguous(format), wc = weight.detach().contiguous(format);
  Tensor y = empty({s.n, s.c_out, s.out_h, s.out_w}, {.dtype = x.dtype(), .device = x.device(), .memory_format = format});
  if (y.numel() > 0) {
    kernels::RawView bv = bias.defined() ? detail::raw(bias.detach().contiguous(), "conv2d") : kernels::RawView{};
    kernels::conv2d_forward(s, detail::raw(xc, "conv2d"), detail::raw(wc, "conv2d"), bias.defined() ? &bv : nullptr,
                            detail::raw(y, "conv2d"));
  }
  return autograd::record("conv2d", y, {x, weight, bias}, [s, format](const Inputs& in, const Tensor&, const Tensor& g) {
    Tensor gy = g.to(in[0].dtype()).contiguous(format);
    Tensor wc = in[1].contiguous(format);
    Tensor gx, gw, gb;
    if (in[0].requires_grad())
      gx = empty(in[0].sizes(), {.dtype = in[0].dtype(), .device = in[0].device(), .memory_format = format});
    if (in[1].requires_grad()) gw = gy.numel() > 0 ? empty_like(wc) : zeros_like(wc);  // the kernel writes all of gw
    // both gradients in one kernel call (gy prepared once); an empty gy gives zero gradients
    kernels::RawView gx_view, gw_view;
    const bool want_gx = gx.defined() && gx.numel() > 0, want_gw = gw.defined() && gw.numel() > 0;
    if (want_gx) gx_view = detail::raw(gx);
    if (want_gw) gw_view = detail::raw(gw);
    if (gy.numel() == 0) {
      if (want_gx) gx.zero_();
    } else if (want_gx || want_gw) {
      kernels::conv2d_backward(s, detail::raw(in[0].contiguous(format)), detail::raw(wc), detail::raw(gy),
                               want_gx ? &gx_view : nullptr, want_gw ? &gw_view : nullptr);
    }
    if (in[2].defined() && in[2].requires_grad()) gb = sum(gy, {0, 2, 3});
    return Grads{gx, gw, gb};
  }, {.inputs = {0, 1}});
}

}  // namespace ht::nn::functional
