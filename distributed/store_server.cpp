// StoreServer: the key-value map, the clients waiting on keys, and one thread per connection that parses
// torch's queries (distributed/store_wire.h) and answers them as TCPStoreLibUvBackend.cpp does.
#include "distributed/store_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "distributed/store_wire.h"

namespace ht::distributed::detail {

using namespace wire;

namespace {
struct Connection {
  int fd;
  std::mutex send_mu;     // replies and wake-ups from other threads go out one at a time
  size_t keys_awaited = 0;  // of its pending WAIT (guarded by the server's mutex)
  bool send(const Message& m) {
    std::lock_guard<std::mutex> lock(send_mu);
    return m.send(fd);
  }
};
using ConnPtr = std::shared_ptr<Connection>;

[[noreturn]] void fail_bind(int port, int e) {
  const char* hint = "";
  if (e == EADDRINUSE)
    hint = std::getenv("TORCHELASTIC_USE_AGENT_STORE")
               ? " (torchrun's agent serves a store there: halftorch uses it when TORCHELASTIC_USE_AGENT_STORE=True "
                 "and MASTER_ADDR/MASTER_PORT are the agent's)"
               : " (another program, or an earlier run, holds that port; choose another MASTER_PORT)";
  fail("[distributed] rank 0 cannot serve the rendezvous store on MASTER_PORT ", port, ": ", std::strerror(e), hint);
}

// An IPv6 socket accepting IPv4 too, or plain IPv4 where IPv6 is off.
int listen_on(int port) {
  int one = 1, zero = 0;
  int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_any;
    a.sin6_port = htons(uint16_t(port));
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      int e = errno;
      ::close(fd);
      fd = -1;
      if (e == EADDRINUSE) fail_bind(port, e);
    }
  }
  if (fd < 0) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    HT_CHECK(fd >= 0, "[distributed] cannot create a socket: ", std::strerror(errno));
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    a.sin_port = htons(uint16_t(port));
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      int e = errno;
      ::close(fd);
      fail_bind(port, e);
    }
  }
  if (::listen(fd, 1024) != 0) {
    int e = errno;
    ::close(fd);
    fail_bind(port, e);
  }
  return fd;
}

int bound_port(int fd) {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&a)->sin6_port
                                       : reinterpret_cast<sockaddr_in*>(&a)->sin_port);
}

bool recv_key(int fd, std::string& key) {
  std::vector<char> b;
  if (!recv_blob(fd, b, kMaxKeyBytes)) return false;
  key.assign(b.begin(), b.end());
  return true;
}
bool recv_keys(int fd, std::vector<std::string>& keys) {
  uint64_t n = 0;
  if (!recv_value(fd, n) || n > kMaxKeyCount) return false;
  keys.resize(size_t(n));
  for (auto& k : keys)
    if (!recv_key(fd, k)) return false;
  return true;
}
}  // namespace

struct StoreServer::State {
  int listen_fd = -1;
  int port = 0;
  std::mutex mu;
  std::map<std::string, std::vector<char>> data;
  std::map<std::string, std::vector<ConnPtr>> waiting;  // key -> connections whose WAIT needs it
  std::vector<ConnPtr> connections;
  std::vector<std::thread> threads;
  std::thread acceptor;
  bool stopping = false;

  void accept_loop() {
    for (;;) {
      int c = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      std::lock_guard<std::mutex> lock(mu);
      if (stopping) {
        if (c >= 0) ::close(c);
        return;
      }
      if (c < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;
      }
      int one = 1;
      ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      auto conn = std::make_shared<Connection>();
      conn->fd = c;
      connections.push_back(conn);
      threads.emplace_back([this, conn] { serve(conn); });
    }
  }

  // Under mu: a key appeared or changed; every WAIT that now has all its keys is answered.
  void wake(const std::string& key) {
    auto it = waiting.find(key);
    if (it == waiting.end()) return;
    for (const ConnPtr& c : it->second)
      if (c->keys_awaited > 0 && --c->keys_awaited == 0) c->send(Message().u8(uint8_t(WaitResponse::STOP_WAITING)));
    waiting.erase(it);
  }

  // Under mu: forget a connection's pending WAIT.
  void clear_wait(const ConnPtr& c) {
    c->keys_awaited = 0;
    for (auto it = waiting.begin(); it != waiting.end();) {
      std::erase(it->second, c);
      it = it->second.empty() ? waiting.erase(it) : std::next(it);
    }
  }

  void set(const std::string& key, std::vector<char> value) {
    data[key] = std::move(value);
    wake(key);
  }

  void serve(const ConnPtr& c) {
    uint8_t q = 0;
    uint32_t magic = 0;
    // a client that does not open with torch's handshake is not a TCPStore client: hang up
    if (recv_value(c->fd, q) && q == uint8_t(Query::VALIDATE) && recv_value(c->fd, magic) && magic == kValidationMagic)
      while (recv_value(c->fd, q) && answer(c, Query(q))) {
      }
    std::lock_guard<std::mutex> lock(mu);
    clear_wait(c);
    std::erase(connections, c);
    ::close(c->fd);
  }

