// Files for the io layer: a read-only memory map (zero-copy loads), a crash-safe writer (temp file in the same
// folder, fsync, rename), CRC-32, and little-endian byte helpers shared by the format readers and writers.
#pragma once
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "halftorch/core/error.h"

namespace ht::io {

// The whole file, memory-mapped copy-on-write (tensors loaded from it may be written in place without touching
// the file). Falls back to reading into memory where mmap is not possible. Keep the shared_ptr alive as long as
// any tensor borrows from it.
class MappedFile {
 public:
  static std::shared_ptr<MappedFile> open(const std::string& path);
  // Bytes already in memory (a download, a fuzzer input), named `name` in error messages.
  static std::shared_ptr<MappedFile> from_memory(std::vector<uint8_t> bytes, std::string name);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
  std::vector<uint8_t> fallback_;
};

// Writes `path` crash-safely: bytes go to a temporary file next to it; commit() flushes, fsyncs and renames it
// over `path`. Destroying an uncommitted writer removes the temporary file, so an error leaves the old file.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::string path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, size_t n);
  void write(const std::string& s) { write(s.data(), s.size()); }
  uint64_t offset() const { return offset_; }
  void commit();
  const std::string& path() const { return path_; }

 private:
  void flush();
  std::string path_, temp_path_;
  int fd_ = -1;
  uint64_t offset_ = 0;
  std::vector<uint8_t> buffer_;
  bool committed_ = false;
};

// CRC-32 (zlib polynomial), continuing from `crc` (0 to start). libdeflate when available, else zlib.
uint32_t crc32(uint32_t crc, const void* data, size_t n);

// Little-endian appends and bounds-checked reads.
inline void put_u16(std::string& s, uint16_t v) {
  for (int i = 0; i < 2; ++i) s.push_back(char(v >> (8 * i)));
}
inline void put_u32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(char(v >> (8 * i)));
}
inline void put_u64(std::string& s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s.push_back(char(v >> (8 * i)));
}
inline uint64_t get_le(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// True when [offset, offset + n) lies inside a buffer of `size` bytes, without overflowing.
inline bool in_bounds(uint64_t offset, uint64_t n, uint64_t size) { return offset <= size && n <= size - offset; }

// Reads the whole (small) file into a string; for headers, tests and tools.
std::string read_file(const std::string& path);

// The extension of a path in lower case, with the dot (".pth"), or "" when none.
std::string extension_of(const std::string& path);

}  // namespace ht::io
