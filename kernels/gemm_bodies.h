// The integer GEMM body, shared by the CPU and CUDA backends (cuBLAS and oneDNN multiply floating types only):
// one element of C per call, each a sum in k order. Products and sums wrap modulo 2^64 and the result is cut
// to T, which equals T's own wrapping arithmetic, as PyTorch's integer matmul: exact wherever the result fits.
#pragma once
#include <cstdint>

#include "kernels/kernels.h"

namespace ht::kernels {

template <class T>
struct IntegralGemmBody {
  bool trans_a, trans_b;
  int64_t m, n, k;
  const T* a; int64_t lda, stride_a;
  const T* b; int64_t ldb, stride_b;
  T* c; int64_t ldc, stride_c;
  explicit IntegralGemmBody(const GemmArgs& g)
      : trans_a(g.trans_a), trans_b(g.trans_b), m(g.m), n(g.n), k(g.k), a(static_cast<const T*>(g.a)), lda(g.lda),
        stride_a(g.stride_a), b(static_cast<const T*>(g.b)), ldb(g.ldb), stride_b(g.stride_b),
        c(static_cast<T*>(g.c)), ldc(g.ldc), stride_c(g.stride_c) {}
  HT_HD void operator()(int64_t e) const {
    int64_t batch = e / (m * n), r = e % (m * n), i = r / n, j = r % n;
    const T* pa = a + batch * stride_a;
    const T* pb = b + batch * stride_b;
    uint64_t acc = 0;
    for (int64_t p = 0; p < k; ++p) {
      T x = trans_a ? pa[p * lda + i] : pa[i * lda + p];
      T y = trans_b ? pb[j * ldb + p] : pb[p * ldb + j];
      acc += uint64_t(int64_t(x)) * uint64_t(int64_t(y));
    }
    c[batch * stride_c + i * ldc + j] = T(int64_t(acc));
  }
};

// Calls f(TypeTag<T>{}) for the integral dtypes GEMM takes; bool and floating types are refused.
template <class F>
void visit_integral(DType t, F&& f) {
  switch (t) {
    case DType::Int64: return f(TypeTag<int64_t>{});
    case DType::Int32: return f(TypeTag<int32_t>{});
    case DType::Int16: return f(TypeTag<int16_t>{});
    case DType::Int8: return f(TypeTag<int8_t>{});
    case DType::UInt8: return f(TypeTag<uint8_t>{});
    default: fail("[matmul] expected an integral dtype, got ", dtype_name(t));
  }
}

template <class Executor>
void integral_gemm(const GemmArgs& g) {
  visit_integral(g.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    Executor::run(g.batch * g.m * g.n, IntegralGemmBody<T>(g));
  });
}

}  // namespace ht::kernels
