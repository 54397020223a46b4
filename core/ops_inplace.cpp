// In-place arithmetic (add_, mul_, clamp_, +=, ...): the functional op on the tensor's old history, its result
// written back into the tensor, which then takes the op's history, as PyTorch's in-place ops do.
#include <functional>

#include "core/autograd.h"
#include "core/indexing.h"
#include "core/mem_overlap.h"
#include "core/ops.h"

namespace ht {

namespace {
// PyTorch's canCast (c10/core/ScalarType.h): no floating result into an integral tensor, nothing but bool into
// a bool one.
bool can_cast(DType from, DType to) {
  if (is_floating(from) && !is_floating(to)) return false;
  if (from != kBool && to == kBool) return false;
  return true;
}

// Writes result's values at the flat (row-major) positions `pos` of a self whose elements share memory (an
// expanded tensor), in pos's order: each memory location keeps the last value written to it, as torch's serial
// kernels leave it, and the locations no position reaches keep theirs.
void write_at_positions(const Tensor& self, const Tensor& result, const Tensor& pos) {
  Tensor distinct = self.detach();  // one element per memory location: the stride-0 dims cut to one
  for (int64_t d = 0; d < self.dim(); ++d)
    if (self.stride(d) == 0) distinct = distinct.narrow(d, 0, 1);
  TensorOptions index_opt{.dtype = kInt64, .device = self.device()};
  Tensor location = arange(distinct.numel(), index_opt).reshape(distinct.sizes()).expand(self.sizes()).reshape({-1});
  Tensor merged = scatter(distinct.reshape({-1}), 0, index_select(location, 0, pos),
                          index_select(result.reshape({-1}), 0, pos));
  detail::write_values(distinct, merged.reshape(distinct.sizes()));
}

// `compute` maps the tensor's value to the op's result. `saves_self`: its backward reads the tensor's old value,
// which the write destroys, so it computes on a recorded clone instead. `overlap`: the inputs torch checks for
// memory shared with the written tensor, and whether that may be an expanded one; if so, `written_positions`
// gives the flat positions the op writes (in its order), the only ones written there.
Tensor& in_place(Tensor& self, const char* op, bool saves_self, const detail::WriteOverlap& overlap,
                 const std::function<Tensor(const Tensor&)>& compute,
                 const std::function<Tensor()>& written_positions = nullptr) {
  autograd::check_in_place_allowed(self, op);
  detail::check_write_overlap(self, op, overlap);
  bool track = autograd::grad_enabled();
  Tensor src = self;
  // the clone's input is the old history too, never `self`, whose history is about to change
  if (track) src = saves_self ? autograd::history_of(self).clone() : autograd::history_of(self);
  Tensor result = compute(src);
  HT_CHECK(result.sizes() == self.sizes(), "[", op, "] output with shape ", shape_str(self.sizes()),
           " doesn't match the broadcast shape ", shape_str(result.sizes()));
  HT_CHECK(can_cast(result.dtype(), self.dtype()), "[", op, "] result type ", dtype_name(result.dtype()),
           " can't be cast to the desired output type ", dtype_name(self.dtype()));
  if (result.requires_grad()) autograd::check_not_partial_view(self, op);
  if (result.dtype() != self.dtype()) result = result.to(self.dtype());
  {
    NoGradGuard no_grad;
    if (detail::has_internal_overlap(self) != detail::MemOverlap::Yes) {
      detail::write_values(self, result);
    } else {
      HT_CHECK(written_positions, "[", op, "] internal error: an expanded tensor passed the overlap check");
      write_at_positions(self, result, written_positions());
    }
  }
  if (track) autograd::take_history(self, result);
  return self;
}

// The other operand of x.op_(x): its current history, so that the op's node does not list the tensor whose
// history it becomes (a cycle).
Tensor operand(const Tensor& other, const Tensor& self) {
  return other.defined() && other.same(self) ? autograd::history_of(self) : other;
}

bool needs_grad(const Tensor& t) { return t.defined() && t.requires_grad() && autograd::grad_enabled(); }

// The memory rules of libtorch's index_put_ (at::indexing::set_item), checked against the view that the basic
// indices pick. Basic indices alone copy the values into that view (copy_'s rules; a number fills it, which may
// be expanded); with a tensor index it is index_put_ on that view, which may be expanded (torch warns that this
// is deprecated) but shares no memory with the values or the index.
detail::WriteOverlap index_put_overlap(const Tensor& self, const std::vector<indexing::TensorIndex>& indices,
                                       const Tensor& values, bool fills) {
  std::vector<indexing::TensorIndex> basic;
  Tensor index;
  for (const auto& i : indices) {
    const Tensor* t = std::get_if<Tensor>(&i.value());
    if (!t) {
      basic.push_back(i);
      continue;
    }
    index = *t;  // its dims stay whole in the view
    for (int64_t k = 0; k < (t->dtype() == kBool ? std::max<int64_t>(t->dim(), 1) : 1); ++k)
      basic.push_back(indexing::Slice());
  }
  Tensor view = self.detach().index(basic);
  if (!index.defined()) return {.allow_internal_overlap = fills, .no_partial_overlap = {values}, .written = view};
  return {.allow_internal_overlap = true, .no_overlap = {values, index}, .written = view};
}

// index_put_ with values, or with a number (`fills`)
Tensor& index_put(Tensor& self, const std::vector<indexing::TensorIndex>& indices, const Tensor& values, bool fills) {
  // a scatter into the flat positions that the same indices pick
  Tensor picked = detail::index_positions(self, indices);
  Shape picked_shape = picked.sizes();
  Tensor positions = picked.reshape({-1});
  auto compute = [&](const Tensor& s) {
    Tensor vals = values.to(s.dtype());
    Tensor flat_vals = vals.expand(picked_shape).reshape({-1});
    Tensor written;
    {
      NoGradGuard no_grad;
      written = scatter(s.reshape({-1}), 0, positions, flat_vals).reshape(s.sizes());
    }
    // IndexPutBackward0: the written positions' gradient goes to the values, the rest to the old tensor
    return autograd::record("index_put", written, {s, vals}, [positions, picked_shape](const autograd::Inputs& in, const Tensor&,
                                                                                        const Tensor& g) {
      Tensor flat = g.reshape({-1});
      Tensor g_self = in[0].requires_grad() ? scatter(flat, 0, positions, 0).reshape(g.sizes()) : Tensor();
      Tensor g_vals = in[1].requires_grad()
                          ? sum_to(ht::index_select(flat, 0, positions).reshape(picked_shape), in[1].sizes())
                          : Tensor();
      return autograd::Grads{g_self, g_vals};
    });
  };
  return in_place(self, "index_put_", false, index_put_overlap(self, indices, values, fills), compute,
                  [&] { return positions; });
}
}  // namespace

Tensor& Tensor::add_(const Tensor& other, double alpha) {
  return in_place(*this, "add_", false, {.no_partial_overlap = {other}},
                  [&](const Tensor& s) { return add(s, operand(other, *this), alpha); });
}
Tensor& Tensor::sub_(const Tensor& other, double alpha) {
  return in_place(*this, "sub_", false, {.no_partial_overlap = {other}},
                  [&](const Tensor& s) { return sub(s, operand(other, *this), alpha); });
}
Tensor& Tensor::mul_(const Tensor& other) {
  // mul's node saves both operands (each one's gradient reads the other)
  return in_place(*this, "mul_", needs_grad(*this) || needs_grad(other), {.no_partial_overlap = {other}},
                  [&](const Tensor& s) { return mul(s, operand(other, *this)); });
}
Tensor& Tensor::div_(const Tensor& other) {
  return in_place(*this, "div_", false, {.no_partial_overlap = {other}},
                  [&](const Tensor& s) { return div(s, operand(other, *this)); });
}
Tensor& Tensor::add_(Scalar other) {
  return in_place(*this, "add_", false, {}, [&](const Tensor& s) { return add(s, other); });
}
Tensor& Tensor::sub_(Scalar other) {
  return in_place(*this, "sub_", false, {}, [&](const Tensor& s) { return sub(s, other); });
}
Tensor& Tensor::mul_(Scalar other) {
  return in_place(*this, "mul_", false, {}, [&](const Tensor& s) { return mul(s, other); });
}
Tensor& Tensor::div_(Scalar other) {
  return in_place(*this, "div_", false, {}, [&](const Tensor& s) { return div(s, other); });
}
Tensor& Tensor::clamp_(double min, double max) {
  // the gradient is masked by the old value's range
  return in_place(*this, "clamp_", needs_grad(*this), {}, [&](const Tensor& s) { return ht::clamp(s, min, max); });
}

Tensor& Tensor::scatter_(int64_t dim, const Tensor& index, const Tensor& src) {
  return in_place(*this, "scatter_", false, {.no_overlap = {index, src}},
                  [&](const Tensor& s) { return ht::scatter(s, dim, index, src); });
}
Tensor& Tensor::scatter_(int64_t dim, const Tensor& index, Scalar value) {
  return in_place(*this, "scatter_", false, {.no_overlap = {index}},
                  [&](const Tensor& s) { return ht::scatter(s, dim, index, value); });
}
Tensor& Tensor::index_put_(const std::vector<indexing::TensorIndex>& indices, const Tensor& values) {
  return index_put(*this, indices, values, false);
}
Tensor& Tensor::index_put_(const std::vector<indexing::TensorIndex>& indices, Scalar value) {
  return index_put(*this, indices, scalar_tensor(value.to_double(), {.dtype = dtype(), .device = device()}), true);
}
Tensor& Tensor::masked_fill_(const Tensor& mask, Scalar value) {
  // torch writes an expanded tensor too (with a deprecation warning): only where the mask is set
  return in_place(*this, "masked_fill_", false, {.allow_internal_overlap = true, .no_partial_overlap = {mask}},
                  [&](const Tensor& s) { return ht::masked_fill(s, mask, value); },
                  [&] { return detail::index_positions(*this, {mask.expand(sizes())}); });
}

}  // namespace ht
