// matmul / linear (GEMM on either device) with mm, bmm and mv, softmax / log_softmax and cat, with their
// backward rules.
#include "core/autocast.h"
#include "core/autograd.h"
#include "core/ops.h"
#include "core/raw.h"

namespace ht {

using autograd::Grads;
using autograd::Inputs;

namespace {

// A batch of row-major matrices for GEMM: either contiguous, or contiguous after a transpose of the last two
// dims (then passed as trans without a copy). A broadcast batch (stride 0: one matrix for every batch entry)
// is passed as it is, with batch stride 0.
struct MatOperand {
  Tensor t;
  bool trans = false;
  int64_t ld = 0;
};

MatOperand as_gemm_operand(const Tensor& x3) {  // x3: [B, r, c]
  int64_t r = x3.size(1), c = x3.size(2);
  auto batch_ok = [&](const Tensor& t) { return x3.size(0) == 1 || t.stride(0) == r * c || t.stride(0) == 0; };
  if (x3.stride(2) == 1 && x3.stride(1) == c && batch_ok(x3)) return {x3, false, c};
  if (x3.stride(1) == 1 && x3.stride(2) == r && batch_ok(x3)) return {x3, true, r};
  Tensor cc = x3.contiguous();
  return {cc, false, c};
}

// [.., m, k] @ [.., k, n] with batch dims already broadcast to `batch`; inputs detached.
Tensor bmm_raw(const Tensor& a, const Tensor& b, const Shape& batch) {
  int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  int64_t nb = numel_of(batch);
  Shape as = batch, bs = batch;
  as.insert(as.end(), {m, k});
  bs.insert(bs.end(), {k, n});
  Tensor a3 = a.expand(as).reshape({nb, m, k}), b3 = b.expand(bs).reshape({nb, k, n});
  MatOperand A = as_gemm_operand(a3), B = as_gemm_operand(b3);
  Shape os = batch;
  os.insert(os.end(), {m, n});
  Tensor out = empty(os, {.dtype = a.dtype(), .device = a.device()});
  if (k == 0) return out.zero_();
  kernels::GemmArgs g;
  g.trans_a = A.trans;
  g.trans_b = B.trans;
  g.m = m; g.n = n; g.k = k;
  g.a = A.t.raw_data(); g.lda = A.ld; g.stride_a = nb > 1 ? A.t.stride(0) : 0;
  g.b = B.t.raw_data(); g.ldb = B.ld; g.stride_b = nb > 1 ? B.t.stride(0) : 0;
  g.c = out.raw_data(); g.ldc = n; g.stride_c = m * n;
  g.batch = nb;
  g.dtype = a.dtype();
  g.device = a.device();
  kernels::gemm(g);
  return out;
}

}  // namespace

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  Tensor a = amp::autocast_input(a_in, amp::CastPolicy::LowerPrecision);
  Tensor b = amp::autocast_input(b_in, amp::CastPolicy::LowerPrecision);
  HT_CHECK(a.dim() >= 1 && b.dim() >= 1, "[matmul] both arguments need at least 1 dimension, got ",
           shape_str(a.sizes()), " and ", shape_str(b.sizes()));
  HT_CHECK(a.dtype() == b.dtype(), "[matmul] expected both operands to have one dtype, got ", dtype_name(a.dtype()),
           " and ", dtype_name(b.dtype()));
  HT_CHECK(a.dtype() != kBool, "[matmul] not implemented for 'Bool'");
  HT_CHECK(a.device() == b.device(), "[matmul] expected both operands on one device, got ", a.device().str(), " and ",
           b.device().str());
  // 1-D operands become matrices and lose that dim again at the end, as torch.matmul does.
  if (a.dim() == 1) return matmul(a.unsqueeze(0), b).squeeze(-2);
  if (b.dim() == 1) return matmul(a, b.unsqueeze(1)).squeeze(-1);
  HT_CHECK(a.size(-1) == b.size(-2), "[matmul] shapes ", shape_str(a.sizes()), " and ", shape_str(b.sizes()),
           " cannot be multiplied (", a.size(-1), " != ", b.size(-2), ")");
  // [.., m, k] @ [k, n] is one [(..) m, k] @ [k, n] product (Linear on 3-d input), so neither pass repeats b
  // per batch entry, and the weight gradient is one GEMM over the whole batch instead of a batch and a sum.
  if (b.dim() == 2 && a.dim() > 2 && a.size(-1) > 0) {
    Shape os = a.sizes();
    os.back() = b.size(1);
    return matmul(a.reshape({-1, a.size(-1)}), b).reshape(os);
  }
  Shape ab(a.sizes().begin(), a.sizes().end() - 2), bb(b.sizes().begin(), b.sizes().end() - 2);
  Shape batch = broadcast_shapes(ab, bb, "matmul");
  Tensor out = bmm_raw(a.detach(), b.detach(), batch);
  return autograd::record("matmul", out, {a, b}, [](const Inputs& in, const Tensor&, const Tensor& g) {
    Tensor ga, gb;
    if (in[0].requires_grad()) ga = sum_to(matmul(g, in[1].transpose(-1, -2)), in[0].sizes());
    if (in[1].requires_grad()) gb = sum_to(matmul(in[0].transpose(-1, -2), g), in[1].sizes());
    return Grads{ga, gb};
  }, {.inputs = {0, 1}});
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  HT_CHECK(weight.dim() == 2, "[linear] expected a 2-d weight (out_features, in_features), got ",
           shape_str(weight.sizes()));
  HT_CHECK(x.dim() >= 1 && x.size(-1) == weight.size(1), "[linear] input's last dim ", x.dim() ? x.size(-1) : 0,
           " does not match in_features ", weight.size(1), " (input ", shape_str(x.sizes()), ", weight ",
           shape_str(weight.sizes()), ")");
  if (!(bias.defined() && x.dim() == 2 && x.is_floating_point())) {
    Tensor y = matmul(x, weight.t());
    return bias.defined() ? add(y, amp::autocast_input(bias, amp::CastPolicy::LowerPrecision)) : y;
  }
  // 2-d input with a bias: one node, PyTorch's addmm (AddmmBackward0), x @ w^T + b
  Tensor xa = amp::autocast_input(x, amp::CastPolicy::LowerPrecision);
  Tensor wa = amp::autocast_input(weight, amp::CastPolicy::LowerPrecision);
  Tensor ba = amp::autocast_input(bias, amp::CastPolicy::LowerPrecision);
  Tensor y;
  {
    NoGradGuard no_grad;
    y = add(matmul(xa, wa.t()), ba);
  }
  return autograd::record("linear", y, {xa, wa, ba}, [](const Inputs& in, const Tensor&, const Tensor& g) {
    Tensor gm = g.to(in[0].dtype());
    Tensor gx = in[0].requires_grad() ? matmul(gm, in[1]) : Tensor();
    Tensor gw = in[1].requires_grad() ? matmul(gm.t(), in[0]) : Tensor();
    Tensor gb = in[2].requires_grad() ? sum_to(g, in[2].sizes()).to(in[2].dtype()) : Tensor();
    return Grads{gx, gw, gb};
  }, {.inputs = {0, 1}});
}

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

