// ht::nn::Module: the base of every layer. It owns named parameters, buffers and child modules in registration
// order, and gives PyTorch's module API over them: named_parameters, state_dict with PyTorch's key names and
// `_metadata` versions, load_state_dict, train/eval, to(device / dtype / memory format), zero_grad.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "halftorch/core/tensor.h"
#include "halftorch/io/value.h"

namespace ht::nn {

class Module;
using ModulePtr = std::shared_ptr<Module>;
template <class T> using Named = std::vector<std::pair<std::string, T>>;

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }
  // PyTorch's class name ("Conv2d", "BatchNorm2d", ...), used in messages.
  virtual std::string type_name() const = 0;
  // The `_version` PyTorch records in a state_dict's `_metadata` for this module (BatchNorm: 2).
  virtual int64_t version() const { return 1; }

  // Recursive, depth-first in registration order, names joined with '.' as PyTorch's.
  Named<Tensor> named_parameters(bool recurse = true) const;
  std::vector<Tensor> parameters(bool recurse = true) const;
  Named<Tensor> named_buffers(bool recurse = true) const;
  std::vector<Tensor> buffers(bool recurse = true) const;
  Named<ModulePtr> named_children() const { return children_; }
  std::vector<ModulePtr> children() const;
  // Every module below this one (not this one), with its dotted path.
  Named<ModulePtr> named_modules() const;

  // Parameters then buffers of each module, module by module (PyTorch's order), plus `_metadata` versions.
  // The tensors alias the module's (detached); copy them before changing them.
  StateDict state_dict() const;
  // Copies every entry into the matching tensor, converting dtype and device as Tensor::copy_ does. With
  // strict, missing and unexpected keys are errors; shape mismatches always are. All problems are reported in
  // one ht::Error, as PyTorch's message does.
  void load_state_dict(const StateDict& state_dict, bool strict = true);

  Module& train(bool on = true);
  Module& eval() { return train(false); }
  bool is_training() const { return training_; }

  // Moves parameters and buffers; the tensors keep their identity (handles held elsewhere see the change),
  // as PyTorch's module.to() does. Gradients are dropped.
  Module& to(Device device);
  // Converts the floating-point parameters and buffers (num_batches_tracked stays int64).
  Module& to(DType dtype);
  Module& half() { return to(kFloat16); }
  Module& float_() { return to(kFloat32); }
  Module& bfloat16() { return to(kBFloat16); }
  // model.to(memory_format=torch.channels_last): lays every 4-D parameter and buffer out in `format`
  // (ChannelsLast or Contiguous), keeping their identity, so an optimizer built afterwards steps the new
  // layout; state_dict then holds (and torch.save writes) channels_last tensors, and load_state_dict keeps the
  // layout. Gradients are dropped.
  Module& to(MemoryFormat format);
  Module& double_() { return to(kFloat64); }
  // Drops every parameter's gradient (PyTorch's default set_to_none=True), or zeroes it in place.
  void zero_grad(bool set_to_none = true);

 protected:
  // Both return the registered handle; layers keep it as a member (it stays valid across to()).
  Tensor register_parameter(std::string name, Tensor t, bool requires_grad = true);
  Tensor register_buffer(std::string name, Tensor t);
  template <class M>
  std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> m) {
    add_child(std::move(name), m);
    return m;
  }
  // Called by load_state_dict for a key of this module that the state_dict lacks; returns true when the module
  // fixed it up itself (BatchNorm fills num_batches_tracked for files older than version 2).
  virtual bool fill_missing(const std::string& local_name, int64_t file_version) { return false; }

 private:
  void add_child(std::string name, ModulePtr m);
  void check_new_name(const std::string& name, const char* what) const;
  Named<Tensor> collect(Named<Tensor> Module::*member, bool recurse) const;
  template <class F> void for_each_tensor(F&& f);
  Named<Tensor> params_, buffers_;
  Named<ModulePtr> children_;
  bool training_ = true;
};

}  // namespace ht::nn
