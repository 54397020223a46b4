// Zip reader and writer; byte layout per shared/reference/pth-format.md §2.4 and §2.7.
#include "io/zip.h"

#include <zlib.h>

#include <algorithm>
#include <iomanip>
#include <sstream>

namespace ht::io {

namespace {
constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEocdSig = 0x06054b50,
                   kZip64EocdSig = 0x06064b50, kZip64LocatorSig = 0x07064b50, kDescriptorSig = 0x08074b50;
constexpr uint64_t kMax32 = 0xFFFFFFFFull;
// Deflate cannot expand by more than this factor; a larger claimed size is a lie, not a reason to allocate.
constexpr uint64_t kMaxInflateRatio = 1100;
}  // namespace

ZipReader::ZipReader(const uint8_t* data, size_t size, std::string what)
    : data_(data), size_(size), what_(std::move(what)) {
  read_central_directory();
}

void ZipReader::read_central_directory() {
  HT_CHECK_IO(size_ >= 22, "[io] '", what_, "' is too small to be a zip archive (", size_, " bytes)");
  // The end record sits in the last 22 + 65535 (comment) bytes.
  uint64_t lowest = size_ > 22 + 65535 ? size_ - 22 - 65535 : 0;
  uint64_t eocd = UINT64_MAX;
  for (uint64_t pos = size_ - 22 + 1; pos-- > lowest;) {
    if (get_le(data_ + pos, 4) == kEocdSig && pos + 22 + get_le(data_ + pos + 20, 2) <= size_) {
      eocd = pos;
      break;
    }
  }
  HT_CHECK_IO(eocd != UINT64_MAX, "[io] '", what_, "': no zip end-of-central-directory record (truncated file?)");
  const uint8_t* e = data_ + eocd;
  uint64_t count = get_le(e + 10, 2), cd_size = get_le(e + 12, 4), cd_offset = get_le(e + 16, 4);
  // Prefer the zip64 end record when its locator is present (PyTorch always writes it).
  if (eocd >= 20 && get_le(data_ + eocd - 20, 4) == kZip64LocatorSig) {
    uint64_t z64 = get_le(data_ + eocd - 20 + 8, 8);
    HT_CHECK_IO(in_bounds(z64, 56, size_) && get_le(data_ + z64, 4) == kZip64EocdSig, "[io] '", what_,
             "': zip64 locator points at offset ", z64, ", where there is no zip64 end record");
    count = get_le(data_ + z64 + 32, 8);
    cd_size = get_le(data_ + z64 + 40, 8);
    cd_offset = get_le(data_ + z64 + 48, 8);
  }
  HT_CHECK_IO(in_bounds(cd_offset, cd_size, size_), "[io] '", what_, "': central directory (offset ", cd_offset,
           ", size ", cd_size, ") lies outside the file of ", size_, " bytes");
  HT_CHECK_IO(count <= cd_size / 46, "[io] '", what_, "': zip claims ", count, " entries in a central directory of ",
           cd_size, " bytes");
  entries_.reserve(size_t(count));
  uint64_t pos = cd_offset, end = cd_offset + cd_size;
  for (uint64_t i = 0; i < count; ++i) {
    HT_CHECK_IO(in_bounds(pos, 46, end) && get_le(data_ + pos, 4) == kCentralSig, "[io] '", what_,
             "': central directory entry ", i, " is corrupt");
    const uint8_t* h = data_ + pos;
    ZipEntry z;
    z.method = uint16_t(get_le(h + 10, 2));
    z.crc = uint32_t(get_le(h + 16, 4));
    z.compressed_size = get_le(h + 20, 4);
    z.size = get_le(h + 24, 4);
    uint64_t name_len = get_le(h + 28, 2), extra_len = get_le(h + 30, 2), comment_len = get_le(h + 32, 2);
    z.local_header_offset = get_le(h + 42, 4);
    HT_CHECK_IO(in_bounds(pos + 46, name_len + extra_len + comment_len, end), "[io] '", what_,
             "': central directory entry ", i, " runs past the directory");
    z.name.assign(reinterpret_cast<const char*>(h + 46), name_len);
    // zip64 extra: the 64-bit values appear only for the fields whose 32-bit slot holds the sentinel.
    const uint8_t* x = h + 46 + name_len;
    for (uint64_t off = 0; off + 4 <= extra_len;) {
      uint64_t id = get_le(x + off, 2), len = get_le(x + off + 2, 2);
      HT_CHECK_IO(off + 4 + len <= extra_len, "[io] '", what_, "': extra field of '", z.name, "' is corrupt");
      if (id == 1) {
        const uint8_t* f = x + off + 4;
        uint64_t used = 0;
        auto take = [&](uint64_t& field) {
          if (field != kMax32) return;
          HT_CHECK_IO(used + 8 <= len, "[io] '", what_, "': zip64 field of '", z.name, "' is too short");
          field = get_le(f + used, 8);
          used += 8;
        };
        take(z.size);
        take(z.compressed_size);
        take(z.local_header_offset);
      }
      off += 4 + len;
    }
    HT_CHECK_IO(z.method == 0 || z.method == 8, "[io] '", what_, "': record '", z.name,
             "' uses zip compression method ", z.method, " (only stored and deflated are supported)");
    HT_CHECK_IO(z.method != 0 || z.compressed_size == z.size, "[io] '", what_, "': stored record '", z.name,
             "' has compressed size ", z.compressed_size, " but size ", z.size);
    HT_CHECK_IO(!by_name_.count(z.name), "[io] '", what_, "': record '", z.name, "' appears twice");
    by_name_.emplace(z.name, entries_.size());
    entries_.push_back(std::move(z));
    pos += 46 + name_len + extra_len + comment_len;
  }
}

const ZipEntry* ZipReader::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &entries_[it->second];
}

