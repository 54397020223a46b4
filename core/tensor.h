// Tensor: a cheap handle to (storage, offset, sizes, strides, dtype) plus autograd state. Views share storage.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "halftorch/core/dtype.h"
#include "halftorch/core/memory_format.h"
#include "halftorch/core/scalar.h"
#include "halftorch/core/storage.h"

namespace ht {

namespace autograd { struct Node; }
namespace indexing { class TensorIndex; }
class Tensor;
struct TensorImpl;
namespace detail {
[[noreturn]] void fail_undefined_tensor();
// Re-derives a view's history when its base has taken a new one since (core/autograd_inplace.cpp).
void sync_view_history(TensorImpl& view);
}

struct TensorImpl {
  StoragePtr storage;
  int64_t offset = 0;  // in elements
  Shape sizes, strides;
  DType dtype = kFloat32;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;          // accumulated gradient (leaves), same dtype as the tensor
  std::shared_ptr<autograd::Node> grad_fn;   // the op that made this tensor, when recorded
  // Leaves only: run once per backward pass after the pass has accumulated all of this leaf's gradient
  // (autograd::register_grad_ready_hook); keyed by an id so that their owner can remove them.
  std::vector<std::pair<int64_t, std::function<void(const Tensor&)>>> grad_ready_hooks;
  // Views (every view goes through Tensor::as_strided): the tensor at the root of the view chain, and that
  // base's history when this view's history was last derived from it. An in-place write to the base (or to
  // another view of it) gives the base a new history; the view then re-derives its own from it on next use, as
  // PyTorch's views do (AsStridedBackward0), so that gradients through the view see the write.
  std::shared_ptr<TensorImpl> view_base;
  std::weak_ptr<autograd::Node> view_base_fn;
};

struct TensorOptions {
  DType dtype = kFloat32;
  Device device = kCPU;
  bool requires_grad = false;
  // The layout of a new tensor (empty, zeros, ones, full, rand, randn): Contiguous or ChannelsLast.
  MemoryFormat memory_format = MemoryFormat::Contiguous;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}
  // A view on existing storage; no copy.
  Tensor(StoragePtr storage, DType dtype, Shape sizes, Shape strides, int64_t offset = 0);

  bool defined() const { return impl_ != nullptr; }
  // Every accessor goes through impl(): on an undefined tensor (default-constructed, or the grad() of a tensor
  // before any backward) it throws instead of dereferencing null, as libtorch does.
  TensorImpl* impl() const {
    if (!impl_) detail::fail_undefined_tensor();
    return impl_.get();
  }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

  // --- metadata
  DType dtype() const { return impl()->dtype; }
  Device device() const { return impl()->storage->device(); }
  bool is_cuda() const { return device().is_cuda(); }
  const Shape& sizes() const { return impl()->sizes; }
  const Shape& strides() const { return impl()->strides; }
  const Shape& shape() const { return sizes(); }
  int64_t size(int64_t dim) const;
  int64_t stride(int64_t dim) const;
  int64_t dim() const { return int64_t(sizes().size()); }
  int64_t numel() const;
  int64_t storage_offset() const { return impl()->offset; }
  size_t element_size() const { return ht::element_size(dtype()); }
  size_t nbytes() const { return size_t(numel()) * element_size(); }
  // Contiguous in `format` (PyTorch's rules: a dim of size 1 may have any stride, an empty tensor is contiguous).
  bool is_contiguous(MemoryFormat format = MemoryFormat::Contiguous) const;
  // A permutation of a contiguous tensor: every element at its own offset, no gaps.
  bool is_non_overlapping_and_dense() const;
  // ChannelsLast when the strides are ordered like NHWC, dense or not, else Contiguous; exactly PyTorch's
  // suggest_memory_format (a contiguous N1HW or NC11 can be both; see is_channels_last_strides).
  MemoryFormat suggest_memory_format() const;
  bool is_floating_point() const { return is_floating(dtype()); }
  const StoragePtr& storage() const { return impl()->storage; }
  void* raw_data() const;  // pointer to element 0 of this view (offset applied)
  template <class T> T* data_ptr() const {
    HT_CHECK(dtype_of<T>() == dtype(), "[data_ptr] tensor has dtype ", dtype_name(dtype()),
             ", asked for ", dtype_name(dtype_of<T>()));
    return static_cast<T*>(raw_data());
  }
  // The value of a one-element tensor, converted to T (copies from the GPU when needed).
  template <class T> T item() const;
  double item_double() const;
  // The whole tensor as a flat vector of T (converted), in logical (row-major) order. For tests and tools.
  template <class T> std::vector<T> to_vector() const;

