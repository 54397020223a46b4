// var and std (unbiased by default, as torch.var/std) and the vector p-norms (torch.norm, which torch 2.x runs as
// linalg_vector_norm), each one autograd node with the backward rule PyTorch's tools/autograd/derivatives.yaml
// gives it (var_backward, std_backward, linalg_vector_norm_backward; written out in
// torch/csrc/autograd/FunctionsManual.cpp) and the values it saves. The values come from the reductions run
// without recording, in float32 for 16-bit inputs (rounded once at the end, as torch's reductions accumulate in
// float); the backward rules compute in float32 for 16-bit inputs as well.
#include <cmath>

#include "core/autograd.h"
#include "core/ops.h"

namespace ht {

using autograd::Grads;
using autograd::Inputs;

namespace {

// What a reduction over `dims` (every dim when empty, torch's dim=None) does to x's shape.
struct Reduction {
  Shape dims;
  bool all = true;    // no dims given, or a 0-dim input: var_backward's whole-tensor case
  Shape kept_shape;   // x's shape with the reduced dims as 1: where the gradient broadcasts from
  Shape out_shape;    // the result's shape
  int64_t count = 1;  // elements reduced into each result value
};

Reduction reduction_of(const Tensor& x, Shape dims, bool keepdim, const char* op) {
  HT_CHECK(x.is_floating_point(), "[", op, "] expected a floating-point input, got ", dtype_name(x.dtype()));
  Reduction r;
  r.all = dims.empty() || x.dim() == 0;
  std::vector<bool> reduced(size_t(std::max<int64_t>(x.dim(), 1)), dims.empty());
  for (int64_t d : dims) {
    int64_t w = wrap_dim(d, x.dim(), op);
    HT_CHECK(!reduced[size_t(w)], "[", op, "] dim ", d, " appears more than once");
    reduced[size_t(w)] = true;
  }
  for (int64_t d = 0; d < x.dim(); ++d) {
    bool red = reduced[size_t(d)];
    if (red) r.count *= x.size(d);
    r.kept_shape.push_back(red ? 1 : x.size(d));
    if (!red || keepdim) r.out_shape.push_back(red ? 1 : x.size(d));
  }
  r.dims = std::move(dims);
  return r;
}

bool is_16bit(DType t) { return t == kFloat16 || t == kBFloat16; }
// float16 and bfloat16 values computed in float32 (PyTorch's opmath type)
Tensor in_opmath(const Tensor& x) { return is_16bit(x.dtype()) ? x.detach().to(kFloat32) : x.detach(); }

// the sign of each element (torch.sgn on real tensors): -1, 0 or 1; 0 for NaN, as torch's norm gradients give it
Tensor sgn(const Tensor& x) { return sub(gt(x, 0.0).to(x.dtype()), lt(x, 0.0).to(x.dtype())); }

Tensor var_values(const Tensor& xf, const Reduction& r, double correction, bool keepdim) {
  Tensor centered = sub(xf, mean(xf, r.dims, true));
  return div(sum(square(centered), r.dims, keepdim), std::max(double(r.count) - correction, 0.0));
}

// var_backward: 2 / (n - correction) * grad * (x - mean). With no dims and n <= correction that factor is
// infinite: torch gives NaN where x equals its mean (infinity times zero) and infinity elsewhere.
Tensor var_backward(const Tensor& g, const Tensor& x, const Reduction& r, double correction) {
  Tensor xf = in_opmath(x), gk = in_opmath(g).reshape(r.kept_shape);
  Tensor centered = sub(xf, mean(xf, r.dims, true));
  double dof = double(r.count) - correction;
  Tensor gx = r.all && dof <= 0 ? mul(gk, where(eq(centered, 0.0), NAN, INFINITY)) : mul(mul(gk, 2.0 / dof), centered);
  return gx.to(x.dtype());
}

Tensor record_var(const Tensor& x, Shape dims, bool unbiased, bool keepdim) {
  Reduction r = reduction_of(x, std::move(dims), keepdim, "var");
  double correction = unbiased ? 1 : 0;
  Tensor out;
  {
    NoGradGuard no_grad;
    out = var_values(in_opmath(x), r, correction, keepdim).to(x.dtype());
  }
  // derivatives.yaml: var.correction saves self
  return autograd::record("var", out, {x}, [r, correction](const Inputs& in, const Tensor&, const Tensor& g) {
    return Grads{var_backward(g, in[0], r, correction)};
  }, {.inputs = {0}});
}

Tensor record_std(const Tensor& x, Shape dims, bool unbiased, bool keepdim) {
  Reduction r = reduction_of(x, std::move(dims), keepdim, "std");
  double correction = unbiased ? 1 : 0;
  Tensor out;
  {
    NoGradGuard no_grad;
    out = sqrt(var_values(in_opmath(x), r, correction, keepdim)).to(x.dtype());
  }
  // std_backward: var's gradient of grad / (2 std), zero where std is zero; saves self and result
  return autograd::record("std", out, {x}, [r, correction](const Inputs& in, const Tensor& y, const Tensor& g) {
    Tensor yf = in_opmath(y);
    Tensor g_var = where(eq(yf, 0.0), 0.0, div(in_opmath(g), mul(yf, 2.0)));
    return Grads{var_backward(g_var, in[0], r, correction)};
  }, {.inputs = {0}, .output = true});
}

Tensor norm_values(const Tensor& xf, double p, const Reduction& r, bool keepdim) {
  if (std::isinf(p)) {
    Tensor a = abs(xf);
    if (r.dims.empty()) return keepdim ? max(a).reshape(r.kept_shape) : max(a);
    for (int64_t d : r.dims) a = std::get<0>(a.max(d, true));
    return a.reshape(r.out_shape);
  }
  if (p == 2) return sqrt(sum(square(xf), r.dims, keepdim));
  if (p == 1) return sum(abs(xf), r.dims, keepdim);
  return pow(sum(pow(abs(xf), p), r.dims, keepdim), 1.0 / p);
}

// linalg_vector_norm_backward (norm_backward): the gradient of each p-norm, zero where the norm is zero.
Tensor norm_backward(const Tensor& g, const Tensor& x, double p, const Tensor& norm, const Reduction& r) {
  Tensor xf = in_opmath(x), gk = in_opmath(g).reshape(r.kept_shape), nk = in_opmath(norm).reshape(r.kept_shape);
  Tensor zero_norm = eq(nk, 0.0);
  Tensor gx;
  if (p == 1) {
    gx = mul(sgn(xf), gk);
  } else if (p == 2) {
    gx = mul(gk, where(zero_norm, 0.0, div(xf, nk)));
  } else if (std::isinf(p)) {
    // the elements of largest magnitude (or NaN) share the gradient evenly
    Tensor a = abs(xf);
    Tensor hit = where(isnan(a), 1.0, eq(a, nk).to(xf.dtype()));
    gx = mul(sgn(xf), mul(div(gk, sum(hit, r.dims, true)), hit));
  } else if (p < 1) {
    Tensor scaled = mul(sgn(xf), where(eq(xf, 0.0), 0.0, pow(abs(xf), p - 1)));
    gx = mul(mul(scaled, gk), pow(nk, 1 - p));
  } else {
    Tensor scaled = p < 2 ? mul(sgn(xf), pow(abs(xf), p - 1)) : mul(xf, pow(abs(xf), p - 2));
    gx = mul(scaled, where(zero_norm, 0.0, div(gk, pow(nk, p - 1))));
  }
  return gx.to(x.dtype());
}

}  // namespace

Tensor var(const Tensor& x, Shape dims, bool unbiased, bool keepdim) {
  return record_var(x, std::move(dims), unbiased, keepdim);
}
Tensor var(const Tensor& x, bool unbiased) { return record_var(x, Shape{}, unbiased, false); }
Tensor std(const Tensor& x, Shape dims, bool unbiased, bool keepdim) {
  return record_std(x, std::move(dims), unbiased, keepdim);
}
Tensor std(const Tensor& x, bool unbiased) { return record_std(x, Shape{}, unbiased, false); }

Tensor norm(const Tensor& x, double p, Shape dims, bool keepdim) {
  Reduction r = reduction_of(x, std::move(dims), keepdim, "norm");
  HT_CHECK(p > 0, "[norm] p must be positive (or INFINITY), got ", p);
  Tensor out;
  {
    NoGradGuard no_grad;
    out = norm_values(in_opmath(x), p, r, keepdim).to(x.dtype());
  }
  // derivatives.yaml: linalg_vector_norm saves self and result, whatever the order p (p = 1's rule reads only
  // self, but a later write to the result fails backward there as it does in torch)
  return autograd::record("linalg_vector_norm", out, {x}, [p, r](const Inputs& in, const Tensor& y, const Tensor& g) {
    return Grads{norm_backward(g, in[0], p, y, r)};
  }, {.inputs = {0}, .output = true});
}
Tensor norm(const Tensor& x, double p) { return norm(x, p, Shape{}, false); }

}  // namespace ht
