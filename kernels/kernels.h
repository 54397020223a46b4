// The one seam between "what" (ops on tensors) and "how" (loops on a device). Everything here works on raw
// strided views; nothing here knows Tensor, ops or autograd. Devices are told apart in kernels/dispatch.cpp.
#pragma once
#include <cstdint>

#include "core/device.h"
#include "core/dtype.h"

namespace ht::kernels {

inline constexpr int kMaxDims = 8;

// A strided view: element (i0..ik) lives at data + sum(i_d * strides[d]) elements.
struct RawView {
  void* data = nullptr;
  DType dtype = kFloat32;
  Device device;
  int ndim = 0;
  int64_t sizes[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};
  int64_t numel() const {
    int64_t n = 1;
    for (int d = 0; d < ndim; ++d) n *= sizes[d];
    return n;
  }
  bool is_contiguous() const {
    int64_t expect = 1;
    for (int d = ndim - 1; d >= 0; --d) {
      if (sizes[d] != 1 && strides[d] != expect) return false;
      expect *= sizes[d];
    }
    return true;
  }
};

enum class UnaryOp : uint8_t {
  Neg, Exp, Log, Sqrt, Rsqrt, Abs, Relu, Sigmoid, Tanh, Reciprocal, Square,
  PowScalar,  // x^a
  Clamp,      // min(max(x, a), b)
  AddScalar,  // x + a
  MulScalar,  // x * a
  RSubScalar, // a - x
  RDivScalar, // a / x
  DivScalar,  // x / a (true division, not multiplication by 1/a)
};

enum class BinaryOp : uint8_t {
  Add, Sub, Mul, Div, Maximum, Minimum, Pow,
  Eq, Ne, Lt, Le, Gt, Ge,        // results are bool
  ReluBwd,                       // (gy, y) -> y > 0 ? gy : 0
  SigmoidBwd,                    // (gy, y) -> gy * y * (1 - y)
  TanhBwd,                       // (gy, y) -> gy * (1 - y*y)
  ClampBwd,                      // (gy, x) -> a <= x <= b ? gy : 0
  PowScalarBwd,                  // (gy, x) -> gy * a * x^(a-1)
};

inline bool is_comparison(BinaryOp op) { return op >= BinaryOp::Eq && op <= BinaryOp::Ge; }

// y = op(x); x and y have y's shape (x already broadcast), the same dtype.
void unary(UnaryOp op, const RawView& x, const RawView& y, double a = 0, double b = 0);
// out = op(x1, x2); operands broadcast to out's shape. x1, x2 share a dtype; out has it too, or bool for
// comparisons. a, b are the op's scalar parameters where it has any.
void binary(BinaryOp op, const RawView& x1, const RawView& x2, const RawView& out, double a = 0, double b = 0);
// out = cond ? x1 : x2 (cond is bool; all broadcast to out).
void where(const RawView& cond, const RawView& x1, const RawView& x2, const RawView& out);
// dst = src, converting dtype, any strides; both on the same device.
void copy(const RawView& src, const RawView& dst);
// dst = src between devices, contiguous bytes of the same dtype.
void copy_bytes_across(const void* src, Device src_dev, void* dst, Device dst_dev, size_t nbytes);
void fill(const RawView& dst, double value);

enum class ReduceOp : uint8_t { Sum, Mean, Max, Min, ArgMax, ArgMin };
// in is contiguous [rows, cols]; out (and indices, int64, for Max/Min/ArgMax/ArgMin) are contiguous [rows].
// Sum/Mean accumulate in opmath (float for 16-bit, double for float64, int64 for integers).
void reduce_rows(ReduceOp op, const RawView& in, int64_t rows, int64_t cols, const RawView& out,
                 const RawView* indices);
// Row-wise softmax / log_softmax over contiguous [rows, cols], computed in opmath.
void softmax_rows(const RawView& in, const RawView& out, int64_t rows, int64_t cols, bool log);
// gx from y (the forward output) and gy, all contiguous [rows, cols].
void softmax_rows_backward(const RawView& y, const RawView& gy, const RawView& gx, int64_t rows, int64_t cols,
                           bool log);

// C[b] = op(A[b]) @ op(B[b]) for b < batch, row-major matrices with leading dims lda/ldb/ldc and batch strides
// (elements). alpha/beta as in BLAS. A, B, C share a floating dtype; 16-bit inputs accumulate in float.
struct GemmArgs {
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0;
  const void* a = nullptr; int64_t lda = 0, stride_a = 0;
  const void* b = nullptr; int64_t ldb = 0, stride_b = 0;
  void* c = nullptr; int64_t ldc = 0, stride_c = 0;
  int64_t batch = 1;
  double alpha = 1, beta = 0;
  DType dtype = kFloat32;
  Device device;
};
void gemm(const GemmArgs& args);

// Random fill of a contiguous floating view from counter-based streams (Philox-like), identical on every
// device for the same (seed, offset).
void fill_uniform(const RawView& dst, uint64_t seed, uint64_t offset, double low, double high);
void fill_normal(const RawView& dst, uint64_t seed, uint64_t offset, double mean, double std);

}  // namespace ht::kernels
