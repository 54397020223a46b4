// The backward engine: topological order from the root, gradient accumulation, graph release.
#include "core/autograd.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <unordered_map>
#include <unordered_set>

#include "core/autocast.h"
#include "core/ops.h"

namespace ht::autograd {

namespace {
thread_local bool g_grad_enabled = true;

// Adds g into the leaf's .grad, in the leaf's dtype; the first gradient is copied so that .grad never aliases
// a tensor the graph handed to several inputs (in-place unscaling must not touch a neighbour's gradient).
// The copy takes the leaf's strides when the leaf is dense, as PyTorch's AccumulateGrad does, so a
// channels_last parameter gets a channels_last .grad whatever layout backward produced (the optimizers walk
// parameter and gradient as one flat buffer); in-place accumulation keeps that layout.
// `from_engine`: g is a gradient a backward rule returned (held by the engine alone, unless something else
// counts a reference to it), not the caller's own tensor.
void accumulate_into_leaf(TensorImpl* leaf, const Tensor& g, bool from_engine) {
  Tensor t(std::shared_ptr<TensorImpl>(std::shared_ptr<TensorImpl>{}, leaf));
  HT_CHECK(g.sizes() == t.sizes(), "[backward] gradient of shape ", shape_str(g.sizes()),
           " does not match the leaf's shape ", shape_str(t.sizes()));
  if (!leaf->grad) {
    const bool dense = t.is_non_overlapping_and_dense();
    // A gradient no one else holds (the engine's reference alone, its own storage, no history), in the leaf's
    // dtype, device and layout, becomes the leaf's .grad as it is, as PyTorch's AccumulateGrad steals it: no
    // copy of every parameter's gradient per backward.
    const TensorImpl& gi = *g.impl_ptr();
    bool stealable = from_engine && g.impl_ptr().use_count() == 1 && gi.storage.use_count() == 1 &&
                     !gi.grad_fn && !gi.view_base && !gi.requires_grad && g.dtype() == t.dtype() &&
                     g.device() == t.device() && (dense ? g.strides() == t.strides() : g.is_contiguous());
    if (stealable) {
      leaf->grad = g.impl_ptr();
      return;
    }
    TensorOptions opt{.dtype = t.dtype(), .device = t.device()};
    Tensor ng = dense ? empty_strided(t.sizes(), t.strides(), opt) : empty(t.sizes(), opt);
    ng.copy_(g);
    leaf->grad = ng.impl_ptr();
  } else {
    Tensor cur(leaf->grad);
    cur.add_(g.to(cur.dtype()));
  }
}
}  // namespace

namespace {
// PyTorch's message, naming the op, the tensor and both versions.
void check_saved_versions(const Node& n) {
  size_t k = 0;
  auto check = [&](const Tensor& t, const std::string& which) {
    uint64_t saved = n.saved_versions[k++];
    if (!t.defined() || t.version() == saved) return;
    fail("[backward] one of the variables needed for gradient computation has been modified by an inplace ",
         "operation: the ", which, " of '", n.name, "', a ", dtype_name(t.dtype()), " tensor of shape ",
         shape_str(t.sizes()), ", is at version ", t.version(), "; expected version ", saved, " instead");
  };
  for (size_t i : n.saves.inputs) check(n.inputs[i], "input " + std::to_string(i));
  if (n.saves.output) check(n.output, "output");
}
}  // namespace

bool grad_enabled() { return g_grad_enabled; }
void set_grad_enabled(bool on) { g_grad_enabled = on; }

namespace {
std::atomic<int64_t> g_next_hook_id{1};
// Callbacks queued during the current backward pass (nullptr outside one).
thread_local std::vector<std::function<void()>>* g_callbacks = nullptr;
thread_local uint64_t g_pass_id = 0;

void fire_hooks(TensorImpl* leaf) {
  if (leaf->grad_ready_hooks.empty()) return;
  Tensor t(std::shared_ptr<TensorImpl>(std::shared_ptr<TensorImpl>{}, leaf));
  auto hooks = leaf->grad_ready_hooks;  // a hook may remove itself
  for (auto& [id, hook] : hooks) hook(t);
}

// The pass's queued callbacks run at its end, in order; a pass that throws drops them.
struct CallbackScope {
  std::vector<std::function<void()>> queued;
  std::vector<std::function<void()>>* prev = g_callbacks;
  CallbackScope() {
    g_callbacks = &queued;
    ++g_pass_id;
  }
  ~CallbackScope() { g_callbacks = prev; }
  void run() {
    for (size_t i = 0; i < queued.size(); ++i) queued[i]();  // a callback may queue another
  }
};
}  // namespace

int64_t register_grad_ready_hook(const Tensor& leaf, GradReadyHook hook) {
  HT_CHECK(leaf.defined() && leaf.is_leaf(), "[register_grad_ready_hook] expected a leaf tensor");
  HT_CHECK(leaf.requires_grad(), "[register_grad_ready_hook] the tensor does not require grad");
  int64_t id = g_next_hook_id++;
  leaf.impl()->grad_ready_hooks.emplace_back(id, std::move(hook));
  return id;
}

void remove_grad_ready_hook(const Tensor& leaf, int64_t id) {
  auto& hooks = leaf.impl()->grad_ready_hooks;
  std::erase_if(hooks, [id](const auto& h) { return h.first == id; });
}

uint64_t backward_pass_id() { return g_pass_id; }

void queue_callback(std::function<void()> fn) {
  HT_CHECK(g_callbacks != nullptr, "[queue_callback] can only be called during a backward pass");
  g_callbacks->push_back(std::move(fn));
}

Tensor record(const char* name, Tensor out, Inputs inputs, BackwardFn backward, Saves saves) {
  // only floating-point tensors can require gradients, as in PyTorch: x.to(kInt32) or a cumsum of it has none
  if (!g_grad_enabled || !is_floating(out.dtype())) return out;
  bool any = false;
  for (const auto& t : inputs) any = any || (t.defined() && t.requires_grad());
  if (!any) return out;
  auto node = std::make_shared<Node>();
  node->name = name;
  // The node keeps each input's history as it is now, so that a later in-place write to the input (which gives
  // it a new history) does not redirect this op's gradient (PyTorch's edges); and the values of only the inputs
  // (and output) its rule reads, as derivatives.yaml saves them: the others keep their shape, dtype and device,
  // and their memory goes when nothing else holds it. A leaf that requires grad is kept itself: its .grad is
  // where the gradient goes.
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor& t = inputs[i];
    if (!t.defined() || (t.is_leaf() && t.requires_grad())) continue;
    bool saved = std::find(saves.inputs.begin(), saves.inputs.end(), i) != saves.inputs.end();
    t = saved ? history_of(t) : without_values(history_of(t));
  }
  node->inputs = std::move(inputs);
  node->output = saves.output ? out.detach() : without_values(out.detach());
  node->backward = std::move(backward);
  for (size_t i : saves.inputs) {
    HT_CHECK(i < node->inputs.size(), "[autograd] '", name, "' saves input ", i, " of ", node->inputs.size());
    const Tensor& t = node->inputs[i];
    node->saved_versions.push_back(t.defined() ? t.version() : 0);
  }
  if (saves.output) node->saved_versions.push_back(out.version());
  node->saves = std::move(saves);
  out.impl()->grad_fn = node;
  out.impl()->requires_grad = true;
  return out;
}

