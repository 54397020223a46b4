// Integer GEMM on the GPU: the shared body of kernels/gemm_bodies.h through the grid-stride executor.
#include "kernels/cuda/executor.cuh"
#include "kernels/cuda/gemm_integral.h"
#include "kernels/gemm_bodies.h"

namespace ht::kernels::cuda {

void gemm_integral(const GemmArgs& g) {
  set_device(g.device.index);
  integral_gemm<Executor>(g);
}

}  // namespace ht::kernels::cuda
