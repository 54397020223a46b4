// GradScaler: PyTorch's stage machine and _amp_update_scale_ rule, over halftorch's fused unscale/check.
#include "optim/grad_scaler.h"

#include <cmath>

#include "core/autograd.h"
#include "core/ops.h"
#include "kernels/optim_kernels.h"

namespace ht::amp {

GradScaler::GradScaler(GradScalerOptions o)
    : enabled_(o.enabled),
      init_scale_(o.init_scale),
      growth_factor_(o.growth_factor),
      backoff_factor_(o.backoff_factor),
      growth_interval_(o.growth_interval) {
  if (enabled_) {
    HT_CHECK(growth_factor_ > 1.0, "[GradScaler] The growth factor must be > 1.0.");
    HT_CHECK(backoff_factor_ < 1.0, "[GradScaler] The backoff factor must be < 1.0.");
  }
}

void GradScaler::check_initialized(const char* fn) const {
  HT_CHECK(initialized_, "[GradScaler] Attempted ", fn,
           " but _scale is None.  This may indicate your script did not use scaler.scale(loss or outputs) earlier "
           "in the iteration.");
}

Tensor GradScaler::scale(const Tensor& outputs) {
  if (!enabled_) return outputs;
  if (!initialized_) {
    initialized_ = true;
    scale_ = float(init_scale_);
    growth_tracker_ = int32_t(init_growth_tracker_);
  }
  const Tensor& x = outputs.dtype() == kFloat16 || outputs.dtype() == kBFloat16 ? outputs.to(kFloat32) : outputs;
  return mul(x, double(scale_));
}

GradScaler::PerOptimizer& GradScaler::state_for(const optim::Optimizer& optimizer) {
  for (auto& s : per_optimizer_)
    if (s.optimizer == &optimizer) return s;
  PerOptimizer s;
  s.optimizer = &optimizer;
  per_optimizer_.push_back(std::move(s));
  return per_optimizer_.back();
}

void GradScaler::unscale_grads(optim::Optimizer& optimizer, float inv_scale, PerOptimizer& st) {
  NoGradGuard ng;
  std::vector<std::pair<Device, std::vector<kernels::GradTensor>>> batches;
  for (const Tensor& p : optimizer.params()) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    // unscaled as a flat buffer: any dense layout will do (channels_last gradients of channels_last weights)
    HT_CHECK(g.is_non_overlapping_and_dense(), "[GradScaler] expected dense gradients, got strides ",
             shape_str(g.strides()), " for shape ", shape_str(g.sizes()));
    kernels::GradTensor e{g.raw_data(), g.numel(), g.dtype()};
    auto it = batches.begin();
    while (it != batches.end() && it->first != g.device()) ++it;
    if (it == batches.end()) it = batches.insert(batches.end(), {g.device(), {}});
    it->second.push_back(e);
  }
  st.found_inf.clear();
  st.found.reset();
  for (auto& [device, entries] : batches) {
    Tensor flag = zeros({1}, {.dtype = kFloat32, .device = device});
    kernels::unscale_and_check(device, entries.data(), int64_t(entries.size()), inv_scale, flag.data_ptr<float>());
    st.found_inf.push_back(flag);
  }
}

float GradScaler::read_found(PerOptimizer& st) {
  if (!st.found && found_inf_reducer_ && !st.found_inf.empty()) {
    // one flag holding this rank's total, reduced in place (a single flag is the one the step kernel reads)
    Tensor& total = st.found_inf[0];
    for (size_t i = 1; i < st.found_inf.size(); ++i) total = add(total, st.found_inf[i].to(total.device()));
    found_inf_reducer_(total);
    st.found = total.item<float>();
  }
  if (!st.found) {
    float sum = 0;
    for (const Tensor& f : st.found_inf) sum += f.item<float>();
    st.found = sum;
  }
  return *st.found;
}

void GradScaler::unscale_(optim::Optimizer& optimizer) {
  if (!enabled_) return;
  check_initialized("unscale_");
  PerOptimizer& st = state_for(optimizer);
  HT_CHECK(st.stage != Stage::Unscaled,
           "[GradScaler] unscale_() has already been called on this optimizer since the last update().");
  HT_CHECK(st.stage != Stage::Stepped, "[GradScaler] unscale_() is being called after step().");
  // the reciprocal in double, as PyTorch does, then float32
  unscale_grads(optimizer, float(1.0 / double(scale_)), st);
  st.stage = Stage::Unscaled;
}

