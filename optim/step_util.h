// Internal helpers of the optimizers' step(): kernel entries batched per device, the found-inf pointer, and
// state tensors laid out like their parameter.
#pragma once
#include <utility>
#include <vector>

#include "halftorch/optim/optimizer.h"

namespace ht::optim {

// Entries of one fused call per device (one device in practice; mixed CPU/CUDA parameters get one call each).
template <class Entry>
struct DeviceBatches {
  std::vector<std::pair<Device, std::vector<Entry>>> items;
  void add(Device d, const Entry& e) {
    for (auto& [dev, v] : items)
      if (dev == d) {
        v.push_back(e);
        return;
      }
    items.push_back({d, {e}});
  }
};

// An uninitialised fp32 tensor with the parameter's shape and strides. The fused kernels walk a parameter, its
// gradient, master weight and moments as flat buffers of numel elements, which is right for any dense layout
// (channels_last included) as long as all of them share it.
inline Tensor fp32_like(const Tensor& p) {
  return empty_strided(p.sizes(), p.strides(), {.dtype = kFloat32, .device = p.device()});
}

// The device flag GradScaler passes, when it lives on `device`; null otherwise.
inline const float* found_inf_ptr(const StepScaling& s, Device device, const char* op) {
  if (!s.found_inf || !s.found_inf->defined()) return nullptr;
  HT_CHECK(s.found_inf->dtype() == kFloat32 && s.found_inf->numel() == 1, "[", op,
           "] found_inf should be a one-element float32 tensor");
  return s.found_inf->device() == device ? s.found_inf->data_ptr<float>() : nullptr;
}

}  // namespace ht::optim
