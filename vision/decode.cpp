#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "core/error.h"
#include "vision/image.h"

namespace ht::vision {

namespace {

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  HT_CHECK(in.good(), "[decode_image] cannot open ", path, ": ", std::strerror(errno));
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  HT_CHECK(!in.bad(), "[decode_image] cannot read ", path, ": ", std::strerror(errno));
  return bytes;
}

}  // namespace

Image decode_image(const std::string& path, int64_t min_width, int64_t min_height) {
  std::vector<uint8_t> bytes = read_bytes(path);
  HT_CHECK(!bytes.empty(), "[decode_image] ", path, " is an empty file (0 bytes), not an image");
  static const uint8_t kJpeg[3] = {0xFF, 0xD8, 0xFF};
  static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (bytes.size() >= 3 && std::memcmp(bytes.data(), kJpeg, 3) == 0) return decode_jpeg(bytes, path, min_width, min_height);
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), kPng, 8) == 0) return decode_png(bytes, path);
  fail("[decode_image] ", path, " is neither a JPEG nor a PNG file (its first bytes match neither signature); ",
       "halftorch decodes only these two formats");
}

}  // namespace ht::vision
