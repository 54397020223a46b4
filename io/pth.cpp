// .pth reading (zip and legacy) and writing (zip). Record layout: shared/reference/pth-format.md §2, §3, §6.1.
#include "io/pth.h"

#include <bit>
#include <cstring>
#include <map>
#include <unordered_map>

#include "io/pickle.h"
#include "io/tensor_bytes.h"
#include "io/zip.h"

namespace ht::io {

static_assert(std::endian::native == std::endian::little, "halftorch io assumes a little-endian host");

namespace {

const uint8_t kLegacyMagic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};

struct StorageSpec {
  std::string key;
  DType dtype;
  uint64_t nbytes;
  bool untyped;  // torch.storage.UntypedStorage: numel counts bytes
};

// Validates a ('storage', type, key, location, numel[, view_metadata]) persistent id.
StorageSpec parse_storage_pid(const Value& pid, size_t tuple_size, const std::string& what) {
  HT_CHECK_IO(pid.is_tuple() && pid.items().size() == tuple_size, "[io] ", what,
           ": persistent id is not a storage tuple of ", tuple_size, " items");
  const ValueList& a = pid.items();
  HT_CHECK_IO(a[0].is_string() && a[0].to_string() == "storage", "[io] ", what,
           ": only storages may be loaded by persistent id (got a '",
           a[0].is_string() ? a[0].to_string() : a[0].kind_name(), "' id)");
  HT_CHECK_IO(a[1].is_global(), "[io] ", what, ": storage type is a ", a[1].kind_name());
  HT_CHECK_IO(a[2].is_string(), "[io] ", what, ": storage key is a ", a[2].kind_name());
  HT_CHECK_IO(a[4].is_int() && a[4].to_int() >= 0, "[io] ", what, ": storage '", a[2].to_string(),
           "' has an invalid size");
  const Global& g = a[1].to_global();
  StorageSpec s;
  s.key = a[2].to_string();
  s.untyped = g.module == "torch.storage" && g.name == "UntypedStorage";
  HT_CHECK_IO(s.untyped || g.module == "torch", "[io] ", what, ": storage type ", g.full_name(), " is not supported");
  s.dtype = s.untyped ? kUInt8 : dtype_of_storage_type(g.name);
  uint64_t numel = uint64_t(a[4].to_int());
  HT_CHECK_IO(numel <= (uint64_t(1) << 60), "[io] ", what, ": storage '", s.key, "' claims ", numel, " elements");
  s.nbytes = numel * element_size(s.dtype);
  return s;
}

Tensor storage_tensor(StoragePtr storage, DType dtype) {
  int64_t numel = int64_t(storage->nbytes() / element_size(dtype));
  return Tensor(std::move(storage), dtype, {numel}, {1}, 0);
}

void byteswap(uint8_t* p, size_t nbytes, size_t elsize) {
  if (elsize == 1) return;
  for (size_t i = 0; i + elsize <= nbytes; i += elsize)
    for (size_t a = 0, b = elsize - 1; a < b; ++a, --b) std::swap(p[i + a], p[i + b]);
}

std::string record_text(const ZipReader& zip, const std::string& name) {
  const ZipEntry* e = zip.find(name);
  if (!e) return "";
  HT_CHECK_IO(e->size <= 4096, "[io] ", zip.what(), ": record '", name, "' is unexpectedly large");
  return zip.read(*e);
}

}  // namespace

bool looks_like_zip(const uint8_t* data, size_t size) {
  return size >= 4 && data[0] == 'P' && data[1] == 'K' && data[2] == 3 && data[3] == 4;
}

bool looks_like_legacy_pth(const uint8_t* data, size_t size) {
  return size >= sizeof kLegacyMagic && std::memcmp(data, kLegacyMagic, sizeof kLegacyMagic) == 0;
}

