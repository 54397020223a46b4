// Learning-rate schedulers with torch.optim.lr_scheduler's formulas (the recursive, "chainable" forms that
// step() uses), construction rules (initial_lr in the param groups) and state_dict attributes.
// Call scheduler.step() after optimizer.step(), once per epoch or iteration as the schedule is defined.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "halftorch/io/value.h"
#include "halftorch/optim/optimizer.h"

namespace ht::optim {

class LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  virtual void step();
  const std::vector<double>& get_last_lr() const { return last_lr_; }
  int64_t last_epoch() const { return last_epoch_; }
  const std::vector<double>& base_lrs() const { return base_lrs_; }

  // PyTorch's scheduler.__dict__ without the optimizer, in its order.
  virtual Value state_dict() const;
  virtual void load_state_dict(const Value& state_dict);

 protected:
  friend class SequentialLR;  // it rewinds and restarts the schedulers it chains, as PyTorch's does
  LRScheduler(Optimizer& optimizer, int64_t last_epoch);
  // PyTorch's _update_lr(epoch): jumps to `epoch` through the closed form where the schedule has one.
  void update_lr_at(int64_t epoch);
  // PyTorch's _get_closed_form_lr at last_epoch_; schedules without one (OneCycleLR) use get_lr().
  virtual std::vector<double> closed_form_lr() { return get_lr(); }
  // Runs the first step() (PyTorch's _initial_step); derived constructors call it last.
  void initial_step();
  virtual std::vector<double> get_lr() = 0;
  // The derived class's own attributes (set before the base's in PyTorch, so saved first).
  virtual void write_own_state(Dict& out) const = 0;
  virtual void read_own_state(const Dict& in) = 0;

  Optimizer& optimizer_;
  std::vector<double> base_lrs_;
  int64_t last_epoch_;
  int64_t step_count_ = 0;
  std::vector<double> last_lr_;
};

// lr *= gamma every step_size steps.
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1, int64_t last_epoch = -1);

 protected:
  std::vector<double> get_lr() override;
  std::vector<double> closed_form_lr() override;
  void write_own_state(Dict& out) const override;
  void read_own_state(const Dict& in) override;

 private:
  int64_t step_size_;
  double gamma_;
};

// Linear warmup: the factor goes from start_factor to end_factor over total_iters steps.
class LinearLR : public LRScheduler {
 public:
  LinearLR(Optimizer& optimizer, double start_factor = 1.0 / 3, double end_factor = 1.0, int64_t total_iters = 5,
           int64_t last_epoch = -1);

 protected:
  std::vector<double> get_lr() override;
  std::vector<double> closed_form_lr() override;
  void write_own_state(Dict& out) const override;
  void read_own_state(const Dict& in) override;

 private:
  double start_factor_, end_factor_;
  int64_t total_iters_;
};

// Cosine annealing from the base lr to eta_min over T_max steps (SGDR without restarts).
class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min = 0, int64_t last_epoch = -1);

 protected:
  std::vector<double> get_lr() override;
  std::vector<double> closed_form_lr() override;
  void write_own_state(Dict& out) const override;
  void read_own_state(const Dict& in) override;

 private:
  int64_t T_max_;
  double eta_min_;
};

struct OneCycleOptions {
  int64_t total_steps = 0;  // or epochs * steps_per_epoch
  int64_t epochs = 0, steps_per_epoch = 0;
  double pct_start = 0.3;
  std::string anneal_strategy = "cos";  // or "linear"
  bool cycle_momentum = true;
  double base_momentum = 0.85, max_momentum = 0.95;
  double div_factor = 25.0, final_div_factor = 1e4;
  bool three_phase = false;
};

// The 1cycle policy: warm up to max_lr, anneal to max_lr / (div_factor * final_div_factor); cycles beta1 (Adam)
// or momentum (SGD) the opposite way.
class OneCycleLR : public LRScheduler {
 public:
  OneCycleLR(Optimizer& optimizer, double max_lr, OneCycleOptions options, int64_t last_epoch = -1);
  OneCycleLR(Optimizer& optimizer, std::vector<double> max_lrs, OneCycleOptions options, int64_t last_epoch = -1);

 protected:
  std::vector<double> get_lr() override;
  void write_own_state(Dict& out) const override;
  void read_own_state(const Dict& in) override;

 private:
  struct Phase {
    double end_step;
    std::string start_lr, end_lr, start_momentum, end_momentum;  // param-group keys
  };
  double anneal(double start, double end, double pct) const;
  int64_t total_steps_ = 0;
  std::vector<Phase> phases_;
  bool linear_ = false;
  bool cycle_momentum_ = true;
  bool use_beta1_ = false;
};

// Runs schedulers one after another, switching at the milestones (torch.optim.lr_scheduler.SequentialLR), e.g.
// a LinearLR warmup then a CosineAnnealingLR. It owns the schedulers it chains.
class SequentialLR : public LRScheduler {
 public:
  SequentialLR(Optimizer& optimizer, std::vector<std::unique_ptr<LRScheduler>> schedulers,
               std::vector<int64_t> milestones, int64_t last_epoch = -1);
  void step() override;
  // {"_milestones", "last_epoch", "_last_lr", "_schedulers": [each one's state_dict]}, as PyTorch's.
  Value state_dict() const override;
  void load_state_dict(const Value& state_dict) override;

 protected:
  std::vector<double> get_lr() override { return last_lr_; }
  void write_own_state(Dict&) const override {}
  void read_own_state(const Dict&) override {}

 private:
  size_t active_index(int64_t epoch) const;
  std::vector<std::unique_ptr<LRScheduler>> schedulers_;
  std::vector<int64_t> milestones_;
};

}  // namespace ht::optim