  // One query (its byte already read); false ends the connection (a malformed query, or a closed socket).
  bool answer(const ConnPtr& c, Query q) {
    int fd = c->fd;
    std::string key;
    std::vector<char> a, b;
    std::vector<std::string> keys;
    Message reply;
    switch (q) {
      case Query::SET:
      case Query::APPEND: {
        if (!recv_key(fd, key) || !recv_blob(fd, a, kMaxValueBytes)) return false;
        std::lock_guard<std::mutex> lock(mu);
        if (q == Query::APPEND && data.count(key)) data[key].insert(data[key].end(), a.begin(), a.end());
        else data[key] = std::move(a);
        wake(key);
        return true;
      }
      case Query::MULTI_SET: {
        uint64_t n = 0;
        if (!recv_value(fd, n) || n > kMaxKeyCount) return false;
        for (uint64_t i = 0; i < n; ++i) {
          if (!recv_key(fd, key) || !recv_blob(fd, a, kMaxValueBytes)) return false;
          std::lock_guard<std::mutex> lock(mu);
          set(key, std::move(a));
        }
        return true;
      }
      case Query::COMPARE_SET: {
        if (!recv_key(fd, key) || !recv_blob(fd, a, kMaxValueBytes) || !recv_blob(fd, b, kMaxValueBytes)) return false;
        std::lock_guard<std::mutex> lock(mu);
        auto it = data.find(key);
        if (it == data.end()) {
          // absent: created only when the caller expected it absent (an empty value); else torch answers `expected`
          if (a.empty()) set(key, b);
          reply.blob(a.empty() ? b : a);
        } else {
          if (it->second == a) it->second = b;
          reply.blob(it->second);
          wake(key);
        }
        break;
      }
      case Query::GET: {
        if (!recv_key(fd, key)) return false;
        std::lock_guard<std::mutex> lock(mu);
        auto it = data.find(key);
        reply.blob(it == data.end() ? std::vector<char>{} : it->second);
        break;
      }
      case Query::MULTI_GET: {
        if (!recv_keys(fd, keys)) return false;
        std::lock_guard<std::mutex> lock(mu);
        for (const auto& k : keys) {
          auto it = data.find(k);
          reply.blob(it == data.end() ? std::vector<char>{} : it->second);
        }
        break;
      }
      case Query::ADD: {
        int64_t delta = 0;
        if (!recv_key(fd, key) || !recv_value(fd, delta)) return false;
        std::lock_guard<std::mutex> lock(mu);
        auto it = data.find(key);
        if (it != data.end()) {
          std::string text(it->second.begin(), it->second.end());
          char* end = nullptr;
          errno = 0;
          long long cur = std::strtoll(text.c_str(), &end, 10);
          if (text.empty() || *end != 0 || errno != 0) return false;  // not an integer: torch hangs up too
          delta += cur;
        }
        std::string text = std::to_string(delta);
        set(key, std::vector<char>(text.begin(), text.end()));
        reply.value<int64_t>(delta);
        break;
      }
      case Query::CHECK: {
        if (!recv_keys(fd, keys)) return false;
        std::lock_guard<std::mutex> lock(mu);
        bool all = std::all_of(keys.begin(), keys.end(), [&](const std::string& k) { return data.count(k) > 0; });
        reply.u8(uint8_t(all ? CheckResponse::READY : CheckResponse::NOT_READY));
        break;
      }
      case Query::WAIT: {
        if (!recv_keys(fd, keys)) return false;
        std::lock_guard<std::mutex> lock(mu);
        size_t missing = 0;
        for (const auto& k : keys)
          if (!data.count(k)) {
            waiting[k].push_back(c);
            ++missing;
          }
        if (missing > 0) {
          c->keys_awaited = missing;  // answered by wake(), or by CANCEL_WAIT
          return true;
        }
        reply.u8(uint8_t(WaitResponse::STOP_WAITING));
        break;
      }
      case Query::CANCEL_WAIT: {
        std::lock_guard<std::mutex> lock(mu);
        clear_wait(c);
        reply.u8(uint8_t(WaitResponse::WAIT_CANCELED));
        // sent under mu: a wake-up of this connection cannot come after it
        return c->send(reply);
      }
      case Query::GETNUMKEYS: {
        std::lock_guard<std::mutex> lock(mu);
        reply.value<int64_t>(int64_t(data.size()));
        break;
      }
      case Query::DELETE_KEY: {
        if (!recv_key(fd, key)) return false;
        std::lock_guard<std::mutex> lock(mu);
        reply.value<int64_t>(int64_t(data.erase(key)));
        break;
      }
      case Query::PING: {
        uint32_t nonce = 0;
        if (!recv_value(fd, nonce)) return false;
        reply.value(nonce);
        break;
      }
      default:
        return false;  // VALIDATE twice, or a query this server does not know
    }
    return c->send(reply);
  }
};

StoreServer::StoreServer(int port) : s_(std::make_unique<State>()) {
  s_->listen_fd = listen_on(port);
  s_->port = bound_port(s_->listen_fd);
  s_->acceptor = std::thread([this] { s_->accept_loop(); });
}

StoreServer::~StoreServer() {
  {
    std::lock_guard<std::mutex> lock(s_->mu);
    s_->stopping = true;
    for (const ConnPtr& c : s_->connections) ::shutdown(c->fd, SHUT_RDWR);
  }
  ::shutdown(s_->listen_fd, SHUT_RDWR);
  s_->acceptor.join();
  ::close(s_->listen_fd);
  for (auto& t : s_->threads) t.join();
}

int StoreServer::port() const { return s_->port; }

}  // namespace ht::distributed::detail
