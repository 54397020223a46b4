// CPU convolution: the whole batch is unfolded at once (im2col into [K, N*OH*OW]) so each group is one large
// OpenBLAS GEMM. 16-bit tensors are widened to float, float64 uses dgemm. Kernel taps that never touch the
// input (a 3x3 kernel with padding 1 on a 1x1 map) are dropped from K, as a direct convolution would skip them.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <vector>

#include "kernels/functors.h"
#include "kernels/nn_backends.h"

namespace ht::kernels::cpu {

namespace {

// A per-thread scratch buffer that only grows, so a training step does not page-fault fresh memory each call.
template <class A>
A* scratch(int slot, int64_t n) {
  thread_local std::vector<A> bufs[4];
  auto& b = bufs[slot];
  if (int64_t(b.size()) < n) b.resize(size_t(n));
  return b.data();
}

void gemm_rm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
             int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(m), int(n), int(k),
              1.0f, a, int(lda), b, int(ldb), beta, c, int(ldc));
}
void gemm_rm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double* a, int64_t lda, const double* b,
             int64_t ldb, double beta, double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(m), int(n), int(k),
              1.0, a, int(lda), b, int(ldb), beta, c, int(ldc));
}

// C = op(A) @ op(B) with the columns of C split across the OpenMP threads, each running a single-threaded
// GEMM. One thread pool for the whole step: OpenBLAS's own threads would compete for the cores with OpenMP's
// spinning workers between the im2col loops and the GEMMs.
template <class A>
void parallel_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const A* a, int64_t lda, const A* b,
                   int64_t ldb, A beta, A* c, int64_t ldc) {
  int threads = omp_get_max_threads();
  constexpr int64_t kMinCols = 32;
  if (threads > n / kMinCols) threads = int(std::max<int64_t>(n / kMinCols, 1));
  int blas_threads = openblas_get_num_threads();
  openblas_set_num_threads(1);
#pragma omp parallel num_threads(threads)
  {
    int t = omp_get_thread_num(), nt = omp_get_num_threads();
    int64_t chunk = (n + nt - 1) / nt;
    chunk = (chunk + 15) / 16 * 16;  // whole vector widths per thread
    int64_t j0 = std::min(n, t * chunk), j1 = std::min(n, j0 + chunk);
    if (j0 < j1) gemm_rm(ta, tb, m, j1 - j0, k, a, lda, tb ? b + j0 * ldb : b + j0, ldb, beta, c + j0, ldc);
  }
  openblas_set_num_threads(blas_threads);
}

// The unfolding of one group over images [n0, n0 + nb): rows are (channel, live tap), columns (image, output
// position). Large batches are unfolded a chunk of images at a time (see for_chunks).
struct Unfold {
  const Conv2dShape& s;
  int64_t cg, i0, i1, j0, j1;  // channels per group, live taps [i0, i1) x [j0, j1)
  int64_t n0 = 0, nb = 0;
  int64_t ki() const { return i1 - i0; }
  int64_t kj() const { return j1 - j0; }
  int64_t rows() const { return cg * ki() * kj(); }
  int64_t ohw() const { return s.out_h * s.out_w; }
  int64_t cols() const { return nb * ohw(); }
  // Output columns [lo, hi) whose input column ix = ox*stride - pad + j*dil lies inside the image.
  void ox_range(int64_t j, int64_t& lo, int64_t& hi) const {
    int64_t off = j * s.dil_w - s.pad_w;
    lo = off >= 0 ? 0 : (-off + s.stride_w - 1) / s.stride_w;
    hi = s.w - off <= 0 ? 0 : std::min(s.out_w, (s.w - off + s.stride_w - 1) / s.stride_w);
    lo = std::min(lo, hi);
  }
};

bool tap_live(int64_t k, int64_t size, int64_t out, int64_t stride, int64_t pad, int64_t dil) {
  for (int64_t o = 0; o < out; ++o) {
    int64_t v = o * stride - pad + k * dil;
    if (v >= 0 && v < size) return true;
  }
  return false;
}

