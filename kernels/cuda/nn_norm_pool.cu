// CUDA batch norm and pooling: the maps are the shared bodies of kernels/nn_bodies.h under a grid-stride
// executor; the per-channel sums are split reductions (blocks over channels x slices of the batch, then one
// merge per channel), in either layout. Running statistics are updated on the device, so nothing here
// synchronises with the host.
#include <algorithm>
#include <cmath>
#include <initializer_list>

#include "core/storage.h"
#include "kernels/cuda/executor.cuh"
#include "kernels/cuda/layout.h"
#include "kernels/elementwise.h"
#include "kernels/nn_backends.h"
#include "kernels/nn_bodies.h"

namespace ht::kernels::cuda {

namespace {

constexpr int kThreads = 256;

// body.at(i, channel) over [n, c, hw] (or [n, hw, c] when channels_last) with 32-bit multiply-high divisions.
template <class Body>
struct NarrowChannels {
  Body body;
  IntDivider hw, c;
  bool channels_last;
  __device__ void operator()(int64_t i) const {
    uint32_t q = channels_last ? uint32_t(i) : hw.div(uint32_t(i));
    body.at(i, int64_t(q - c.div(q) * c.divisor));
  }
};

struct NnExecutor : Executor {
  template <class Body>
  static void run_channels(const BatchNormShape& s, const Body& body) {
    int64_t n = s.n * s.c * s.hw;
    if (n == 0) return;  // also keeps IntDivider from a zero divisor
    if (n <= INT32_MAX) {
      run(n, NarrowChannels<Body>{body, IntDivider(uint32_t(s.hw)), IntDivider(uint32_t(s.c)), s.channels_last});
    } else {
      run(n, FlatChannels<Body>{body, s.c, s.hw, s.channels_last});
    }
  }
};
using Maps = NnMaps<NnExecutor>;

// ---- per-channel reductions. An Op names its accumulator (Acc, zero when value-initialised), adds the element
// at an offset, and merges two accumulators; the first pass leaves one Acc per (slice, channel), the second
// merges a channel's slices and hands the total to a Finish.

template <class A>
struct Welford {
  A mean = 0, m2 = 0;
  int64_t n = 0;
};

// mean and the sum of squared deviations of x, one element at a time and merged by Chan's rule.
template <class T>
struct StatsOp {
  using A = opmath_t<T>;
  using Acc = Welford<A>;
  const T* x;
  __device__ void add(Acc& w, int64_t at, int64_t) const {
    A v = A(x[at]);
    ++w.n;
    A d = v - w.mean;
    w.mean += d / A(w.n);
    w.m2 += d * (v - w.mean);
  }
  __device__ static void merge(Acc& a, const Acc& b) {
    if (b.n == 0) return;
    if (a.n == 0) {
      a = b;
      return;
    }
    int64_t n = a.n + b.n;
    A d = b.mean - a.mean, f = A(b.n) / A(n);
    a.mean += d * f;
    a.m2 += b.m2 + d * d * A(a.n) * f;
    a.n = n;
  }
};

template <class A>
struct Sums2 {
  A gy = 0, dot = 0;
};

// sum(gy) and sum(gy * (x - mean)) of a channel.
template <class T>
struct GradSumsOp {
  using A = opmath_t<T>;
  using Acc = Sums2<A>;
  const T* x;
  const T* gy;
  const A* mean;
  __device__ void add(Acc& s, int64_t at, int64_t ch) const {
    A g = A(gy[at]);
    s.gy += g;
    s.dot += g * (A(x[at]) - mean[ch]);
  }
  __device__ static void merge(Acc& a, const Acc& b) {
    a.gy += b.gy;
    a.dot += b.dot;
  }
};

// NCHW: block (channel, slice) walks its slice [begin, end) of the channel's n * hw elements; (image, pixel)
// advance by additions, so the loop has no division.
template <class Op>
__global__ void channel_partials_nchw(BatchNormShape s, Op op, int64_t chunk, typename Op::Acc* part) {
  using Acc = typename Op::Acc;
  __shared__ Acc acc[kThreads];
  const int64_t ch = blockIdx.x, m = s.n * s.hw;
  const int64_t begin = int64_t(blockIdx.y) * chunk, end = begin + chunk < m ? begin + chunk : m;
  Acc a{};
  int64_t e = begin + threadIdx.x;
  if (e < end) {
    int64_t img = e / s.hw, pix = e % s.hw;
    const int64_t d_img = kThreads / s.hw, d_pix = kThreads % s.hw;
    for (; e < end; e += kThreads) {
      op.add(a, (img * s.c + ch) * s.hw + pix, ch);
      img += d_img;
      pix += d_pix;
      if (pix >= s.hw) {
        pix -= s.hw;
        ++img;
      }
    }
  }
  acc[threadIdx.x] = a;
  __syncthreads();
  for (int k = kThreads / 2; k > 0; k >>= 1) {
    if (threadIdx.x < k) Op::merge(acc[threadIdx.x], acc[threadIdx.x + k]);
    __syncthreads();
  }
  if (threadIdx.x == 0) part[int64_t(blockIdx.y) * s.c + ch] = acc[0];
}

// channels_last: a block is 32 neighbouring channels (threadIdx.x, so a warp reads consecutive elements) by 8
// rows at a time (threadIdx.y) over its slice [begin, end) of the n * hw rows.
constexpr int kTileC = 32, kTileRows = kThreads / kTileC;

template <class Op>
__global__ void channel_partials_nhwc(BatchNormShape s, Op op, int64_t chunk, typename Op::Acc* part) {
  using Acc = typename Op::Acc;
  __shared__ Acc acc[kTileRows][kTileC];
  const int64_t ch = int64_t(blockIdx.x) * kTileC + threadIdx.x, rows = s.n * s.hw;
  const int64_t begin = int64_t(blockIdx.y) * chunk, end = begin + chunk < rows ? begin + chunk : rows;
  Acc a{};
  if (ch < s.c)
    for (int64_t r = begin + threadIdx.y; r < end; r += kTileRows) op.add(a, r * s.c + ch, ch);
  acc[threadIdx.y][threadIdx.x] = a;
  __syncthreads();
  for (int k = kTileRows / 2; k > 0; k >>= 1) {
    if (threadIdx.y < k) Op::merge(acc[threadIdx.y][threadIdx.x], acc[threadIdx.y + k][threadIdx.x]);
    __syncthreads();
  }
  if (threadIdx.y == 0 && ch < s.c) part[int64_t(blockIdx.y) * s.c + ch] = acc[0][threadIdx.x];
}

template <class Op, class Finish>
__global__ void channel_finish(int64_t c, int64_t slices, const typename Op::Acc* part, Finish finish) {
  for (int64_t ch = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; ch < c; ch += int64_t(gridDim.x) * blockDim.x) {
    typename Op::Acc a{};
    for (int64_t k = 0; k < slices; ++k) Op::merge(a, part[k * c + ch]);
    finish(ch, a);
  }
}

// mean, invstd (biased variance) and the running statistics (unbiased variance), as PyTorch updates them.
template <class T, class P>
struct StatsFinish {
  using A = opmath_t<T>;
  A* mean;
  A* invstd;
  P* running_mean;
  P* running_var;
  A momentum, eps;
  __device__ void operator()(int64_t ch, const Welford<A>& w) const {
    A mu = w.n > 0 ? w.mean : A(NAN);
    mean[ch] = mu;
    invstd[ch] = A(1) / sqrt(w.m2 / A(w.n) + eps);
    if (running_mean) running_mean[ch] = P(momentum * mu + (A(1) - momentum) * A(running_mean[ch]));
    if (running_var) {
      A unbiased = w.n > 1 ? w.m2 / A(w.n - 1) : A(NAN);
      running_var[ch] = P(momentum * unbiased + (A(1) - momentum) * A(running_var[ch]));
    }
  }
};

// The sums the input gradient needs (sum_dot scaled by invstd: sum(gy * xhat)) and the weight / bias gradients.
template <class T, class P>
struct GradFinish {
  using A = opmath_t<T>;
  const A* invstd;
  A* sum_gy;
  A* sum_dot;
  P* gweight;
  P* gbias;
  __device__ void operator()(int64_t ch, const Sums2<A>& s) const {
    A dot = s.dot * invstd[ch];
    sum_gy[ch] = s.gy;
    sum_dot[ch] = dot;
    if (gweight) gweight[ch] = P(dot);
    if (gbias) gbias[ch] = P(s.gy);
  }
};

// Runs op over every channel of s in its layout and finish(channel, total) once per channel. The batch is cut
// into slices so that about four blocks per multiprocessor run even when there are few channels.
template <class Op, class Finish>
void reduce_channels(const BatchNormShape& s, Device dev, const Op& op, const Finish& finish) {
  using Acc = typename Op::Acc;
  if (s.c == 0) return;
  HT_CHECK(s.c <= INT32_MAX, "[batch_norm] too many channels for one launch: ", s.c);
  const int64_t m = s.n * s.hw;  // elements (NCHW) or rows (channels_last) per channel
  const int64_t blocks_c = s.channels_last ? (s.c + kTileC - 1) / kTileC : s.c;
  const int64_t min_chunk = s.channels_last ? 64 : 2048;
  int64_t slices = (4 * int64_t(sm_count(dev.index)) + blocks_c - 1) / blocks_c;
  slices = std::max<int64_t>(1, std::min({slices, (m + min_chunk - 1) / min_chunk, int64_t(65535)}));
  const int64_t chunk = m > 0 ? (m + slices - 1) / slices : 0;
  // freed back to the caching allocator on return; the kernels below run first on the same stream
  Storage part(size_t(slices * s.c) * sizeof(Acc), dev);
  Acc* p = static_cast<Acc*>(part.data());
  const dim3 grid{unsigned(blocks_c), unsigned(slices)};
  if (s.channels_last) {
    channel_partials_nhwc<Op><<<grid, dim3(kTileC, kTileRows)>>>(s, op, chunk, p);
  } else {
    channel_partials_nchw<Op><<<grid, kThreads>>>(s, op, chunk, p);
  }
  HT_CUDA_CHECK(cudaGetLastError());
  channel_finish<Op><<<grid_for(s.c, kThreads), kThreads>>>(s.c, slices, p, finish);
  HT_CUDA_CHECK(cudaGetLastError());
}

// x, y, gy, gx share the layout the shape states; per-channel vectors are contiguous.
void check_layout(const BatchNormShape& s, const char* op, std::initializer_list<const RawView*> views) {
  for (const RawView* v : views)
    HT_CHECK(!v || dense_in(*v, s.channels_last), "[", op, "] expected dense ",
             s.channels_last ? "channels_last" : "NCHW", " activations as the shape says, got a ", v->ndim,
             "-d view of other strides");
}

template <class T> T* mut(const RawView* v) { return v ? static_cast<T*>(v->data) : nullptr; }

}  // namespace

void batch_norm_forward_train(const BatchNormShape& s, const RawView& x, const RawView* weight, const RawView* bias,
                              const RawView* running_mean, const RawView* running_var, double momentum, double eps,
                              const RawView& y, const RawView& mean, const RawView& invstd) {
  check_layout(s, "batch_norm", {&x, &y});
  set_device(x.device.index);
  visit_batch_norm(x.dtype, {weight, bias, running_mean, running_var}, "batch_norm", [&](auto t, auto p) {
    using T = typename decltype(t)::type;
    using P = typename decltype(p)::type;
    using A = opmath_t<T>;
    reduce_channels(s, x.device, StatsOp<T>{static_cast<const T*>(x.data)},
                    StatsFinish<T, P>{static_cast<A*>(mean.data), static_cast<A*>(invstd.data), mut<P>(running_mean),
                                      mut<P>(running_var), A(momentum), A(eps)});
  });
  Maps::batch_norm_apply(s, x, mean, invstd, weight, bias, BnEpilogue{}, y);
}

void batch_norm_apply(const BatchNormShape& s, const RawView& x, const RawView& mean, const RawView& invstd,
                      const RawView* weight, const RawView* bias, const BnEpilogue& epilogue, const RawView& y) {
  check_layout(s, "batch_norm", {&x, &y, epilogue.residual});
  set_device(x.device.index);
  Maps::batch_norm_apply(s, x, mean, invstd, weight, bias, epilogue, y);
}

void batch_norm_backward(const BatchNormShape& s, const RawView& x, const RawView& gy, const RawView& mean,
                         const RawView& invstd, const RawView* weight, bool train, const RawView* gx,
                         const RawView* gweight, const RawView* gbias) {
  check_layout(s, "batch_norm_backward", {&x, &gy, gx});
  set_device(x.device.index);
  visit_batch_norm(x.dtype, {weight, gweight, gbias}, "batch_norm_backward", [&](auto t, auto p) {
    using T = typename decltype(t)::type;
    using P = typename decltype(p)::type;
    using A = opmath_t<T>;
    const A* pm = static_cast<const A*>(mean.data);
    const A* pi = static_cast<const A*>(invstd.data);
    Storage sums(size_t(2 * s.c) * sizeof(A), x.device);
    A* sum_gy = static_cast<A*>(sums.data());
    A* sum_dot = sum_gy + s.c;
    reduce_channels(s, x.device, GradSumsOp<T>{static_cast<const T*>(x.data), static_cast<const T*>(gy.data), pm},
                    GradFinish<T, P>{pi, sum_gy, sum_dot, mut<P>(gweight), mut<P>(gbias)});
    if (gx) Maps::batch_norm_input_grad<T, P>(s, x, gy, mean, invstd, weight, train, sum_gy, sum_dot, *gx);
  });
}

// Pooling: the shared bodies index NCHW or channels_last themselves (Pool2dShape::channels_last).
void max_pool2d_forward(const Pool2dShape& s, const RawView& x, const RawView& y, const RawView* indices) {
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
