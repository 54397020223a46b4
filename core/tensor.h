// Tensor: a cheap handle to (storage, offset, sizes, strides, dtype) plus autograd state. Views share storage.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/memory_format.h"
#include "core/scalar.h"
#include "core/storage.h"

namespace ht {

namespace autograd { struct Node; }
class Tensor;
namespace detail {
[[noreturn]] void fail_undefined_tensor();
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
  // In-place writes (not recorded by autograd) bump version(); on a leaf that requires grad they need NoGradGuard.
  Tensor& copy_(const Tensor& src);  // broadcasts src, converts dtype and device
  Tensor& fill_(double value);
  // How many in-place writes this tensor's storage has seen (x._version in PyTorch).
  uint64_t version() const { return storage()->version(); }
  Tensor& zero_() { return fill_(0.0); }

  // --- autograd
  bool requires_grad() const { return impl()->requires_grad; }
  Tensor& set_requires_grad(bool r);
  Tensor& requires_grad_(bool r = true) { return set_requires_grad(r); }
  Tensor grad() const { return impl()->grad ? Tensor(impl()->grad) : Tensor(); }
  void set_grad(const Tensor& g) { impl()->grad = g.impl_; }
  const std::shared_ptr<autograd::Node>& grad_fn() const { return impl()->grad_fn; }
  bool is_leaf() const { return impl()->grad_fn == nullptr; }
  std::string grad_fn_name() const;  // the recording op's name, empty for leaves
  Tensor detach() const;  // shares storage, no history
  void backward() const;
  void backward(const Tensor& gradient) const;

  std::string str() const;  // printed like PyTorch's repr

  // --- arithmetic sugar over the ops in core/ops.h
  Tensor operator-() const;

 private:
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
// Copies `values` into a new CPU tensor of T's dtype, then moves it to opt.device (opt.dtype is ignored).
template <class T> Tensor from_vector(const std::vector<T>& values, Shape sizes, Device device = kCPU);
template <class T> Tensor tensor(std::initializer_list<T> values) {
  return from_vector(std::vector<T>(values), {int64_t(values.size())});
}

namespace detail {
// Elementwise kernels vectorise only row-major views, so a destination that is not row-major (channels_last,
// say) is walked in its memory order: kernel_order is that order (empty when already row-major), and in_order
// views a tensor, detached, with its dims in it. Apply it to the destination and every operand alike.
Shape kernel_order(const Tensor& t);
Tensor in_order(const Tensor& t, const Shape& order);
}  // namespace detail

// Seeded random numbers (a per-process generator; see core/random.h for explicit generators).
void manual_seed(uint64_t seed);
Tensor rand(Shape sizes, TensorOptions opt = {});   // U[0, 1)
Tensor randn(Shape sizes, TensorOptions opt = {});  // N(0, 1)

}  // namespace ht
