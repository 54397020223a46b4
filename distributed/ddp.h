// ht::distributed::DistributedDataParallel: PyTorch's DDP for halftorch modules. On construction rank 0's
// parameters and buffers are broadcast to every rank. During backward each parameter's gradient is copied into
// its bucket as soon as autograd has finished it (a grad-ready hook); a full bucket is divided by the world
// size and all-reduced asynchronously while backward goes on (buckets launch in the same order on every
// rank); at the end of backward the averaged gradients are written back to .grad. Buckets hold about
// bucket_cap_mb (the first 1 MiB, so communication starts early) in reverse parameter order, as PyTorch's.
//
// BatchNorm normalises with each process's own batch statistics (PyTorch's default, not SyncBatchNorm); with
// broadcast_buffers the running statistics are rank 0's, re-broadcast before every training forward.
// Every parameter that requires grad must take part in every backward (find_unused_parameters=False). Move
// the module to its device and dtype before wrapping it: the buckets are made for the parameters as they are.
#pragma once
#include <memory>
#include <optional>
#include <vector>

#include "halftorch/distributed/process_group.h"
#include "halftorch/nn/module.h"
#include "halftorch/optim/grad_scaler.h"

namespace ht::distributed {

struct DDPOptions {
  double bucket_cap_mb = 25;
  double first_bucket_mb = 1;
  bool broadcast_buffers = true;
  // The dtype gradients are reduced in: nullopt keeps each gradient's dtype (fp16 gradients reduced in fp16,
  // as PyTorch's DDP); kFloat32 reduces 16-bit gradients in float32 (twice the bytes, no fp16 rounding of
  // the sum).
  std::optional<DType> reduce_dtype;
};

class DistributedDataParallel {
 public:
  DistributedDataParallel(nn::ModulePtr module, std::shared_ptr<ProcessGroup> group = nullptr,
                          DDPOptions options = {});
  ~DistributedDataParallel();
  DistributedDataParallel(const DistributedDataParallel&) = delete;
  DistributedDataParallel& operator=(const DistributedDataParallel&) = delete;

  Tensor forward(const Tensor& x);
  Tensor operator()(const Tensor& x) { return forward(x); }
  nn::Module& module() { return *module_; }
  const nn::ModulePtr& module_ptr() const { return module_; }
  ProcessGroup& group() { return *group_; }

  // Broadcasts rank 0's buffers (BatchNorm running statistics) to every rank, e.g. before evaluation.
  void sync_buffers();
  // Bucket layout, for tests and logs: each bucket's parameters, as indices into the module's parameters that
  // require grad (module order).
  std::vector<std::vector<size_t>> bucket_layout() const;

  struct Reducer;

 private:
  nn::ModulePtr module_;
  std::shared_ptr<ProcessGroup> group_;
  DDPOptions options_;
  std::unique_ptr<Reducer> reducer_;
};

// Makes the scaler reduce its found-inf flag over the group (max) before deciding, so every rank skips the
// same steps even when only one rank's gradients overflowed.
void sync_grad_scaler(amp::GradScaler& scaler, std::shared_ptr<ProcessGroup> group = nullptr);

}  // namespace ht::distributed
