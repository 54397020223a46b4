// Host-device bodies of the nn kernels that are plain maps over output elements (pooling forward and backward,
// batch-norm normalisation and its input gradient). The CPU and CUDA executors run these same bodies; only the
// per-channel reductions and the convolution GEMMs are written per device.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <type_traits>

#include "kernels/functors.h"
#include "kernels/nn_kernels.h"

namespace ht::kernels {

HT_HD inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
HT_HD inline int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

// Where pooling element i (in memory order) lies: its plane's first element, the distance between neighbouring
// pixels of that plane, and its row and column. NCHW planes are contiguous; channels_last planes interleave.
struct PlaneAt {
  int64_t base, pixel, row, col;
};
HT_HD inline PlaneAt plane_at(const Pool2dShape& s, int64_t i, int64_t rows, int64_t cols) {
  if (!s.channels_last) return {(i / (rows * cols)) * rows * cols, 1, (i / cols) % rows, i % cols};
  int64_t ch = i % s.channels, pix = i / s.channels;
  return {(pix / (rows * cols)) * rows * cols * s.channels + ch, s.channels, (pix / cols) % rows, pix % cols};
}
// The same plane's first element in a tensor of rows x cols pixels (the other side of the pooling).
HT_HD inline int64_t plane_base(const Pool2dShape& s, const PlaneAt& at, int64_t rows, int64_t cols,
                                int64_t at_rows, int64_t at_cols) {
  if (!s.channels_last) return at.base / (at_rows * at_cols) * rows * cols;
  int64_t ch = at.base % s.channels, n = at.base / (at_rows * at_cols * s.channels);
  return n * rows * cols * s.channels + ch;
}

// One output element of max pooling: the first maximum of its window (a NaN wins), as PyTorch's CPU kernel picks it.
template <class T>
struct MaxPoolFwdBody {
  Pool2dShape s;
  const T* x; T* y; int64_t* idx;
  HT_HD void operator()(int64_t i) const {
    using A = opmath_t<T>;
    PlaneAt o = plane_at(s, i, s.out_h, s.out_w);
    int64_t hs = o.row * s.stride_h - s.pad_h, ws = o.col * s.stride_w - s.pad_w;
    int64_t fy = hs, fx = ws;
    while (fy < 0) fy += s.dil_h;
    while (fx < 0) fx += s.dil_w;
    const T* plane = x + plane_base(s, o, s.h, s.w, s.out_h, s.out_w);
    int64_t best_i = fy * s.w + fx;
    A best = -std::numeric_limits<A>::infinity();
    for (int64_t ky = 0; ky < s.kh; ++ky) {
      int64_t iy = hs + ky * s.dil_h;
      if (iy < 0 || iy >= s.h) continue;
      for (int64_t kx = 0; kx < s.kw; ++kx) {
        int64_t ix = ws + kx * s.dil_w;
        if (ix < 0 || ix >= s.w) continue;
        A v = A(plane[(iy * s.w + ix) * o.pixel]);
        if (v > best || m_isnan(v)) {
          best = v;
          best_i = iy * s.w + ix;
        }
      }
    }
    y[i] = plane[best_i * o.pixel];
    if (idx) idx[i] = best_i;
  }
};

// One input element of max pooling's backward: the sum of gy over the windows that chose it (no atomics).
template <class T>
struct MaxPoolBwdBody {
  Pool2dShape s;
  const T* gy; const int64_t* idx; T* gx;
  HT_HD void operator()(int64_t i) const {
    using A = opmath_t<T>;
    PlaneAt in = plane_at(s, i, s.h, s.w);
    int64_t iy = in.row, ix = in.col, flat = iy * s.w + ix;
    int64_t oy0 = ceil_div(iy + s.pad_h - (s.kh - 1) * s.dil_h, s.stride_h), oy1 = floor_div(iy + s.pad_h, s.stride_h);
    int64_t ox0 = ceil_div(ix + s.pad_w - (s.kw - 1) * s.dil_w, s.stride_w), ox1 = floor_div(ix + s.pad_w, s.stride_w);
    oy0 = oy0 < 0 ? 0 : oy0;
    ox0 = ox0 < 0 ? 0 : ox0;
    oy1 = oy1 >= s.out_h ? s.out_h - 1 : oy1;
    ox1 = ox1 >= s.out_w ? s.out_w - 1 : ox1;
    A acc = A(0);
    int64_t base = plane_base(s, in, s.out_h, s.out_w, s.h, s.w);
    for (int64_t oy = oy0; oy <= oy1; ++oy)
      for (int64_t ox = ox0; ox <= ox1; ++ox) {
        int64_t o = base + (oy * s.out_w + ox) * in.pixel;
        if (idx[o] == flat) acc += A(gy[o]);
      }
    gx[i] = T(acc);
  }
};

HT_HD inline int64_t adaptive_start(int64_t o, int64_t in, int64_t out) { return (o * in) / out; }
HT_HD inline int64_t adaptive_end(int64_t o, int64_t in, int64_t out) { return ((o + 1) * in + out - 1) / out; }

template <class T>
struct AdaptiveAvgFwdBody {
  Pool2dShape s;
  const T* x; T* y;
  HT_HD void operator()(int64_t i) const {
    using A = opmath_t<T>;
    PlaneAt o = plane_at(s, i, s.out_h, s.out_w);
    int64_t h0 = adaptive_start(o.row, s.h, s.out_h), h1 = adaptive_end(o.row, s.h, s.out_h);
    int64_t w0 = adaptive_start(o.col, s.w, s.out_w), w1 = adaptive_end(o.col, s.w, s.out_w);
    const T* plane = x + plane_base(s, o, s.h, s.w, s.out_h, s.out_w);
    A acc = A(0);
    for (int64_t iy = h0; iy < h1; ++iy)
      for (int64_t ix = w0; ix < w1; ++ix) acc += A(plane[(iy * s.w + ix) * o.pixel]);
    y[i] = T(acc / A((h1 - h0) * (w1 - w0)));
  }
};

template <class T>
struct AdaptiveAvgBwdBody {
  Pool2dShape s;
  const T* gy; T* gx;
  HT_HD void operator()(int64_t i) const {
    using A = opmath_t<T>;
    PlaneAt in = plane_at(s, i, s.h, s.w);
    int64_t iy = in.row, ix = in.col;
    int64_t base = plane_base(s, in, s.out_h, s.out_w, s.h, s.w);
    if (s.out_h == 1 && s.out_w == 1) {  // global average pooling: every input shares the one output
      gx[i] = T(A(gy[base]) / A(s.h * s.w));
      return;
    }
    // the output cells whose range can hold iy lie within one of floor(iy*oh/h)
    int64_t oy0 = (iy * s.out_h) / s.h - 1, oy1 = ((iy + 1) * s.out_h) / s.h + 1;
    int64_t ox0 = (ix * s.out_w) / s.w - 1, ox1 = ((ix + 1) * s.out_w) / s.w + 1;
    A acc = A(0);
    for (int64_t oy = oy0 < 0 ? 0 : oy0; oy <= oy1 && oy < s.out_h; ++oy) {
      int64_t h0 = adaptive_start(oy, s.h, s.out_h), h1 = adaptive_end(oy, s.h, s.out_h);
      if (iy < h0 || iy >= h1) continue;
      for (int64_t ox = ox0 < 0 ? 0 : ox0; ox <= ox1 && ox < s.out_w; ++ox) {
        int64_t w0 = adaptive_start(ox, s.w, s.out_w), w1 = adaptive_end(ox, s.w, s.out_w);
        if (ix < w0 || ix >= w1) continue;
        acc += A(gy[base + (oy * s.out_w + ox) * in.pixel]) / A((h1 - h0) * (w1 - w0));
      }
    }
    gx[i] = T(acc);
  }
};

// Batch-norm bodies are per element with the channel given, at(i, ch), so that each executor can walk
// [n, c, hw] its own way (the CPU by rows of one channel, CUDA by flat index): see run_channels. T is the
// activations' dtype, P the per-channel parameters' (T, or float for 16-bit T).

// y = (x - mean[c]) * invstd[c] * weight[c] + bias[c] over [n, c, hw]; weight / bias may be null. At inference
// the same pass may add a residual (like x; may be null) and apply ReLU: in opmath, so that for float32 the
// result equals batch norm, add and relu run one after another, bit for bit.
template <class T, class P>
struct BnApplyBody {
  using A = opmath_t<T>;
  const T* x; const A* mean; const A* invstd; const P* weight; const P* bias; T* y;
  const T* residual = nullptr;
  bool relu = false;
  HT_HD void at(int64_t i, int64_t ch) const {
    A v = (A(x[i]) - mean[ch]) * invstd[ch];
    if (weight) v *= A(weight[ch]);
    if (bias) v += A(bias[ch]);
    if (residual) v += A(residual[i]);
    if (relu) v = Relu{}(v);
    y[i] = T(v);
  }
};

// The input gradient of batch norm. Training: gx = w*invstd*(gy - sum_gy/m - xhat*sum_gy_xhat/m), from the
// per-channel sums; eval: gx = w*invstd*gy.
template <class T, class P>
struct BnBackwardBody {
  using A = opmath_t<T>;
  A inv_m;
  bool train;
  const T* x; const T* gy; const A* mean; const A* invstd; const P* weight;
  const A* sum_gy; const A* sum_gy_xhat;
  T* gx;
  HT_HD void at(int64_t i, int64_t ch) const {
    A a = invstd[ch] * (weight ? A(weight[ch]) : A(1));
    A g = A(gy[i]);
    if (train) {
      A xhat = (A(x[i]) - mean[ch]) * invstd[ch];
      g = g - sum_gy[ch] * inv_m - xhat * sum_gy_xhat[ch] * inv_m;
    }
    gx[i] = T(a * g);
  }
};

// A per-channel body over [n, c, hw] (or [n, hw, c] when channels_last) as a flat map.
template <class Body>
struct FlatChannels {
  Body body;
  int64_t c, hw;
  bool channels_last = false;
  HT_HD void operator()(int64_t i) const { body.at(i, channels_last ? i % c : (i / hw) % c); }
};

// Calls f(TypeTag<T>, TypeTag<P>) for batch norm's activation dtype T (x's) and parameter dtype P: the dtype of
// the per-channel vectors given (all must share it), T when none is; P is T or, for 16-bit T, float.
template <class F>
void visit_batch_norm(DType x, std::initializer_list<const RawView*> params, const char* op, F&& f) {
  DType p = x;
  bool first = true;
  for (const RawView* v : params) {
    if (!v) continue;
    HT_CHECK(first || v->dtype == p, "[", op, "] expected weight, bias and running statistics of one dtype, got ",
             dtype_name(p), " and ", dtype_name(v->dtype));
    p = v->dtype;
    first = false;
  }
  visit_floating(x, op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (p == x) return f(tag, tag);
    HT_CHECK(p == kFloat32 && (x == kFloat16 || x == kBFloat16), "[", op, "] expected weight, bias and running "
             "statistics as ", dtype_name(x), " (or float32 for a 16-bit input), got ", dtype_name(p));
    if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) f(tag, TypeTag<float>{});
  });
}

