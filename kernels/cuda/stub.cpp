// Built instead of the CUDA backend when halftorch is configured without CUDA: every entry point throws, and so
// does the CUDA allocator, so asking for a CUDA tensor says why.
#include "core/storage.h"
#include "kernels/backends.h"

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
[[noreturn]] void no_cuda() { fail("[cuda] halftorch was built without CUDA"); }

struct NoCudaAllocator final : Allocator {
  void* allocate(size_t, int) override { no_cuda(); }
  void deallocate(void*, size_t, int) override {}
};
NoCudaAllocator g_no_cuda_allocator;
const bool g_registered = (register_allocator(DeviceType::CUDA, &g_no_cuda_allocator), true);
}  // namespace
void unary(UnaryOp, const RawView&, const RawView&, double, double) { no_cuda(); }
void binary(BinaryOp, const RawView&, const RawView&, const RawView&, double, double) { no_cuda(); }
void where(const RawView&, const RawView&, const RawView&, const RawView&) { no_cuda(); }
void copy(const RawView&, const RawView&) { no_cuda(); }
void fill(const RawView&, double) { no_cuda(); }
void reduce_rows(ReduceOp, const RawView&, int64_t, int64_t, const RawView&, const RawView*) { no_cuda(); }
void softmax_rows(const RawView&, const RawView&, int64_t, int64_t, bool) { no_cuda(); }
void softmax_rows_backward(const RawView&, const RawView&, const RawView&, int64_t, int64_t, bool) { no_cuda(); }
void gemm(const GemmArgs&) { no_cuda(); }
void fill_uniform(const RawView&, uint64_t, uint64_t, double, double) { no_cuda(); }
void fill_normal(const RawView&, uint64_t, uint64_t, double, double) { no_cuda(); }
void copy_bytes(const void*, Device, void*, Device, size_t) { no_cuda(); }
}  // namespace kernels::cuda
}  // namespace ht