Unfold make_unfold(const Conv2dShape& s) {
  Unfold u{s, s.c_in / s.groups, 0, s.kh, 0, s.kw, 0, s.n};
  while (u.i0 < u.i1 && !tap_live(u.i0, s.h, s.out_h, s.stride_h, s.pad_h, s.dil_h)) ++u.i0;
  while (u.i1 > u.i0 && !tap_live(u.i1 - 1, s.h, s.out_h, s.stride_h, s.pad_h, s.dil_h)) --u.i1;
  while (u.j0 < u.j1 && !tap_live(u.j0, s.w, s.out_w, s.stride_w, s.pad_w, s.dil_w)) ++u.j0;
  while (u.j1 > u.j0 && !tap_live(u.j1 - 1, s.w, s.out_w, s.stride_w, s.pad_w, s.dil_w)) --u.j1;
  return u;
}

template <class T, class A>
void im2col(const Unfold& u, const T* x, int64_t group, A* col) {
  const Conv2dShape& s = u.s;
  int64_t rows = u.rows(), ncols = u.cols(), ohw = u.ohw();
#pragma omp parallel for schedule(static) if (rows * ncols > 32768)
  for (int64_t r = 0; r < rows; ++r) {
    int64_t c = r / (u.ki() * u.kj()), i = u.i0 + (r / u.kj()) % u.ki(), j = u.j0 + r % u.kj();
    int64_t lo, hi;
    u.ox_range(j, lo, hi);
    int64_t xoff = j * s.dil_w - s.pad_w;
    A* dst = col + r * ncols;
    for (int64_t n = 0; n < u.nb; ++n) {
      const T* plane = x + (((u.n0 + n) * s.c_in) + group * u.cg + c) * s.h * s.w;
      for (int64_t oy = 0; oy < s.out_h; ++oy) {
        A* d = dst + n * ohw + oy * s.out_w;
        int64_t iy = oy * s.stride_h - s.pad_h + i * s.dil_h;
        if (iy < 0 || iy >= s.h || lo >= hi) {
          std::fill(d, d + s.out_w, A(0));
          continue;
        }
        const T* src = plane + iy * s.w + xoff;
        std::fill(d, d + lo, A(0));
        if (s.stride_w == 1) {
          for (int64_t ox = lo; ox < hi; ++ox) d[ox] = A(src[ox]);
        } else {
          for (int64_t ox = lo; ox < hi; ++ox) d[ox] = A(src[ox * s.stride_w]);
        }
        std::fill(d + hi, d + s.out_w, A(0));
      }
    }
  }
}

// Adds row `src` (output columns [lo, hi)) into `dst` at input columns ox * stride.
template <class A>
inline void add_row(A* dst, const A* src, int64_t lo, int64_t hi, int64_t stride) {
  if (stride == 1) {
    for (int64_t ox = lo; ox < hi; ++ox) dst[ox] += src[ox];
  } else {
    for (int64_t ox = lo; ox < hi; ++ox) dst[ox * stride] += src[ox];
  }
}

// The gx planes of one group from the folded columns (each plane is written by one thread: no races). Images
// vary fastest so that each tap row of gcol is read as one sequential stream. float accumulates in place;
// 16-bit types through a float plane, rounded once.
template <class T, class A>
void col2im(const Unfold& u, const A* gcol, int64_t group, T* gx) {
  const Conv2dShape& s = u.s;
  int64_t ncols = u.cols(), ohw = u.ohw(), hw = s.h * s.w;
#pragma omp parallel for schedule(static) if (u.nb * u.cg * hw > 32768)
  for (int64_t pc = 0; pc < u.nb * u.cg; ++pc) {
    int64_t c = pc / u.nb, n = pc % u.nb;
    T* plane = gx + (((u.n0 + n) * s.c_in) + group * u.cg + c) * hw;
    A* acc;
    if constexpr (std::is_same_v<T, A>) acc = plane;
    else acc = scratch<A>(3, hw);
    std::fill(acc, acc + hw, A(0));
    for (int64_t i = u.i0; i < u.i1; ++i)
      for (int64_t j = u.j0; j < u.j1; ++j) {
        int64_t r = (c * u.ki() + (i - u.i0)) * u.kj() + (j - u.j0);
        const A* src = gcol + r * ncols + n * ohw;
        int64_t lo, hi;
        u.ox_range(j, lo, hi);
        int64_t xoff = j * s.dil_w - s.pad_w;
        for (int64_t oy = 0; oy < s.out_h; ++oy) {
          int64_t iy = oy * s.stride_h - s.pad_h + i * s.dil_h;
          if (iy >= 0 && iy < s.h) add_row(acc + iy * s.w + xoff, src + oy * s.out_w, lo, hi, s.stride_w);
        }
      }
    if constexpr (!std::is_same_v<T, A>)
      for (int64_t k = 0; k < hw; ++k) plane[k] = T(acc[k]);
  }
}

