// The public load/save entry points: ht::load reads .pth (zip or legacy), .safetensors and .npy by content;
// ht::save writes by the path's extension (.safetensors, .npy, anything else a PyTorch zip checkpoint).
#pragma once
#include <string>

#include "halftorch/io/value.h"

namespace ht {

// Whatever the file holds: a dict for state_dicts and checkpoints, a Tensor for .npy.
Value load(const std::string& path);
// Crash-safe: a previous file at `path` survives any error, and no partial file is left behind.
void save(const Value& value, const std::string& path);

// A flat name -> tensor file (state_dict .pth or .safetensors), `_metadata` module versions kept.
StateDict load_state_dict_file(const std::string& path);
// Saved as torch's Module.state_dict() is: an OrderedDict with `_metadata` when module_versions is set.
void save(const StateDict& state_dict, const std::string& path);

namespace io {

enum class Format { Pth, PthLegacy, Safetensors, Npy };
// "pth", "pth-legacy", "safetensors", "npy"
const char* format_name(Format f);
// Detects the format from the file's first bytes; throws "[io] <path>: not a checkpoint ..." otherwise.
Format detect_format(const uint8_t* data, size_t size, const std::string& path);
// ht::load, also reporting the format found.
Value load(const std::string& path, Format* format);
// The format ht::save picks for `path`.
Format format_for_path(const std::string& path);

}  // namespace io
}  // namespace ht
