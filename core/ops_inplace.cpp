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

// `compute` maps the tensor's value to the op's result. `saves_self`: its backward reads the tensor's old value,
// which the write destroys, so it computes on a recorded clone instead. `overlap`: the inputs torch checks for
// memory shared with the written tensor (which may itself not be an expanded one: the result is written whole).
Tensor& in_place(Tensor& self, const char* op, bool saves_self, const detail::WriteOverlap& overlap,
                 const std::function<Tensor(const Tensor&)>& compute) {
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
    detail::write_values(self, result);
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

// The memory rules of libtorch's index_put_ (at::indexing::set_item): the values (and an index tensor) are
// checked against the view that the basic indices pick, not all of self. Basic indices alone copy the values into
// that view (copy_'s rule: the same memory is fine); with a tensor index it is index_put_ on that view, which
// shares no memory with its values or index.
detail::WriteOverlap index_put_overlap(const Tensor& self, const std::vector<indexing::TensorIndex>& indices,
                                       const Tensor& values) {
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
  if (!index.defined()) return {.no_partial_overlap = {values}, .written = view};
  return {.no_overlap = {values, index}, .written = view};
}
}  // namespace

Tensor& Tensor::add_(const Tensor& other, double alpha) {
  return in_place(*this, "add_", false, {.no_partial_overlap = {other}}, [&](const Tensor& s) { return add(s, operand(other, *this), alpha); });
}
Tensor& Tensor::sub_(const Tensor& other, double alpha) {
  return in_place(*this, "sub_", false, {.no_partial_overlap = {other}}, [&](const Tensor& s) { return sub(s, operand(other, *this), alpha); });
}
Tensor& Tensor::mul_(const Tensor& other) {
  // mul's node saves both operands (each one's gradient reads the other)
  return in_place(*this, "mul_", needs_grad(*this) || needs_grad(other), {.no_partial_overlap = {other}}, [&](const Tensor& s) { return mul(s, operand(other, *this)); });
}
Tensor& Tensor::div_(const Tensor& other) {
  return in_place(*this, "div_", false, {.no_partial_overlap = {other}}, [&](const Tensor& s) { return div(s, operand(other, *this)); });
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
  // a scatter into the flat positions that the same indices pick
  Tensor picked = detail::index_positions(*this, indices);
  Shape picked_shape = picked.sizes();
  Tensor positions = picked.reshape({-1});
  return in_place(*this, "index_put_", false, index_put_overlap(*this, indices, values), [&](const Tensor& s) {
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
  });
}
Tensor& Tensor::index_put_(const std::vector<indexing::TensorIndex>& indices, Scalar value) {
  return index_put_(indices, scalar_tensor(value.to_double(), {.dtype = dtype(), .device = device()}));
}
Tensor& Tensor::masked_fill_(const Tensor& mask, Scalar value) {
  return in_place(*this, "masked_fill_", false, {.no_partial_overlap = {mask}},
                  [&](const Tensor& s) { return ht::masked_fill(s, mask, value); });
}

}  // namespace ht
