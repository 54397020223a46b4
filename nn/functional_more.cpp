// Losses (mse, l1, smooth_l1, nll, binary cross-entropy), activations (silu, leaky_relu), normalisations
// (layer_norm, group_norm), embedding, avg_pool2d and dropout2d, composed from differentiable core ops so that
// their backward and device support are those ops'. Formulas: torch.nn.functional's documentation
// (https://pytorch.org/docs/stable/nn.functional.html).
#include <cmath>

#include "core/ops.h"
#include "core/random.h"
#include "nn/functional.h"

namespace ht::nn::functional {

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

Tensor silu(const Tensor& x) { return mul(x, sigmoid(x)); }

Tensor gelu(const Tensor& x, const std::string& approximate) {
  if (approximate == "none") return mul(mul(x, 0.5), add(erf(mul(x, 0.7071067811865476)), 1.0));  // x/2 (1 + erf(x/sqrt 2))
  HT_CHECK_VALUE(approximate == "tanh", "[gelu] approximate must be 'none' or 'tanh', got '", approximate, "'");
  Tensor inner = mul(add(x, mul(mul(square(x), x), 0.044715)), 0.7978845608028654);  // sqrt(2/pi) (x + 0.044715 x^3)
  return mul(mul(x, 0.5), add(tanh(inner), 1.0));
}
Tensor leaky_relu(const Tensor& x, double negative_slope) { return where(gt(x, 0), x, mul(x, negative_slope)); }

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

Tensor embedding(const Tensor& indices, const Tensor& weight) {
  HT_CHECK(weight.dim() == 2, "[embedding] expected a 2-d weight, got ", shape_str(weight.sizes()));
  HT_CHECK(indices.dtype() == kInt64 || indices.dtype() == kInt32, "[embedding] expected int64 indices, got ",
           dtype_name(indices.dtype()));
  Shape out = indices.sizes();
  out.push_back(weight.size(1));
  return index_select(weight, 0, indices.reshape({-1})).reshape(out);
}

Tensor avg_pool2d(const Tensor& x_in, Size2 k, Size2 stride, Size2 padding) {
  HT_CHECK(x_in.dim() == 4, "[avg_pool2d] expected an input (N, C, H, W), got ", shape_str(x_in.sizes()));
  if (stride.h == 0 && stride.w == 0) stride = k;
  HT_CHECK(k.h > 0 && k.w > 0 && stride.h > 0 && stride.w > 0, "[avg_pool2d] kernel and stride must be positive");
  HT_CHECK(padding.h * 2 <= k.h && padding.w * 2 <= k.w, "[avg_pool2d] pad should be at most half of effective ",
           "kernel size, but got pad=", padding.h, ", kernel_size=", k.h);
  Tensor x = x_in;
  int64_t n = x.size(0), c = x.size(1);
  // zero padding, which count_include_pad=True averages over
  if (padding.h) {
    Tensor z = zeros({n, c, padding.h, x.size(3)}, {.dtype = x.dtype(), .device = x.device()});
    x = cat({z, x, z}, 2);
  }
  if (padding.w) {
    Tensor z = zeros({n, c, x.size(2), padding.w}, {.dtype = x.dtype(), .device = x.device()});
    x = cat({z, x, z}, 3);
  }
  int64_t oh = (x.size(2) - k.h) / stride.h + 1, ow = (x.size(3) - k.w) / stride.w + 1;
  HT_CHECK(x.size(2) >= k.h && x.size(3) >= k.w && oh > 0 && ow > 0, "[avg_pool2d] Given input size: (", c, "x",
           x_in.size(2), "x", x_in.size(3), "). Calculated output size: (", c, "x", std::max<int64_t>(oh, 0), "x",
           std::max<int64_t>(ow, 0), "). Output size is too small");
  Tensor acc;
  for (int64_t i = 0; i < k.h; ++i)
    for (int64_t j = 0; j < k.w; ++j) {
      Tensor win = x.slice(2, i, i + (oh - 1) * stride.h + 1, stride.h).slice(3, j, j + (ow - 1) * stride.w + 1, stride.w);
      acc = acc.defined() ? add(acc, win) : win;
    }
  return div(acc, double(k.h * k.w));
}

Tensor dropout2d(const Tensor& x, double p, bool training) {
  HT_CHECK(p >= 0 && p <= 1, "[dropout2d] dropout probability has to be between 0 and 1, but got ", p);
  HT_CHECK(x.dim() >= 2, "[dropout2d] expected an input (N, C, ...), got ", shape_str(x.sizes()));
  if (!training || p == 0) return x;
  if (p == 1) return mul(x, 0.0);
  Shape ms(size_t(x.dim()), 1);
  ms[0] = x.size(0);
  ms[1] = x.size(1);
  Tensor keep = lt(rand(ms, {.dtype = kFloat32, .device = x.device()}), 1 - p).to(x.dtype());
  return mul(x, div(keep, 1 - p));
}

}  // namespace ht::nn::functional
