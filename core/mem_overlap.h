// What an in-place write checks about memory before it writes, as PyTorch's ATen/MemoryOverlap.h does: a tensor
// whose elements share memory (an expanded view) cannot take an elementwise result, and an input that shares part
// of its memory with the written tensor would be read after being overwritten.
#pragma once
#include <vector>

#include "halftorch/core/tensor.h"

namespace ht::detail {

// Whether t's elements share memory: Yes for a dim of stride 0 and size > 1 (expand), TooHard for other
// strides that are not dense (torch checks no further and lets those through).
enum class MemOverlap { No, Yes, TooHard };
MemOverlap has_internal_overlap(const Tensor& t);

// How the memory of a and b relates: Full when they are the same elements in the same order, Partial when some
// memory is shared otherwise, TooHard when either is not dense (not checked further, as in torch).
enum class MemOverlapStatus { Full, Partial, TooHard, No };
MemOverlapStatus overlap_status(const Tensor& a, const Tensor& b);

// The rules an in-place op writes under: the tensor it writes may not have elements that share memory, unless
// the op writes them one value each (fill_, masked_fill_, index_put_), and its inputs may not share memory with it.
struct WriteOverlap {
  bool allow_internal_overlap = false;
  std::vector<Tensor> no_partial_overlap;  // elementwise inputs: the same memory (x.add_(x)) is fine, part is not
  std::vector<Tensor> no_overlap;          // scatter_'s and index_put_'s inputs: no memory shared at all
  Tensor written;                          // the part of self the op writes, when not all of it (index_put_)
};
// Fails with torch's "unsupported operation" messages, naming `op`, when writing `self` breaks a rule.
void check_write_overlap(const Tensor& self, const char* op, const WriteOverlap& rules);

}  // namespace ht::detail
