// --model-ema DECAY: an exponential moving average of the weights, timm's ModelEmaV2 semantics
// (timm/utils/model_ema.py): after every optimizer step, each state_dict entry (parameters and BatchNorm buffers
// alike) becomes decay * ema + (1 - decay) * current. The average is kept in float32 and, for 16-bit training,
// taken of the fp32 master weights (timm's model is fp32 under AMP); integer buffers (num_batches_tracked) take
// the same formula truncated, as ModelEmaV2's copy_ into an int64 tensor does.
#pragma once
#include <halftorch/halftorch.h>

namespace examples {

// The model's state_dict entries as handles, parameters replaced by their fp32 masters (params() order).
inline ht::StateDict current_weights(const ht::nn::Module& model, const std::vector<ht::Tensor>& masters) {
  ht::StateDict sd = model.state_dict();
  auto params = model.named_parameters();
  size_t p = 0;
  for (auto& [name, t] : sd.tensors)
    if (p < params.size() && params[p].first == name) t = masters[p++];
  return sd;
}

class ModelEma {
 public:
  explicit ModelEma(double decay) : decay_(decay) {}
  // Starts the average at the current weights (timm: a deep copy of the model).
  void reset(const ht::nn::Module& model, const std::vector<ht::Tensor>& masters) {
    state_ = current_weights(model, masters);
    for (auto& [name, t] : state_.tensors)
      t = t.is_floating_point() ? t.to(ht::kFloat32).clone(ht::MemoryFormat::Contiguous) : t.clone(ht::MemoryFormat::Contiguous);
  }
  void update(const ht::nn::Module& model, const std::vector<ht::Tensor>& masters) {
    ht::NoGradGuard no_grad;
    ht::StateDict cur = current_weights(model, masters);
    HT_CHECK(cur.size() == state_.size(), "[model_ema] the model has ", cur.size(), " state_dict entries, the average ",
             state_.size());
    for (size_t i = 0; i < cur.size(); ++i) {
      ht::Tensor& e = state_.tensors[i].second;
      const ht::Tensor& m = cur.tensors[i].second;
      if (e.is_floating_point()) {
        e.copy_(ht::add(ht::mul(e, decay_), ht::mul(m.to(ht::kFloat32), 1.0 - decay_)));
      } else {
        double v = decay_ * double(e.item<int64_t>()) + (1.0 - decay_) * double(m.item<int64_t>());
        e.copy_(ht::full({}, std::trunc(v), {.dtype = e.dtype()}).to(e.device()));
      }
    }
  }
  const ht::StateDict& state() const { return state_; }
  // From a checkpoint's "model_ema" (fp32, as saved).
  void load(const ht::StateDict& sd, ht::Device device) {
    HT_CHECK(sd.size() == state_.size(), "[model_ema] expected ", state_.size(), " entries in 'model_ema', got ", sd.size());
    for (size_t i = 0; i < sd.size(); ++i) {
      HT_CHECK(sd.tensors[i].first == state_.tensors[i].first, "[model_ema] expected '", state_.tensors[i].first,
               "' as entry ", i, " of 'model_ema', got '", sd.tensors[i].first, "'");
      state_.tensors[i].second.copy_(sd.tensors[i].second.to(device));
    }
  }
  // CPU copies in `dtype` (floating entries), for saving.
  ht::StateDict saved(ht::DType dtype) const {
    ht::StateDict out = state_;
    for (auto& [name, t] : out.tensors)
      t = t.is_floating_point() ? t.to(ht::kCPU, dtype).clone(ht::MemoryFormat::Contiguous) : t.cpu().clone(ht::MemoryFormat::Contiguous);
    return out;
  }

 private:
  double decay_;
  ht::StateDict state_;
};

}  // namespace examples
