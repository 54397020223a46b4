// Optimizer entry points each backend implements (kernels/cpu/optim.cpp, kernels/cuda/optim.cu or its stub);
// kernels/optim_dispatch.cpp picks one by device. Signatures mirror kernels/optim_kernels.h.
#pragma once
#include "kernels/optim_kernels.h"

#define HT_OPTIM_BACKEND_DECLS                                                                                  \
  void adam_step(const AdamTensor* tensors, int64_t count, float inv_scale, const float* found_inf);            \
  void sgd_step(const SgdTensor* tensors, int64_t count, float inv_scale, const float* found_inf);              \
  void unscale_and_check(const GradTensor* tensors, int64_t count, float inv_scale, float* found_inf);

namespace ht::kernels::cpu {
HT_OPTIM_BACKEND_DECLS
}
namespace ht::kernels::cuda {
// CUDA calls also take the device index (every tensor of one call lives on it).
void adam_step(int device, const AdamTensor* tensors, int64_t count, float inv_scale, const float* found_inf);
void sgd_step(int device, const SgdTensor* tensors, int64_t count, float inv_scale, const float* found_inf);
void unscale_and_check(int device, const GradTensor* tensors, int64_t count, float inv_scale, float* found_inf);
}
#undef HT_OPTIM_BACKEND_DECLS
