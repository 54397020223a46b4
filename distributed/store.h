// ht::distributed::TCPStore: the rendezvous key-value store the ranks of a process group meet through (the
// role of PyTorch's TCPStore). Rank 0 serves it on MASTER_PORT; every rank, rank 0 included, is a client that
// connects to MASTER_ADDR:MASTER_PORT. Gloo exchanges its pair addresses and NCCL its unique id through it.
// Every call that waits has a deadline, and every failure names the address and what was being waited for.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ht::distributed {

class TCPStore {
 public:
  // is_server: also serve the store on `port` (all interfaces; 0: any free port, see port()). Clients retry
  // the connection until `timeout`.
  TCPStore(std::string host, int port, bool is_server, std::chrono::milliseconds timeout);
  ~TCPStore();
  TCPStore(const TCPStore&) = delete;
  TCPStore& operator=(const TCPStore&) = delete;

  void set(const std::string& key, const std::vector<char>& value);
  // Waits until the key exists (at most the store's timeout), then returns its value.
  std::vector<char> get(const std::string& key);
  // Atomically adds `delta` to the integer stored at key (0 when absent) and returns the new value.
  int64_t add(const std::string& key, int64_t delta);
  // Waits until every key exists; `timeout` 0 means the store's timeout.
  void wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout = std::chrono::milliseconds(0));

  std::chrono::milliseconds timeout() const { return timeout_; }
  const std::string& host() const { return host_; }
  int port() const { return port_; }
  // This machine's address on the connection to the store: the address other ranks can reach it at.
  std::string local_address() const;

 private:
  struct Server;
  // report_ms: the wait to name in a timeout message (the caller's whole deadline), when not wait_ms
  std::vector<char> request(char op, const std::string& key, const std::vector<char>& value, int64_t wait_ms,
                            int64_t report_ms = 0);
  std::string where() const;
  std::string host_;
  int port_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<Server> server_;
  int fd_ = -1;
};

}  // namespace ht::distributed
