// CPU convolution on oneDNN (kernels/cpu/onednn.h): forward, backward-data and backward-weights as direct
// convolutions (never Winograd: its fp32 results differ beyond our tolerances). float32 runs natively, and
// bfloat16 where the CPU has AVX-512 (natively with AVX512_BF16); float16, and bfloat16 on an AVX2 CPU, are
// widened to float32 inside the call; float64, which oneDNN lacks, runs the direct loop of conv_reference.h.
// Kernel taps that every output position skips (they would multiply only padding: a 3x3 kernel on a 1x1 map
// uses its centre alone) are cut from the kernel first, so small maps cost what they compute.
// Activations run NHWC (channels_last tensors as they lie) or blocked, as runs_nhwc() says; weights in oneDNN's
// layout. At inference, eval-mode batch norm, a residual add and ReLU run as post-ops of the forward
// (conv2d_batch_norm_forward).
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kernels/cpu/conv_reference.h"
#include "kernels/cpu/convert.h"
#include "kernels/cpu/executor.h"
#include "kernels/cpu/onednn.h"
#include "kernels/nn_backends.h"

namespace ht::kernels::cpu {

namespace {

using dnnl::memory;
using onednn::Buffer;

struct Geometry {
  memory::dims strides, dilates, pad_l, pad_r;
};
Geometry geometry(const Conv2dShape& s) {
  // oneDNN counts dilation from 0; the right padding is the one that gives PyTorch's output size
  int64_t pr_h = (s.out_h - 1) * s.stride_h + (s.kh - 1) * s.dil_h + 1 - s.h - s.pad_h;
  int64_t pr_w = (s.out_w - 1) * s.stride_w + (s.kw - 1) * s.dil_w + 1 - s.w - s.pad_w;
  return {{s.stride_h, s.stride_w}, {s.dil_h - 1, s.dil_w - 1}, {s.pad_h, s.pad_w}, {pr_h, pr_w}};
}

// The convolution restricted to the taps some output position reads: the shape with the smaller kernel (and
// the padding that keeps every position's input), and where its taps start in the full kernel.
struct LiveTaps {
  Conv2dShape s;
  int64_t ky0 = 0, kx0 = 0;
  bool cropped() const { return ky0 != 0 || kx0 != 0 || s.kh != full_kh || s.kw != full_kw; }
  int64_t full_kh = 0, full_kw = 0;
};
// [first, last) of the taps along one dim that fall inside the input for some output position.
std::pair<int64_t, int64_t> live_range(int64_t size, int64_t out, int64_t k, int64_t stride, int64_t pad,
                                       int64_t dil) {
  int64_t first = k, last = 0;
  for (int64_t t = 0; t < k; ++t)
    for (int64_t o = 0; o < out; ++o) {
      int64_t in = o * stride - pad + t * dil;
      if (in >= 0 && in < size) {
        first = std::min(first, t);
        last = t + 1;
        break;
      }
    }
  // no live tap at all, or one that would need negative padding: keep the kernel whole
  if (first >= last || pad - first * dil < 0) return {0, k};
  return {first, last};
}
LiveTaps live_taps(const Conv2dShape& s) {
  LiveTaps t{s};
  t.full_kh = s.kh;
  t.full_kw = s.kw;
  auto [y0, y1] = live_range(s.h, s.out_h, s.kh, s.stride_h, s.pad_h, s.dil_h);
  auto [x0, x1] = live_range(s.w, s.out_w, s.kw, s.stride_w, s.pad_w, s.dil_w);
  t.ky0 = y0;
  t.kx0 = x0;
  t.s.kh = y1 - y0;
  t.s.kw = x1 - x0;
  t.s.pad_h = s.pad_h - y0 * s.dil_h;
  t.s.pad_w = s.pad_w - x0 * s.dil_w;
  return t;
}
// The live taps of a weight (or weight gradient) view: a strided window on it, no copy.
RawView live_weight(const RawView& w, const LiveTaps& t) {
  RawView v = w;
  v.data = static_cast<char*>(w.data) + (t.ky0 * w.strides[2] + t.kx0 * w.strides[3]) * int64_t(element_size(w.dtype));
  v.sizes[2] = t.s.kh;
  v.sizes[3] = t.s.kw;
  return v;
}

// The activations' layout inside oneDNN. oneDNN 2.6 has jit kernels for NHWC on AVX-512, so there a
// channels_last float32 tensor goes as it lies (PyTorch's mkldnn convolution passes channels_last so): a reorder
// to the blocked layout and back cost a third of a forward. NCHW float32 and the 16-bit types keep the blocked
// layout oneDNN picks (PyTorch's NCHW path): the AMP recipes, whose 16-bit convolutions must give the same run
// in both memory formats, then stay within the tolerances measured against PyTorch (bfloat16 on NHWC kernels
// moves autocast's third loss just past its bound). Where the NHWC primitive would be oneDNN's reference loops
// (an AVX2 CPU), activations go in the layout oneDNN picks. Weights always go in oneDNN's layout.
bool channels_last(const RawView& v) {
  return v.ndim == 4 && v.strides[1] == 1 && v.strides[3] == v.sizes[1] && v.strides[2] == v.sizes[3] * v.sizes[1] &&
         v.strides[0] == v.sizes[2] * v.sizes[3] * v.sizes[1];
}
bool has_avx512() {
  static const bool avx512 = onednn::has_isa(dnnl::cpu_isa::avx512_core);
  return avx512;
}
bool runs_nhwc(DType t, std::initializer_list<const RawView*> activations) {
  if (!has_avx512() || t != kFloat32) return false;
  for (const RawView* v : activations)
    if (!channels_last(*v)) return false;
  return true;
}
// An inference forward (no backward follows) of channels_last bfloat16 runs NHWC too: oneDNN 2.6's bf16 NHWC
// forward takes a quarter less time than the blocked one. Training keeps the blocked layout, whose bf16 results
// the AMP recipe's step-for-step comparison with PyTorch was measured on.
bool forward_runs_nhwc(const Conv2dShape& s, const RawView& x, const RawView& y) {
  if (s.inference && x.dtype == kBFloat16 && has_avx512() && channels_last(x) && channels_last(y)) return true;
  return runs_nhwc(x.dtype, {&x, &y});
}
memory::desc layout(const memory::desc& own, bool nhwc) {
  return nhwc ? memory::desc(own.dims(), own.data_type(), memory::format_tag::nhwc) : onednn::any_like(own);
}
// A primitive desc made with NHWC activations when `nhwc`, or with `any` (also when oneDNN would run the NHWC
// one on its reference loops).
template <class Make>
auto with_layout(bool nhwc, Make&& make) {
  if (nhwc) {
    auto pd = make(true);
    if (std::string(pd.impl_info_str()).rfind("ref", 0) != 0) return pd;
  }
  return make(false);
}

onednn::Key conv_key(const char* op, const Conv2dShape& s, bool nhwc, std::initializer_list<const RawView*> views) {
  onednn::Key k(op);
  k.add(nhwc ? "nhwc" : "any");
  k.add(s.groups).add(s.stride_h).add(s.stride_w).add(s.pad_h).add(s.pad_w).add(s.dil_h).add(s.dil_w);
  for (const RawView* v : views) v ? k.add(*v) : k.add("none");
  return k;
}

dnnl::convolution_forward::primitive_desc forward_desc(
    const Conv2dShape& s, const memory::desc& src, const memory::desc& weights, const memory::desc* bias,
    const memory::desc& dst, dnnl::prop_kind prop = dnnl::prop_kind::forward_training,
    const dnnl::primitive_attr& attr = onednn::default_attr()) {
  Geometry g = geometry(s);
  auto d = bias ? dnnl::convolution_forward::desc(prop, dnnl::algorithm::convolution_direct, src, weights, *bias, dst,
                                                  g.strides, g.dilates, g.pad_l, g.pad_r)
                : dnnl::convolution_forward::desc(prop, dnnl::algorithm::convolution_direct, src, weights, dst,
                                                  g.strides, g.dilates, g.pad_l, g.pad_r);
  return {d, attr, onednn::engine()};
}

// Eval-mode batch norm folded into a convolution as oneDNN post-ops on its float accumulator: * scale + shift
// per output channel (scale = invstd * weight, shift = bias - mean * scale), + the residual (a sum post-op over
// the output, filled with the residual first), ReLU; then the one rounding to the output's dtype.
struct FoldedBn {
  std::vector<float> scale, shift;
  const RawView* residual = nullptr;  // in the dtype oneDNN computes in (a float32 stand-in for float16)
  bool relu = false;
};
// The [c] values of a per-channel vector as float (`absent` where there is none).
std::vector<float> channel_floats(const RawView* v, int64_t c, float absent) {
  std::vector<float> out(size_t(c), absent);
  if (!v) return out;
  switch (v->dtype) {
    case kFloat32: std::memcpy(out.data(), v->data, size_t(c) * sizeof(float)); break;
    case kBFloat16: to_float(static_cast<const BFloat16*>(v->data), out.data(), c); break;
    case kFloat16: to_float(static_cast<const Half*>(v->data), out.data(), c); break;
    default: fail("[conv2d_batch_norm] unexpected batch-norm dtype ", dtype_name(v->dtype));
  }
  return out;
}
FoldedBn fold(int64_t c, const BnInference& bn, bool relu) {
  FoldedBn f{channel_floats(bn.weight, c, 1.0f), channel_floats(bn.bias, c, 0.0f), nullptr, relu};
  const auto* mean = static_cast<const float*>(bn.mean.data);
  const auto* invstd = static_cast<const float*>(bn.invstd.data);
  for (int64_t i = 0; i < c; ++i) {
    f.scale[size_t(i)] *= invstd[i];
    f.shift[size_t(i)] -= mean[i] * f.scale[size_t(i)];
  }
  return f;
}
memory::desc channel_vector_desc(int64_t c) {
  return memory::desc({1, c, 1, 1}, memory::data_type::f32, memory::format_tag::nchw);
}
dnnl::primitive_attr folded_attr(int64_t c, const FoldedBn& f) {
  dnnl::post_ops ops;
  ops.append_binary(dnnl::algorithm::binary_mul, channel_vector_desc(c));
  ops.append_binary(dnnl::algorithm::binary_add, channel_vector_desc(c));
  if (f.residual) ops.append_sum(1.0f);
  if (f.relu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
  dnnl::primitive_attr attr = onednn::default_attr();
  attr.set_post_ops(ops);
  return attr;
}

template <class PrimitiveDesc, class Primitive>
struct Cached {
  PrimitiveDesc pd;
  Primitive primitive;
  explicit Cached(PrimitiveDesc p) : pd(std::move(p)), primitive(pd) {}
};
using Forward = Cached<dnnl::convolution_forward::primitive_desc, dnnl::convolution_forward>;
using BackwardData = Cached<dnnl::convolution_backward_data::primitive_desc, dnnl::convolution_backward_data>;
using BackwardWeights =
    Cached<dnnl::convolution_backward_weights::primitive_desc, dnnl::convolution_backward_weights>;

// Whether oneDNN computes in `t` on this CPU: float32 always; bfloat16 from AVX-512 on (natively with
// AVX512_BF16; oneDNN 2.6 has no bf16 convolution for AVX2 and would fall back to its reference loops); float16
// never (oneDNN 2.6 has no CPU fp16 convolution).
bool computes_in(DType t) {
  if (t == kFloat32) return true;
  return t == kBFloat16 && has_avx512();
}
// A dtype oneDNN does not compute in goes through it as float32: a stand-in (same strides) in buffer `role`.
RawView float32_stand_in(const RawView& v, Buffer role) {
  if (computes_in(v.dtype)) return v;
  RawView f = v;
  f.dtype = kFloat32;
  f.data = onednn::scratch(role, size_t(v.numel()) * sizeof(float));
  return f;
}
RawView as_float32(const RawView& v, Buffer role) {
  RawView f = float32_stand_in(v, role);
  if (f.data != v.data) convert_dense(v, f);
  return f;
}
void narrow_into(const RawView& f, const RawView& v) {
  if (f.data != v.data) convert_dense(f, v);
}
// A contiguous view of `v`'s shape in `dtype` in staging buffer `role` (uninitialised).
RawView contiguous_in(const RawView& v, DType dtype, Buffer role) {
  RawView f = v;
  f.dtype = dtype;
  f.data = onednn::scratch(role, size_t(v.numel()) * element_size(dtype));
  for (int64_t d = v.ndim - 1, stride = 1; d >= 0; stride *= v.sizes[d], --d) f.strides[d] = stride;
  return f;
}
// Moves the 16-bit values of a 4-d window (any strides) to or from `dense`, a contiguous view of its shape:
// plain 2-byte loads and stores, so that the conversion runs on dense memory (convert.h's vector loops).
enum class Direction { ToDense, FromDense };
// Parallel over the output channels: layer4's 512x512 windows are a quarter million scattered elements.
void move_window_bits(const RawView& window, const RawView& dense, Direction direction) {
  const int64_t* n = window.sizes;
  const int64_t* st = window.strides;
  auto* base = static_cast<uint16_t*>(window.data);
  const int64_t per_a = n[1] * n[2] * n[3];
#pragma omp parallel for schedule(static) if (n[0] * per_a >= kParallelGrain)
  for (int64_t a = 0; a < n[0]; ++a) {
    uint16_t* packed = static_cast<uint16_t*>(dense.data) + a * per_a;
    for (int64_t b = 0; b < n[1]; ++b)
      for (int64_t c = 0; c < n[2]; ++c)
        for (int64_t d = 0; d < n[3]; ++d, ++packed) {
          uint16_t* element = base + a * st[0] + b * st[1] + c * st[2] + d * st[3];
          if (direction == Direction::ToDense)
            *packed = *element;
          else
            *element = *packed;
        }
  }
}
// The live taps' window of weights `w` as oneDNN computes it: the window itself (a strided view, no copy), or
// for a dtype oneDNN does not compute in, widened to float32 — the window alone, so that a 3x3 kernel on a 1x1
// map widens a ninth of its weights. (Buffer::Weights stages the window's 16-bit values; oneDNN's weight
// reorder reuses it afterwards.)
RawView live_weight_as_float32(const RawView& w, const LiveTaps& taps) {
  if (computes_in(w.dtype)) return live_weight(w, taps);
  if (!taps.cropped()) return as_float32(w, Buffer::Weights32);
  RawView window = live_weight(w, taps), packed = contiguous_in(window, w.dtype, Buffer::Weights);
  RawView f = contiguous_in(window, kFloat32, Buffer::Weights32);
  move_window_bits(window, packed, Direction::ToDense);
  convert_dense(packed, f);
  return f;
}
// Writes `window32` (contiguous float32) into the 16-bit window `window`, rounding as convert.h does.
void narrow_into_window(const RawView& window32, const RawView& window) {
  RawView packed = contiguous_in(window, window.dtype, Buffer::Weights);
  convert_dense(window32, packed);
  move_window_bits(window, packed, Direction::FromDense);
}

// A backward primitive (data or weights) over the user's source, weights and destination descriptors (the
// activations NHWC, or in the layouts oneDNN picks), with the forward primitive desc oneDNN takes as a hint.
template <class Cached, class OpDesc>
Cached backward_primitive(const Conv2dShape& s, const memory::desc& src, const memory::desc& weights,
                          const memory::desc& dst, bool nhwc) {
  return Cached(with_layout(nhwc, [&](bool as_nhwc) {
    memory::desc src_l = layout(src, as_nhwc), weights_any = onednn::any_like(weights), dst_l = layout(dst, as_nhwc);
    Geometry g = geometry(s);
    OpDesc d(dnnl::algorithm::convolution_direct, src_l, weights_any, dst_l, g.strides, g.dilates, g.pad_l, g.pad_r);
    return decltype(Cached::pd)(d, onednn::default_attr(), onednn::engine(),
                                forward_desc(s, src_l, weights_any, nullptr, dst_l));
  }));
}

// An activation as oneDNN sees it: `original`, and `f32`, the view oneDNN is described with: `original` itself
// where oneDNN computes in its dtype, else a float32 stand-in in a staging buffer. The stand-in is filled (or,
// for an output, read back) only once the layout oneDNN runs in is known, so that a float16 map (NCHW or
// channels_last) goes to and from oneDNN's blocked layout in one pass instead of a conversion and a reorder.
struct StandIn {
  RawView original, f32;
  bool converts() const { return original.data != f32.data; }
};
StandIn stand_in(const RawView& v, Buffer role) { return {v, float32_stand_in(v, role)}; }
bool dense_nchw(const RawView& v) {
  return v.ndim == 4 && v.strides[3] == 1 && v.strides[2] == v.sizes[3] && v.strides[1] == v.sizes[2] * v.sizes[3] &&
         v.strides[0] == v.sizes[1] * v.strides[1];
}
// The layout of `v` when `layout` is nChw16c float32 over it, a dense (NCHW or channels_last) float16 map with
// channels a multiple of 16: then one pass converts and reorders. nullopt otherwise.
std::optional<MapLayout> blocked16_over(const memory::desc& layout, const RawView& v) {
  if (v.dtype != kFloat16 || v.sizes[1] % 16 != 0) return std::nullopt;
  if (layout != memory::desc({v.sizes[0], v.sizes[1], v.sizes[2], v.sizes[3]}, memory::data_type::f32,
                             memory::format_tag::nChw16c))
    return std::nullopt;
  if (channels_last(v)) return MapLayout::ChannelsLast;  // first: a map dense in both layouts lies alike in both
  if (dense_nchw(v)) return MapLayout::NCHW;
  return std::nullopt;
}
// An input in `want`'s layout: widened straight into the blocked layout, or widened into the stand-in and then
// reordered (into staging buffer `role` when the layouts differ).
memory input_in(const StandIn& v, const memory::desc& want, Buffer role) {
  if (std::optional<MapLayout> map = v.converts() ? blocked16_over(want, v.original) : std::nullopt) {
    void* blocked = onednn::scratch(role, want.get_size());
    const RawView& o = v.original;
    if (widen_to_blocked16(static_cast<const Half*>(o.data), *map, static_cast<float*>(blocked), o.sizes[0],
                           o.sizes[1], o.sizes[2] * o.sizes[3]))
      return memory(want, onednn::engine(), blocked);
  }
  if (v.converts()) convert_dense(v.original, v.f32);
  return onednn::reordered(onednn::wrap(onednn::desc_of(v.f32), v.f32.data), want, role);
}
// An output oneDNN wrote into `out.inner` moved into `v.original`: narrowed straight from the blocked layout, or
// reordered into the stand-in and then narrowed.
void output_done(const onednn::Output& out, const StandIn& v) {
  std::optional<MapLayout> map;
  if (v.converts() && out.inner.get() != out.user.get()) map = blocked16_over(out.inner.get_desc(), v.original);
  if (map) {
    const RawView& o = v.original;
    if (narrow_from_blocked16(static_cast<const float*>(out.inner.get_data_handle()), static_cast<Half*>(o.data), *map,
                              o.sizes[0], o.sizes[1], o.sizes[2] * o.sizes[3]))
      return;
  }
  out.copy_back();
  narrow_into(v.f32, v.original);
}

// s: the shape with the live taps alone; w: their window of the weights; folded: batch norm and the rest of an
// inference block as post-ops (an inference primitive), or null.
void forward_onednn(const Conv2dShape& s, const StandIn& x_in, const RawView& w, const RawView* bias,
                    const StandIn& y_out, bool nhwc, const FoldedBn* folded = nullptr) {
  const RawView &x = x_in.f32, &y = y_out.f32;
  memory::desc xd = onednn::desc_of(x), wd = onednn::grouped_weight_desc(w, s.groups), yd = onednn::desc_of(y);
  memory::desc bd = bias ? onednn::desc_of(*bias) : memory::desc();
  onednn::Key key = conv_key(folded ? "conv_fwd_bn" : "conv_fwd", s, nhwc, {&x, &w, bias, &y});
  if (folded) key.add(folded->residual ? "residual" : "-").add(folded->relu ? "relu" : "-");
  auto fwd = onednn::cached<Forward>(key, [&] {
    return Forward(with_layout(nhwc, [&](bool as_nhwc) {
      if (!folded)
        return forward_desc(s, layout(xd, as_nhwc), onednn::any_like(wd), bias ? &bd : nullptr, layout(yd, as_nhwc));
      return forward_desc(s, layout(xd, as_nhwc), onednn::any_like(wd), bias ? &bd : nullptr, layout(yd, as_nhwc),
                          dnnl::prop_kind::forward_inference, folded_attr(s.c_out, *folded));
    }));
  });
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, input_in(x_in, fwd->pd.src_desc(), Buffer::Source)},
      {DNNL_ARG_WEIGHTS, onednn::reordered(onednn::wrap(wd, w.data), fwd->pd.weights_desc(), Buffer::Weights)}};
  if (bias) args.emplace(DNNL_ARG_BIAS, onednn::wrap(bd, bias->data));
  onednn::Output out = onednn::output_in(onednn::wrap(yd, y.data), fwd->pd.dst_desc(), Buffer::Destination);
  args.emplace(DNNL_ARG_DST, out.inner);
  if (folded) {
    args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1,
                 onednn::wrap(channel_vector_desc(s.c_out), folded->scale.data()));
    args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(1) | DNNL_ARG_SRC_1,
                 onednn::wrap(channel_vector_desc(s.c_out), folded->shift.data()));
    if (folded->residual)
      onednn::copy_into(onednn::wrap(onednn::desc_of(*folded->residual), folded->residual->data), out.inner);
  }
  onednn::execute(fwd->primitive, fwd->pd.scratchpad_desc(), std::move(args));
  output_done(out, y_out);
}

