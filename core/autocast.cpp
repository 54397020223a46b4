// The autocast switch: thread-local state, as PyTorch keeps it per thread.
#include "core/autocast.h"

namespace ht::amp {

namespace {
thread_local bool t_enabled = false;
thread_local DeviceType t_device = DeviceType::CUDA;
thread_local DType t_dtype = kFloat16;
}  // namespace

AutocastGuard::AutocastGuard(DeviceType device, DType dtype, bool enabled)
    : prev_enabled_(t_enabled), prev_device_(t_device), prev_dtype_(t_dtype) {
  HT_CHECK(dtype == kFloat16 || dtype == kBFloat16, "[autocast] expected float16 or bfloat16, got ",
           dtype_name(dtype));
  t_enabled = enabled;
  t_device = device;
  t_dtype = dtype;
}

AutocastGuard::~AutocastGuard() {
  t_enabled = prev_enabled_;
  t_device = prev_device_;
  t_dtype = prev_dtype_;
}

bool is_autocast_enabled() { return t_enabled; }
DeviceType autocast_device() { return t_device; }
DType autocast_dtype() { return t_dtype; }

Tensor autocast_input(const Tensor& x, CastPolicy policy) {
  if (!t_enabled || !x.defined() || !x.is_floating_point() || x.device().type != t_device) return x;
  if (policy == CastPolicy::LowerPrecision) return x.dtype() == kFloat64 ? x : x.to(t_dtype);
  return x.dtype() == kFloat16 || x.dtype() == kBFloat16 ? x.to(kFloat32) : x;
}

}  // namespace ht::amp