uint64_t ZipReader::data_offset(const ZipEntry& e) const {
  uint64_t lho = e.local_header_offset;
  HT_CHECK_IO(in_bounds(lho, 30, size_) && get_le(data_ + lho, 4) == kLocalSig, "[io] '", what_, "': record '",
           e.name, "' has no local header at offset ", lho);
  uint64_t start = lho + 30 + get_le(data_ + lho + 26, 2) + get_le(data_ + lho + 28, 2);
  HT_CHECK_IO(in_bounds(start, e.compressed_size, size_), "[io] '", what_, "': record '", e.name, "' (",
           e.compressed_size, " bytes at offset ", start, ") runs past the end of the file (", size_,
           " bytes; truncated?)");
  return start;
}

const uint8_t* ZipReader::stored_data(const ZipEntry& e) const {
  HT_CHECK_IO(e.method == 0, "[io] '", what_, "': record '", e.name, "' is compressed");
  return data_ + data_offset(e);
}

std::string ZipReader::read(const ZipEntry& e) const {
  if (e.method == 0) {
    const uint8_t* p = stored_data(e);
    return std::string(reinterpret_cast<const char*>(p), e.size);
  }
  uint64_t start = data_offset(e);
  HT_CHECK_IO(e.size <= e.compressed_size * kMaxInflateRatio + 64, "[io] '", what_, "': deflated record '", e.name,
           "' claims ", e.size, " bytes from ", e.compressed_size, " compressed bytes");
  std::string out(e.size, '\0');
  z_stream zs{};
  HT_CHECK_IO(inflateInit2(&zs, -15) == Z_OK, "[io] zlib inflateInit failed");
  zs.next_in = const_cast<Bytef*>(data_ + start);
  zs.avail_in = uInt(std::min<uint64_t>(e.compressed_size, UINT32_MAX));
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = uInt(std::min<uint64_t>(e.size, UINT32_MAX));
  int rc = inflate(&zs, Z_FINISH);
  uint64_t produced = zs.total_out;
  inflateEnd(&zs);
  HT_CHECK_IO(rc == Z_STREAM_END && produced == e.size, "[io] '", what_, "': deflated record '", e.name,
           "' is corrupt or its size disagrees with the directory");
  return out;
}

ZipWriter::ZipWriter(AtomicFileWriter& out, std::string prefix, uint64_t alignment)
    : out_(out), prefix_(std::move(prefix)), alignment_(alignment) {
  HT_CHECK_IO(!prefix_.empty() && prefix_.find('/') == std::string::npos, "[io] invalid zip prefix '", prefix_, "'");
}

