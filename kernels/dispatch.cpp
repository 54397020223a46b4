// The one place devices are told apart: each entry point checks its operands share a device and forwards.
#include <cstring>

#include "kernels/backends.h"
#include "kernels/dispatch.h"

namespace ht::kernels {

void unary(UnaryOp op, const RawView& x, const RawView& y, double a, double b) {
  HT_DISPATCH(unary, common_device("unary", {&x, &y}), op, x, y, a, b);
}
void binary(BinaryOp op, const RawView& x1, const RawView& x2, const RawView& out, double a, double b) {
  HT_DISPATCH(binary, common_device("binary", {&x1, &x2, &out}), op, x1, x2, out, a, b);
}
void where(const RawView& cond, const RawView& x1, const RawView& x2, const RawView& out) {
  HT_DISPATCH(where, common_device("where", {&cond, &x1, &x2, &out}), cond, x1, x2, out);
}
void copy(const RawView& src, const RawView& dst) { HT_DISPATCH(copy, common_device("copy", {&src, &dst}), src, dst); }
void fill(const RawView& dst, double value) { HT_DISPATCH(fill, dst.device, dst, value); }
void reduce_rows(ReduceOp op, const RawView& in, int64_t rows, int64_t cols, const RawView& out,
                 const RawView* indices) {
  HT_DISPATCH(reduce_rows, common_device("reduce", {&in, &out}), op, in, rows, cols, out, indices);
}
void softmax_rows(const RawView& in, const RawView& out, int64_t rows, int64_t cols, bool log) {
  HT_DISPATCH(softmax_rows, common_device("softmax", {&in, &out}), in, out, rows, cols, log);
}
void softmax_rows_backward(const RawView& y, const RawView& gy, const RawView& gx, int64_t rows, int64_t cols,
                           bool log) {
  HT_DISPATCH(softmax_rows_backward, common_device("softmax_backward", {&y, &gy, &gx}), y, gy, gx, rows, cols, log);
}
void gemm(const GemmArgs& args) { HT_DISPATCH(gemm, args.device, args); }
void fill_uniform(const RawView& dst, uint64_t seed, uint64_t offset, double low, double high) {
  HT_DISPATCH(fill_uniform, dst.device, dst, seed, offset, low, high);
}
void fill_normal(const RawView& dst, uint64_t seed, uint64_t offset, double mean, double std) {
  HT_DISPATCH(fill_normal, dst.device, dst, seed, offset, mean, std);
}

void copy_bytes_across(const void* src, Device src_dev, void* dst, Device dst_dev, size_t nbytes) {
  if (src_dev.is_cpu() && dst_dev.is_cpu()) {
    std::memcpy(dst, src, nbytes);
    return;
  }
  cuda::copy_bytes(src, src_dev, dst, dst_dev, nbytes);
}

}  // namespace ht::kernels
