// The optimizer seam: fused multi-tensor steps (Adam/AdamW, SGD) and the fused unscale + inf/NaN check that
// GradScaler runs. Like kernels.h it works on raw pointers; one call covers every tensor of one device, so on
// CUDA a whole optimizer step is one kernel launch. kernels/dispatch.cpp picks the backend.
#pragma once
#include <cstdint>

#include "kernels/kernels.h"

namespace ht::kernels {

// One parameter's buffers and its per-step scalars for Adam/AdamW. param and grad share `dtype` (float32,
// float16 or bfloat16) and are contiguous with `numel` elements; every float buffer is fp32 and contiguous.
// master is null when param is fp32 (the param is its own master); otherwise the update happens on master
// and param receives the rounded result. The scalars are computed on the host in double, as torch.optim's
// single-tensor path does, then rounded to float, so fp32 runs follow PyTorch's CPU arithmetic.
struct AdamTensor {
  void* param = nullptr;
  const void* grad = nullptr;
  float* master = nullptr;
  float* exp_avg = nullptr;
  float* exp_avg_sq = nullptr;
  float* max_exp_avg_sq = nullptr;  // amsgrad only
  int64_t numel = 0;
  DType dtype = kFloat32;
  float beta1 = 0, one_minus_beta1 = 0, beta2 = 0, one_minus_beta2 = 0;
  float eps = 0;
  float weight_decay = 0;    // Adam: coupled L2 added to the gradient (skipped when 0)
  float decay_factor = 1;    // AdamW: param *= 1 - lr * weight_decay; exactly 1 for Adam
  float neg_step_size = 0;   // -lr / (1 - beta1^t)
  float bias_correction2_sqrt = 1;  // sqrt(1 - beta2^t)
  bool amsgrad = false, maximize = false, decoupled = false;
};

// One parameter for SGD. momentum_buffer (fp32) is null when momentum == 0; init_buffer says the buffer was
// just created (zero-filled: it is read either way), so this step sets it to the gradient (PyTorch's
// `torch.clone(d_p)`).
struct SgdTensor {
  void* param = nullptr;
  const void* grad = nullptr;
  float* master = nullptr;
  float* momentum_buffer = nullptr;
  int64_t numel = 0;
  DType dtype = kFloat32;
  float neg_lr = 0, weight_decay = 0, momentum = 0, one_minus_dampening = 1;
  bool nesterov = false, maximize = false, init_buffer = false;
};

// A gradient to unscale and check (contiguous; float32, float16, bfloat16 or float64).
struct GradTensor {
  void* grad = nullptr;
  int64_t numel = 0;
  DType dtype = kFloat32;
};

// adam_step / sgd_step update every tensor in one pass: the gradient is read in its dtype and multiplied by
// inv_scale in fp32 (1: not scaled). found_inf, when not null, is a one-float flag in `device` memory: if it is
// non-zero the call changes nothing (the flag is read on the device, so no host sync is needed for the skip
// itself).
// unscale_and_check: grad = grad * inv_scale in place (computed in fp32, not written when inv_scale == 1) and
// sets *found_inf to 1 when any element is inf or NaN (it never clears it). found_inf is one float in `device`
// memory. As in PyTorch's _amp_foreach_non_finite_check_and_unscale_, gradients are multiplied even when a
// non-finite value is found.

// The entry points, each once (X(name, (parameters), (arguments), (device)), as HT_CORE_KERNELS in
// kernels/kernels.h): declared here and in the backends, switched on by kernels/dispatch.cpp. Every tensor of
// one call lives on `device`.
#define HT_OPTIM_KERNELS(X)                                                                                       \
  X(adam_step, (Device device, const AdamTensor* tensors, int64_t count, float inv_scale, const float* found_inf), \
    (device, tensors, count, inv_scale, found_inf), (device))                                                     \
  X(sgd_step, (Device device, const SgdTensor* tensors, int64_t count, float inv_scale, const float* found_inf),   \
    (device, tensors, count, inv_scale, found_inf), (device))                                                     \
  X(unscale_and_check, (Device device, const GradTensor* tensors, int64_t count, float inv_scale,                 \
                        float* found_inf),                                                                        \
    (device, tensors, count, inv_scale, found_inf), (device))

HT_OPTIM_KERNELS(HT_DECLARE_KERNEL)

}  // namespace ht::kernels
