// ht::distributed::detail::StoreServer: serves PyTorch's TCPStore protocol (distributed/store_wire.h), so
// halftorch's ranks and torch's own clients (torch.distributed.TCPStore(is_master=False)) can meet there. A
// thread per connection: a process group has a handful of ranks. Internal; TCPStore owns one when it serves.
#pragma once
#include <memory>

namespace ht::distributed::detail {

class StoreServer {
 public:
  // Listens on `port` on every interface (IPv6 and IPv4; 0: a free port, see port()). Throws, naming the port,
  // when it cannot.
  explicit StoreServer(int port);
  ~StoreServer();
  StoreServer(const StoreServer&) = delete;
  StoreServer& operator=(const StoreServer&) = delete;
  int port() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace ht::distributed::detail
