// libtorch's other factories: eye, linspace, randint, randperm, the random *_like, from_blob with a deleter,
// nested tensor literals.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/ops.h"
#include "core/random.h"

namespace ht {

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
  // the order that sorts n uniform draws; ties (vanishingly rare) keep index order
  std::vector<double> keys = rand({n}, {.dtype = kFloat64}).to_vector<double>();
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), 0);
  std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) { return keys[size_t(a)] < keys[size_t(b)]; });
  return from_vector(perm, {n}, opt.device).to(opt.dtype);
}

Tensor rand_like(const Tensor& t) { return rand(t.sizes(), {.dtype = t.dtype(), .device = t.device()}); }
Tensor randn_like(const Tensor& t) { return randn(t.sizes(), {.dtype = t.dtype(), .device = t.device()}); }

}  // namespace ht
