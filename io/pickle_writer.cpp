// Protocol-2 pickle writer with the opcode patterns CPython's pickler uses for checkpoints (§3.5 of the format
// reference), so what halftorch writes loads with torch.load(weights_only=True).
#include <cmath>
#include <cstring>

#include "io/file.h"
#include "io/pickle.h"

namespace ht::io {

namespace {

class Pickler {
 public:
  explicit Pickler(const PersistentId& pid) : persistent_id_(pid) {}

  std::string run(const Value& v) {
    out_ += "\x80\x02";
    write(v, 0);
    out_ += '.';
    return std::move(out_);
  }

 private:
  void op(uint8_t c) { out_.push_back(char(c)); }

  void write_int(int64_t v) {
    if (v >= 0 && v < 256) {
      op('K');
      op(uint8_t(v));
    } else if (v >= 0 && v < 65536) {
      op('M');
      put_u16(out_, uint16_t(v));
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      op('J');
      put_u32(out_, uint32_t(int32_t(v)));
    } else {
      // LONG1: shortest little-endian two's complement, as CPython's encode_long
      uint8_t b[8];
      for (int i = 0; i < 8; ++i) b[i] = uint8_t(uint64_t(v) >> (8 * i));
      int n = 8;
      while (n > 1 && ((b[n - 1] == 0x00 && !(b[n - 2] & 0x80)) || (b[n - 1] == 0xff && (b[n - 2] & 0x80)))) --n;
      op(0x8a);
      op(uint8_t(n));
      out_.append(reinterpret_cast<const char*>(b), size_t(n));
    }
  }

  void write_str(const std::string& s) {
    HT_CHECK_IO(s.size() <= UINT32_MAX, "[io] string too long to pickle");
    op('X');
    put_u32(out_, uint32_t(s.size()));
    out_ += s;
  }

  void write_global(const std::string& module, const std::string& name) {
    out_ += 'c';
    out_ += module;
    out_ += '\n';
    out_ += name;
    out_ += '\n';
  }

  void write_empty_ordered_dict() {
    write_global("collections", "OrderedDict");
    op(')');
    op('R');
  }

  // Items of a tuple: EMPTY_TUPLE, TUPLE1..3 or MARK ... TUPLE, as CPython does.
  void write_tuple(const ValueList& xs, int depth) {
    if (xs.empty()) return op(')');
    if (xs.size() > 3) op('(');
    for (const Value& x : xs) write(x, depth + 1);
    op(xs.size() == 1 ? 0x85 : xs.size() == 2 ? 0x86 : xs.size() == 3 ? 0x87 : 't');
  }

  void write_shape(const Shape& s) {
    ValueList xs(s.begin(), s.end());
    write_tuple(xs, 0);
  }

  // Batches of up to 1000 items; a batch of exactly one uses APPEND/SETITEM without MARK.
  template <class Items, class WriteOne>
  void batched(const Items& items, uint8_t one, uint8_t many, WriteOne&& write_one) {
    size_t n = items.size();
    for (size_t start = 0; start < n; start += 1000) {
      size_t end = std::min(n, start + 1000);
      if (end - start == 1) {
        write_one(items[start]);
        op(one);
      } else {
        op('(');
        for (size_t i = start; i < end; ++i) write_one(items[i]);
        op(many);
      }
    }
  }

  void write_dict_body(const Dict& d, int depth) {
    batched(d.items(), 's', 'u', [&](const std::pair<DictKey, Value>& kv) {
      if (const auto* s = std::get_if<std::string>(&kv.first))
        write_str(*s);
      else
        write_int(std::get<int64_t>(kv.first));
      write(kv.second, depth + 1);
    });
  }

  void write_tensor(const Tensor& t) {
    HT_CHECK_IO(t.defined(), "[io] cannot save an undefined tensor");
    StorageRef ref = persistent_id_(t);
    write_global("torch._utils", "_rebuild_tensor_v2");
    op('(');
    op('(');
    write_str("storage");
    write_global("torch", storage_type_name(t.dtype()));
    write_str(ref.key);
    write_str("cpu");
    write_int(ref.numel);
    op('t');
    op('Q');
    write_int(t.storage_offset());
    write_shape(t.sizes());
    write_shape(t.strides());
    op(0x89);  // requires_grad=False, as state_dict() tensors are detached
    write_empty_ordered_dict();
    op('t');
    op('R');
  }

  void write(const Value& v, int depth) {
    HT_CHECK_IO(depth < 1000, "[io] value nests too deeply to save");
    switch (v.kind()) {
      case Value::Kind::None: return op('N');
      case Value::Kind::Bool: return op(v.to_bool() ? 0x88 : 0x89);
      case Value::Kind::Int: return write_int(v.to_int());
      case Value::Kind::Double: {
        double d = v.to_double();
        uint64_t bits;
        std::memcpy(&bits, &d, 8);
        op('G');
        for (int i = 7; i >= 0; --i) op(uint8_t(bits >> (8 * i)));
        return;
      }
      case Value::Kind::String: return write_str(v.to_string());
      case Value::Kind::Bytes: {
        // Protocol 2 has no bytes opcode: CPython writes _codecs.encode(latin-1 text, 'latin1').
        std::string text;
        for (unsigned char c : v.to_bytes().data) {
          if (c < 0x80) {
            text.push_back(char(c));
          } else {
            text.push_back(char(0xC0 | (c >> 6)));
            text.push_back(char(0x80 | (c & 0x3F)));
          }
        }
        write_global("_codecs", "encode");
        write_str(text);
        write_str("latin1");
        op(0x86);
        op('R');
        return;
      }
      case Value::Kind::Tensor: return write_tensor(v.to_tensor());
      case Value::Kind::List:
        op(']');
        batched(v.items(), 'a', 'e', [&](const Value& x) { write(x, depth + 1); });
        return;
      case Value::Kind::Tuple: return write_tuple(v.items(), depth);
      case Value::Kind::Dict: {
        const Dict& d = v.to_dict();
        if (d.ordered || d.attrs)
          write_empty_ordered_dict();
        else
          op('}');
        write_dict_body(d, depth);
        if (d.attrs && !d.attrs->empty()) {
          op('}');
          write_dict_body(*d.attrs, depth);
          op('b');
        }
        return;
      }
      case Value::Kind::Global: {
        const Global& g = v.to_global();
        HT_CHECK_IO(is_allowed_global(g.module, g.name), "[io] refusing to save global '", g.full_name(),
                 "': torch.load(weights_only=True) would reject it");
        return write_global(g.module, g.name);
      }
    }
  }

  const PersistentId& persistent_id_;
  std::string out_;
};

}  // namespace

std::string pickle(const Value& v, const PersistentId& persistent_id) { return Pickler(persistent_id).run(v); }

}  // namespace ht::io
