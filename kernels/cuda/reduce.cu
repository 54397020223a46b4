// CUDA row reductions and row softmax: one block per row (a long row of few, as in a full reduction, is cut into
// slices whose results a second pass combines), warp shuffles then shared memory, opmath accumulation.
#include <algorithm>
#include <cfloat>
#include <type_traits>

#include "core/storage.h"
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

// Sums of column slices: block (row, slice) sums row[slice * chunk, +chunk) into out[row * slices + slice],
// divided by `divisor` when that is not 0 (a mean in a single pass). A second pass over the slices' sums, with
// this same kernel, finishes a row cut into several slices.
template <class T, class A, class O>
__global__ void sum_rows_kernel(const T* x, O* out, int64_t cols, int64_t chunk, int64_t divisor) {
  const T* row = x + int64_t(blockIdx.x) * cols;
  const int64_t c0 = int64_t(blockIdx.y) * chunk, c1 = c0 + chunk < cols ? c0 + chunk : cols;
  A s = A(0);
  for (int64_t c = c0 + threadIdx.x; c < c1; c += blockDim.x) s += A(opmath_t<T>(row[c]));
  s = block_sum(s);
  if (threadIdx.x == 0) {
    if constexpr (is_float_v<A>) {
      if (divisor) s = s / A(divisor);
    }
    out[int64_t(blockIdx.x) * gridDim.y + blockIdx.y] = O(s);
  }
}

// Keeps the first extreme in scan order, with PyTorch's NaN rule (a NaN beats everything).
template <class A>
__device__ void consider(A& best, int64_t& bi, A v, int64_t i, bool want_max) {
  if (i < 0) return;
  if (bi < 0 || (!m_isnan(best) && (m_isnan(v) || (want_max ? v > best : v < best)))) {
    best = v;
    bi = i;
  }
}

// The extreme of each column slice (as sum_rows_kernel cuts them): its value and its column in the row.
template <class T>
__global__ void arg_rows_kernel(const T* x, opmath_t<T>* part_v, int64_t* part_i, int64_t cols, int64_t chunk,
                                bool want_max) {
  using A = opmath_t<T>;
  const T* row = x + int64_t(blockIdx.x) * cols;
  const int64_t c0 = int64_t(blockIdx.y) * chunk, c1 = c0 + chunk < cols ? c0 + chunk : cols;
  A best = A(0);
  int64_t bi = -1;
  for (int64_t c = c0 + threadIdx.x; c < c1; c += blockDim.x) consider(best, bi, A(row[c]), c, want_max);
  block_arg(best, bi, want_max);
  if (threadIdx.x == 0) {
    int64_t at = int64_t(blockIdx.x) * gridDim.y + blockIdx.y;
    part_v[at] = best;
    part_i[at] = bi;
  }
}

// One block per row: the extreme over the row's slices, then its value (read back from x) and index.
template <class T>
__global__ void arg_finish_kernel(const T* x, const opmath_t<T>* part_v, const int64_t* part_i, int64_t slices,
                                  int64_t cols, T* values, int64_t* indices, bool want_max) {
  using A = opmath_t<T>;
  const int64_t base = int64_t(blockIdx.x) * slices;
  A best = A(0);
  int64_t bi = -1;
  for (int64_t k = threadIdx.x; k < slices; k += blockDim.x)
    consider(best, bi, part_v[base + k], part_i[base + k], want_max);
  block_arg(best, bi, want_max);
  if (threadIdx.x == 0) {
    if (values) values[blockIdx.x] = x[int64_t(blockIdx.x) * cols + bi];
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

// A row is cut into slices when there are too few rows to fill the GPU (a full reduction is one row): about
// four blocks per multiprocessor, each slice at least kMinSlice columns.
constexpr int64_t kMinSlice = 16384;

int64_t slices_for(int64_t rows, int64_t cols, int device) {
  int64_t target = 4 * int64_t(sm_count(device));
  if (rows >= target || cols < 2 * kMinSlice) return 1;
  int64_t slices = std::min((target + rows - 1) / rows, cols / kMinSlice);
  return std::max<int64_t>(1, std::min<int64_t>(slices, 65535));
}

void reduce_rows(ReduceOp op, const RawView& in, int64_t rows, int64_t cols, const RawView& out,
                 const RawView* indices) {
  if (rows == 0) return;
  check_rows(rows, "reduce");
  set_device(in.device.index);
  const int64_t slices = slices_for(rows, cols, in.device.index);
  const int64_t chunk = (cols + slices - 1) / slices;
  const dim3 grid{unsigned(rows), unsigned(slices)};
  visit_dtype(in.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using A = std::conditional_t<is_float_v<T>, opmath_t<T>, int64_t>;
    using O = std::conditional_t<is_float_v<T>, T, int64_t>;
    const T* x = static_cast<const T*>(in.data);
    if (op == ReduceOp::Sum || op == ReduceOp::Mean) {
      const int64_t divisor = is_float_v<T> && op == ReduceOp::Mean ? cols : 0;
      O* y = static_cast<O*>(out.data);
      if (slices == 1) {
        sum_rows_kernel<T, A, O><<<grid, kThreads>>>(x, y, cols, cols, divisor);
      } else {
        // freed back to the caching allocator on return; the kernels below run first on the same stream
        Storage part(size_t(rows * slices) * sizeof(A), in.device);
        A* p = static_cast<A*>(part.data());
        sum_rows_kernel<T, A, A><<<grid, kThreads>>>(x, p, cols, chunk, 0);
        HT_CUDA_CHECK(cudaGetLastError());
        sum_rows_kernel<A, A, O><<<unsigned(rows), kThreads>>>(p, y, slices, slices, divisor);
      }
    } else {
      using V = opmath_t<T>;
      bool want_max = op == ReduceOp::Max || op == ReduceOp::ArgMax;
      bool values = op == ReduceOp::Max || op == ReduceOp::Min;
      int64_t* idx = values ? (indices ? static_cast<int64_t*>(indices->data) : nullptr)
                            : static_cast<int64_t*>(out.data);
      T* vals = values ? static_cast<T*>(out.data) : nullptr;
      Storage part(size_t(rows * slices) * (sizeof(V) + sizeof(int64_t)), in.device);
      int64_t* pi = static_cast<int64_t*>(part.data());
      V* pv = reinterpret_cast<V*>(pi + rows * slices);
      arg_rows_kernel<T><<<grid, kThreads>>>(x, pv, pi, cols, chunk, want_max);
      HT_CUDA_CHECK(cudaGetLastError());
      arg_finish_kernel<T><<<unsigned(rows), kThreads>>>(x, pv, pi, slices, cols, vals, idx, want_max);
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
