// TCPStore: a length-prefixed request/response protocol over one TCP connection per client, and a server with
// a thread per connection (a process group has a handful of ranks). Requests: op, key, value, wait (ms).
#include "distributed/store.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include "core/error.h"

namespace ht::distributed {

namespace {
using Clock = std::chrono::steady_clock;
constexpr char kSet = 's', kGet = 'g', kAdd = 'a';
constexpr char kOk = 0, kTimedOut = 1;

std::string errno_str(int e) { return std::strerror(e); }

// Sends or receives exactly n bytes; false when the peer closed the connection or an error occurred.
bool send_all(int fd, const void* p, size_t n) {
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
bool recv_all(int fd, void* p, size_t n) {
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
bool send_blob(int fd, const void* p, uint32_t n) { return send_all(fd, &n, 4) && send_all(fd, p, n); }
bool recv_blob(int fd, std::vector<char>& out) {
  uint32_t n = 0;
  if (!recv_all(fd, &n, 4)) return false;
  out.resize(n);
  return recv_all(fd, out.data(), n);
}

// Waits until fd is readable or the deadline passes; false on timeout.
bool wait_readable(int fd, Clock::time_point deadline) {
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
}  // namespace

struct TCPStore::Server {
  int listen_fd = -1;
  int port = 0;  // the bound port (the OS's choice when asked for 0)
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, std::vector<char>> data;
  std::vector<int> clients;
  std::vector<std::thread> threads;
  std::thread acceptor;
  bool stopping = false;

  explicit Server(int port) {
    // IPv6 socket accepting IPv4 too, or plain IPv4 where IPv6 is off
    int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1, zero = 0;
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
      HT_CHECK(fd >= 0, "[distributed] cannot create a socket: ", errno_str(errno));
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
    if (::listen(fd, 128) != 0) {
      int e = errno;
      ::close(fd);
      fail_bind(port, e);
    }
    listen_fd = fd;
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
    this->port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                   : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    acceptor = std::thread([this] { accept_loop(); });
  }

  [[noreturn]] static void fail_bind(int port, int e) {
    const char* hint = "";
    if (e == EADDRINUSE)
      hint = std::getenv("TORCHELASTIC_USE_AGENT_STORE")
                 ? " (torchrun's agent serves MASTER_PORT itself; start halftorch programs with scripts/launch, which "
                   "takes torchrun's flags)"
                 : " (another program, or an earlier run, holds that port; choose another MASTER_PORT)";
    fail("[distributed] rank 0 cannot serve the rendezvous store on MASTER_PORT ", port, ": ", errno_str(e), hint);
  }

  ~Server() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stopping = true;
      for (int c : clients) ::shutdown(c, SHUT_RDWR);
    }
    cv.notify_all();
    ::shutdown(listen_fd, SHUT_RDWR);
    acceptor.join();
    ::close(listen_fd);
    for (auto& t : threads) t.join();
    for (int c : clients) ::close(c);
  }

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
      clients.push_back(c);
      threads.emplace_back([this, c] { serve(c); });
    }
  }

  void serve(int fd) {
    for (;;) {
      char op = 0;
      std::vector<char> key_bytes, value;
      int64_t wait_ms = 0;
      if (!recv_all(fd, &op, 1) || !recv_blob(fd, key_bytes) || !recv_blob(fd, value) || !recv_all(fd, &wait_ms, 8))
        return;
      std::string key(key_bytes.begin(), key_bytes.end());
      std::vector<char> reply;
      char status = kOk;
      {
        std::unique_lock<std::mutex> lock(mu);
        if (op == kSet) {
          data[key] = std::move(value);
          cv.notify_all();
        } else if (op == kAdd) {
          int64_t delta = 0, cur = 0;
          std::memcpy(&delta, value.data(), std::min<size_t>(8, value.size()));
          auto it = data.find(key);
          if (it != data.end()) std::memcpy(&cur, it->second.data(), std::min<size_t>(8, it->second.size()));
          cur += delta;
          data[key].assign(reinterpret_cast<char*>(&cur), reinterpret_cast<char*>(&cur) + 8);
          reply = data[key];
          cv.notify_all();
        } else if (op == kGet) {
          auto deadline = Clock::now() + std::chrono::milliseconds(wait_ms);
          bool found = cv.wait_until(lock, deadline, [&] { return stopping || data.count(key) > 0; });
          if (stopping) return;
          if (found) reply = data[key];
          else status = kTimedOut;
        } else {
          return;  // not a halftorch client
        }
      }
      if (!send_all(fd, &status, 1) || !send_blob(fd, reply.data(), uint32_t(reply.size()))) return;
    }
  }
};