// gy as the backward primitives of one call take it: reordered (into Buffer::Destination) once, and given as it
// is to the second primitive when that wants the same layout, as backward-data and backward-weights do.
class PreparedGy {
 public:
  explicit PreparedGy(const StandIn& gy) : gy_(gy) {}
  const RawView& f32() const { return gy_.f32; }
  memory in(const memory::desc& want) {
    if (!prepared_ || inner_.get_desc() != want) {
      inner_ = input_in(gy_, want, Buffer::Destination);
      prepared_ = true;
    }
    return inner_;
  }

 private:
  StandIn gy_;
  memory inner_;
  bool prepared_ = false;
};

void backward_data_onednn(const Conv2dShape& s, PreparedGy& gy_in, const RawView& w, const StandIn& gx_out,
                          bool nhwc) {
  const RawView &gy = gy_in.f32(), &gx = gx_out.f32;
  memory::desc gyd = onednn::desc_of(gy), wd = onednn::grouped_weight_desc(w, s.groups), gxd = onednn::desc_of(gx);
  auto bwd = onednn::cached<BackwardData>(conv_key("conv_bwd_data", s, nhwc, {&gy, &w, &gx}), [&] {
    return backward_primitive<BackwardData, dnnl::convolution_backward_data::desc>(s, gxd, wd, gyd, nhwc);
  });
  onednn::Output out = onednn::output_in(onednn::wrap(gxd, gx.data), bwd->pd.diff_src_desc(), Buffer::Source);
  onednn::execute(
      bwd->primitive, bwd->pd.scratchpad_desc(),
      {{DNNL_ARG_DIFF_DST, gy_in.in(bwd->pd.diff_dst_desc())},
       {DNNL_ARG_WEIGHTS, onednn::reordered(onednn::wrap(wd, w.data), bwd->pd.weights_desc(), Buffer::Weights)},
       {DNNL_ARG_DIFF_SRC, out.inner}});
  output_done(out, gx_out);
}

