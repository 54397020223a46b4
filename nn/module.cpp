// Module: registration, recursive traversal, state_dict / load_state_dict, train/eval and conversions.
#include "nn/module.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "core/autograd.h"

namespace ht::nn {

namespace {
std::string torch_size(const Shape& s) {
  std::ostringstream os;
  os << "torch.Size([";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << "])";
  return os.str();
}

// Replaces the tensor's contents with `src`'s storage and layout, keeping the TensorImpl (and so every handle).
void rebind(Tensor& t, const Tensor& src) {
  TensorImpl* i = t.impl();
  i->storage = src.storage();
  i->offset = src.storage_offset();
  i->sizes = src.sizes();
  i->strides = src.strides();
  i->dtype = src.dtype();
  i->grad.reset();
}
}  // namespace

// PyTorch's rules for a member name (Module.register_parameter/_buffer/add_module): not empty, no '.', and not
// taken by another parameter, buffer or child of this module.
void Module::check_new_name(const std::string& name, const char* what) const {
  HT_CHECK(!name.empty(), "[Module] ", what, " name can't be empty string");
  HT_CHECK(name.find('.') == std::string::npos, "[Module] ", what, " name can't contain \".\", got '", name, "'");
  auto taken = [&](const auto& named) {
    return std::any_of(named.begin(), named.end(), [&](const auto& entry) { return entry.first == name; });
  };
  HT_CHECK(!taken(params_) && !taken(buffers_) && !taken(children_), "[Module] attribute '", name,
           "' already exists (registering a ", what, " under the name of a parameter, buffer or submodule)");
}

Tensor Module::register_parameter(std::string name, Tensor t, bool requires_grad) {
  check_new_name(name, "parameter");
  HT_CHECK(t.defined(), "[Module] parameter '", name, "' is undefined");
  t = t.detach();
  if (requires_grad) t.set_requires_grad(true);
  params_.emplace_back(std::move(name), t);
  return t;
}

Tensor Module::register_buffer(std::string name, Tensor t) {
  check_new_name(name, "buffer");
  HT_CHECK(t.defined(), "[Module] buffer '", name, "' is undefined");
  t = t.detach();
  buffers_.emplace_back(std::move(name), t);
  return t;
}

void Module::add_child(std::string name, ModulePtr m) {
  check_new_name(name, "module");
  HT_CHECK(m != nullptr, "[Module] child module '", name, "' is null");
  children_.emplace_back(std::move(name), std::move(m));
}

Named<Tensor> Module::collect(Named<Tensor> Module::*member, bool recurse) const {
  Named<Tensor> out = this->*member;
  if (recurse)
    for (const auto& [name, child] : children_)
      for (auto& [n, t] : child->collect(member, true)) out.emplace_back(name + "." + n, t);
  return out;
}

namespace {
std::vector<Tensor> values_of(const Named<Tensor>& named) {
  std::vector<Tensor> out;
  for (const auto& [n, t] : named) out.push_back(t);
  return out;
}
}  // namespace

Named<Tensor> Module::named_parameters(bool recurse) const { return collect(&Module::params_, recurse); }
std::vector<Tensor> Module::parameters(bool recurse) const { return values_of(named_parameters(recurse)); }
Named<Tensor> Module::named_buffers(bool recurse) const { return collect(&Module::buffers_, recurse); }
std::vector<Tensor> Module::buffers(bool recurse) const { return values_of(named_buffers(recurse)); }

std::vector<ModulePtr> Module::children() const {
  std::vector<ModulePtr> out;
  for (const auto& [n, c] : children_) out.push_back(c);
  return out;
}

Named<ModulePtr> Module::named_modules() const {
  Named<ModulePtr> out;
  for (const auto& [name, child] : children_) {
    out.emplace_back(name, child);
    for (auto& [n, m] : child->named_modules()) out.emplace_back(name + "." + n, m);
  }
  return out;
}

namespace {
// One state_dict entry with the module that owns it.
struct Entry {
  std::string key, local;
  std::string prefix;  // the owning module's path ("" for the root)
  Tensor tensor;
  Module* owner;
};
}  // namespace

StateDict Module::state_dict() const {
  StateDict sd;
  auto walk = [&](auto&& self, const Module& m, const std::string& prefix) -> void {
    sd.module_versions.emplace_back(prefix.empty() ? "" : prefix.substr(0, prefix.size() - 1), m.version());
    for (const auto& [n, t] : m.params_) sd.add(prefix + n, t.detach());
    for (const auto& [n, t] : m.buffers_) sd.add(prefix + n, t.detach());
    for (const auto& [n, c] : m.children_) self(self, *c, prefix + n + ".");
  };
  walk(walk, *this, "");
  return sd;
}

void Module::load_state_dict(const StateDict& state_dict, bool strict) {
  std::vector<Entry> own;
  auto walk = [&](auto&& self, Module& m, const std::string& prefix) -> void {
    std::string path = prefix.empty() ? "" : prefix.substr(0, prefix.size() - 1);
    for (auto& [n, t] : m.params_) own.push_back({prefix + n, n, path, t, &m});
    for (auto& [n, t] : m.buffers_) own.push_back({prefix + n, n, path, t, &m});
    for (auto& [n, c] : m.children_) self(self, *c, prefix + n + ".");
  };
  walk(walk, *this, "");
  std::map<std::string, int64_t> versions(state_dict.module_versions.begin(), state_dict.module_versions.end());
  std::set<std::string> known;
  std::vector<std::string> missing, unexpected, mismatched;
  std::vector<std::pair<Tensor, Tensor>> copies;
  for (const Entry& e : own) {
    known.insert(e.key);
    const Tensor* src = state_dict.find(e.key);
    if (!src) {
      auto v = versions.find(e.prefix);
      if (!e.owner->fill_missing(e.local, v == versions.end() ? -1 : v->second)) missing.push_back(e.key);
      continue;
    }
    if (src->sizes() != e.tensor.sizes()) {
      mismatched.push_back("size mismatch for " + e.key + ": copying a param with shape " + torch_size(src->sizes()) +
                           " from checkpoint, the shape in current model is " + torch_size(e.tensor.sizes()) + ".");
      continue;
    }
    copies.emplace_back(e.tensor, *src);
  }
  for (const auto& [k, t] : state_dict.tensors)
    if (!known.count(k)) unexpected.push_back(k);
  auto quoted = [](const std::vector<std::string>& keys) {
    std::string s;
    for (size_t i = 0; i < keys.size(); ++i) s += (i ? ", \"" : "\"") + keys[i] + "\"";
    return s;
  };
  std::string msg;
  if (strict && !missing.empty()) msg += "\n\tMissing key(s) in state_dict: " + quoted(missing) + ". ";
  if (strict && !unexpected.empty()) msg += "\n\tUnexpected key(s) in state_dict: " + quoted(unexpected) + ". ";
  for (const auto& m : mismatched) msg += "\n\t" + m;
  HT_CHECK(msg.empty(), "[load_state_dict] Error(s) in loading state_dict for ", type_name(), ":", msg);
  NoGradGuard ng;
  for (auto& [dst, src] : copies) dst.copy_(src);
}

Module& Module::train(bool on) {
  training_ = on;
  for (auto& [n, c] : children_) c->train(on);
  return *this;
}

template <class F>
void Module::for_each_tensor(F&& f) {
  for (auto& [n, t] : params_) f(t);
  for (auto& [n, t] : buffers_) f(t);
  for (auto& [n, c] : children_) c->for_each_tensor(f);
}

Module& Module::to(Device device) {
  for_each_tensor([&](Tensor& t) {
    if (t.device() != device) rebind(t, t.detach().to(device));
  });
  return *this;
}

Module& Module::to(DType dtype) {
  HT_CHECK(is_floating(dtype), "[Module] to(dtype) only accepts floating dtypes, got ", dtype_name(dtype));
  for_each_tensor([&](Tensor& t) {
    if (t.is_floating_point() && t.dtype() != dtype) rebind(t, t.detach().to(dtype));
  });
  return *this;
}

Module& Module::to(MemoryFormat format) {
  HT_CHECK(format != MemoryFormat::Preserve, "[Module] to(memory_format) expects ChannelsLast or Contiguous, got ",
           format);
  // as PyTorch's module.to: only 4-D tensors, and only those not already suggesting the format
  for_each_tensor([&](Tensor& t) {
    if (t.dim() == 4 && t.suggest_memory_format() != format) rebind(t, t.detach().to(format));
  });
  return *this;
}

void Module::zero_grad(bool set_to_none) {
  for (auto& [n, t] : named_parameters()) {
    if (!t.grad().defined()) continue;
    if (set_to_none) t.impl()->grad.reset();
    else t.grad().zero_();
  }
}

}  // namespace ht::nn
