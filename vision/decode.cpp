#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "core/error.h"
#include "vision/image.h"

namespace ht::vision {

namespace {

const uint8_t kJpegSignature[3] = {0xFF, 0xD8, 0xFF};
const uint8_t kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};

}  // namespace

std::vector<uint8_t> read_image_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  HT_CHECK_IO(in.good(), "[decode_image] cannot open ", path, ": ", std::strerror(errno));
  // One read of the whole file where its size is known (a regular file), else to the end as it comes (a pipe).
  std::vector<uint8_t> bytes;
  std::streamoff size = in.seekg(0, std::ios::end) ? std::streamoff(in.tellg()) : -1;
  if (size >= 0 && in.seekg(0)) {
    bytes.resize(size_t(size));
    in.read(reinterpret_cast<char*>(bytes.data()), size);
    bytes.resize(size_t(in.gcount()));
  } else {
    in.clear();
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  HT_CHECK_IO(!in.bad(), "[decode_image] cannot read ", path, ": ", std::strerror(errno));
  HT_CHECK_IO(!bytes.empty(), "[decode_image] ", path, " is an empty file (0 bytes), not an image");
  return bytes;
}

bool is_jpeg(const std::vector<uint8_t>& bytes) {
  return bytes.size() >= 3 && std::memcmp(bytes.data(), kJpegSignature, 3) == 0;
}

Image decode_image_bytes(const std::vector<uint8_t>& bytes, const std::string& path, int64_t min_width,
                         int64_t min_height) {
  if (is_jpeg(bytes)) return decode_jpeg(bytes, path, min_width, min_height);
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), kPngSignature, 8) == 0) return decode_png(bytes, path);
  fail_io("[decode_image] ", path, " is neither a JPEG nor a PNG file (its first bytes match neither signature); ",
       "halftorch decodes only these two formats");
}

Image decode_image(const std::string& path, int64_t min_width, int64_t min_height) {
  return decode_image_bytes(read_image_file(path), path, min_width, min_height);
}

}  // namespace ht::vision
