// train_resnet18 --tensorboard DIR: a TensorBoard event file of scalars, written without TensorFlow or
// libprotobuf. The file is TFRecord-framed (tensorflow/core/lib/io/record_writer.cc): each record is
//   uint64 length (little-endian), masked CRC32C of those 8 bytes, the data, masked CRC32C of the data
// and each record's data is one serialized tensorflow.Event (tensorflow/core/util/event.proto):
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//   Summary { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; }
// (tensorflow/core/framework/summary.proto). Those three messages are all a scalar log needs, so they are
// encoded by hand below (protobuf wire format: https://protobuf.dev/programming-guides/encoding/) rather than
// linking libprotobuf and compiling TensorFlow's .proto files. The file name follows
// torch.utils.tensorboard.SummaryWriter's: events.out.tfevents.<unix seconds>.<hostname>.<pid>.0 .
#pragma once
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include <halftorch/halftorch.h>

namespace examples {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord uses it.
inline uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  const auto* p = static_cast<const uint8_t*>(data);
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

// TFRecord stores CRCs masked (rotated and offset) so that a CRC of data that itself holds CRCs stays robust.
inline uint32_t masked_crc32c(const void* data, size_t n) {
  uint32_t crc = crc32c(data, n);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

// The few protobuf wire-format pieces the three messages use (fields are written in field-number order).
namespace pb {
inline void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(char(uint8_t(v) | 0x80));
    v >>= 7;
  }
  out.push_back(char(v));
}
inline void key(std::string& out, int field, int wire_type) { varint(out, uint64_t(field) << 3 | uint64_t(wire_type)); }
template <class T>
void fixed(std::string& out, int field, T v) {  // wire type 1 (fixed64: double) or 5 (fixed32: float)
  static_assert(sizeof(T) == 8 || sizeof(T) == 4);
  key(out, field, sizeof(T) == 8 ? 1 : 5);
  char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));  // protobuf is little-endian, as is every host halftorch builds for
  out.append(bytes, sizeof(T));
}
inline void bytes(std::string& out, int field, const std::string& s) {  // wire type 2: strings, sub-messages
  key(out, field, 2);
  varint(out, s.size());
  out += s;
}
inline void int64(std::string& out, int field, int64_t v) {
  key(out, field, 0);
  varint(out, uint64_t(v));
}
}  // namespace pb

class TensorBoardWriter {
 public:
  explicit TensorBoardWriter(const std::string& dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    HT_CHECK(!ec, "--tensorboard: cannot create directory ", dir, ": ", ec.message());
    char host[256] = {};
    if (::gethostname(host, sizeof(host) - 1) != 0) std::strcpy(host, "localhost");
    int64_t secs = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
    path_ = (std::filesystem::path(dir) / ("events.out.tfevents." + std::to_string(secs) + "." + host + "." +
                                           std::to_string(::getpid()) + ".0")).string();
    file_.open(path_, std::ios::binary | std::ios::trunc);
    HT_CHECK(file_.good(), "--tensorboard: cannot open ", path_, " for writing");
    std::string event;
    pb::fixed(event, 1, wall_time());
    pb::bytes(event, 3, "brain.Event:2");  // the version string every TensorBoard reader expects first
    write_record(event);
  }

  // One scalar point: Event{wall_time, step, summary{value{tag, simple_value}}}, flushed at once so a killed
  // run keeps every point written so far and `tensorboard --logdir` shows them live.
  void add_scalar(const std::string& tag, double value, int64_t step) {
    std::string v, summary, event;
    pb::bytes(v, 1, tag);
    pb::fixed(v, 2, float(value));
    pb::bytes(summary, 1, v);
    pb::fixed(event, 1, wall_time());
    pb::int64(event, 2, step);
    pb::bytes(event, 5, summary);
    write_record(event);
  }

  const std::string& path() const { return path_; }

 private:
  static double wall_time() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  }
  void write_record(const std::string& data) {
    char header[12];
    uint64_t n = data.size();
    std::memcpy(header, &n, 8);
    uint32_t len_crc = masked_crc32c(header, 8), data_crc = masked_crc32c(data.data(), data.size());
    std::memcpy(header + 8, &len_crc, 4);
    file_.write(header, 12);
    file_.write(data.data(), std::streamsize(data.size()));
    file_.write(reinterpret_cast<const char*>(&data_crc), 4);
    file_.flush();
    HT_CHECK(file_.good(), "--tensorboard: writing ", path_, " failed");
  }

  std::string path_;
  std::ofstream file_;
};

}  // namespace examples
