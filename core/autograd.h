// Define-by-run autograd: each recorded op leaves a Node holding its inputs, a detached alias of its output
// and its backward rule. The rule receives the output instead of capturing it, so no node keeps itself alive.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "halftorch/core/tensor.h"

namespace ht::autograd {

using Grads = std::vector<Tensor>;  // one per input; an undefined Tensor means "no gradient"
using Inputs = std::vector<Tensor>;
using BackwardFn = std::function<Grads(const Inputs& inputs, const Tensor& output, const Tensor& grad_output)>;

// The recorded tensors whose values a backward rule reads (derivatives.yaml's saved `self`, `other`, `result`).
// Backward fails if one of them was written in place since the op ran (PyTorch's SavedVariable version check);
// the others are kept for their shape, dtype and device only, which in-place writes don't change.
struct Saves {
  std::vector<size_t> inputs;  // positions in the op's inputs
  bool output = false;
};

struct Node {
  std::string name;
  Inputs inputs;   // released after backward
  Tensor output;   // detached alias: shares storage, no grad_fn
  BackwardFn backward;
  Saves saves;
  std::vector<uint64_t> saved_versions;  // of saves.inputs, then of the output when saved, at record time
  bool released = false;
};

bool grad_enabled();
void set_grad_enabled(bool on);

// Records `out` as made by `name` from `inputs` when grad mode is on and any input requires grad; returns out.
Tensor record(const char* name, Tensor out, Inputs inputs, BackwardFn backward, Saves saves = {});

// --- in-place ops and views (core/autograd_inplace.cpp)
// Fails, naming `op`, when an in-place write to `t` cannot be recorded in grad mode: a leaf that requires grad,
// or a view of one (as PyTorch refuses both).
void check_in_place_allowed(const Tensor& t, const char* op);
// Fails when a write that gives `t` a history (its source requires grad) goes into part of a storage that `t`
// does not know as a view (a tensor made on raw storage): nothing could carry the history to the rest.
void check_not_partial_view(const Tensor& t, const char* op);
// A handle on t's current history (storage, geometry, grad_fn, requires_grad), untouched by later in-place
// writes to t: what a node keeps of its inputs, and the input an in-place op records, so that t's new node never
// lists t itself.
Tensor history_of(const Tensor& t);
// t's shape, strides, dtype, device and history without its values (a storage of no bytes on t's device): what
// a node keeps of a tensor its backward rule does not read. Reading its values fails, naming the tensor.
Tensor without_values(const Tensor& t);
// After an in-place op wrote `result`'s values into t: t takes result's history. When t is a view, its base
// takes a CopySlices history (the base's old history outside the view, result's inside) and t re-derives its
// own from the base, as PyTorch's in-place ops on views do.
void take_history(const Tensor& t, const Tensor& result);
// PyTorch's name of the node that recorded `name` (mul -> MulBackward0), as grad_fn.name() gives it.
std::string pytorch_node_name(const std::string& name);

// Backpropagates `grad` (same shape as root) through the graph, accumulating into leaves' .grad.
void run_backward(const Tensor& root, const Tensor& grad, bool retain_graph = false);

// Runs `hook(leaf)` in every backward pass that reaches `leaf`, once, after the pass has added all of its
// contributions to leaf.grad (PyTorch's post-accumulate-grad hook; DistributedDataParallel starts a bucket's
// all-reduce from it while the rest of backward runs). Returns an id for remove_grad_ready_hook.
using GradReadyHook = std::function<void(const Tensor& leaf)>;
int64_t register_grad_ready_hook(const Tensor& leaf, GradReadyHook hook);
void remove_grad_ready_hook(const Tensor& leaf, int64_t id);
// Called from a hook: runs `fn` once the current backward pass has finished (PyTorch's queue_callback).
void queue_callback(std::function<void()> fn);
// A number that changes with every backward pass this thread starts (hooks use it to tell passes apart, e.g.
// to notice that an earlier pass ended in an exception before its callbacks ran).
uint64_t backward_pass_id();

}  // namespace ht::autograd

namespace ht {
// Turns recording off in a scope, like torch.no_grad().
class NoGradGuard {
 public:
  NoGradGuard() : prev_(autograd::grad_enabled()) { autograd::set_grad_enabled(false); }
  ~NoGradGuard() { autograd::set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};
}  // namespace ht
