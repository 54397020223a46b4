// CPU GEMM through OpenBLAS; 16-bit inputs are widened to float, multiplied, and rounded back once.
#include <cblas.h>

#include <vector>

#include "kernels/backends.h"

namespace ht::kernels::cpu {

namespace {
template <class T>
void widen(const T* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = float(src[i]);
}
// Extent in elements a (possibly transposed) row-major matrix with leading dim ld spans.
int64_t span(int64_t rows, int64_t ld) { return rows == 0 ? 0 : (rows - 1) * ld; }
}  // namespace

void gemm(const GemmArgs& g) {
  const auto ta = g.trans_a ? CblasTrans : CblasNoTrans;
  const auto tb = g.trans_b ? CblasTrans : CblasNoTrans;
  if (g.m == 0 || g.n == 0) return;
  if (g.dtype == kFloat32 || g.dtype == kFloat64) {
    for (int64_t b = 0; b < g.batch; ++b) {
      if (g.dtype == kFloat32) {
        cblas_sgemm(CblasRowMajor, ta, tb, int(g.m), int(g.n), int(g.k), float(g.alpha),
                    static_cast<const float*>(g.a) + b * g.stride_a, int(g.lda),
                    static_cast<const float*>(g.b) + b * g.stride_b, int(g.ldb), float(g.beta),
                    static_cast<float*>(g.c) + b * g.stride_c, int(g.ldc));
      } else {
        cblas_dgemm(CblasRowMajor, ta, tb, int(g.m), int(g.n), int(g.k), g.alpha,
                    static_cast<const double*>(g.a) + b * g.stride_a, int(g.lda),
                    static_cast<const double*>(g.b) + b * g.stride_b, int(g.ldb), g.beta,
                    static_cast<double*>(g.c) + b * g.stride_c, int(g.ldc));
      }
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
        cblas_sgemm(CblasRowMajor, ta, tb, int(g.m), int(g.n), int(g.k), float(g.alpha), fa.data(), int(g.lda),
                    fb.data(), int(g.ldb), float(g.beta), fc.data(), int(g.ldc));
        for (int64_t i = 0; i < g.m; ++i)
          for (int64_t j = 0; j < g.n; ++j) pc[i * g.ldc + j] = T(fc[size_t(i * g.ldc + j)]);
      }
    }
  });
}

}  // namespace ht::kernels::cpu
