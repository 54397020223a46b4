// CPU batch norm and adaptive average pooling (max pooling is nn_max_pool.cpp). Batch norm runs as loops over
// chunks of its maps that apply the arithmetic of kernels/nn_bodies.h's BnApplyBody and BnBackwardBody, in the same
// order, to rows of float; 16-bit chunks are widened on the way in and narrowed on the way out. Adaptive average
// pooling is the shared bodies run by the CPU executor.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "core/storage.h"
#include "kernels/cpu/convert.h"
#include "kernels/cpu/executor.h"
#include "kernels/nn_backends.h"
#include "kernels/nn_bodies.h"

namespace ht::kernels::cpu {

namespace {
using Maps = NnMaps<Executor>;

constexpr int64_t kBlock = 1024;  // elements per chunk: a chunk's float image stays in L1

// Per-channel sums accumulate in double, as PyTorch's CPU kernels do (acc_type<float, /*cuda*/false> is double):
// fewer rounding differences reach the forward values, and with them the ReLU masks downstream.
using Wide = double;

template <class T> const T* opt(const RawView* v) { return v ? static_cast<const T*>(v->data) : nullptr; }
template <class T> T* mut(const RawView* v) { return v ? static_cast<T*>(v->data) : nullptr; }

// A per-channel parameter as A: v's values, or `absent` in every channel when v is null. Multiplying by 1 and
// adding +0 change no value (beyond -0 becoming +0), so the absent parameters need no branch in the loops.
template <class A, class P>
std::vector<A> channel_values(const P* v, int64_t c, A absent) {
  std::vector<A> out(size_t(c), absent);
  if (v)
    for (int64_t ch = 0; ch < c; ++ch) out[size_t(ch)] = A(v[ch]);
  return out;
}

// The maps are walked in chunks of at most kBlock elements that lie inside one row: channels_last, channels
// [channel, channel + n) of one pixel; NCHW, n values of one channel. 16-bit chunks are widened into a float
// buffer on the way in and narrowed on the way out, so every pass reads and writes the 16-bit data itself, and
// the loops over a chunk are plain float loops the compiler vectorizes.
template <class Fn>
void for_each_chunk(const BatchNormShape& s, Fn&& fn) {
  const int64_t len = s.channels_last ? s.c : s.hw;
  const int64_t rows = s.channels_last ? s.n * s.hw : s.n * s.c;
  const int64_t per_row = (len + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (rows * len >= kParallelGrain)
  for (int64_t t = 0; t < rows * per_row; ++t) {
    const int64_t row = t / per_row, first = (t % per_row) * kBlock;
    fn(row * len + first, std::min(kBlock, len - first), s.channels_last ? first : row % s.c);
  }
}

// A chunk of T's output: written straight to y when T is its own opmath type, else to a float buffer narrowed
// into y by done().
template <class T>
class ChunkOut {
 public:
  explicit ChunkOut(T* y) : y_(y) {}
  float_image_t<T>* data() {
    if constexpr (is_16bit_float_v<T>) return buf_;
    else return y_;
  }
  void done(int64_t n) {
    if constexpr (is_16bit_float_v<T>) from_float(buf_, y_, n);
  }

 private:
  T* y_;
  float buf_[kBlock];  // left uninitialised: data() is written before done() reads it
};

// Two per-channel sums taken in one pass.
struct Pair {
  Wide first, second;
};
// Adds a term's value to the running sums: a Wide to `first` alone, a Pair to both.
template <class Value>
void add_term(Wide& first, Wide& second, const Value& v) {
  if constexpr (std::is_same_v<Value, Pair>) {
    first += v.first;
    second += v.second;
  } else {
    first += v;
  }
}

// first[ch] (and, for a term that returns a Pair, second[ch]) = the sums over channel ch's elements i of
// term(x, g, j, ch), x and g being the elements' values as A at j of the chunk holding i (g is null when no
// second map is given). second is only written for a Pair. The result depends only on the map's shape and the
// thread count:
// - channels_last: the pixels split into one fixed range per thread, partial sums added in range order;
// - NCHW: one channel per task; 8 running sums per channel (element j of a chunk goes to sum j % 8), added in
//   order at the end.
template <class T, class Term>
void channel_sums(const BatchNormShape& s, const T* x, const T* g, Term&& term, Wide* first, Wide* second) {
  constexpr int kLanes = 8;
  const bool parallel = s.n * s.c * s.hw > kParallelGrain;
  auto widen = [&](const T* src, int64_t k, float* buf, int64_t n) {
    return src ? float_image(src + k, buf, n) : nullptr;
  };
  if (!s.channels_last) {
#pragma omp parallel for schedule(static) if (parallel && s.c > 1)
    for (int64_t ch = 0; ch < s.c; ++ch) {
      Wide lane_first[kLanes] = {}, lane_second[kLanes] = {};
      float x_buf[kBlock], g_buf[kBlock];
      for (int64_t img = 0; img < s.n; ++img)
        for (int64_t done = 0; done < s.hw; done += kBlock) {
          const int64_t k = (img * s.c + ch) * s.hw + done, n = std::min(kBlock, s.hw - done);
          const auto* xr = widen(x, k, x_buf, n);
          const auto* gr = widen(g, k, g_buf, n);
          int64_t j = 0;
          for (; j + kLanes <= n; j += kLanes)
            for (int lane = 0; lane < kLanes; ++lane)
              add_term(lane_first[lane], lane_second[lane], term(xr, gr, j + lane, ch));
          for (int lane = 0; j < n; ++j, ++lane) add_term(lane_first[lane], lane_second[lane], term(xr, gr, j, ch));
        }
      Wide total_first = 0, total_second = 0;
      for (int lane = 0; lane < kLanes; ++lane) {
        total_first += lane_first[lane];
        total_second += lane_second[lane];
      }
      first[ch] = total_first;
      if (second) second[ch] = total_second;
    }
    return;
  }
  const int64_t pixels = s.n * s.hw;
  const int ranges = parallel ? std::max(1, std::min<int>(omp_get_max_threads(), int(pixels))) : 1;
  std::vector<Wide> partial(size_t(ranges) * size_t(2 * s.c), Wide(0));
#pragma omp parallel for schedule(static, 1) if (ranges > 1)
  for (int r = 0; r < ranges; ++r) {
    Wide* acc_first = partial.data() + size_t(r) * size_t(2 * s.c);
    Wide* acc_second = acc_first + s.c;
    float x_buf[kBlock], g_buf[kBlock];
    for (int64_t p = pixels * r / ranges, end = pixels * (r + 1) / ranges; p < end; ++p)
      for (int64_t c0 = 0; c0 < s.c; c0 += kBlock) {
        const int64_t k = p * s.c + c0, n = std::min(kBlock, s.c - c0);
        const auto* xr = widen(x, k, x_buf, n);
        const auto* gr = widen(g, k, g_buf, n);
        for (int64_t j = 0; j < n; ++j) add_term(acc_first[c0 + j], acc_second[c0 + j], term(xr, gr, j, c0 + j));
      }
  }
  for (int64_t ch = 0; ch < s.c; ++ch) {
    Wide total_first = 0, total_second = 0;
    for (int r = 0; r < ranges; ++r) {
      total_first += partial[size_t(r) * size_t(2 * s.c) + size_t(ch)];
      total_second += partial[size_t(r) * size_t(2 * s.c) + size_t(s.c + ch)];
    }
    first[ch] = total_first;
    if (second) second[ch] = total_second;
  }
}

// The per-channel arguments of one chunk's loop: channel j's value at [j] (channels_last) or every element's
// at [0] (NCHW, one channel per chunk).
template <bool kChannelPerElement>
constexpr int64_t channel_at(int64_t j) {
  return kChannelPerElement ? j : 0;
}

// y = (x - mean) * invstd * weight + bias, then + residual, then ReLU: BnApplyBody's arithmetic, in its order,
// over one chunk (the per-channel pointers already at the chunk's first channel).
template <bool kChannelPerElement, bool kResidual, bool kRelu, class A>
void apply_chunk(const A* x, const A* residual, const A* mean, const A* invstd, const A* weight, const A* bias, A* y,
                 int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const int64_t c = channel_at<kChannelPerElement>(j);
    A v = (x[j] - mean[c]) * invstd[c] * weight[c] + bias[c];
    if constexpr (kResidual) v += residual[j];
    if constexpr (kRelu) v = Relu{}(v);
    y[j] = v;
  }
}

template <class T, class P>
void apply(const BatchNormShape& s, const T* x, const opmath_t<T>* mean, const opmath_t<T>* invstd, const P* weight,
           const P* bias, const T* residual, bool relu, T* y) {
  using A = opmath_t<T>;
  const std::vector<A> w = channel_values<A>(weight, s.c, A(1)), b = channel_values<A>(bias, s.c, A(0));
  for_each_chunk(s, [&](int64_t k, int64_t n, int64_t ch) {
    float x_buf[kBlock], residual_buf[kBlock];
    ChunkOut<T> out(y + k);
    const A* xr = float_image(x + k, x_buf, n);
    const A* rr = residual ? float_image(residual + k, residual_buf, n) : nullptr;
    auto run = [&](auto per_element, auto with_residual, auto with_relu) {
      apply_chunk<decltype(per_element)::value, decltype(with_residual)::value, decltype(with_relu)::value>(
          xr, rr, mean + ch, invstd + ch, w.data() + ch, b.data() + ch, out.data(), n);
    };
    using Yes = std::true_type;
    using No = std::false_type;
    if (s.channels_last) {
      if (rr) relu ? run(Yes{}, Yes{}, Yes{}) : run(Yes{}, Yes{}, No{});
      else relu ? run(Yes{}, No{}, Yes{}) : run(Yes{}, No{}, No{});
    } else {
      if (rr) relu ? run(No{}, Yes{}, Yes{}) : run(No{}, Yes{}, No{});
      else relu ? run(No{}, No{}, Yes{}) : run(No{}, No{}, No{});
    }
    out.done(n);
  });
}

// gx = a * (gy - sum_gy / m - xhat * sum_gy_xhat / m) (training) or a * gy (eval), a = invstd * weight:
// BnBackwardBody's arithmetic, in its order, over one chunk.
template <bool kChannelPerElement, bool kTrain, class A>
void input_grad_chunk(const A* x, const A* gy, const A* mean, const A* invstd, const A* scale, const A* mean_gy,
                      const A* sum_gy_xhat, A inv_m, A* gx, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const int64_t c = channel_at<kChannelPerElement>(j);
    A g = gy[j];
    if constexpr (kTrain) {
      A xhat = (x[j] - mean[c]) * invstd[c];
      g = g - mean_gy[c] - xhat * sum_gy_xhat[c] * inv_m;
    }
    gx[j] = scale[c] * g;
  }
}
}  // namespace

