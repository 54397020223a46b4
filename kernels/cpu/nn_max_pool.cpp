// CPU max pooling, forward and backward, written per memory format so that the inner loop runs along memory:
// channels_last compares whole pixels (all channels at once, vectorised), NCHW walks each plane's windows with
// no index arithmetic per element. Values and indices are PyTorch's (the first maximum of a window wins, a NaN
// wins; indices are flat positions in the input plane), and the backward adds each plane's gradients in output
// order, so the results are those of the shared bodies in kernels/nn_bodies.h, which the CUDA executor runs.
// (oneDNN's pooling keeps its own workspace instead of PyTorch's int64 indices, which max_pool2d_with_indices
// returns to the user, so the CPU runs these loops.)
#include <algorithm>
#include <limits>
#include <vector>

#include "kernels/cpu/convert.h"
#include "kernels/cpu/executor.h"
#include "kernels/nn_backends.h"

namespace ht::kernels::cpu {

namespace {

// The window of output row/column `o` along one dim: its input positions start + k * dil for k in [k0, k1)
// fall inside [0, size).
struct Window {
  int64_t start, k0, k1;
};
Window window(int64_t o, int64_t stride, int64_t pad, int64_t dil, int64_t k, int64_t size) {
  Window w{o * stride - pad, 0, k};
  while (w.k0 < k && w.start + w.k0 * dil < 0) ++w.k0;
  while (w.k1 > w.k0 && w.start + (w.k1 - 1) * dil >= size) --w.k1;
  return w;
}
// The index an output starts from before any tap is compared (the shared body's choice: the first
// non-negative position of the window, which a NaN-free window always replaces).
int64_t first_position(const Window& wy, const Window& wx, int64_t dil_h, int64_t dil_w, int64_t w) {
  int64_t fy = wy.start, fx = wx.start;
  while (fy < 0) fy += dil_h;
  while (fx < 0) fx += dil_w;
  return fy * w + fx;
}

// Whether value v replaces the window's running maximum: a larger value or a NaN (PyTorch's rule).
template <class A>
inline bool takes(A v, A best) {
  return (v > best) | (v != v);
}

// channels_last: each output pixel's C maxima over its window, compared a whole pixel at a time without
// branches (random-looking activations defeat branch prediction), the running positions in a local buffer of
// Index (int32 where a plane's positions fit: the vectors then hold as many positions as values). Without idx
// (values alone) no position is kept, and the maxima are written from the running values (the input's bits:
// a 16-bit value widens and narrows exactly).
template <class T, class Index>
void max_pool_nhwc_forward(const Pool2dShape& s, const T* x, T* y, int64_t* idx) {
  using A = float_image_t<T>;
  const int64_t c = s.channels, batch = s.planes / c;
  const bool parallel = s.planes * s.out_h * s.out_w >= kParallelGrain;
#pragma omp parallel if (parallel)
  {
    std::vector<A> best_values(static_cast<size_t>(c));
    std::vector<Index> best_positions(static_cast<size_t>(c));
    std::vector<float> widened(is_16bit_float_v<T> ? size_t(c) : 0);
#pragma omp for schedule(static)
    for (int64_t row = 0; row < batch * s.out_h; ++row) {
      const int64_t n = row / s.out_h, oy = row % s.out_h;
      const T* image = x + n * s.h * s.w * c;
      const Window wy = window(oy, s.stride_h, s.pad_h, s.dil_h, s.kh, s.h);
      for (int64_t ox = 0; ox < s.out_w; ++ox) {
        const Window wx = window(ox, s.stride_w, s.pad_w, s.dil_w, s.kw, s.w);
        A* __restrict best = best_values.data();
        Index* __restrict at = best_positions.data();
        std::fill(best, best + c, -std::numeric_limits<A>::infinity());
        if (idx) std::fill(at, at + c, Index(first_position(wy, wx, s.dil_h, s.dil_w, s.w)));
        for (int64_t ky = wy.k0; ky < wy.k1; ++ky)
          for (int64_t kx = wx.k0; kx < wx.k1; ++kx) {
            const Index pos = Index((wy.start + ky * s.dil_h) * s.w + wx.start + kx * s.dil_w);
            const A* __restrict v = float_image(image + int64_t(pos) * c, widened.data(), c);
            if (!idx) {
              for (int64_t ch = 0; ch < c; ++ch) best[ch] = takes(v[ch], best[ch]) ? v[ch] : best[ch];
              continue;
            }
            for (int64_t ch = 0; ch < c; ++ch) {
              const bool take = takes(v[ch], best[ch]);
              best[ch] = take ? v[ch] : best[ch];
              at[ch] = take ? pos : at[ch];
            }
          }
        const int64_t out = (row * s.out_w + ox) * c;
        if (!idx) {
          if constexpr (is_16bit_float_v<T>)
            from_float(best, y + out, c);
          else
            std::copy(best, best + c, y + out);
          continue;
        }
        for (int64_t ch = 0; ch < c; ++ch) {
          idx[out + ch] = at[ch];
          y[out + ch] = image[int64_t(at[ch]) * c + ch];  // the input's own bits
        }
      }
    }
  }
}

// NCHW: plane by plane (16-bit planes widened first), windows walked directly.
template <class T>
void max_pool_nchw_forward(const Pool2dShape& s, const T* x, T* y, int64_t* idx) {
  using A = float_image_t<T>;
  const int64_t in_plane = s.h * s.w, out_plane = s.out_h * s.out_w;
#pragma omp parallel if (s.planes * out_plane >= kParallelGrain)
  {
    std::vector<float> widened(is_16bit_float_v<T> ? size_t(in_plane) : 0);
#pragma omp for schedule(static)
    for (int64_t p = 0; p < s.planes; ++p) {
      const T* src = x + p * in_plane;
      const A* plane = float_image(src, widened.data(), in_plane);
      int64_t* at = idx ? idx + p * out_plane : nullptr;
      T* dst = y + p * out_plane;
      for (int64_t oy = 0; oy < s.out_h; ++oy) {
        const Window wy = window(oy, s.stride_h, s.pad_h, s.dil_h, s.kh, s.h);
        for (int64_t ox = 0; ox < s.out_w; ++ox) {
          const Window wx = window(ox, s.stride_w, s.pad_w, s.dil_w, s.kw, s.w);
          int64_t best_at = first_position(wy, wx, s.dil_h, s.dil_w, s.w);
          A best = -std::numeric_limits<A>::infinity();
          for (int64_t ky = wy.k0; ky < wy.k1; ++ky) {
            const int64_t base = (wy.start + ky * s.dil_h) * s.w + wx.start;
            for (int64_t kx = wx.k0; kx < wx.k1; ++kx) {
              const int64_t pos = base + kx * s.dil_w;
              const bool take = takes(plane[pos], best);
              best = take ? plane[pos] : best;
              best_at = take ? pos : best_at;
            }
          }
          if (idx) at[oy * s.out_w + ox] = best_at;
          dst[oy * s.out_w + ox] = src[best_at];
        }
      }
    }
  }
}

// gx of one image (channels_last, `c` channels, `in_plane` pixels) or one plane (NCHW, c = 1): zero, then each
// output's gradient added at its recorded maximum, in output order. 16-bit types sum in float and round once.
template <class T>
void scatter_plane(const T* gy, const int64_t* at, int64_t outputs, int64_t in_plane, int64_t c, T* gx,
                   std::vector<float>& sums, std::vector<float>& grads) {
  if constexpr (is_16bit_float_v<T>) {
    sums.assign(size_t(in_plane * c), 0.f);
    grads.resize(size_t(outputs * c));
    to_float(gy, grads.data(), outputs * c);
    for (int64_t o = 0; o < outputs; ++o)
      for (int64_t ch = 0; ch < c; ++ch) sums[size_t(at[o * c + ch] * c + ch)] += grads[size_t(o * c + ch)];
    from_float(sums.data(), gx, in_plane * c);
  } else {
    std::fill(gx, gx + in_plane * c, T(0));
    for (int64_t o = 0; o < outputs; ++o)
      for (int64_t ch = 0; ch < c; ++ch) gx[at[o * c + ch] * c + ch] += gy[o * c + ch];
  }
}

}  // namespace

void max_pool2d_forward(const Pool2dShape& s, const RawView& x, const RawView& y, const RawView* indices) {
  visit_floating(x.dtype, "max_pool2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = static_cast<const T*>(x.data);
    T* py = static_cast<T*>(y.data);
    int64_t* idx = indices ? static_cast<int64_t*>(indices->data) : nullptr;
    if (s.channels_last && s.h * s.w <= std::numeric_limits<int32_t>::max())
      max_pool_nhwc_forward<T, int32_t>(s, px, py, idx);
    else if (s.channels_last)
      max_pool_nhwc_forward<T, int64_t>(s, px, py, idx);
    else
      max_pool_nchw_forward(s, px, py, idx);
  });
}

void max_pool2d_backward(const Pool2dShape& s, const RawView& gy, const RawView& indices, const RawView& gx) {
  visit_floating(gy.dtype, "max_pool2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* g = static_cast<const T*>(gy.data);
    const int64_t* idx = static_cast<const int64_t*>(indices.data);
    T* out = static_cast<T*>(gx.data);
    // independent units: whole images (channels_last) or planes (NCHW)
    const int64_t c = s.channels_last ? s.channels : 1;
    const int64_t units = s.planes / c, in_plane = s.h * s.w, out_plane = s.out_h * s.out_w;
#pragma omp parallel if (s.planes * in_plane >= kParallelGrain)
    {
      std::vector<float> sums, grads;
#pragma omp for schedule(static)
      for (int64_t u = 0; u < units; ++u)
        scatter_plane(g + u * out_plane * c, idx + u * out_plane * c, out_plane, in_plane, c,
                      out + u * in_plane * c, sums, grads);
    }
  });
}

}  // namespace ht::kernels::cpu
