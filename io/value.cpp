// Value tree accessors, StateDict conversions and the tensor walk used by the tool and the writers.
#include "io/value.h"

namespace ht {

std::string key_str(const DictKey& k) {
  if (const auto* s = std::get_if<std::string>(&k)) return *s;
  return std::to_string(std::get<int64_t>(k));
}

void Dict::set(DictKey key, Value value) {
  auto it = index_.find(key);
  if (it != index_.end()) {
    items_[it->second].second = std::move(value);
    return;
  }
  index_.emplace(key, items_.size());
  items_.emplace_back(std::move(key), std::move(value));
}

const Value* Dict::find(const DictKey& key) const {
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &items_[it->second].second;
}

Value* Dict::find(const DictKey& key) {
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &items_[it->second].second;
}

const Value& Dict::at(const DictKey& key) const {
  const Value* v = find(key);
  HT_CHECK_IO(v != nullptr, "[io] no key '", key_str(key), "' in dict");
  return *v;
}

void Dict::clear() {
  items_.clear();
  index_.clear();
  attrs.reset();
}

Value Value::list(ValueList items) {
  Value v;
  v.v_ = std::make_shared<ListBox>(ListBox{std::move(items)});
  return v;
}

Value Value::tuple(ValueList items) {
  Value v;
  v.v_ = std::make_shared<TupleBox>(TupleBox{std::move(items)});
  return v;
}

Value Value::dict(bool ordered) {
  auto d = std::make_shared<Dict>();
  d->ordered = ordered;
  return Value(std::move(d));
}

const char* Value::kind_name() const {
  static const char* names[] = {"None", "bool", "int", "float", "str", "bytes", "Tensor",
                                "list", "tuple", "dict", "global"};
  return names[v_.index()];
}

namespace {
[[noreturn]] void kind_error(const Value& v, const char* want) {
  fail_io("[io] expected ", want, ", got ", v.kind_name());
}
}  // namespace

bool Value::to_bool() const {
  if (!is_bool()) kind_error(*this, "bool");
  return std::get<bool>(v_);
}
int64_t Value::to_int() const {
  if (!is_int()) kind_error(*this, "int");
  return std::get<int64_t>(v_);
}
double Value::to_double() const {
  if (is_int()) return double(std::get<int64_t>(v_));
  if (!is_double()) kind_error(*this, "float");
  return std::get<double>(v_);
}
const std::string& Value::to_string() const {
  if (!is_string()) kind_error(*this, "str");
  return std::get<std::string>(v_);
}
const Bytes& Value::to_bytes() const {
  if (!is_bytes()) kind_error(*this, "bytes");
  return std::get<Bytes>(v_);
}
const Tensor& Value::to_tensor() const {
  if (!is_tensor()) kind_error(*this, "Tensor");
  return std::get<Tensor>(v_);
}
const Global& Value::to_global() const {
  if (!is_global()) kind_error(*this, "global");
  return std::get<Global>(v_);
}
ValueList& Value::items() const {
  if (is_list()) return std::get<std::shared_ptr<ListBox>>(v_)->items;
  if (is_tuple()) return std::get<std::shared_ptr<TupleBox>>(v_)->items;
  kind_error(*this, "list or tuple");
}
Dict& Value::to_dict() const { return *dict_ptr(); }
const std::shared_ptr<Dict>& Value::dict_ptr() const {
  if (!is_dict()) kind_error(*this, "dict");
  return std::get<std::shared_ptr<Dict>>(v_);
}
const void* Value::container_id() const {
  if (is_list()) return std::get<std::shared_ptr<ListBox>>(v_).get();
  if (is_tuple()) return std::get<std::shared_ptr<TupleBox>>(v_).get();
  if (is_dict()) return std::get<std::shared_ptr<Dict>>(v_).get();
  return nullptr;
}

const Value& Value::operator[](const std::string& key) const { return to_dict().at(key); }

const Value& Value::operator[](int64_t key) const {
  if (is_dict()) return to_dict().at(key);
  const ValueList& xs = items();
  HT_CHECK_IO(key >= 0 && key < int64_t(xs.size()), "[io] index ", key, " out of range for a ", kind_name(),
           " of ", xs.size(), " items");
  return xs[size_t(key)];
}

const Tensor* StateDict::find(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

Value to_value(const StateDict& sd) {
  Value root = Value::dict(/*ordered=*/true);
  Dict& d = root.to_dict();
  for (const auto& [name, t] : sd.tensors) {
    HT_CHECK_IO(t.defined(), "[io] state_dict entry '", name, "' is an undefined tensor");
    HT_CHECK_IO(!d.contains(name), "[io] state_dict has the name '", name, "' twice");
    d.set(name, t);
  }
  if (!sd.module_versions.empty()) {
    Value meta = Value::dict(/*ordered=*/true);
    for (const auto& [prefix, version] : sd.module_versions) {
      Value entry = Value::dict();
      entry.to_dict().set(std::string("version"), version);
      meta.to_dict().set(prefix, entry);
    }
    d.attrs = std::make_shared<Dict>();
    d.attrs->set(std::string("_metadata"), meta);
  }
  return root;
}

StateDict to_state_dict(const Value& v) {
  HT_CHECK_IO(v.is_dict(), "[io] expected a state_dict (a dict of tensors), got ", v.kind_name());
  StateDict sd;
  const Dict& d = v.to_dict();
  for (const auto& [k, item] : d.items()) {
    HT_CHECK_IO(item.is_tensor(), "[io] state_dict entry '", key_str(k), "' is a ", item.kind_name(),
             ", not a tensor (a training checkpoint? pick its state_dict entry first)");
    sd.add(key_str(k), item.to_tensor());
  }
  if (d.attrs) {
    if (const Value* meta = d.attrs->find(std::string("_metadata")); meta && meta->is_dict()) {
      for (const auto& [prefix, entry] : meta->to_dict().items()) {
        const Value* ver = entry.is_dict() ? entry.to_dict().find(std::string("version")) : nullptr;
        if (ver && ver->is_int()) sd.module_versions.emplace_back(key_str(prefix), ver->to_int());
      }
    }
  }
  return sd;
}

namespace {
void walk(const Value& v, const std::string& path,
          const std::function<void(const std::string&, const Tensor&)>& fn) {
  auto join = [&](const std::string& k) { return path.empty() ? k : path + "/" + k; };
  if (v.is_tensor()) {
    fn(path, v.to_tensor());
  } else if (v.is_dict()) {
    for (const auto& [k, item] : v.to_dict().items()) walk(item, join(key_str(k)), fn);
  } else if (v.is_list() || v.is_tuple()) {
    const ValueList& xs = v.items();
    for (size_t i = 0; i < xs.size(); ++i) walk(xs[i], join(std::to_string(i)), fn);
  }
}
}  // namespace

void for_each_tensor(const Value& root, const std::function<void(const std::string&, const Tensor&)>& fn) {
  walk(root, "", fn);
}

}  // namespace ht
