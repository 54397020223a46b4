// safetensors reader and writer; rules per shared/reference/pth-format.md §8.
#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "io/tensor_bytes.h"

namespace ht::io {

namespace {
using Json = nlohmann::ordered_json;
constexpr uint64_t kMaxHeader = 100'000'000;

struct NameDType {
  const char* name;
  DType dtype;
};
constexpr NameDType kNames[] = {{"F16", kFloat16}, {"BF16", kBFloat16}, {"F32", kFloat32}, {"F64", kFloat64},
                                {"I64", kInt64},   {"I32", kInt32},     {"I16", kInt16},   {"I8", kInt8},
                                {"U8", kUInt8},    {"BOOL", kBool}};
}  // namespace

const char* safetensors_dtype_name(DType d) {
  for (const auto& n : kNames)
    if (n.dtype == d) return n.name;
  fail_io("[io] dtype ", dtype_name(d), " has no safetensors name");
}

DType dtype_from_safetensors_name(const std::string& name, const std::string& what) {
  for (const auto& n : kNames)
    if (name == n.name) return n.dtype;
  fail_io("[io] ", what, ": safetensors dtype '", name, "' is not supported");
}

bool looks_like_safetensors(const uint8_t* data, size_t size) {
  if (size < 10) return false;
  uint64_t n = get_le(data, 8);
  return n >= 2 && n <= kMaxHeader && n <= size - 8 && data[8] == '{';
}

Value load_safetensors(const std::shared_ptr<MappedFile>& file) {
  const std::string& what = file->path();
  const uint8_t* data = file->data();
  const size_t size = file->size();
  HT_CHECK_IO(size >= 8, "[io] ", what, ": too small for a safetensors file (", size, " bytes)");
  const uint64_t n = get_le(data, 8);
  HT_CHECK_IO(n <= kMaxHeader, "[io] ", what, ": safetensors header of ", n, " bytes is larger than the limit");
  HT_CHECK_IO(in_bounds(8, n, size), "[io] ", what, ": safetensors header (", n, " bytes) runs past the file end");
  HT_CHECK_IO(n >= 2 && data[8] == '{', "[io] ", what, ": safetensors header does not start with '{'");
  const char* text = reinterpret_cast<const char*>(data + 8);
  // Duplicate names are forbidden by the format but silently merged by JSON parsers: catch them while parsing.
  std::unordered_set<std::string> names;
  std::string duplicate;
  Json header;
  try {
    header = Json::parse(text, text + n, [&](int depth, Json::parse_event_t ev, Json& parsed) {
      if (ev == Json::parse_event_t::key && depth == 1 && !names.insert(parsed.get<std::string>()).second)
        duplicate = parsed.get<std::string>();
      return true;
    });
  } catch (const nlohmann::json::exception& e) {
    fail_io("[io] ", what, ": safetensors header is not valid JSON: ", e.what());
  }
  HT_CHECK_IO(duplicate.empty(), "[io] ", what, ": safetensors header names '", duplicate, "' twice");
  HT_CHECK_IO(header.is_object(), "[io] ", what, ": safetensors header is not a JSON object");

  const uint8_t* buffer = data + 8 + n;
  const uint64_t buffer_size = size - 8 - n;
  struct Entry {
    std::string name;
    DType dtype;
    Shape shape;
    uint64_t begin, end;
  };
  std::vector<Entry> entries;
  Value result = Value::dict();
  for (auto& item : header.items()) {
    const std::string name = item.key();
    const Json& info = item.value();
    if (name == "__metadata__") {
      HT_CHECK_IO(info.is_object(), "[io] ", what, ": __metadata__ is not an object");
      Value meta = Value::dict();
      for (auto& [k, v] : info.items()) {
        HT_CHECK_IO(v.is_string(), "[io] ", what, ": __metadata__ value for '", k, "' is not a string");
        meta.to_dict().set(k, v.get<std::string>());
      }
      result.to_dict().attrs = std::make_shared<Dict>();
      result.to_dict().attrs->set(std::string("__metadata__"), meta);
      continue;
    }
    auto field = [&](const char* key) -> const Json& {
      HT_CHECK_IO(info.is_object() && info.contains(key), "[io] ", what, ": tensor '", name, "' has no '", key, "'");
      return info[key];
    };
    Entry e{name, kFloat32, {}, 0, 0};
    HT_CHECK_IO(field("dtype").is_string(), "[io] ", what, ": tensor '", name, "' dtype is not a string");
    e.dtype = dtype_from_safetensors_name(field("dtype").get<std::string>(), what + " (tensor '" + name + "')");
    const Json& shape = field("shape");
    HT_CHECK_IO(shape.is_array() && shape.size() <= 64, "[io] ", what, ": tensor '", name, "' shape is invalid");
    unsigned __int128 numel = 1;
    for (const Json& d : shape) {
      HT_CHECK_IO(d.is_number_unsigned(), "[io] ", what, ": tensor '", name, "' shape has a non-integer or negative");
      uint64_t v = d.get<uint64_t>();
      HT_CHECK_IO(v <= uint64_t(INT64_MAX), "[io] ", what, ": tensor '", name, "' shape is too large");
      e.shape.push_back(int64_t(v));
      numel *= v;
      HT_CHECK_IO(numel <= buffer_size, "[io] ", what, ": tensor '", name, "' shape ", shape_str(e.shape),
               " is larger than the file");
    }
    const Json& off = field("data_offsets");
    HT_CHECK_IO(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(),
             "[io] ", what, ": tensor '", name, "' data_offsets is not [begin, end]");
    e.begin = off[0].get<uint64_t>();
    e.end = off[1].get<uint64_t>();
    HT_CHECK_IO(e.begin <= e.end && e.end <= buffer_size, "[io] ", what, ": tensor '", name, "' data_offsets [",
             e.begin, ", ", e.end, "] lie outside the data buffer of ", buffer_size, " bytes");
    HT_CHECK_IO(e.end - e.begin == uint64_t(numel) * element_size(e.dtype), "[io] ", what, ": tensor '", name,
             "' has ", e.end - e.begin, " bytes, but shape ", shape_str(e.shape), " of ",
             safetensors_dtype_name(e.dtype), " needs ", uint64_t(numel) * element_size(e.dtype));
    entries.push_back(std::move(e));
  }
  // The entries, by offset, must cover the buffer exactly: no holes, no overlap, no trailing bytes.
  std::vector<const Entry*> by_offset;
  for (const Entry& e : entries) by_offset.push_back(&e);
  std::stable_sort(by_offset.begin(), by_offset.end(),
                   [](const Entry* a, const Entry* b) { return a->begin < b->begin || (a->begin == b->begin && a->end < b->end); });
  uint64_t expect = 0;
  for (const Entry* e : by_offset) {
    HT_CHECK_IO(e->begin == expect, "[io] ", what, ": tensor '", e->name, "' starts at byte ", e->begin,
             " of the data buffer, expected ", expect, " (offsets must tile the buffer without holes or overlap)");
    expect = e->end;
  }
  HT_CHECK_IO(expect == buffer_size, "[io] ", what, ": tensors cover ", expect, " bytes of a ", buffer_size,
           "-byte data buffer (trailing bytes are not allowed)");
  for (const Entry& e : entries) {
    StoragePtr s = storage_from_file(file, buffer + e.begin, e.end - e.begin, element_size(e.dtype));
    result.to_dict().set(e.name, Tensor(s, e.dtype, e.shape, contiguous_strides(e.shape), 0));
  }
  return result;
}

void save_safetensors(const Value& value, const std::string& path) {
  HT_CHECK_IO(value.is_dict(), "[io] ", path, ": safetensors holds only a flat name -> tensor map, got a ",
           value.kind_name());
  const Dict& d = value.to_dict();
  struct Item {
    std::string name;
    Tensor t;
    uint64_t begin = 0, end = 0;
  };
  std::vector<Item> items;
  for (const auto& [k, v] : d.items()) {
    HT_CHECK_IO(std::holds_alternative<std::string>(k), "[io] ", path, ": safetensors names must be strings, got ",
             key_str(k));
    const std::string& name = std::get<std::string>(k);
    HT_CHECK_IO(name != "__metadata__", "[io] ", path, ": '__metadata__' cannot name a tensor");
    HT_CHECK_IO(v.is_tensor(), "[io] ", path, ": safetensors holds only tensors, but '", name, "' is a ",
             v.kind_name(), " (a nested checkpoint: save it as .pth)");
    safetensors_dtype_name(v.to_tensor().dtype());
    items.push_back({name, v.to_tensor()});
  }
  // Offsets by descending element size keep every tensor naturally aligned, as the Rust writer does.
  std::vector<Item*> order;
  for (Item& it : items) order.push_back(&it);
  std::stable_sort(order.begin(), order.end(),
                   [](const Item* a, const Item* b) { return a->t.element_size() > b->t.element_size(); });
  uint64_t offset = 0;
  for (Item* it : order) {
    it->begin = offset;
    offset += it->t.nbytes();
    it->end = offset;
  }
  Json header = Json::object();
  Json meta = Json::object();
  const Value* user_meta = d.attrs ? d.attrs->find(std::string("__metadata__")) : nullptr;
  if (user_meta && user_meta->is_dict()) {
    for (const auto& [k, v] : user_meta->to_dict().items()) {
      HT_CHECK_IO(v.is_string(), "[io] ", path, ": __metadata__ value for '", key_str(k), "' is not a string");
      meta[key_str(k)] = v.to_string();
    }
  } else {
    meta["format"] = "pt";
  }
  header["__metadata__"] = meta;
  for (const Item& it : items)
    header[it.name] = {{"dtype", safetensors_dtype_name(it.t.dtype())},
                       {"shape", it.t.sizes()},
                       {"data_offsets", {it.begin, it.end}}};
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  AtomicFileWriter out(path);
  std::string len;
  put_u64(len, text.size());
  out.write(len);
  out.write(text);
  for (const Item* it : order) {
    Tensor keep;
    const uint8_t* p = contiguous_bytes(it->t, keep);
    out.write(p, it->t.nbytes());
  }
  out.commit();
}

}  // namespace ht::io
