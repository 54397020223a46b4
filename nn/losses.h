// torch.nn's loss modules: MSELoss, L1Loss, SmoothL1Loss, NLLLoss, BCELoss, BCEWithLogitsLoss and
// CrossEntropyLoss, each a Module whose forward takes (input, target) and calls nn::functional's loss.
#pragma once
#include "halftorch/nn/functional.h"
#include "halftorch/nn/module.h"

namespace ht::nn {

// Loss modules take (input, target); the one-argument forward of Module refuses.
class LossModule : public Module {
 public:
  Tensor forward(const Tensor&) override;
  virtual Tensor forward(const Tensor& input, const Tensor& target) = 0;
  Tensor operator()(const Tensor& input, const Tensor& target) { return forward(input, target); }
};

#define HT_LOSS_MODULE(Name, call)                                                      \
  class Name : public LossModule {                                                      \
   public:                                                                              \
    explicit Name(functional::Reduction reduction = functional::Reduction::Mean)        \
        : reduction(reduction) {}                                                       \
    using LossModule::forward;                                                          \
    Tensor forward(const Tensor& input, const Tensor& target) override { return call; } \
    std::string type_name() const override { return #Name; }                            \
    functional::Reduction reduction;                                                    \
  };
HT_LOSS_MODULE(MSELoss, functional::mse_loss(input, target, reduction))
HT_LOSS_MODULE(L1Loss, functional::l1_loss(input, target, reduction))
HT_LOSS_MODULE(SmoothL1Loss, functional::smooth_l1_loss(input, target, reduction))
HT_LOSS_MODULE(NLLLoss, functional::nll_loss(input, target, reduction))
HT_LOSS_MODULE(BCELoss, functional::binary_cross_entropy(input, target, reduction))
HT_LOSS_MODULE(BCEWithLogitsLoss, functional::binary_cross_entropy_with_logits(input, target, reduction))
#undef HT_LOSS_MODULE

// mean cross-entropy (functional::cross_entropy's reduction)
class CrossEntropyLoss : public LossModule {
 public:
  explicit CrossEntropyLoss(functional::CrossEntropyOptions options = {}) : options(options) {}
  using LossModule::forward;
  Tensor forward(const Tensor& input, const Tensor& target) override {
    return functional::cross_entropy(input, target, options);
  }
  std::string type_name() const override { return "CrossEntropyLoss"; }
  functional::CrossEntropyOptions options;
};

}  // namespace ht::nn