void batch_norm_forward_train(const BatchNormShape& s, const RawView& x, const RawView* weight, const RawView* bias,
                              const RawView* running_mean, const RawView* running_var, double momentum, double eps,
                              const RawView& y, const RawView& mean, const RawView& invstd) {
  visit_batch_norm(x.dtype, {weight, bias, running_mean, running_var}, "batch_norm", [&](auto t, auto p) {
    using T = typename decltype(t)::type;
    using P = typename decltype(p)::type;
    using A = opmath_t<T>;
    const T* px = static_cast<const T*>(x.data);
    A* pm = static_cast<A*>(mean.data);
    A* pi = static_cast<A*>(invstd.data);
    P* rm = mut<P>(running_mean);
    P* rv = mut<P>(running_var);
    const int64_t m = s.n * s.hw;
    // two passes (mean, then squared deviations), as PyTorch's CPU kernel does
    std::vector<Wide> sum(size_t(s.c)), var_sum(size_t(s.c)), mu(size_t(s.c));
    channel_sums(s, px, static_cast<const T*>(nullptr),
                 [](const A* xr, const A*, int64_t j, int64_t) { return Wide(xr[j]); }, sum.data(), nullptr);
    for (int64_t c = 0; c < s.c; ++c) mu[size_t(c)] = sum[size_t(c)] / Wide(m);
    channel_sums(s, px, static_cast<const T*>(nullptr),
                 [&](const A* xr, const A*, int64_t j, int64_t c) {
                   Wide d = Wide(xr[j]) - mu[size_t(c)];
                   return d * d;
                 },
                 var_sum.data(), nullptr);
    for (int64_t c = 0; c < s.c; ++c) {
      A mean_c = A(mu[size_t(c)]);
      pm[c] = mean_c;
      pi[c] = A(1 / std::sqrt(var_sum[size_t(c)] / Wide(m) + eps));
      if (rm) rm[c] = P(A(momentum) * mean_c + A(1 - momentum) * A(rm[c]));
      if (rv) {
        A unbiased = m > 1 ? A(var_sum[size_t(c)] / Wide(m - 1)) : A(NAN);
        rv[c] = P(A(momentum) * unbiased + A(1 - momentum) * A(rv[c]));
      }
    }
    apply(s, px, pm, pi, opt<P>(weight), opt<P>(bias), static_cast<const T*>(nullptr), false,
          static_cast<T*>(y.data));
  });
}

