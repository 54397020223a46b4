// Ops that pick elements by index along one dim: index_select, gather, scatter, scatter_add, sort, argsort,
// topk, cumsum, with their backward rules. Each runs the dtype-generic kernels of kernels/index_bodies.h on the
// tensors' own device and dtype: int64 values are exact, 16-bit floats stay 16-bit.
#include "core/autograd.h"
#include "core/ops.h"
#include "core/raw.h"

namespace ht {

using autograd::Grads;
using autograd::Inputs;

namespace {
void check_index(const Tensor& index, const Tensor& x, const char* op) {
  HT_CHECK(index.defined(), "[", op, "] expected a defined index tensor");
  HT_CHECK_TYPE(index.dtype() == kInt64 || index.dtype() == kInt32, "[", op, "] expected an int64 index, got ",
                dtype_name(index.dtype()));
  HT_CHECK(index.device() == x.device(), "[", op, "] expected the index on the input's device ", x.device().str(),
           ", got ", index.device().str());
}

// Every index value within [0, n), as torch's gather, scatter and index_select require (no negative indices).
void check_range(const Tensor& index, int64_t n, const char* op) {
  if (index.numel() == 0) return;
  NoGradGuard no_grad;
  int64_t lo = min(index).item<int64_t>(), hi = max(index).item<int64_t>();
  HT_CHECK_INDEX(lo >= 0 && hi < n, "[", op, "] index ", lo < 0 ? lo : hi, " is out of bounds for dimension with size ",
                 n);
}

// torch's rule for gather and scatter: one number of dims, and index no larger than `x` outside dim (than `src`
// in every dim).
void check_shapes(const Tensor& x, int64_t d, const Tensor& index, const Tensor* src, const char* op) {
  HT_CHECK(index.dim() == x.dim(), "[", op, "] index tensor must have the same number of dimensions as input (",
           index.dim(), " vs ", x.dim(), ")");
  for (int64_t k = 0; k < x.dim(); ++k) {
    HT_CHECK(k == d || index.size(k) <= x.size(k), "[", op, "] size of index ", shape_str(index.sizes()),
             " exceeds the input's ", shape_str(x.sizes()), " in dimension ", k);
    if (src)
      HT_CHECK(src->dim() == x.dim() && index.size(k) <= src->size(k), "[", op, "] expected index ",
               shape_str(index.sizes()), " to be no larger than src ", shape_str(src->sizes()), " in every dimension");
  }
}

// 0-d tensors take part as 1-d ones of one element.
Tensor as_1d(const Tensor& t) { return t.dim() ? t : t.reshape({1}); }

// gather on detached tensors: out has the index's shape
Tensor gather_values(const Tensor& x, int64_t d, const Tensor& index) {
  Tensor xs = as_1d(x.detach()), is = as_1d(index.detach());
  Tensor out = empty(is.sizes(), {.dtype = x.dtype(), .device = x.device()});
  if (out.numel() > 0) kernels::gather(detail::raw(xs, "gather"), d, detail::raw(is, "gather"), detail::raw(out, "gather"));
  return out.reshape(index.sizes());
}

// base with src's values written (or added) at index along d, on detached tensors
Tensor scatter_values(const Tensor& base, int64_t d, const Tensor& index, const Tensor& src, bool accumulate) {
  Tensor out = as_1d(base.detach()).clone(MemoryFormat::Contiguous);
  Tensor is = as_1d(index.detach());
  Tensor ss = as_1d(src.detach().to(base.dtype()));
  kernels::scatter(detail::raw(out, "scatter"), d, detail::raw(is, "scatter"), detail::raw(ss, "scatter"), accumulate);
  return out.reshape(base.sizes());
}

// x's gradient from an index-shaped gradient g: summed into zeros where index points
Tensor index_add_to_zeros(const Tensor& like, int64_t d, const Tensor& index, const Tensor& g) {
  return scatter_values(zeros(like.sizes(), {.dtype = g.dtype(), .device = g.device()}), d, index, g, true);
}

// The index of index_select, viewed over the output's shape (stride 0 outside dim): a gather index.
Tensor select_index_over(const Tensor& index, const Shape& out_shape, int64_t d) {
  Shape along(out_shape.size(), 1);
  along[size_t(d)] = index.numel();
  return index.reshape(along).expand(out_shape);
}
}  // namespace

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  check_index(index, x, "index_select");
  HT_CHECK(index.dim() <= 1, "[index_select] index must be 0-d or 1-d, got ", shape_str(index.sizes()));
  int64_t d = x.dim() ? wrap_dim(dim, x.dim(), "index_select") : 0;
  check_range(index, x.dim() ? x.size(d) : 1, "index_select");
  Shape os = as_1d(x).sizes();
  os[size_t(d)] = index.numel();
  Tensor idx = select_index_over(index.detach(), os, d);
  Tensor out = gather_values(as_1d(x), d, idx);
  if (x.dim() == 0) out = out.reshape({});
  return autograd::record("index_select", out, {x}, [d, idx](const Inputs& in, const Tensor&, const Tensor& g) {
    return Grads{index_add_to_zeros(as_1d(in[0]), d, idx, as_1d(g)).reshape(in[0].sizes())};
  });
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  check_index(index, x, "gather");
  int64_t d = x.dim() ? wrap_dim(dim, x.dim(), "gather") : 0;
  check_shapes(x, d, index, nullptr, "gather");
  check_range(index, x.dim() ? x.size(d) : 1, "gather");
  Tensor idx = index.detach();
  return autograd::record("gather", gather_values(x, d, idx), {x}, [d, idx](const Inputs& in, const Tensor&,
                                                                          const Tensor& g) {
    return Grads{index_add_to_zeros(in[0], d, idx, g)};
  });
}

