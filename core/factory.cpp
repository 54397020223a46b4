// Tensor factories and random draws.
#include <cmath>
#include <cstring>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/random.h"
#include "core/raw.h"
#include "kernels/functors.h"

namespace ht {

Tensor empty_strided(Shape sizes, Shape strides, TensorOptions opt) {
  for (int64_t s : sizes) HT_CHECK(s >= 0, "[empty] negative dimension in shape ", shape_str(sizes));
  HT_CHECK(sizes.size() == strides.size(), "[empty_strided] sizes ", shape_str(sizes), " and strides ",
           shape_str(strides), " differ in length");
  // the storage reaches the last element; the Tensor constructor checks the strides themselves
  int64_t extent = numel_of(sizes) == 0 ? 0 : 1;
  for (size_t d = 0; d < sizes.size() && extent; ++d) extent += (sizes[d] - 1) * std::max<int64_t>(strides[d], 0);
  size_t nbytes = size_t(extent) * element_size(opt.dtype);
  Tensor t(std::make_shared<Storage>(nbytes, opt.device), opt.dtype, std::move(sizes), std::move(strides), 0);
  if (opt.requires_grad) t.set_requires_grad(true);
  return t;
}

Tensor empty(Shape sizes, TensorOptions opt) {
  Shape strides = strides_for(sizes, opt.memory_format, "empty");
  return empty_strided(std::move(sizes), std::move(strides), opt);
}

Tensor empty_like(const Tensor& t, MemoryFormat format) {
  TensorOptions opt{.dtype = t.dtype(), .device = t.device()};
  if (format == MemoryFormat::Preserve) return empty_strided(t.sizes(), preserved_strides(t.sizes(), t.strides()), opt);
  opt.memory_format = format;
  return empty(t.sizes(), opt);
}

Tensor full(Shape sizes, double value, TensorOptions opt) {
  bool rg = opt.requires_grad;
  opt.requires_grad = false;
  Tensor t = empty(std::move(sizes), opt);
  t.fill_(value);
  if (rg) t.set_requires_grad(true);
  return t;
}
Tensor zeros(Shape sizes, TensorOptions opt) { return full(std::move(sizes), 0.0, opt); }
Tensor ones(Shape sizes, TensorOptions opt) { return full(std::move(sizes), 1.0, opt); }
Tensor full_like(const Tensor& t, double value, MemoryFormat format) { return empty_like(t, format).fill_(value); }
Tensor zeros_like(const Tensor& t, MemoryFormat format) { return full_like(t, 0.0, format); }
Tensor ones_like(const Tensor& t, MemoryFormat format) { return full_like(t, 1.0, format); }
Tensor scalar_tensor(double value, TensorOptions opt) { return full({}, value, opt); }

Tensor arange(Scalar start_s, Scalar end_s, Scalar step_s, TensorOptions opt) {
  double start = start_s.to_double(), end = end_s.to_double(), step = step_s.to_double();
  HT_CHECK(std::isfinite(start) && std::isfinite(end) && std::isfinite(step), "[arange] expected finite start, end ",
           "and step, got ", start, ", ", end, ", ", step);
  HT_CHECK(step != 0, "[arange] step must be nonzero");
  HT_CHECK((end - start) / step >= 0, "[arange] upper bound and step sign are inconsistent: start ", start,
           ", end ", end, ", step ", step);
  auto n = int64_t(std::ceil((end - start) / step));
  std::vector<double> v(size_t(std::max<int64_t>(n, 0)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = start + double(i) * step;
  return from_vector(v, {int64_t(v.size())}, opt.device).to(opt.dtype).contiguous(opt.memory_format);
}
Tensor arange(Scalar start, Scalar end, Scalar step) {
  bool integral = !start.is_floating_point() && !end.is_floating_point() && !step.is_floating_point();
  return arange(start, end, step, {.dtype = integral ? kInt64 : kFloat32});
}
Tensor arange(Scalar end, TensorOptions opt) { return arange(0, end, 1, opt); }
Tensor arange(Scalar end) { return arange(0, end, 1); }

Tensor from_blob(void* data, Shape sizes, DType dtype, Device device) {
  size_t nbytes = size_t(numel_of(sizes)) * element_size(dtype);
  auto st = std::make_shared<Storage>(data, nbytes, device, [](void*) {});
  return Tensor(st, dtype, sizes, contiguous_strides(sizes), 0);
}

template <class T>
Tensor from_vector(const std::vector<T>& values, Shape sizes, Device device) {
  HT_CHECK(numel_of(sizes) == int64_t(values.size()), "[from_vector] ", values.size(),
           " values do not fill shape ", shape_str(sizes));
  Tensor t = empty(sizes, {.dtype = dtype_of<T>()});
  if constexpr (std::is_same_v<T, bool>) {
    auto* p = static_cast<bool*>(t.raw_data());
    for (size_t i = 0; i < values.size(); ++i) p[i] = values[i];
  } else if (!values.empty()) {
    std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(T));
  }
  return t.to(device);
}
template Tensor from_vector(const std::vector<float>&, Shape, Device);
template Tensor from_vector(const std::vector<double>&, Shape, Device);
template Tensor from_vector(const std::vector<Half>&, Shape, Device);
template Tensor from_vector(const std::vector<BFloat16>&, Shape, Device);
template Tensor from_vector(const std::vector<int64_t>&, Shape, Device);
template Tensor from_vector(const std::vector<int32_t>&, Shape, Device);
template Tensor from_vector(const std::vector<int16_t>&, Shape, Device);
template Tensor from_vector(const std::vector<int8_t>&, Shape, Device);
template Tensor from_vector(const std::vector<uint8_t>&, Shape, Device);
template Tensor from_vector(const std::vector<bool>&, Shape, Device);

// ---------------------------------------------------------------- random

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
  NoGradGuard g;
  t.copy_(add(mul(rand(t.sizes(), gen ? *gen : default_generator(), {.dtype = kFloat64, .device = t.device()}),
                  high - low), low));
}
void normal_(Tensor& t, double mean, double std, Generator* gen) {
  NoGradGuard g;
  t.copy_(add(mul(randn(t.sizes(), gen ? *gen : default_generator(), {.dtype = kFloat64, .device = t.device()}),
                  std), mean));
}

}  // namespace ht
