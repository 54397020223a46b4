// Ops that pick elements by index along one dim: index_select, gather, scatter, sort, argsort, topk, cumsum.
// They run on the host over a float64 image of the operands (exact for every dtype but int64 values beyond
// 2^53) and put the result back on the input's device, so CPU and CUDA tensors give identical results.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/autograd.h"
#include "core/ops.h"

namespace ht {

using autograd::Grads;
using autograd::Inputs;

namespace {
// A tensor seen as [outer, n, inner] around `dim`: element (o, j, i) at (o * n + j) * inner + i.
struct Rows {
  int64_t outer = 1, n = 1, inner = 1;
  int64_t at(int64_t o, int64_t j, int64_t i) const { return (o * n + j) * inner + i; }
};
Rows rows_of(const Shape& s, int64_t dim) {
  Rows r;
  if (s.empty()) return r;
  for (int64_t d = 0; d < dim; ++d) r.outer *= s[size_t(d)];
  r.n = s[size_t(dim)];
  for (size_t d = size_t(dim) + 1; d < s.size(); ++d) r.inner *= s[d];
  return r;
}

std::vector<double> host(const Tensor& t) { return t.to_vector<double>(); }
Tensor back_to(const std::vector<double>& v, const Shape& s, const Tensor& like, DType dtype) {
  return from_vector(v, s).to(like.device(), dtype);
}

void check_index(const Tensor& index, const char* op) {
  HT_CHECK(index.defined(), "[", op, "] expected a defined index tensor");
  HT_CHECK(index.dtype() == kInt64 || index.dtype() == kInt32, "[", op, "] expected an int64 index, got ",
           dtype_name(index.dtype()));
}
int64_t checked(double v, int64_t n, const char* op) {
  auto i = int64_t(v);
  HT_CHECK(i >= -n && i < n, "[", op, "] index ", i, " is out of bounds for dimension with size ", n);
  return i < 0 ? i + n : i;
}

// out(o, k, i) = x(o, idx[k], i); `add` sums into out instead (index_add, the backward).
Tensor index_select_impl(const Tensor& x, int64_t d, const Tensor& index) {
  std::vector<double> xv = host(x), iv = host(index);
  Rows r = rows_of(x.sizes(), d);
  Shape os = x.sizes();
  if (!os.empty()) os[size_t(d)] = int64_t(iv.size());
  std::vector<double> out(size_t(numel_of(os)));
  int64_t k_n = int64_t(iv.size());
  for (int64_t k = 0; k < k_n; ++k) {
    int64_t j = checked(iv[size_t(k)], r.n, "index_select");
    for (int64_t o = 0; o < r.outer; ++o)
      for (int64_t i = 0; i < r.inner; ++i) out[size_t((o * k_n + k) * r.inner + i)] = xv[size_t(r.at(o, j, i))];
  }
  return back_to(out, os, x, x.dtype());
}

// The coordinates of element p of a row-major shape, with dim d replaced: the offset in `target`'s shape.
int64_t offset_with(const Shape& s, int64_t p, int64_t d, int64_t j, const Shape& target) {
  int64_t off = 0, stride = 1;
  for (int64_t k = int64_t(s.size()) - 1; k >= 0; --k) {
    int64_t c = p % s[size_t(k)];
    p /= s[size_t(k)];
    off += (k == d ? j : c) * stride;
    stride *= target[size_t(k)];
  }
  return off;
}

void check_gather_shapes(const Tensor& x, int64_t d, const Tensor& index, const char* op) {
  HT_CHECK(index.dim() == x.dim(), "[", op, "] index tensor must have the same number of dimensions as input (",
           index.dim(), " vs ", x.dim(), ")");
  for (int64_t k = 0; k < x.dim(); ++k)
    HT_CHECK(k == d || index.size(k) <= x.size(k), "[", op, "] size of index ", shape_str(index.sizes()),
             " exceeds the input's ", shape_str(x.sizes()), " in dimension ", k);
}

// scatter(_add) of src's values at index into a copy of base, on the host
Tensor scatter_impl(const Tensor& base, int64_t d, const Tensor& index, const Tensor& src, bool accumulate,
                    const char* op) {
  std::vector<double> out = host(base), iv = host(index), sv = host(src.expand(index.sizes()));
  const Shape& is = index.sizes();
  int64_t n = base.dim() ? base.size(d) : 1;
  for (int64_t p = 0; p < int64_t(iv.size()); ++p) {
    size_t o = size_t(offset_with(is, p, d, checked(iv[size_t(p)], n, op), base.sizes()));
    out[o] = accumulate ? out[o] + sv[size_t(p)] : sv[size_t(p)];
  }
  return back_to(out, base.sizes(), base, base.dtype());
}

Tensor gather_impl(const Tensor& x, int64_t d, const Tensor& index) {
  std::vector<double> xv = host(x), iv = host(index);
  std::vector<double> out(iv.size());
  int64_t n = x.dim() ? x.size(d) : 1;
  for (int64_t p = 0; p < int64_t(iv.size()); ++p)
    out[size_t(p)] = xv[size_t(offset_with(index.sizes(), p, d, checked(iv[size_t(p)], n, "gather"), x.sizes()))];
  return back_to(out, index.sizes(), x, x.dtype());
}
}  // namespace

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  check_index(index, "index_select");
  HT_CHECK(index.dim() <= 1, "[index_select] index must be 0-d or 1-d, got ", shape_str(index.sizes()));
  int64_t d = x.dim() ? wrap_dim(dim, x.dim(), "index_select") : 0;
  Tensor idx = index.reshape({-1});
  return autograd::record("index_select", index_select_impl(x, d, idx), {x}, [d, idx](const Inputs& in, const Tensor&,
                                                                                     const Tensor& g) {
    // index_add of g into zeros: scatter_add with the index spread over g's shape
    Shape view(size_t(std::max<int64_t>(g.dim(), 1)), 1);
    if (g.dim()) view[size_t(d)] = idx.numel();
    Tensor spread = idx.reshape(view).expand(g.sizes()).contiguous();
    return Grads{scatter_impl(zeros_like(in[0]), d, spread, g, true, "index_select_backward")};
  });
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  check_index(index, "gather");
  int64_t d = x.dim() ? wrap_dim(dim, x.dim(), "gather") : 0;
  check_gather_shapes(x, d, index, "gather");
  Tensor idx = index.detach();
  return autograd::record("gather", gather_impl(x, d, idx), {x}, [d, idx](const Inputs& in, const Tensor&,
                                                                        const Tensor& g) {
    return Grads{scatter_impl(zeros_like(in[0]), d, idx, g, true, "gather_backward")};
  });
}

