// CUDA batch norm and pooling: the maps are the shared bodies of kernels/nn_bodies.h under a grid-stride
// executor; the per-channel sums are one block per channel. Running statistics are updated on the device, so
// nothing here synchronises with the host.
#include <memory>

#include "core/storage.h"
#include "kernels/cuda/check.h"
#include "kernels/nn_backends.h"
#include "kernels/nn_bodies.h"

namespace ht::kernels::cuda {

namespace {

constexpr int kThreads = 256;

template <class Body>
__global__ void nn_grid_stride(int64_t n, Body body) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    body(i);
}

struct NnExecutor {
  template <class Body>
  static void run(int64_t n, const Body& body) {
    if (n <= 0) return;
    nn_grid_stride<<<grid_for(n, kThreads), kThreads>>>(n, body);
    HT_CUDA_CHECK(cudaGetLastError());
  }
  template <class Body>
  static void run_channels(const BatchNormShape& s, const Body& body) {
    run(s.n * s.c * s.hw, FlatChannels<Body>{body, s.c, s.hw});
  }
};
using Maps = NnMaps<NnExecutor>;

// Block-wide sum of two values; thread 0 gets the totals.
template <class A>
__device__ void block_sum2(A& a, A& b) {
  __shared__ A sa[kThreads], sb[kThreads];
  sa[threadIdx.x] = a;
  sb[threadIdx.x] = b;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      sa[threadIdx.x] += sa[threadIdx.x + s];
      sb[threadIdx.x] += sb[threadIdx.x + s];
    }
    __syncthreads();
  }
  a = sa[0];
  b = sb[0];
  __syncthreads();
}

// One block per channel: mean and invstd of x (two passes), and the running-stat update.
template <class T>
__global__ void bn_stats_kernel(BatchNormShape s, const T* x, opmath_t<T>* mean, opmath_t<T>* invstd, T* rm, T* rv,
                                double momentum, double eps) {
  using A = opmath_t<T>;
  int64_t c = blockIdx.x, m = s.n * s.hw;
  A sum = 0, unused = 0;
  for (int64_t i = threadIdx.x; i < m; i += blockDim.x) sum += A(x[((i / s.hw) * s.c + c) * s.hw + i % s.hw]);
  block_sum2(sum, unused);
  A mu = sum / A(m);
  A sq = 0;
  unused = 0;
  for (int64_t i = threadIdx.x; i < m; i += blockDim.x) {
    A d = A(x[((i / s.hw) * s.c + c) * s.hw + i % s.hw]) - mu;
    sq += d * d;
  }
  block_sum2(sq, unused);
  if (threadIdx.x == 0) {
    mean[c] = mu;
    invstd[c] = A(1) / sqrt(sq / A(m) + A(eps));
    if (rm) rm[c] = T(A(momentum) * mu + A(1 - momentum) * A(rm[c]));
    if (rv) rv[c] = T(A(momentum) * (m > 1 ? sq / A(m - 1) : A(NAN)) + A(1 - momentum) * A(rv[c]));
  }
}

// One block per channel: sum(gy) and sum(gy * xhat), and the weight / bias gradients.
template <class T>
__global__ void bn_grad_sums_kernel(BatchNormShape s, const T* x, const T* gy, const opmath_t<T>* mean,
                                    const opmath_t<T>* invstd, opmath_t<T>* sum_gy, opmath_t<T>* sum_dot, T* gw,
                                    T* gb) {
  using A = opmath_t<T>;
  int64_t c = blockIdx.x, m = s.n * s.hw;
  A sg = 0, sd = 0;
  for (int64_t i = threadIdx.x; i < m; i += blockDim.x) {
    int64_t at = ((i / s.hw) * s.c + c) * s.hw + i % s.hw;
    A g = A(gy[at]);
    sg += g;
    sd += g * (A(x[at]) - mean[c]);
  }
  block_sum2(sg, sd);
  if (threadIdx.x == 0) {
    sum_gy[c] = sg;
    sum_dot[c] = sd * invstd[c];
    if (gw) gw[c] = T(sd * invstd[c]);
    if (gb) gb[c] = T(sg);
  }
}

