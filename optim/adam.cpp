// Adam / AdamW: option checks, lazy state, the host-side scalars of a step, and torch.optim's state keys.
#include "optim/adam.h"

#include <cmath>

#include "core/autograd.h"
#include "kernels/optim_kernels.h"
#include "optim/step_util.h"

namespace ht::optim {

namespace {

void check_options(const AdamOptions& o, const char* name) {
  HT_CHECK(o.lr >= 0, "[", name, "] Invalid learning rate: ", o.lr);
  HT_CHECK(o.eps >= 0, "[", name, "] Invalid epsilon value: ", o.eps);
  HT_CHECK(o.betas.first >= 0 && o.betas.first < 1, "[", name, "] Invalid beta parameter at index 0: ", o.betas.first);
  HT_CHECK(o.betas.second >= 0 && o.betas.second < 1, "[", name, "] Invalid beta parameter at index 1: ",
           o.betas.second);
  HT_CHECK(o.weight_decay >= 0, "[", name, "] Invalid weight_decay value: ", o.weight_decay);
}

AdamOptions from_adamw(const AdamWOptions& w) {
  return {w.lr, w.betas, w.eps, w.weight_decay, w.amsgrad, w.maximize, w.master_weights};
}


}  // namespace

Adam::Adam(std::vector<Tensor> params, AdamOptions defaults) : Adam(false, "Adam") {
  add_adam_group(std::move(params), defaults);
}

Adam::Adam(std::vector<ParamGroup<AdamOptions>> groups, AdamOptions defaults) : Adam(false, "Adam") {
  check_options(defaults, name_);
  HT_CHECK(!groups.empty(), "[Adam] optimizer got an empty parameter list");
  for (auto& g : groups) add_adam_group(std::move(g.params), g.options.value_or(defaults));
}

AdamW::AdamW(std::vector<Tensor> params, AdamWOptions defaults) : Adam(true, "AdamW") {
  add_adam_group(std::move(params), from_adamw(defaults));
}

AdamW::AdamW(std::vector<ParamGroup<AdamWOptions>> groups, AdamWOptions defaults) : Adam(true, "AdamW") {
  check_options(from_adamw(defaults), "AdamW");
  HT_CHECK(!groups.empty(), "[AdamW] optimizer got an empty parameter list");
  for (auto& g : groups) add_adam_group(std::move(g.params), from_adamw(g.options.value_or(defaults)));
}

void Adam::add_adam_group(std::vector<Tensor> params, const AdamOptions& options) {
  option_keys_ = {"lr",      "betas",   "eps",        "weight_decay",   "amsgrad",
                  "maximize", "foreach", "capturable", "differentiable", "fused", "decoupled_weight_decay"};
  check_options(options, name_);
  add_group(std::move(params), name_);
  options_.push_back(options);
  state_.resize(params_.size());
}

double Adam::step_count(size_t index) const {
  const State& st = state_.at(index);
  return st.step.defined() ? st.step.item_double() : 0.0;
}

void Adam::step(const StepScaling& scaling) {
  NoGradGuard ng;
  // A step the found-inf flag skips changes nothing, the step count included. That lives on the host, so the
  // flag is read here (GradScaler, which has read it already, passes none); the kernels check it on the device too.
  if (scaling.found_inf && scaling.found_inf->defined() && scaling.found_inf->item<float>() != 0.f) return;
  DeviceBatches<kernels::AdamTensor> batches;
  for (size_t g = 0; g < groups_.size(); ++g) {
    const AdamOptions& o = options_[g];
    const auto [beta1, beta2] = o.betas;
    for (size_t i = groups_[g].begin; i < groups_[g].end; ++i) {
      Tensor grad = checked_grad(i, name_);
      if (!grad.defined()) continue;
      const Tensor& p = params_[i];
      State& st = state_[i];
      if (!st.step.defined()) {
        st.step = zeros({}, {.dtype = kFloat32});
        st.exp_avg = fp32_like(p).zero_();
        st.exp_avg_sq = fp32_like(p).zero_();
      }
      if (o.amsgrad && !st.max_exp_avg_sq.defined()) st.max_exp_avg_sq = fp32_like(p).zero_();
      Tensor& master = master_for(i, o.master_weights);
      float* step_ptr = st.step.data_ptr<float>();
      *step_ptr += 1.f;
      // the scalars in double, as Python computes them, then rounded as a tensor op rounds its Scalar
      const double step = *step_ptr;
      const double step_size = o.lr / (1 - std::pow(beta1, step));
      kernels::AdamTensor e;
      p.storage()->bump_version();  // an in-place write, as torch.optim's are: saved-for-backward checks see it
      e.param = p.raw_data();
      e.grad = grad.raw_data();
      e.master = master.defined() ? master.data_ptr<float>() : nullptr;
      e.exp_avg = st.exp_avg.data_ptr<float>();
      e.exp_avg_sq = st.exp_avg_sq.data_ptr<float>();
      e.max_exp_avg_sq = o.amsgrad ? st.max_exp_avg_sq.data_ptr<float>() : nullptr;
      e.numel = p.numel();
      e.dtype = p.dtype();
      e.beta1 = float(beta1);
      e.one_minus_beta1 = float(1 - beta1);
      e.beta2 = float(beta2);
      e.one_minus_beta2 = float(1 - beta2);
      e.eps = float(o.eps);
      e.weight_decay = float(o.weight_decay);
      e.decay_factor = decoupled_ ? float(1 - o.lr * o.weight_decay) : 1.f;
      e.neg_step_size = float(-step_size);
      e.bias_correction2_sqrt = float(std::sqrt(1 - std::pow(beta2, step)));
      e.amsgrad = o.amsgrad;
      e.maximize = o.maximize;
      e.decoupled = decoupled_;
      batches.add(p.device(), e);
    }
  }
  for (const auto& [device, entries] : batches.items)
    kernels::adam_step(device, entries.data(), int64_t(entries.size()), scaling.inv_scale,
                       found_inf_ptr(scaling, device, name_));
}

void Adam::write_group_options(size_t group, Dict& out) const {
  const AdamOptions& o = options_[group];
  out.set("lr", o.lr);
  out.set("betas", Value::tuple({o.betas.first, o.betas.second}));
  out.set("eps", o.eps);
  out.set("weight_decay", o.weight_decay);
  out.set("amsgrad", o.amsgrad);
  out.set("maximize", o.maximize);
  out.set("foreach", Value());
  out.set("capturable", false);
  out.set("differentiable", false);
  out.set("fused", false);
  out.set("decoupled_weight_decay", decoupled_);  // torch 2.x's key: AdamW is Adam with it set
}

void Adam::read_group_options(size_t group, const Dict& in) {
  AdamOptions o = options_[group];
  if (const Value* v = in.find("lr")) o.lr = v->to_double();
  if (const Value* v = in.find("betas")) {
    const ValueList& b = v->items();
    HT_CHECK(b.size() == 2, "[", name_, "] betas should hold two numbers, got ", b.size());
    o.betas = {b[0].to_double(), b[1].to_double()};
  }
  if (const Value* v = in.find("eps")) o.eps = v->to_double();
  if (const Value* v = in.find("weight_decay")) o.weight_decay = v->to_double();
  if (const Value* v = in.find("amsgrad")) o.amsgrad = v->to_bool();
  if (const Value* v = in.find("maximize")) o.maximize = v->to_bool();
  // torch 2.x's Adam with decoupled_weight_decay=True is AdamW; halftorch's are two classes, so a group saved by
  // the other one would change what weight decay means
  if (const Value* v = in.find("decoupled_weight_decay"); v && v->is_bool())
    HT_CHECK(v->to_bool() == decoupled_ || o.weight_decay == 0, "[", name_, "] param group ", group,
             " was saved with decoupled_weight_decay=", v->to_bool() ? "True (AdamW's" : "False (Adam's",
             " weight decay); load it into ", v->to_bool() ? "AdamW" : "Adam");
  check_options(o, name_);
  options_[group] = o;
}

void Adam::write_param_state(size_t index, Dict& out) const {
  const State& st = state_[index];
  out.set("step", st.step);
  out.set("exp_avg", st.exp_avg);
  out.set("exp_avg_sq", st.exp_avg_sq);
  if (st.max_exp_avg_sq.defined()) out.set("max_exp_avg_sq", st.max_exp_avg_sq);
}

void Adam::read_param_state(size_t index, const Dict& in) {
  State st;
  const char* layout = "'step', 'exp_avg', 'exp_avg_sq' (and 'max_exp_avg_sq' with amsgrad)";
  const Value& step = state_entry(in, index, "step", name_, layout);
  HT_CHECK(step.is_tensor() || step.is_int() || step.is_double(), "[", name_, "] state[", index,
           "]['step'] should be a number or a tensor, got ", step.kind_name());
  st.step = full({}, step.is_tensor() ? step.to_tensor().item_double() : step.to_double(), {.dtype = kFloat32});
  st.exp_avg = state_tensor(state_entry(in, index, "exp_avg", name_, layout), index, "exp_avg");
  st.exp_avg_sq = state_tensor(state_entry(in, index, "exp_avg_sq", name_, layout), index, "exp_avg_sq");
  if (const Value* v = in.find("max_exp_avg_sq")) st.max_exp_avg_sq = state_tensor(*v, index, "max_exp_avg_sq");
  state_[index] = std::move(st);
}

}  // namespace ht::optim