Tensor scatter(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  check_index(index, "scatter");
  int64_t d = x.dim() ? wrap_dim(dim, x.dim(), "scatter") : 0;
  check_gather_shapes(x, d, index, "scatter");
  Tensor idx = index.detach();
  Tensor s = src.to(x.dtype());
  return autograd::record("scatter", scatter_impl(x, d, idx, s, false, "scatter"), {x, s},
                          [d, idx](const Inputs& in, const Tensor&, const Tensor& g) {
    // written positions take src's gradient; the rest keep x's
    Tensor gx = scatter_impl(g, d, idx, zeros(idx.sizes(), {.dtype = g.dtype(), .device = g.device()}), false,
                             "scatter_backward");
    Tensor gs = gather_impl(g, d, idx);
    return Grads{gx, in[1].sizes() == idx.sizes() ? gs : Tensor()};
  });
}
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  check_index(index, "scatter_add");
  int64_t d = x.dim() ? wrap_dim(dim, x.dim(), "scatter_add") : 0;
  check_gather_shapes(x, d, index, "scatter_add");
  Tensor idx = index.detach();
  Tensor s = src.to(x.dtype());
  return autograd::record("scatter_add", scatter_impl(x, d, idx, s, true, "scatter_add"), {x, s},
                          [d, idx](const Inputs& in, const Tensor&, const Tensor& g) {
    return Grads{g, in[1].sizes() == idx.sizes() ? gather_impl(g, d, idx) : Tensor()};
  });
}
Tensor scatter(const Tensor& x, int64_t dim, const Tensor& index, Scalar value) {
  return scatter(x, dim, index, full(index.sizes(), value.to_double(), {.dtype = x.dtype(), .device = x.device()}));
}

