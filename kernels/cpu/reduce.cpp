// CPU row reductions and row softmax over contiguous [rows, cols], accumulating in opmath.
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/backends.h"
#include "kernels/functors.h"

namespace ht::kernels::cpu {

namespace {
template <class T> using acc_t = std::conditional_t<is_float_v<T>, opmath_t<T>, int64_t>;

// Sum of n contiguous values with 8 independent accumulators (vectorisable, and a shorter error chain).
template <class T, class A>
A sum_span(const T* x, int64_t n) {
  A acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += A(opmath_t<T>(x[i + k]));
  for (; i < n; ++i) acc[0] += A(opmath_t<T>(x[i]));
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// One long row: chunks summed in parallel, then the partial sums in order (deterministic for a thread count).
template <class T, class A>
A sum_long_row(const T* x, int64_t n) {
  constexpr int64_t kChunk = 1 << 16;
  int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<A> part(static_cast<size_t>(chunks));
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) part[size_t(c)] = sum_span<T, A>(x + c * kChunk, std::min(kChunk, n - c * kChunk));
  A s = A(0);
  for (A p : part) s += p;
  return s;
}
}  // namespace

void reduce_rows(ReduceOp op, const RawView& in, int64_t rows, int64_t cols, const RawView& out,
                 const RawView* indices) {
  visit_dtype(in.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using A = acc_t<T>;
    const T* x = static_cast<const T*>(in.data);
    int64_t* idx = indices ? static_cast<int64_t*>(indices->data) : nullptr;
#pragma omp parallel for schedule(static) if (rows * cols > 65536 && rows > 1)
    for (int64_t r = 0; r < rows; ++r) {
      const T* row = x + r * cols;
      if (op == ReduceOp::Sum || op == ReduceOp::Mean) {
        A s = rows == 1 ? sum_long_row<T, A>(row, cols) : sum_span<T, A>(row, cols);
        if (op == ReduceOp::Mean) {
          if constexpr (is_float_v<T>) s = cols ? s / A(cols) : A(NAN);
        }
        if constexpr (std::is_same_v<T, bool>) static_cast<int64_t*>(out.data)[r] = s;
        else if (out.dtype == kInt64) static_cast<int64_t*>(out.data)[r] = int64_t(s);
        else static_cast<T*>(out.data)[r] = T(s);
      } else {
        bool want_max = op == ReduceOp::Max || op == ReduceOp::ArgMax;
        int64_t best = 0;
        auto bv = opmath_t<T>(row[0]);
        for (int64_t c = 1; c < cols; ++c) {
          auto v = opmath_t<T>(row[c]);
          if (m_isnan(bv)) break;  // NaN wins, first occurrence (as PyTorch)
          if (m_isnan(v) || (want_max ? v > bv : v < bv)) {
            bv = v;
            best = c;
          }
        }
        if (op == ReduceOp::Max || op == ReduceOp::Min) static_cast<T*>(out.data)[r] = row[best];
        else static_cast<int64_t*>(out.data)[r] = best;
        if (idx) idx[r] = best;
      }
    }
  });
}

void softmax_rows(const RawView& in, const RawView& out, int64_t rows, int64_t cols, bool log) {
  visit_floating(in.dtype, "softmax", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using A = opmath_t<T>;
    const T* x = static_cast<const T*>(in.data);
    T* y = static_cast<T*>(out.data);
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = x + r * cols;
      T* yr = y + r * cols;
      A mx = -std::numeric_limits<A>::infinity();
      for (int64_t c = 0; c < cols; ++c) mx = std::max(mx, A(xr[c]));
      A s = 0;
      for (int64_t c = 0; c < cols; ++c) s += m_exp(A(xr[c]) - mx);
      if (log) {
        A lse = mx + m_log(s);
        for (int64_t c = 0; c < cols; ++c) yr[c] = T(A(xr[c]) - lse);
      } else {
        for (int64_t c = 0; c < cols; ++c) yr[c] = T(m_exp(A(xr[c]) - mx) / s);
      }
    }
  });
}

void softmax_rows_backward(const RawView& yv, const RawView& gyv, const RawView& gxv, int64_t rows, int64_t cols,
                           bool log) {
  visit_floating(yv.dtype, "softmax_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using A = opmath_t<T>;
    const T* y = static_cast<const T*>(yv.data);
    const T* gy = static_cast<const T*>(gyv.data);
    T* gx = static_cast<T*>(gxv.data);
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
    for (int64_t r = 0; r < rows; ++r) {
      const T* yr = y + r * cols;
      const T* gr = gy + r * cols;
      T* xr = gx + r * cols;
      A dot = 0;
      // log_softmax: gx = gy - exp(y) * sum(gy); softmax: gx = y * (gy - sum(gy * y))
      for (int64_t c = 0; c < cols; ++c) dot += log ? A(gr[c]) : A(gr[c]) * A(yr[c]);
      for (int64_t c = 0; c < cols; ++c)
        xr[c] = log ? T(A(gr[c]) - m_exp(A(yr[c])) * dot) : T(A(yr[c]) * (A(gr[c]) - dot));
    }
  });
}

}  // namespace ht::kernels::cpu
