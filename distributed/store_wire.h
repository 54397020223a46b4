// The wire format of PyTorch's TCPStore (torch/csrc/distributed/c10d/TCPStore.cpp, TCPStoreLibUvBackend.cpp),
// which halftorch's client and server both speak. Internal to distributed/.
//
// A connection opens with VALIDATE u32(kValidationMagic); torch's client then sends PING u32(nonce) and expects
// the nonce back. Every request is one QueryType byte followed by its arguments; integers are little-endian
// (the host's order, as torch sends them), strings and byte values are u64 length + bytes:
//   SET key value                      no reply
//   COMPARE_SET key expected desired   reply: value (desired if swapped or created, else the current one)
//   GET key                            reply: value (empty when absent: clients WAIT first)
//   ADD key i64                        reply: i64 new value; the key holds it as decimal text
//   CHECK u64(n) key*n                 reply: u8 CheckResponse
//   WAIT u64(n) key*n                  reply, once every key exists: u8 STOP_WAITING
//   CANCEL_WAIT                        reply: u8 WAIT_CANCELED (a STOP_WAITING may arrive before it)
//   GETNUMKEYS                         reply: i64
//   DELETE_KEY key                     reply: i64 keys deleted (0 or 1)
//   APPEND key value                   no reply
//   MULTI_GET u64(n) key*n             reply: value*n
//   MULTI_SET u64(n) (key value)*n     no reply
//   PING u32                           reply: the same u32
// Torch's client prefixes every user key with "/" (and so does halftorch's), so both see the same keys.
#pragma once
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace ht::distributed::wire {

using Clock = std::chrono::steady_clock;

constexpr uint32_t kValidationMagic = 0x3C85F7CE;
// torch's server limits (TCPStoreLibUvBackend.cpp); halftorch checks them before sending
constexpr uint64_t kMaxKeyBytes = 8 * 1024, kMaxValueBytes = 8 * 1024 * 1024, kMaxKeyCount = 128 * 1024;
constexpr const char* kUserKeyPrefix = "/";

enum class Query : uint8_t {
  VALIDATE = 0,
  SET = 1,
  COMPARE_SET = 2,
  GET = 3,
  ADD = 4,
  CHECK = 5,
  WAIT = 6,
  GETNUMKEYS = 7,
  DELETE_KEY = 8,
  APPEND = 9,
  MULTI_GET = 10,
  MULTI_SET = 11,
  CANCEL_WAIT = 12,
  PING = 13,
};
enum class CheckResponse : uint8_t { READY = 0, NOT_READY = 1 };
enum class WaitResponse : uint8_t { STOP_WAITING = 0, WAIT_CANCELED = 1 };

// Sends or receives exactly n bytes; false when the peer closed the connection or an error occurred.
inline bool send_all(int fd, const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t k = ::send(fd, c, n, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    c += k;
    n -= size_t(k);
  }
  return true;
}
inline bool recv_all(int fd, void* p, size_t n) {
  char* c = static_cast<char*>(p);
  while (n > 0) {
    ssize_t k = ::recv(fd, c, n, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    c += k;
    n -= size_t(k);
  }
  return true;
}

// Waits until fd is readable or the deadline passes; false on timeout.
inline bool wait_readable(int fd, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left < 0) return false;
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, int(std::min<int64_t>(left, 1 << 30)));
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return true;  // let recv report the error
  }
}

// One message being built: a query byte, then values and length-prefixed strings, sent in one send().
class Message {
 public:
  explicit Message(Query q) { bytes_.push_back(char(q)); }
  Message() = default;
  template <typename T>
  Message& value(T v) {
    const char* p = reinterpret_cast<const char*>(&v);
    bytes_.insert(bytes_.end(), p, p + sizeof(T));
    return *this;
  }
  Message& u8(uint8_t v) { return value(v); }
  Message& blob(const char* p, size_t n) {
    value<uint64_t>(n);
    bytes_.insert(bytes_.end(), p, p + n);
    return *this;
  }
  Message& blob(const std::string& s) { return blob(s.data(), s.size()); }
  Message& blob(const std::vector<char>& v) { return blob(v.data(), v.size()); }
  bool send(int fd) const { return send_all(fd, bytes_.data(), bytes_.size()); }

 private:
  std::vector<char> bytes_;
};

template <typename T>
bool recv_value(int fd, T& out) {
  return recv_all(fd, &out, sizeof(T));
}
// A u64 length and that many bytes, refusing lengths over `max`.
inline bool recv_blob(int fd, std::vector<char>& out, uint64_t max) {
  uint64_t n = 0;
  if (!recv_value(fd, n) || n > max) return false;
  out.resize(size_t(n));
  return recv_all(fd, out.data(), size_t(n));
}

}  // namespace ht::distributed::wire