// The map parts of the nn kernels for an executor E, shared by the CPU and CUDA backends. E::run(n, body) runs
// body(i) for i < n; E::run_channels(s, body) runs body.at(i, channel) over [s.n, s.c, s.hw].
template <class E>
struct NnMaps {
  static void max_pool2d_forward(const Pool2dShape& s, const RawView& x, const RawView& y, const RawView* idx) {
    visit_floating(x.dtype, "max_pool2d", [&](auto tag) {
      using T = typename decltype(tag)::type;
      E::run(s.planes * s.out_h * s.out_w, MaxPoolFwdBody<T>{s, static_cast<const T*>(x.data), static_cast<T*>(y.data),
                                                             idx ? static_cast<int64_t*>(idx->data) : nullptr});
    });
  }
  static void max_pool2d_backward(const Pool2dShape& s, const RawView& gy, const RawView& idx, const RawView& gx) {
    visit_floating(gy.dtype, "max_pool2d_backward", [&](auto tag) {
      using T = typename decltype(tag)::type;
      E::run(s.planes * s.h * s.w, MaxPoolBwdBody<T>{s, static_cast<const T*>(gy.data),
                                                     static_cast<const int64_t*>(idx.data), static_cast<T*>(gx.data)});
    });
  }
  static void adaptive_avg_pool2d_forward(const Pool2dShape& s, const RawView& x, const RawView& y) {
    visit_floating(x.dtype, "adaptive_avg_pool2d", [&](auto tag) {
      using T = typename decltype(tag)::type;
      E::run(s.planes * s.out_h * s.out_w,
             AdaptiveAvgFwdBody<T>{s, static_cast<const T*>(x.data), static_cast<T*>(y.data)});
    });
  }
  static void adaptive_avg_pool2d_backward(const Pool2dShape& s, const RawView& gy, const RawView& gx) {
    visit_floating(gy.dtype, "adaptive_avg_pool2d_backward", [&](auto tag) {
      using T = typename decltype(tag)::type;
      E::run(s.planes * s.h * s.w, AdaptiveAvgBwdBody<T>{s, static_cast<const T*>(gy.data), static_cast<T*>(gx.data)});
    });
  }
  // y from x and per-channel mean / invstd (opmath, in views), optional weight / bias, and the epilogue.
  static void batch_norm_apply(const BatchNormShape& s, const RawView& x, const RawView& mean, const RawView& invstd,
                               const RawView* weight, const RawView* bias, const BnEpilogue& epilogue,
                               const RawView& y) {
    visit_batch_norm(x.dtype, {weight, bias}, "batch_norm", [&](auto t, auto p) {
      using T = typename decltype(t)::type;
      using P = typename decltype(p)::type;
      using A = opmath_t<T>;
      E::run_channels(s, BnApplyBody<T, P>{static_cast<const T*>(x.data), static_cast<const A*>(mean.data),
                                           static_cast<const A*>(invstd.data), opt<P>(weight), opt<P>(bias),
                                           static_cast<T*>(y.data), opt<T>(epilogue.residual), epilogue.relu});
    });
  }
  // gx from the per-channel sums of gy and gy * xhat (opmath pointers on the views' device).
  template <class T, class P = T>
  static void batch_norm_input_grad(const BatchNormShape& s, const RawView& x, const RawView& gy, const RawView& mean,
                                    const RawView& invstd, const RawView* weight, bool train, const opmath_t<T>* sum_gy,
                                    const opmath_t<T>* sum_dot, const RawView& gx) {
    using A = opmath_t<T>;
    E::run_channels(s, BnBackwardBody<T, P>{A(1) / A(s.n * s.hw), train, static_cast<const T*>(x.data),
                                            static_cast<const T*>(gy.data), static_cast<const A*>(mean.data),
                                            static_cast<const A*>(invstd.data), opt<P>(weight), sum_gy, sum_dot,
                                            static_cast<T*>(gx.data)});
  }
  template <class T> static const T* opt(const RawView* v) { return v ? static_cast<const T*>(v->data) : nullptr; }
};

}  // namespace ht::kernels
