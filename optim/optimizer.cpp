// Optimizer base: groups, masters, zero_grad and torch.optim's state_dict packing.
#include "optim/optimizer.h"

#include <algorithm>
#include <unordered_set>

#include "core/autograd.h"
#include "optim/step_util.h"

namespace ht::optim {

void check_params(const std::vector<Tensor>& params, const char* op) {
  std::unordered_set<const TensorImpl*> seen;
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    HT_CHECK(p.defined(), "[", op, "] parameter ", i, " is an undefined tensor");
    HT_CHECK(p.dtype() == kFloat32 || p.dtype() == kFloat16 || p.dtype() == kBFloat16, "[", op,
             "] expected float32, float16 or bfloat16 parameters, got ", dtype_name(p.dtype()), " for parameter ",
             i);
    HT_CHECK(p.is_leaf(), "[", op, "] can't optimize a non-leaf Tensor (parameter ", i, ")");
    HT_CHECK(p.is_non_overlapping_and_dense(), "[", op, "] expected dense parameters (contiguous, channels_last or "
             "another permutation of a contiguous tensor), parameter ", i, " has shape ", shape_str(p.sizes()),
             " and strides ", shape_str(p.strides()));
    HT_CHECK(seen.insert(p.impl()).second, "[", op, "] some parameters appear in more than one parameter group");
  }
}

void Optimizer::add_group(std::vector<Tensor> params, const char* op) {
  HT_CHECK(!groups_.empty() || !params.empty(), "[", op, "] optimizer got an empty parameter list");
  Group g;
  g.begin = params_.size();
  for (auto& p : params) params_.push_back(std::move(p));
  g.end = params_.size();
  check_params(params_, op);
  masters_.resize(params_.size());
  groups_.push_back(std::move(g));
}

std::vector<Tensor> Optimizer::group_params(size_t group) const {
  HT_CHECK(group < groups_.size(), "[optim] no param group ", group, "; there are ", groups_.size());
  const Group& g = groups_[group];
  return std::vector<Tensor>(params_.begin() + int64_t(g.begin), params_.begin() + int64_t(g.end));
}

void Optimizer::zero_grad(bool set_to_none) {
  for (Tensor& p : params_) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    if (set_to_none) {
      p.set_grad(Tensor());
    } else {
      g.zero_();
    }
  }
}

Tensor& Optimizer::master_for(size_t index, bool enabled) {
  Tensor& m = masters_[index];
  const Tensor& p = params_[index];
  if (!m.defined() && enabled && p.dtype() != kFloat32) {
    m = fp32_like(p);
    m.copy_(p.detach());
  }
  return m;
}

namespace {
// Two dense tensors of one shape put every element at the same offset exactly when their strides agree on the
// dims of size above 1.
bool same_layout(const Tensor& a, const Tensor& b) {
  for (int64_t d = 0; d < a.dim(); ++d)
    if (a.size(d) > 1 && a.stride(d) != b.stride(d)) return false;
  return true;
}
}  // namespace

Tensor Optimizer::checked_grad(size_t index, const char* op) const {
  const Tensor& p = params_[index];
  Tensor g = p.grad();
  if (!g.defined()) return g;
  HT_CHECK(g.dtype() == p.dtype(), "[", op, "] gradient of parameter ", index, " has dtype ", dtype_name(g.dtype()),
           ", the parameter ", dtype_name(p.dtype()));
  HT_CHECK(g.sizes() == p.sizes(), "[", op, "] gradient of parameter ", index, " has shape ", shape_str(g.sizes()),
           ", the parameter ", shape_str(p.sizes()));
  HT_CHECK(g.device() == p.device(), "[", op, "] gradient of parameter ", index, " is on ", g.device().str(),
           ", the parameter on ", p.device().str());
  HT_CHECK(g.is_non_overlapping_and_dense() && same_layout(g, p), "[", op, "] gradient of parameter ", index,
           " has strides ", shape_str(g.strides()), ", the parameter ", shape_str(p.strides()),
           "; the gradient must be laid out like its parameter");
  return g;
}

Tensor Optimizer::state_tensor(const Value& v, size_t index, const char* key) const {
  const Tensor& p = params_[index];
  HT_CHECK(v.is_tensor(), "[load_state_dict] state[", index, "][\"", key, "\"] should be a tensor, got ",
           v.kind_name());
  const Tensor& t = v.to_tensor();
  HT_CHECK(t.numel() == p.numel(), "[load_state_dict] state[", index, "][\"", key, "\"] has ", t.numel(),
           " elements, the parameter ", p.numel());
  NoGradGuard ng;
  Tensor out = fp32_like(p);
  out.copy_(t.detach().reshape(p.sizes()));
  return out;
}

const Value& Optimizer::state_entry(const Dict& in, size_t index, const char* key, const char* op,
                                    const char* expected) {
  if (const Value* v = in.find(std::string(key))) return *v;
  std::string held;
  for (const auto& [k, v] : in.items()) held += (held.empty() ? "'" : ", '") + key_str(k) + "'";
  fail("[", op, "] state[", index, "] has no '", key, "' (it holds ", held.empty() ? "nothing" : held, "); ", op,
       "'s state is ", expected, ": was the state_dict saved by another optimizer?");
}

