// SGD: option checks, the host-side scalars of a step, and torch.optim's state keys.
#include "optim/sgd.h"

#include "core/autograd.h"
#include "kernels/optim_kernels.h"
#include "optim/step_util.h"

namespace ht::optim {

namespace {

void check_options(const SGDOptions& o) {
  HT_CHECK(o.lr >= 0, "[SGD] Invalid learning rate: ", o.lr);
  HT_CHECK(o.momentum >= 0, "[SGD] Invalid momentum value: ", o.momentum);
  HT_CHECK(o.weight_decay >= 0, "[SGD] Invalid weight_decay value: ", o.weight_decay);
  HT_CHECK(!o.nesterov || (o.momentum > 0 && o.dampening == 0),
           "[SGD] Nesterov momentum requires a momentum and zero dampening");
}

}  // namespace

SGD::SGD(std::vector<Tensor> params, SGDOptions defaults) { add_sgd_group(std::move(params), defaults); }

SGD::SGD(std::vector<ParamGroup<SGDOptions>> groups, SGDOptions defaults) {
  check_options(defaults);
  HT_CHECK(!groups.empty(), "[SGD] optimizer got an empty parameter list");
  for (auto& g : groups) add_sgd_group(std::move(g.params), g.options.value_or(defaults));
}

void SGD::add_sgd_group(std::vector<Tensor> params, const SGDOptions& options) {
  check_options(options);
  option_keys_ = {"lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize", "foreach",
                  "differentiable", "fused"};
  add_group(std::move(params), "SGD");
  options_.push_back(options);
  momentum_buffers_.resize(params_.size());
  stepped_.resize(params_.size(), false);
}

void SGD::step(const StepScaling& scaling) {
  NoGradGuard ng;
  // A step the found-inf flag skips changes nothing, a new momentum buffer included. That lives on the host, so the
  // flag is read here (GradScaler, which has read it already, passes none); the kernels check it on the device too.
  if (scaling.found_inf && scaling.found_inf->defined() && scaling.found_inf->item<float>() != 0.f) return;
  DeviceBatches<kernels::SgdTensor> batches;
  for (size_t g = 0; g < groups_.size(); ++g) {
    const SGDOptions& o = options_[g];
    for (size_t i = groups_[g].begin; i < groups_[g].end; ++i) {
      Tensor grad = checked_grad(i, "SGD");
      if (!grad.defined()) continue;
      const Tensor& p = params_[i];
      Tensor& master = master_for(i, o.master_weights);
      kernels::SgdTensor e;
      p.storage()->bump_version();  // an in-place write, as torch.optim's are: saved-for-backward checks see it
      e.param = p.raw_data();
      e.grad = grad.raw_data();
      e.master = master.defined() ? master.data_ptr<float>() : nullptr;
      if (o.momentum != 0) {
        Tensor& buf = momentum_buffers_[i];
        e.init_buffer = !buf.defined();
        if (e.init_buffer) buf = fp32_like(p).zero_();
        e.momentum_buffer = buf.data_ptr<float>();
      }
      e.numel = p.numel();
      e.dtype = p.dtype();
      e.neg_lr = float(-o.lr);
      e.weight_decay = float(o.weight_decay);
      e.momentum = float(o.momentum);
      e.one_minus_dampening = float(1 - o.dampening);
      e.nesterov = o.nesterov;
      e.maximize = o.maximize;
      stepped_[i] = true;
      batches.add(p.device(), e);
    }
  }
  for (const auto& [device, entries] : batches.items)
    kernels::sgd_step(device, entries.data(), int64_t(entries.size()), scaling.inv_scale,
                      found_inf_ptr(scaling, device, "SGD"));
}

void SGD::write_group_options(size_t group, Dict& out) const {
  const SGDOptions& o = options_[group];
  out.set("lr", o.lr);
  out.set("momentum", o.momentum);
  out.set("dampening", o.dampening);
  out.set("weight_decay", o.weight_decay);
  out.set("nesterov", o.nesterov);
  out.set("maximize", o.maximize);
  out.set("foreach", Value());
  out.set("differentiable", false);
}

void SGD::read_group_options(size_t group, const Dict& in) {
  SGDOptions o = options_[group];
  if (const Value* v = in.find("lr")) o.lr = v->to_double();
  if (const Value* v = in.find("momentum")) o.momentum = v->to_double();
  if (const Value* v = in.find("dampening")) o.dampening = v->to_double();
  if (const Value* v = in.find("weight_decay")) o.weight_decay = v->to_double();
  if (const Value* v = in.find("nesterov")) o.nesterov = v->to_bool();
  if (const Value* v = in.find("maximize")) o.maximize = v->to_bool();
  check_options(o);
  options_[group] = o;
}

void SGD::write_param_state(size_t index, Dict& out) const {
  const Tensor& buf = momentum_buffers_[index];
  out.set("momentum_buffer", buf.defined() ? Value(buf) : Value());
}

void SGD::read_param_state(size_t index, const Dict& in) {
  // torch.optim.SGD keeps only a momentum buffer (1.13: None without momentum; 2.x: no entry at all), and
  // halftorch a 16-bit parameter's master_param beside it, so any other key is another optimizer's state
  for (const auto& [k, v] : in.items())
    HT_CHECK(key_str(k) == "momentum_buffer" || key_str(k) == "master_param", "[SGD] state[", index, "] holds '",
             key_str(k), "', but SGD's state is 'momentum_buffer' (and 'master_param' for 16-bit parameters): was the ",
             "state_dict saved by another optimizer?");
  stepped_[index] = true;
  const Value* v = in.find("momentum_buffer");
  momentum_buffers_[index] = v && v->is_tensor() ? state_tensor(*v, index, "momentum_buffer") : Tensor();
}

}  // namespace ht::optim
