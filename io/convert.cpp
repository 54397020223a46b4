// cast_floating, repr, max_abs_diff.
#include "io/convert.h"

#include <charconv>
#include <cmath>
#include <unordered_map>

namespace ht::io {

namespace {

// Casts a storage's elements (whole storage, so views stay valid) and counts finite -> inf overflows.
StoragePtr cast_storage(const Tensor& t, DType to) {
  const int64_t n = int64_t(t.storage()->nbytes() / t.element_size());
  Tensor whole(t.storage(), t.dtype(), {n}, {1}, 0);
  return whole.to(to).contiguous().storage();
}

// Calls fn(values of a, values of b) as doubles over chunks of rows of at most ~4M elements, so large tensors
// never need whole-tensor double buffers.
template <class Fn>
void for_each_chunk(const Tensor& a, const Tensor& b, Fn&& fn) {
  constexpr int64_t kChunk = int64_t(1) << 22;
  if (a.dim() == 0 || a.numel() <= kChunk) return fn(a.to_vector<double>(), b.to_vector<double>());
  const int64_t rows = a.size(0), per = std::max<int64_t>(1, kChunk / std::max<int64_t>(1, a.numel() / rows));
  for (int64_t r = 0; r < rows; r += per) {
    int64_t len = std::min(per, rows - r);
    fn(a.narrow(0, r, len).to_vector<double>(), b.narrow(0, r, len).to_vector<double>());
  }
}

// Number of elements of view `t` (in its old dtype) that are finite but whose cast `c` is infinite.
int64_t count_overflows(const Tensor& t, const Tensor& c) {
  int64_t count = 0;
  if (t.numel() == 0) return 0;
  for_each_chunk(t, c, [&](const std::vector<double>& a, const std::vector<double>& b) {
    for (size_t i = 0; i < a.size(); ++i) count += std::isfinite(a[i]) && std::isinf(b[i]);
  });
  return count;
}

struct Caster {
  DType to;
  std::vector<std::pair<std::string, int64_t>>* overflows;
  std::unordered_map<const Storage*, StoragePtr> cast;

  Value tensor(const Tensor& t, const std::string& path) {
    if (!t.is_floating_point() || t.dtype() == to) return t;
    Tensor src = t.cpu();
    auto it = cast.find(src.storage().get());
    if (it == cast.end()) it = cast.emplace(src.storage().get(), cast_storage(src, to)).first;
    Tensor out(it->second, to, src.sizes(), src.strides(), src.storage_offset());
    if (overflows && element_size(to) < src.element_size()) {
      if (int64_t n = count_overflows(src, out)) overflows->emplace_back(path, n);
    }
    return out;
  }

  Value walk(const Value& v, const std::string& path) {
    auto join = [&](const std::string& k) { return path.empty() ? k : path + "/" + k; };
    if (v.is_tensor()) return tensor(v.to_tensor(), path);
    if (v.is_list() || v.is_tuple()) {
      ValueList items;
      const ValueList& xs = v.items();
      for (size_t i = 0; i < xs.size(); ++i) items.push_back(walk(xs[i], join(std::to_string(i))));
      return v.is_list() ? Value::list(std::move(items)) : Value::tuple(std::move(items));
    }
    if (v.is_dict()) {
      const Dict& d = v.to_dict();
      Value out = Value::dict(d.ordered);
      for (const auto& [k, item] : d.items()) out.to_dict().set(k, walk(item, join(key_str(k))));
      out.to_dict().attrs = d.attrs;
      return out;
    }
    return v;
  }
};

void repr_to(const Value& v, std::string& out, int depth) {
  if (depth > 100) {
    out += "...";
    return;
  }
  switch (v.kind()) {
    case Value::Kind::None: out += "None"; return;
    case Value::Kind::Bool: out += v.to_bool() ? "True" : "False"; return;
    case Value::Kind::Int: out += std::to_string(v.to_int()); return;
    case Value::Kind::Double: {
      double d = v.to_double();
      if (std::isnan(d)) {
        out += "nan";
      } else if (std::isinf(d)) {
        out += d > 0 ? "inf" : "-inf";
      } else {
        char buf[64];
        auto r = std::to_chars(buf, buf + sizeof buf, d);
        std::string s(buf, r.ptr);
        if (s.find_first_of(".en") == std::string::npos) s += ".0";
        out += s;
      }
      return;
    }
    case Value::Kind::String: {
      out += '\'';
      for (char c : v.to_string()) {
        if (c == '\'' || c == '\\') out += '\\';
        if (c == '\n') {
          out += "\\n";
          continue;
        }
        out += c;
      }
      out += '\'';
      return;
    }
    case Value::Kind::Bytes: {
      out += "b'";
      for (unsigned char c : v.to_bytes().data) {
        if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
          out += char(c);
        } else {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", c);
          out += buf;
        }
      }
      out += '\'';
      return;
    }
    case Value::Kind::Tensor: {
      const Tensor& t = v.to_tensor();
      out += std::string("tensor(") + dtype_name(t.dtype()) + ", " + shape_str(t.sizes()) + ")";
      return;
    }
    case Value::Kind::List:
    case Value::Kind::Tuple: {
      const ValueList& xs = v.items();
      out += v.is_list() ? '[' : '(';
      for (size_t i = 0; i < xs.size(); ++i) {
        if (i) out += ", ";
        repr_to(xs[i], out, depth + 1);
      }
      if (v.is_tuple() && xs.size() == 1) out += ',';
      out += v.is_list() ? ']' : ')';
      return;
    }
    case Value::Kind::Dict: {
      out += '{';
      bool first = true;
      for (const auto& [k, item] : v.to_dict().items()) {
        if (!first) out += ", ";
        first = false;
        if (std::holds_alternative<std::string>(k))
          repr_to(Value(std::get<std::string>(k)), out, depth + 1);
        else
          out += std::to_string(std::get<int64_t>(k));
        out += ": ";
        repr_to(item, out, depth + 1);
      }
      out += '}';
      return;
    }
    case Value::Kind::Global: out += v.to_global().full_name(); return;
  }
}

}  // namespace

Value cast_floating(const Value& v, DType to, std::vector<std::pair<std::string, int64_t>>* overflows) {
  HT_CHECK_IO(is_floating(to), "[io] cast target must be a floating dtype, got ", dtype_name(to));
  Caster c{to, overflows, {}};
  return c.walk(v, "");
}

std::string repr(const Value& v) {
  std::string out;
  repr_to(v, out, 0);
  return out;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  HT_CHECK_IO(a.sizes() == b.sizes(), "[io] max_abs_diff of shapes ", shape_str(a.sizes()), " and ",
           shape_str(b.sizes()));
  double m = 0;
  if (a.numel() == 0) return 0;
  for_each_chunk(a, b, [&](const std::vector<double>& p, const std::vector<double>& q) {
    for (size_t i = 0; i < p.size(); ++i) {
      if (std::isnan(p[i]) || std::isnan(q[i])) {
        if (std::isnan(p[i]) != std::isnan(q[i])) m = INFINITY;
        continue;
      }
      if (p[i] != q[i]) m = std::max(m, std::fabs(p[i] - q[i]));  // equal infinities compare equal
    }
  });
  return m;
}

}  // namespace ht::io
