// Tensor factories: empty, zeros, full, arange; tensors on existing memory (from_blob, with or without a deleter)
// or from values (from_vector, nested literals); eye and linspace, with torch's defaults. Random draws are in
// core/factory_random.cpp.
#include <cmath>
#include <cstring>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/raw.h"

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

namespace {
// A new tensor's first values are not an in-place write: its version stays 0, as torch.full's does.
Tensor& fill_new(Tensor& t, double value) {
  if (t.numel() > 0) kernels::fill(detail::raw(detail::in_order(t, detail::kernel_order(t)), "full"), value);
  return t;
}
}  // namespace

Tensor full(Shape sizes, double value, TensorOptions opt) {
  bool rg = opt.requires_grad;
  opt.requires_grad = false;
  Tensor t = empty(std::move(sizes), opt);
  fill_new(t, value);
  if (rg) t.set_requires_grad(true);
  return t;
}
Tensor zeros(Shape sizes, TensorOptions opt) { return full(std::move(sizes), 0.0, opt); }
Tensor ones(Shape sizes, TensorOptions opt) { return full(std::move(sizes), 1.0, opt); }
Tensor full_like(const Tensor& t, double value, MemoryFormat format) {
  Tensor out = empty_like(t, format);
  return fill_new(out, value);
}
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

namespace detail {
// torch::tensor's rule (torch/csrc/api/include/torch/detail/TensorDataContainer.h, compute_desired_dtype):
// integer literals become int64, floating ones the default dtype.
DType nested_default_dtype(bool floating, bool boolean) { return boolean ? kBool : floating ? kFloat32 : kInt64; }
Tensor stack_planes(const std::vector<Tensor>& planes) { return cat(planes, 0); }
}  // namespace detail

Tensor from_blob(void* data, Shape sizes, std::function<void(void*)> deleter, TensorOptions opt) {
  HT_CHECK(data != nullptr || numel_of(sizes) == 0, "[from_blob] expected a data pointer, got null");
  for (int64_t s : sizes) HT_CHECK(s >= 0, "[from_blob] negative dimension in shape ", shape_str(sizes));
  size_t nbytes = size_t(numel_of(sizes)) * element_size(opt.dtype);
  auto release = deleter ? std::move(deleter) : std::function<void(void*)>([](void*) {});
  auto st = std::make_shared<Storage>(data, nbytes, opt.device, std::move(release));
  Tensor t(st, opt.dtype, sizes, contiguous_strides(sizes), 0);
  if (opt.requires_grad) t.set_requires_grad(true);
  return t;
}
Tensor from_blob(void* data, Shape sizes, TensorOptions opt) { return from_blob(data, std::move(sizes), nullptr, opt); }

Tensor eye(int64_t n, TensorOptions opt) { return eye(n, n, opt); }
Tensor eye(int64_t n, int64_t m, TensorOptions opt) {
  HT_CHECK(n >= 0 && m >= 0, "[eye] expected non-negative sizes, got n = ", n, ", m = ", m);
  bool rg = opt.requires_grad;
  opt.requires_grad = false;
  // the diagonal: row index == column index, compared by broadcasting a column of rows against a row of columns
  Tensor rows = arange(n, {.dtype = kInt64, .device = opt.device}).reshape({n, 1});
  Tensor cols = arange(m, {.dtype = kInt64, .device = opt.device}).reshape({1, m});
  Tensor out = eq(rows, cols).to(opt.dtype).contiguous(opt.memory_format);
  if (rg) out.set_requires_grad(true);
  return out;
}

Tensor linspace(double start, double end, int64_t steps, TensorOptions opt) {
  HT_CHECK(steps >= 0, "[linspace] number of steps must be non-negative, got ", steps);
  std::vector<double> v(static_cast<size_t>(steps));
  // torch fills the first half from start and the second from end, so both ends are exact
  double step = steps > 1 ? (end - start) / double(steps - 1) : 0;
  int64_t half = steps / 2;
  for (int64_t i = 0; i < steps; ++i)
    v[size_t(i)] = i < half ? start + step * double(i) : end - step * double(steps - 1 - i);
  Tensor out = from_vector(v, {steps}, opt.device).to(opt.dtype);
  if (opt.requires_grad) out.set_requires_grad(true);
  return out;
}

}  // namespace ht
