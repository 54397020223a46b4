// Integer GEMM on the GPU (kernels/cuda/gemm_integral.cu): the shared body, run by the grid-stride executor.
#pragma once
#include "kernels/kernels.h"

namespace ht::kernels::cuda {
void gemm_integral(const GemmArgs& g);
}
