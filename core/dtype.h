// DType: the storage formats a tensor can hold, PyTorch's names, and the one visitor from DType to a C++ type.
#pragma once
#include <cstdint>
#include <string>
#include <type_traits>

#include "halftorch/core/error.h"
#include "halftorch/core/half.h"

namespace ht {

enum class DType : uint8_t { Float32, Float16, BFloat16, Float64, Int64, Int32, Int16, Int8, UInt8, Bool };

inline constexpr DType kFloat32 = DType::Float32, kFloat = DType::Float32, kFloat16 = DType::Float16,
                       kHalf = DType::Float16, kBFloat16 = DType::BFloat16, kFloat64 = DType::Float64,
                       kDouble = DType::Float64, kInt64 = DType::Int64, kLong = DType::Int64,
                       kInt32 = DType::Int32, kInt = DType::Int32, kInt16 = DType::Int16, kInt8 = DType::Int8,
                       kUInt8 = DType::UInt8, kBool = DType::Bool;
inline constexpr int kNumDTypes = 10;

// The type a kernel computes in: float for the 16-bit floats (store small, compute in float).
template <class T> struct OpMath { using type = T; };
template <> struct OpMath<Half> { using type = float; };
template <> struct OpMath<BFloat16> { using type = float; };
template <class T> using opmath_t = typename OpMath<T>::type;

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return kFloat32; }
template <> constexpr DType dtype_of<Half>() { return kFloat16; }
template <> constexpr DType dtype_of<BFloat16>() { return kBFloat16; }
template <> constexpr DType dtype_of<double>() { return kFloat64; }
template <> constexpr DType dtype_of<int64_t>() { return kInt64; }
template <> constexpr DType dtype_of<int32_t>() { return kInt32; }
template <> constexpr DType dtype_of<int16_t>() { return kInt16; }
template <> constexpr DType dtype_of<int8_t>() { return kInt8; }
template <> constexpr DType dtype_of<uint8_t>() { return kUInt8; }
template <> constexpr DType dtype_of<bool>() { return kBool; }

constexpr size_t element_size(DType t) {
  switch (t) {
    case DType::Float64: case DType::Int64: return 8;
    case DType::Float32: case DType::Int32: return 4;
    case DType::Float16: case DType::BFloat16: case DType::Int16: return 2;
    default: return 1;
  }
}
constexpr bool is_floating(DType t) {
  return t == kFloat32 || t == kFloat16 || t == kBFloat16 || t == kFloat64;
}
constexpr bool is_integral(DType t, bool include_bool = false) {
  return !is_floating(t) && (include_bool || t != kBool);
}

// PyTorch's name without "torch." ("float32", "bfloat16", "int64", "bool", ...).
const char* dtype_name(DType t);
// Accepts PyTorch's names and aliases ("float", "half", "long", ...); throws on anything else.
DType dtype_from_name(const std::string& name);
// The result dtype of a binary op, by PyTorch's promotion lattice for tensors of equal category.
DType promote_types(DType a, DType b);

template <class T> struct TypeTag { using type = T; };

// Calls f(TypeTag<T>{}) with T the C++ type of t.
template <class F>
decltype(auto) visit_dtype(DType t, F&& f) {
  switch (t) {
    case DType::Float32: return f(TypeTag<float>{});
    case DType::Float16: return f(TypeTag<Half>{});
    case DType::BFloat16: return f(TypeTag<BFloat16>{});
    case DType::Float64: return f(TypeTag<double>{});
    case DType::Int64: return f(TypeTag<int64_t>{});
    case DType::Int32: return f(TypeTag<int32_t>{});
    case DType::Int16: return f(TypeTag<int16_t>{});
    case DType::Int8: return f(TypeTag<int8_t>{});
    case DType::UInt8: return f(TypeTag<uint8_t>{});
    case DType::Bool: return f(TypeTag<bool>{});
  }
  fail("[dtype] invalid dtype code ", int(t));
}

// Same, restricted to the floating dtypes; other dtypes throw "[op] expected a floating dtype".
template <class F>
decltype(auto) visit_floating(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::Float32: return f(TypeTag<float>{});
    case DType::Float16: return f(TypeTag<Half>{});
    case DType::BFloat16: return f(TypeTag<BFloat16>{});
    case DType::Float64: return f(TypeTag<double>{});
    default: fail("[", op, "] expected a floating-point dtype, got ", dtype_name(t));
  }
}

}  // namespace ht