template <class T> T* mut(const RawView* v) { return v ? static_cast<T*>(v->data) : nullptr; }

}  // namespace

void batch_norm_forward_train(const BatchNormShape& s, const RawView& x, const RawView* weight, const RawView* bias,
                              const RawView* running_mean, const RawView* running_var, double momentum, double eps,
                              const RawView& y, const RawView& mean, const RawView& invstd) {
  set_device(x.device.index);
  visit_floating(x.dtype, "batch_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using A = opmath_t<T>;
    const T* px = static_cast<const T*>(x.data);
    A* pm = static_cast<A*>(mean.data);
    A* pi = static_cast<A*>(invstd.data);
    if (s.c > 0) {
      bn_stats_kernel<T><<<unsigned(s.c), kThreads>>>(s, px, pm, pi, mut<T>(running_mean), mut<T>(running_var),
                                                      momentum, eps);
      HT_CUDA_CHECK(cudaGetLastError());
    }
  });
  Maps::batch_norm_apply(s, x, mean, invstd, weight, bias, y);
}

void batch_norm_apply(const BatchNormShape& s, const RawView& x, const RawView& mean, const RawView& invstd,
                      const RawView* weight, const RawView* bias, const RawView& y) {
  set_device(x.device.index);
  Maps::batch_norm_apply(s, x, mean, invstd, weight, bias, y);
}

void batch_norm_backward(const BatchNormShape& s, const RawView& x, const RawView& gy, const RawView& mean,
                         const RawView& invstd, const RawView* weight, bool train, const RawView* gx,
                         const RawView* gweight, const RawView* gbias) {
  set_device(x.device.index);
  visit_floating(x.dtype, "batch_norm_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using A = opmath_t<T>;
    const T* px = static_cast<const T*>(x.data);
    const T* pg = static_cast<const T*>(gy.data);
    const A* pm = static_cast<const A*>(mean.data);
    const A* pi = static_cast<const A*>(invstd.data);
    // freed back to the caching allocator on return; the kernels below run first on the same stream
    Storage sums(size_t(2 * s.c) * sizeof(A), x.device);
    A* sum_gy = static_cast<A*>(sums.data());
    A* sum_dot = sum_gy + s.c;
    if (s.c > 0) {
      bn_grad_sums_kernel<T><<<unsigned(s.c), kThreads>>>(s, px, pg, pm, pi, sum_gy, sum_dot, mut<T>(gweight),
                                                          mut<T>(gbias));
      HT_CUDA_CHECK(cudaGetLastError());
    }
    if (gx) Maps::batch_norm_input_grad<T>(s, x, gy, mean, invstd, weight, train, sum_gy, sum_dot, *gx);
  });
}

void max_pool2d_forward(const Pool2dShape& s, const RawView& x, const RawView& y, const RawView& indices) {
  set_device(x.device.index);
  Maps::max_pool2d_forward(s, x, y, indices);
}
void max_pool2d_backward(const Pool2dShape& s, const RawView& gy, const RawView& indices, const RawView& gx) {
  set_device(gy.device.index);
  Maps::max_pool2d_backward(s, gy, indices, gx);
}
void adaptive_avg_pool2d_forward(const Pool2dShape& s, const RawView& x, const RawView& y) {
  set_device(x.device.index);
  Maps::adaptive_avg_pool2d_forward(s, x, y);
}
void adaptive_avg_pool2d_backward(const Pool2dShape& s, const RawView& gy, const RawView& gx) {
  set_device(gy.device.index);
  Maps::adaptive_avg_pool2d_backward(s, gy, gx);
}

}  // namespace ht::kernels::cuda
