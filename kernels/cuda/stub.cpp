// Built instead of the CUDA runtime (kernels/cuda/runtime.cpp) when halftorch is configured without CUDA: no
// device is there, and the CUDA allocator throws, so asking for a CUDA tensor says why. The kernels need no
// stub: kernels/dispatch.cpp's CUDA branch is that error itself in such a build.
#include "core/storage.h"
#include "core/error.h"

namespace ht {
namespace cuda {
bool is_available() { return false; }
int device_count() { return 0; }
void empty_cache() {}
MemoryStats memory_stats(int) { return {}; }
void synchronize() {}
}  // namespace cuda

namespace kernels::cuda {
namespace {
struct NoCudaAllocator final : Allocator {
  void* allocate(size_t, int) override { fail("[cuda] halftorch was built without CUDA"); }
  void deallocate(void*, size_t, int) override {}
};
NoCudaAllocator g_no_cuda_allocator;
const bool g_registered = (register_allocator(DeviceType::CUDA, &g_no_cuda_allocator), true);
}  // namespace
}  // namespace kernels::cuda
}  // namespace ht
