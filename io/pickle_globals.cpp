// The pickle allowlist: which Python globals a checkpoint may name, and torch's storage classes.
#include <unordered_set>

#include "io/pickle.h"

namespace ht::io {

namespace {

struct StorageTypeInfo {
  const char* name;
  DType dtype;
};
constexpr StorageTypeInfo kStorageTypes[] = {
    {"FloatStorage", kFloat32}, {"HalfStorage", kFloat16}, {"BFloat16Storage", kBFloat16},
    {"DoubleStorage", kFloat64}, {"LongStorage", kInt64},  {"IntStorage", kInt32},
    {"ShortStorage", kInt16},   {"CharStorage", kInt8},    {"ByteStorage", kUInt8},
    {"BoolStorage", kBool}};

// torch dtype objects that may appear as values (e.g. `torch.float16` in a config dict).
constexpr const char* kTorchDTypes[] = {"float32", "float", "float16", "half", "bfloat16", "float64", "double",
                                         "int64", "long", "int32", "int", "int16", "short", "int8", "uint8",
                                         "bool", "complex32", "complex64", "complex128", "cfloat", "cdouble"};

}  // namespace

std::string normalize_module(const std::string& module) {
  if (module == "__builtin__") return "builtins";
  if (module == "copy_reg") return "copyreg";
  return module;
}

const char* storage_type_name(DType dtype) {
  for (const auto& s : kStorageTypes)
    if (s.dtype == dtype) return s.name;
  fail_io("[io] no torch storage type for dtype ", dtype_name(dtype));
}

DType dtype_of_storage_type(const std::string& name) {
  for (const auto& s : kStorageTypes)
    if (name == s.name) return s.dtype;
  fail_io("[io] unsupported storage type torch.", name);
}

bool is_allowed_global(const std::string& module_in, const std::string& name) {
  const std::string module = normalize_module(module_in);
  static const std::unordered_set<std::string> allowed = {
      "collections.OrderedDict", "collections.Counter", "torch._utils._rebuild_tensor",
      "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor_v3", "torch._utils._rebuild_parameter",
      "torch._utils._rebuild_parameter_with_state", "torch._tensor._rebuild_from_type_v2", "torch.Tensor",
      "torch.nn.parameter.Parameter", "torch.storage.UntypedStorage", "torch.device", "torch.Size",
      "_codecs.encode", "builtins.set", "builtins.frozenset", "builtins.bytearray"};
  std::string full = module + "." + name;
  if (allowed.count(full)) return true;
  if (module == "torch") {
    for (const auto& s : kStorageTypes)
      if (name == s.name) return true;
    for (const char* d : kTorchDTypes)
      if (name == d) return true;
  }
  return false;
}

}  // namespace ht::io
