// var and std (unbiased by default, as torch) and the vector norms, composed from differentiable reductions.
#include <cmath>

#include "core/ops.h"

namespace ht {

Tensor var(const Tensor& x, Shape dims, bool unbiased, bool keepdim) {
  HT_CHECK(x.is_floating_point(), "[var] expected a floating-point input, got ", dtype_name(x.dtype()));
  Tensor centered = sub(x, mean(x, dims, true));
  Tensor ss = sum(square(centered), dims, keepdim);
  int64_t n = x.numel() / std::max<int64_t>(ss.numel(), 1);
  if (x.numel() == 0) n = 0;
  return div(ss, double(std::max<int64_t>(n - (unbiased ? 1 : 0), 0)));
}
Tensor var(const Tensor& x, bool unbiased) { return var(x, Shape{}, unbiased, false); }
Tensor std(const Tensor& x, Shape dims, bool unbiased, bool keepdim) { return sqrt(var(x, std::move(dims), unbiased, keepdim)); }
Tensor std(const Tensor& x, bool unbiased) { return sqrt(var(x, unbiased)); }

Tensor norm(const Tensor& x, double p, Shape dims, bool keepdim) {
  HT_CHECK(x.is_floating_point(), "[norm] expected a floating-point input, got ", dtype_name(x.dtype()));
  if (std::isinf(p) && p > 0) {
    Tensor a = abs(x);
    if (dims.empty()) return max(a);
    Tensor out = a;
    for (int64_t d : dims) out = std::get<0>(out.max(d, true));
    return keepdim ? out : sum(out, dims, false);  // summing size-1 dims only drops them
  }
  HT_CHECK(p > 0, "[norm] p must be positive (or INFINITY), got ", p);
  if (p == 2) return sqrt(sum(square(x), dims, keepdim));
  if (p == 1) return sum(abs(x), dims, keepdim);
  return pow(sum(pow(abs(x), p), dims, keepdim), 1.0 / p);
}
Tensor norm(const Tensor& x, double p) { return norm(x, p, Shape{}, false); }

}  // namespace ht
