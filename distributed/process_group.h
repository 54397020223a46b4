// ht::distributed: process groups over the engines PyTorch uses: Gloo for CPU tensors, NCCL for CUDA tensors.
// A group starts from the variables its launcher sets (distributed/launch_env.h: torchrun and scripts/launch,
// mpirun, srun). The ranks meet in a TCPStore (PyTorch's protocol): torchrun's agent's when it says so
// (TORCHELASTIC_USE_AGENT_STORE=True), else one rank 0 serves on MASTER_PORT. Gloo exchanges its addresses and
// NCCL its unique id there, under a namespace of the run and restart. Collectives are issued in the same order
// on every rank, as in torch.distributed.
//
// Failures are errors, never silent hangs: every wait has a deadline (InitOptions::timeout, HT_DIST_TIMEOUT
// seconds, 300 s by default), a rank that dies makes the others' collectives fail at once (Gloo sees the closed
// connection), one that hangs makes them fail at the deadline, and each message names the rank and the op.
#pragma once
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "halftorch/core/tensor.h"
#include "halftorch/distributed/launch_env.h"

namespace ht::distributed {

enum class ReduceOp { Sum, Avg, Max, Min };

struct InitOptions {
  // "auto": Gloo for CPU tensors and NCCL for CUDA tensors (PyTorch's "cpu:gloo,cuda:nccl"); "gloo": CPU
  // tensors only; "nccl": CUDA tensors only.
  std::string backend = "auto";
  int rank = -1, world_size = -1, local_rank = -1;  // -1: from the launcher (RANK, WORLD_SIZE, LOCAL_RANK, ...)
  std::string master_addr;                          // empty: the launcher's (MASTER_ADDR, default 127.0.0.1)
  int master_port = -1;  // -1: MASTER_PORT (default 29500; for a world of one, any free port)
  std::chrono::milliseconds timeout{0};             // 0: HT_DIST_TIMEOUT seconds, or 300 s
};

// True when a launcher's variables are present (WORLD_SIZE or RANK, OMPI_COMM_WORLD_RANK, SLURM_PROCID). Never
// throws: init_process_group() checks them.
bool launched_from_env();

// The handle of an asynchronous collective. wait() returns once the result is ready for the calling code: on
// CPU the data is final; on CUDA later work on halftorch's stream is ordered after the collective. It rethrows
// the collective's error.
class Work {
 public:
  virtual ~Work() = default;
  virtual void wait() = 0;
};
using WorkPtr = std::shared_ptr<Work>;

class ProcessGroup {
 public:
  struct Impl;
  explicit ProcessGroup(InitOptions options = {});
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const;
  int size() const;
  int local_rank() const;
  std::chrono::milliseconds timeout() const;
  // The CUDA device this rank uses: cuda:(local_rank mod device count).
  Device cuda_device() const;

  // In place on a contiguous tensor (CPU: Gloo; CUDA: NCCL). Avg divides the sum by the world size.
  void all_reduce(Tensor& t, ReduceOp op = ReduceOp::Sum);
  WorkPtr all_reduce_async(Tensor t, ReduceOp op = ReduceOp::Sum);
  // Every rank's t becomes root's.
  void broadcast(Tensor& t, int root = 0);
  // Every rank's t, in rank order (each of t's shape, dtype and device).
  std::vector<Tensor> all_gather(const Tensor& t);
  void barrier();

 private:
  std::unique_ptr<Impl> impl_;
};

// The process-wide default group, as torch.distributed.init_process_group() makes it.
void init_process_group(InitOptions options = {});
bool is_initialized();
ProcessGroup& default_group();  // throws when none was initialised
std::shared_ptr<ProcessGroup> default_group_ptr();
void destroy_process_group();
int get_rank();        // 0 without a group
int get_world_size();  // 1 without a group

}  // namespace ht::distributed
