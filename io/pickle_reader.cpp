// The restricted unpickler: opcodes of protocols 2-5, an allowlist of globals, and checks on every length,
// index and the shape of the result (depth, size, no cycles), so hostile input yields an ht::Error.
#include <cmath>
#include <cstring>
#include <unordered_map>

#include "io/file.h"
#include "io/pickle.h"

namespace ht::io {

namespace {

constexpr uint8_t kMark = '(', kStop = '.', kPop = '0', kPopMark = '1', kDup = '2', kBinInt = 'J',
                  kBinInt1 = 'K', kBinInt2 = 'M', kNone = 'N', kBinPersId = 'Q', kReduce = 'R',
                  kBinUnicode = 'X', kAppend = 'a', kBuild = 'b', kGlobal = 'c', kDict = 'd', kEmptyDict = '}',
                  kAppends = 'e', kBinGet = 'h', kLongBinGet = 'j', kList = 'l', kEmptyList = ']',
                  kBinPut = 'q', kLongBinPut = 'r', kSetItem = 's', kTuple = 't', kEmptyTuple = ')',
                  kSetItems = 'u', kBinFloat = 'G', kShortBinString = 'U', kBinString = 'T', kProto = 0x80,
                  kNewObj = 0x81, kTuple1 = 0x85, kTuple2 = 0x86, kTuple3 = 0x87, kNewTrue = 0x88,
                  kNewFalse = 0x89, kLong1 = 0x8a, kLong4 = 0x8b, kBinBytes = 'B', kShortBinBytes = 'C',
                  kShortBinUnicode = 0x8c, kBinUnicode8 = 0x8d, kBinBytes8 = 0x8e, kEmptySet = 0x8f,
                  kAddItems = 0x90, kFrozenSet = 0x91, kNewObjEx = 0x92, kStackGlobal = 0x93, kMemoize = 0x94,
                  kFrame = 0x95, kByteArray8 = 0x96;

class Unpickler {
 public:
  Unpickler(const uint8_t* data, size_t size, const PersistentLoad& pl, const std::string& what,
            const PickleLimits& limits)
      : p_(data), size_(size), persistent_load_(pl), what_(what), limits_(limits) {}

  ~Unpickler() {
    // Break any reference cycle a hostile pickle built, so nothing leaks and nothing recurses deeply.
    if (!succeeded_)
      for (Value& c : created_) clear_container(c);
  }

  Value run(size_t* consumed) {
    for (;;) {
      uint8_t op = u8();
      if (op == kStop) break;
      step(op);
    }
    HT_CHECK_IO(stack_.size() == 1 && marks_.empty(), "[io] ", what_, ": pickle ended with ", stack_.size(),
             " values on the stack (expected 1)");
    Value result = stack_.back();
    check_value_graph(result, limits_, what_);
    if (consumed) *consumed = pos_;
    stack_.clear();
    memo_.clear();
    succeeded_ = true;
    return result;
  }

 private:
  [[noreturn]] void bad(const std::string& msg) const { fail_io("[io] ", what_, ": pickle ", msg, " at byte ", pos_); }

  const uint8_t* take(uint64_t n) {
    if (!in_bounds(pos_, n, size_)) bad("truncated (needs " + std::to_string(n) + " more bytes)");
    const uint8_t* r = p_ + pos_;
    pos_ += n;
    return r;
  }
  uint8_t u8() { return *take(1); }
  uint64_t le(int n) { return get_le(take(uint64_t(n)), n); }
  std::string str(uint64_t n) {
    const uint8_t* s = take(n);
    return std::string(reinterpret_cast<const char*>(s), n);
  }
  std::string line() {
    size_t start = pos_;
    while (pos_ < size_ && p_[pos_] != '\n') ++pos_;
    if (pos_ >= size_) bad("truncated inside a GLOBAL name");
    std::string s(reinterpret_cast<const char*>(p_ + start), pos_ - start);
    ++pos_;
    return s;
  }

