// NumPy .npy files (format 1.0-3.0): one little-endian array, C or Fortran order on read, C order on write.
#pragma once
#include <memory>
#include <string>

#include "halftorch/io/file.h"
#include "halftorch/io/value.h"

namespace ht::io {

bool looks_like_npy(const uint8_t* data, size_t size);
Value load_npy(const std::shared_ptr<MappedFile>& file);  // a Tensor value
void save_npy(const Tensor& t, const std::string& path);

}  // namespace ht::io
