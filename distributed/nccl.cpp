// The NCCL backend: CUDA tensors between GPUs. One communicator per group and device, made on first use with
// the unique id rank 0 publishes in the store. Collectives run on a non-blocking communication stream ordered
// after the work already queued on halftorch's stream (an event), so they overlap what the caller queues next;
// Work::wait() orders halftorch's stream after them and then watches them from the host, so that a dead or
// stuck peer becomes an error at the group's timeout (the communicator is aborted) instead of a hang.
//
// The communicator is non-blocking (ncclConfig_t::blocking = 0): its creation and each enqueue return at once
// and are watched against the same deadline, so a peer that dies after the id is published cannot hang
// ncclCommInitRank. After an abort NCCL has freed the communicator: the backend and its works share that fact
// and never touch it again. Communicators are destroyed before the CUDA runtime shuts down (an exit handler),
// and nothing here throws from a destructor.
#include <nccl.h>

#include <cstdlib>
#include <mutex>
#include <set>
#include <thread>

#include "distributed/backend.h"
#include "kernels/cuda/check.h"

namespace ht::distributed::detail {

namespace {

ncclDataType_t nccl_dtype(DType t) {
  switch (t) {
    case DType::Float32: return ncclFloat32;
    case DType::Float16: return ncclFloat16;
    case DType::BFloat16: return ncclBfloat16;
    case DType::Float64: return ncclFloat64;
    case DType::Int64: return ncclInt64;
    case DType::Int32: return ncclInt32;
    case DType::Int8: return ncclInt8;
    case DType::UInt8: case DType::Bool: return ncclUint8;
    default: fail("[distributed] NCCL has no ", dtype_name(t), " type");
  }
}

ncclRedOp_t nccl_op(ReduceOp op, DType t) {
  if (t == kBool) return op == ReduceOp::Min ? ncclMin : ncclMax;  // "all" / "any", as the Gloo backend
  switch (op) {
    case ReduceOp::Sum: return ncclSum;
    case ReduceOp::Avg: return ncclAvg;
    case ReduceOp::Max: return ncclMax;
    case ReduceOp::Min: return ncclMin;
  }
  return ncclSum;
}

using Clock = std::chrono::steady_clock;
constexpr const char* kDestroyed = "destroyed";

// A communicator and whether it still exists, shared by the backend and its works. Every NCCL call on it is
// made under `mu`, so an abort (which frees it) cannot race a query.
struct Comm {
  std::mutex mu;
  ncclComm_t comm = nullptr;
  std::string gone;  // why it no longer exists (kDestroyed, or why it was aborted); empty while usable