  // --- views (no copy)
  Tensor view(Shape sizes) const;
  Tensor reshape(Shape sizes) const;  // view when possible, else a copy
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor permute(Shape dims) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor t() const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor select(int64_t dim, int64_t index) const;
  Tensor expand(Shape sizes) const;
  Tensor squeeze() const;
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor as_strided(Shape sizes, Shape strides, int64_t offset) const;

  // --- copies and conversions
  // *this when already contiguous in `format`, else a copy in it (Preserve is refused, as in PyTorch).
  Tensor contiguous(MemoryFormat format = MemoryFormat::Contiguous) const;
  // A copy; Preserve keeps the strides of a dense tensor and the stride order of any other.
  Tensor clone(MemoryFormat format = MemoryFormat::Preserve) const;
  // The conversions keep the layout (torch.preserve_format) and return *this when nothing changes.
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;
  Tensor to(Device device, DType dtype) const;
  Tensor to(Device device, DType dtype, bool force_copy, MemoryFormat format = MemoryFormat::Preserve) const;
  // x.to(memory_format=...): *this when suggest_memory_format() is already `format`, else a copy in it.
  Tensor to(MemoryFormat format) const;
  Tensor cpu() const { return to(kCPU); }
  Tensor cuda() const { return to(kCUDA); }
  Tensor half() const { return to(kFloat16); }
  Tensor float_() const { return to(kFloat32); }
  // In-place writes bump version(); on a leaf that requires grad they need NoGradGuard. Recorded by autograd when
  // grad mode is on and a tensor involved requires grad (copy_: the gradient goes to src; fill_: none).
  Tensor& copy_(const Tensor& src);  // broadcasts src, converts dtype and device
  Tensor& fill_(double value);
  // How many in-place writes this tensor's storage has seen (x._version in PyTorch).
  uint64_t version() const { return storage()->version(); }
  Tensor& zero_();

