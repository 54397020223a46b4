// CPU convolution: a batch (or a chunk of images of it) is unfolded at once (kernels/cpu/nn_unfold.h) so each
// group and class of output positions is one large GEMM, split across the OpenMP threads. The GEMMs work on
// position-major copies ([channel][position][image]) of inputs and outputs. 16-bit tensors are widened to
// float, float64 uses dgemm.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu/nn_unfold.h"
#include "kernels/functors.h"
#include "kernels/nn_backends.h"

namespace ht::kernels::cpu {

namespace {

using unfold::scratch;
using unfold::Unfold;

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

// OpenBLAS's own threads stay idle while a convolution runs: all its parallelism is OpenMP's (one pool of
// threads; two would compete for the cores, each spinning while the other works).
struct SingleThreadedBlas {
  int previous = openblas_get_num_threads();
  SingleThreadedBlas() { openblas_set_num_threads(1); }
  ~SingleThreadedBlas() { openblas_set_num_threads(previous); }
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;
};

// C = op(A) @ op(B), the columns of C split across the OpenMP threads (one thread inside a parallel region).
template <class A>
void parallel_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const A* a, int64_t lda, const A* b,
                   int64_t ldb, A beta, A* c, int64_t ldc) {
  constexpr int64_t kMinCols = 32;
  int threads = omp_in_parallel() ? 1 : int(std::clamp<int64_t>(n / kMinCols, 1, omp_get_max_threads()));
  if (threads == 1) return gemm_rm(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
#pragma omp parallel num_threads(threads)
  {
    int t = omp_get_thread_num(), nt = omp_get_num_threads();
    int64_t chunk = (n + nt - 1) / nt;
    chunk = (chunk + 15) / 16 * 16;  // whole vector widths per thread
    int64_t j0 = std::min(n, t * chunk), j1 = std::min(n, j0 + chunk);
    if (j0 < j1) gemm_rm(ta, tb, m, j1 - j0, k, a, lda, tb ? b + j0 * ldb : b + j0, ldb, beta, c + j0, ldc);
  }
}

// Each class's taps of one group's weight as a [cout_g, rows] matrix in A, made once per call on the calling
// thread and shared by the chunks (no copy when the weight already is that matrix).
template <class T, class A>
std::vector<const A*> class_weights(const std::vector<Unfold>& plan, const T* w, int64_t group) {
  const Conv2dShape& s = *plan[0].s;
  int64_t coutg = s.c_out / s.groups, cg = s.c_in / s.groups;
  const T* wg = w + group * coutg * cg * s.kh * s.kw;
  int64_t total = 0;
  for (const Unfold& u : plan) total += coutg * u.rows();
  A* buf = scratch<A>(4, total);
  std::vector<const A*> out;
  for (const Unfold& u : plan) {
    if constexpr (std::is_same_v<T, A>) {
      if (u.ki() == s.kh && u.kj() == s.kw) {
        out.push_back(wg);
        continue;
      }
    }
    out.push_back(buf);
    for (int64_t k = 0; k < coutg * cg; ++k)
      for (int64_t i = u.i0; i < u.i1; ++i)
        for (int64_t j = u.j0; j < u.j1; ++j) *buf++ = A(wg[(k * s.kh + i) * s.kw + j]);
  }
  return out;
}

// Moves a class's columns between a position-major output-sized buffer [cout_g][position][nb] and the GEMM's
// [cout_g][class position * nb]. A plan of one class needs no move: the two layouts are the same.
template <class A>
void exchange(const Unfold& u, A* full, A* m, bool to_matrix) {
  const Conv2dShape& s = *u.s;
  int64_t coutg = s.c_out / s.groups, ncols = u.cols(), plane = s.out_h * s.out_w, nb = u.nb;
#pragma omp parallel for schedule(static) if (coutg * ncols > 32768)
  for (int64_t o = 0; o < coutg; ++o)
    unfold::for_positions(u, [&](int64_t at, int64_t oy, int64_t ox) {
      A* f = full + (o * plane + oy * s.out_w + ox) * nb;
      A* mm = m + o * ncols + at;
      if (to_matrix) std::copy_n(f, nb, mm);
      else std::copy_n(mm, nb, f);
    });
}

// How a batch is cut into chunks of images, each kept near kColumnBudget bytes of columns. With enough images
// the chunks run concurrently, one thread each through the whole pipeline (transpose, im2col, GEMM, scatter):
// no barrier until the end, which matters on a busy machine where a waiting thread spins. Otherwise the chunks
// run in turn and each step is parallel inside.
struct Chunks {
  int64_t size = 1, count = 0;
  bool concurrent = false;
};

template <class A>
Chunks chunks_for(const Conv2dShape& s) {
  constexpr int64_t kColumnBudget = int64_t(64) << 20, kMinWork = int64_t(1) << 16;
  int64_t cg = s.c_in / s.groups, coutg = s.c_out / s.groups, ohw = s.out_h * s.out_w;
  int64_t per_image = ((cg * s.kh * s.kw + 2 * coutg) * ohw + cg * s.h * s.w) * int64_t(sizeof(A));
  Chunks c;
  c.size = std::clamp<int64_t>(kColumnBudget / std::max<int64_t>(per_image, 1), 1, std::max<int64_t>(s.n, 1));
  int64_t threads = omp_get_max_threads();
  c.concurrent = threads > 1 && !omp_in_parallel() && s.n >= threads &&
                 (s.n / threads) * ohw * cg * s.kh * s.kw >= kMinWork;
  if (c.concurrent) c.size = std::min(c.size, (s.n + threads - 1) / threads);
  c.count = (s.n + c.size - 1) / c.size;
  return c;
}

// Calls f(k, n0, nb) for chunk k of images [n0, n0 + nb). Results must not depend on which thread runs a chunk.
template <class F>
void for_chunks(const Conv2dShape& s, const Chunks& c, F&& f) {
  if (c.concurrent) {
#pragma omp parallel for schedule(static, 1)
    for (int64_t k = 0; k < c.count; ++k) f(k, k * c.size, std::min(c.size, s.n - k * c.size));
  } else {
    for (int64_t k = 0; k < c.count; ++k) f(k, k * c.size, std::min(c.size, s.n - k * c.size));
  }
}

std::vector<Unfold> plan_for(const Conv2dShape& s, int64_t n0, int64_t nb) {
  std::vector<Unfold> p = unfold::plan(s);
  for (auto& u : p) u.n0 = n0, u.nb = nb;
  return p;
}

template <class T, class A>
void forward(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y) {
  SingleThreadedBlas blas;
  int64_t cg = s.c_in / s.groups, coutg = s.c_out / s.groups, hw = s.h * s.w, ohw = s.out_h * s.out_w;
  for (int64_t g = 0; g < s.groups; ++g) {
    auto weights = class_weights<T, A>(unfold::plan(s), w, g);
    for_chunks(s, chunks_for<A>(s), [&](int64_t, int64_t n0, int64_t nb) {
      A* xt = scratch<A>(2, cg * hw * nb);
      unfold::to_position_major(x, n0, nb, s.c_in, g * cg, cg, hw, xt);
      A* yt = scratch<A>(3, coutg * ohw * nb);
      auto plan = plan_for(s, n0, nb);
      for (size_t ci = 0; ci < plan.size(); ++ci) {
        const Unfold& u = plan[ci];
        int64_t ncols = u.cols();
        A* out = plan.size() == 1 ? yt : scratch<A>(1, coutg * ncols);
        if (u.rows() == 0) {
          std::fill(out, out + coutg * ncols, A(0));
        } else {
          A* col = scratch<A>(0, u.rows() * ncols);
          unfold::im2col(u, xt, col);
          parallel_gemm(false, false, coutg, ncols, u.rows(), weights[ci], u.rows(), col, ncols, A(0), out, ncols);
        }
        if (plan.size() > 1) exchange(u, yt, out, false);
      }
      unfold::from_position_major(yt, n0, nb, s.c_out, g * coutg, coutg, ohw, y, bias);
    });
  }
}

template <class T, class A>
void backward_data(const Conv2dShape& s, const T* gy, const T* w, T* gx) {
  SingleThreadedBlas blas;
  int64_t cg = s.c_in / s.groups, coutg = s.c_out / s.groups, hw = s.h * s.w, ohw = s.out_h * s.out_w;
  for (int64_t g = 0; g < s.groups; ++g) {
    auto weights = class_weights<T, A>(unfold::plan(s), w, g);
    for_chunks(s, chunks_for<A>(s), [&](int64_t, int64_t n0, int64_t nb) {
      A* gyt = scratch<A>(2, coutg * ohw * nb);
      unfold::to_position_major(gy, n0, nb, s.c_out, g * coutg, coutg, ohw, gyt);
      A* gxt = scratch<A>(3, cg * hw * nb);
      std::fill(gxt, gxt + cg * hw * nb, A(0));
      auto plan = plan_for(s, n0, nb);
      for (size_t ci = 0; ci < plan.size(); ++ci) {
        const Unfold& u = plan[ci];
        if (u.rows() == 0) continue;
        int64_t ncols = u.cols();
        A* m = gyt;
        if (plan.size() > 1) exchange(u, gyt, m = scratch<A>(1, coutg * ncols), true);
        A* gcol = scratch<A>(0, u.rows() * ncols);
        parallel_gemm(true, false, u.rows(), ncols, coutg, weights[ci], u.rows(), m, ncols, A(0), gcol, ncols);
        unfold::col2im(u, gcol, gxt);
      }
      unfold::from_position_major(gxt, n0, nb, s.c_in, g * cg, cg, hw, gx);
    });
  }
}

template <class T, class A>
void backward_weight(const Conv2dShape& s, const T* x, const T* gy, T* gw) {
  SingleThreadedBlas blas;
  int64_t cg = s.c_in / s.groups, coutg = s.c_out / s.groups, hw = s.h * s.w, ohw = s.out_h * s.out_w;
  int64_t size = s.c_out * cg * s.kh * s.kw;
  Chunks chunks = chunks_for<A>(s);
  // one whole weight gradient per chunk, summed in chunk order at the end: the same bits whatever thread ran
  // which chunk
  A* acc = scratch<A>(5, chunks.count * size);
  std::fill(acc, acc + chunks.count * size, A(0));
  for (int64_t g = 0; g < s.groups; ++g)
    for_chunks(s, chunks, [&](int64_t chunk, int64_t n0, int64_t nb) {
      A* xt = scratch<A>(2, cg * hw * nb);
      unfold::to_position_major(x, n0, nb, s.c_in, g * cg, cg, hw, xt);
      A* gyt = scratch<A>(3, coutg * ohw * nb);
      unfold::to_position_major(gy, n0, nb, s.c_out, g * coutg, coutg, ohw, gyt);
      auto plan = plan_for(s, n0, nb);
      A* dst = acc + chunk * size + g * coutg * cg * s.kh * s.kw;
      for (const Unfold& u : plan) {
        int64_t rows = u.rows(), ncols = u.cols();
        if (rows == 0) continue;
        A* m = gyt;
        if (plan.size() > 1) exchange(u, gyt, m = scratch<A>(1, coutg * ncols), true);
        A* col = scratch<A>(0, rows * ncols);
        unfold::im2col(u, xt, col);
        if (u.ki() == s.kh && u.kj() == s.kw) {  // the class's matrix is the whole gradient: accumulate in place
          parallel_gemm(false, true, coutg, rows, ncols, m, ncols, col, ncols, A(1), dst, rows);
          continue;
        }
        A* out = scratch<A>(4, coutg * rows);
        parallel_gemm(false, true, coutg, rows, ncols, m, ncols, col, ncols, A(0), out, rows);
        for (int64_t k = 0; k < coutg * cg; ++k)
          for (int64_t i = u.i0; i < u.i1; ++i)
            for (int64_t j = u.j0; j < u.j1; ++j) dst[(k * s.kh + i) * s.kw + j] += *out++;
      }
    });
  for (int64_t k = 0; k < size; ++k) {
    A sum = acc[k];
    for (int64_t c = 1; c < chunks.count; ++c) sum += acc[c * size + k];
    gw[k] = T(sum);
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
