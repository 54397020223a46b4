// CPU GEMM through oneDNN's sgemm (the one CPU math library; kernels/cpu/onednn.h), on the same OpenMP threads
// as the rest. 16-bit inputs are widened to float, multiplied, and rounded back once; float64, which oneDNN
// lacks, runs a direct loop (tests and references only); integers run the shared body of kernels/gemm_bodies.h.
#include <oneapi/dnnl/dnnl.h>

#include <vector>

#include "kernels/backends.h"
#include "kernels/cpu/executor.h"
#include "kernels/gemm_bodies.h"

namespace ht::kernels::cpu {

namespace {
template <class T>
void widen(const T* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = float(src[i]);
}
// Extent in elements a (possibly transposed) row-major matrix with leading dim ld spans.
int64_t span(int64_t rows, int64_t ld) { return rows == 0 ? 0 : (rows - 1) * ld; }

void sgemm(const GemmArgs& g, const float* a, const float* b, float* c) {
  dnnl_status_t st = dnnl_sgemm(g.trans_a ? 'T' : 'N', g.trans_b ? 'T' : 'N', g.m, g.n, g.k, float(g.alpha), a, g.lda,
                                b, g.ldb, float(g.beta), c, g.ldc);
  HT_CHECK(st == dnnl_success, "[matmul] oneDNN sgemm failed (status ", int(st), ") for ", g.m, " x ", g.k, " @ ",
           g.k, " x ", g.n);
}

// C = alpha * op(A) @ op(B) + beta * C in float64, one row of C per task, each element one sum in k order.
void dgemm(const GemmArgs& g, const double* a, const double* b, double* c) {
  int64_t a_row = g.trans_a ? 1 : g.lda, a_col = g.trans_a ? g.lda : 1;
  int64_t b_row = g.trans_b ? 1 : g.ldb, b_col = g.trans_b ? g.ldb : 1;
#pragma omp parallel for schedule(static) if (g.m * g.n * g.k > 32768)
  for (int64_t i = 0; i < g.m; ++i)
    for (int64_t j = 0; j < g.n; ++j) {
      double acc = 0;
      for (int64_t p = 0; p < g.k; ++p) acc += a[i * a_row + p * a_col] * b[p * b_row + j * b_col];
      double& out = c[i * g.ldc + j];
      out = g.alpha * acc + (g.beta == 0 ? 0.0 : g.beta * out);
    }
}
}  // namespace

void gemm(const GemmArgs& g) {
  if (g.m == 0 || g.n == 0) return;
  if (!is_floating(g.dtype)) return integral_gemm<Executor>(g);
  if (g.dtype == kFloat32 || g.dtype == kFloat64) {
    for (int64_t b = 0; b < g.batch; ++b) {
      if (g.dtype == kFloat32)
        sgemm(g, static_cast<const float*>(g.a) + b * g.stride_a, static_cast<const float*>(g.b) + b * g.stride_b,
              static_cast<float*>(g.c) + b * g.stride_c);
      else
        dgemm(g, static_cast<const double*>(g.a) + b * g.stride_a, static_cast<const double*>(g.b) + b * g.stride_b,
              static_cast<double*>(g.c) + b * g.stride_c);
    }
    return;
  }
  visit_floating(g.dtype, "matmul", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
      int64_t a_rows = g.trans_a ? g.k : g.m, b_rows = g.trans_b ? g.n : g.k;
      int64_t na = span(a_rows, g.lda) + (g.trans_a ? g.m : g.k);
      int64_t nb = span(b_rows, g.ldb) + (g.trans_b ? g.k : g.n);
      int64_t nc = span(g.m, g.ldc) + g.n;
      std::vector<float> fa(static_cast<size_t>(na)), fb(static_cast<size_t>(nb)), fc(static_cast<size_t>(nc));
      for (int64_t b = 0; b < g.batch; ++b) {
        const T* pa = static_cast<const T*>(g.a) + b * g.stride_a;
        const T* pb = static_cast<const T*>(g.b) + b * g.stride_b;
        T* pc = static_cast<T*>(g.c) + b * g.stride_c;
        widen(pa, fa.data(), na);
        widen(pb, fb.data(), nb);
        if (g.beta != 0) widen(pc, fc.data(), nc);
        sgemm(g, fa.data(), fb.data(), fc.data());
        for (int64_t i = 0; i < g.m; ++i)
          for (int64_t j = 0; j < g.n; ++j) pc[i * g.ldc + j] = T(fc[size_t(i * g.ldc + j)]);
      }
    }
  });
}

}  // namespace ht::kernels::cpu