namespace {
Tensor scatter_op(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src_in, bool accumulate,
                  const char* op) {
  check_index(index, x, op);
  HT_CHECK(src_in.device() == x.device(), "[", op, "] expected src on the input's device ", x.device().str(),
           ", got ", src_in.device().str());
  int64_t d = x.dim() ? wrap_dim(dim, x.dim(), op) : 0;
  check_shapes(x, d, index, &src_in, op);
  check_range(index, x.dim() ? x.size(d) : 1, op);
  Tensor idx = index.detach();
  Tensor src = src_in.to(x.dtype());
  return autograd::record(op, scatter_values(x, d, idx, src, accumulate), {x, src},
                          [d, idx, accumulate](const Inputs& in, const Tensor&, const Tensor& g) {
    // scatter: written positions take src's gradient, the rest keep x's; scatter_add: both get all of g's
    Tensor gx, gs;
    if (in[0].requires_grad())
      gx = accumulate ? g : scatter_values(g, d, idx, zeros({}, {.dtype = g.dtype(), .device = g.device()}).expand(idx.sizes()), false);
    if (in[1].requires_grad()) {
      gs = gather_values(g, d, idx);
      // src larger than the index: its elements the index does not reach get no gradient
      if (gs.sizes() != in[1].sizes()) {
        Tensor padded = zeros(in[1].sizes(), {.dtype = g.dtype(), .device = g.device()});
        Tensor part = padded;
        for (int64_t k = 0; k < gs.dim(); ++k) part = part.narrow(k, 0, gs.size(k));
        part.copy_(gs);
        gs = padded;
      }
    }
    return Grads{gx, gs};
  });
}
}  // namespace

Tensor scatter(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  return scatter_op(x, dim, index, src, false, "scatter");
}
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  return scatter_op(x, dim, index, src, true, "scatter_add");
}
Tensor scatter(const Tensor& x, int64_t dim, const Tensor& index, Scalar value) {
  Tensor v = scalar_tensor(value.to_double(), {.dtype = x.dtype(), .device = x.device()});
  return scatter(x, dim, index, v.reshape(Shape(size_t(index.dim()), 1)).expand(index.sizes()));
}