bool GradScaler::step(optim::Optimizer& optimizer) {
  if (!enabled_) {
    optimizer.step();
    return true;
  }
  check_initialized("step");
  PerOptimizer& st = state_for(optimizer);
  HT_CHECK(st.stage != Stage::Stepped, "[GradScaler] step() has already been called since the last update().");
  float inv_scale = 1.f;
  if (st.stage == Stage::Ready) {
    unscale_grads(optimizer, 1.f, st);  // check only; the step unscales as it reads
    inv_scale = float(1.0 / double(scale_));
  }
  HT_CHECK(!st.found_inf.empty(), "[GradScaler] No inf checks were recorded for this optimizer.");
  bool stepped = read_found(st) == 0.f;
  // The flag was read here, so the optimizer is told the step is clean by passing no flag: handed a device
  // flag, it would read it on the host once more (a second sync) to keep its own bookkeeping exact.
  if (stepped) optimizer.step(optim::StepScaling{inv_scale, nullptr});
  st.stage = Stage::Stepped;
  return stepped;
}

void GradScaler::update(std::optional<double> new_scale) {
  if (!enabled_) return;
  check_initialized("update");
  if (new_scale) {
    scale_ = float(*new_scale);
  } else {
    size_t recorded = 0;
    for (const auto& st : per_optimizer_) recorded += st.found_inf.size();
    HT_CHECK(recorded > 0, "[GradScaler] No inf checks were recorded prior to update.");
    float found = 0;
    for (auto& st : per_optimizer_) found += read_found(st);
    // _amp_update_scale_: back off on inf/NaN; grow after growth_interval clean steps, never to inf
    if (found != 0.f) {
      scale_ = float(double(scale_) * backoff_factor_);
      growth_tracker_ = 0;
    } else {
      int32_t successful = growth_tracker_ + 1;
      if (successful == growth_interval_) {
        float grown = float(double(scale_) * growth_factor_);
        if (std::isfinite(grown)) scale_ = grown;
        growth_tracker_ = 0;
      } else {
        growth_tracker_ = successful;
      }
    }
  }
  per_optimizer_.clear();
}

double GradScaler::get_scale() const {
  if (!enabled_) return 1.0;
  return initialized_ ? double(scale_) : init_scale_;
}

int64_t GradScaler::growth_tracker() const { return initialized_ ? growth_tracker_ : init_growth_tracker_; }

Value GradScaler::state_dict() const {
  Value out = Value::dict();
  if (!enabled_) return out;
  Dict& d = out.to_dict();
  d.set("scale", get_scale());
  d.set("growth_factor", growth_factor_);
  d.set("backoff_factor", backoff_factor_);
  d.set("growth_interval", growth_interval_);
  d.set("_growth_tracker", growth_tracker());
  return out;
}

void GradScaler::load_state_dict(const Value& sd) {
  if (!enabled_) return;
  HT_CHECK(sd.is_dict() && !sd.to_dict().empty(),
           "[GradScaler] The source state dict is empty, possibly because it was saved from a disabled instance of "
           "GradScaler.");
  auto number = [&](const char* key) -> const Value& {
    const Value* v = sd.to_dict().find(std::string(key));
    HT_CHECK(v && (v->is_double() || v->is_int()), "[GradScaler] expected torch.amp.GradScaler's state_dict ('scale', ",
             "'growth_factor', 'backoff_factor', 'growth_interval', '_growth_tracker'), but '", key, "' is ",
             v ? std::string("a ") + v->kind_name() : std::string("missing"));
    return *v;
  };
  init_scale_ = number("scale").to_double();
  if (initialized_) scale_ = float(init_scale_);
  growth_factor_ = number("growth_factor").to_double();
  backoff_factor_ = number("backoff_factor").to_double();
  growth_interval_ = number("growth_interval").to_int();
  init_growth_tracker_ = number("_growth_tracker").to_int();
  if (initialized_) growth_tracker_ = int32_t(init_growth_tracker_);
}

}  // namespace ht::amp
