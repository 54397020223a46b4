// Activations composed from core ops (their backward and devices are those ops'): silu, gelu (exact erf or the
// tanh approximation), leaky_relu.
#include "core/ops.h"
#include "nn/functional.h"

namespace ht::nn::functional {

Tensor silu(const Tensor& x) { return mul(x, sigmoid(x)); }

Tensor gelu(const Tensor& x, const std::string& approximate) {
  if (approximate == "none") return mul(mul(x, 0.5), add(erf(mul(x, 0.7071067811865476)), 1.0));  // x/2 (1 + erf(x/sqrt 2))
  HT_CHECK_VALUE(approximate == "tanh", "[gelu] approximate must be 'none' or 'tanh', got '", approximate, "'");
  Tensor inner = mul(add(x, mul(mul(square(x), x), 0.044715)), 0.7978845608028654);  // sqrt(2/pi) (x + 0.044715 x^3)
  return mul(mul(x, 0.5), add(tanh(inner), 1.0));
}
Tensor leaky_relu(const Tensor& x, double negative_slope) { return where(gt(x, 0), x, mul(x, negative_slope)); }

}  // namespace ht::nn::functional
