// ht::optim::Optimizer: what every optimizer shares. Parameter groups, lazy per-parameter state, fp32 master
// weights for float16/bfloat16 parameters, zero_grad, the hooks LR schedulers use, and state_dict() /
// load_state_dict() in torch.optim's layout ({"state": {index: {...}}, "param_groups": [{..., "params": [...]}]}).
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "halftorch/core/tensor.h"
#include "halftorch/io/value.h"

namespace ht::optim {

// What GradScaler passes to a step: gradients are multiplied by inv_scale inside the fused kernel, and
// found_inf (a one-float tensor, or null) skips the step when set: nothing changes, Adam's step count and a new
// SGD momentum buffer included. The optimizer reads the flag on the host for that bookkeeping (the kernels check
// it on the device as well), so GradScaler::step, which has read it already, passes null for a clean step.
struct StepScaling {
  float inv_scale = 1.f;
  const Tensor* found_inf = nullptr;
};

// A parameter group; without options it takes the optimizer's defaults.
template <class Options>
struct ParamGroup {
  std::vector<Tensor> params;
  std::optional<Options> options;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // Updates every parameter that has a gradient; parameters whose grad is undefined get no state and no step.
  void step() { step(StepScaling{}); }
  virtual void step(const StepScaling& scaling) = 0;
  // Resets gradients: drops them (set_to_none, PyTorch 2's default) or fills them with zeros.
  void zero_grad(bool set_to_none = true);

  // torch.optim's layout; 16-bit parameters add "master_param" (fp32) to their state so a resume is exact
  // (torch.optim ignores the extra key).
  Value state_dict() const;
  // Accepts what state_dict() or torch.optim's state_dict() wrote (loaded with ht::load). Without a saved
  // "master_param", the master copy restarts from the current (rounded) parameter.
  void load_state_dict(const Value& state_dict);

  // Every parameter, in state_dict index order (group after group).
  const std::vector<Tensor>& params() const { return params_; }
  size_t num_param_groups() const { return groups_.size(); }
  std::vector<Tensor> group_params(size_t group) const;

  // fp32 master weights, one per parameter in params() order: the master copy of a 16-bit parameter (shared,
  // not a copy: writing it changes what the next step starts from), the parameter itself when it is fp32, and
  // a fresh fp32 copy for a 16-bit parameter that has not been stepped yet. Save these for an fp32 checkpoint.
  std::vector<Tensor> master_params() const;
  // Sets the fp32 weights (e.g. from an fp32 checkpoint): masters take the values, parameters their rounding.
  void load_master_params(const std::vector<Tensor>& fp32_params);
  // After writing 16-bit parameters outside the optimizer, makes their masters follow the new values.
  void reset_master_params();

  // --- hooks for LR schedulers
  virtual double lr(size_t group) const = 0;
  virtual void set_lr(size_t group, double lr) = 0;
  // The momentum OneCycleLR cycles: beta1 for Adam/AdamW ("betas"), momentum for SGD.
  virtual bool uses_betas() const = 0;
  virtual double momentum(size_t group) const = 0;
  virtual void set_momentum(size_t group, double momentum) = 0;
  // Extra numbers schedulers keep in a param group (initial_lr, max_lr, ...); saved in state_dict's groups.
  std::optional<double> group_extra(size_t group, const std::string& key) const;
  void set_group_extra(size_t group, const std::string& key, double value);

 protected:
  struct Group {
    size_t begin = 0, end = 0;  // [begin, end) in params_
    std::vector<std::pair<std::string, double>> extras;
  };
  Optimizer() = default;
  void add_group(std::vector<Tensor> params, const char* op);

  // Derived optimizers describe their options and per-parameter state in torch.optim's keys.
  virtual void write_group_options(size_t group, Dict& out) const = 0;
  virtual void read_group_options(size_t group, const Dict& in) = 0;
  virtual bool has_state(size_t index) const = 0;
  virtual void clear_state() = 0;  // before load_state_dict reads the saved entries
  virtual void write_param_state(size_t index, Dict& out) const = 0;
  virtual void read_param_state(size_t index, const Dict& in) = 0;

  // The fp32 copy a 16-bit parameter is updated through, made on first use; undefined for fp32 parameters or
  // when master weights are off.
  Tensor& master_for(size_t index, bool enabled);
  // Checks the gradient of params_[index] is usable by the fused kernels; returns it.
  Tensor checked_grad(size_t index, const char* op) const;
  // A saved state tensor as fp32 on the parameter's device, with the parameter's shape and strides.
  Tensor state_tensor(const Value& v, size_t index, const char* key) const;
  // The entry `key` of state[index]; when it is missing, an error naming the keys the entry has and the ones
  // `op`'s state holds (`expected`), as a state saved by another optimizer gives.
  static const Value& state_entry(const Dict& in, size_t index, const char* key, const char* op, const char* expected);

  std::vector<Tensor> params_;
  std::vector<Tensor> masters_;
  std::vector<Group> groups_;
  // The keys of a saved group that are options (read by read_group_options), not scheduler extras.
  std::vector<std::string> option_keys_;
};

// Parameters that must be float32, float16 or bfloat16 leaves on one kind of device; "[op] ..." otherwise.
void check_params(const std::vector<Tensor>& params, const char* op);

}  // namespace ht::optim
