// CPU backend: the shared elementwise bodies run through the CPU executor, random fills, and the allocator.
#include <cstdlib>

#include "core/storage.h"
#include "kernels/backends.h"
#include "kernels/cpu/executor.h"
#include "kernels/elementwise.h"

namespace ht::kernels::cpu {

using Ew = Elementwise<Executor>;

void unary(UnaryOp op, const RawView& x, const RawView& y, double a, double b) { Ew::unary(op, x, y, a, b); }
void binary(BinaryOp op, const RawView& x1, const RawView& x2, const RawView& out, double a, double b) {
  Ew::binary(op, x1, x2, out, a, b);
}
void where(const RawView& cond, const RawView& x1, const RawView& x2, const RawView& out) { Ew::where(cond, x1, x2, out); }
void copy(const RawView& src, const RawView& dst) { Ew::copy(src, dst); }
void fill(const RawView& dst, double value) { Ew::fill(dst, value); }

void fill_uniform(const RawView& dst, uint64_t seed, uint64_t offset, double low, double high) {
  visit_floating(dst.dtype, "rand", [&](auto tag) {
    using T = typename decltype(tag)::type;
    Executor::run(dst.numel(), UniformBody<T>{static_cast<T*>(dst.data), seed, offset, low, high});
  });
}
void fill_normal(const RawView& dst, uint64_t seed, uint64_t offset, double mean, double std) {
  visit_floating(dst.dtype, "randn", [&](auto tag) {
    using T = typename decltype(tag)::type;
    Executor::run(dst.numel(), NormalBody<T>{static_cast<T*>(dst.data), seed, offset, mean, std});
  });
}

namespace {
// 64-byte aligned host memory (cache lines, AVX-512 loads).
struct CpuAllocator final : Allocator {
  void* allocate(size_t nbytes, int) override {
    void* p = std::aligned_alloc(64, (nbytes + 63) / 64 * 64);
    HT_CHECK(p != nullptr, "[cpu] out of memory allocating ", nbytes, " bytes");
    return p;
  }
  void deallocate(void* p, size_t, int) override { std::free(p); }
};
CpuAllocator g_cpu_allocator;
const bool g_registered = (register_allocator(DeviceType::CPU, &g_cpu_allocator), true);
}  // namespace

}  // namespace ht::kernels::cpu