Value load_pth_zip(const std::shared_ptr<MappedFile>& file) {
  const std::string& what = file->path();
  ZipReader zip(file->data(), file->size(), what);
  HT_CHECK_IO(!zip.entries().empty(), "[io] ", what, ": empty zip archive");
  const std::string& first = zip.entries().front().name;
  auto slash = first.find('/');
  HT_CHECK_IO(slash != std::string::npos, "[io] ", what, ": zip record '", first,
           "' is not inside a folder (not a torch.save file)");
  const std::string prefix = first.substr(0, slash + 1);
  HT_CHECK_IO(!zip.find(prefix + "constants.pkl"), "[io] ", what,
           ": is a TorchScript archive (torch.jit.save), not a torch.save checkpoint");
  const ZipEntry* pkl = zip.find(prefix + "data.pkl");
  HT_CHECK_IO(pkl, "[io] ", what, ": no '", prefix, "data.pkl' record (not a torch.save file)");

  std::string byteorder = record_text(zip, prefix + "byteorder");
  HT_CHECK_IO(byteorder.empty() || byteorder == "little" || byteorder == "big", "[io] ", what, ": byteorder record is '",
           byteorder, "'");
  const bool swap = byteorder == "big";

  std::unordered_map<std::string, std::pair<StoragePtr, DType>> storages;
  PersistentLoad load_storage = [&](const Value& pid) -> Value {
    StorageSpec s = parse_storage_pid(pid, 5, what);
    auto it = storages.find(s.key);
    if (it != storages.end()) {
      HT_CHECK_IO(it->second.second == s.dtype, "[io] ", what, ": storage '", s.key, "' is used as both ",
               dtype_name(it->second.second), " and ", dtype_name(s.dtype));
      return storage_tensor(it->second.first, s.dtype);
    }
    const std::string name = prefix + "data/" + s.key;
    const ZipEntry* e = zip.find(name);
    HT_CHECK_IO(e, "[io] ", what, ": storage record '", name, "' is missing");
    HT_CHECK_IO(e->size == s.nbytes, "[io] ", what, ": storage record '", name, "' has ", e->size,
             " bytes, but its pickle says ", s.nbytes, " (", dtype_name(s.dtype), ")");
    StoragePtr storage;
    const size_t elsize = element_size(s.dtype);
    if (e->method == 0) {
      storage = storage_from_file(file, zip.stored_data(*e), s.nbytes, elsize);
    } else {
      std::string bytes = zip.read(*e);
      storage = std::make_shared<Storage>(s.nbytes, kCPU);
      if (s.nbytes) std::memcpy(storage->data(), bytes.data(), s.nbytes);
    }
    // A borrowed mapping is private copy-on-write, so swapping in place never touches the file.
    if (swap && s.nbytes) byteswap(static_cast<uint8_t*>(storage->data()), s.nbytes, elsize);
    storages.emplace(s.key, std::make_pair(storage, s.dtype));
    return storage_tensor(storage, s.dtype);
  };
  std::string pickle_bytes;
  const uint8_t* pdata;
  if (pkl->method == 0) {
    pdata = zip.stored_data(*pkl);
  } else {
    pickle_bytes = zip.read(*pkl);
    pdata = reinterpret_cast<const uint8_t*>(pickle_bytes.data());
  }
  return unpickle(pdata, pkl->size, load_storage, what + " (data.pkl)");
}

