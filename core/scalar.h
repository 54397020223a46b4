// Scalar: a number argument of an op that remembers how it was written (c10::Scalar). PyTorch's type promotion
// depends on it: uint8 * 2 stays uint8, uint8 * 2.0 is float32, bool + 1 is int64.
#pragma once
#include <concepts>
#include <cstdint>

#include "halftorch/core/dtype.h"

namespace ht {

class Scalar {
 public:
  template <std::floating_point F>
  Scalar(F value) : value_(double(value)), kind_(Kind::Floating) {}
  template <std::integral I>
  Scalar(I value) : value_(double(value)), kind_(std::same_as<I, bool> ? Kind::Boolean : Kind::Integral) {}

  double to_double() const { return value_; }
  bool is_floating_point() const { return kind_ == Kind::Floating; }
  bool is_integral() const { return kind_ == Kind::Integral; }
  bool is_boolean() const { return kind_ == Kind::Boolean; }
  // The dtype PyTorch gives a wrapped Python number in type promotion: the default float dtype (float32) for a
  // floating value, int64 for an integer, bool for a bool.
  DType wrapped_dtype() const { return is_floating_point() ? kFloat32 : is_integral() ? kInt64 : kBool; }
  Scalar operator-() const {
    Scalar s = *this;
    s.value_ = -value_;
    if (s.kind_ == Kind::Boolean) s.kind_ = Kind::Integral;
    return s;
  }

 private:
  enum class Kind : uint8_t { Floating, Integral, Boolean };
  double value_;
  Kind kind_;
};

}  // namespace ht