std::vector<Tensor> Optimizer::master_params() const {
  std::vector<Tensor> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    if (masters_[i].defined()) {
      out.push_back(masters_[i]);
    } else if (p.dtype() == kFloat32) {
      out.push_back(p.detach());
    } else {
      out.push_back(p.detach().to(kFloat32));
    }
  }
  return out;
}

void Optimizer::load_master_params(const std::vector<Tensor>& fp32_params) {
  HT_CHECK(fp32_params.size() == params_.size(), "[load_master_params] expected ", params_.size(),
           " tensors, got ", fp32_params.size());
  NoGradGuard ng;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& src = fp32_params[i];
    Tensor& p = params_[i];
    HT_CHECK(src.sizes() == p.sizes(), "[load_master_params] tensor ", i, " has shape ", shape_str(src.sizes()),
             ", the parameter ", shape_str(p.sizes()));
    if (p.dtype() != kFloat32) {
      if (!masters_[i].defined()) masters_[i] = fp32_like(p);
      masters_[i].copy_(src);
      p.copy_(masters_[i]);
    } else {
      p.copy_(src);
    }
  }
}

void Optimizer::reset_master_params() {
  NoGradGuard ng;
  for (size_t i = 0; i < params_.size(); ++i)
    if (masters_[i].defined()) masters_[i].copy_(params_[i]);
}

std::optional<double> Optimizer::group_extra(size_t group, const std::string& key) const {
  for (const auto& [k, v] : groups_.at(group).extras)
    if (k == key) return v;
  return std::nullopt;
}

void Optimizer::set_group_extra(size_t group, const std::string& key, double value) {
  auto& extras = groups_.at(group).extras;
  for (auto& [k, v] : extras)
    if (k == key) {
      v = value;
      return;
    }
  extras.emplace_back(key, value);
}

Value Optimizer::state_dict() const {
  Value state = Value::dict();
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!has_state(i)) continue;
    Value entry = Value::dict();
    write_param_state(i, entry.to_dict());
    if (masters_[i].defined()) entry.to_dict().set("master_param", masters_[i].detach());
    state.to_dict().set(int64_t(i), entry);
  }
  Value groups = Value::list();
  for (size_t g = 0; g < groups_.size(); ++g) {
    Value group = Value::dict();
    write_group_options(g, group.to_dict());
    for (const auto& [k, v] : groups_[g].extras) group.to_dict().set(k, v);
    ValueList indices;
    for (size_t i = groups_[g].begin; i < groups_[g].end; ++i) indices.emplace_back(int64_t(i));
    group.to_dict().set("params", Value::list(std::move(indices)));
    groups.items().push_back(group);
  }
  Value out = Value::dict();
  out.to_dict().set("state", state);
  out.to_dict().set("param_groups", groups);
  return out;
}

void Optimizer::load_state_dict(const Value& sd) {
  HT_CHECK(sd.is_dict() && sd.to_dict().contains("state") && sd.to_dict().contains("param_groups"),
           "[load_state_dict] expected torch.optim's layout, a dict with 'state' and 'param_groups', got ",
           sd.is_dict() ? "a dict without them" : sd.kind_name());
  const Value& saved_groups = sd["param_groups"];
  const Value& saved_state = sd["state"];
  HT_CHECK(saved_groups.is_list() && saved_state.is_dict(),
           "[load_state_dict] expected 'param_groups' to be a list and 'state' a dict, got a ", saved_groups.kind_name(),
           " and a ", saved_state.kind_name());
  HT_CHECK(saved_groups.items().size() == groups_.size(),
           "[load_state_dict] loaded state dict has a different number of parameter groups");
  // saved index -> our index, pairing the groups' params lists in order (as torch.optim does)
  std::vector<std::pair<int64_t, size_t>> id_map;
  for (size_t g = 0; g < groups_.size(); ++g) {
    const ValueList& ids = saved_groups.items()[g]["params"].items();
    HT_CHECK(ids.size() == groups_[g].end - groups_[g].begin,
             "[load_state_dict] loaded state dict contains a parameter group that doesn't match the size of "
             "optimizer's group");
    for (size_t k = 0; k < ids.size(); ++k) id_map.emplace_back(ids[k].to_int(), groups_[g].begin + k);
  }
  for (size_t g = 0; g < groups_.size(); ++g) {
    const Dict& d = saved_groups.items()[g].to_dict();
    read_group_options(g, d);
    groups_[g].extras.clear();
    for (const auto& [k, v] : d.items()) {
      const std::string& key = std::get<std::string>(k);
      if (key == "params" || std::find(option_keys_.begin(), option_keys_.end(), key) != option_keys_.end()) continue;
      if (v.is_double() || v.is_int()) groups_[g].extras.emplace_back(key, v.to_double());
    }
  }
  clear_state();
  for (size_t i = 0; i < params_.size(); ++i) masters_[i] = Tensor();
  for (const auto& [saved, index] : id_map) {
    const Value* entry = saved_state.to_dict().find(saved);
    if (!entry) continue;
    const Dict& d = entry->to_dict();
    read_param_state(index, d);
    if (const Value* m = d.find("master_param"); m && params_[index].dtype() != kFloat32)
      masters_[index] = state_tensor(*m, index, "master_param");
  }
}

}  // namespace ht::optim
