// Pinned (page-locked) host memory and host-to-device copies that overlap compute: torch.Tensor.pin_memory(),
// is_pinned() and .to(device, non_blocking=True), which the DataLoader's pin_memory option and a training loop's
// prefetch of the next batch use. Pinning needs a CUDA build and a GPU, as in PyTorch.
#pragma once
#include "halftorch/core/tensor.h"

namespace ht::data {

// Whether pin_memory can work here: halftorch was built with CUDA and a GPU is present.
bool pin_memory_available();
// A contiguous copy of the CPU tensor `t` in memory cudaHostAlloc allocated (its storage is freed only after the
// last asynchronous copy from it has finished). An error when pin_memory_available() is false.
Tensor pin_memory(const Tensor& t);
bool is_pinned(const Tensor& t);
// t.to(device) (keeping the dtype); with non_blocking, a pinned contiguous CPU tensor goes to a CUDA device on a
// copy stream, and the device's default stream, where halftorch's kernels run, waits for that copy: the call
// returns at once and the copy overlaps the kernels queued before it. Anything else copies synchronously.
Tensor to_device(const Tensor& t, Device device, bool non_blocking = false);

}  // namespace ht::data
