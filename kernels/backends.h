// Entry points each backend implements; kernels/dispatch.cpp picks one by device. Signatures mirror kernels.h.
#pragma once
#include "kernels/kernels.h"

#define HT_BACKEND_DECLS                                                                                   \
  void unary(UnaryOp op, const RawView& x, const RawView& y, double a, double b);                        \
  void binary(BinaryOp op, const RawView& x1, const RawView& x2, const RawView& out, double a, double b); \
  void where(const RawView& cond, const RawView& x1, const RawView& x2, const RawView& out);             \
  void copy(const RawView& src, const RawView& dst);                                                       \
  void fill(const RawView& dst, double value);                                                             \
  void reduce_rows(ReduceOp op, const RawView& in, int64_t rows, int64_t cols, const RawView& out,         \
                   const RawView* indices);                                                                \
  void softmax_rows(const RawView& in, const RawView& out, int64_t rows, int64_t cols, bool log);          \
  void softmax_rows_backward(const RawView& y, const RawView& gy, const RawView& gx, int64_t rows,         \
                             int64_t cols, bool log);                                                      \
  void gemm(const GemmArgs& args);                                                                         \
  void fill_uniform(const RawView& dst, uint64_t seed, uint64_t offset, double low, double high);         \
  void fill_normal(const RawView& dst, uint64_t seed, uint64_t offset, double mean, double std);

namespace ht::kernels::cpu {
HT_BACKEND_DECLS
}
namespace ht::kernels::cuda {
HT_BACKEND_DECLS
// dst = src across host and device (either side may be CUDA), nbytes contiguous.
void copy_bytes(const void* src, Device src_dev, void* dst, Device dst_dev, size_t nbytes);
}
