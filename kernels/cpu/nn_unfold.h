// The unfolding (im2col / col2im) behind the CPU convolution. A convolution is cut into classes of output
// positions that see the same window of kernel taps (on small maps the border positions see only part of the
// kernel), so the GEMMs skip the taps that would only multiply padding, as a direct convolution does; when
// that saves little, one class covers every position with the union of the windows.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "kernels/nn_kernels.h"

namespace ht::kernels::cpu::unfold {

// A per-thread scratch buffer that only grows, so a training step does not page-fault fresh memory each call.
// Buffers start on a 64-byte boundary (whole cache lines, aligned vector loads); their contents are not kept.
template <class A>
A* scratch(int slot, int64_t n) {
  struct Buffer {
    std::unique_ptr<A[], void (*)(void*)> data{nullptr, std::free};
    int64_t size = 0;
  };
  thread_local Buffer bufs[6];
  Buffer& b = bufs[slot];
  if (b.size < n) {
    size_t bytes = (size_t(n) * sizeof(A) + 63) / 64 * 64;
    b.data.reset(static_cast<A*>(std::aligned_alloc(64, bytes)));
    HT_CHECK(b.data != nullptr, "[conv2d] out of memory allocating ", bytes, " bytes of scratch");
    b.size = n;
  }
  return b.data.get();
}

// One class of one group, over images [n0, n0 + nb): rows are (channel, tap), columns (position, image).
struct Unfold {
  const Conv2dShape* s;
  int64_t cg;                  // channels per group
  int64_t i0, i1, j0, j1;      // taps [i0, i1) x [j0, j1)
  int64_t y0, y1, x0, x1;      // output positions [y0, y1) x [x0, x1)
  int64_t n0 = 0, nb = 0;
  int64_t ki() const { return i1 - i0; }
  int64_t kj() const { return j1 - j0; }
  int64_t rows() const { return cg * ki() * kj(); }
  int64_t ow() const { return x1 - x0; }
  int64_t ohw() const { return (y1 - y0) * ow(); }
  int64_t cols() const { return nb * ohw(); }
};

// Runs of output positions along one dimension that see the same window [k0, k1) of live taps.
struct Segment {
  int64_t o0, o1, k0, k1;
};
inline std::vector<Segment> segments(int64_t size, int64_t out, int64_t k, int64_t stride, int64_t pad, int64_t dil) {
  std::vector<Segment> v;
  for (int64_t o = 0; o < out; ++o) {
    int64_t k0 = k, k1 = 0;
    for (int64_t t = 0; t < k; ++t) {
      int64_t in = o * stride - pad + t * dil;
      if (in >= 0 && in < size) k0 = std::min(k0, t), k1 = t + 1;
    }
    if (k1 == 0) k0 = 0;
    if (!v.empty() && v.back().k0 == k0 && v.back().k1 == k1) v.back().o1 = o + 1;
    else v.push_back({o, o + 1, k0, k1});
  }
  return v;
}

// The classes of a convolution; split only when that drops over a quarter of the multiply-adds.
inline std::vector<Unfold> plan(const Conv2dShape& s) {
  auto ys = segments(s.h, s.out_h, s.kh, s.stride_h, s.pad_h, s.dil_h);
  auto xs = segments(s.w, s.out_w, s.kw, s.stride_w, s.pad_w, s.dil_w);
  int64_t cg = s.c_in / s.groups;
  auto hull = [](const std::vector<Segment>& v, int64_t& k0, int64_t& k1) {
    k0 = INT64_MAX, k1 = 0;
    for (const auto& g : v)
      if (g.k1 > g.k0) k0 = std::min(k0, g.k0), k1 = std::max(k1, g.k1);
    if (k1 == 0) k0 = 0;
  };
  int64_t yk0, yk1, xk0, xk1;
  hull(ys, yk0, yk1);
  hull(xs, xk0, xk1);
  double useful = 0, whole = double(s.out_h * s.out_w) * double((yk1 - yk0) * (xk1 - xk0));
  for (const auto& y : ys)
    for (const auto& x : xs) useful += double((y.o1 - y.o0) * (x.o1 - x.o0)) * double((y.k1 - y.k0) * (x.k1 - x.k0));
  std::vector<Unfold> out;
  if (ys.size() * xs.size() == 1 || useful >= 0.75 * whole) {
    out.push_back({&s, cg, yk0, yk1, xk0, xk1, 0, s.out_h, 0, s.out_w, 0, s.n});
    return out;
  }
  for (const auto& y : ys)
    for (const auto& x : xs) out.push_back({&s, cg, y.k0, y.k1, x.k0, x.k1, y.o0, y.o1, x.o0, x.o1, 0, s.n});
  return out;
}

// The unfolding works on "position-major" copies of a chunk of images: t[c][k][n] for channel c, position k of
// the plane, image n. A tap then reads one contiguous run of nb values, whatever the map size.

// dst[c][k][n] = src[n0 + n][c0 + c][k] for an NCHW src with `channels` channels and planes of hw.
template <class T, class A>
void to_position_major(const T* src, int64_t n0, int64_t nb, int64_t channels, int64_t c0, int64_t nc, int64_t hw,
                       A* dst) {
#pragma omp parallel for schedule(static) if (nc * hw * nb > 32768)
  for (int64_t c = 0; c < nc; ++c)
    for (int64_t n = 0; n < nb; ++n) {
      const T* sp = src + ((n0 + n) * channels + c0 + c) * hw;
      A* dp = dst + c * hw * nb + n;
      for (int64_t k = 0; k < hw; ++k) dp[k * nb] = A(sp[k]);
    }
}

// dst[n0 + n][c0 + c][k] = src[c][k][n] (+ bias[c0 + c] when given): the inverse of to_position_major.
template <class T, class A>
void from_position_major(const A* src, int64_t n0, int64_t nb, int64_t channels, int64_t c0, int64_t nc, int64_t hw,
                         T* dst, const T* bias = nullptr) {
#pragma omp parallel for schedule(static) if (nc * hw * nb > 32768)
  for (int64_t c = 0; c < nc; ++c) {
    A b = bias ? A(bias[c0 + c]) : A(0);
    for (int64_t n = 0; n < nb; ++n) {
      T* dp = dst + ((n0 + n) * channels + c0 + c) * hw;
      const A* sp = src + c * hw * nb + n;
      for (int64_t k = 0; k < hw; ++k) dp[k] = T(sp[k * nb] + b);
    }
  }
}

// Calls f(column, k) for each output position of the class: its column block (of nb) and its flat position.
template <class F>
inline void for_positions(const Unfold& u, F&& f) {
  int64_t p = 0;
  for (int64_t oy = u.y0; oy < u.y1; ++oy)
    for (int64_t ox = u.x0; ox < u.x1; ++ox) f(p++ * u.nb, oy, ox);
}

// col[r][p * nb + n] from xt (position-major input of the group): rows (channel, tap), zero in the padding.
template <class A>
void im2col(const Unfold& u, const A* xt, A* col) {
  const Conv2dShape& s = *u.s;
  int64_t rows = u.rows(), ncols = u.cols(), hw = s.h * s.w, nb = u.nb;
#pragma omp parallel for schedule(static) if (rows * ncols > 32768)
  for (int64_t r = 0; r < rows; ++r) {
    int64_t c = r / (u.ki() * u.kj()), i = u.i0 + (r / u.kj()) % u.ki(), j = u.j0 + r % u.kj();
    A* dst = col + r * ncols;
    const A* plane = xt + c * hw * nb;
    for_positions(u, [&](int64_t at, int64_t oy, int64_t ox) {
      int64_t iy = oy * s.stride_h - s.pad_h + i * s.dil_h, ix = ox * s.stride_w - s.pad_w + j * s.dil_w;
      if (iy >= 0 && iy < s.h && ix >= 0 && ix < s.w) std::copy_n(plane + (iy * s.w + ix) * nb, nb, dst + at);
      else std::fill_n(dst + at, nb, A(0));
    });
  }
}

// gxt (position-major input gradient of the group) += the folded columns of one class. Each thread owns whole
// channels, so nothing races.
template <class A>
void col2im(const Unfold& u, const A* gcol, A* gxt) {
  const Conv2dShape& s = *u.s;
  int64_t ncols = u.cols(), hw = s.h * s.w, nb = u.nb;
#pragma omp parallel for schedule(static) if (u.rows() * ncols > 32768)
  for (int64_t c = 0; c < u.cg; ++c) {
    A* plane = gxt + c * hw * nb;
    for (int64_t i = u.i0; i < u.i1; ++i)
      for (int64_t j = u.j0; j < u.j1; ++j) {
        const A* src = gcol + ((c * u.ki() + (i - u.i0)) * u.kj() + (j - u.j0)) * ncols;
        for_positions(u, [&](int64_t at, int64_t oy, int64_t ox) {
          int64_t iy = oy * s.stride_h - s.pad_h + i * s.dil_h, ix = ox * s.stride_w - s.pad_w + j * s.dil_w;
          if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) return;
          A* d = plane + (iy * s.w + ix) * nb;
          const A* g = src + at;
          for (int64_t n = 0; n < nb; ++n) d[n] += g[n];
        });
      }
  }
}

}  // namespace ht::kernels::cpu::unfold