void backward_weights_onednn(const Conv2dShape& s, const StandIn& x_in, PreparedGy& gy_in, const RawView& gw,
                             bool nhwc) {
  const RawView &x = x_in.f32, &gy = gy_in.f32();
  memory::desc xd = onednn::desc_of(x), gyd = onednn::desc_of(gy), gwd = onednn::grouped_weight_desc(gw, s.groups);
  auto bwd = onednn::cached<BackwardWeights>(conv_key("conv_bwd_weights", s, nhwc, {&x, &gy, &gw}), [&] {
    return backward_primitive<BackwardWeights, dnnl::convolution_backward_weights::desc>(s, xd, gwd, gyd, nhwc);
  });
  onednn::Output out =
      onednn::output_in(onednn::wrap(gwd, gw.data), bwd->pd.diff_weights_desc(), Buffer::Weights);
  onednn::execute(
      bwd->primitive, bwd->pd.scratchpad_desc(),
      {{DNNL_ARG_SRC, input_in(x_in, bwd->pd.src_desc(), Buffer::Source)},
       {DNNL_ARG_DIFF_DST, gy_in.in(bwd->pd.diff_dst_desc())},
       {DNNL_ARG_DIFF_WEIGHTS, out.inner}});
  out.copy_back();
}

}  // namespace

