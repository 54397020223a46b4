// CPU GEMM on oneDNN (the one CPU math library; kernels/cpu/onednn.h), on the same OpenMP threads as the rest.
// float32 runs oneDNN's sgemm. bfloat16 runs oneDNN's bf16 matmul primitive where the CPU has AVX512_BF16
// (float32 accumulation, one rounding per output, as PyTorch's mkldnn matmul); float16, and bfloat16 elsewhere,
// are widened to float, multiplied by sgemm and rounded back once. float64, which oneDNN lacks, runs a direct
// loop (tests and references only); integers run the shared body of kernels/gemm_bodies.h.
#include <oneapi/dnnl/dnnl.h>

#include <bit>
#include <optional>
#include <utility>
#include <vector>

#include "kernels/backends.h"
#include "kernels/cpu/convert.h"
#include "kernels/cpu/executor.h"
#include "kernels/cpu/onednn.h"
#include "kernels/gemm_bodies.h"

namespace ht::kernels::cpu {

namespace {
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

// Whether oneDNN multiplies bfloat16 natively here (AVX512_BF16).
bool native_bf16() {
  static const bool yes = onednn::has_isa(dnnl::cpu_isa::avx512_core_bf16);
  return yes;
}

using Matmul = std::pair<dnnl::matmul::primitive_desc, dnnl::matmul>;
// A row-major (or, transposed, column-major) rows x cols bfloat16 matrix with leading dim ld.
dnnl::memory::desc bf16_matrix(int64_t rows, int64_t cols, int64_t ld, bool trans) {
  return dnnl::memory::desc({rows, cols}, dnnl::memory::data_type::bf16,
                            trans ? dnnl::memory::dims{1, ld} : dnnl::memory::dims{ld, 1});
}
// oneDNN's bfloat16 matmul primitive for g's shapes and strides, C = alpha * op(A) @ op(B) + beta * C (alpha an
// output scale, beta a sum post-op over C), made on first use and kept for the process; null where oneDNN takes
// no primitive for these strides.
const Matmul* bf16_matmul(const GemmArgs& g) {
  onednn::Key key("matmul_bf16");
  key.add(g.m).add(g.n).add(g.k).add(g.trans_a).add(g.trans_b).add(g.lda).add(g.ldb).add(g.ldc);
  key.add(std::bit_cast<int64_t>(g.alpha)).add(std::bit_cast<int64_t>(g.beta));
  auto made = onednn::cached<std::optional<Matmul>>(key, [&]() -> std::optional<Matmul> {
    dnnl::primitive_attr attr = onednn::default_attr();
    if (g.alpha != 1) attr.set_output_scales(0, {float(g.alpha)});
    if (g.beta != 0) {
      dnnl::post_ops ops;
      ops.append_sum(float(g.beta));
      attr.set_post_ops(ops);
    }
    try {
      dnnl::matmul::desc d(bf16_matrix(g.m, g.k, g.lda, g.trans_a), bf16_matrix(g.k, g.n, g.ldb, g.trans_b),
                           bf16_matrix(g.m, g.n, g.ldc, false));
      dnnl::matmul::primitive_desc pd(d, attr, onednn::engine());
      return Matmul{pd, dnnl::matmul(pd)};
    } catch (const dnnl::error&) {
      return std::nullopt;
    }
  });
  return made->has_value() ? &**made : nullptr;
}

// 16-bit GEMM through sgemm: each matrix's span widened to float (gaps between rows included), one product,
// each output rounded once.
template <class T>
void widened_gemm(const GemmArgs& g) {
  int64_t a_rows = g.trans_a ? g.k : g.m, b_rows = g.trans_b ? g.n : g.k;
  int64_t na = span(a_rows, g.lda) + (g.trans_a ? g.m : g.k);
  int64_t nb = span(b_rows, g.ldb) + (g.trans_b ? g.k : g.n);
  int64_t nc = span(g.m, g.ldc) + g.n;
  auto* fa = static_cast<float*>(onednn::scratch(onednn::Buffer::Source32, size_t(na) * sizeof(float)));
  auto* fb = static_cast<float*>(onednn::scratch(onednn::Buffer::Weights32, size_t(nb) * sizeof(float)));
  auto* fc = static_cast<float*>(onednn::scratch(onednn::Buffer::Destination32, size_t(nc) * sizeof(float)));
  for (int64_t b = 0; b < g.batch; ++b) {
    const T* pa = static_cast<const T*>(g.a) + b * g.stride_a;
    const T* pb = static_cast<const T*>(g.b) + b * g.stride_b;
    T* pc = static_cast<T*>(g.c) + b * g.stride_c;
    to_float(pa, fa, na);
    to_float(pb, fb, nb);
    if (g.beta != 0)  // C's rows only: the gaps between them are never read
      for (int64_t i = 0; i < g.m; ++i) to_float(pc + i * g.ldc, fc + i * g.ldc, g.n);
    sgemm(g, fa, fb, fc);
    for (int64_t i = 0; i < g.m; ++i) from_float(fc + i * g.ldc, pc + i * g.ldc, g.n);
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
  if (g.dtype == kBFloat16) {
    // one primitive (looked up once) for every batch entry
    const Matmul* mm = native_bf16() ? bf16_matmul(g) : nullptr;
    if (!mm) return widened_gemm<BFloat16>(g);
    const auto* a = static_cast<const BFloat16*>(g.a);
    const auto* b = static_cast<const BFloat16*>(g.b);
    auto* c = static_cast<BFloat16*>(g.c);
    for (int64_t i = 0; i < g.batch; ++i)
      onednn::execute(mm->second, mm->first.scratchpad_desc(),
                      {{DNNL_ARG_SRC, onednn::wrap(mm->first.src_desc(), a + i * g.stride_a)},
                       {DNNL_ARG_WEIGHTS, onednn::wrap(mm->first.weights_desc(), b + i * g.stride_b)},
                       {DNNL_ARG_DST, onednn::wrap(mm->first.dst_desc(), c + i * g.stride_c)}});
    return;
  }
  HT_CHECK(g.dtype == kFloat16, "[matmul] no CPU GEMM for ", dtype_name(g.dtype));
  widened_gemm<Half>(g);
}

}  // namespace ht::kernels::cpu
