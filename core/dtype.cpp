// DType names and promotion.
#include "core/dtype.h"

#include <map>

namespace ht {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::Float32: return "float32";
    case DType::Float16: return "float16";
    case DType::BFloat16: return "bfloat16";
    case DType::Float64: return "float64";
    case DType::Int64: return "int64";
    case DType::Int32: return "int32";
    case DType::Int16: return "int16";
    case DType::Int8: return "int8";
    case DType::UInt8: return "uint8";
    case DType::Bool: return "bool";
  }
  return "invalid";
}

DType dtype_from_name(const std::string& name) {
  static const std::map<std::string, DType> names = {
      {"float32", kFloat32}, {"float", kFloat32},  {"float16", kFloat16}, {"half", kFloat16},
      {"bfloat16", kBFloat16}, {"float64", kFloat64}, {"double", kFloat64}, {"int64", kInt64},
      {"long", kInt64},      {"int32", kInt32},    {"int", kInt32},       {"int16", kInt16},
      {"short", kInt16},     {"int8", kInt8},      {"uint8", kUInt8},     {"bool", kBool}};
  std::string n = name.rfind("torch.", 0) == 0 ? name.substr(6) : name;
  auto it = names.find(n);
  HT_CHECK(it != names.end(), "[dtype] unknown dtype name '", name, "'");
  return it->second;
}

DType promote_types(DType a, DType b) {
  if (a == b) return a;
  if (a == kBool) return b;
  if (b == kBool) return a;
  bool fa = is_floating(a), fb = is_floating(b);
  if (fa != fb) return fa ? a : b;
  if (fa) {
    if (a == kFloat64 || b == kFloat64) return kFloat64;
    return kFloat32;  // f32 with a 16-bit float, or f16 with bf16
  }
  // integers: uint8 with a signed type widens as PyTorch does (int8 + uint8 -> int16)
  auto rank = [](DType t) { return t == kInt8 ? 1 : t == kUInt8 ? 1 : t == kInt16 ? 2 : t == kInt32 ? 3 : 4; };
  if ((a == kUInt8 && b == kInt8) || (a == kInt8 && b == kUInt8)) return kInt16;
  return rank(a) >= rank(b) ? a : b;
}

}  // namespace ht