  // Under mu: abort once and remember why.
  void abort_locked(const std::string& why) {
    if (!gone.empty()) return;
    if (comm) ncclCommAbort(comm);
    gone = why;
  }
  // Under mu: the communicator's state, ncclInProgress while a non-blocking call is still under way.
  ncclResult_t state_locked() {
    ncclResult_t s = ncclSuccess;
    ncclResult_t r = ncclCommGetAsyncError(comm, &s);
    return r != ncclSuccess ? r : s;
  }
};

// Under c.mu: the communicator's state (ncclInProgress while a non-blocking call is under way). When it reports
// an error, or when something is still awaited (`waiting`, or a call in progress) past the deadline, aborts it
// and throws `what` with the reason.
ncclResult_t watch_locked(Comm& c, const std::string& what, bool waiting, Clock::time_point deadline,
                          std::chrono::milliseconds timeout) {
  ncclResult_t s = c.state_locked();
  if (s != ncclSuccess && s != ncclInProgress) {
    c.abort_locked(ncclGetErrorString(s));
    fail("[distributed] ", what, " failed (nccl): ", ncclGetErrorString(s), " -- another rank exited or crashed");
  }
  if ((waiting || s == ncclInProgress) && Clock::now() > deadline) {
    c.abort_locked("timed out");
    fail("[distributed] ", what, " did not complete within ", timeout.count() / 1000.0, " s (nccl) -- another ",
         "rank exited, crashed, never started or stopped responding; the communicator was aborted");
  }
  return s;
}

// Polls the communicator until its last non-blocking call has settled (see watch_locked for the failures).
void settle(Comm& c, Clock::time_point deadline, const std::string& what, std::chrono::milliseconds timeout) {
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(c.mu);
      HT_CHECK(c.gone.empty(), "[distributed] ", what, ": the NCCL communicator no longer exists (", c.gone, ")");
      if (watch_locked(c, what, false, deadline, timeout) == ncclSuccess) return;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

class NcclWork final : public Work {
 public:
  NcclWork(cudaEvent_t done, std::shared_ptr<Comm> comm, int device, std::vector<Tensor> keep, std::string what,
           std::chrono::milliseconds timeout)
      : done_(done), comm_(std::move(comm)), device_(device), keep_(std::move(keep)), what_(std::move(what)),
        timeout_(timeout) {}
  // A work dropped without wait() still owns tensors NCCL is reading or writing. The caching allocator hands
  // their blocks to the next work on halftorch's stream, so that stream waits for the collective first
  // (PyTorch's recordStream, in effect). Errors are ignored: this may run after the CUDA runtime shut down.
  ~NcclWork() override {
    if (!done_) return;
    if (!waited_ && cudaSetDevice(device_) == cudaSuccess) cudaStreamWaitEvent(cudaStreamLegacy, done_, 0);
    cudaEventDestroy(done_);
    cudaGetLastError();
  }
  void wait() override {
    if (waited_) return;
    waited_ = true;
    kernels::cuda::set_device(device_);
    HT_CUDA_CHECK(cudaStreamWaitEvent(cudaStreamLegacy, done_, 0));
    auto deadline = Clock::now() + timeout_;
    for (;;) {
      {
        // checked before the event: once the communicator is aborted its kernels are cut short, and an event
        // that completes afterwards says nothing about the data
        std::lock_guard<std::mutex> lock(comm_->mu);
        const bool destroyed = comm_->gone == kDestroyed;  // finalized: every collective had finished
        HT_CHECK(comm_->gone.empty() || destroyed, "[distributed] ", what_, " failed: the NCCL communicator was ",
                 "aborted after an earlier failure (", comm_->gone, ") before this collective completed");
        cudaError_t q = cudaEventQuery(done_);
        if (q == cudaSuccess) break;
        HT_CHECK(q == cudaErrorNotReady && !destroyed, "[distributed] ", what_, ": ", cudaGetErrorString(q));
        watch_locked(*comm_, what_, true, deadline, timeout_);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    keep_.clear();
  }

 private:
  cudaEvent_t done_;
  std::shared_ptr<Comm> comm_;
  int device_;
  std::vector<Tensor> keep_;
  std::string what_;
  std::chrono::milliseconds timeout_;
  bool waited_ = false;
};

class NcclBackend;

// The live backends, released by an exit handler registered after the CUDA runtime started (so it runs before
// the runtime's own teardown): a static process group destroyed later finds them released. Both are never
// destroyed, because that later destructor still looks its backend up here after every function-local static
// made after the group (this set among them) is gone.
std::mutex& live_mu() {
  static auto* mu = new std::mutex;
  return *mu;
}
std::set<NcclBackend*>& live() {
  static auto* s = new std::set<NcclBackend*>;
  return *s;
}

class NcclBackend final : public Backend {
 public:
  NcclBackend(const BackendContext& c, int device)
      : rank_(c.rank), size_(c.size), device_(device), timeout_(c.timeout), comm_(std::make_shared<Comm>()) {
    kernels::cuda::set_device(device_);
    ncclUniqueId id;
    std::string key = c.prefix + "unique_id";
    if (c.rank == 0) {
      ncclResult_t r = ncclGetUniqueId(&id);
      HT_CHECK(r == ncclSuccess, "[distributed] ncclGetUniqueId failed (nccl): ", ncclGetErrorString(r));
      c.store.set(key, std::vector<char>(id.internal, id.internal + sizeof id.internal));
    } else {
      std::vector<char> v = c.store.get(key);
      HT_CHECK(v.size() == sizeof id.internal, "[distributed] bad NCCL unique id in the store");
      std::copy(v.begin(), v.end(), id.internal);
    }
    auto deadline = Clock::now() + timeout_;
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    ncclResult_t r = ncclCommInitRankConfig(&comm_->comm, size_, id, rank_, &config);
    std::string what = ht::detail::concat("creating the NCCL communicator of rank ", rank_, " of ", size_);
    if (r != ncclSuccess && r != ncclInProgress) {
      std::lock_guard<std::mutex> lock(comm_->mu);
      comm_->abort_locked(ncclGetErrorString(r));
      fail("[distributed] ", what, " failed (nccl): ", ncclGetErrorString(r));
    }
    settle(*comm_, deadline, what, timeout_);
    HT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    kernels::cuda::watch_stream(device_, stream_, timeout_);
    std::lock_guard<std::mutex> lock(live_mu());
    live().insert(this);
  }
  ~NcclBackend() override { release(); }

  // Finalizes and destroys the communicator (aborts it if that does not finish in time) and the stream; once.
  // Never throws; does nothing once the CUDA runtime is shutting down (the process is ending).
  void release() noexcept {
    {
      std::lock_guard<std::mutex> lock(live_mu());
      if (!live().erase(this)) return;
    }
    if (stream_) kernels::cuda::unwatch_stream(stream_);
    if (cudaSetDevice(device_) != cudaSuccess) {
      cudaGetLastError();
      return;
    }
    {
      std::lock_guard<std::mutex> lock(comm_->mu);
      if (comm_->gone.empty()) {
        // flushes the collectives still queued; non-blocking, so watched against the group's timeout
        ncclResult_t s = ncclCommFinalize(comm_->comm);
        auto deadline = Clock::now() + timeout_;
        while (s == ncclInProgress && Clock::now() < deadline) {
          std::this_thread::sleep_for(std::chrono::microseconds(100));
          s = comm_->state_locked();
        }
        if (s == ncclSuccess) {
          ncclCommDestroy(comm_->comm);
          comm_->gone = kDestroyed;
        } else {
          comm_->abort_locked("it did not finish its collectives when the group was destroyed");
        }
      }
    }
    if (stream_) cudaStreamDestroy(stream_);
    cudaGetLastError();
  }

  WorkPtr all_reduce(Tensor t, ReduceOp op) override {
    return launch("all_reduce", {t}, [&](ncclComm_t comm) {
      return ncclAllReduce(t.raw_data(), t.raw_data(), size_t(t.numel()), nccl_dtype(t.dtype()),
                           nccl_op(op, t.dtype()), comm, stream_);
    });
  }
  WorkPtr broadcast(Tensor t, int root) override {
    return launch("broadcast", {t}, [&](ncclComm_t comm) {
      return ncclBroadcast(t.raw_data(), t.raw_data(), t.nbytes(), ncclUint8, root, comm, stream_);
    });
  }
  WorkPtr all_gather(Tensor in, Tensor out) override {
    return launch("all_gather", {in, out}, [&](ncclComm_t comm) {
      return ncclAllGather(in.raw_data(), out.raw_data(), in.nbytes(), ncclUint8, comm, stream_);
    });
  }
  WorkPtr barrier() override {
    Tensor one = ones({1}, {.device = Device(DeviceType::CUDA, device_)});
    return all_reduce(one, ReduceOp::Sum);
  }

 private:
  template <class F>
  WorkPtr launch(const char* op, std::vector<Tensor> keep, F&& enqueue) {
    for (const Tensor& t : keep)
      HT_CHECK(t.device().index == device_, "[distributed] ", op, ": tensor on ", t.device().str(),
               ", but this rank's NCCL communicator is on cuda:", device_);
    std::string what = ht::detail::concat(op, " on rank ", rank_, " of ", size_);
    kernels::cuda::set_device(device_);
    cudaEvent_t ready = nullptr, done = nullptr;
    HT_CUDA_CHECK(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
    HT_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    auto work = std::make_shared<NcclWork>(done, comm_, device_, std::move(keep), what, timeout_);
    HT_CUDA_CHECK(cudaEventRecord(ready, cudaStreamLegacy));
    HT_CUDA_CHECK(cudaStreamWaitEvent(stream_, ready, 0));
    cudaEventDestroy(ready);
    ncclResult_t r;
    {
      std::lock_guard<std::mutex> lock(comm_->mu);
      HT_CHECK(comm_->gone.empty(), "[distributed] ", what, ": the NCCL communicator was aborted after an earlier ",
               "failure (", comm_->gone, "); no new collectives can run on this group");
      r = enqueue(comm_->comm);
      if (r != ncclSuccess && r != ncclInProgress) {
        comm_->abort_locked(ncclGetErrorString(r));
        fail("[distributed] ", op, " failed on rank ", rank_, " of ", size_, " (nccl): ", ncclGetErrorString(r));
      }
    }
    // a non-blocking communicator may still be putting the kernels on the stream
    if (r == ncclInProgress) settle(*comm_, Clock::now() + timeout_, what, timeout_);
    HT_CUDA_CHECK(cudaEventRecord(done, stream_));
    return work;
  }

  int rank_, size_, device_;
  std::chrono::milliseconds timeout_;
  std::shared_ptr<Comm> comm_;
  cudaStream_t stream_ = nullptr;
};

void release_all() {
  std::vector<NcclBackend*> all;
  {
    std::lock_guard<std::mutex> lock(live_mu());
    all.assign(live().begin(), live().end());
  }
  for (NcclBackend* b : all) b->release();
}

}  // namespace

std::unique_ptr<Backend> make_nccl(const BackendContext& ctx, int device) {
  auto b = std::make_unique<NcclBackend>(ctx, device);
  static const bool hooked = (std::atexit(release_all), true);
  (void)hooked;
  return b;
}

}  // namespace ht::distributed::detail
