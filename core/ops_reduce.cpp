// Reductions over dims (sum, mean, max/min with indices, argmax/argmin) and their backward rules.
#include <algorithm>
#include <cmath>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/raw.h"

namespace ht {

using autograd::Grads;
using autograd::Inputs;
using kernels::ReduceOp;

namespace {

struct Plan {
  Tensor rows;       // contiguous [outer, inner]: reduced dims last
  Shape out_shape;   // kept dims (keepdim: reduced dims as 1)
  Shape kept_shape;  // same, reduced dims as 1 (for backward broadcasting)
  int64_t outer = 1, inner = 1;
};

Plan plan_reduce(const Tensor& x, Shape dims, bool keepdim, const char* op) {
  int64_t nd = x.dim();
  std::vector<bool> red(size_t(std::max<int64_t>(nd, 1)), false);
  if (dims.empty()) std::fill(red.begin(), red.end(), true);
  for (int64_t d : dims) {
    int64_t w = wrap_dim(d, nd, op);
    HT_CHECK(!red[size_t(w)] || dims.empty(), "[", op, "] dim ", d, " appears more than once");
    red[size_t(w)] = true;
  }
  Plan p;
  Shape perm, kept_dims;
  for (int64_t d = 0; d < nd; ++d)
    if (!red[size_t(d)]) {
      perm.push_back(d);
      p.outer *= x.size(d);
    }
  for (int64_t d = 0; d < nd; ++d)
    if (red[size_t(d)]) {
      perm.push_back(d);
      p.inner *= x.size(d);
    }
  for (int64_t d = 0; d < nd; ++d) {
    p.kept_shape.push_back(red[size_t(d)] ? 1 : x.size(d));
    if (!red[size_t(d)] || keepdim) p.out_shape.push_back(red[size_t(d)] ? 1 : x.size(d));
  }
  Tensor xd = x.detach();
  p.rows = (nd ? xd.permute(perm) : xd).contiguous();
  return p;
}

Tensor run_reduce(ReduceOp op, const Plan& p, DType out_dtype, Tensor* indices, const char* name) {
  Tensor out = empty(p.out_shape, {.dtype = out_dtype, .device = p.rows.device()});
  if (indices) *indices = empty(p.out_shape, {.dtype = kInt64, .device = p.rows.device()});
  if (p.outer == 0) return out;
  HT_CHECK(p.inner > 0 || op == ReduceOp::Sum || op == ReduceOp::Mean, "[", name,
           "] cannot reduce over a zero-size dimension");
  if (p.inner == 0) return out.fill_(op == ReduceOp::Sum ? 0.0 : NAN);
  kernels::RawView idx = indices ? detail::raw(*indices, name) : kernels::RawView{};
  kernels::reduce_rows(op, detail::raw(p.rows, name), p.outer, p.inner, detail::raw(out, name),
                       indices ? &idx : nullptr);
  return out;
}

DType sum_dtype(DType t) { return is_floating(t) ? t : kInt64; }

}  // namespace

Tensor sum(const Tensor& x, Shape dims, bool keepdim) {
  Plan p = plan_reduce(x, dims, keepdim, "sum");
  Shape kept = p.kept_shape;
  // sum over every dim and sum over listed dims are different nodes in PyTorch (SumBackward0/1)
  return autograd::record(dims.empty() ? "sum" : "sum_dim", run_reduce(ReduceOp::Sum, p, sum_dtype(x.dtype()), nullptr, "sum"), {x},
                          [kept](const Inputs& in, const Tensor&, const Tensor& g) {
                            return Grads{g.reshape(kept).expand(in[0].sizes()).contiguous()};
                          });
}
Tensor sum(const Tensor& x) { return sum(x, {}, false); }

Tensor mean(const Tensor& x, Shape dims, bool keepdim) {
  HT_CHECK(x.is_floating_point(), "[mean] expected a floating-point input, got ", dtype_name(x.dtype()));
  Plan p = plan_reduce(x, dims, keepdim, "mean");
  Shape kept = p.kept_shape;
  double count = double(p.inner);
  return autograd::record(dims.empty() ? "mean" : "mean_dim", run_reduce(ReduceOp::Mean, p, x.dtype(), nullptr, "mean"), {x},
                          [kept, count](const Inputs& in, const Tensor&, const Tensor& g) {
                            return Grads{div(g.reshape(kept), count).expand(in[0].sizes()).contiguous()};
                          });
}
Tensor mean(const Tensor& x) { return mean(x, {}, false); }

namespace {
std::pair<Tensor, Tensor> extreme_dim(const Tensor& x, int64_t dim, bool keepdim, bool is_max) {
  const char* name = is_max ? "max" : "min";
  int64_t d = wrap_dim(dim, x.dim(), name);
  Plan p = plan_reduce(x, {d}, keepdim, name);
  Tensor idx;
  Tensor vals = run_reduce(is_max ? ReduceOp::Max : ReduceOp::Min, p, x.dtype(), &idx, name);
  Shape kept = p.kept_shape;
  Tensor saved_idx = idx.reshape(kept);
  vals = autograd::record(is_max ? "max_dim" : "min_dim", vals, {x}, [kept, d, saved_idx](const Inputs& in, const Tensor&, const Tensor& g) {
    // route g to the chosen index along dim: compare an iota along dim with the saved indices
    int64_t n = in[0].dim() ? in[0].size(d) : 1;
    Shape iota_shape(size_t(std::max<int64_t>(in[0].dim(), 1)), 1);
    if (in[0].dim()) iota_shape[size_t(d)] = n;
    Tensor iota = arange(n, {.dtype = kInt64, .device = g.device()}).reshape(iota_shape);
    Tensor hit = eq(iota, saved_idx);
    Tensor gx = where(hit, g.reshape(kept), zeros({}, {.dtype = g.dtype(), .device = g.device()}));
    return Grads{gx.reshape(in[0].sizes()).contiguous()};
  });
  return {vals, idx};
}

Tensor extreme_all(const Tensor& x, bool is_max) {
  const char* name = is_max ? "max" : "min";
  Plan p = plan_reduce(x, {}, false, name);
  Tensor v = run_reduce(is_max ? ReduceOp::Max : ReduceOp::Min, p, x.dtype(), nullptr, name);
  // ties share the gradient evenly, as PyTorch's full reductions do
  return autograd::record(name, v, {x}, [](const Inputs& in, const Tensor& y, const Tensor& g) {
    Tensor hit = eq(in[0], y).to(g.dtype());
    return Grads{div(mul(hit, g), sum(hit))};
  }, {.inputs = {0}, .output = true});
}
}  // namespace

std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim) { return extreme_dim(x, dim, keepdim, true); }
std::pair<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim) { return extreme_dim(x, dim, keepdim, false); }
Tensor max(const Tensor& x) { return extreme_all(x, true); }
Tensor min(const Tensor& x) { return extreme_all(x, false); }

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  Plan p = plan_reduce(x, {wrap_dim(dim, x.dim(), "argmax")}, keepdim, "argmax");
  return run_reduce(ReduceOp::ArgMax, p, kInt64, nullptr, "argmax");
}
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) {
  Plan p = plan_reduce(x, {wrap_dim(dim, x.dim(), "argmin")}, keepdim, "argmin");
  return run_reduce(ReduceOp::ArgMin, p, kInt64, nullptr, "argmin");
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.sizes() == shape) return x;
  int64_t lead = x.dim() - int64_t(shape.size());
  HT_CHECK(lead >= 0, "[sum_to] cannot sum shape ", shape_str(x.sizes()), " to ", shape_str(shape));
  Shape dims;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (d < lead) dims.push_back(d);
    else if (shape[size_t(d - lead)] == 1 && x.size(d) != 1) dims.push_back(d);
  }
  if (dims.empty()) return x.reshape(shape);
  return sum(x, dims, true).reshape(shape);
}

}  // namespace ht