// The live taps of one group's weight as a [cout_g, rows] matrix in A (no copy when it already is one).
template <class T, class A>
const A* group_weight(const Unfold& u, const T* w, int64_t group, int slot) {
  const Conv2dShape& s = u.s;
  int64_t coutg = s.c_out / s.groups, full = u.cg * s.kh * s.kw;
  const T* wg = w + group * coutg * full;
  if constexpr (std::is_same_v<T, A>) {
    if (u.ki() == s.kh && u.kj() == s.kw) return wg;
  }
  A* out = scratch<A>(slot, coutg * u.rows());
  for (int64_t o = 0; o < coutg; ++o)
    for (int64_t c = 0; c < u.cg; ++c)
      for (int64_t i = u.i0; i < u.i1; ++i)
        for (int64_t j = u.j0; j < u.j1; ++j)
          *out++ = A(wg[((o * u.cg + c) * s.kh + i) * s.kw + j]);
  return out - coutg * u.rows();
}

// gy of one group as [cout_g, N*OH*OW] (channel-major, the GEMM's layout).
template <class T, class A>
A* group_grad_out(const Unfold& u, const T* gy, int64_t group) {
  const Conv2dShape& s = u.s;
  int64_t coutg = s.c_out / s.groups, ohw = u.ohw();
  A* out = scratch<A>(2, coutg * u.cols());
#pragma omp parallel for schedule(static) if (coutg * u.cols() > 32768)
  for (int64_t o = 0; o < coutg; ++o)
    for (int64_t n = 0; n < u.nb; ++n) {
      const T* src = gy + ((u.n0 + n) * s.c_out + group * coutg + o) * ohw;
      A* dst = out + o * u.cols() + n * ohw;
      for (int64_t p = 0; p < ohw; ++p) dst[p] = A(src[p]);
    }
  return out;
}

// Calls f(u) for each chunk of images, sized so that the unfolded columns stay near kColumnBudget bytes.
template <class A, class F>
void for_chunks(Unfold u, F&& f) {
  constexpr int64_t kColumnBudget = int64_t(64) << 20;
  int64_t per_image = std::max<int64_t>(std::max(u.rows(), u.s.c_out) * u.ohw() * int64_t(sizeof(A)), 1);
  int64_t chunk = std::clamp<int64_t>(kColumnBudget / per_image, 1, std::max<int64_t>(u.s.n, 1));
  for (u.n0 = 0; u.n0 < u.s.n; u.n0 += chunk) {
    u.nb = std::min(chunk, u.s.n - u.n0);
    f(u);
  }
}

template <class T, class A>
void forward(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y) {
  int64_t coutg = s.c_out / s.groups;
  for (int64_t g = 0; g < s.groups; ++g) {
    for_chunks<A>(make_unfold(s), [&](const Unfold& u) {
      int64_t ncols = u.cols(), ohw = u.ohw();
      A* out = scratch<A>(1, coutg * ncols);
      if (u.rows() == 0) {
        std::fill(out, out + coutg * ncols, A(0));
      } else {
        A* col = scratch<A>(0, u.rows() * ncols);
        im2col(u, x, g, col);
        parallel_gemm(false, false, coutg, ncols, u.rows(), group_weight<T, A>(u, w, g, 2), u.rows(), col, ncols, A(0),
                      out, ncols);
      }
#pragma omp parallel for schedule(static) if (coutg * ncols > 32768)
      for (int64_t o = 0; o < coutg; ++o) {
        A b = bias ? A(bias[g * coutg + o]) : A(0);
        for (int64_t n = 0; n < u.nb; ++n) {
          const A* src = out + o * ncols + n * ohw;
          T* dst = y + ((u.n0 + n) * s.c_out + g * coutg + o) * ohw;
          for (int64_t p = 0; p < ohw; ++p) dst[p] = T(src[p] + b);
        }
      }
    });
  }
}