void conv2d_forward(const Conv2dShape& s, const RawView& x, const RawView& w, const RawView* bias, const RawView& y) {
  if (x.dtype == kFloat64) return reference::conv2d_forward(s, x, w, bias, y);
  LiveTaps taps = live_taps(s);
  RawView bias32 = bias ? as_float32(*bias, Buffer::Bias32) : RawView{};
  forward_onednn(taps.s, stand_in(x, Buffer::Source32), live_weight_as_float32(w, taps), bias ? &bias32 : nullptr,
                 stand_in(y, Buffer::Destination32), forward_runs_nhwc(s, x, y));
}

void conv2d_batch_norm_forward(const Conv2dShape& s, const RawView& x, const RawView& w, const BnInference& bn,
                               const BnEpilogue& epilogue, const RawView& y) {
  if (x.dtype == kFloat64) {
    reference::conv2d_forward(s, x, w, nullptr, y);
    return cpu::batch_norm_apply(conv2d_output_bn_shape(s, y), y, bn.mean, bn.invstd, bn.weight, bn.bias, epilogue, y);
  }
  FoldedBn folded = fold(s.c_out, bn, epilogue.relu);
  RawView residual32;
  if (epilogue.residual) {
    residual32 = as_float32(*epilogue.residual, Buffer::Residual32);
    folded.residual = &residual32;
  }
  LiveTaps taps = live_taps(s);
  forward_onednn(taps.s, stand_in(x, Buffer::Source32), live_weight_as_float32(w, taps), nullptr,
                 stand_in(y, Buffer::Destination32), forward_runs_nhwc(s, x, y), &folded);
}