  // --- autograd
  bool requires_grad() const { return synced()->requires_grad; }
  Tensor& set_requires_grad(bool r);
  Tensor& requires_grad_(bool r = true) { return set_requires_grad(r); }
  Tensor grad() const { return impl()->grad ? Tensor(impl()->grad) : Tensor(); }
  void set_grad(const Tensor& g) { impl()->grad = g.impl_; }
  const std::shared_ptr<autograd::Node>& grad_fn() const { return synced()->grad_fn; }
  bool is_leaf() const { return grad_fn() == nullptr; }
  std::string grad_fn_name() const;  // the recording op's name, empty for leaves
  Tensor detach() const;  // shares storage, no history
  // Without a gradient the tensor must have one element (its gradient is 1); retain_graph keeps the graph for
  // another backward, as in PyTorch.
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false) const;

  std::string str() const;  // printed like PyTorch's repr

  // --- libtorch's method spellings of the ops in core/ops.h (core/tensor_methods.cpp). Where a list of dims is
  // taken a single dim is too (x.sum(1)), as libtorch's IntArrayRef allows.
  Tensor sum() const;
  Tensor sum(Shape dims, bool keepdim = false) const;
  Tensor sum(int64_t dim, bool keepdim = false) const;
  Tensor mean() const;
  Tensor mean(Shape dims, bool keepdim = false) const;
  Tensor mean(int64_t dim, bool keepdim = false) const;
  Tensor max() const;
  std::tuple<Tensor, Tensor> max(int64_t dim, bool keepdim = false) const;  // values, int64 indices
  Tensor min() const;
  std::tuple<Tensor, Tensor> min(int64_t dim, bool keepdim = false) const;
  Tensor argmax() const;  // index into the flattened tensor
  Tensor argmax(int64_t dim, bool keepdim = false) const;
  Tensor argmin() const;
  Tensor argmin(int64_t dim, bool keepdim = false) const;
  Tensor abs() const;
  Tensor neg() const;
  Tensor exp() const;
  Tensor log() const;
  Tensor sqrt() const;
  Tensor rsqrt() const;
  Tensor square() const;
  Tensor pow(double exponent) const;
  Tensor relu() const;
  Tensor sigmoid() const;
  Tensor tanh() const;
  Tensor clamp(double min, double max) const;
  Tensor matmul(const Tensor& other) const;
  Tensor softmax(int64_t dim) const;
  Tensor log_softmax(int64_t dim) const;
  Tensor eq(const Tensor& other) const;
  Tensor ne(const Tensor& other) const;
  Tensor lt(const Tensor& other) const;
  Tensor le(const Tensor& other) const;
  Tensor gt(const Tensor& other) const;
  Tensor ge(const Tensor& other) const;
  Tensor eq(Scalar other) const;
  Tensor ne(Scalar other) const;
  Tensor lt(Scalar other) const;
  Tensor le(Scalar other) const;
  Tensor gt(Scalar other) const;
  Tensor ge(Scalar other) const;
  Tensor operator-() const;
  Tensor var(bool unbiased = true) const;
  Tensor var(Shape dims, bool unbiased = true, bool keepdim = false) const;
  Tensor var(int64_t dim, bool unbiased = true, bool keepdim = false) const;
  // a literal x.var(1) is a dim, not `unbiased` (an int converts to bool and int64_t alike)
  Tensor var(int dim, bool unbiased = true, bool keepdim = false) const { return var(int64_t(dim), unbiased, keepdim); }
  Tensor std(bool unbiased = true) const;
  Tensor std(Shape dims, bool unbiased = true, bool keepdim = false) const;
  Tensor std(int64_t dim, bool unbiased = true, bool keepdim = false) const;
  Tensor std(int dim, bool unbiased = true, bool keepdim = false) const { return std(int64_t(dim), unbiased, keepdim); }
  Tensor norm(double p = 2) const;
  Tensor norm(double p, Shape dims, bool keepdim = false) const;
  Tensor norm(double p, int64_t dim, bool keepdim = false) const;
  Tensor cumsum(int64_t dim) const;
  Tensor masked_fill(const Tensor& mask, Scalar value) const;
  Tensor index_select(int64_t dim, const Tensor& index) const;
  Tensor gather(int64_t dim, const Tensor& index) const;
  std::tuple<Tensor, Tensor> sort(int64_t dim = -1, bool descending = false) const;
  Tensor argsort(int64_t dim = -1, bool descending = false) const;
  std::tuple<Tensor, Tensor> topk(int64_t k, int64_t dim = -1, bool largest = true, bool sorted = true) const;
  std::vector<Tensor> chunk(int64_t chunks, int64_t dim = 0) const;
  std::vector<Tensor> split(int64_t split_size, int64_t dim = 0) const;
  Tensor isnan() const;
  Tensor isinf() const;
  Tensor isfinite() const;
  Tensor mm(const Tensor& other) const;
  Tensor bmm(const Tensor& other) const;
  Tensor mv(const Tensor& vec) const;

  // --- in-place arithmetic (core/ops_inplace.cpp), recorded by autograd like PyTorch's: the tensor takes the
  // op's history (grad_fn AddBackward0 ...), its version() moves on, and a backward that saved its old value
  // fails. A leaf that requires grad, or a view of a tensor that requires grad, is refused outside NoGradGuard.
  // The result is cast to this tensor's dtype; a float result into an integral tensor is refused, as in PyTorch.
  Tensor& add_(const Tensor& other, double alpha = 1);
  Tensor& sub_(const Tensor& other, double alpha = 1);
  Tensor& mul_(const Tensor& other);
  Tensor& div_(const Tensor& other);
  Tensor& add_(Scalar other);
  Tensor& sub_(Scalar other);
  Tensor& mul_(Scalar other);
  Tensor& div_(Scalar other);
  Tensor& clamp_(double min, double max);
  // x.index({Slice(0, 2), 1, None, Ellipsis}) and its write; see core/indexing.h
  Tensor index(std::initializer_list<indexing::TensorIndex> indices) const;
  Tensor index(const std::vector<indexing::TensorIndex>& indices) const;
  Tensor& index_put_(const std::vector<indexing::TensorIndex>& indices, const Tensor& values);
  Tensor& index_put_(const std::vector<indexing::TensorIndex>& indices, Scalar value);
  Tensor& scatter_(int64_t dim, const Tensor& index, const Tensor& src);
  Tensor& scatter_(int64_t dim, const Tensor& index, Scalar value);
  Tensor& masked_fill_(const Tensor& mask, Scalar value);
  Tensor& operator+=(const Tensor& other) { return add_(other); }
  Tensor& operator-=(const Tensor& other) { return sub_(other); }
  Tensor& operator*=(const Tensor& other) { return mul_(other); }
  Tensor& operator/=(const Tensor& other) { return div_(other); }
  Tensor& operator+=(Scalar other) { return add_(other); }
  Tensor& operator-=(Scalar other) { return sub_(other); }
  Tensor& operator*=(Scalar other) { return mul_(other); }
  Tensor& operator/=(Scalar other) { return div_(other); }

 private:
  // impl() with a view's history brought up to date with its base's (see TensorImpl::view_base)
  TensorImpl* synced() const {
    TensorImpl* i = impl();
    if (i->view_base) detail::sync_view_history(*i);
    return i;
  }
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);
std::string shape_str(const Shape& s);
int64_t numel_of(const Shape& s);
// Wraps a possibly negative dim into [0, ndim); throws "[op] dim d out of range for a k-d tensor".
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);