void batch_norm_apply(const BatchNormShape& s, const RawView& x, const RawView& mean, const RawView& invstd,
                      const RawView* weight, const RawView* bias, const BnEpilogue& epilogue, const RawView& y) {
  visit_batch_norm(x.dtype, {weight, bias}, "batch_norm", [&](auto t, auto p) {
    using T = typename decltype(t)::type;
    using P = typename decltype(p)::type;
    using A = opmath_t<T>;
    apply(s, static_cast<const T*>(x.data), static_cast<const A*>(mean.data), static_cast<const A*>(invstd.data),
          opt<P>(weight), opt<P>(bias), opt<T>(epilogue.residual), epilogue.relu, static_cast<T*>(y.data));
  });
}

void batch_norm_backward(const BatchNormShape& s, const RawView& x, const RawView& gy, const RawView& mean,
                         const RawView& invstd, const RawView* weight, bool train, const RawView* gx,
                         const RawView* gweight, const RawView* gbias) {
  visit_batch_norm(x.dtype, {weight, gweight, gbias}, "batch_norm_backward", [&](auto t, auto p) {
    using T = typename decltype(t)::type;
    using P = typename decltype(p)::type;
    using A = opmath_t<T>;
    const T* px = static_cast<const T*>(x.data);
    const T* pg = static_cast<const T*>(gy.data);
    const A* pm = static_cast<const A*>(mean.data);
    const A* pi = static_cast<const A*>(invstd.data);
    std::vector<Wide> sums_gy(size_t(s.c)), sums_dot(size_t(s.c));
    channel_sums(s, px, pg,
                 [&](const A* xr, const A* gr, int64_t j, int64_t c) {
                   Wide g = Wide(gr[j]);
                   return Pair{g, g * (Wide(xr[j]) - Wide(pm[c]))};
                 },
                 sums_gy.data(), sums_dot.data());
    const A inv_m = A(1) / A(s.n * s.hw);
    const std::vector<A> w = channel_values<A>(opt<P>(weight), s.c, A(1));
    std::vector<A> mean_gy(size_t(s.c)), sum_dot(size_t(s.c)), scale(size_t(s.c));
    for (int64_t c = 0; c < s.c; ++c) {
      const A sum_gy = A(sums_gy[size_t(c)]);
      sum_dot[size_t(c)] = A(sums_dot[size_t(c)] * Wide(pi[c]));  // sum(gy * xhat)
      mean_gy[size_t(c)] = sum_gy * inv_m;
      scale[size_t(c)] = pi[c] * w[size_t(c)];
      if (gweight) static_cast<P*>(gweight->data)[c] = P(sum_dot[size_t(c)]);
      if (gbias) static_cast<P*>(gbias->data)[c] = P(sums_gy[size_t(c)]);
    }
    if (!gx) return;
    T* pgx = static_cast<T*>(gx->data);
    for_each_chunk(s, [&](int64_t k, int64_t n, int64_t ch) {
      float x_buf[kBlock], g_buf[kBlock];
      ChunkOut<T> out(pgx + k);
      const A* gr = float_image(pg + k, g_buf, n);
      const A* xr = train ? float_image(px + k, x_buf, n) : nullptr;
      auto run = [&](auto per_element, auto training) {
        input_grad_chunk<decltype(per_element)::value, decltype(training)::value>(
            xr, gr, pm + ch, pi + ch, scale.data() + ch, mean_gy.data() + ch, sum_dot.data() + ch, inv_m,
            out.data(), n);
      };
      using Yes = std::true_type;
      using No = std::false_type;
      if (s.channels_last) train ? run(Yes{}, Yes{}) : run(Yes{}, No{});
      else train ? run(No{}, Yes{}) : run(No{}, No{});
      out.done(n);
    });
  });
}

void adaptive_avg_pool2d_forward(const Pool2dShape& s, const RawView& x, const RawView& y) {
  Maps::adaptive_avg_pool2d_forward(s, x, y);
}
void adaptive_avg_pool2d_backward(const Pool2dShape& s, const RawView& gy, const RawView& gx) {
  Maps::adaptive_avg_pool2d_backward(s, gy, gx);
}

}  // namespace ht::kernels::cpu
