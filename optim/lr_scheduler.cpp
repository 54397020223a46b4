// LR schedulers: PyTorch's _LRScheduler bookkeeping and the four schedules' get_lr() formulas.
#include "optim/lr_scheduler.h"

#include <algorithm>
#include <cmath>

namespace ht::optim {

namespace {
constexpr double kPi = 3.14159265358979323846;

Value double_list(const std::vector<double>& xs) {
  ValueList items;
  for (double x : xs) items.emplace_back(x);
  return Value::list(std::move(items));
}
std::vector<double> to_doubles(const Value& v) {
  std::vector<double> out;
  for (const Value& x : v.items()) out.push_back(x.to_double());
  return out;
}
}  // namespace

LRScheduler::LRScheduler(Optimizer& optimizer, int64_t last_epoch) : optimizer_(optimizer), last_epoch_(last_epoch) {
  for (size_t g = 0; g < optimizer.num_param_groups(); ++g) {
    if (last_epoch == -1) {
      if (!optimizer.group_extra(g, "initial_lr")) optimizer.set_group_extra(g, "initial_lr", optimizer.lr(g));
    } else {
      HT_CHECK(optimizer.group_extra(g, "initial_lr").has_value(), "[lr_scheduler] param 'initial_lr' is not ",
               "specified in param_groups[", g, "] when resuming an optimizer");
    }
    base_lrs_.push_back(*optimizer.group_extra(g, "initial_lr"));
  }
}

void LRScheduler::initial_step() {
  step_count_ = 0;
  step();
}

void LRScheduler::step() {
  ++step_count_;
  ++last_epoch_;
  std::vector<double> lrs = get_lr();
  last_lr_.clear();
  for (size_t g = 0; g < lrs.size(); ++g) {
    optimizer_.set_lr(g, lrs[g]);
    last_lr_.push_back(optimizer_.lr(g));
  }
}

void LRScheduler::update_lr_at(int64_t epoch) {
  last_epoch_ = epoch;
  std::vector<double> lrs = closed_form_lr();
  last_lr_.clear();
  for (size_t g = 0; g < lrs.size(); ++g) {
    optimizer_.set_lr(g, lrs[g]);
    last_lr_.push_back(optimizer_.lr(g));
  }
}

Value LRScheduler::state_dict() const {
  Value out = Value::dict();
  Dict& d = out.to_dict();
  write_own_state(d);
  d.set("base_lrs", double_list(base_lrs_));
  d.set("last_epoch", last_epoch_);
  d.set("verbose", false);
  d.set("_step_count", step_count_);
  d.set("_get_lr_called_within_step", false);
  d.set("_last_lr", double_list(last_lr_));
  return out;
}

void LRScheduler::load_state_dict(const Value& sd) {
  const Dict& d = sd.to_dict();
  read_own_state(d);
  if (const Value* v = d.find("base_lrs")) base_lrs_ = to_doubles(*v);
  if (const Value* v = d.find("last_epoch")) last_epoch_ = v->to_int();
  if (const Value* v = d.find("_step_count")) step_count_ = v->to_int();
  if (const Value* v = d.find("_last_lr")) last_lr_ = to_doubles(*v);
}

// ---- StepLR
StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma, int64_t last_epoch)
    : LRScheduler(optimizer, last_epoch), step_size_(step_size), gamma_(gamma) {
  HT_CHECK(step_size > 0, "[StepLR] step_size should be positive, got ", step_size);
  initial_step();
}

std::vector<double> StepLR::get_lr() {
  std::vector<double> out;
  for (size_t g = 0; g < optimizer_.num_param_groups(); ++g) {
    double lr = optimizer_.lr(g);
    out.push_back(last_epoch_ == 0 || last_epoch_ % step_size_ != 0 ? lr : lr * gamma_);
  }
  return out;
}

std::vector<double> StepLR::closed_form_lr() {
  std::vector<double> out;
  for (double base : base_lrs_) out.push_back(base * std::pow(gamma_, double(last_epoch_ / step_size_)));
  return out;
}

void StepLR::write_own_state(Dict& out) const {
  out.set("step_size", step_size_);
  out.set("gamma", gamma_);
}