// --- factories
// Uninitialised, laid out in opt.memory_format: empty({N, C, H, W}, {.memory_format = MemoryFormat::ChannelsLast}).
Tensor empty(Shape sizes, TensorOptions opt = {});
// Uninitialised with exactly these strides (opt.memory_format is not used).
Tensor empty_strided(Shape sizes, Shape strides, TensorOptions opt = {});
// The *_like factories take t's shape, dtype and device; Preserve keeps its layout as clone() does.
Tensor empty_like(const Tensor& t, MemoryFormat format = MemoryFormat::Preserve);
Tensor zeros(Shape sizes, TensorOptions opt = {});
Tensor ones(Shape sizes, TensorOptions opt = {});
Tensor full(Shape sizes, double value, TensorOptions opt = {});
Tensor zeros_like(const Tensor& t, MemoryFormat format = MemoryFormat::Preserve);
Tensor ones_like(const Tensor& t, MemoryFormat format = MemoryFormat::Preserve);
Tensor full_like(const Tensor& t, double value, MemoryFormat format = MemoryFormat::Preserve);
// [start, end) in steps; without options the dtype is int64 when every argument is an integer, else float32
// (torch.arange's inference); with options, theirs.
Tensor arange(Scalar end);
Tensor arange(Scalar end, TensorOptions opt);
Tensor arange(Scalar start, Scalar end, Scalar step = 1);
Tensor arange(Scalar start, Scalar end, Scalar step, TensorOptions opt);
Tensor scalar_tensor(double value, TensorOptions opt = {});
// Borrows `data`; nothing is copied and nothing freed.
Tensor from_blob(void* data, Shape sizes, DType dtype, Device device = kCPU);
// Borrows `data` and calls deleter(data) when the last tensor on it goes (libtorch's from_blob with a deleter).
Tensor from_blob(void* data, Shape sizes, std::function<void(void*)> deleter, TensorOptions opt = {});
Tensor from_blob(void* data, Shape sizes, TensorOptions opt);
// --- more factories, with torch's defaults (core/factory.cpp; the random ones in core/factory_random.cpp)
Tensor eye(int64_t n, TensorOptions opt = {});
Tensor eye(int64_t n, int64_t m, TensorOptions opt = {});
Tensor linspace(double start, double end, int64_t steps, TensorOptions opt = {});
// Uniform integers in [low, high); int64 unless opt says otherwise (torch.randint's default).
Tensor randint(int64_t high, Shape sizes, TensorOptions opt = {.dtype = kInt64});
Tensor randint(int64_t low, int64_t high, Shape sizes, TensorOptions opt = {.dtype = kInt64});
Tensor randperm(int64_t n, TensorOptions opt = {.dtype = kInt64});
Tensor rand_like(const Tensor& t);
Tensor randn_like(const Tensor& t);
// Copies `values` into a new CPU tensor of T's dtype, then moves it to opt.device (opt.dtype is ignored).
template <class T> Tensor from_vector(const std::vector<T>& values, Shape sizes, Device device = kCPU);
template <class T> Tensor tensor(std::initializer_list<T> values) {
  return from_vector(std::vector<T>(values), {int64_t(values.size())});
}
// Nested lists, as torch::tensor({{1, 2}, {3, 4}}): rows of equal length; like libtorch, integers give int64 and
// floating values float32 (the default dtype); the TensorOptions overload takes opt.dtype.
namespace detail {
DType nested_default_dtype(bool floating, bool boolean);
Tensor stack_planes(const std::vector<Tensor>& planes);  // cat along a new dim 0
}
template <class T> Tensor tensor(std::initializer_list<std::initializer_list<T>> rows, TensorOptions opt) {
  std::vector<T> flat;
  int64_t width = rows.size() ? int64_t(rows.begin()->size()) : 0;
  for (const auto& r : rows) {
    HT_CHECK(int64_t(r.size()) == width, "[tensor] expected rows of length ", width, ", got one of length ", r.size());
    flat.insert(flat.end(), r.begin(), r.end());
  }
  return from_vector(flat, {int64_t(rows.size()), width}).to(opt.device, opt.dtype);
}
template <class T> Tensor tensor(std::initializer_list<std::initializer_list<T>> rows) {
  return tensor(rows, {.dtype = detail::nested_default_dtype(std::is_floating_point_v<T>, std::is_same_v<T, bool>)});
}
template <class T>
Tensor tensor(std::initializer_list<std::initializer_list<std::initializer_list<T>>> planes, TensorOptions opt) {
  std::vector<Tensor> parts;
  for (const auto& p : planes) parts.push_back(tensor(p, opt).unsqueeze(0));
  HT_CHECK(!parts.empty(), "[tensor] expected at least one plane");
  Shape s = parts[0].sizes();
  for (const auto& t : parts)
    HT_CHECK(t.sizes() == s, "[tensor] expected planes of shape ", shape_str(s), ", got ", shape_str(t.sizes()));
  return detail::stack_planes(parts);
}
template <class T> Tensor tensor(std::initializer_list<std::initializer_list<std::initializer_list<T>>> planes) {
  return tensor(planes, {.dtype = detail::nested_default_dtype(std::is_floating_point_v<T>, std::is_same_v<T, bool>)});
}

namespace detail {
// Elementwise kernels vectorise only row-major views, so a destination that is not row-major (channels_last,
// say) is walked in its memory order: kernel_order is that order (empty when already row-major), and in_order
// views a tensor, detached, with its dims in it. Apply it to the destination and every operand alike.
Shape kernel_order(const Tensor& t);
Tensor in_order(const Tensor& t, const Shape& order);
// src's values (broadcast to t's shape, cast to its dtype) written into t, moving t's version counter: copy_'s
// write without its checks or recording, for in-place ops that check and record at their own entry.
void write_values(const Tensor& t, const Tensor& src);
// x.slice recorded as `name` (split and chunk give views PyTorch calls SplitBackward0)
Tensor slice_as(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step, const char* name);
}  // namespace detail

// Seeded random numbers (a per-process generator; see core/random.h for explicit generators).
void manual_seed(uint64_t seed);
Tensor rand(Shape sizes, TensorOptions opt = {});   // U[0, 1)
Tensor randn(Shape sizes, TensorOptions opt = {});  // N(0, 1)

}  // namespace ht
