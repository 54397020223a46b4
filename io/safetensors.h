// safetensors: u64 header length, JSON header (name -> dtype, shape, data_offsets; optional __metadata__), then
// the tensor bytes, which must tile the buffer exactly. Holds only a flat name -> tensor map.
#pragma once
#include <memory>
#include <string>

#include "halftorch/io/file.h"
#include "halftorch/io/value.h"

namespace ht::io {

bool looks_like_safetensors(const uint8_t* data, size_t size);
// A dict of tensors in header order; `__metadata__` (str -> str) is kept as the dict's attrs["__metadata__"].
Value load_safetensors(const std::shared_ptr<MappedFile>& file);
// `value` must be a dict of tensors with str keys; attrs["__metadata__"] (str -> str) is written back, else
// {"format": "pt"}. Tensors are written contiguous, each on its own (the format cannot share storage).
void save_safetensors(const Value& value, const std::string& path);

// safetensors dtype names ("F16", ...) and back.
const char* safetensors_dtype_name(DType d);
DType dtype_from_safetensors_name(const std::string& name, const std::string& what);

}  // namespace ht::io