void ZipWriter::add(const std::string& record, const void* data, size_t size) {
  HT_CHECK_IO(!finished_, "[io] zip record added after finish");
  const std::string name = prefix_ + "/" + record;
  const uint64_t offset = out_.offset(), s = size;
  const bool zip64 = s >= kMax32 || offset >= kMax32;
  uint64_t start = offset + 30 + name.size() + 4;
  if (zip64) start += 4 + (s >= kMax32 ? 16 : 0) + (offset >= kMax32 ? 8 : 0);
  const uint64_t pad = (alignment_ - start % alignment_) % alignment_;

  std::string h;
  put_u32(h, kLocalSig);
  put_u16(h, 0);                       // version needed: miniz writes 0 for stored records
  put_u16(h, s > 0 ? 0x0808 : 0x0800);  // data descriptor follows (non-empty only) + UTF-8 names
  put_u16(h, 0);                       // stored
  put_u32(h, 0);                       // DOS time and date: miniz is built with MINIZ_NO_TIME
  put_u32(h, 0);                       // crc, sizes: in the descriptor
  put_u32(h, 0);
  put_u32(h, 0);
  std::string extra;
  if (zip64) {
    put_u16(extra, 1);
    put_u16(extra, uint16_t(8 * ((s >= kMax32 ? 2 : 0) + (offset >= kMax32 ? 1 : 0))));
    if (s >= kMax32) {
      put_u64(extra, s);
      put_u64(extra, 0);  // miniz writes the compressed size before it is known
    }
    if (offset >= kMax32) put_u64(extra, offset);
  }
  put_u16(extra, 0x4246);  // "FB": PyTorch's padding field, aligns the data
  put_u16(extra, uint16_t(pad));
  extra.append(pad, 'Z');
  put_u16(h, uint16_t(name.size()));
  put_u16(h, uint16_t(extra.size()));
  h += name;
  h += extra;
  out_.write(h);
  out_.write(data, size);
  const uint32_t crc = crc32(0, data, size);
  if (s > 0) {
    std::string d;
    put_u32(d, kDescriptorSig);
    put_u32(d, crc);
    if (zip64) {
      put_u64(d, s);
      put_u64(d, s);
    } else {
      put_u32(d, uint32_t(s));
      put_u32(d, uint32_t(s));
    }
    out_.write(d);
  }
  written_.push_back({name, offset, s, crc});
  // An identifier that changes with record names and contents, like PyTorch's serialization_id.
  for (char c : name) name_hash_ = (name_hash_ ^ uint8_t(c)) * 1099511628211ull;
  crc_hash_ ^= crc + 0x9e3779b97f4a7c15ull + (crc_hash_ << 6) + (crc_hash_ >> 2);
}

void ZipWriter::finish() {
  HT_CHECK_IO(!finished_, "[io] zip finished twice");
  add("version", "3\n", 2);
  std::ostringstream id;
  id << std::setfill('0') << std::setw(20) << name_hash_ << std::setw(20) << crc_hash_;
  std::string sid = id.str().substr(0, 40);
  add(".data/serialization_id", sid.data(), sid.size());
  finished_ = true;

  const uint64_t cd_offset = out_.offset();
  std::string cd;
  for (const Written& w : written_) {
    std::string extra;
    if (w.size >= kMax32 || w.offset >= kMax32) {
      put_u16(extra, 1);
      put_u16(extra, uint16_t(8 * ((w.size >= kMax32 ? 2 : 0) + (w.offset >= kMax32 ? 1 : 0))));
      if (w.size >= kMax32) {
        put_u64(extra, w.size);
        put_u64(extra, w.size);
      }
      if (w.offset >= kMax32) put_u64(extra, w.offset);
    }
    put_u32(cd, kCentralSig);
    put_u16(cd, 0);
    put_u16(cd, 0);
    put_u16(cd, w.size > 0 ? 0x0808 : 0x0800);
    put_u16(cd, 0);
    put_u32(cd, 0);
    put_u32(cd, w.crc);
    put_u32(cd, uint32_t(std::min(w.size, kMax32)));
    put_u32(cd, uint32_t(std::min(w.size, kMax32)));
    put_u16(cd, uint16_t(w.name.size()));
    put_u16(cd, uint16_t(extra.size()));
    put_u16(cd, 0);  // comment
    put_u16(cd, 0);  // disk
    put_u16(cd, 0);  // internal attributes
    put_u32(cd, 0);  // external attributes
    put_u32(cd, uint32_t(std::min(w.offset, kMax32)));
    cd += w.name;
    cd += extra;
    if (cd.size() >= (1u << 20)) {
      out_.write(cd);
      cd.clear();
    }
  }
  out_.write(cd);
  const uint64_t cd_size = out_.offset() - cd_offset, n = written_.size(), z64 = out_.offset();
  std::string end;
  put_u32(end, kZip64EocdSig);
  put_u64(end, 44);
  put_u16(end, 0x031E);
  put_u16(end, 0x002D);
  put_u32(end, 0);
  put_u32(end, 0);
  put_u64(end, n);
  put_u64(end, n);
  put_u64(end, cd_size);
  put_u64(end, cd_offset);
  put_u32(end, kZip64LocatorSig);
  put_u32(end, 0);
  put_u64(end, z64);
  put_u32(end, 1);
  put_u32(end, kEocdSig);
  put_u16(end, 0);
  put_u16(end, 0);
  put_u16(end, uint16_t(std::min<uint64_t>(n, 0xFFFF)));
  put_u16(end, uint16_t(std::min<uint64_t>(n, 0xFFFF)));
  put_u32(end, uint32_t(std::min(cd_size, kMax32)));
  put_u32(end, uint32_t(std::min(cd_offset, kMax32)));
  put_u16(end, 0);
  out_.write(end);
}

}  // namespace ht::io
