// libtorch's everyday compositions: stack/chunk/split, masked_fill and where with numbers, clamp with tensor
// bounds, isnan/isinf/isfinite, allclose, var/std/norm, mm/bmm/mv. Each is built from differentiable ops, so
// its backward and its CUDA path are theirs.
#include <cmath>

#include "core/autograd.h"
#include "core/ops.h"

namespace ht {

namespace {
Tensor wrapped_like(const Tensor& like, Scalar s) {
  return scalar_tensor(s.to_double(), {.dtype = s.wrapped_dtype(), .device = like.device()});
}
int64_t dim_size(const Tensor& x, int64_t dim, const char* op) {
  HT_CHECK(x.dim() > 0, "[", op, "] expected a tensor with at least one dimension");
  return x.size(wrap_dim(dim, x.dim(), op));
}
}  // namespace

Tensor stack(const std::vector<Tensor>& xs, int64_t dim) {
  HT_CHECK(!xs.empty(), "[stack] expects a non-empty list of tensors");
  int64_t d = wrap_dim(dim, xs[0].dim() + 1, "stack");
  std::vector<Tensor> parts;
  for (size_t i = 0; i < xs.size(); ++i) {
    HT_CHECK(xs[i].sizes() == xs[0].sizes(), "[stack] expects each tensor to be equal size, but got ",
             shape_str(xs[0].sizes()), " at entry 0 and ", shape_str(xs[i].sizes()), " at entry ", i);
    parts.push_back(xs[i].detach().unsqueeze(d));
  }
  Tensor out;
  {
    NoGradGuard no_grad;
    out = cat(parts, d);
  }
  return autograd::record("stack", out, xs, [d](const autograd::Inputs& in, const Tensor&, const Tensor& g) {
    autograd::Grads gs;
    for (size_t i = 0; i < in.size(); ++i) gs.push_back(g.select(d, int64_t(i)).to(in[i].dtype()));
    return gs;
  });
}

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim) {
  int64_t n = dim_size(x, dim, "split");
  HT_CHECK(split_size > 0 || (split_size == 0 && n == 0), "[split] split_size must be positive, got ", split_size);
  std::vector<Tensor> out;
  for (int64_t start = 0; start < n; start += split_size)
    out.push_back(detail::slice_as(x, dim, start, std::min(start + split_size, n), 1, "split"));
  if (out.empty()) out.push_back(x);
  return out;
}
std::vector<Tensor> split(const Tensor& x, Shape split_sizes, int64_t dim) {
  int64_t n = dim_size(x, dim, "split"), total = 0;
  for (int64_t s : split_sizes) total += s;
  HT_CHECK(total == n, "[split] split_with_sizes expects split_sizes to sum exactly to ", n,
           " (input tensor's size at dimension ", dim, "), but got split_sizes=", shape_str(split_sizes));
  std::vector<Tensor> out;
  int64_t start = 0;
  for (int64_t s : split_sizes) {
    HT_CHECK(s >= 0, "[split] split_with_sizes expects non-negative sizes, got ", shape_str(split_sizes));
    out.push_back(detail::slice_as(x, dim, start, start + s, 1, "split_with_sizes"));
    start += s;
  }
  return out;
}
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  HT_CHECK(chunks > 0, "[chunk] number of chunks must be positive, got ", chunks);
  int64_t n = dim_size(x, dim, "chunk");
  return split(x, (n + chunks - 1) / chunks, dim);
}
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) { return x.narrow(dim, start, length); }

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

Tensor mm(const Tensor& a, const Tensor& b) {
  HT_CHECK(a.dim() == 2 && b.dim() == 2, "[mm] expected 2-d operands, got ", shape_str(a.sizes()), " and ",
           shape_str(b.sizes()));
  return matmul(a, b);
}
Tensor bmm(const Tensor& a, const Tensor& b) {
  HT_CHECK(a.dim() == 3 && b.dim() == 3 && a.size(0) == b.size(0), "[bmm] expected 3-d operands with one batch size, got ",
           shape_str(a.sizes()), " and ", shape_str(b.sizes()));
  return matmul(a, b);
}
Tensor mv(const Tensor& a, const Tensor& v) {
  HT_CHECK(a.dim() == 2 && v.dim() == 1, "[mv] expected a 2-d matrix and a 1-d vector, got ", shape_str(a.sizes()),
           " and ", shape_str(v.sizes()));
  return matmul(a, v);
}

}  // namespace ht
