// CUDA backend, elementwise: the shared bodies (kernels/elementwise.h) run by the grid-stride executor
// (kernels/cuda/executor.cuh), with 16-byte vector loads on contiguous operands.
#include "kernels/backends.h"
#include "kernels/cuda/executor.cuh"
#include "kernels/elementwise.h"

namespace ht::kernels::cuda {

using Ew = Elementwise<Executor>;

void unary(UnaryOp op, const RawView& x, const RawView& y, double a, double b) {
  set_device(y.device.index);
  Ew::unary(op, x, y, a, b);
}
void binary(BinaryOp op, const RawView& x1, const RawView& x2, const RawView& out, double a, double b) {
  set_device(out.device.index);
  Ew::binary(op, x1, x2, out, a, b);
}
void where(const RawView& cond, const RawView& x1, const RawView& x2, const RawView& out) {
  set_device(out.device.index);
  Ew::where(cond, x1, x2, out);
}
void copy(const RawView& src, const RawView& dst) {
  set_device(dst.device.index);
  Ew::copy(src, dst);
}
void fill(const RawView& dst, double value) {
  set_device(dst.device.index);
  Ew::fill(dst, value);
}
void fill_uniform(const RawView& dst, uint64_t seed, uint64_t offset, double low, double high) {
  set_device(dst.device.index);
  visit_floating(dst.dtype, "rand", [&](auto tag) {
    using T = typename decltype(tag)::type;
    Executor::run(dst.numel(), UniformBody<T>{static_cast<T*>(dst.data), seed, offset, low, high});
  });
}
void fill_normal(const RawView& dst, uint64_t seed, uint64_t offset, double mean, double std) {
  set_device(dst.device.index);
  visit_floating(dst.dtype, "randn", [&](auto tag) {
    using T = typename decltype(tag)::type;
    Executor::run(dst.numel(), NormalBody<T>{static_cast<T*>(dst.data), seed, offset, mean, std});
  });
}

}  // namespace ht::kernels::cuda