  Value pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) bad("pops an empty stack");
    Value v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  Value& top() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) bad("reads an empty stack");
    return stack_.back();
  }
  ValueList pop_mark() {
    if (marks_.empty()) bad("has no MARK to pop to");
    size_t m = marks_.back();
    marks_.pop_back();
    ValueList items(std::make_move_iterator(stack_.begin() + std::ptrdiff_t(m)),
                    std::make_move_iterator(stack_.end()));
    stack_.resize(m);
    return items;
  }
  Value track(Value v) {
    if (v.is_container()) created_.push_back(v);
    return v;
  }
  void push(Value v) { stack_.push_back(std::move(v)); }
  void push_container(Value v) { push(track(std::move(v))); }

  static void clear_container(Value& c) {
    if (c.is_list() || c.is_tuple()) c.items().clear();
    if (c.is_dict()) c.to_dict().clear();
  }

  DictKey key_of(const Value& k) {
    if (k.is_string()) return k.to_string();
    if (k.is_int()) return k.to_int();
    if (k.is_bool()) return int64_t(k.to_bool());
    bad(std::string("uses a dict key of type ") + k.kind_name() + " (only str and int keys are supported)");
  }

  void set_items(Value& target, ValueList& kv) {
    if (!target.is_dict()) bad(std::string("sets items on a ") + target.kind_name());
    if (kv.size() % 2) bad("has an odd number of items for SETITEMS");
    Dict& d = target.to_dict();
    for (size_t i = 0; i < kv.size(); i += 2) d.set(key_of(kv[i]), std::move(kv[i + 1]));
  }

  void memo_put(uint64_t idx) {
    if (memo_.size() >= limits_.max_memo) bad("memo exceeds its limit");
    memo_[idx] = top();
  }
  void memo_get(uint64_t idx) {
    auto it = memo_.find(idx);
    if (it == memo_.end()) bad("reads memo entry " + std::to_string(idx) + ", which was never stored");
    push(it->second);
  }

  void push_global(std::string module, std::string name) {
    module = normalize_module(module);
    if (!is_allowed_global(module, name)) {
      // A whole pickled nn.Module or optimizer names its own class: point at the usual fix.
      const bool user_class = module == "__main__" || module.rfind("torch.nn.modules", 0) == 0;
      fail_io("[io] ", what_, ": refused pickle global '", module, ".", name,
           "': not in the allowlist of checkpoint types (no code from a file is ever run)",
           user_class ? "; was a whole module saved? save and load its state_dict() instead" : "");
    }
    push(Global{module, name});
  }

  static int64_t signed_le(const uint8_t* b, uint64_t n) {
    if (n == 0) return 0;
    uint64_t v = get_le(b, int(n));
    if (n < 8 && (b[n - 1] & 0x80)) v |= ~uint64_t(0) << (8 * n);
    return int64_t(v);
  }
  void push_long(uint64_t n) {
    const uint8_t* b = take(n);
    if (n > 8) {
      // Accept wider encodings of values that still fit (sign extension bytes only).
      uint8_t ext = (b[7] & 0x80) ? 0xff : 0x00;
      for (uint64_t i = 8; i < n; ++i)
        if (b[i] != ext) bad("has an integer wider than 64 bits");
      n = 8;
    }
    push(signed_le(b, n));
  }

  void step(uint8_t op) {
    switch (op) {
      case kProto: {
        uint8_t v = u8();
        if (v < 2 || v > 5) bad("protocol " + std::to_string(v) + " is not supported (2 to 5 are)");
        break;
      }
      case kFrame: take(8); break;  // framing is only a read-ahead hint
      case kMark: marks_.push_back(stack_.size()); break;
      case kPop: pop(); break;
      case kPopMark: pop_mark(); break;
      case kDup: push(top()); break;
      case kNone: push(Value()); break;
      case kNewTrue: push(true); break;
      case kNewFalse: push(false); break;
      case kBinInt: push(int64_t(int32_t(uint32_t(le(4))))); break;
      case kBinInt1: push(int64_t(u8())); break;
      case kBinInt2: push(int64_t(le(2))); break;
      case kLong1: push_long(u8()); break;
      case kLong4: {
        int64_t n = int32_t(uint32_t(le(4)));
        if (n < 0) bad("has a negative LONG4 length");
        push_long(uint64_t(n));
        break;
      }
      case kBinFloat: {
        const uint8_t* b = take(8);
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | b[i];  // big-endian
        double d;
        std::memcpy(&d, &bits, 8);
        push(d);
        break;
      }
      case kBinUnicode: push(str(le(4))); break;
      case kShortBinUnicode: push(str(u8())); break;
      case kBinUnicode8: push(str(le(8))); break;
      // Python 2 byte strings: torch.load decodes them as str.
      case kShortBinString: push(str(u8())); break;
      case kBinString: push(str(le(4))); break;
      case kShortBinBytes: push(Bytes{str(u8())}); break;
      case kBinBytes: push(Bytes{str(le(4))}); break;
      case kBinBytes8: push(Bytes{str(le(8))}); break;
      case kByteArray8: push(Bytes{str(le(8))}); break;
      case kEmptyTuple: push_container(Value::tuple()); break;
      case kTuple: push_container(Value::tuple(pop_mark())); break;
      case kTuple1: {
        Value a = pop();
        push_container(Value::tuple({std::move(a)}));
        break;
      }
      case kTuple2: {
        Value b = pop(), a = pop();
        push_container(Value::tuple({std::move(a), std::move(b)}));
        break;
      }
      case kTuple3: {
        Value c = pop(), b = pop(), a = pop();
        push_container(Value::tuple({std::move(a), std::move(b), std::move(c)}));
        break;
      }
      case kEmptyList: push_container(Value::list()); break;
      case kList: push_container(Value::list(pop_mark())); break;
      case kEmptySet: push_container(Value::list()); break;  // sets become lists (no set in the value model)
      case kFrozenSet: push_container(Value::list(pop_mark())); break;
      case kAppend: {
        Value v = pop();
        Value& l = top();
        if (!l.is_list()) bad(std::string("appends to a ") + l.kind_name());
        l.items().push_back(std::move(v));
        break;
      }
      case kAppends:
      case kAddItems: {
        ValueList xs = pop_mark();
        Value& l = top();
        if (!l.is_list()) bad(std::string("appends to a ") + l.kind_name());
        for (auto& x : xs) l.items().push_back(std::move(x));
        break;
      }
      case kEmptyDict: push_container(Value::dict()); break;
      case kDict: {
        ValueList kv = pop_mark();
        Value d = track(Value::dict());
        set_items(d, kv);
        push(d);
        break;
      }
      case kSetItem: {
        Value v = pop(), k = pop();
        ValueList kv{std::move(k), std::move(v)};
        set_items(top(), kv);
        break;
      }
      case kSetItems: {
        ValueList kv = pop_mark();
        set_items(top(), kv);
        break;
      }
      case kBinPut: memo_put(u8()); break;
      case kLongBinPut: memo_put(le(4)); break;
      case kMemoize: memo_put(memo_.size()); break;
      case kBinGet: memo_get(u8()); break;
      case kLongBinGet: memo_get(le(4)); break;
      case kGlobal: {
        std::string module = line();
        std::string name = line();
        push_global(std::move(module), std::move(name));
        break;
      }
      case kStackGlobal: {
        Value name = pop(), module = pop();
        if (!name.is_string() || !module.is_string()) bad("STACK_GLOBAL needs two strings");
        push_global(module.to_string(), name.to_string());
        break;
      }
      case kReduce:
      case kNewObj: {
        Value args = pop();
        Value callable = pop();
        push(call(callable, args));
        break;
      }
      case kNewObjEx: {
        Value kwargs = pop(), args = pop(), callable = pop();
        if (!kwargs.is_dict() || !kwargs.to_dict().empty()) bad("NEWOBJ_EX with keyword arguments");
        push(call(callable, args));
        break;
      }
      case kBuild: {
        Value state = pop();
        build(top(), state);
        break;
      }
      case kBinPersId: {
        Value pid = pop();
        if (!persistent_load_) bad("has a persistent id, but this file format has no storages");
        push(track(persistent_load_(pid)));
        break;
      }
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        bad(std::string("opcode ") + hex + " is not supported");
      }
    }
  }

  void build(Value& obj, Value& state) {
    if (obj.is_dict()) {
      // OrderedDict.__reduce__ gives (cls, (), vars(self)): BUILD sets attributes such as `_metadata`.
      Value attrs = state;
      if (attrs.is_tuple() && attrs.items().size() == 2) attrs = attrs.items()[0];
      if (attrs.is_none()) return;
      if (!attrs.is_dict()) bad(std::string("BUILD on a dict with a ") + attrs.kind_name() + " state");
      Dict& d = obj.to_dict();
      if (!d.attrs) d.attrs = std::make_shared<Dict>();
      for (auto& [k, v] : attrs.to_dict().items()) d.attrs->set(k, v);
      track(Value(d.attrs));
      return;
    }
    if (obj.is_tensor()) {
      // A Parameter or tensor subclass carrying Python attributes: the attributes are not part of the model.
      if (state.is_none() || (state.is_dict() && state.to_dict().empty())) return;
      if (state.is_tuple() || state.is_dict()) return;
    }
    bad(std::string("BUILD on a ") + obj.kind_name() + " is not allowed");
  }

  const ValueList& args_of(const Value& args, const std::string& fn, size_t min_n, size_t max_n) {
    if (!args.is_tuple()) bad(fn + " called with a " + args.kind_name() + " instead of an argument tuple");
    const ValueList& a = args.items();
    if (a.size() < min_n || a.size() > max_n)
      bad(fn + " called with " + std::to_string(a.size()) + " arguments");
    return a;
  }

  Shape shape_arg(const Value& v, const char* field) {
    if (!v.is_tuple() && !v.is_list()) bad(std::string("tensor ") + field + " is not a tuple");
    Shape s;
    for (const Value& x : v.items()) {
      if (!x.is_int()) bad(std::string("tensor ") + field + " holds a " + x.kind_name());
      s.push_back(x.to_int());
    }
    return s;
  }

  // Builds the tensor view and checks every element it can reach lies inside the storage.
  Value rebuild_tensor(const Value& storage, const Value& offset_v, const Value& size_v, const Value& stride_v,
                       bool requires_grad, DType dtype, bool retype) {
    if (!storage.is_tensor()) bad(std::string("tensor storage is a ") + storage.kind_name());
    const Tensor& st = storage.to_tensor();
    if (!offset_v.is_int()) bad("tensor offset is not an int");
    int64_t offset = offset_v.to_int();
    Shape sizes = shape_arg(size_v, "size"), strides = shape_arg(stride_v, "stride");
    if (sizes.size() != strides.size()) bad("tensor size and stride have different lengths");
    if (sizes.size() > 64) bad("tensor has more than 64 dimensions");
    uint64_t storage_bytes = st.storage() ? st.storage()->nbytes() : 0;
    uint64_t elsize = element_size(dtype);
    if (retype && storage_bytes % elsize) bad("storage size is not a multiple of the dtype size");
    uint64_t capacity = storage_bytes / elsize;
    bool empty = false;
    for (int64_t s : sizes) {
      if (s < 0) bad("tensor has a negative size");
      empty |= s == 0;
    }
    if (offset < 0) bad("tensor has a negative storage offset");
    unsigned __int128 numel = 1;
    for (int64_t s : sizes) {
      numel *= uint64_t(s);
      if (numel > (unsigned __int128)(INT64_MAX / 16)) bad("tensor size " + shape_str(sizes) + " overflows");
    }
    if (!empty) {
      // last reachable element = offset + sum((size - 1) * stride), computed without overflow
      unsigned __int128 last = uint64_t(offset);
      for (size_t i = 0; i < sizes.size(); ++i) {
        if (strides[i] < 0) bad("tensor has a negative stride");
        last += (unsigned __int128)uint64_t(sizes[i] - 1) * uint64_t(strides[i]);
      }
      if (last >= capacity)
        bad("tensor view (offset " + std::to_string(offset) + ", size " + shape_str(sizes) + ", stride " +
            shape_str(strides) + ") reaches past its storage of " + std::to_string(capacity) + " elements");
    } else if (uint64_t(offset) > capacity) {
      bad("tensor offset lies past its storage");
    }
    Tensor t(st.storage(), dtype, sizes, strides, offset);
    t.impl()->requires_grad = requires_grad && is_floating(dtype);
    return t;
  }

  DType dtype_global(const Value& v) {
    if (!v.is_global() || v.to_global().module != "torch") bad("tensor dtype argument is not a torch dtype");
    try {
      return dtype_from_name(v.to_global().name);
    } catch (const Error&) {
      bad("tensor dtype torch." + v.to_global().name + " is not supported by halftorch");
    }
  }

  Value call(const Value& callable, const Value& args) {
    if (!callable.is_global()) bad(std::string("calls a ") + callable.kind_name());
    const std::string fn = callable.to_global().full_name();
    if (fn == "collections.OrderedDict" || fn == "collections.Counter") {
      const ValueList& a = args_of(args, fn, 0, 1);
      Value d = track(Value::dict(fn == "collections.OrderedDict"));
      if (!a.empty()) {
        if (!a[0].is_list() && !a[0].is_tuple() && !a[0].is_dict()) bad(fn + " of a " + a[0].kind_name());
        if (a[0].is_dict()) {
          for (auto& [k, v] : a[0].to_dict().items()) d.to_dict().set(k, v);
        } else {
          for (const Value& kv : a[0].items()) {
            if (!kv.is_tuple() || kv.items().size() != 2) bad(fn + " item is not a pair");
            ValueList pair = kv.items();
            set_items(d, pair);
          }
        }
      }
      return d;
    }
    if (fn == "torch._utils._rebuild_tensor_v2" || fn == "torch._utils._rebuild_tensor") {
      bool v2 = fn.back() == '2';
      const ValueList& a = args_of(args, fn, v2 ? 6 : 4, v2 ? 7 : 4);
      if (v2 && a.size() == 7 && a[6].is_dict()) {
        for (auto& [k, v] : a[6].to_dict().items())
          if (v.is_bool() && v.to_bool()) bad("tensor has math bit '" + key_str(k) + "' (conj/neg views unsupported)");
      }
      bool rg = v2 && a[4].is_bool() && a[4].to_bool();
      if (!a[0].is_tensor()) bad("tensor storage is a " + std::string(a[0].kind_name()));
      return rebuild_tensor(a[0], a[1], a[2], a[3], rg, a[0].to_tensor().dtype(), false);
    }
    if (fn == "torch._utils._rebuild_tensor_v3") {
      const ValueList& a = args_of(args, fn, 7, 8);
      bool rg = a[4].is_bool() && a[4].to_bool();
      return rebuild_tensor(a[0], a[1], a[2], a[3], rg, dtype_global(a[6]), true);
    }
    if (fn == "torch._utils._rebuild_parameter" || fn == "torch._utils._rebuild_parameter_with_state") {
      const ValueList& a = args_of(args, fn, 3, 4);
      if (!a[0].is_tensor()) bad(fn + " of a " + a[0].kind_name());
      Tensor t = a[0].to_tensor();
      t.impl()->requires_grad = a[1].is_bool() && a[1].to_bool() && t.is_floating_point();
      return t;
    }
    if (fn == "torch._tensor._rebuild_from_type_v2") {
      const ValueList& a = args_of(args, fn, 4, 4);
      return call(a[0], a[2]);
    }
    if (fn == "torch.device") {
      const ValueList& a = args_of(args, fn, 1, 2);
      if (!a[0].is_string()) bad("torch.device of a " + std::string(a[0].kind_name()));
      std::string d = a[0].to_string();
      if (a.size() == 2 && a[1].is_int()) d += ":" + std::to_string(a[1].to_int());
      return d;
    }
    if (fn == "torch.Size") {
      const ValueList& a = args_of(args, fn, 0, 1);
      return track(Value::tuple(a.empty() ? ValueList{} : shape_values(a[0])));
    }
    if (fn == "_codecs.encode") {
      const ValueList& a = args_of(args, fn, 1, 2);
      if (!a[0].is_string()) bad("_codecs.encode of a " + std::string(a[0].kind_name()));
      std::string enc = a.size() == 2 && a[1].is_string() ? a[1].to_string() : "utf-8";
      if (enc == "latin1" || enc == "latin-1") return Bytes{utf8_to_latin1(a[0].to_string())};
      if (enc == "utf-8" || enc == "utf8") return Bytes{a[0].to_string()};
      bad("_codecs.encode with encoding '" + enc + "'");
    }
    if (fn == "builtins.set" || fn == "builtins.frozenset") {
      const ValueList& a = args_of(args, fn, 0, 1);
      if (!a.empty() && !a[0].is_list() && !a[0].is_tuple()) bad(fn + " of a " + a[0].kind_name());
      return track(Value::list(a.empty() ? ValueList{} : a[0].items()));
    }
    if (fn == "builtins.bytearray") {
      const ValueList& a = args_of(args, fn, 0, 2);
      if (a.empty()) return Bytes{};
      if (a[0].is_bytes()) return a[0];
      if (a[0].is_string()) return Bytes{utf8_to_latin1(a[0].to_string())};
      bad("bytearray of a " + std::string(a[0].kind_name()));
    }
    bad("calls " + fn + ", which is allowed only as a value, not as a function");
  }

  ValueList shape_values(const Value& v) {
    Shape s = shape_arg(v, "torch.Size");
    return ValueList(s.begin(), s.end());
  }

  std::string utf8_to_latin1(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      uint8_t c = uint8_t(s[i]);
      if (c < 0x80) {
        out.push_back(char(c));
      } else if ((c & 0xE0) == 0xC0 && i + 1 < s.size() && c <= 0xC3) {
        out.push_back(char(((c & 0x1F) << 6) | (uint8_t(s[++i]) & 0x3F)));
      } else {
        bad("bytes payload is not latin-1");
      }
    }
    return out;
  }

  const uint8_t* p_;
  size_t size_;
  size_t pos_ = 0;
  const PersistentLoad& persistent_load_;
  const std::string& what_;
  PickleLimits limits_;
  std::vector<Value> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Value> memo_;
  std::vector<Value> created_;
  bool succeeded_ = false;
};

}  // namespace

Value unpickle(const uint8_t* data, size_t size, const PersistentLoad& persistent_load, const std::string& what,
               size_t* consumed, const PickleLimits& limits) {
  Unpickler u(data, size, persistent_load, what, limits);
  return u.run(consumed);
}

}  // namespace ht::io
