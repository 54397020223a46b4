// HT_MODULE(Name): libtorch's TORCH_MODULE. Given a module class NameImpl, it defines Name, a shared handle
// that constructs a NameImpl from its arguments, reaches its members with ->, calls forward with (), and
// converts to the std::shared_ptr that register_module and Sequential take:
//   struct NetImpl : ht::nn::Module { ... };  HT_MODULE(Net);
//   Net net(3, 10);  net->train();  ht::Tensor y = net(x);  parent.register_module("net", net.ptr());
#pragma once
#include <memory>
#include <type_traits>
#include <utility>

#include "halftorch/nn/module.h"

namespace ht::nn {

template <class Impl>
class ModuleHolder {
 public:
  // Constructs an Impl from args (no args: its default constructor), as libtorch's holders do.
  template <class... Args>
    requires std::is_constructible_v<Impl, Args...>
  explicit ModuleHolder(Args&&... args) : impl_(std::make_shared<Impl>(std::forward<Args>(args)...)) {}
  // An empty holder, to be assigned later (libtorch: Net net{nullptr};).
  ModuleHolder(std::nullptr_t) {}  // NOLINT: implicit, as libtorch's
  explicit ModuleHolder(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

  Impl* operator->() const { return get(); }
  Impl& operator*() const { return *get(); }
  Impl* get() const {
    HT_CHECK(impl_ != nullptr, "[ModuleHolder] accessing an empty module holder");
    return impl_.get();
  }
  const std::shared_ptr<Impl>& ptr() const { return impl_; }
  bool is_empty() const { return impl_ == nullptr; }
  operator std::shared_ptr<Module>() const { return impl_; }  // NOLINT: implicit, for register_module

  template <class... Args>
  auto operator()(Args&&... args) const {
    return get()->forward(std::forward<Args>(args)...);
  }

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace ht::nn

#define HT_MODULE(Name)                                        \
  class Name : public ::ht::nn::ModuleHolder<Name##Impl> {     \
   public:                                                     \
    using ::ht::nn::ModuleHolder<Name##Impl>::ModuleHolder;    \
  }
