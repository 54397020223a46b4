// Host memory for CPU tensors. Small blocks come from malloc (64-byte aligned: cache lines, AVX-512 loads).
// Blocks from 256 KiB on (activations, gradients, a data loader's per-image tensors) are kept when freed and
// handed out again for the same rounded size, as the CUDA caching allocator does: a training or evaluation step
// allocates the same sizes every time, and fresh pages cost a page fault and a zeroing each (over 10% of a
// ResNet-18 step on 2 cores; malloc gives back the 64 per-image tensors a loader frees after each batch, and
// faulting them in again took a fifth of the loader's time). Blocks of 1 MiB and more are rounded to 2 MiB
// (2 MiB aligned); smaller cached blocks are rounded to 64 KiB, so they fall in 12 sizes.
//
// HT_CPU_CACHE_MB caps the bytes kept in the cache (default 4096; 0 turns caching off). A failed allocation
// first returns the cache to the system and tries again.
//
// HT_CPU_HUGE_PAGES=1 asks for transparent huge pages on blocks of 1 MiB and more (madvise MADV_HUGEPAGE), as
// PyTorch's THP_MEM_ALLOC_ENABLE=1 does; off by default, as there. Measured on this project's 2-core VM: steady
// 224x224 bf16 training steps about 4% faster (TLB), but a process's first faults cost 0.7 to 8.9 s of kernel
// time instead of 0.4 to 0.8 s (2 MiB pages zeroed whole, often pages the host must back afresh), which took
// the 10-step end-to-end run from 2.7-3.0 s to 3.6-5.5 s.
#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/storage.h"
#include "kernels/kernels.h"

namespace ht::kernels::cpu {

namespace {

constexpr size_t kCachedBlock = size_t(256) << 10;  // from here on blocks are cached
constexpr size_t kMediumStep = size_t(64) << 10;    // rounding of cached blocks below kLargeBlock
constexpr size_t kLargeBlock = size_t(1) << 20;     // from here on blocks are huge pages
constexpr size_t kHugePage = size_t(2) << 20;       // alignment and rounding of large blocks

// Read when the library loads, where an exception would end the program: a bad value is named and ignored.
bool huge_pages_from_env() {
  const char* text = std::getenv("HT_CPU_HUGE_PAGES");
  if (!text || !*text || std::string(text) == "0") return false;
  if (std::string(text) == "1") return true;
  std::fprintf(stderr, "halftorch: warning: HT_CPU_HUGE_PAGES must be 0 or 1, got '%s'; using 0\n", text);
  return false;
}
size_t cache_limit_from_env() {
  constexpr size_t kDefault = size_t(4096) << 20;
  const char* text = std::getenv("HT_CPU_CACHE_MB");
  if (!text || !*text) return kDefault;
  char* end = nullptr;
  unsigned long long mb = std::strtoull(text, &end, 10);
  if (*end != '\0' || text[0] < '0' || text[0] > '9') {
    std::fprintf(stderr, "halftorch: warning: HT_CPU_CACHE_MB must be a whole number of MiB, got '%s'; using 4096\n",
                 text);
    return kDefault;
  }
  return size_t(mb) << 20;
}

struct CachingCpuAllocator final : Allocator {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free_blocks;  // rounded size -> blocks
  size_t cached_bytes = 0;
  size_t limit = cache_limit_from_env();
  const bool huge_pages = huge_pages_from_env();

  static size_t rounded(size_t nbytes) {
    if (nbytes < kCachedBlock) return (nbytes + 63) / 64 * 64;
    if (nbytes < kLargeBlock) return (nbytes + kMediumStep - 1) / kMediumStep * kMediumStep;
    return (nbytes + kHugePage - 1) / kHugePage * kHugePage;
  }

  void release_cache() {
    for (auto& [size, blocks] : free_blocks)
      for (void* p : blocks) std::free(p);
    free_blocks.clear();
    cached_bytes = 0;
  }

  void* fresh(size_t size) const {
    if (size < kLargeBlock) return std::aligned_alloc(64, size);
    void* p = std::aligned_alloc(kHugePage, size);
    if (p && huge_pages) madvise(p, size, MADV_HUGEPAGE);  // advice only: without THP the block works the same
    return p;
  }

  void* allocate(size_t nbytes, int) override {
    const size_t size = rounded(nbytes);
    if (size >= kCachedBlock) {
      std::lock_guard<std::mutex> lock(mu);
      auto it = free_blocks.find(size);
      if (it != free_blocks.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_bytes -= size;
        return p;
      }
    }
    void* p = fresh(size);
    if (!p && size >= kCachedBlock) {
      std::lock_guard<std::mutex> lock(mu);
      release_cache();
      p = fresh(size);
    }
    HT_CHECK(p != nullptr, "[cpu] out of memory allocating ", nbytes, " bytes");
    return p;
  }

  void deallocate(void* p, size_t nbytes, int) override {
    const size_t size = rounded(nbytes);
    if (size >= kCachedBlock) {
      std::lock_guard<std::mutex> lock(mu);
      if (cached_bytes + size <= limit) {
        free_blocks[size].push_back(p);
        cached_bytes += size;
        return;
      }
    }
    std::free(p);
  }
};

// Never destroyed: tensors in other static objects may be freed after this file's statics are gone.
CachingCpuAllocator& cpu_allocator() {
  static auto* allocator = new CachingCpuAllocator;
  return *allocator;
}
const bool g_registered = (register_allocator(DeviceType::CPU, &cpu_allocator()), true);

}  // namespace

}  // namespace ht::kernels::cpu
