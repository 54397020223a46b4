// Gradient clipping: torch/nn/utils/clip_grad.py's formulas, composed from core ops so that it runs on every device.
#include "nn/utils.h"

#include <cmath>

#include "core/autograd.h"
#include "core/ops.h"

namespace ht::nn::utils {

namespace {
std::vector<Tensor> defined_grads(const std::vector<Tensor>& params) {
  std::vector<Tensor> grads;
  for (const Tensor& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  return grads;
}
}  // namespace

Tensor clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type, bool error_if_nonfinite) {
  NoGradGuard no_grad;
  std::vector<Tensor> grads = defined_grads(params);
  if (grads.empty()) return zeros({});
  const Device device = grads[0].device();
  const bool inf_norm = std::isinf(norm_type);
  HT_CHECK(norm_type > 0, "[clip_grad_norm_] expected a positive norm_type, got ", norm_type);
  Tensor total;  // inf: the largest |g|; otherwise sum |g|^p, rooted below
  for (const Tensor& g : grads) {
    HT_CHECK(g.device() == device, "[clip_grad_norm_] expected every gradient on ", device.str(), ", got one on ",
             g.device().str());
    Tensor a = abs(g.to(kFloat32));
    Tensor part = inf_norm ? max(a) : sum(norm_type == 2.0 ? square(a) : pow(a, norm_type));
    total = !total.defined() ? part : inf_norm ? maximum(total, part) : add(total, part);
  }
  if (!inf_norm) total = norm_type == 2.0 ? sqrt(total) : pow(total, 1.0 / norm_type);
  if (error_if_nonfinite) {
    double t = total.item<double>();
    HT_CHECK(std::isfinite(t), "[clip_grad_norm_] the total norm of order ", norm_type, " for gradients from ",
             "`parameters` is non-finite, so it cannot be clipped. To disable this error and scale the gradients by ",
             "the non-finite norm anyway, set `error_if_nonfinite=False`");
  }
  // clamp(max_norm / (total + 1e-6), max=1): the gradients are multiplied even when under the threshold, as torch
  Tensor coef = clamp(rdiv(add(total, 1e-6), max_norm), -std::numeric_limits<double>::infinity(), 1.0);
  for (Tensor& g : grads) g.copy_(mul(g, coef.to(g.dtype())));
  return total;
}

void clip_grad_value_(const std::vector<Tensor>& params, double clip_value) {
  NoGradGuard no_grad;
  for (Tensor& g : defined_grads(params)) g.copy_(clamp(g, -clip_value, clip_value));
}

}  // namespace ht::nn::utils
