// Masks and tests: where with numbers on either side, masked_fill (MaskedFillBackward0), clamp with tensor
// bounds, isnan / isinf / isfinite, allclose. Built from differentiable core ops, so their CUDA path is theirs.
#include <cmath>

#include "core/autograd.h"
#include "core/ops.h"

namespace ht {

namespace {
Tensor wrapped_like(const Tensor& like, Scalar s) {
  return scalar_tensor(s.to_double(), {.dtype = s.wrapped_dtype(), .device = like.device()});
}
}  // namespace

Tensor where(const Tensor& cond, const Tensor& a, Scalar b) { return where(cond, a, wrapped_like(a, b)); }
Tensor where(const Tensor& cond, Scalar a, const Tensor& b) { return where(cond, wrapped_like(b, a), b); }
Tensor where(const Tensor& cond, Scalar a, Scalar b) {
  // two numbers: the result takes their promoted default dtype (torch.where(c, 1, 0.5) is float32)
  return where(cond, wrapped_like(cond, a), wrapped_like(cond, b));
}
Tensor masked_fill(const Tensor& x, const Tensor& mask, Scalar value) {
  HT_CHECK(mask.defined() && mask.dtype() == kBool, "[masked_fill] expected a bool mask");
  // the result keeps x's dtype and shape (value is cast to it), as torch.masked_fill
  Tensor v = scalar_tensor(value.to_double(), {.dtype = x.dtype(), .device = x.device()});
  Tensor out;
  {
    NoGradGuard no_grad;
    out = where(mask, v, x);
  }
  HT_CHECK(out.sizes() == x.sizes(), "[masked_fill] mask of shape ", shape_str(mask.sizes()),
           " does not broadcast to the input's shape ", shape_str(x.sizes()));
  Tensor m = mask.detach();
  return autograd::record("masked_fill", out, {x}, [m](const autograd::Inputs&, const Tensor&, const Tensor& g) {
    return autograd::Grads{where(m, zeros({}, {.dtype = g.dtype(), .device = g.device()}), g)};
  });
}
Tensor clamp(const Tensor& x, const Tensor& min, const Tensor& max) {
  Tensor out = x;
  if (min.defined()) out = maximum(out, min);
  if (max.defined()) out = minimum(out, max);
  return out;
}

Tensor isnan(const Tensor& x) { return ne(x, x); }
Tensor isinf(const Tensor& x) {
  if (!x.is_floating_point()) return zeros(x.sizes(), {.dtype = kBool, .device = x.device()});
  return eq(abs(x.detach()), INFINITY);
}
Tensor isfinite(const Tensor& x) {
  if (!x.is_floating_point()) return ones(x.sizes(), {.dtype = kBool, .device = x.device()});
  Tensor d = x.detach();
  return eq(sub(d, d), 0);  // inf - inf and nan - nan are nan
}
bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol, bool equal_nan) {
  NoGradGuard g;
  Tensor a64 = a.to(kFloat64), b64 = b.to(kFloat64);
  Tensor close = le(abs(sub(a64, b64)), add(mul(abs(b64), rtol), atol));
  Tensor hits = add(close.to(kInt64), eq(a64, b64).to(kInt64));  // equal infinities are close
  if (equal_nan) hits = add(hits, mul(isnan(a64).to(kInt64), isnan(b64).to(kInt64)));
  close = gt(hits, 0);
  return min(close.to(kInt64)).item<int64_t>() == 1;
}

}  // namespace ht
