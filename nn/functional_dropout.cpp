// dropout (elements) and dropout2d (whole channels): kept values scaled by 1 / (1 - p) in training, identity in
// evaluation, as torch.nn.functional.
#include "core/autograd.h"
#include "core/ops.h"
#include "core/random.h"
#include "nn/functional.h"

namespace ht::nn::functional {

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
