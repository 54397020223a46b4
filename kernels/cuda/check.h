// HT_CUDA_CHECK / HT_CUBLAS_CHECK: turn CUDA and cuBLAS status codes into ht::Error with the library's text.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <chrono>

#include "core/error.h"

#define HT_CUDA_CHECK(expr)                                                                       \
  do {                                                                                            \
    cudaError_t ht_err_ = (expr);                                                                 \
    if (ht_err_ != cudaSuccess) ::ht::fail("[cuda] ", #expr, " failed: ", cudaGetErrorString(ht_err_)); \
  } while (0)

#define HT_CUBLAS_CHECK(expr)                                                                        \
  do {                                                                                               \
    cublasStatus_t ht_st_ = (expr);                                                                  \
    if (ht_st_ != CUBLAS_STATUS_SUCCESS) ::ht::fail("[cublas] ", #expr, " failed: ", cublasGetStatusString(ht_st_)); \
  } while (0)

namespace ht::kernels::cuda {
// Launch config for a grid-stride loop over n items.
inline unsigned grid_for(int64_t n, int threads) {
  int64_t blocks = (n + threads - 1) / threads;
  return unsigned(blocks < 65535 * 8 ? (blocks > 0 ? blocks : 1) : 65535 * 8);
}
// Makes `device` current for the calling thread (all work runs on the legacy default stream of that device).
void set_device(int device);
// The calling thread's cuBLAS handle for `device` (one per thread: kernels/cuda/thread_handles.h).
cublasHandle_t cublas_handle(int device);
// The device's multiprocessor count (cached): how many blocks the split reductions aim for.
int sm_count(int device);

// Streams that cudaFree waits for but halftorch does not order its own work after (NCCL's). The allocator frees
// cached blocks (out-of-memory retry, empty_cache) only once every watched stream of the device is idle,
// waiting at most that stream's timeout, so that a collective stuck on a dead peer is an error, not a hang.
void watch_stream(int device, cudaStream_t stream, std::chrono::milliseconds timeout);
void unwatch_stream(cudaStream_t stream);
}  // namespace ht::kernels::cuda
