// Helpers shared by the flat formats: a tensor's logical bytes in C order, and a Storage over file bytes that
// borrows the mapping when aligned or else copies.
#pragma once
#include <memory>
#include <string>

#include "halftorch/io/file.h"

#include "halftorch/core/tensor.h"

namespace ht::io {

// The tensor's elements in row-major order as one CPU buffer (no copy when already contiguous on the CPU:
// `keep` then holds the tensor that owns the bytes).
const uint8_t* contiguous_bytes(const Tensor& t, Tensor& keep);

// A CPU storage holding file bytes [p, p + n): borrows `file` when `p` is aligned to `alignment`.
StoragePtr storage_from_file(const std::shared_ptr<MappedFile>& file, const uint8_t* p, size_t n, size_t alignment);

}  // namespace ht::io
