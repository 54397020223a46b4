// Random draws from counter-based streams, identical on every device: the default generator, rand and randn (and
// the in-place uniform_ / normal_ used by nn::init), randint, randperm, rand_like and randn_like.
#include <algorithm>
#include <cmath>

#include "core/autograd.h"
#include "core/mem_overlap.h"
#include "core/ops.h"
#include "core/random.h"
#include "core/raw.h"
#include "kernels/functors.h"

namespace ht {

Generator& default_generator() {
  static Generator g(0);
  return g;
}
void manual_seed(uint64_t seed) { default_generator() = Generator(seed); }

namespace {
// Floating draws go through a float32 (or float64) buffer so every dtype sees the same stream.
Tensor draw(Shape sizes, Generator& gen, TensorOptions opt, bool normal) {
  HT_CHECK(is_floating(opt.dtype), "[", normal ? "randn" : "rand", "] expected a floating dtype, got ",
           dtype_name(opt.dtype));
  DType work = opt.dtype == kFloat64 ? kFloat64 : kFloat32;
  // drawn in logical order whatever the layout, so a channels_last draw holds the values of a contiguous one
  Tensor t = empty(sizes, {.dtype = work, .device = opt.device});
  if (t.numel() > 0) {
    if (normal) kernels::fill_normal(detail::raw(t), gen.seed, gen.offset, 0.0, 1.0);
    else kernels::fill_uniform(detail::raw(t), gen.seed, gen.offset, 0.0, 1.0);
  }
  gen.offset += uint64_t(t.numel());
  t = t.to(opt.dtype).contiguous(opt.memory_format);
  if (opt.requires_grad) t.set_requires_grad(true);
  return t;
}
}  // namespace

uint64_t splitmix64(uint64_t counter) { return kernels::mix64(counter); }

Tensor rand(Shape sizes, Generator& gen, TensorOptions opt) { return draw(std::move(sizes), gen, opt, false); }
Tensor randn(Shape sizes, Generator& gen, TensorOptions opt) { return draw(std::move(sizes), gen, opt, true); }
Tensor rand(Shape sizes, TensorOptions opt) { return rand(std::move(sizes), default_generator(), opt); }
Tensor randn(Shape sizes, TensorOptions opt) { return randn(std::move(sizes), default_generator(), opt); }

void uniform_(Tensor& t, double low, double high, Generator* gen) {
  detail::check_write_overlap(t, "uniform_", {});  // before drawing: a refused write leaves the generator alone
  NoGradGuard g;
  t.copy_(add(mul(rand(t.sizes(), gen ? *gen : default_generator(), {.dtype = kFloat64, .device = t.device()}),
                  high - low), low));
}
void normal_(Tensor& t, double mean, double std, Generator* gen) {
  detail::check_write_overlap(t, "normal_", {});
  NoGradGuard g;
  t.copy_(add(mul(randn(t.sizes(), gen ? *gen : default_generator(), {.dtype = kFloat64, .device = t.device()}),
                  std), mean));
}


Tensor randint(int64_t high, Shape sizes, TensorOptions opt) { return randint(0, high, std::move(sizes), opt); }
Tensor randint(int64_t low, int64_t high, Shape sizes, TensorOptions opt) {
  HT_CHECK(low < high, "[randint] random_ expects 'from' to be less than 'to', but got from=", low, " >= to=", high);
  HT_CHECK(!opt.requires_grad, "[randint] integer draws cannot require grad");
  // uniform doubles scaled to the range: exact for ranges below 2^53
  Tensor u = rand(sizes, {.dtype = kFloat64, .device = opt.device});
  Tensor v = add(mul(u, double(high - low)), double(low));
  std::vector<double> vals = v.to_vector<double>();
  for (double& d : vals) d = std::min(std::floor(d), double(high - 1));
  return from_vector(vals, sizes, opt.device).to(opt.dtype);
}

Tensor randperm(int64_t n, TensorOptions opt) {
  HT_CHECK(n >= 0, "[randperm] n must be non-negative, got ", n);
  // the order that sorts n uniform draws, on the device (a stable sort: ties, vanishingly rare, keep index order)
  return argsort(rand({n}, {.dtype = kFloat64, .device = opt.device})).to(opt.dtype);
}

Tensor rand_like(const Tensor& t) { return rand(t.sizes(), {.dtype = t.dtype(), .device = t.device()}); }
Tensor randn_like(const Tensor& t) { return randn(t.sizes(), {.dtype = t.dtype(), .device = t.device()}); }

}  // namespace ht
