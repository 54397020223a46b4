// CUDA runtime pieces: device queries, the caching allocator, host<->device copies, cuBLAS handles.
#include <algorithm>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "core/storage.h"
#include "kernels/backends.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/thread_handles.h"

namespace ht {
namespace kernels::cuda {

namespace {
constexpr size_t kSmallLimit = 1 << 20;   // blocks up to 1 MiB round to 512 bytes
constexpr size_t kSmallRound = 512;
constexpr size_t kLargeRound = 2 << 20;   // larger ones to 2 MiB, so similar sizes share blocks

size_t round_size(size_t n) {
  size_t r = n <= kSmallLimit ? kSmallRound : kLargeRound;
  return (n + r - 1) / r * r;
}

struct Watched {
  int device;
  cudaStream_t stream;
  std::chrono::milliseconds timeout;
};
std::mutex g_watch_mu;
std::vector<Watched> g_watched;

// Waits until the watched streams of `device` are idle; false when one is still busy at its deadline.
bool watched_idle(int device) {
  std::vector<Watched> mine;
  {
    std::lock_guard<std::mutex> lock(g_watch_mu);
    for (const Watched& w : g_watched)
      if (w.device == device) mine.push_back(w);
  }
  for (const Watched& w : mine) {
    auto deadline = std::chrono::steady_clock::now() + w.timeout;
    cudaError_t q;
    while ((q = cudaStreamQuery(w.stream)) == cudaErrorNotReady) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    if (q != cudaSuccess) cudaGetLastError();  // an error there is its owner's to report
  }
  return true;
}

// Reuses freed blocks by size class so that a warm training step makes no cudaMalloc call.
struct CachingAllocator final : Allocator {
  struct PerDevice {
    std::multimap<size_t, void*> free_blocks;  // rounded size -> block
    std::map<void*, size_t> live;              // block -> rounded size
    ::ht::cuda::MemoryStats stats;
  };
  std::mutex mu;
  std::vector<PerDevice> devices;

  PerDevice& dev(int d) {
    if (size_t(d) >= devices.size()) devices.resize(size_t(d) + 1);
    return devices[size_t(d)];
  }

  void release_cached(PerDevice& pd) {
    for (auto& [size, p] : pd.free_blocks) {
      cudaFree(p);
      pd.stats.reserved -= size;
    }
    pd.free_blocks.clear();
  }

  void* allocate(size_t nbytes, int d) override {
    HT_CHECK(::ht::cuda::is_available(), "[cuda] a CUDA tensor was requested but no CUDA device is available ",
             "(no GPU or no driver on this machine); use the CPU device");
    HT_CHECK(d < ::ht::cuda::device_count(), "[cuda] device cuda:", d, " does not exist; this machine has ",
             ::ht::cuda::device_count(), " CUDA device(s)");
    size_t size = round_size(nbytes);
    std::lock_guard<std::mutex> lock(mu);
    PerDevice& pd = dev(d);
    void* p = nullptr;
    auto it = pd.free_blocks.lower_bound(size);
    // take a cached block of the same class, or one at most twice as big for large sizes
    if (it != pd.free_blocks.end() && (it->first == size || (size > kSmallLimit && it->first <= 2 * size))) {
      p = it->second;
      size = it->first;
      pd.free_blocks.erase(it);
    } else {
      set_device(d);
      cudaError_t err = cudaMalloc(&p, size);
      bool stuck = false;
      if (err == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        // cudaFree waits for the whole device: not behind a collective that will never finish
        stuck = !watched_idle(d);
        if (!stuck) {
          release_cached(pd);
          err = cudaMalloc(&p, size);
        }
      }
      if (err != cudaSuccess) {
        cudaGetLastError();
        size_t free_b = 0, total_b = 0;
        cudaMemGetInfo(&free_b, &total_b);
        fail("[cuda] out of memory: tried to allocate ", nbytes, " bytes on cuda:", d, " (", free_b,
             " bytes free of ", total_b, "; ", pd.stats.allocated, " bytes in live tensors, ", pd.stats.reserved,
             " reserved by halftorch", stuck ? "; the cached blocks were kept: a collective on this device did not "
             "finish within its timeout" : "", "): ", cudaGetErrorString(err));
      }
      pd.stats.reserved += size;
      pd.stats.num_device_allocs++;
    }
    pd.live[p] = size;
    pd.stats.allocated += size;
    pd.stats.peak_allocated = std::max(pd.stats.peak_allocated, pd.stats.allocated);
    return p;
  }

