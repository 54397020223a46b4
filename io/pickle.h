// Python pickle, restricted to what checkpoints need: a reader VM for protocols 2-5 that only resolves an
// allowlist of globals (in the spirit of torch.load(weights_only=True)) and never runs code from a file, and a
// protocol-2 writer that emits the opcode patterns torch.save emits.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "halftorch/io/value.h"

namespace ht::io {

struct PickleLimits {
  size_t max_depth = 1000;               // nesting of containers in the result
  uint64_t max_values = 100'000'000;     // values in the result, counting shared subtrees once per reference
  size_t max_memo = 100'000'000;         // memo entries
};

// Resolves a BINPERSID id (the ('storage', type, key, location, numel[, view]) tuple) to a value; for storages,
// a 1-D tensor covering the whole storage in the storage's dtype.
using PersistentLoad = std::function<Value(const Value& pid)>;

// Runs the pickle in [data, data + size). `what` names the source in errors. Stops at STOP; trailing bytes are
// the caller's business, and `consumed` (when given) receives the number of bytes read.
Value unpickle(const uint8_t* data, size_t size, const PersistentLoad& persistent_load, const std::string& what,
               size_t* consumed = nullptr, const PickleLimits& limits = {});

// Rejects results with reference cycles, nesting deeper than limits.max_depth, or more than limits.max_values
// values; unpickle() runs it on every result.
void check_value_graph(const Value& root, const PickleLimits& limits, const std::string& what);

// Python 2 module names that protocol-2 pickles still use, mapped to Python 3's ("__builtin__" -> "builtins").
std::string normalize_module(const std::string& module);

// True when `module.name` is a global the reader accepts (the writer only emits these).
bool is_allowed_global(const std::string& module, const std::string& name);

// The torch storage class name for a dtype ("FloatStorage", ...), and back (nullopt-like: throws when unknown).
const char* storage_type_name(DType dtype);
DType dtype_of_storage_type(const std::string& name);

// How the writer refers to a tensor's storage: key of the data/<key> record and the storage's element count.
struct StorageRef {
  std::string key;
  int64_t numel = 0;
};
using PersistentId = std::function<StorageRef(const Tensor&)>;

// Pickles `v` in protocol 2 with tensors as torch._utils._rebuild_tensor_v2 over persistent storage ids.
std::string pickle(const Value& v, const PersistentId& persistent_id);

}  // namespace ht::io
