// ht::amp::GradScaler: PyTorch's dynamic loss scaling (torch.cuda.amp.GradScaler) for halftorch's optimizers.
// Same defaults, growth/back-off rule, stage errors and state_dict keys. Differences, on purpose: it accepts
// float16 gradients (the optimizers update fp32 master weights, so unscaling happens in fp32 inside the fused
// step and small gradients are not lost to fp16), it works on CPU and CUDA alike, and step() reads the
// found-inf flag once (its only device-to-host transfer) so the scale itself lives on the host.
#pragma once
#include <functional>
#include <optional>
#include <vector>

#include "halftorch/core/tensor.h"
#include "halftorch/io/value.h"
#include "halftorch/optim/optimizer.h"

namespace ht::amp {

struct GradScalerOptions {
  double init_scale = 65536.0;  // 2^16
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
  bool enabled = true;
};

class GradScaler {
 public:
  explicit GradScaler(GradScalerOptions options = {});

  // outputs * scale. A 16-bit output is scaled in float32 (the result is float32), so a loss of a few units
  // times 2^16 does not overflow float16; backward casts the gradient back to the output's dtype.
  Tensor scale(const Tensor& outputs);
  // Multiplies the optimizer's gradients by 1/scale in place (one fused pass that also records inf/NaN).
  // Optional: call it to inspect or clip unscaled gradients before step().
  void unscale_(optim::Optimizer& optimizer);
  // Checks the gradients for inf/NaN (fused), reads the flag once, and runs optimizer.step() with the
  // unscaling folded into the kernel only when all are finite. Returns whether the optimizer stepped.
  // Unless unscale_ ran first, the gradients stay scaled (the kernel unscales what it reads).
  bool step(optim::Optimizer& optimizer);
  // Backs off after a skipped step, grows after growth_interval clean ones; or sets new_scale.
  void update(std::optional<double> new_scale = std::nullopt);

  double get_scale() const;  // 1.0 when disabled
  double get_growth_factor() const { return growth_factor_; }
  void set_growth_factor(double f) { growth_factor_ = f; }
  double get_backoff_factor() const { return backoff_factor_; }
  void set_backoff_factor(double f) { backoff_factor_ = f; }
  int64_t get_growth_interval() const { return growth_interval_; }
  void set_growth_interval(int64_t n) { growth_interval_ = n; }
  int64_t growth_tracker() const;
  bool is_enabled() const { return enabled_; }
  // Called on the (summed) found-inf flag before it is read, in place: ht::distributed::sync_grad_scaler sets it
  // to a max all-reduce over the ranks, so that every rank skips the same steps.
  void set_found_inf_reducer(std::function<void(Tensor& flag)> fn) { found_inf_reducer_ = std::move(fn); }

  // {"scale", "growth_factor", "backoff_factor", "growth_interval", "_growth_tracker"}, or {} when disabled.
  Value state_dict() const;
  void load_state_dict(const Value& state_dict);

 private:
  enum class Stage { Ready, Unscaled, Stepped };
  struct PerOptimizer {
    const optim::Optimizer* optimizer = nullptr;
    Stage stage = Stage::Ready;
    std::vector<Tensor> found_inf;  // one flag per device holding gradients
    std::optional<float> found;     // the flags' sum, once read on the host
  };
  PerOptimizer& state_for(const optim::Optimizer& optimizer);
  void check_initialized(const char* fn) const;
  // Runs the fused unscale + check over the optimizer's gradients; records the flags.
  void unscale_grads(optim::Optimizer& optimizer, float inv_scale, PerOptimizer& st);
  float read_found(PerOptimizer& st);

  bool enabled_;
  double init_scale_, growth_factor_, backoff_factor_;
  int64_t growth_interval_;
  int64_t init_growth_tracker_ = 0;
  bool initialized_ = false;  // PyTorch creates _scale lazily in the first scale()
  float scale_ = 0;           // float32, as PyTorch's _scale tensor
  int32_t growth_tracker_ = 0;
  std::vector<PerOptimizer> per_optimizer_;
  std::function<void(Tensor&)> found_inf_reducer_;
};

}  // namespace ht::amp
