// Whole-checkpoint operations used by the `halftorch` tool and available to programs: casting every floating
// tensor to another dtype (sharing kept), a Python-like repr of values, and tensor comparison.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "halftorch/io/value.h"

namespace ht::io {

// A copy of `v` (containers rebuilt, order and non-tensor values kept) with every floating-point tensor cast
// to `to` (round to nearest even, as PyTorch's .half() / .bfloat16()); integer and bool tensors untouched.
// Views of one storage still share one (cast) storage. `overflows` receives (tensor path, count) for tensors
// whose finite values became inf.
Value cast_floating(const Value& v, DType to, std::vector<std::pair<std::string, int64_t>>* overflows = nullptr);

// Python-like text of a value: None, True, 3, 0.001, 'text', b'\x00', (1, 2), [..], {..}; tensors as
// tensor(float16, [64, 3, 7, 7]).
std::string repr(const Value& v);

// Largest |a - b| over all elements (both cast to double; NaN equals NaN, NaN against a number is inf).
// a and b must have the same shape.
double max_abs_diff(const Tensor& a, const Tensor& b);

}  // namespace ht::io