namespace {
// values and int64 indices of x sorted along d (no history)
std::tuple<Tensor, Tensor> sort_values(const Tensor& x, int64_t d, bool descending) {
  Tensor xs = as_1d(x.detach());
  int64_t last = xs.dim() - 1;
  Tensor values = xs.transpose(d, last).clone(MemoryFormat::Contiguous);
  int64_t cols = values.size(-1);
  int64_t rows = cols ? values.numel() / cols : 0;
  Tensor indices = empty(values.sizes(), {.dtype = kInt64, .device = x.device()});
  if (rows > 0) {
    Tensor scratch_values = empty_like(values), scratch_indices = empty_like(indices);
    kernels::sort_rows(detail::raw(values, "sort"), detail::raw(indices, "sort"), detail::raw(scratch_values, "sort"),
                       detail::raw(scratch_indices, "sort"), rows, cols, descending);
  }
  return {values.transpose(d, last).reshape(x.sizes()), indices.transpose(d, last).reshape(x.sizes())};
}
}  // namespace

std::tuple<Tensor, Tensor> sort(const Tensor& x, int64_t dim, bool descending) {
  int64_t d = x.dim() ? wrap_dim(dim, x.dim(), "sort") : 0;
  auto [values, indices] = sort_values(x, d, descending);
  Tensor picked = indices;
  values = autograd::record("sort", values, {x}, [d, picked](const Inputs& in, const Tensor&, const Tensor& g) {
    return Grads{index_add_to_zeros(in[0], d, picked, g)};
  });
  return {values, indices};
}

Tensor argsort(const Tensor& x, int64_t dim, bool descending) {
  int64_t d = x.dim() ? wrap_dim(dim, x.dim(), "argsort") : 0;
  return std::get<1>(sort_values(x, d, descending));
}

std::tuple<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t dim, bool largest, bool sorted) {
  (void)sorted;  // always sorted, which torch allows for sorted=false too
  int64_t d = x.dim() ? wrap_dim(dim, x.dim(), "topk") : 0;
  int64_t n = x.dim() ? x.size(d) : 1;
  HT_CHECK_INDEX(k >= 0 && k <= n, "[topk] k (", k, ") is out of range for dimension ", d, " of size ", n);
  auto [all_values, all_indices] = sort_values(x, d, largest);
  Tensor values = x.dim() ? all_values.narrow(d, 0, k).contiguous() : all_values;
  Tensor indices = x.dim() ? all_indices.narrow(d, 0, k).contiguous() : all_indices;
  values = autograd::record("topk", values, {x}, [d, indices](const Inputs& in, const Tensor&, const Tensor& g) {
    return Grads{index_add_to_zeros(in[0], d, indices, g)};
  });
  return {values, indices};
}

namespace {
Tensor cumsum_values(const Tensor& x, int64_t d, bool reverse) {
  Tensor xs = as_1d(x.detach());
  Tensor out = empty(xs.sizes(), {.dtype = x.dtype(), .device = x.device()});
  kernels::cumsum(detail::raw(xs, "cumsum"), d, detail::raw(out, "cumsum"), reverse);
  return out.reshape(x.sizes());
}
}  // namespace

Tensor cumsum(const Tensor& x_in, int64_t dim) {
  // integral inputs accumulate in int64, as torch.cumsum
  Tensor x = x_in.is_floating_point() ? x_in : x_in.to(kInt64);
  int64_t d = x.dim() ? wrap_dim(dim, x.dim(), "cumsum") : 0;
  return autograd::record("cumsum", cumsum_values(x, d, false), {x}, [d](const Inputs&, const Tensor&, const Tensor& g) {
    return Grads{cumsum_values(g, d, true)};  // each input feeds every later output: a reversed cumulative sum
  });
}

}  // namespace ht
