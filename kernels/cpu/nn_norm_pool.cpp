// CPU batch norm and pooling: the per-channel sums are loops here; the maps are the shared bodies of
// kernels/nn_bodies.h run by the CPU executor.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/executor.h"
#include "kernels/nn_backends.h"
#include "kernels/nn_bodies.h"

namespace ht::kernels::cpu {

namespace {
// The CPU walks batch-norm maps by rows of one channel (NCHW) or by pixels of all channels (channels_last): no
// division per element.
struct NnExecutor : Executor {
  template <class Body>
  static void run_channels(const BatchNormShape& s, const Body& body) {
    if (s.channels_last) {
#pragma omp parallel for schedule(static) if (s.n * s.c * s.hw >= kParallelGrain)
      for (int64_t r = 0; r < s.n * s.hw; ++r)
        for (int64_t ch = 0, k = r * s.c; ch < s.c; ++ch, ++k) body.at(k, ch);
      return;
    }
#pragma omp parallel for schedule(static) if (s.n * s.c * s.hw >= kParallelGrain)
    for (int64_t r = 0; r < s.n * s.c; ++r) {
      int64_t ch = r % s.c;
      for (int64_t k = r * s.hw, end = k + s.hw; k < end; ++k) body.at(k, ch);
    }
  }
};
using Maps = NnMaps<NnExecutor>;
template <class T> T* mut(const RawView* v) { return v ? static_cast<T*>(v->data) : nullptr; }
// Per-channel sums accumulate in double, as PyTorch's CPU kernels do (acc_type<float, /*cuda*/false> is double):
// fewer rounding differences reach the forward values, and with them the ReLU masks downstream.
using Wide = double;
struct Sums {
  Wide first = 0, second = 0;
};

// out[ch] = the sums of f(i) over channel ch's elements i. NCHW: one channel per task, in element order.
// channels_last: the pixels split into one fixed range per thread, partial sums added in range order; the
// result depends only on the thread count, as the rest of the CPU backend's.
template <class F>
std::vector<Sums> channel_sums(const BatchNormShape& s, F&& f) {
  std::vector<Sums> out(size_t(s.c));
  bool parallel = s.n * s.c * s.hw > 32768;
  if (!s.channels_last) {
#pragma omp parallel for schedule(static) if (parallel && s.c > 1)
    for (int64_t ch = 0; ch < s.c; ++ch) {
      Sums acc;
      for (int64_t n = 0; n < s.n; ++n)
        for (int64_t i = (n * s.c + ch) * s.hw, end = i + s.hw; i < end; ++i) {
          Sums v = f(i, ch);
          acc.first += v.first;
          acc.second += v.second;
        }
      out[size_t(ch)] = acc;
    }
    return out;
  }
  int64_t pixels = s.n * s.hw;
  int ranges = parallel ? std::max(1, std::min<int>(omp_get_max_threads(), int(pixels))) : 1;
  std::vector<Sums> partial(size_t(ranges) * size_t(s.c));
#pragma omp parallel for schedule(static, 1) if (ranges > 1)
  for (int r = 0; r < ranges; ++r) {
    Sums* acc = partial.data() + size_t(r) * size_t(s.c);
    for (int64_t p = pixels * r / ranges, end = pixels * (r + 1) / ranges; p < end; ++p)
      for (int64_t ch = 0, i = p * s.c; ch < s.c; ++ch, ++i) {
        Sums v = f(i, ch);
        acc[ch].first += v.first;
        acc[ch].second += v.second;
      }
  }
  for (int r = 0; r < ranges; ++r)
    for (int64_t ch = 0; ch < s.c; ++ch) {
      out[size_t(ch)].first += partial[size_t(r) * size_t(s.c) + size_t(ch)].first;
      out[size_t(ch)].second += partial[size_t(r) * size_t(s.c) + size_t(ch)].second;
    }
  return out;
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
    int64_t m = s.n * s.hw;
    // two passes (mean, then squared deviations), as PyTorch's CPU kernel does
    std::vector<Sums> sums = channel_sums(s, [&](int64_t i, int64_t) { return Sums{Wide(A(px[i])), 0}; });
    std::vector<Wide> mu(size_t(s.c));
    for (int64_t c = 0; c < s.c; ++c) mu[size_t(c)] = sums[size_t(c)].first / Wide(m);
    std::vector<Sums> sq = channel_sums(s, [&](int64_t i, int64_t c) {
      Wide d = Wide(A(px[i])) - mu[size_t(c)];
      return Sums{d * d, 0};
    });
    for (int64_t c = 0; c < s.c; ++c) {
      Wide var_sum = sq[size_t(c)].first;
      A mean_c = A(mu[size_t(c)]);
      pm[c] = mean_c;
      pi[c] = A(1 / std::sqrt(var_sum / Wide(m) + eps));
      if (rm) rm[c] = P(A(momentum) * mean_c + A(1 - momentum) * A(rm[c]));
      if (rv) {
        A unbiased = m > 1 ? A(var_sum / Wide(m - 1)) : A(NAN);
        rv[c] = P(A(momentum) * unbiased + A(1 - momentum) * A(rv[c]));
      }
    }
  });
  Maps::batch_norm_apply(s, x, mean, invstd, weight, bias, y);
}

