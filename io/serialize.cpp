// Format detection and dispatch for ht::load / ht::save.
#include "io/serialize.h"

#include "io/file.h"
#include "io/npy.h"
#include "io/pth.h"
#include "io/safetensors.h"

namespace ht {
namespace io {

const char* format_name(Format f) {
  switch (f) {
    case Format::Pth: return "pth";
    case Format::PthLegacy: return "pth-legacy";
    case Format::Safetensors: return "safetensors";
    case Format::Npy: return "npy";
  }
  return "unknown";
}

Format detect_format(const uint8_t* data, size_t size, const std::string& path) {
  HT_CHECK_IO(size > 0, "[io] ", path, ": file is empty");
  if (looks_like_zip(data, size)) return Format::Pth;
  if (looks_like_legacy_pth(data, size)) return Format::PthLegacy;
  if (looks_like_npy(data, size)) return Format::Npy;
  if (looks_like_safetensors(data, size)) return Format::Safetensors;
  fail_io("[io] ", path, ": not a checkpoint halftorch can read (expected a torch.save zip or legacy file, ",
       "safetensors or .npy)");
}

Value load(const std::string& path, Format* format) {
  std::shared_ptr<MappedFile> file = MappedFile::open(path);
  Format f = detect_format(file->data(), file->size(), path);
  if (format) *format = f;
  switch (f) {
    case Format::Pth: return load_pth_zip(file);
    case Format::PthLegacy: return load_pth_legacy(file);
    case Format::Safetensors: return load_safetensors(file);
    case Format::Npy: return load_npy(file);
  }
  fail_io("[io] unreachable format");
}

Format format_for_path(const std::string& path) {
  std::string ext = extension_of(path);
  if (ext == ".safetensors") return Format::Safetensors;
  if (ext == ".npy") return Format::Npy;
  return Format::Pth;
}

}  // namespace io

Value load(const std::string& path) { return io::load(path, nullptr); }

void save(const Value& value, const std::string& path) {
  switch (io::format_for_path(path)) {
    case io::Format::Safetensors: return io::save_safetensors(value, path);
    case io::Format::Npy:
      HT_CHECK_IO(value.is_tensor(), "[io] ", path, ": .npy holds one tensor, got a ", value.kind_name());
      return io::save_npy(value.to_tensor(), path);
    default: return io::save_pth(value, path);
  }
}

StateDict load_state_dict_file(const std::string& path) {
  Value v = load(path);
  try {
    return to_state_dict(v);
  } catch (const Error& e) {
    fail_io(std::string(e.what()), " (in ", path, ")");
  }
}

void save(const StateDict& state_dict, const std::string& path) { save(to_value(state_dict), path); }

}  // namespace ht
