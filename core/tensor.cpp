// Tensor metadata, views (with their backward rules), copies and conversions.
#include "core/tensor.h"

#include <algorithm>
#include <numeric>

#include "core/autograd.h"
#include "core/mem_overlap.h"
#include "core/ops.h"
#include "core/raw.h"
#include "kernels/kernels.h"

namespace ht {

using autograd::Grads;
using autograd::Inputs;

int64_t numel_of(const Shape& s) {
  int64_t n = 1;
  for (int64_t v : s) n *= v;
  return n;
}

std::string shape_str(const Shape& s) { return detail::concat(s); }

void detail::fail_undefined_tensor() {
  fail("[tensor] the tensor is undefined (default-constructed, or the grad() of a tensor before any backward): ",
       "it has no dtype, shape or data");
}

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  int64_t n = std::max<int64_t>(ndim, 1);
  HT_CHECK_INDEX(dim >= -n && dim < n, "[", op, "] dim ", dim, " out of range for a ", ndim, "-d tensor");
  return dim < 0 ? dim + n : dim;
}

Tensor::Tensor(StoragePtr storage, DType dtype, Shape sizes, Shape strides, int64_t offset) {
  HT_CHECK(sizes.size() == strides.size(), "[tensor] sizes ", shape_str(sizes), " and strides ",
           shape_str(strides), " differ in length");
  for (int64_t s : sizes) HT_CHECK(s >= 0, "[tensor] negative size in ", shape_str(sizes));
  HT_CHECK(offset >= 0, "[tensor] negative storage offset ", offset);
  int64_t n = numel_of(sizes);
  if (n > 0) {
    int64_t last = offset;
    for (size_t d = 0; d < sizes.size(); ++d) {
      HT_CHECK(strides[d] >= 0, "[tensor] negative stride in ", shape_str(strides));
      last += (sizes[d] - 1) * strides[d];
    }
    HT_CHECK(size_t(last + 1) * ht::element_size(dtype) <= storage->nbytes(), "[tensor] view of shape ",
             shape_str(sizes), " strides ", shape_str(strides), " offset ", offset, " (", dtype_name(dtype),
             ") needs ", size_t(last + 1) * ht::element_size(dtype), " bytes, storage has ", storage->nbytes());
  }
  impl_ = std::make_shared<TensorImpl>();
  impl_->storage = std::move(storage);
  impl_->dtype = dtype;
  impl_->sizes = std::move(sizes);
  impl_->strides = std::move(strides);
  impl_->offset = offset;
}

int64_t Tensor::size(int64_t d) const { return sizes()[wrap_dim(d, dim(), "size")]; }
int64_t Tensor::stride(int64_t d) const { return strides()[wrap_dim(d, dim(), "stride")]; }
int64_t Tensor::numel() const { return numel_of(sizes()); }
void* Tensor::raw_data() const {
  if (!storage()->data() && numel() > 0)
    fail("[tensor] the values of this ", dtype_name(dtype()), " tensor of shape ", shape_str(sizes()),
         " were not kept for backward: an autograd rule read an input or output it did not declare in its Saves");
  return static_cast<char*>(storage()->data()) + storage_offset() * int64_t(element_size());
}

bool Tensor::is_contiguous(MemoryFormat format) const { return is_contiguous_strides(sizes(), strides(), format); }
bool Tensor::is_non_overlapping_and_dense() const { return ht::is_non_overlapping_and_dense(sizes(), strides()); }
MemoryFormat Tensor::suggest_memory_format() const {
  return is_channels_last_strides(sizes(), strides()) ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous;
}

Tensor& Tensor::set_requires_grad(bool r) {
  HT_CHECK(!r || is_floating(dtype()), "[requires_grad] only floating-point tensors can require gradients, got ",
           dtype_name(dtype()));
  HT_CHECK(is_leaf() || r, "[requires_grad] can only change requires_grad of leaf tensors");
  impl()->requires_grad = r;
  return *this;
}

Tensor Tensor::detach() const {
  auto i = std::make_shared<TensorImpl>();
  i->storage = storage();
  i->offset = storage_offset();
  i->sizes = sizes();
  i->strides = strides();
  i->dtype = dtype();
  return Tensor(i);
}