void batch_norm_apply(const BatchNormShape& s, const RawView& x, const RawView& mean, const RawView& invstd,
                      const RawView* weight, const RawView* bias, const RawView& y) {
  Maps::batch_norm_apply(s, x, mean, invstd, weight, bias, y);
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
    std::vector<Sums> sums = channel_sums(s, [&](int64_t i, int64_t c) {
      Wide g = Wide(A(pg[i]));
      return Sums{g, g * (Wide(A(px[i])) - Wide(pm[c]))};
    });
    std::vector<A> sum_gy(size_t(s.c)), sum_dot(size_t(s.c));
    for (int64_t c = 0; c < s.c; ++c) {
      sum_gy[size_t(c)] = A(sums[size_t(c)].first);
      sum_dot[size_t(c)] = A(sums[size_t(c)].second * Wide(pi[c]));  // sum(gy * xhat)
      if (gweight) static_cast<P*>(gweight->data)[c] = P(sum_dot[size_t(c)]);
      if (gbias) static_cast<P*>(gbias->data)[c] = P(sums[size_t(c)].first);
    }
    if (gx)
      Maps::batch_norm_input_grad<T, P>(s, x, gy, mean, invstd, weight, train, sum_gy.data(), sum_dot.data(), *gx);
  });
}

void max_pool2d_forward(const Pool2dShape& s, const RawView& x, const RawView& y, const RawView& indices) {
  Maps::max_pool2d_forward(s, x, y, indices);
}
// float and double scatter each plane's gradients to the recorded maxima (one add per output, PyTorch's CPU
// order, no index arithmetic); 16-bit types use the shared gather body, which sums in float.
void max_pool2d_backward(const Pool2dShape& s, const RawView& gy, const RawView& indices, const RawView& gx) {
  visit_floating(gy.dtype, "max_pool2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, opmath_t<T>>) {
      if (s.channels_last) return Maps::max_pool2d_backward(s, gy, indices, gx);
      const T* g = static_cast<const T*>(gy.data);
      const int64_t* idx = static_cast<const int64_t*>(indices.data);
      T* out = static_cast<T*>(gx.data);
      int64_t in_plane = s.h * s.w, out_plane = s.out_h * s.out_w;
#pragma omp parallel for schedule(static) if (s.planes * in_plane >= kParallelGrain)
      for (int64_t p = 0; p < s.planes; ++p) {
        T* dst = out + p * in_plane;
        std::fill(dst, dst + in_plane, T(0));
        for (int64_t o = p * out_plane, end = o + out_plane; o < end; ++o) dst[idx[o]] += g[o];
      }
    } else {
      Maps::max_pool2d_backward(s, gy, indices, gx);
    }
  });
}
void adaptive_avg_pool2d_forward(const Pool2dShape& s, const RawView& x, const RawView& y) {
  Maps::adaptive_avg_pool2d_forward(s, x, y);
}
void adaptive_avg_pool2d_backward(const Pool2dShape& s, const RawView& gy, const RawView& gx) {
  Maps::adaptive_avg_pool2d_backward(s, gy, gx);
}

}  // namespace ht::kernels::cpu
