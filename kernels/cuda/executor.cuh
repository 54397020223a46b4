// The CUDA executor of the shared bodies (kernels/elementwise.h, kernels/nn_bodies.h): body(i) for i < n in a
// grid-stride loop on the device's default stream, with 16-byte vector loads where the map bodies can use them.
#pragma once
#include <cstdint>

#include "kernels/cuda/check.h"

namespace ht::kernels::cuda {

template <class Body>
__global__ void grid_stride_kernel(int64_t n, Body body) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    body(i);
}

struct Executor {
  static constexpr int kVecBytes = 16;
  static constexpr int kThreads = 256;
  template <class Body>
  static void run(int64_t n, const Body& body) {
    if (n <= 0) return;
    grid_stride_kernel<<<grid_for(n, kThreads), kThreads>>>(n, body);
    HT_CUDA_CHECK(cudaGetLastError());
  }
};

}  // namespace ht::kernels::cuda
