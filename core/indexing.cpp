// x.index({...}) and x.index_put_({...}, v) (core/indexing.h): basic indices become views, a bool mask or an
// integer tensor an index_select; a write scatters into the flat positions the same indices pick.
#include "core/indexing.h"

#include "core/autograd.h"
#include "core/ops.h"

namespace ht {

using indexing::EllipsisIndex;
using indexing::NoneIndex;
using indexing::Slice;
using indexing::TensorIndex;

namespace {
int64_t dims_taken(const TensorIndex& i) {
  const auto& v = i.value();
  if (std::holds_alternative<NoneIndex>(v) || std::holds_alternative<EllipsisIndex>(v)) return 0;
  if (const Tensor* t = std::get_if<Tensor>(&v)) return t->dtype() == kBool ? std::max<int64_t>(t->dim(), 1) : 1;
  return 1;
}

// An integer index tensor into a dim of size n, negative values counting from the end (advanced indexing takes
// them; index_select does not).
Tensor wrap_negative(const Tensor& t, int64_t n) {
  if (t.numel() == 0) return t;
  NoGradGuard no_grad;
  int64_t lo = min(t).item<int64_t>(), hi = max(t).item<int64_t>();
  HT_CHECK_INDEX(lo >= -n && hi < n, "[index] index ", lo < -n ? lo : hi, " is out of bounds for dimension with size ",
                 n);
  return lo < 0 ? where(lt(t, 0), add(t, n), t) : t;
}

// The flat positions that a bool mask over dims [d, d + mask.dim()) keeps, as an int64 index into those dims
// flattened together.
Tensor mask_positions(const Tensor& mask) {
  std::vector<int64_t> pos;
  std::vector<double> m = mask.to_vector<double>();
  for (size_t k = 0; k < m.size(); ++k)
    if (m[k] != 0) pos.push_back(int64_t(k));
  return from_vector(pos, {int64_t(pos.size())}, mask.device());
}

Tensor index_with(const Tensor& self, const std::vector<TensorIndex>& indices) {
  HT_CHECK(self.defined(), "[index] expected a defined tensor");
  int64_t named = 0, ellipses = 0, tensors = 0;
  for (const auto& i : indices) {
    named += dims_taken(i);
    ellipses += std::holds_alternative<EllipsisIndex>(i.value());
    tensors += std::holds_alternative<Tensor>(i.value());
  }
  HT_CHECK(ellipses <= 1, "[index] an index can only have a single ellipsis ('...')");
  HT_CHECK(tensors <= 1, "[index] halftorch takes at most one tensor index per call, got ", tensors);
  HT_CHECK(named <= self.dim(), "[index] too many indices for tensor of dimension ", self.dim(), " (got ", named, ")");
  Tensor x = self;
  int64_t d = 0;  // the dim of x the next index applies to
  for (const auto& i : indices) {
    const auto& v = i.value();
    if (const int64_t* k = std::get_if<int64_t>(&v)) {
      int64_t n = x.size(d);
      HT_CHECK(*k >= -n && *k < n, "[index] index ", *k, " is out of bounds for dimension ", d, " with size ", n);
      x = x.select(d, *k < 0 ? *k + n : *k);
    } else if (const Slice* s = std::get_if<Slice>(&v)) {
      int64_t n = x.size(d), step = s->step.value_or(1);
      HT_CHECK(step > 0, "[index] slice step must be positive, got ", step);
      auto clampi = [n](int64_t p) { return std::clamp<int64_t>(p < 0 ? p + n : p, 0, n); };
      int64_t start = clampi(s->start.value_or(0)), stop = clampi(s->stop.value_or(n));
      x = x.slice(d, start, std::max(start, stop), step);
      ++d;
    } else if (std::holds_alternative<NoneIndex>(v)) {
      x = x.unsqueeze(d);
      ++d;
    } else if (std::holds_alternative<EllipsisIndex>(v)) {
      d += self.dim() - named;
    } else {
      const Tensor& t = std::get<Tensor>(v);
      if (t.dtype() == kBool) {
        int64_t md = std::max<int64_t>(t.dim(), 1);
        Tensor mask = t.dim() ? t : t.reshape({1});
        for (int64_t k = 0; k < mask.dim(); ++k)
          HT_CHECK(mask.size(k) == x.size(d + k), "[index] the shape of the mask ", shape_str(mask.sizes()),
                   " at index ", k, " does not match the shape of the indexed tensor ", shape_str(x.sizes()),
                   " at index ", d + k);
        x = x.flatten(d, d + md - 1);
        x = index_select(x, d, mask_positions(mask));
      } else {
        HT_CHECK(t.dim() <= 1, "[index] halftorch takes 0-d or 1-d integer tensor indices, got ", shape_str(t.sizes()));
        x = t.dim() == 0 ? x.select(d, t.item<int64_t>()) : index_select(x, d, wrap_negative(t, x.size(d)));
        if (t.dim() == 0) continue;
      }
      ++d;
    }
  }
  return x;
}
}  // namespace

Tensor Tensor::index(std::initializer_list<TensorIndex> indices) const { return index_with(*this, std::vector<TensorIndex>(indices)); }
Tensor Tensor::index(const std::vector<TensorIndex>& indices) const { return index_with(*this, indices); }

namespace detail {
Tensor index_positions(const Tensor& self, const std::vector<TensorIndex>& indices) {
  return index_with(arange(self.numel(), {.dtype = kInt64, .device = self.device()}).reshape(self.sizes()), indices);
}
}  // namespace detail

}  // namespace ht
