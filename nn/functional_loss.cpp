// The losses: cross_entropy (class indices with ignore_index and label smoothing, or class probabilities), mse,
// l1, smooth_l1, nll, binary cross-entropy (on probabilities or logits), composed from core ops so that they run
// and differentiate on every device. Formulas: torch.nn.functional's documentation
// (https://pytorch.org/docs/stable/nn.functional.html).
#include <cmath>
#include <map>
#include <mutex>
#include <tuple>

#include "core/autocast.h"
#include "core/autograd.h"
#include "core/ops.h"
#include "nn/functional.h"

namespace ht::nn::functional {

namespace {
// 0..c-1 as int64 on `device`, made once per (device, c): arange builds on the host, and a copy to the GPU
// inside every loss would synchronise with it.
Tensor class_ids(int64_t c, Device device) {
  static std::mutex mu;
  static std::map<std::tuple<int, int, int64_t>, Tensor> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto key = std::make_tuple(int(device.type), device.index, c);
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, arange(c, {.dtype = kInt64, .device = device})).first;
  return it->second;
}
}  // namespace

Tensor cross_entropy(const Tensor& logits_in, const Tensor& target, CrossEntropyOptions options) {
  Tensor logits = amp::autocast_input(logits_in, amp::CastPolicy::Float32);
  HT_CHECK(logits.dim() == 2, "[cross_entropy] expected logits (N, C), got shape ", shape_str(logits.sizes()));
  HT_CHECK(logits.is_floating_point(), "[cross_entropy] expected floating-point logits, got ",
           dtype_name(logits.dtype()));
  HT_CHECK(target.device() == logits.device(), "[cross_entropy] expected target on ", logits.device().str(),
           " like the logits, got ", target.device().str());
  double eps = options.label_smoothing;
  HT_CHECK(eps >= 0.0 && eps <= 1.0, "[cross_entropy] label_smoothing must be between 0.0 and 1.0, got ", eps);
  int64_t n = logits.size(0), c = logits.size(1);
  // 16-bit logits are widened first so log-softmax and the sum run in float32
  DType work = logits.dtype() == kFloat64 ? kFloat64 : kFloat32;
  Tensor logp = log_softmax(logits.to(work), 1);
  Tensor loss;
  if (target.is_floating_point()) {
    HT_CHECK(target.sizes() == logits.sizes(), "[cross_entropy] expected probability targets of shape ",
             shape_str(logits.sizes()), ", got ", shape_str(target.sizes()));
    Tensor t = target.detach().to(work);
    if (eps > 0) t = add(mul(t, 1.0 - eps), eps / double(c));
    loss = div(neg(sum(mul(logp, t))), double(n));
  } else {
    HT_CHECK(target.dim() == 1 && target.size(0) == n, "[cross_entropy] expected class-index targets of shape [",
             n, "], got ", shape_str(target.sizes()));
    HT_CHECK(target.dtype() == kInt64, "[cross_entropy] expected int64 class indices, got ",
             dtype_name(target.dtype()));
    if (target.device().is_cpu()) {  // on the GPU the check would cost a host sync
      for (int64_t v : target.to_vector<int64_t>())
        HT_CHECK(v == options.ignore_index || (v >= 0 && v < c), "[cross_entropy] expected targets in [0, ", c,
                 ") or ignore_index ", options.ignore_index, ", got ", v);
    }
    Tensor w;
    {
      NoGradGuard ng;
      TensorOptions o{.dtype = kInt64, .device = logits.device()};
      Tensor valid = ne(target, full({}, double(options.ignore_index), o)).to(work).unsqueeze(1);
      Tensor onehot = eq(target.unsqueeze(1), class_ids(c, logits.device()).unsqueeze(0)).to(work);
      // (1 - eps) * NLL + (eps / C) * smoothing term, each averaged over the non-ignored targets
      w = mul(add(mul(onehot, 1.0 - eps), eps / double(c)), valid);
      w = div(w, sum(valid));
    }
    loss = neg(sum(mul(logp, w)));
  }
  return loss.to(logits.dtype());
}

