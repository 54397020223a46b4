#include "data/pin_memory.h"

#include "core/error.h"

#ifdef HT_WITH_CUDA
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>

#include "kernels/cuda/check.h"
#endif

namespace ht::data {

bool pin_memory_available() { return cuda::is_available(); }

#ifdef HT_WITH_CUDA

namespace {

// Every pinned block (by base address) with the event of the last copy out of it, which its deleter waits for.
struct PinnedBlocks {
  std::mutex mutex;
  std::map<uintptr_t, std::pair<size_t, cudaEvent_t>> blocks;  // base -> (bytes, last copy's event or null)

  // The block holding `p`, or blocks.end().
  std::map<uintptr_t, std::pair<size_t, cudaEvent_t>>::iterator find(const void* p) {
    auto at = reinterpret_cast<uintptr_t>(p);
    auto it = blocks.upper_bound(at);
    if (it == blocks.begin()) return blocks.end();
    --it;
    return at < it->first + it->second.first ? it : blocks.end();
  }
};

PinnedBlocks& pinned_blocks() {
  static PinnedBlocks* blocks = new PinnedBlocks;  // outlives tensors freed during static destruction
  return *blocks;
}

// One non-blocking copy stream per device, made on first use and kept for the process.
cudaStream_t copy_stream(int device) {
  static std::mutex mutex;
  static std::map<int, cudaStream_t> streams;
  std::lock_guard<std::mutex> lock(mutex);
  cudaStream_t& s = streams[device];
  if (!s) {
    kernels::cuda::set_device(device);
    HT_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    // the caching allocator frees memory only when this stream is idle too
    kernels::cuda::watch_stream(device, s, std::chrono::minutes(10));
  }
  return s;
}

void free_pinned(void* p) {
  PinnedBlocks& pb = pinned_blocks();
  cudaEvent_t last = nullptr;
  {
    std::lock_guard<std::mutex> lock(pb.mutex);
    auto it = pb.blocks.find(reinterpret_cast<uintptr_t>(p));
    if (it != pb.blocks.end()) {
      last = it->second.second;
      pb.blocks.erase(it);
    }
  }
  if (last) {
    cudaEventSynchronize(last);  // a copy still reading the block finishes first
    cudaEventDestroy(last);
  }
  cudaFreeHost(p);  // a deleter must not throw: errors here leave nothing to undo
}

}  // namespace

Tensor pin_memory(const Tensor& t) {
  HT_CHECK(t.device().is_cpu(), "[pin_memory] expected a CPU tensor, got one on ", t.device().str());
  HT_CHECK(pin_memory_available(), "[pin_memory] needs a GPU: no CUDA device is available");
  Tensor src = t.contiguous();
  size_t bytes = size_t(src.numel()) * src.element_size();
  void* p = nullptr;
  HT_CUDA_CHECK(cudaHostAlloc(&p, std::max<size_t>(bytes, 1), cudaHostAllocPortable));
  {
    PinnedBlocks& pb = pinned_blocks();
    std::lock_guard<std::mutex> lock(pb.mutex);
    pb.blocks[reinterpret_cast<uintptr_t>(p)] = {std::max<size_t>(bytes, 1), nullptr};
  }
  Tensor out = from_blob(p, src.sizes(), free_pinned, {.dtype = src.dtype()});
  if (bytes) std::memcpy(p, src.raw_data(), bytes);
  return out;
}

bool is_pinned(const Tensor& t) {
  if (!t.defined() || !t.device().is_cpu()) return false;
  PinnedBlocks& pb = pinned_blocks();
  std::lock_guard<std::mutex> lock(pb.mutex);
  return pb.find(t.raw_data()) != pb.blocks.end();
}

Tensor to_device(const Tensor& t, Device device, bool non_blocking) {
  if (!non_blocking || !device.is_cuda() || !t.is_contiguous() || !is_pinned(t)) return t.to(device);
  size_t bytes = size_t(t.numel()) * t.element_size();
  if (!bytes) return t.to(device);
  // The destination is not taken from halftorch's caching allocator: a block it hands out may still be read by
  // kernels queued on the default stream before it was freed, and the copy stream does not wait for those.
  // cudaFree synchronises the device, so the copy is over before the memory goes back.
  kernels::cuda::set_device(device.index);
  void* dst = nullptr;
  HT_CUDA_CHECK(cudaMalloc(&dst, bytes));
  Tensor out = from_blob(dst, t.sizes(), [](void* p) { cudaFree(p); }, {.dtype = t.dtype(), .device = device});
  cudaStream_t stream = copy_stream(device.index);
  cudaEvent_t done = nullptr;
  HT_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
  HT_CUDA_CHECK(cudaMemcpyAsync(dst, t.raw_data(), bytes, cudaMemcpyHostToDevice, stream));
  HT_CUDA_CHECK(cudaEventRecord(done, stream));
  // kernels queued after this point on the default stream see the copied data
  HT_CUDA_CHECK(cudaStreamWaitEvent(cudaStreamLegacy, done, 0));
  PinnedBlocks& pb = pinned_blocks();
  std::lock_guard<std::mutex> lock(pb.mutex);
  auto it = pb.find(t.raw_data());  // `t` is alive, so its block is registered
  if (it->second.second) cudaEventDestroy(it->second.second);
  it->second.second = done;  // the block's deleter waits for this copy
  return out;
}

#else

Tensor pin_memory(const Tensor& t) {
  fail("[pin_memory] needs a GPU: halftorch was built without CUDA");
}

bool is_pinned(const Tensor&) { return false; }

Tensor to_device(const Tensor& t, Device device, bool) { return t.to(device); }

#endif

}  // namespace ht::data
