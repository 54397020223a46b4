// CUDA GEMM through cuBLAS: row-major C = A B is computed as column-major C^T = B^T A^T. 16-bit inputs
// accumulate in float (tensor cores); float32 uses plain FP32 math (TF32 off) to match the CPU. A batch operand
// with stride 0 is one matrix shared by every product. Integers, which cuBLAS does not multiply, run the shared
// body of kernels/gemm_bodies.h (kernels/cuda/gemm_integral.cu).
#include "kernels/backends.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/gemm_integral.h"

namespace ht::kernels::cuda {

void gemm(const GemmArgs& g) {
  if (g.m == 0 || g.n == 0) return;
  if (!is_floating(g.dtype)) return gemm_integral(g);
  cublasHandle_t h = cublas_handle(g.device.index);
  set_device(g.device.index);
  cublasOperation_t opa = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t opb = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  cudaDataType_t type;
  cublasComputeType_t compute;
  switch (g.dtype) {
    case kFloat32: type = CUDA_R_32F; compute = CUBLAS_COMPUTE_32F; break;
    case kFloat16: type = CUDA_R_16F; compute = CUBLAS_COMPUTE_32F; break;
    case kBFloat16: type = CUDA_R_16BF; compute = CUBLAS_COMPUTE_32F; break;
    case kFloat64: type = CUDA_R_64F; compute = CUBLAS_COMPUTE_64F; break;
    default: fail("[matmul] expected a floating dtype, got ", dtype_name(g.dtype));
  }
  float fa = float(g.alpha), fb = float(g.beta);
  const void* alpha = g.dtype == kFloat64 ? static_cast<const void*>(&g.alpha) : &fa;
  const void* beta = g.dtype == kFloat64 ? static_cast<const void*>(&g.beta) : &fb;
  // the 64-bit API: no size, leading dimension or batch count is cut to int (a batch beyond 2^31 needs no split)
  HT_CUBLAS_CHECK(cublasGemmStridedBatchedEx_64(h, opb, opa, g.n, g.m, g.k, alpha, g.b, type, g.ldb, g.stride_b, g.a,
                                                type, g.lda, g.stride_a, beta, g.c, type, g.ldc, g.stride_c, g.batch,
                                                compute, CUBLAS_GEMM_DEFAULT));
}

}  // namespace ht::kernels::cuda