void StepLR::read_own_state(const Dict& in) {
  if (const Value* v = in.find("step_size")) step_size_ = v->to_int();
  if (const Value* v = in.find("gamma")) gamma_ = v->to_double();
}

// ---- LinearLR
LinearLR::LinearLR(Optimizer& optimizer, double start_factor, double end_factor, int64_t total_iters,
                   int64_t last_epoch)
    : LRScheduler(optimizer, last_epoch), start_factor_(start_factor), end_factor_(end_factor),
      total_iters_(total_iters) {
  HT_CHECK(start_factor <= 1.0 && start_factor >= 0,
           "[LinearLR] Starting multiplicative factor expected to be between 0 and 1.");
  HT_CHECK(end_factor <= 1.0 && end_factor >= 0, "[LinearLR] Ending multiplicative factor expected to be between 0 and 1.");
  initial_step();
}

std::vector<double> LinearLR::get_lr() {
  std::vector<double> out;
  for (size_t g = 0; g < optimizer_.num_param_groups(); ++g) {
    double lr = optimizer_.lr(g);
    if (last_epoch_ == 0) {
      out.push_back(lr * start_factor_);
    } else if (last_epoch_ > total_iters_) {
      out.push_back(lr);
    } else {
      out.push_back(lr * (1. + (end_factor_ - start_factor_) /
                                   (double(total_iters_) * start_factor_ +
                                    double(last_epoch_ - 1) * (end_factor_ - start_factor_))));
    }
  }
  return out;
}

std::vector<double> LinearLR::closed_form_lr() {
  std::vector<double> out;
  double progress = double(std::min(total_iters_, last_epoch_)) / double(total_iters_);
  for (double base : base_lrs_) out.push_back(base * (start_factor_ + (end_factor_ - start_factor_) * progress));
  return out;
}

void LinearLR::write_own_state(Dict& out) const {
  out.set("start_factor", start_factor_);
  out.set("end_factor", end_factor_);
  out.set("total_iters", total_iters_);
}

void LinearLR::read_own_state(const Dict& in) {
  if (const Value* v = in.find("start_factor")) start_factor_ = v->to_double();
  if (const Value* v = in.find("end_factor")) end_factor_ = v->to_double();
  if (const Value* v = in.find("total_iters")) total_iters_ = v->to_int();
}

// ---- CosineAnnealingLR
CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min, int64_t last_epoch)
    : LRScheduler(optimizer, last_epoch), T_max_(T_max), eta_min_(eta_min) {
  HT_CHECK(T_max > 0, "[CosineAnnealingLR] T_max should be positive, got ", T_max);
  initial_step();
}

std::vector<double> CosineAnnealingLR::get_lr() {
  std::vector<double> out;
  const double T = double(T_max_);
  for (size_t g = 0; g < optimizer_.num_param_groups(); ++g) {
    double lr = optimizer_.lr(g), base = base_lrs_[g];
    if (last_epoch_ == 0) {
      out.push_back(lr);
    } else if (step_count_ == 1 && last_epoch_ > 0) {
      out.push_back(eta_min_ + (base - eta_min_) * (1 + std::cos(double(last_epoch_) * kPi / T)) / 2);
    } else if ((last_epoch_ - 1 - T_max_) % (2 * T_max_) == 0) {
      out.push_back(lr + (base - eta_min_) * (1 - std::cos(kPi / T)) / 2);
    } else {
      out.push_back((1 + std::cos(kPi * double(last_epoch_) / T)) / (1 + std::cos(kPi * double(last_epoch_ - 1) / T)) *
                        (lr - eta_min_) +
                    eta_min_);
    }
  }
  return out;
}

std::vector<double> CosineAnnealingLR::closed_form_lr() {
  std::vector<double> out;
  for (double base : base_lrs_)
    out.push_back(eta_min_ + (base - eta_min_) * (1 + std::cos(kPi * double(last_epoch_) / double(T_max_))) / 2);
  return out;
}

void CosineAnnealingLR::write_own_state(Dict& out) const {
  out.set("T_max", T_max_);
  out.set("eta_min", eta_min_);
}

void CosineAnnealingLR::read_own_state(const Dict& in) {
  if (const Value* v = in.find("T_max")) T_max_ = v->to_int();
  if (const Value* v = in.find("eta_min")) eta_min_ = v->to_double();
}

}  // namespace ht::optim
