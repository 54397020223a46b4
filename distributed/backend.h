// The seam between ht::distributed::ProcessGroup and the engines that move the bytes (Gloo, NCCL). Internal:
// not installed with the public headers' promises, no Gloo or NCCL type shows here.
#pragma once
#include <chrono>
#include <memory>
#include <string>

#include "halftorch/distributed/process_group.h"
#include "halftorch/distributed/store.h"

namespace ht::distributed::detail {

// Every call is asynchronous and issued in call order; the returned Work keeps its tensors alive.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual WorkPtr all_reduce(Tensor t, ReduceOp op) = 0;
  virtual WorkPtr broadcast(Tensor t, int root) = 0;
  virtual WorkPtr all_gather(Tensor in, Tensor out) = 0;  // out: [size, *in.shape], contiguous
  virtual WorkPtr barrier() = 0;
};

struct BackendContext {
  TCPStore& store;
  std::string prefix;  // keys this backend may use in the store
  int rank, size;
  std::chrono::milliseconds timeout;
};

std::unique_ptr<Backend> make_gloo(const BackendContext& ctx);
// device: the CUDA device index this rank uses. Built as distributed/nccl.cpp with CUDA, nccl_stub.cpp without.
std::unique_ptr<Backend> make_nccl(const BackendContext& ctx, int device);

}  // namespace ht::distributed::detail
