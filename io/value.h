// Value: the variant tree a checkpoint holds (None, bool, int, float, str, bytes, Tensor, list, tuple, dict,
// and references to a few allowlisted Python globals such as dtypes), plus StateDict, the flat name -> Tensor map.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "halftorch/core/tensor.h"

namespace ht {

class Value;

// Raw bytes, kept apart from str as Python keeps bytes apart from str.
struct Bytes {
  std::string data;
  friend bool operator==(const Bytes&, const Bytes&) = default;
};

// A reference to a Python global by module and name (e.g. torch.float16). Only allowlisted globals are ever
// created by the reader and accepted by the writer, so a Global never means "run this code".
struct Global {
  std::string module, name;
  std::string full_name() const { return module + "." + name; }
  friend bool operator==(const Global&, const Global&) = default;
};

using ValueList = std::vector<Value>;

// A dict key: Python checkpoints use str keys (state_dicts) and int keys (optimizer state).
using DictKey = std::variant<std::string, int64_t>;
std::string key_str(const DictKey& k);

class Dict;

// Containers have reference semantics, as in Python: copying a Value shares its list/tuple/dict. This is what
// lets the pickle VM fill a memoized container after it was referenced, and keeps copies cheap.
class Value {
 public:
  enum class Kind { None, Bool, Int, Double, String, Bytes, Tensor, List, Tuple, Dict, Global };

  Value() = default;
  Value(std::nullptr_t) {}
  Value(bool b) : v_(b) {}
  // Any integer type (int, int64_t, size_t, ...) becomes a Python int.
  template <class T>
    requires(std::is_integral_v<T> && !std::is_same_v<T, bool>)
  Value(T v) : v_(int64_t(v)) {}
  Value(double v) : v_(v) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(Bytes b) : v_(std::move(b)) {}
  Value(Tensor t) : v_(std::move(t)) {}
  Value(Global g) : v_(std::move(g)) {}
  Value(std::shared_ptr<Dict> d) : v_(std::move(d)) {}

  static Value list(ValueList items = {});
  static Value tuple(ValueList items = {});
  static Value dict(bool ordered = false);

  Kind kind() const { return Kind(v_.index()); }
  const char* kind_name() const;
  bool is_none() const { return kind() == Kind::None; }
  bool is_bool() const { return kind() == Kind::Bool; }
  bool is_int() const { return kind() == Kind::Int; }
  bool is_double() const { return kind() == Kind::Double; }
  bool is_string() const { return kind() == Kind::String; }
  bool is_bytes() const { return kind() == Kind::Bytes; }
  bool is_tensor() const { return kind() == Kind::Tensor; }
  bool is_list() const { return kind() == Kind::List; }
  bool is_tuple() const { return kind() == Kind::Tuple; }
  bool is_dict() const { return kind() == Kind::Dict; }
  bool is_global() const { return kind() == Kind::Global; }
  bool is_container() const { return is_list() || is_tuple() || is_dict(); }

  // Typed access; each throws "[io] expected <kind>, got <kind>" on a mismatch.
  bool to_bool() const;
  int64_t to_int() const;
  double to_double() const;  // accepts int too, as Python would
  const std::string& to_string() const;
  const Bytes& to_bytes() const;
  const Tensor& to_tensor() const;
  const Global& to_global() const;
  // The items of a list or tuple (both are sequences).
  ValueList& items() const;
  Dict& to_dict() const;
  const std::shared_ptr<Dict>& dict_ptr() const;
  // Identity of the shared container (for memo tables and cycle checks); null for scalars.
  const void* container_id() const;

  // Convenience lookups on a dict value.
  const Value& operator[](const std::string& key) const;  // str dict key
  const Value& operator[](int64_t key) const;  // list/tuple index, or int dict key

 private:
  struct ListBox { ValueList items; };
  struct TupleBox { ValueList items; };
  std::variant<std::monostate, bool, int64_t, double, std::string, Bytes, Tensor, std::shared_ptr<ListBox>,
               std::shared_ptr<TupleBox>, std::shared_ptr<Dict>, Global>
      v_;
};

// Insertion-ordered dict. `ordered` records collections.OrderedDict (written back as one), and `attrs` holds
// attributes set through pickle BUILD, i.e. a state_dict's `_metadata`.
class Dict {
 public:
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  // Inserts or replaces (Python semantics: a replaced key keeps its first position).
  void set(DictKey key, Value value);
  const Value* find(const DictKey& key) const;
  Value* find(const DictKey& key);
  bool contains(const DictKey& key) const { return find(key) != nullptr; }
  const Value& at(const DictKey& key) const;  // throws "[io] no key ..." when absent
  const std::vector<std::pair<DictKey, Value>>& items() const { return items_; }
  void clear();

  bool ordered = false;
  std::shared_ptr<Dict> attrs;  // null when the dict had no BUILD state

 private:
  std::vector<std::pair<DictKey, Value>> items_;
  std::unordered_map<DictKey, size_t> index_;
};

// A state_dict: names -> tensors in insertion order, plus PyTorch's `_metadata` (module prefix -> version).
struct StateDict {
  std::vector<std::pair<std::string, Tensor>> tensors;
  // prefix ("" for the root module, "layer1.0.bn1", ...) -> {"version": n}. Empty when unknown.
  std::vector<std::pair<std::string, int64_t>> module_versions;

  void add(std::string name, Tensor t) { tensors.emplace_back(std::move(name), std::move(t)); }
  const Tensor* find(const std::string& name) const;
  size_t size() const { return tensors.size(); }
};

// StateDict -> OrderedDict value with `_metadata` attrs, exactly as torch's Module.state_dict() pickles.
Value to_value(const StateDict& sd);
// A dict value of tensors (dict or OrderedDict, `_metadata` kept) -> StateDict. Non-tensor entries are an error
// naming the key; a checkpoint that nests the state_dict (e.g. under "model") must be unwrapped by the caller.
StateDict to_state_dict(const Value& v);

// Depth-first walk over every tensor, with its path from the root joined by '/' (dict keys, list indices).
// Tensors under a dict at the root get their key as path ("conv1.weight"), as `halftorch inspect` prints.
void for_each_tensor(const Value& root, const std::function<void(const std::string& path, const Tensor&)>& fn);

}  // namespace ht