template <class T, class A>
void backward_data(const Conv2dShape& s, const T* gy, const T* w, T* gx) {
  int64_t coutg = s.c_out / s.groups;
  for (int64_t g = 0; g < s.groups; ++g) {
    for_chunks<A>(make_unfold(s), [&](const Unfold& u) {
      int64_t ncols = u.cols();
      A* gcol = scratch<A>(0, u.rows() * ncols);
      if (u.rows() > 0) {
        A* gyt = group_grad_out<T, A>(u, gy, g);
        parallel_gemm(true, false, u.rows(), ncols, coutg, group_weight<T, A>(u, w, g, 1), u.rows(), gyt, ncols, A(0),
                      gcol, ncols);
      }
      col2im(u, gcol, g, gx);
    });
  }
}

template <class T, class A>
void backward_weight(const Conv2dShape& s, const T* x, const T* gy, T* gw) {
  Unfold full = make_unfold(s);
  int64_t coutg = s.c_out / s.groups, rows = full.rows();
  std::fill(gw, gw + s.c_out * full.cg * s.kh * s.kw, T(A(0)));
  if (rows == 0) return;
  for (int64_t g = 0; g < s.groups; ++g) {
    A* out = scratch<A>(1, coutg * rows);
    for_chunks<A>(full, [&](const Unfold& u) {  // sums over the chunks in `out`
      int64_t ncols = u.cols();
      A* col = scratch<A>(0, rows * ncols);
      im2col(u, x, g, col);
      A* gyt = group_grad_out<T, A>(u, gy, g);
      parallel_gemm(false, true, coutg, rows, ncols, gyt, ncols, col, ncols, A(u.n0 == 0 ? 0 : 1), out, rows);
    });
    T* gwg = gw + g * coutg * full.cg * s.kh * s.kw;
    for (int64_t o = 0; o < coutg; ++o)
      for (int64_t c = 0; c < full.cg; ++c)
        for (int64_t i = full.i0; i < full.i1; ++i)
          for (int64_t j = full.j0; j < full.j1; ++j)
            gwg[((o * full.cg + c) * s.kh + i) * s.kw + j] = T(*out++);
  }
}

template <class F>
void visit_conv(DType t, F&& f) {
  visit_floating(t, "conv2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    f(tag, TypeTag<opmath_t<T>>{});
  });
}

}  // namespace

void conv2d_forward(const Conv2dShape& s, const RawView& x, const RawView& w, const RawView* bias, const RawView& y) {
  visit_conv(x.dtype, [&](auto t, auto a) {
    using T = typename decltype(t)::type;
    using A = typename decltype(a)::type;
    forward<T, A>(s, static_cast<const T*>(x.data), static_cast<const T*>(w.data),
                  bias ? static_cast<const T*>(bias->data) : nullptr, static_cast<T*>(y.data));
  });
}

void conv2d_backward_data(const Conv2dShape& s, const RawView& gy, const RawView& w, const RawView& gx) {
  visit_conv(gy.dtype, [&](auto t, auto a) {
    using T = typename decltype(t)::type;
    using A = typename decltype(a)::type;
    backward_data<T, A>(s, static_cast<const T*>(gy.data), static_cast<const T*>(w.data), static_cast<T*>(gx.data));
  });
}

void conv2d_backward_weight(const Conv2dShape& s, const RawView& x, const RawView& gy, const RawView& gw) {
  visit_conv(x.dtype, [&](auto t, auto a) {
    using T = typename decltype(t)::type;
    using A = typename decltype(a)::type;
    backward_weight<T, A>(s, static_cast<const T*>(x.data), static_cast<const T*>(gy.data), static_cast<T*>(gw.data));
  });
}

}  // namespace ht::kernels::cpu
