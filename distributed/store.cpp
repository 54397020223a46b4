// TCPStore, the client: connects (retrying until the deadline), opens with torch's handshake (VALIDATE, then a
// PING whose nonce must come back), then sends one query at a time and reads its reply by a deadline.
#include "distributed/store.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <thread>

#include "core/error.h"
#include "distributed/store_server.h"
#include "distributed/store_wire.h"

namespace ht::distributed {

using namespace wire;

namespace {
std::string quoted_list(const std::vector<std::string>& keys) {
  std::string s;
  for (const auto& k : keys) s += (s.empty() ? "'" : ", '") + k + "'";
  return s;
}
}  // namespace

TCPStore::TCPStore(std::string host, int port, bool is_server, std::chrono::milliseconds timeout,
                   std::string key_prefix)
    : host_(std::move(host)), port_(port), timeout_(timeout), key_prefix_(std::move(key_prefix)) {
  HT_CHECK(port_ >= 0 && port_ < 65536, "[distributed] MASTER_PORT must be in 1..65535, got ", port_);
  HT_CHECK(port_ > 0 || is_server, "[distributed] a client needs the store's port; MASTER_PORT is 0");
  HT_CHECK(timeout_.count() > 0, "[distributed] the store's timeout must be positive, got ", timeout_.count(), " ms");
  if (is_server) {
    server_ = std::make_unique<detail::StoreServer>(port_);
    port_ = server_->port();
  }
  connect();
  try {
    handshake();
  } catch (...) {
    ::close(fd_);  // the destructor does not run for a constructor that throws
    throw;
  }
}

TCPStore::~TCPStore() {
  if (fd_ >= 0) ::close(fd_);
}

void TCPStore::connect() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(host_.c_str(), std::to_string(port_).c_str(), &hints, &res);
  HT_CHECK(rc == 0, "[distributed] cannot resolve MASTER_ADDR '", host_, "': ", gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, ::freeaddrinfo);

  auto deadline = Clock::now() + timeout_;
  std::string last = "no address to try";
  while (fd_ < 0) {
    for (addrinfo* a = res; a && fd_ < 0; a = a->ai_next) {
      int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
      if (fd < 0) continue;
      int r = ::connect(fd, a->ai_addr, a->ai_addrlen);
      if (r != 0 && errno == EINPROGRESS) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        pollfd p{fd, POLLOUT, 0};
        int pr = ::poll(&p, 1, int(std::clamp<int64_t>(left, 1, 1000)));
        int err = 0;
        socklen_t len = sizeof err;
        if (pr > 0 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) r = 0;
        else errno = pr == 0 ? ETIMEDOUT : err;
      }
      if (r == 0) {
        int flags = ::fcntl(fd, F_GETFL);
        ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fd_ = fd;
      } else {
        last = std::strerror(errno);
        ::close(fd);
      }
    }
    if (fd_ >= 0) break;
    if (Clock::now() >= deadline) {
      server_.reset();
      fail("[distributed] could not reach the rendezvous store at MASTER_ADDR=", host_, " MASTER_PORT=", port_,
           " within ", timeout_.count() / 1000.0, " s (", last,
           "); check that MASTER_ADDR and MASTER_PORT name rank 0's machine (under torchrun: the agent's) and that "
           "it is running");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void TCPStore::handshake() {
  uint32_t nonce = std::random_device{}();
  bool sent = Message(Query::VALIDATE).value(kValidationMagic).send(fd_) &&
              Message(Query::PING).value(nonce).send(fd_);
  uint32_t echo = 0;
  bool answered = sent && wait_readable(fd_, Clock::now() + timeout_) && recv_value(fd_, echo);
  HT_CHECK(answered && echo == nonce, "[distributed] the server at ", where(),
           " (MASTER_ADDR:MASTER_PORT) does not answer PyTorch's TCPStore handshake",
           answered ? " correctly" : "", "; is another program listening on that port?");
}

wire::Message TCPStore::keys_query(wire::Query q, const std::vector<std::string>& keys) const {
  Message m(q);
  m.value<uint64_t>(keys.size());
  for (const auto& k : keys) m.blob(full_key(k));
  return m;
}

std::string TCPStore::where() const { return host_ + ":" + std::to_string(port_); }

std::string TCPStore::full_key(const std::string& key) const {
  std::string k = kUserKeyPrefix + key_prefix_ + key;
  HT_CHECK(k.size() <= kMaxKeyBytes, "[distributed] store key '", key, "' is ", k.size(),
           " bytes with its prefix; TCPStore allows ", kMaxKeyBytes);
  return k;
}

void TCPStore::lost(const std::string& what) const {
  fail("[distributed] lost the connection to the rendezvous store at ", where(), " while ", what,
       " (did the process serving it exit: rank 0, or torchrun's agent?)");
}

void TCPStore::send(const Message& m, const std::string& what) {
  if (!m.send(fd_)) lost(what);
}

void TCPStore::receive(void* p, size_t n, const std::string& what, Clock::time_point deadline) {
  if (!wait_readable(fd_, deadline))
    fail("[distributed] the rendezvous store at ", where(), " did not answer within ", timeout_.count() / 1000.0,
         " s while ", what);
  if (!recv_all(fd_, p, n)) lost(what);
}

std::vector<char> TCPStore::receive_value(const std::string& what) {
  uint64_t n = 0;
  receive(&n, 8, what, Clock::now() + timeout_);
  if (n > kMaxValueBytes) lost(what + " (a reply of " + std::to_string(n) + " bytes: not a TCPStore?)");
  std::vector<char> v(n);
  if (n > 0) receive(v.data(), n, what, Clock::now() + timeout_);
  return v;
}

void TCPStore::set(const std::string& key, const std::vector<char>& value) {
  HT_CHECK(value.size() <= kMaxValueBytes, "[distributed] store value of key '", key, "' is ", value.size(),
           " bytes; TCPStore allows ", kMaxValueBytes);
  std::lock_guard<std::mutex> lock(mu_);
  send(Message(Query::SET).blob(full_key(key)).blob(value), "setting key '" + key + "'");
}

std::vector<char> TCPStore::get(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  wait_locked({key}, timeout_);
  std::string what = "getting key '" + key + "'";
  send(Message(Query::GET).blob(full_key(key)), what);
  return receive_value(what);
}

int64_t TCPStore::add(const std::string& key, int64_t delta) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string what = "adding to key '" + key + "' (does it hold an integer?)";
  send(Message(Query::ADD).blob(full_key(key)).value(delta), what);
  int64_t out = 0;
  receive(&out, 8, what, Clock::now() + timeout_);
  return out;
}

std::vector<char> TCPStore::compare_set(const std::string& key, const std::vector<char>& expected,
                                        const std::vector<char>& desired) {
  HT_CHECK(expected.size() <= kMaxValueBytes && desired.size() <= kMaxValueBytes, "[distributed] compare_set of key '",
           key, "': a value over TCPStore's ", kMaxValueBytes, " bytes");
  std::lock_guard<std::mutex> lock(mu_);
  std::string what = "compare_set of key '" + key + "'";
  send(Message(Query::COMPARE_SET).blob(full_key(key)).blob(expected).blob(desired), what);
  return receive_value(what);
}

void TCPStore::wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) {
  std::lock_guard<std::mutex> lock(mu_);
  wait_locked(keys, timeout.count() > 0 ? timeout : timeout_);
}

