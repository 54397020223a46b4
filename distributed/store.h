// ht::distributed::TCPStore: the rendezvous key-value store the ranks of a process group meet through. It speaks
// PyTorch 2.x's own TCPStore protocol (distributed/store_wire.h), so one implementation works with both
// launchers: under torchrun every rank is a client of the store torchrun's agent serves on MASTER_PORT; under
// scripts/launch, Slurm or mpirun rank 0 serves it (is_server) and torch's clients can use halftorch's store too.
// Gloo exchanges its pair addresses and NCCL its unique id through it.
//
// Keys are those torch's clients see: `store.get("a")` in Python reads halftorch's set("a"). A key_prefix (the
// process group's per-run, per-restart namespace) goes in front of every key. Every call that waits has a
// deadline, and every failure names the address and the key.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace ht::distributed {

namespace detail {
class StoreServer;
}
namespace wire {
class Message;
enum class Query : uint8_t;
}

class TCPStore {
 public:
  // is_server: also serve the store on `port` (all interfaces; 0: any free port, see port()). The client retries
  // the connection until `timeout`, which is also every later call's deadline.
  TCPStore(std::string host, int port, bool is_server, std::chrono::milliseconds timeout,
           std::string key_prefix = "");
  ~TCPStore();
  TCPStore(const TCPStore&) = delete;
  TCPStore& operator=(const TCPStore&) = delete;

  void set(const std::string& key, const std::vector<char>& value);
  // Waits until the key exists (at most the store's timeout), then returns its value.
  std::vector<char> get(const std::string& key);
  // Atomically adds `delta` to the integer at key (0 when absent; kept as decimal text, as torch does) and
  // returns the new value.
  int64_t add(const std::string& key, int64_t delta);
  // Sets key to `desired` if it holds `expected` (an empty `expected`: if it is absent); returns the value the
  // key holds afterwards (torch's semantics: `expected` itself when the key is absent and `expected` non-empty).
  std::vector<char> compare_set(const std::string& key, const std::vector<char>& expected,
                                const std::vector<char>& desired);
  // Waits until every key exists; `timeout` 0 means the store's timeout.
  void wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout = std::chrono::milliseconds(0));
  // Whether every key exists now (no waiting).
  bool check(const std::vector<std::string>& keys);
  // Whether the key existed.
  bool delete_key(const std::string& key);
  // Keys in the whole store (every namespace and client, as torch counts them).
  int64_t num_keys();

  std::chrono::milliseconds timeout() const { return timeout_; }
  const std::string& host() const { return host_; }
  int port() const { return port_; }
  const std::string& key_prefix() const { return key_prefix_; }
  // This machine's address on the connection to the store: the address other ranks can reach it at.
  std::string local_address() const;

 private:
  void connect();
  void handshake();
  std::string full_key(const std::string& key) const;
  // A query followed by the count of keys and each key with its prefix (WAIT, CHECK).
  wire::Message keys_query(wire::Query q, const std::vector<std::string>& keys) const;
  // Receives exactly n bytes of a reply by the deadline, else throws naming `what`.
  void receive(void* p, size_t n, const std::string& what, std::chrono::steady_clock::time_point deadline);
  std::vector<char> receive_value(const std::string& what);
  void send(const wire::Message& m, const std::string& what);
  void wait_locked(const std::vector<std::string>& keys, std::chrono::milliseconds timeout);
  [[noreturn]] void lost(const std::string& what) const;
  std::string where() const;

  std::string host_;
  int port_;
  std::chrono::milliseconds timeout_;
  std::string key_prefix_;
  std::unique_ptr<detail::StoreServer> server_;
  int fd_ = -1;
  std::mutex mu_;  // one request and its reply at a time
};

}  // namespace ht::distributed
