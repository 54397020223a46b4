// Autograd through views written in place, as PyTorch does it: an in-place write to a view gives its base a
// CopySlices history (torch/csrc/autograd/functions/tensor.h), and a view whose base has taken a new history
// re-derives its own from the base as AsStridedBackward0 (torch/csrc/autograd/variable.cpp, VariableHooks::
// grad_fn). Both map gradients between the base and the view through the view's geometry.
#include "core/autograd.h"
#include "core/ops.h"

namespace ht::autograd {

namespace {
struct Geometry {
  Shape sizes, strides;
  int64_t offset = 0;
};
Geometry geometry_of(const TensorImpl& t) { return {t.sizes, t.strides, t.offset}; }

// For every element of the view, the row-major index of the base element at the same memory location (int64,
// the view's shape): base elements are numbered in a scratch buffer covering both, then read through the view.
Tensor positions_in_base(const Tensor& base, const Geometry& view) {
  auto extent_end = [](const Shape& sizes, const Shape& strides, int64_t offset) {
    int64_t last = offset;
    for (size_t d = 0; d < sizes.size(); ++d) last += (sizes[d] - 1) * strides[d];
    return last + 1;
  };
  int64_t lo = std::min(base.storage_offset(), view.offset);
  int64_t hi = std::max(extent_end(base.sizes(), base.strides(), base.storage_offset()),
                        extent_end(view.sizes, view.strides, view.offset));
  Tensor scratch = full({std::max<int64_t>(hi - lo, 1)}, -1.0, {.dtype = kInt64, .device = base.device()});
  Tensor numbers = arange(base.numel(), {.dtype = kInt64, .device = base.device()}).reshape(base.sizes());
  scratch.detach().as_strided(base.sizes(), base.strides(), base.storage_offset() - lo).copy_(numbers);
  return scratch.detach().as_strided(view.sizes, view.strides, view.offset - lo).contiguous();
}

// A node whose output is the view of `base` with geometry `view`: the gradient lands at the view's elements of
// the base, summed where the view repeats an element (an expanded view).
std::shared_ptr<Node> as_strided_node(const Tensor& base, const Geometry& view, const Tensor& output) {
  auto node = std::make_shared<Node>();
  node->name = "as_strided";
  node->inputs = {history_of(base)};
  node->output = output.detach();
  node->backward = [view](const Inputs& in, const Tensor&, const Tensor& g) {
    Tensor pos = positions_in_base(in[0], view).reshape({-1});
    Tensor zero = zeros({in[0].numel()}, {.dtype = g.dtype(), .device = g.device()});
    return Grads{scatter_add(zero, 0, pos, g.reshape({-1})).reshape(in[0].sizes())};
  };
  return node;
}

bool same_node(const std::weak_ptr<Node>& a, const std::shared_ptr<Node>& b) {
  return !a.owner_before(b) && !b.owner_before(a);
}
}  // namespace

void take_history(const Tensor& t, const Tensor& result) {
  if (!result.grad_fn()) return;
  TensorImpl* view = t.impl();
  if (!view->view_base) {
    view->grad_fn = result.grad_fn();
    view->requires_grad = true;
    return;
  }
  // CopySlices: the base's old history outside the view, the written result inside it
  Tensor base(view->view_base);
  Geometry geo = geometry_of(*view);
  auto node = std::make_shared<Node>();
  node->name = "copy_slices";
  node->inputs = {history_of(base), history_of(result)};
  node->output = base.detach();
  node->backward = [geo](const Inputs& in, const Tensor&, const Tensor& g) {
    Tensor pos = positions_in_base(in[0], geo).reshape({-1});
    Tensor flat = g.reshape({-1});
    Tensor g_base = in[0].requires_grad() ? scatter(flat, 0, pos, 0).reshape(in[0].sizes()) : Tensor();
    return Grads{g_base, index_select(flat, 0, pos).reshape(geo.sizes)};
  };
  base.impl()->grad_fn = node;
  base.impl()->requires_grad = true;
  detail::sync_view_history(*view);
}

}  // namespace ht::autograd

namespace ht::detail {
void sync_view_history(TensorImpl& view) {
  const std::shared_ptr<TensorImpl>& base = view.view_base;
  if (!base->grad_fn || autograd::same_node(view.view_base_fn, base->grad_fn)) return;
  view.view_base_fn = base->grad_fn;
  Tensor base_t(base);
  Tensor view_t(view.storage, view.dtype, view.sizes, view.strides, view.offset);
  view.grad_fn = autograd::as_strided_node(base_t, autograd::geometry_of(view), view_t);
  view.requires_grad = true;
}
}  // namespace ht::detail