  void deallocate(void* p, size_t, int d) override {
    std::lock_guard<std::mutex> lock(mu);
    PerDevice& pd = dev(d);
    auto it = pd.live.find(p);
    if (it == pd.live.end()) return;
    pd.stats.allocated -= it->second;
    pd.free_blocks.emplace(it->second, p);
    pd.live.erase(it);
  }
};

CachingAllocator g_allocator;
const bool g_registered = (register_allocator(DeviceType::CUDA, &g_allocator), true);
}  // namespace

void set_device(int device) { HT_CUDA_CHECK(cudaSetDevice(device)); }

int sm_count(int device) {
  static std::mutex mu;
  static std::map<int, int> counts;
  std::lock_guard<std::mutex> lock(mu);
  auto it = counts.find(device);
  if (it != counts.end()) return it->second;
  int n = 0;
  HT_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device));
  counts[device] = n;
  return n;
}

void watch_stream(int device, cudaStream_t stream, std::chrono::milliseconds timeout) {
  std::lock_guard<std::mutex> lock(g_watch_mu);
  g_watched.push_back({device, stream, timeout});
}

void unwatch_stream(cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(g_watch_mu);
  std::erase_if(g_watched, [&](const Watched& w) { return w.stream == stream; });
}

cublasHandle_t cublas_handle(int device) {
  return thread_handle<cublasHandle_t>(device, [](int dev) {
    set_device(dev);
    cublasHandle_t h;
    HT_CUBLAS_CHECK(cublasCreate(&h));
    // TF32 stays off so float32 results match the CPU; fp16 GEMMs still use tensor cores via cublasGemmEx.
    HT_CUBLAS_CHECK(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH));
    return h;
  });
}

void copy_bytes(const void* src, Device src_dev, void* dst, Device dst_dev, size_t nbytes) {
  if (nbytes == 0) return;
  cudaMemcpyKind kind = src_dev.is_cpu() ? cudaMemcpyHostToDevice
                        : dst_dev.is_cpu() ? cudaMemcpyDeviceToHost
                                           : cudaMemcpyDeviceToDevice;
  set_device(src_dev.is_cuda() ? src_dev.index : dst_dev.index);
  if (kind == cudaMemcpyDeviceToDevice && src_dev.index != dst_dev.index) {
    HT_CUDA_CHECK(cudaMemcpyPeer(dst, dst_dev.index, src, src_dev.index, nbytes));
  } else {
    HT_CUDA_CHECK(cudaMemcpy(dst, src, nbytes, kind));
  }
}

}  // namespace kernels::cuda

namespace cuda {
bool is_available() { return device_count() > 0; }
int device_count() {
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    return n;
  }();
  return count;
}
void empty_cache() {
  auto& a = kernels::cuda::g_allocator;
  std::lock_guard<std::mutex> lock(a.mu);
  for (size_t d = 0; d < a.devices.size(); ++d) {
    if (a.devices[d].free_blocks.empty()) continue;
    HT_CHECK(kernels::cuda::watched_idle(int(d)), "[cuda] empty_cache: a collective on cuda:", d,
             " did not finish within its timeout; its cached blocks were kept (cudaFree would wait for it)");
    a.release_cached(a.devices[d]);
  }
}
MemoryStats memory_stats(int device) {
  auto& a = kernels::cuda::g_allocator;
  std::lock_guard<std::mutex> lock(a.mu);
  return size_t(device) < a.devices.size() ? a.devices[size_t(device)].stats : MemoryStats{};
}
void synchronize() {
  if (is_available()) HT_CUDA_CHECK(cudaDeviceSynchronize());
}
}  // namespace cuda
}  // namespace ht
