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
  Neg, Exp, Log, Sqrt, Rsqrt, Abs, Relu, Sigmoid, Tanh, Erf, Square,
  PowScalar,  // x^a
  Clamp,      // min(max(x, a), b)
  AddScalar,  // x + a
  MulScalar,  // x * a
  RSubScalar, // a - x
  RDivScalar, // a / x
  DivScalar,  // x / a (true division, not multiplication by 1/a)
};

enum class BinaryOp : uint8_t {
  Add, Sub, Mul, Div, Maximum, Minimum,
  Eq, Ne, Lt, Le, Gt, Ge,        // results are bool
  ReluBwd,                       // (gy, y) -> y > 0 ? gy : 0
  SigmoidBwd,                    // (gy, y) -> gy * y * (1 - y)
  TanhBwd,                       // (gy, y) -> gy * (1 - y*y)
  ClampBwd,                      // (gy, x) -> a <= x <= b ? gy : 0
  PowScalarBwd,                  // (gy, x) -> gy * a * x^(a-1)
};

// The op's name for error messages ("exp", "relu_backward").
const char* op_name(UnaryOp op);
const char* op_name(BinaryOp op);

// dst = src between devices, contiguous bytes of the same dtype.
void copy_bytes_across(const void* src, Device src_dev, void* dst, Device dst_dev, size_t nbytes);

enum class ReduceOp : uint8_t { Sum, Mean, Max, Min, ArgMax, ArgMin };

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

// ---- The entry points, each once: X(name, (parameters), (arguments), (device)). This list declares them here
// and in the cpu:: and cuda:: backends (kernels/backends.h), and kernels/dispatch.cpp defines each as a switch
// on `device`, an expression over the parameters that also checks every operand is on that one device (see
// kernels/dispatch.h). A new kernel is one line here, its CPU and its CUDA definition.
//
// unary:  y = op(x); x and y have y's shape (x already broadcast), the same dtype; a, b are the op's scalars
//         where it has any (0 otherwise).
// binary: out = op(x1, x2); operands broadcast to out's shape. x1, x2 share a dtype; out has it too, or bool
//         for comparisons.
// where:  out = cond ? x1 : x2 (cond is bool; all broadcast to out).
// copy:   dst = src, converting dtype, any strides; both on the same device.
// reduce_rows: in is contiguous [rows, cols]; out (and indices, int64, for Max/Min/ArgMax/ArgMin) are
//         contiguous [rows]. Sum/Mean accumulate in opmath (float for 16-bit, double for float64, int64 for
//         integers).
// softmax_rows: row-wise softmax / log_softmax over contiguous [rows, cols], computed in opmath;
//         softmax_rows_backward: gx from y (the forward output) and gy, all contiguous [rows, cols].
// gemm:   see GemmArgs.
// fill_uniform / fill_normal: a contiguous floating view from counter-based streams, identical on every device
//         for the same (seed, offset).
// gather: out(p) = src(p with dim := index(p)) over the index's positions p; out has the index's shape, src its
//         number of dims; index (int64 or int32, any strides, stride 0 where broadcast) holds values in range.
// scatter: dst(p with dim := index(p)) = src(p), or += with accumulate; repeated indices: the last wins, sums
//         add in index order, the same on every device.
// sort_rows: sorts each row of contiguous [rows, cols] values in place (stable; NaN above every number) and
//         writes the original positions into int64 indices; scratch buffers have the same shapes.
// cumsum: out = running sum of in along dim (reverse: from the end), in opmath; in and out have one shape.
#define HT_CORE_KERNELS(X)                                                                                        \
  X(unary, (UnaryOp op, const RawView& x, const RawView& y, double a, double b), (op, x, y, a, b),                 \
    (common_device("unary", {&x, &y})))                                                                           \
  X(binary, (BinaryOp op, const RawView& x1, const RawView& x2, const RawView& out, double a, double b),          \
    (op, x1, x2, out, a, b), (common_device("binary", {&x1, &x2, &out})))                                         \
  X(where, (const RawView& cond, const RawView& x1, const RawView& x2, const RawView& out), (cond, x1, x2, out),  \
    (common_device("where", {&cond, &x1, &x2, &out})))                                                            \
  X(copy, (const RawView& src, const RawView& dst), (src, dst), (common_device("copy", {&src, &dst})))            \
  X(fill, (const RawView& dst, double value), (dst, value), (dst.device))                                         \
  X(reduce_rows, (ReduceOp op, const RawView& in, int64_t rows, int64_t cols, const RawView& out,                 \
                  const RawView* indices),                                                                        \
    (op, in, rows, cols, out, indices), (common_device("reduce", {&in, &out, indices})))                          \
  X(softmax_rows, (const RawView& in, const RawView& out, int64_t rows, int64_t cols, bool log),                  \
    (in, out, rows, cols, log), (common_device("softmax", {&in, &out})))                                          \
  X(softmax_rows_backward, (const RawView& y, const RawView& gy, const RawView& gx, int64_t rows, int64_t cols,   \
                            bool log),                                                                            \
    (y, gy, gx, rows, cols, log), (common_device("softmax_backward", {&y, &gy, &gx})))                            \
  X(gemm, (const GemmArgs& args), (args), (args.device))                                                          \
  X(fill_uniform, (const RawView& dst, uint64_t seed, uint64_t offset, double low, double high),                  \
    (dst, seed, offset, low, high), (dst.device))                                                                 \
  X(fill_normal, (const RawView& dst, uint64_t seed, uint64_t offset, double mean, double std),                   \
    (dst, seed, offset, mean, std), (dst.device))                                                                 \
  X(gather, (const RawView& src, int64_t dim, const RawView& index, const RawView& out), (src, dim, index, out),   \
    (common_device("gather", {&src, &index, &out})))                                                              \
  X(scatter, (const RawView& dst, int64_t dim, const RawView& index, const RawView& src, bool accumulate),        \
    (dst, dim, index, src, accumulate), (common_device("scatter", {&dst, &index, &src})))                         \
  X(sort_rows, (const RawView& values, const RawView& indices, const RawView& scratch_values,                     \
                const RawView& scratch_indices, int64_t rows, int64_t cols, bool descending),                     \
    (values, indices, scratch_values, scratch_indices, rows, cols, descending),                                   \
    (common_device("sort", {&values, &indices, &scratch_values, &scratch_indices})))                              \
  X(cumsum, (const RawView& in, int64_t dim, const RawView& out, bool reverse), (in, dim, out, reverse),          \
    (common_device("cumsum", {&in, &out})))

// One declaration from an entry of a kernel list.
#define HT_DECLARE_KERNEL(name, params, args, device) void name params;

HT_CORE_KERNELS(HT_DECLARE_KERNEL)

}  // namespace ht::kernels
