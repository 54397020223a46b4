// CUDA row reductions and row softmax: one block per row, warp shuffles then shared memory, opmath accumulation.
#include <cfloat>

#include "kernels/backends.h"
#include "kernels/cuda/check.h"
#include "kernels/functors.h"

namespace ht::kernels::cuda {

namespace {
constexpr int kThreads = 256;

template <class A>
__device__ A warp_sum(A v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

// Block-wide sum; every thread gets the result.
template <class A>
__device__ A block_sum(A v) {
  __shared__ A part[kThreads / 32];
  __shared__ A total;
  v = warp_sum(v);
  if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = v;
  __syncthreads();
  if (threadIdx.x < 32) {
    A w = threadIdx.x < kThreads / 32 ? part[threadIdx.x] : A(0);
    w = warp_sum(w);
    if (threadIdx.x == 0) total = w;
  }
  __syncthreads();
  A r = total;
  __syncthreads();
  return r;
}

// Block-wide arg-extreme with PyTorch's tie and NaN rules (first index wins; NaN beats everything).
template <class A>
__device__ void block_arg(A& v, int64_t& idx, bool want_max) {
  __shared__ A vals[kThreads];
  __shared__ int64_t ids[kThreads];
  vals[threadIdx.x] = v;
  ids[threadIdx.x] = idx;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      A a = vals[threadIdx.x], b = vals[threadIdx.x + s];
      int64_t ia = ids[threadIdx.x], ib = ids[threadIdx.x + s];
      bool take_b;
      if (ib < 0) take_b = false;
      else if (ia < 0) take_b = true;
      else if (m_isnan(a) || m_isnan(b)) take_b = m_isnan(b) && (!m_isnan(a) || ib < ia);
      else take_b = want_max ? (b > a || (b == a && ib < ia)) : (b < a || (b == a && ib < ia));
      if (take_b) {
        vals[threadIdx.x] = b;
        ids[threadIdx.x] = ib;
      }
    }
    __syncthreads();
  }
  v = vals[0];
  idx = ids[0];
  __syncthreads();
}

template <class T, class A, class O>
__global__ void sum_rows_kernel(const T* x, O* out, int64_t cols, bool mean) {
  const T* row = x + int64_t(blockIdx.x) * cols;
  A s = A(0);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += A(opmath_t<T>(row[c]));
  s = block_sum(s);
  if (threadIdx.x == 0) {
    if constexpr (is_float_v<T>) {
      if (mean) s = s / A(cols);
    }
    out[blockIdx.x] = O(s);
  }
}

template <class T>
__global__ void arg_rows_kernel(const T* x, T* values, int64_t* indices, int64_t cols, bool want_max) {
  using A = opmath_t<T>;
  const T* row = x + int64_t(blockIdx.x) * cols;
  A best = A(0);
  int64_t bi = -1;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    A v = A(row[c]);
    if (bi < 0 || (!m_isnan(best) && (m_isnan(v) || (want_max ? v > best : v < best)))) {
      best = v;
      bi = c;
    }
  }
  block_arg(best, bi, want_max);
  if (threadIdx.x == 0) {
    if (values) values[blockIdx.x] = row[bi];
    if (indices) indices[blockIdx.x] = bi;
  }
}

template <class T>
__global__ void softmax_kernel(const T* x, T* y, int64_t cols, bool log) {
  using A = opmath_t<T>;
  const T* xr = x + int64_t(blockIdx.x) * cols;
  T* yr = y + int64_t(blockIdx.x) * cols;
  A mx = -INFINITY;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) mx = fmax(mx, A(xr[c]));
  int64_t dummy = threadIdx.x;
  block_arg(mx, dummy, true);
  A s = A(0);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += m_exp(A(xr[c]) - mx);
  s = block_sum(s);
  A lse = mx + m_log(s);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    yr[c] = log ? T(A(xr[c]) - lse) : T(m_exp(A(xr[c]) - mx) / s);
}

template <class T>
__global__ void softmax_backward_kernel(const T* y, const T* gy, T* gx, int64_t cols, bool log) {
  using A = opmath_t<T>;
  int64_t base = int64_t(blockIdx.x) * cols;
  A dot = A(0);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    dot += log ? A(gy[base + c]) : A(gy[base + c]) * A(y[base + c]);
  dot = block_sum(dot);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    A yv = A(y[base + c]), g = A(gy[base + c]);
    gx[base + c] = log ? T(g - m_exp(yv) * dot) : T(yv * (g - dot));
  }
}

void check_rows(int64_t rows, const char* op) {
  HT_CHECK(rows <= 2147483647, "[", op, "] too many rows for one launch: ", rows);
}
}  // namespace

void reduce_rows(ReduceOp op, const RawView& in, int64_t rows, int64_t cols, const RawView& out,
                 const RawView* indices) {
  if (rows == 0) return;
  check_rows(rows, "reduce");
  set_device(in.device.index);
  visit_dtype(in.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* x = static_cast<const T*>(in.data);
    if (op == ReduceOp::Sum || op == ReduceOp::Mean) {
      if constexpr (is_float_v<T>) {
        sum_rows_kernel<T, opmath_t<T>, T><<<unsigned(rows), kThreads>>>(x, static_cast<T*>(out.data), cols,
                                                                          op == ReduceOp::Mean);
      } else {
        sum_rows_kernel<T, int64_t, int64_t><<<unsigned(rows), kThreads>>>(x, static_cast<int64_t*>(out.data),
                                                                            cols, false);
      }
    } else {
      bool want_max = op == ReduceOp::Max || op == ReduceOp::ArgMax;
      bool values = op == ReduceOp::Max || op == ReduceOp::Min;
      int64_t* idx = values ? (indices ? static_cast<int64_t*>(indices->data) : nullptr)
                            : static_cast<int64_t*>(out.data);
      arg_rows_kernel<T><<<unsigned(rows), kThreads>>>(x, values ? static_cast<T*>(out.data) : nullptr, idx, cols,
                                                      want_max);
    }
  });
  HT_CUDA_CHECK(cudaGetLastError());
}

void softmax_rows(const RawView& in, const RawView& out, int64_t rows, int64_t cols, bool log) {
  if (rows == 0) return;
  check_rows(rows, "softmax");
  set_device(in.device.index);
  visit_floating(in.dtype, "softmax", [&](auto tag) {
    using T = typename decltype(tag)::type;
    softmax_kernel<T><<<unsigned(rows), kThreads>>>(static_cast<const T*>(in.data), static_cast<T*>(out.data), cols,
                                                   log);
  });
  HT_CUDA_CHECK(cudaGetLastError());
}

void softmax_rows_backward(const RawView& y, const RawView& gy, const RawView& gx, int64_t rows, int64_t cols,
                           bool log) {
  if (rows == 0) return;
  check_rows(rows, "softmax_backward");
  set_device(y.device.index);
  visit_floating(y.dtype, "softmax_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    softmax_backward_kernel<T><<<unsigned(rows), kThreads>>>(static_cast<const T*>(y.data),
                                                            static_cast<const T*>(gy.data),
                                                            static_cast<T*>(gx.data), cols, log);
  });
  HT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace ht::kernels::cuda
