// ht::optim::Adam and AdamW: torch.optim's math, defaults, validation and state_dict, run as one fused
// multi-tensor kernel per step, with fp32 master weights and fp32 moments for float16/bfloat16 parameters.
#pragma once
#include <optional>
#include <utility>
#include <vector>

#include "halftorch/optim/optimizer.h"

namespace ht::optim {

struct AdamOptions {
  double lr = 1e-3;
  std::pair<double, double> betas = {0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 0;  // Adam: L2 added to the gradient; AdamW: decoupled decay of the weights
  bool amsgrad = false;
  bool maximize = false;
  // halftorch's addition: update 16-bit parameters through an fp32 master copy (off: update them in place,
  // which loses updates below the parameter's resolution). Not part of the saved param_groups.
  bool master_weights = true;
};

// AdamW's defaults differ from Adam's only in weight_decay (1e-2).
struct AdamWOptions {
  double lr = 1e-3;
  std::pair<double, double> betas = {0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 1e-2;
  bool amsgrad = false;
  bool maximize = false;
  bool master_weights = true;
};

class Adam : public Optimizer {
 public:
  explicit Adam(std::vector<Tensor> params, AdamOptions defaults = {});
  Adam(std::vector<ParamGroup<AdamOptions>> groups, AdamOptions defaults = {});

  using Optimizer::step;
  void step(const StepScaling& scaling) override;

  const AdamOptions& options(size_t group) const { return options_.at(group); }
  AdamOptions& options(size_t group) { return options_.at(group); }
  // The step count of a parameter (0 before its first step), as state["step"] holds it.
  double step_count(size_t index) const;

  double lr(size_t group) const override { return options_.at(group).lr; }
  void set_lr(size_t group, double lr) override { options_.at(group).lr = lr; }
  bool uses_betas() const override { return true; }
  double momentum(size_t group) const override { return options_.at(group).betas.first; }
  void set_momentum(size_t group, double m) override { options_.at(group).betas.first = m; }

 protected:
  Adam(bool decoupled, const char* name) : decoupled_(decoupled), name_(name) {}
  void add_adam_group(std::vector<Tensor> params, const AdamOptions& options);

  void write_group_options(size_t group, Dict& out) const override;
  void read_group_options(size_t group, const Dict& in) override;
  bool has_state(size_t index) const override { return state_[index].step.defined(); }
  void clear_state() override { state_.assign(params_.size(), State{}); }
  void write_param_state(size_t index, Dict& out) const override;
  void read_param_state(size_t index, const Dict& in) override;

 private:
  struct State {
    Tensor step;  // float32 0-dim on the CPU
    Tensor exp_avg, exp_avg_sq, max_exp_avg_sq;  // fp32, the parameter's shape and device
  };
  bool decoupled_ = false;
  const char* name_ = "Adam";
  std::vector<AdamOptions> options_;
  std::vector<State> state_;
};

class AdamW : public Adam {
 public:
  explicit AdamW(std::vector<Tensor> params, AdamWOptions defaults = {});
  AdamW(std::vector<ParamGroup<AdamWOptions>> groups, AdamWOptions defaults = {});
};

}  // namespace ht::optim
