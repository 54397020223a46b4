// CPU batch norm and adaptive average pooling (max pooling is nn_max_pool.cpp): the per-channel sums are loops
// here; the maps are the shared bodies of kernels/nn_bodies.h run by the CPU executor. 16-bit tensors are widened to float (whole, or block by block),
// the float bodies run on those images and the results are narrowed: the same values as element by element.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "core/storage.h"
#include "kernels/cpu/convert.h"
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

constexpr int64_t kBlock = 1024;  // elements per block of a 16-bit map

// A whole tensor as float_image_t<T>: the data itself, or (16-bit T) a widened copy; null stays null.
template <class T>
class FloatCopy {
 public:
  FloatCopy(const T* src, int64_t n) {
    if constexpr (is_16bit_float_v<T>) {
      if (!src) return;
      // from halftorch's caching allocator: a training step widens the same maps every time, and fresh pages
      // from malloc cost a fault and a zeroing each (a tenth of a bf16 224x224 ResNet-18 step)
      owned_ = {static_cast<float*>(allocator_for(DeviceType::CPU)->allocate(size_t(n) * sizeof(float), 0)),
                Release{size_t(n) * sizeof(float)}};
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
      for (int64_t k = 0; k < n; k += kBlock) to_float(src + k, owned_.get() + k, std::min(kBlock, n - k));
      data_ = owned_.get();
    } else {
      data_ = src;
    }
  }
  const float_image_t<T>* data() const { return data_; }

 private:
  struct Release {
    size_t nbytes = 0;
    void operator()(float* p) const { allocator_for(DeviceType::CPU)->deallocate(p, nbytes, 0); }
  };
  std::unique_ptr<float, Release> owned_;
  const float_image_t<T>* data_ = nullptr;
};

// at(k, channel of k) for k in [k0, k1) of [n, c, hw] (or [n, hw, c] when channels_last).
template <class At>
void walk_channels(const BatchNormShape& s, int64_t k0, int64_t k1, At&& at) {
  const int64_t len = s.channels_last ? s.c : s.hw;
  for (int64_t k = k0; k < k1;) {
    int64_t row = k / len, end = std::min(k1, (row + 1) * len);
    if (s.channels_last) {
      for (int64_t ch = k - row * len; k < end; ++k, ++ch) at(k, ch);
    } else {
      for (int64_t ch = row % s.c; k < end; ++k) at(k, ch);
    }
  }
}

// out = narrow(float block) over [n, c, hw] in parallel blocks; fill(k0, k1, buf) computes buf[k - k0].
template <class T, class Fill>
void narrowed_blocks(const BatchNormShape& s, T* out, Fill&& fill) {
  const int64_t n = s.n * s.c * s.hw;
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
  for (int64_t k0 = 0; k0 < n; k0 += kBlock) {
    const int64_t k1 = std::min(n, k0 + kBlock);
    float buf[kBlock];
    fill(k0, k1, buf);
    from_float(buf, out + k0, k1 - k0);
  }
}

// batch_norm_apply for 16-bit T: x from its float image when the caller has one (x_image), else widened here;
// weight and bias as float (P widened: the same values the body would read); the residual widened block by block.
template <class T, class P>
void batch_norm_apply_16bit(const BatchNormShape& s, const T* x, const float* x_image, const float* mean,
                            const float* invstd, const P* weight, const P* bias, const T* residual, bool relu,
                            T* y) {
  const FloatCopy<P> w(weight, s.c), b(bias, s.c);
  narrowed_blocks(s, y, [&](int64_t k0, int64_t k1, float* buf) {
    float x_buf[kBlock], residual_buf[kBlock];
    const float* xb = x_image ? x_image + k0 : (to_float(x + k0, x_buf, k1 - k0), x_buf);
    if (residual) to_float(residual + k0, residual_buf, k1 - k0);
    const BnApplyBody<float, float> body{xb, mean, invstd, w.data(), b.data(), buf, residual ? residual_buf : nullptr,
                                         relu};
    walk_channels(s, k0, k1, [&](int64_t k, int64_t ch) { body.at(k - k0, ch); });
  });
}
template <class T> const T* opt(const RawView* v) { return v ? static_cast<const T*>(v->data) : nullptr; }
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
    const FloatCopy<T> x_image(static_cast<const T*>(x.data), x.numel());
    const float_image_t<T>* px = x_image.data();
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
    if constexpr (is_16bit_float_v<T>)
      batch_norm_apply_16bit(s, static_cast<const T*>(x.data), px, pm, pi, opt<P>(weight), opt<P>(bias),
                             static_cast<const T*>(nullptr), false, static_cast<T*>(y.data));
    else
      Maps::batch_norm_apply(s, x, mean, invstd, weight, bias, BnEpilogue{}, y);
  });
}

void batch_norm_apply(const BatchNormShape& s, const RawView& x, const RawView& mean, const RawView& invstd,
                      const RawView* weight, const RawView* bias, const BnEpilogue& epilogue, const RawView& y) {
  visit_batch_norm(x.dtype, {weight, bias}, "batch_norm", [&](auto t, auto p) {
    using T = typename decltype(t)::type;
    using P = typename decltype(p)::type;
    if constexpr (is_16bit_float_v<T>)
      batch_norm_apply_16bit(s, static_cast<const T*>(x.data), nullptr, static_cast<const float*>(mean.data),
                             static_cast<const float*>(invstd.data), opt<P>(weight), opt<P>(bias),
                             opt<T>(epilogue.residual), epilogue.relu, static_cast<T*>(y.data));
    else
      Maps::batch_norm_apply(s, x, mean, invstd, weight, bias, epilogue, y);
  });
}

void batch_norm_backward(const BatchNormShape& s, const RawView& x, const RawView& gy, const RawView& mean,
                         const RawView& invstd, const RawView* weight, bool train, const RawView* gx,
                         const RawView* gweight, const RawView* gbias) {
  visit_batch_norm(x.dtype, {weight, gweight, gbias}, "batch_norm_backward", [&](auto t, auto p) {
    using T = typename decltype(t)::type;
    using P = typename decltype(p)::type;
    using A = opmath_t<T>;
    const FloatCopy<T> x_image(static_cast<const T*>(x.data), x.numel());
    const FloatCopy<T> gy_image(static_cast<const T*>(gy.data), gy.numel());
    const float_image_t<T>* px = x_image.data();
    const float_image_t<T>* pg = gy_image.data();
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
    if (!gx) return;
    if constexpr (is_16bit_float_v<T>) {
      const A inv_m = A(1) / A(s.n * s.hw);
      const FloatCopy<P> w(opt<P>(weight), s.c);
      narrowed_blocks(s, static_cast<T*>(gx->data), [&](int64_t k0, int64_t k1, float* buf) {
        const BnBackwardBody<float, float> body{inv_m, train, px + k0, pg + k0, pm, pi, w.data(),
                                            sum_gy.data(), sum_dot.data(), buf};
        walk_channels(s, k0, k1, [&](int64_t k, int64_t ch) { body.at(k - k0, ch); });
      });
    } else {
      Maps::batch_norm_input_grad<T, P>(s, x, gy, mean, invstd, weight, train, sum_gy.data(), sum_dot.data(), *gx);
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