void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
  if (gradient.defined()) return autograd::run_backward(*this, gradient, retain_graph);
  HT_CHECK(numel() == 1, "[backward] grad can be implicitly created only for scalar outputs, got shape ",
           shape_str(sizes()));
  autograd::run_backward(*this, ones(sizes(), {.dtype = dtype(), .device = device()}), retain_graph);
}

// ---------------------------------------------------------------- views
// Every view shares storage and records a backward rule that maps the gradient back to the input's shape.

Tensor Tensor::as_strided(Shape sizes, Shape strides, int64_t offset) const {
  Tensor out(storage(), dtype(), std::move(sizes), std::move(strides), offset);
  TensorImpl* self = synced();
  std::shared_ptr<TensorImpl> base = self->view_base ? self->view_base : impl_;
  out.impl()->view_base = base;
  out.impl()->view_base_fn = base->grad_fn;
  return out;
}

namespace {
// Strides for viewing `t` with `shape` without a copy, or an empty Shape when impossible (PyTorch's rule).
Shape view_strides(const Tensor& t, const Shape& shape) {
  if (t.numel() == 0 || t.is_contiguous()) return contiguous_strides(shape);
  const Shape& os = t.sizes();
  const Shape& ost = t.strides();
  Shape out(shape.size());
  int64_t view_d = int64_t(shape.size()) - 1;
  int64_t chunk_base_stride = ost.empty() ? 1 : ost.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = int64_t(os.size()) - 1; d >= 0; --d) {
    tensor_numel *= os[d];
    if (d == 0 || (os[d - 1] != 1 && ost[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape[view_d];
        view_d--;
      }
      if (view_numel != tensor_numel) return {};
      if (d > 0) {
        chunk_base_stride = ost[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return {};
  return out;
}

Shape infer_shape(Shape shape, int64_t numel, const char* op) {
  int64_t infer = -1, known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      HT_CHECK(infer < 0, "[", op, "] only one dimension can be inferred, got ", shape_str(shape));
      infer = int64_t(i);
    } else {
      HT_CHECK(shape[i] >= 0, "[", op, "] invalid shape dimension ", shape[i]);
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    HT_CHECK(known != 0 && numel % known == 0, "[", op, "] shape ", shape_str(shape), " is invalid for input of size ",
             numel);
    shape[infer] = numel / known;
  }
  HT_CHECK(numel_of(shape) == numel, "[", op, "] shape ", shape_str(shape), " is invalid for input of size ", numel);
  return shape;
}

Tensor record_reshape_like(const char* name, Tensor out, const Tensor& in) {
  return autograd::record(name, std::move(out), {in}, [](const Inputs& in, const Tensor&, const Tensor& gy) {
    return Grads{gy.reshape(in[0].sizes())};
  });
}
}  // namespace

Tensor Tensor::view(Shape shape) const {
  shape = infer_shape(std::move(shape), numel(), "view");
  Shape st = view_strides(*this, shape);
  HT_CHECK(!st.empty() || shape.empty(), "[view] size ", shape_str(shape), " is not compatible with input of shape ",
           shape_str(sizes()), " and strides ", shape_str(strides()), "; use reshape instead");
  return record_reshape_like("view", as_strided(shape, st, storage_offset()), *this);
}

Tensor Tensor::reshape(Shape shape) const {
  shape = infer_shape(std::move(shape), numel(), "reshape");
  Shape st = view_strides(*this, shape);
  if (!st.empty() || shape.empty()) {
    if (shape.empty()) st = {};
    return record_reshape_like("reshape", as_strided(shape, st, storage_offset()), *this);
  }
  return contiguous().view(shape);
}

Tensor Tensor::flatten(int64_t start, int64_t end) const {
  if (dim() == 0) return reshape({1});
  start = wrap_dim(start, dim(), "flatten");
  end = wrap_dim(end, dim(), "flatten");
  HT_CHECK(start <= end, "[flatten] start_dim ", start, " must not be after end_dim ", end);
  Shape s(sizes().begin(), sizes().begin() + start);
  int64_t m = 1;
  for (int64_t d = start; d <= end; ++d) m *= sizes()[d];
  s.push_back(m);
  s.insert(s.end(), sizes().begin() + end + 1, sizes().end());
  return reshape(s);
}

namespace {
// permute, recorded as `name` (transpose and t are permutes with PyTorch's own node names)
Tensor permute_as(const Tensor& x, Shape dims, const char* name) {
  HT_CHECK(int64_t(dims.size()) == x.dim(), "[permute] expected ", x.dim(), " dims, got ", shape_str(dims));
  Shape s(dims.size()), st(dims.size());
  std::vector<bool> used(dims.size(), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrap_dim(dims[i], x.dim(), "permute");
    HT_CHECK(!used[d], "[permute] repeated dim in ", shape_str(dims));
    used[d] = true;
    dims[i] = d;
    s[i] = x.sizes()[d];
    st[i] = x.strides()[d];
  }
  return autograd::record(name, x.as_strided(s, st, x.storage_offset()), {x},
                          [dims](const Inputs&, const Tensor&, const Tensor& gy) {
                            Shape inv(dims.size());
                            for (size_t i = 0; i < dims.size(); ++i) inv[dims[i]] = int64_t(i);
                            return Grads{gy.permute(inv)};
                          });
}

Shape swapped_dims(int64_t ndim, int64_t d0, int64_t d1) {
  Shape p(ndim);
  std::iota(p.begin(), p.end(), 0);
  std::swap(p[wrap_dim(d0, ndim, "transpose")], p[wrap_dim(d1, ndim, "transpose")]);
  return p;
}
}  // namespace

Tensor Tensor::permute(Shape dims) const { return permute_as(*this, std::move(dims), "permute"); }

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  if (dim() == 0) return *this;
  return permute_as(*this, swapped_dims(dim(), d0, d1), "transpose");
}

Tensor Tensor::t() const {
  HT_CHECK(dim() <= 2, "[t] expects a tensor with <= 2 dims, got ", dim());
  return dim() < 2 ? *this : permute_as(*this, swapped_dims(2, 0, 1), "t");
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  return detail::slice_as(*this, d, start, end, step, "slice");
}

Tensor detail::slice_as(const Tensor& x, int64_t d, int64_t start, int64_t end, int64_t step, const char* name) {
  d = wrap_dim(d, x.dim(), "slice");
  HT_CHECK(step > 0, "[slice] step must be positive, got ", step);
  int64_t n = x.sizes()[d];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape s = x.sizes(), st = x.strides();
  s[d] = (end - start + step - 1) / step;
  st[d] *= step;
  Tensor out = x.as_strided(s, st, x.storage_offset() + start * x.strides()[d]);
  return autograd::record(name, out, {x}, [d, start, end, step](const Inputs& in, const Tensor&, const Tensor& gy) {
    Tensor g = zeros(in[0].sizes(), {.dtype = gy.dtype(), .device = gy.device()});
    g.slice(d, start, end, step).copy_(gy);
    return Grads{g};
  });
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  d = wrap_dim(d, dim(), "narrow");
  HT_CHECK(start >= 0 && length >= 0 && start + length <= sizes()[d], "[narrow] start ", start, " + length ", length,
           " exceeds dimension ", d, " of size ", sizes()[d]);
  return slice(d, start, start + length);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  d = wrap_dim(d, dim(), "select");
  int64_t n = sizes()[d];
  HT_CHECK(index >= -n && index < n, "[select] index ", index, " out of range for dimension ", d, " of size ", n);
  if (index < 0) index += n;
  Shape s = sizes(), st = strides();
  s.erase(s.begin() + d);
  st.erase(st.begin() + d);
  Tensor out = as_strided(s, st, storage_offset() + index * strides()[d]);
  return autograd::record("select", out, {*this}, [d, index](const Inputs& in, const Tensor&, const Tensor& gy) {
    Tensor g = zeros(in[0].sizes(), {.dtype = gy.dtype(), .device = gy.device()});
    g.select(d, index).copy_(gy);
    return Grads{g};
  });
}

Tensor Tensor::expand(Shape shape) const {
  HT_CHECK(int64_t(shape.size()) >= dim(), "[expand] the number of sizes ", shape_str(shape),
           " must be at least the tensor's dims ", dim());
  Shape st(shape.size());
  int64_t lead = int64_t(shape.size()) - dim();
  for (int64_t i = int64_t(shape.size()) - 1; i >= 0; --i) {
    int64_t j = i - lead;
    if (j < 0) {
      HT_CHECK(shape[i] >= 0, "[expand] -1 is not allowed in a new leading dimension");
      st[i] = 0;
      continue;
    }
    int64_t cur = sizes()[j];
    if (shape[i] == -1) shape[i] = cur;
    HT_CHECK(cur == shape[i] || cur == 1, "[expand] the expanded size ", shape[i], " must match the existing size ", cur,
             " at non-singleton dimension ", i, "; target ", shape_str(shape), ", tensor ", shape_str(sizes()));
    st[i] = cur == shape[i] ? strides()[j] : 0;
  }
  if (shape == sizes()) return *this;
  return autograd::record("expand", as_strided(shape, st, storage_offset()), {*this},
                          [](const Inputs& in, const Tensor&, const Tensor& gy) {
                            return Grads{sum_to(gy, in[0].sizes())};
                          });
}

Tensor Tensor::squeeze() const {
  Shape s, st;
  for (int64_t d = 0; d < dim(); ++d)
    if (sizes()[d] != 1) {
      s.push_back(sizes()[d]);
      st.push_back(strides()[d]);
    }
  // PyTorch's node for squeeze over every dim is SqueezeBackward0 (squeeze(dim) is SqueezeBackward1)
  return record_reshape_like("squeeze_all", as_strided(s, st, storage_offset()), *this);
}

Tensor Tensor::squeeze(int64_t d) const {
  if (dim() == 0) return *this;
  d = wrap_dim(d, dim(), "squeeze");
  if (sizes()[d] != 1) return *this;
  Shape s = sizes(), st = strides();
  s.erase(s.begin() + d);
  st.erase(st.begin() + d);
  return record_reshape_like("squeeze", as_strided(s, st, storage_offset()), *this);
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = wrap_dim(d, dim() + 1, "unsqueeze");
  Shape s = sizes(), st = strides();
  int64_t new_stride = d < dim() ? sizes()[d] * strides()[d] : 1;
  s.insert(s.begin() + d, 1);
  st.insert(st.begin() + d, new_stride);
  return record_reshape_like("unsqueeze", as_strided(s, st, storage_offset()), *this);
}

// ---------------------------------------------------------------- copies

Tensor Tensor::contiguous(MemoryFormat format) const {
  if (is_contiguous(format)) return *this;
  HT_CHECK(format != MemoryFormat::Preserve, "[contiguous] preserve memory format is unsupported by the contiguous "
           "operator");
  return clone(format);
}

Tensor Tensor::clone(MemoryFormat format) const { return to(device(), dtype(), true, format); }

Tensor Tensor::to(DType dt) const { return to(device(), dt); }
Tensor Tensor::to(Device dev) const { return to(dev, dtype()); }
Tensor Tensor::to(Device dev, DType dt) const { return to(dev, dt, false); }
Tensor Tensor::to(MemoryFormat format) const { return to(device(), dtype(), false, format); }

Tensor Tensor::to(Device dev, DType dt, bool force_copy, MemoryFormat format) const {
  bool keeps_format = format == MemoryFormat::Preserve || suggest_memory_format() == format;
  if (!force_copy && dev == device() && dt == dtype() && keeps_format) return *this;
  Shape st = format == MemoryFormat::Preserve ? preserved_strides(sizes(), strides()) : strides_for(sizes(), format, "to");
  Tensor out = empty_strided(sizes(), st, {.dtype = dt, .device = dev});
  {
    NoGradGuard g;
    out.copy_(*this);
  }
  const char* name = dev != device() ? "to_device" : dt != dtype() ? "to_dtype" : "clone";
  return autograd::record(name, out, {*this}, [](const Inputs& in, const Tensor&, const Tensor& gy) {
    return Grads{gy.to(in[0].device(), in[0].dtype())};
  });
}

namespace {
// The write itself, not recorded.
void copy_values(const Tensor& self, const Tensor& src) {
  if (self.numel() == 0) return;
  Tensor s = src.dim() == self.dim() && src.sizes() == self.sizes() ? src.detach() : src.detach().expand(self.sizes());
  if (s.device() == self.device()) {
    Shape order = detail::kernel_order(self);
    kernels::copy(detail::raw(detail::in_order(s, order), "copy_"), detail::raw(detail::in_order(self, order), "copy_"));
    return;
  }
  // Across devices: make a contiguous image in the destination's dtype on the source side, move the bytes,
  // then place them (a strided destination gets one more on-device copy).
  Tensor staged = s.dtype() == self.dtype() && s.is_contiguous() ? s : s.to(self.dtype()).contiguous();
  if (staged.dtype() != self.dtype()) staged = staged.to(self.dtype());
  staged = staged.contiguous();
  Tensor target = self.is_contiguous() ? self : empty(self.sizes(), {.dtype = self.dtype(), .device = self.device()});
  kernels::copy_bytes_across(staged.raw_data(), staged.device(), target.raw_data(), target.device(), self.nbytes());
  if (!target.same(self)) kernels::copy(detail::raw(target, "copy_"), detail::raw(self, "copy_"));
}

// fill_ and zero_: recorded (as PyTorch's FillBackward2 / ZeroBackward0) when the tensor had a history, which
// the fill cuts: the old value's gradient is zero, as derivatives.yaml says. torch lets them write into an
// expanded tensor (every element gets the same value), so they make no overlap check.
Tensor& fill_values(Tensor& self, double value, const char* op) {
  autograd::check_in_place_allowed(self, op);
  self.storage()->bump_version();
  bool track = autograd::grad_enabled() && self.requires_grad();
  Tensor old = track ? autograd::history_of(self) : Tensor();
  if (self.numel() > 0)
    kernels::fill(detail::raw(detail::in_order(self, detail::kernel_order(self)), op), value);
  if (track)
    autograd::take_history(self, autograd::record(op, self.detach(), {old}, [](const Inputs&, const Tensor&,
                                                                                const Tensor& g) {
      return Grads{zeros_like(g)};
    }));
  return self;
}
}  // namespace

void detail::write_values(const Tensor& t, const Tensor& src) {
  t.storage()->bump_version();
  copy_values(t, src);
}

Tensor& Tensor::copy_(const Tensor& src) {
  autograd::check_in_place_allowed(*this, "copy_");
  HT_CHECK(src.defined(), "[copy_] expected a defined source tensor, got an undefined one");
  detail::check_write_overlap(*this, "copy_", {.no_partial_overlap = {src}});
  bool track = autograd::grad_enabled() && (requires_grad() || src.requires_grad());
  if (src.requires_grad()) autograd::check_not_partial_view(*this, "copy_");
  Tensor old = track ? autograd::history_of(*this) : Tensor();
  detail::write_values(*this, src);
  // PyTorch's CopyBackwards: the old value gets a zero gradient, src gets it summed to its shape, dtype and device
  if (track)
    autograd::take_history(*this, autograd::record("copy_", detach(), {old, src}, [](const Inputs& in, const Tensor&,
                                                                                     const Tensor& g) {
      return Grads{in[0].requires_grad() ? zeros_like(g) : Tensor(),
                   sum_to(g, in[1].sizes()).to(in[1].device(), in[1].dtype())};
    }));
  return *this;
}

Tensor& Tensor::fill_(double value) { return fill_values(*this, value, "fill_"); }
Tensor& Tensor::zero_() { return fill_values(*this, 0.0, "zero_"); }

double Tensor::item_double() const {
  HT_CHECK(numel() == 1, "[item] a Tensor with ", numel(), " elements cannot be converted to a scalar");
  Tensor c = to(kCPU, kFloat64).contiguous();
  return *static_cast<const double*>(c.raw_data());
}

template <class T>
T Tensor::item() const {
  HT_CHECK(numel() == 1, "[item] a Tensor with ", numel(), " elements cannot be converted to a scalar");
  Tensor c = to(kCPU, dtype_of<T>()).contiguous();
  return *static_cast<const T*>(c.raw_data());
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  Tensor c = to(kCPU).to(dtype_of<T>()).contiguous();
  const T* p = static_cast<const T*>(c.numel() ? c.raw_data() : nullptr);
  return std::vector<T>(p, p + c.numel());
}


namespace detail {
Shape kernel_order(const Tensor& t) { return t.is_contiguous() ? Shape{} : stride_order(t.strides()); }
Tensor in_order(const Tensor& t, const Shape& order) { return order.empty() ? t.detach() : t.detach().permute(order); }
}  // namespace detail

#define HT_INSTANTIATE(T) template T Tensor::item<T>() const; template std::vector<T> Tensor::to_vector<T>() const;
HT_INSTANTIATE(float)
HT_INSTANTIATE(double)
HT_INSTANTIATE(Half)
HT_INSTANTIATE(BFloat16)
HT_INSTANTIATE(int64_t)
HT_INSTANTIATE(int32_t)
HT_INSTANTIATE(int16_t)
HT_INSTANTIATE(int8_t)
HT_INSTANTIATE(uint8_t)
HT_INSTANTIATE(bool)
#undef HT_INSTANTIATE

}  // namespace ht