Value load_pth_legacy(const std::shared_ptr<MappedFile>& file) {
  const std::string& what = file->path();
  const uint8_t* data = file->data();
  const size_t size = file->size();
  HT_CHECK_IO(looks_like_legacy_pth(data, size), "[io] ", what, ": not a legacy torch.save file (bad magic number)");
  size_t pos = sizeof kLegacyMagic, used = 0;
  Value protocol = unpickle(data + pos, size - pos, nullptr, what + " (protocol)", &used);
  pos += used;
  HT_CHECK_IO(protocol.is_int() && protocol.to_int() == 1001, "[io] ", what, ": legacy protocol version is not 1001");
  Value sys_info = unpickle(data + pos, size - pos, nullptr, what + " (sys_info)", &used);
  pos += used;
  HT_CHECK_IO(sys_info.is_dict(), "[io] ", what, ": legacy sys_info is not a dict");

  // Storages follow the object; allocate them when first referenced (sizes checked against the file size)
  // and fill them once the key list is read.
  struct Pending {
    StoragePtr storage;
    DType dtype;
  };
  std::map<std::string, Pending> storages;
  uint64_t claimed = 0;
  PersistentLoad load_storage = [&](const Value& pid) -> Value {
    HT_CHECK_IO(pid.is_tuple() && pid.items().size() == 6 && pid.items()[5].is_none(), "[io] ", what,
             ": legacy persistent id is not ('storage', type, key, location, numel, None)");
    StorageSpec s = parse_storage_pid(pid, 6, what);
    auto it = storages.find(s.key);
    if (it != storages.end()) {
      HT_CHECK_IO(it->second.dtype == s.dtype && it->second.storage->nbytes() == s.nbytes, "[io] ", what,
               ": storage '", s.key, "' is described two different ways");
      return storage_tensor(it->second.storage, s.dtype);
    }
    claimed += s.nbytes;
    HT_CHECK_IO(claimed <= size, "[io] ", what, ": storages claim more bytes (", claimed, ") than the file has (",
             size, ")");
    auto storage = std::make_shared<Storage>(s.nbytes, kCPU);
    storages.emplace(s.key, Pending{storage, s.dtype});
    return storage_tensor(storage, s.dtype);
  };
  Value result = unpickle(data + pos, size - pos, load_storage, what + " (object)", &used);
  pos += used;
  Value keys = unpickle(data + pos, size - pos, nullptr, what + " (storage keys)", &used);
  pos += used;
  HT_CHECK_IO(keys.is_list(), "[io] ", what, ": legacy storage key list is a ", keys.kind_name());
  HT_CHECK_IO(keys.items().size() == storages.size(), "[io] ", what, ": file lists ", keys.items().size(),
           " storages, its object uses ", storages.size());
  for (const Value& k : keys.items()) {
    HT_CHECK_IO(k.is_string(), "[io] ", what, ": legacy storage key is a ", k.kind_name());
    auto it = storages.find(k.to_string());
    HT_CHECK_IO(it != storages.end(), "[io] ", what, ": storage '", k.to_string(), "' is not used by the object");
    HT_CHECK_IO(in_bounds(pos, 8, size), "[io] ", what, ": truncated before storage '", k.to_string(), "'");
    uint64_t numel = get_le(data + pos, 8);
    pos += 8;
    const Pending& p = it->second;
    const uint64_t want = p.storage->nbytes() / element_size(p.dtype);
    HT_CHECK_IO(numel == want, "[io] ", what, ": storage '", k.to_string(), "' has ", numel,
             " elements in the file, but its pickle says ", want);
    HT_CHECK_IO(in_bounds(pos, p.storage->nbytes(), size), "[io] ", what, ": storage '", k.to_string(),
             "' runs past the end of the file (truncated?)");
    if (p.storage->nbytes()) std::memcpy(p.storage->data(), data + pos, p.storage->nbytes());
    pos += p.storage->nbytes();
  }
  return result;
}

void save_pth(const Value& value, const std::string& path) {
  struct Record {
    StoragePtr storage;
    DType dtype;
  };
  std::vector<Record> records;
  std::unordered_map<const Storage*, size_t> index;
  PersistentId assign = [&](const Tensor& t) -> StorageRef {
    const StoragePtr& s = t.storage();
    HT_CHECK_IO(s != nullptr, "[io] cannot save a tensor without storage");
    auto it = index.find(s.get());
    size_t i;
    if (it == index.end()) {
      HT_CHECK_IO(s->nbytes() % t.element_size() == 0, "[io] cannot save a ", dtype_name(t.dtype()),
               " tensor whose storage holds ", s->nbytes(), " bytes (not a whole number of elements)");
      i = records.size();
      index.emplace(s.get(), i);
      records.push_back({s, t.dtype()});
    } else {
      i = it->second;
      HT_CHECK_IO(records[i].dtype == t.dtype(), "[io] cannot save tensors that view the same storage as ",
               dtype_name(records[i].dtype), " and ", dtype_name(t.dtype()), " (PyTorch refuses this too)");
    }
    return {std::to_string(i), int64_t(s->nbytes() / t.element_size())};
  };
  std::string pkl = pickle(value, assign);

  AtomicFileWriter out(path);
  ZipWriter zip(out, "archive");
  zip.add("data.pkl", pkl.data(), pkl.size());
  zip.add(".format_version", "1", 1);
  zip.add(".storage_alignment", "64", 2);
  zip.add("byteorder", "little", 6);
  for (size_t i = 0; i < records.size(); ++i) {
    const StoragePtr& s = records[i].storage;
    if (s->device().is_cpu() || s->nbytes() == 0) {
      zip.add("data/" + std::to_string(i), s->data(), s->nbytes());
    } else {
      Tensor host = Tensor(s, kUInt8, {int64_t(s->nbytes())}, {1}, 0).cpu();
      zip.add("data/" + std::to_string(i), host.raw_data(), s->nbytes());
    }
  }
  zip.finish();
  out.commit();
}

}  // namespace ht::io
