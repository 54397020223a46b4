// PyTorch checkpoints: the zip format of torch.save (PyTorch >= 1.6, any prefix, zip64) and the legacy
// pickle-stream format (_use_new_zipfile_serialization=False), read; and the PyTorch 2.x zip layout, written.
#pragma once
#include <memory>
#include <string>

#include "halftorch/io/file.h"
#include "halftorch/io/value.h"

namespace ht::io {

// True when the bytes start like a zip archive / a legacy torch.save stream.
bool looks_like_zip(const uint8_t* data, size_t size);
bool looks_like_legacy_pth(const uint8_t* data, size_t size);

// Tensors borrow the mapped file where the record is aligned for the dtype and little-endian; otherwise they
// get their own copy. `file` stays alive as long as any such tensor does.
Value load_pth_zip(const std::shared_ptr<MappedFile>& file);
Value load_pth_legacy(const std::shared_ptr<MappedFile>& file);

// Writes the zip layout of PyTorch 2.x (prefix "archive", 64-byte aligned records). Storages shared by several
// tensors are written once; every tensor keeps its offset and strides. Crash-safe (temp file + rename).
void save_pth(const Value& value, const std::string& path);

}  // namespace ht::io