namespace {
Tensor reduce(const Tensor& loss, Reduction r) {
  if (r == Reduction::Sum) return sum(loss);
  if (r == Reduction::Mean) return mean(loss);
  return loss;
}
void check_pair(const Tensor& input, const Tensor& target, const char* op) {
  HT_CHECK(input.defined() && target.defined(), "[", op, "] expected defined input and target");
  HT_CHECK(input.sizes() == target.sizes(), "[", op, "] expected target of the input's shape ",
           shape_str(input.sizes()), ", got ", shape_str(target.sizes()));
  HT_CHECK(input.is_floating_point(), "[", op, "] expected a floating-point input, got ", dtype_name(input.dtype()));
}
}  // namespace

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  check_pair(input, target, "mse_loss");
  return reduce(square(sub(input, target)), reduction);
}
Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  check_pair(input, target, "l1_loss");
  return reduce(abs(sub(input, target)), reduction);
}
Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, Reduction reduction, double beta) {
  check_pair(input, target, "smooth_l1_loss");
  HT_CHECK(beta >= 0, "[smooth_l1_loss] beta must be non-negative, got ", beta);
  Tensor d = abs(sub(input, target));
  if (beta == 0) return reduce(d, reduction);
  // 0.5 d^2 / beta below beta, d - 0.5 beta above
  return reduce(where(lt(d, beta), div(mul(square(d), 0.5), beta), add(d, -0.5 * beta)), reduction);
}
Tensor nll_loss(const Tensor& log_probs, const Tensor& target, Reduction reduction, int64_t ignore_index) {
  HT_CHECK(log_probs.dim() == 2, "[nll_loss] expected input (N, C), got ", shape_str(log_probs.sizes()));
  HT_CHECK(target.dim() == 1 && target.size(0) == log_probs.size(0) && target.dtype() == kInt64,
           "[nll_loss] expected int64 class indices of shape [", log_probs.size(0), "], got ",
           dtype_name(target.dtype()), " ", shape_str(target.sizes()));
  int64_t c = log_probs.size(1);
  Tensor kept = ne(target, ignore_index);
  for (int64_t v : target.to_vector<int64_t>())
    HT_CHECK(v == ignore_index || (v >= 0 && v < c), "[nll_loss] Target ", v, " is out of bounds (", c, " classes)");
  Tensor safe = where(kept, target, Scalar(int64_t(0)));
  Tensor picked = neg(gather(log_probs, 1, safe.unsqueeze(1)).squeeze(1));
  Tensor w = kept.to(log_probs.dtype());
  Tensor loss = mul(picked, w);
  if (reduction == Reduction::Mean) return div(sum(loss), sum(w));
  return reduce(loss, reduction);
}
Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, Reduction reduction) {
  check_pair(input, target, "binary_cross_entropy");
  if (input.device().is_cpu()) {
    double lo = min(input.detach()).item_double(), hi = max(input.detach()).item_double();
    HT_CHECK(input.numel() == 0 || (lo >= 0 && hi <= 1), "[binary_cross_entropy] all elements of input should be ",
             "between 0 and 1, got [", lo, ", ", hi, "]");
  }
  Tensor t = target.to(input.dtype());
  Tensor log_p = clamp(log(input), -100, INFINITY), log_q = clamp(log(rsub(input, 1)), -100, INFINITY);
  return reduce(neg(add(mul(t, log_p), mul(rsub(t, 1), log_q))), reduction);
}
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target, Reduction reduction) {
  check_pair(input, target, "binary_cross_entropy_with_logits");
  Tensor t = target.to(input.dtype());
  Tensor loss = add(sub(ht::relu(input), mul(input, t)), log(add(exp(neg(abs(input))), 1)));
  return reduce(loss, reduction);
}

}  // namespace ht::nn::functional