void TCPStore::wait_locked(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) {
  if (keys.empty()) return;
  HT_CHECK(keys.size() <= kMaxKeyCount, "[distributed] waiting for ", keys.size(), " keys; TCPStore allows ",
           kMaxKeyCount);
  std::string what = "waiting for " + quoted_list(keys);
  send(keys_query(Query::WAIT, keys), what);
  uint8_t r = 0;
  if (wait_readable(fd_, Clock::now() + timeout)) {
    receive(&r, 1, what, Clock::now() + timeout_);
    if (r != uint8_t(WaitResponse::STOP_WAITING)) lost(what + " (an unexpected reply: not a TCPStore?)");
    return;
  }
  // the deadline passed: withdraw the wait; the server answers WAIT_CANCELED, maybe after a late STOP_WAITING
  send(Message(Query::CANCEL_WAIT), what);
  receive(&r, 1, what, Clock::now() + timeout_);
  if (r == uint8_t(WaitResponse::STOP_WAITING)) receive(&r, 1, what, Clock::now() + timeout_);
  if (r != uint8_t(WaitResponse::WAIT_CANCELED)) lost(what + " (an unexpected reply: not a TCPStore?)");
  // name the keys still missing
  std::vector<std::string> missing;
  for (const auto& k : keys) {
    send(Message(Query::CHECK).value<uint64_t>(1).blob(full_key(k)), what);
    receive(&r, 1, what, Clock::now() + timeout_);
    if (r != uint8_t(CheckResponse::READY)) missing.push_back(k);
  }
  if (missing.empty()) missing = keys;  // they arrived just after the deadline
  fail("[distributed] timed out after ", double(timeout.count()) / 1000.0, " s waiting for key",
       missing.size() > 1 ? "s " : " ", quoted_list(missing), " in the rendezvous store at ", where(),
       key_prefix_.empty() ? "" : " (under '" + key_prefix_ + "')",
       " (a rank did not arrive: did it start, or did it fail?)");
}

bool TCPStore::check(const std::vector<std::string>& keys) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string what = "checking " + quoted_list(keys);
  send(keys_query(Query::CHECK, keys), what);
  uint8_t r = 0;
  receive(&r, 1, what, Clock::now() + timeout_);
  return r == uint8_t(CheckResponse::READY);
}

bool TCPStore::delete_key(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string what = "deleting key '" + key + "'";
  send(Message(Query::DELETE_KEY).blob(full_key(key)), what);
  int64_t n = 0;
  receive(&n, 8, what, Clock::now() + timeout_);
  return n == 1;
}

int64_t TCPStore::num_keys() {
  std::lock_guard<std::mutex> lock(mu_);
  send(Message(Query::GETNUMKEYS), "counting keys");
  int64_t n = 0;
  receive(&n, 8, "counting keys", Clock::now() + timeout_);
  return n;
}

std::string TCPStore::local_address() const {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  HT_CHECK(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0, "[distributed] getsockname: ",
           std::strerror(errno));
  char buf[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&a)->sin_addr, buf, sizeof buf);
  } else {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&a);
    if (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr)) ::inet_ntop(AF_INET, &a6->sin6_addr.s6_addr[12], buf, sizeof buf);
    else ::inet_ntop(AF_INET6, &a6->sin6_addr, buf, sizeof buf);
  }
  return buf;
}

}  // namespace ht::distributed
