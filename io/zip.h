// The zip container of PyTorch checkpoints: a bounds-checked reader (stored and deflated records, zip64, any
// layout) over bytes in memory, and a writer that reproduces PyTorch's miniz layout byte for byte (stored
// records, 64-byte aligned data via the "FB" extra field, data descriptors, zip64 end records).
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "halftorch/io/file.h"

namespace ht::io {

struct ZipEntry {
  std::string name;
  uint64_t local_header_offset = 0;
  uint64_t compressed_size = 0;
  uint64_t size = 0;
  uint16_t method = 0;  // 0 stored, 8 deflated
  uint32_t crc = 0;     // not verified: PyTorch may write 0 (compute_crc32=False)
};

class ZipReader {
 public:
  // `data` must outlive the reader; `what` names the file in error messages.
  ZipReader(const uint8_t* data, size_t size, std::string what);

  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(const std::string& name) const;
  // Offset in the buffer of the entry's (compressed) bytes, read from its local header.
  uint64_t data_offset(const ZipEntry& e) const;
  // Pointer to a stored entry's bytes (no copy); throws for compressed entries.
  const uint8_t* stored_data(const ZipEntry& e) const;
  // The entry's bytes, inflated when needed.
  std::string read(const ZipEntry& e) const;
  const std::string& what() const { return what_; }

 private:
  void read_central_directory();
  const uint8_t* data_;
  size_t size_;
  std::string what_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, size_t> by_name_;
};

// Streams records into `out` with PyTorch's exact layout. Record names get "<prefix>/" prepended.
class ZipWriter {
 public:
  ZipWriter(AtomicFileWriter& out, std::string prefix, uint64_t alignment = 64);
  void add(const std::string& name, const void* data, size_t size);
  // Appends `version` and `.data/serialization_id` as PyTorch's writeEndOfFile does, then the central directory.
  void finish();

 private:
  struct Written {
    std::string name;
    uint64_t offset, size;
    uint32_t crc;
  };
  AtomicFileWriter& out_;
  std::string prefix_;
  uint64_t alignment_;
  std::vector<Written> written_;
  uint64_t name_hash_ = 0, crc_hash_ = 0;
  bool finished_ = false;
};

}  // namespace ht::io
