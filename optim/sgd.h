// ht::optim::SGD: torch.optim.SGD's math (momentum, dampening, nesterov, weight decay, maximize), defaults,
// validation and state_dict, as one fused multi-tensor kernel per step with fp32 masters for 16-bit params.
#pragma once
#include <vector>

#include "halftorch/optim/optimizer.h"

namespace ht::optim {

struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0;
  double dampening = 0;
  double weight_decay = 0;
  bool nesterov = false;
  bool maximize = false;
  bool master_weights = true;  // as in AdamOptions
};

class SGD : public Optimizer {
 public:
  explicit SGD(std::vector<Tensor> params, SGDOptions defaults = {});
  SGD(std::vector<ParamGroup<SGDOptions>> groups, SGDOptions defaults = {});

  using Optimizer::step;
  void step(const StepScaling& scaling) override;

  const SGDOptions& options(size_t group) const { return options_.at(group); }
  SGDOptions& options(size_t group) { return options_.at(group); }

  double lr(size_t group) const override { return options_.at(group).lr; }
  void set_lr(size_t group, double lr) override { options_.at(group).lr = lr; }
  bool uses_betas() const override { return false; }
  double momentum(size_t group) const override { return options_.at(group).momentum; }
  void set_momentum(size_t group, double m) override { options_.at(group).momentum = m; }

 protected:
  void write_group_options(size_t group, Dict& out) const override;
  void read_group_options(size_t group, const Dict& in) override;
  bool has_state(size_t index) const override { return stepped_[index]; }
  void clear_state() override {
    momentum_buffers_.assign(params_.size(), Tensor());
    stepped_.assign(params_.size(), false);
  }
  void write_param_state(size_t index, Dict& out) const override;
  void read_param_state(size_t index, const Dict& in) override;

 private:
  void add_sgd_group(std::vector<Tensor> params, const SGDOptions& options);
  std::vector<SGDOptions> options_;
  std::vector<Tensor> momentum_buffers_;  // fp32; undefined until the first step with momentum != 0
  std::vector<bool> stepped_;             // PyTorch keeps {"momentum_buffer": None} once a param has stepped
};

}  // namespace ht::optim
