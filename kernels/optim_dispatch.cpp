// Device dispatch for the optimizer kernels (kernels/optim_kernels.h).
#include "kernels/optim_backends.h"

namespace ht::kernels {

void adam_step(Device device, const AdamTensor* tensors, int64_t count, float inv_scale, const float* found_inf) {
  if (count == 0) return;
  if (device.is_cpu()) return cpu::adam_step(tensors, count, inv_scale, found_inf);
  cuda::adam_step(device.index, tensors, count, inv_scale, found_inf);
}

void sgd_step(Device device, const SgdTensor* tensors, int64_t count, float inv_scale, const float* found_inf) {
  if (count == 0) return;
  if (device.is_cpu()) return cpu::sgd_step(tensors, count, inv_scale, found_inf);
  cuda::sgd_step(device.index, tensors, count, inv_scale, found_inf);
}

void unscale_and_check(Device device, const GradTensor* tensors, int64_t count, float inv_scale, float* found_inf) {
  if (count == 0) return;
  if (device.is_cpu()) return cpu::unscale_and_check(tensors, count, inv_scale, found_inf);
  cuda::unscale_and_check(device.index, tensors, count, inv_scale, found_inf);
}

}  // namespace ht::kernels