void conv2d_backward(const Conv2dShape& s, const RawView& x, const RawView& w, const RawView& gy, const RawView* gx,
                     const RawView* gw) {
  if (gy.dtype == kFloat64) {
    if (gx) reference::conv2d_backward_data(s, gy, w, *gx);
    if (gw) reference::conv2d_backward_weight(s, x, gy, *gw);
    return;
  }
  LiveTaps taps = live_taps(s);
  PreparedGy gy_in(stand_in(gy, Buffer::Destination32));  // prepared once for both gradients
  if (gx)
    backward_data_onednn(taps.s, gy_in, live_weight_as_float32(w, taps), stand_in(*gx, Buffer::Source32),
                         runs_nhwc(gy.dtype, {&gy, gx}));
  if (!gw) return;
  // the cut taps' gradient is zero (gw lies densely: conv weights and their gradients are contiguous or
  // channels_last)
  if (taps.cropped()) std::memset(gw->data, 0, size_t(gw->numel()) * element_size(gw->dtype));
  RawView window = live_weight(*gw, taps);
  RawView window32 = computes_in(gw->dtype) ? window
                     : taps.cropped()       ? contiguous_in(window, kFloat32, Buffer::Weights32)
                                            : float32_stand_in(*gw, Buffer::Weights32);
  backward_weights_onednn(taps.s, stand_in(x, Buffer::Source32), gy_in, window32, runs_nhwc(x.dtype, {&x, &gy}));
  if (window32.data == window.data) return;
  if (taps.cropped())
    narrow_into_window(window32, window);
  else
    narrow_into(window32, *gw);
}

}  // namespace ht::kernels::cpu
