// OneCycleLR: torch.optim.lr_scheduler.OneCycleLR's phases, annealing and momentum cycling.
#include <cmath>

#include "optim/lr_scheduler.h"

namespace ht::optim {

namespace {
constexpr double kPi = 3.14159265358979323846;

int64_t checked_total_steps(const OneCycleOptions& o) {
  if (o.total_steps == 0 && o.epochs == 0 && o.steps_per_epoch == 0)
    fail("[OneCycleLR] You must define either total_steps OR (epochs AND steps_per_epoch)");
  if (o.total_steps != 0) {
    HT_CHECK(o.total_steps > 0, "[OneCycleLR] Expected positive integer total_steps, but got ", o.total_steps);
    return o.total_steps;
  }
  HT_CHECK(o.epochs > 0, "[OneCycleLR] Expected positive integer epochs, but got ", o.epochs);
  HT_CHECK(o.steps_per_epoch > 0, "[OneCycleLR] Expected positive integer steps_per_epoch, but got ",
           o.steps_per_epoch);
  return o.epochs * o.steps_per_epoch;
}

// PyTorch fills initial_lr, max_lr and min_lr into the groups before the base constructor reads initial_lr.
Optimizer& prepare_groups(Optimizer& optimizer, const std::vector<double>& max_lrs, const OneCycleOptions& o,
                          int64_t last_epoch) {
  HT_CHECK(max_lrs.size() == optimizer.num_param_groups(), "[OneCycleLR] expected ", optimizer.num_param_groups(),
           " values for max_lr, got ", max_lrs.size());
  checked_total_steps(o);
  if (last_epoch == -1) {
    for (size_t g = 0; g < optimizer.num_param_groups(); ++g) {
      double initial = max_lrs[g] / o.div_factor;
      optimizer.set_group_extra(g, "initial_lr", initial);
      optimizer.set_group_extra(g, "max_lr", max_lrs[g]);
      optimizer.set_group_extra(g, "min_lr", initial / o.final_div_factor);
    }
  }
  return optimizer;
}

double key_value(const Optimizer& opt, size_t g, const std::string& key) {
  auto v = opt.group_extra(g, key);
  HT_CHECK(v.has_value(), "[OneCycleLR] param group ", g, " has no '", key, "'");
  return *v;
}
}  // namespace

OneCycleLR::OneCycleLR(Optimizer& optimizer, double max_lr, OneCycleOptions options, int64_t last_epoch)
    : OneCycleLR(optimizer, std::vector<double>(optimizer.num_param_groups(), max_lr), std::move(options),
                 last_epoch) {}

OneCycleLR::OneCycleLR(Optimizer& optimizer, std::vector<double> max_lrs, OneCycleOptions o, int64_t last_epoch)
    : LRScheduler(prepare_groups(optimizer, max_lrs, o, last_epoch), last_epoch),
      total_steps_(checked_total_steps(o)),
      linear_(o.anneal_strategy == "linear"),
      cycle_momentum_(o.cycle_momentum),
      use_beta1_(optimizer.uses_betas()) {
  const double total = double(total_steps_);
  if (o.three_phase) {
    phases_ = {{o.pct_start * total - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"},
               {2 * o.pct_start * total - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"},
               {total - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"}};
  } else {
    phases_ = {{o.pct_start * total - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"},
               {total - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"}};
  }
  HT_CHECK(o.pct_start >= 0 && o.pct_start <= 1, "[OneCycleLR] Expected float between 0 and 1 pct_start, but got ",
           o.pct_start);
  HT_CHECK(o.anneal_strategy == "cos" || o.anneal_strategy == "linear",
           "[OneCycleLR] anneal_strategy must by one of 'cos' or 'linear', instead got ", o.anneal_strategy);
  if (cycle_momentum_ && last_epoch == -1) {
    for (size_t g = 0; g < optimizer.num_param_groups(); ++g) {
      optimizer.set_momentum(g, o.max_momentum);
      optimizer.set_group_extra(g, "max_momentum", o.max_momentum);
      optimizer.set_group_extra(g, "base_momentum", o.base_momentum);
    }
  }
  initial_step();
}

double OneCycleLR::anneal(double start, double end, double pct) const {
  if (linear_) return (end - start) * pct + start;
  double cos_out = std::cos(kPi * pct) + 1;
  return end + (start - end) / 2.0 * cos_out;
}

std::vector<double> OneCycleLR::get_lr() {
  const int64_t step_num = last_epoch_;
  HT_CHECK(step_num <= total_steps_, "[OneCycleLR] Tried to step ", step_num + 1,
           " times. The specified number of total steps is ", total_steps_);
  std::vector<double> lrs;
  for (size_t g = 0; g < optimizer_.num_param_groups(); ++g) {
    double start_step = 0, lr = 0, momentum = 0;
    for (size_t i = 0; i < phases_.size(); ++i) {
      const Phase& ph = phases_[i];
      if (double(step_num) <= ph.end_step || i == phases_.size() - 1) {
        double pct = (double(step_num) - start_step) / (ph.end_step - start_step);
        lr = anneal(key_value(optimizer_, g, ph.start_lr), key_value(optimizer_, g, ph.end_lr), pct);
        if (cycle_momentum_)
          momentum = anneal(key_value(optimizer_, g, ph.start_momentum), key_value(optimizer_, g, ph.end_momentum), pct);
        break;
      }
      start_step = ph.end_step;
    }
    lrs.push_back(lr);
    if (cycle_momentum_) optimizer_.set_momentum(g, momentum);
  }
  return lrs;
}

void OneCycleLR::write_own_state(Dict& out) const {
  out.set("total_steps", total_steps_);
  ValueList phases;
  for (size_t i = 0; i < phases_.size(); ++i) {
    const Phase& ph = phases_[i];
    Value d = Value::dict();
    // the last phase ends at the integer total_steps - 1, the others at a float, as PyTorch builds them
    d.to_dict().set("end_step", i + 1 == phases_.size() ? Value(int64_t(ph.end_step)) : Value(ph.end_step));
    d.to_dict().set("start_lr", ph.start_lr);
    d.to_dict().set("end_lr", ph.end_lr);
    d.to_dict().set("start_momentum", ph.start_momentum);
    d.to_dict().set("end_momentum", ph.end_momentum);
    phases.push_back(d);
  }
  out.set("_schedule_phases", Value::list(std::move(phases)));
  out.set("_anneal_func_type", linear_ ? "linear" : "cos");
  out.set("cycle_momentum", cycle_momentum_);
  if (cycle_momentum_) out.set("use_beta1", use_beta1_);
}

void OneCycleLR::read_own_state(const Dict& in) {
  if (const Value* v = in.find("total_steps")) total_steps_ = v->to_int();
  if (const Value* v = in.find("_schedule_phases")) {
    phases_.clear();
    for (const Value& d : v->items())
      phases_.push_back({d["end_step"].to_double(), d["start_lr"].to_string(), d["end_lr"].to_string(),
                         d["start_momentum"].to_string(), d["end_momentum"].to_string()});
  }
  if (const Value* v = in.find("_anneal_func_type")) linear_ = v->to_string() == "linear";
  if (const Value* v = in.find("cycle_momentum")) cycle_momentum_ = v->to_bool();
  if (const Value* v = in.find("use_beta1")) use_beta1_ = v->to_bool();
}

}  // namespace ht::optim
