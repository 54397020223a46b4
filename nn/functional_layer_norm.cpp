// layer_norm and group_norm: normalisation over each sample's trailing dims or channel groups (biased variance,
// as PyTorch), composed from differentiable reductions.
#include "core/ops.h"
#include "nn/functional.h"

namespace ht::nn::functional {

Tensor layer_norm(const Tensor& x, Shape normalized_shape, const Tensor& weight, const Tensor& bias, double eps) {
  int64_t k = int64_t(normalized_shape.size());
  HT_CHECK(k >= 1 && x.dim() >= k, "[layer_norm] expected an input with at least ", k, " dims, got ",
           shape_str(x.sizes()));
  Shape tail(x.sizes().end() - k, x.sizes().end());
  HT_CHECK(tail == normalized_shape, "[layer_norm] Given normalized_shape=", shape_str(normalized_shape),
           ", expected input with shape [*, ", shape_str(normalized_shape), "], but got input of size ",
           shape_str(x.sizes()));
  Shape dims;
  for (int64_t d = x.dim() - k; d < x.dim(); ++d) dims.push_back(d);
  Tensor mu = mean(x, dims, true);
  Tensor centered = sub(x, mu);
  Tensor v = mean(square(centered), dims, true);  // biased, as layer_norm uses
  Tensor y = mul(centered, rsqrt(add(v, eps)));
  if (weight.defined()) y = mul(y, weight);
  if (bias.defined()) y = add(y, bias);
  return y;
}

Tensor group_norm(const Tensor& x, int64_t num_groups, const Tensor& weight, const Tensor& bias, double eps) {
  HT_CHECK(x.dim() >= 2, "[group_norm] expected an input (N, C, *), got ", shape_str(x.sizes()));
  int64_t n = x.size(0), c = x.size(1);
  HT_CHECK(num_groups > 0 && c % num_groups == 0, "[group_norm] Expected number of channels in input to be ",
           "divisible by num_groups, but got input of shape ", shape_str(x.sizes()), " and num_groups=", num_groups);
  Tensor g = x.reshape({n, num_groups, -1});
  Tensor centered = sub(g, mean(g, {2}, true));
  Tensor y = mul(centered, rsqrt(add(mean(square(centered), {2}, true), eps))).reshape(x.sizes());
  Shape per_channel(size_t(x.dim()), 1);
  per_channel[1] = c;
  if (weight.defined()) y = mul(y, weight.reshape(per_channel));
  if (bias.defined()) y = add(y, bias.reshape(per_channel));
  return y;
}

}  // namespace ht::nn::functional