void run_backward(const Tensor& root, const Tensor& grad, bool retain_graph) {
  HT_CHECK(root.requires_grad(), "[backward] tensor does not require grad and has no grad_fn");
  HT_CHECK(grad.sizes() == root.sizes(), "[backward] gradient shape ", shape_str(grad.sizes()),
           " does not match the tensor's shape ", shape_str(root.sizes()));
  NoGradGuard no_grad;
  // backward rules compute in the dtypes the forward recorded; autocast applies to forward ops only
  amp::AutocastGuard no_autocast(DeviceType::CUDA, kFloat16, false);
  CallbackScope callbacks;
  if (root.is_leaf()) {
    accumulate_into_leaf(root.impl(), grad, /*from_engine=*/false);
    fire_hooks(root.impl());
    callbacks.run();
    return;
  }
  // Count, for every node, how many consumers will send it a gradient; and, for every leaf with hooks, how
  // many edges reach it, so that its hooks fire after the last one.
  std::unordered_map<Node*, int> pending;
  struct LeafState {
    int pending = 0;
    bool got = false;
  };
  std::unordered_map<TensorImpl*, LeafState> leaves;
  std::vector<Node*> stack{root.grad_fn().get()};
  std::unordered_set<Node*> seen{stack.back()};
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    HT_CHECK(!n->released, "[backward] trying to backward through the graph a second time (through '", n->name,
             "'); its saved tensors were freed after the first backward");
    for (const auto& in : n->inputs) {
      if (!in.defined()) continue;
      if (!in.grad_fn()) {
        if (in.requires_grad() && !in.impl()->grad_ready_hooks.empty()) leaves[in.impl()].pending++;
        continue;
      }
      Node* p = in.grad_fn().get();
      pending[p]++;
      if (seen.insert(p).second) stack.push_back(p);
    }
  }
  auto leaf_done = [&](TensorImpl* leaf, bool got) {
    auto it = leaves.find(leaf);
    if (it == leaves.end()) return;
    it->second.got = it->second.got || got;
    if (--it->second.pending == 0 && it->second.got) fire_hooks(leaf);
  };
  std::unordered_map<Node*, Tensor> grads;
  grads[root.grad_fn().get()] = grad;
  std::vector<std::shared_ptr<Node>> ready{root.grad_fn()};
  while (!ready.empty()) {
    std::shared_ptr<Node> n = ready.back();
    ready.pop_back();
    Tensor gy = std::move(grads[n.get()]);
    grads.erase(n.get());
    check_saved_versions(*n);
    Grads gx = n->backward(n->inputs, n->output, gy);
    HT_CHECK(gx.size() == n->inputs.size(), "[backward] '", n->name, "' returned ", gx.size(),
             " gradients for ", n->inputs.size(), " inputs");
    for (size_t i = 0; i < gx.size(); ++i) {
      const Tensor& in = n->inputs[i];
      if (!in.defined() || !in.requires_grad() || !gx[i].defined()) {
        if (in.defined() && in.grad_fn() && --pending[in.grad_fn().get()] == 0) ready.push_back(in.grad_fn());
        if (in.defined() && !in.grad_fn()) leaf_done(in.impl(), false);
        continue;
      }
      HT_CHECK(gx[i].sizes() == in.sizes(), "[backward] '", n->name, "' produced a gradient of shape ",
               shape_str(gx[i].sizes()), " for input ", i, " of shape ", shape_str(in.sizes()));
      if (in.grad_fn()) {
        Node* p = in.grad_fn().get();
        auto it = grads.find(p);
        if (it == grads.end()) grads.emplace(p, gx[i]);
        else it->second = add(it->second, gx[i]);
        if (--pending[p] == 0) ready.push_back(in.grad_fn());
      } else {
        accumulate_into_leaf(in.impl(), gx[i], /*from_engine=*/true);
        leaf_done(in.impl(), true);
      }
    }
    if (!retain_graph) {
      n->inputs.clear();
      n->output = Tensor();
      n->backward = nullptr;
      n->released = true;
    }
  }
  callbacks.run();
}

}  // namespace ht::autograd

namespace ht {
std::string Tensor::grad_fn_name() const {
  return grad_fn() ? autograd::pytorch_node_name(grad_fn()->name) : std::string();
}
}  // namespace ht