TCPStore::TCPStore(std::string host, int port, bool is_server, std::chrono::milliseconds timeout)
    : host_(std::move(host)), port_(port), timeout_(timeout) {
  HT_CHECK(port_ >= 0 && port_ < 65536, "[distributed] MASTER_PORT must be in 1..65535, got ", port_);
  HT_CHECK(port_ > 0 || is_server, "[distributed] a client needs the store's port; MASTER_PORT is 0");
  if (is_server) {
    server_ = std::make_unique<Server>(port_);
    port_ = server_->port;
  }

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
        last = errno_str(errno);
        ::close(fd);
      }
    }
    if (fd_ >= 0) break;
    if (Clock::now() >= deadline) {
      server_.reset();
      fail("[distributed] could not reach the rendezvous store at MASTER_ADDR=", host_, " MASTER_PORT=", port_,
           " within ", timeout_.count() / 1000.0, " s (", last,
           "); check that MASTER_ADDR and MASTER_PORT name rank 0's machine and that rank 0 is running");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

TCPStore::~TCPStore() {
  if (fd_ >= 0) ::close(fd_);
}

std::string TCPStore::where() const { return host_ + ":" + std::to_string(port_); }

std::vector<char> TCPStore::request(char op, const std::string& key, const std::vector<char>& value, int64_t wait_ms,
                                   int64_t report_ms) {
  HT_CHECK(key.size() < (1u << 20) && value.size() < (1u << 30), "[distributed] store key or value too large");
  bool sent = send_all(fd_, &op, 1) && send_blob(fd_, key.data(), uint32_t(key.size())) &&
              send_blob(fd_, value.data(), uint32_t(value.size())) && send_all(fd_, &wait_ms, 8);
  // the server answers a get by its deadline; allow it the store's timeout on top for the network
  bool readable = sent && wait_readable(fd_, Clock::now() + std::chrono::milliseconds(wait_ms) + timeout_);
  char status = 0;
  std::vector<char> reply;
  if (!readable || !recv_all(fd_, &status, 1) || !recv_blob(fd_, reply))
    fail("[distributed] lost the connection to the rendezvous store at ", where(), " while ",
         op == kGet ? "waiting for key '" : "setting key '", key, "' (did rank 0 exit?)");
  HT_CHECK(status == kOk, "[distributed] timed out after ", double(report_ms > 0 ? report_ms : wait_ms) / 1000.0,
           " s waiting for key '", key,
           "' in the rendezvous store at ", where(), " (a rank did not arrive: did it start, or did it fail?)");
  return reply;
}

void TCPStore::set(const std::string& key, const std::vector<char>& value) { request(kSet, key, value, 0); }

std::vector<char> TCPStore::get(const std::string& key) { return request(kGet, key, {}, timeout_.count()); }

int64_t TCPStore::add(const std::string& key, int64_t delta) {
  std::vector<char> v(reinterpret_cast<char*>(&delta), reinterpret_cast<char*>(&delta) + 8);
  std::vector<char> r = request(kAdd, key, v, 0);
  int64_t out = 0;
  std::memcpy(&out, r.data(), std::min<size_t>(8, r.size()));
  return out;
}

void TCPStore::wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) {
  auto t = timeout.count() > 0 ? timeout : timeout_;
  auto deadline = Clock::now() + t;
  for (const auto& k : keys) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    request(kGet, k, {}, std::max<int64_t>(left.count(), 0), t.count());
  }
}

std::string TCPStore::local_address() const {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  HT_CHECK(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0, "[distributed] getsockname: ",
           errno_str(errno));
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