std::tuple<Tensor, Tensor> sort(const Tensor& x, int64_t dim, bool descending) {
  int64_t d = x.dim() ? wrap_dim(dim, x.dim(), "sort") : 0;
  std::vector<double> xv = host(x);
  Rows r = rows_of(x.sizes(), d);
  std::vector<double> vals(xv.size()), idx(xv.size());
  std::vector<int64_t> order(size_t(r.n));
  for (int64_t o = 0; o < r.outer; ++o)
    for (int64_t i = 0; i < r.inner; ++i) {
      std::iota(order.begin(), order.end(), 0);
      // NaN sorts as the largest value, as in torch.sort; stable, so equal values keep their order
      auto key = [&](int64_t j) { return xv[size_t(r.at(o, j, i))]; };
      auto less = [&](int64_t a, int64_t b) {
        double ka = key(a), kb = key(b);
        if (std::isnan(kb)) return !std::isnan(ka);
        return !std::isnan(ka) && ka < kb;
      };
      if (descending) std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return less(b, a); });
      else std::stable_sort(order.begin(), order.end(), less);
      for (int64_t j = 0; j < r.n; ++j) {
        vals[size_t(r.at(o, j, i))] = key(order[size_t(j)]);
        idx[size_t(r.at(o, j, i))] = double(order[size_t(j)]);
      }
    }
  Tensor indices = back_to(idx, x.sizes(), x, kInt64);
  Tensor values = autograd::record("sort", back_to(vals, x.sizes(), x, x.dtype()), {x},
                                   [d, indices](const Inputs& in, const Tensor&, const Tensor& g) {
    return Grads{scatter_impl(zeros_like(in[0]), d, indices, g, true, "sort_backward")};
  });
  return {values, indices};
}

Tensor argsort(const Tensor& x, int64_t dim, bool descending) { return std::get<1>(sort(x.detach(), dim, descending)); }

std::tuple<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t dim, bool largest, bool sorted) {
  (void)sorted;  // always sorted, which torch allows for sorted=false too
  int64_t d = x.dim() ? wrap_dim(dim, x.dim(), "topk") : 0;
  int64_t n = x.dim() ? x.size(d) : 1;
  HT_CHECK(k >= 0 && k <= n, "[topk] k (", k, ") is out of range for dimension ", d, " of size ", n);
  auto [values, indices] = sort(x, d, largest);
  return {values.narrow(d, 0, k), indices.narrow(d, 0, k)};
}

Tensor cumsum(const Tensor& x_in, int64_t dim) {
  // integral inputs accumulate in int64, as torch.cumsum
  Tensor x = x_in.is_floating_point() ? x_in : x_in.to(kInt64);
  int64_t d = x.dim() ? wrap_dim(dim, x.dim(), "cumsum") : 0;
  auto run = [d](const Tensor& t, bool reverse) {
    std::vector<double> v = host(t);
    Rows r = rows_of(t.sizes(), d);
    for (int64_t o = 0; o < r.outer; ++o)
      for (int64_t i = 0; i < r.inner; ++i) {
        double acc = 0;
        for (int64_t jj = 0; jj < r.n; ++jj) {
          int64_t j = reverse ? r.n - 1 - jj : jj;
          acc += v[size_t(r.at(o, j, i))];
          v[size_t(r.at(o, j, i))] = acc;
        }
      }
    return back_to(v, t.sizes(), t, t.dtype());
  };
  return autograd::record("cumsum", run(x, false), {x}, [run](const Inputs&, const Tensor&, const Tensor& g) {
    return Grads{run(g, true)};  // each input feeds every later output: a reversed cumulative sum
  });
}

}  // namespace ht
