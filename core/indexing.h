// libtorch's tensor indexing (torch::indexing): x.index({Slice(0, 2), 1, None, Ellipsis}) is Python's
// x[0:2, 1, None, ...]; a bool tensor selects by mask, an int64 tensor picks along one dim (index_select), and
// x.index_put_({...}, v) writes through the same indices (recorded by autograd like the other in-place ops).
// Like PyTorch: an integer removes its dim, None inserts one, Ellipsis stands for the dims not named.
// halftorch takes at most one tensor index per call (PyTorch broadcasts several together).
#pragma once
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <variant>
#include <vector>

#include "halftorch/core/tensor.h"

namespace ht::indexing {

struct NoneIndex {};
struct EllipsisIndex {};
inline constexpr NoneIndex None{};
inline constexpr EllipsisIndex Ellipsis{};

// One slot of a Slice: a number, or None / std::nullopt for Python's empty slot.
struct SliceBound {
  SliceBound(std::nullopt_t = std::nullopt) {}  // NOLINT: implicit, as the slot is written bare
  SliceBound(NoneIndex) {}                      // NOLINT
  SliceBound(int64_t v) : value(v) {}           // NOLINT
  SliceBound(int v) : value(v) {}               // NOLINT
  std::optional<int64_t> value;
};

// Slice(start, stop, step): Slice() is ":", Slice(1, None, 2) is "1::2".
struct Slice {
  Slice(SliceBound start = {}, SliceBound stop = {}, SliceBound step = {})
      : start(start.value), stop(stop.value), step(step.value) {}
  std::optional<int64_t> start, stop, step;
};

class TensorIndex {
 public:
  TensorIndex(int64_t i) : v_(i) {}
  TensorIndex(int i) : v_(int64_t(i)) {}
  TensorIndex(Slice s) : v_(s) {}
  TensorIndex(NoneIndex n) : v_(n) {}
  TensorIndex(EllipsisIndex e) : v_(e) {}
  TensorIndex(Tensor t) : v_(std::move(t)) {}
  const auto& value() const { return v_; }

 private:
  std::variant<int64_t, Slice, NoneIndex, EllipsisIndex, Tensor> v_;
};

}  // namespace ht::indexing

namespace ht::detail {
// The flat (row-major) positions in `self` that `indices` pick, shaped as self.index(indices) is.
Tensor index_positions(const Tensor& self, const std::vector<indexing::TensorIndex>& indices);
}  // namespace ht::detail
