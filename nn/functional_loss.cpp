// cross_entropy (class indices with ignore_index and label smoothing, or class probabilities) and dropout,
// composed from core ops so that they run and differentiate on every device.
#include <map>
#include <mutex>
#include <tuple>

#include "core/autocast.h"
#include "core/autograd.h"
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

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  HT_CHECK(p >= 0.0 && p <= 1.0, "[dropout] dropout probability has to be between 0 and 1, but got ", p);
  if (!training || p == 0.0) return x;
  if (p == 1.0) return mul(x, zeros({}, {.dtype = x.dtype(), .device = x.device()}));
  Tensor mask;
  {
    NoGradGuard ng;
    Tensor u = rand(x.sizes(), gen ? *gen : default_generator(), {.dtype = kFloat32, .device = x.device()});
    mask = mul(ge(u, full({}, p, {.device = x.device()})).to(x.dtype()), 1.0 / (1.0 - p));
  }
  return mul(x, mask);
}

}  // namespace ht::nn::functional
