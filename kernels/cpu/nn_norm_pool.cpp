// CPU batch norm and pooling: the per-channel sums are loops here; the maps are the shared bodies of
// kernels/nn_bodies.h run by the CPU executor.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/executor.h"
#include "kernels/nn_backends.h"
#include "kernels/nn_bodies.h"

namespace ht::kernels::cpu {

namespace {
// The CPU walks batch-norm maps by rows of one channel: no division per element.
struct NnExecutor : Executor {
  template <class Body>
  static void run_channels(const BatchNormShape& s, const Body& body) {
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
}  // namespace

void batch_norm_forward_train(const BatchNormShape& s, const RawView& x, const RawView* weight, const RawView* bias,
                              const RawView* running_mean, const RawView* running_var, double momentum, double eps,
                              const RawView& y, const RawView& mean, const RawView& invstd) {
  visit_floating(x.dtype, "batch_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using A = opmath_t<T>;
    const T* px = static_cast<const T*>(x.data);
    A* pm = static_cast<A*>(mean.data);
    A* pi = static_cast<A*>(invstd.data);
    T* rm = mut<T>(running_mean);
    T* rv = mut<T>(running_var);
    int64_t m = s.n * s.hw;
#pragma omp parallel for schedule(static) if (s.c > 1 && s.n * s.c * s.hw > 32768)
    for (int64_t c = 0; c < s.c; ++c) {
      // two passes (mean, then squared deviations), as PyTorch's CPU kernel does
      Wide sum = 0;
      for (int64_t n = 0; n < s.n; ++n) {
        const T* row = px + (n * s.c + c) * s.hw;
        for (int64_t k = 0; k < s.hw; ++k) sum += Wide(A(row[k]));
      }
      Wide mu_w = sum / Wide(m);
      A mu = A(mu_w);
      Wide sq = 0;
      for (int64_t n = 0; n < s.n; ++n) {
        const T* row = px + (n * s.c + c) * s.hw;
        for (int64_t k = 0; k < s.hw; ++k) {
          Wide d = Wide(A(row[k])) - mu_w;
          sq += d * d;
        }
      }
      pm[c] = mu;
      pi[c] = A(1 / std::sqrt(sq / Wide(m) + eps));
      if (rm) rm[c] = T(A(momentum) * mu + A(1 - momentum) * A(rm[c]));
      if (rv) {
        A unbiased = m > 1 ? A(sq / Wide(m - 1)) : A(NAN);
        rv[c] = T(A(momentum) * unbiased + A(1 - momentum) * A(rv[c]));
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
  visit_floating(x.dtype, "batch_norm_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using A = opmath_t<T>;
    const T* px = static_cast<const T*>(x.data);
    const T* pg = static_cast<const T*>(gy.data);
    const A* pm = static_cast<const A*>(mean.data);
    const A* pi = static_cast<const A*>(invstd.data);
    std::vector<A> sum_gy(size_t(s.c)), sum_dot(size_t(s.c));
#pragma omp parallel for schedule(static) if (s.c > 1 && s.n * s.c * s.hw > 32768)
    for (int64_t c = 0; c < s.c; ++c) {
      Wide sg = 0, sd = 0;
      for (int64_t n = 0; n < s.n; ++n) {
        const T* xr = px + (n * s.c + c) * s.hw;
        const T* gr = pg + (n * s.c + c) * s.hw;
        for (int64_t k = 0; k < s.hw; ++k) {
          Wide g = Wide(A(gr[k]));
          sg += g;
          sd += g * (Wide(A(xr[k])) - Wide(pm[c]));
        }
      }
      sum_gy[size_t(c)] = A(sg);
      sum_dot[size_t(c)] = A(sd * Wide(pi[c]));  // sum(gy * xhat)
      if (gweight) static_cast<T*>(gweight->data)[c] = T(sum_dot[size_t(c)]);
      if (gbias) static_cast<T*>(gbias->data)[c] = T(sg);
    }
    if (gx) Maps::batch_norm_input_grad<T>(s, x, gy, mean, invstd, weight, train, sum_gy.data(), sum_dot.data(), *gx);
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
