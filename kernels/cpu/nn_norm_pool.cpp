// CPU batch norm and pooling: the per-channel sums are loops here; the maps are the shared bodies of
// kernels/nn_bodies.h run by the CPU executor.
#include <cmath>
#include <vector>

#include "kernels/cpu/executor.h"
#include "kernels/nn_backends.h"
#include "kernels/nn_bodies.h"

namespace ht::kernels::cpu {

namespace {
using Maps = NnMaps<Executor>;
template <class T> T* mut(const RawView* v) { return v ? static_cast<T*>(v->data) : nullptr; }
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
      // two passes (mean, then squared deviations) in opmath, as PyTorch's CPU kernel does
      A sum = 0;
      for (int64_t n = 0; n < s.n; ++n) {
        const T* row = px + (n * s.c + c) * s.hw;
        for (int64_t k = 0; k < s.hw; ++k) sum += A(row[k]);
      }
      A mu = sum / A(m);
      A sq = 0;
      for (int64_t n = 0; n < s.n; ++n) {
        const T* row = px + (n * s.c + c) * s.hw;
        for (int64_t k = 0; k < s.hw; ++k) {
          A d = A(row[k]) - mu;
          sq += d * d;
        }
      }
      pm[c] = mu;
      pi[c] = A(1) / std::sqrt(sq / A(m) + A(eps));
      if (rm) rm[c] = T(A(momentum) * mu + A(1 - momentum) * A(rm[c]));
      if (rv) {
        A unbiased = m > 1 ? sq / A(m - 1) : A(NAN);
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
      A sg = 0, sd = 0;
      for (int64_t n = 0; n < s.n; ++n) {
        const T* xr = px + (n * s.c + c) * s.hw;
        const T* gr = pg + (n * s.c + c) * s.hw;
        for (int64_t k = 0; k < s.hw; ++k) {
          A g = A(gr[k]);
          sg += g;
          sd += g * (A(xr[k]) - pm[c]);
        }
      }
      sum_gy[size_t(c)] = sg;
      sum_dot[size_t(c)] = sd * pi[c];  // sum(gy * xhat)
      if (gweight) static_cast<T*>(gweight->data)[c] = T(sum_dot[size_t(c)]);
      if (gbias) static_cast<T*>(gbias->data)[c] = T(sg);
    }
    if (gx) Maps::batch_norm_input_grad<T>(s, x, gy, mean, invstd, weight, train, sum_gy.data(), sum_dot.data(), *gx);
  });
}

void max_pool2d_forward(const Pool2dShape& s, const RawView& x, const RawView& y, const RawView& indices) {
  Maps::max_pool2d_forward(s, x, y, indices);
}
void max_pool2d_backward(const Pool2dShape& s, const RawView& gy, const RawView& indices, const RawView& gx) {
  Maps::max_pool2d_backward(s, gy, indices, gx);
}
void adaptive_avg_pool2d_forward(const Pool2dShape& s, const RawView& x, const RawView& y) {
  Maps::adaptive_avg_pool2d_forward(s, x, y);
}
void adaptive_avg_pool2d_backward(const Pool2dShape& s, const RawView& gy, const RawView& gx) {
  Maps::adaptive_avg_pool2d_backward(s, gy, gx);
}

}  // namespace ht::kernels::cpu
