// ht::amp autocast: a thread-local "run eligible ops in 16-bit" switch for fp32 models (PyTorch's other AMP
// style), and the cast helper that ops call on their inputs. The policy follows PyTorch's CUDA autocast lists:
// convolutions and matrix products run in the autocast dtype; softmax, log_softmax, losses and reductions run
// in float32. The ops that honor it: matmul, linear, nn::functional::conv2d (LowerPrecision); softmax,
// log_softmax, nn::functional::cross_entropy (Float32). docs/mixed-precision.md says the same.
#pragma once
#include "halftorch/core/device.h"
#include "halftorch/core/tensor.h"

namespace ht::amp {

// RAII scope like `with torch.autocast(device_type, dtype)`: nests, restores the previous state on exit.
class AutocastGuard {
 public:
  explicit AutocastGuard(DeviceType device = DeviceType::CUDA, DType dtype = kFloat16, bool enabled = true);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool prev_enabled_;
  DeviceType prev_device_;
  DType prev_dtype_;
};

bool is_autocast_enabled();
DeviceType autocast_device();
DType autocast_dtype();  // float16 unless a guard chose bfloat16

enum class CastPolicy {
  LowerPrecision,  // conv1d/2d/3d, conv_transpose, matmul, mm, bmm, linear, addmm, baddbmm
  Float32,         // softmax, log_softmax, cross_entropy, nll_loss, mse_loss, sum, prod, norm, exp, log, pow, ...
};

// What an op should compute with: x unchanged when autocast is off, x is not floating-point or lives on another
// device type; otherwise x cast to autocast_dtype() (LowerPrecision) or 16-bit x cast to float32 (Float32).
// The cast is recorded by autograd, so gradients flow back in x's dtype.
Tensor autocast_input(const Tensor& x, CastPolicy policy);

}  // namespace ht::amp