namespace {
Tensor softmax_impl(const Tensor& x_in, int64_t dim, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  Tensor x = amp::autocast_input(x_in, amp::CastPolicy::Float32);
  Tensor xr = x.is_floating_point() ? x : x.to(kFloat32);
  int64_t d = wrap_dim(dim, xr.dim(), name);
  int64_t last = std::max<int64_t>(xr.dim() - 1, 0);
  Tensor moved = (xr.dim() ? xr.detach().transpose(d, last) : xr.detach()).contiguous();
  int64_t cols = xr.dim() ? xr.size(d) : 1;
  int64_t rows = cols ? moved.numel() / cols : 0;
  Tensor out = empty(moved.sizes(), {.dtype = xr.dtype(), .device = xr.device()});
  kernels::softmax_rows(detail::raw(moved, name), detail::raw(out, name), rows, cols, log);
  Tensor y = xr.dim() ? out.transpose(d, last) : out;
  return autograd::record(name, y, {xr}, [d, last, log, name](const Inputs& in, const Tensor& y, const Tensor& g) {
    Tensor ym = (in[0].dim() ? y.transpose(d, last) : y).contiguous();
    Tensor gm = (in[0].dim() ? g.transpose(d, last) : g).contiguous().to(ym.dtype());
    int64_t cols = ym.dim() ? ym.size(-1) : 1;
    int64_t rows = cols ? ym.numel() / cols : 0;
    Tensor gx = empty_like(ym);
    kernels::softmax_rows_backward(detail::raw(ym, name), detail::raw(gm, name), detail::raw(gx, name), rows, cols,
                                   log);
    return Grads{in[0].dim() ? gx.transpose(d, last) : gx};
  }, {.output = true});
}
}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, true); }

Tensor cat(const std::vector<Tensor>& xs, int64_t dim) {
  HT_CHECK(!xs.empty(), "[cat] expected a non-empty list of tensors");
  const Tensor& f = xs[0];
  int64_t d = wrap_dim(dim, f.dim(), "cat");
  Shape shape = f.sizes();
  DType t = f.dtype();
  shape[size_t(d)] = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& x = xs[i];
    HT_CHECK(x.dim() == f.dim(), "[cat] tensor ", i, " has ", x.dim(), " dims, expected ", f.dim());
    HT_CHECK(x.device() == f.device(), "[cat] tensor ", i, " is on ", x.device().str(), ", expected ",
             f.device().str());
    for (int64_t k = 0; k < f.dim(); ++k)
      HT_CHECK(k == d || x.size(k) == f.size(k), "[cat] sizes of tensors must match except in dimension ", d,
               ": tensor ", i, " has shape ", shape_str(x.sizes()), ", tensor 0 ", shape_str(f.sizes()));
    shape[size_t(d)] += x.size(d);
    t = promote_types(t, x.dtype());
  }
  Tensor out = empty(shape, {.dtype = t, .device = f.device()});
  std::vector<int64_t> starts;
  int64_t at = 0;
  for (const auto& x : xs) {
    starts.push_back(at);
    out.detach().narrow(d, at, x.size(d)).copy_(x.detach());
    at += x.size(d);
  }
  return autograd::record("cat", out, xs, [d, starts](const Inputs& in, const Tensor&, const Tensor& g) {
    Grads gs;
    for (size_t i = 0; i < in.size(); ++i) gs.push_back(g.narrow(d, starts[i], in[i].size(d)).to(in[i].dtype()));
    return gs;
  });
}

}  // namespace ht
