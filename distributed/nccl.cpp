// The NCCL backend: CUDA tensors between GPUs. One communicator per group and device, made on first use with
// the unique id rank 0 publishes in the store. Collectives run on a non-blocking communication stream ordered
// after the work already queued on halftorch's stream (an event), so they overlap what the caller queues next;
// Work::wait() orders halftorch's stream after them and then watches them from the host, so that a dead or
// stuck peer becomes an error at the group's timeout (the communicator is aborted) instead of a hang.
#include <nccl.h>

#include <thread>

#include "distributed/backend.h"
#include "kernels/cuda/check.h"

#define HT_NCCL_CHECK(expr)                                                                              \
  do {                                                                                                   \
    ncclResult_t ht_nr_ = (expr);                                                                        \
    if (ht_nr_ != ncclSuccess) ::ht::fail("[distributed] ", #expr, " failed (nccl): ", ncclGetErrorString(ht_nr_)); \
  } while (0)

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

class NcclWork final : public Work {
 public:
  NcclWork(cudaEvent_t done, ncclComm_t comm, int device, std::vector<Tensor> keep, std::string what,
           std::chrono::milliseconds timeout)
      : done_(done), comm_(comm), device_(device), keep_(std::move(keep)), what_(std::move(what)), timeout_(timeout) {}
  ~NcclWork() override {
    if (done_) cudaEventDestroy(done_);
  }
  void wait() override {
    if (waited_) return;
    waited_ = true;
    kernels::cuda::set_device(device_);
    HT_CUDA_CHECK(cudaStreamWaitEvent(cudaStreamLegacy, done_, 0));
    auto deadline = std::chrono::steady_clock::now() + timeout_;
    for (;;) {
      cudaError_t q = cudaEventQuery(done_);
      if (q == cudaSuccess) break;
      HT_CHECK(q == cudaErrorNotReady, "[distributed] ", what_, ": ", cudaGetErrorString(q));
      ncclResult_t async = ncclSuccess;
      ncclCommGetAsyncError(comm_, &async);
      if (async != ncclSuccess) {
        ncclCommAbort(comm_);
        fail("[distributed] ", what_, " failed (nccl): ", ncclGetErrorString(async),
             " -- another rank exited or crashed");
      }
      if (std::chrono::steady_clock::now() > deadline) {
        ncclCommAbort(comm_);
        fail("[distributed] ", what_, " did not complete within ", timeout_.count() / 1000.0,
             " s (nccl) -- another rank exited, crashed or stopped responding; the communicator was aborted");
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    keep_.clear();
  }

 private:
  cudaEvent_t done_;
  ncclComm_t comm_;
  int device_;
  std::vector<Tensor> keep_;
  std::string what_;
  std::chrono::milliseconds timeout_;
  bool waited_ = false;
};

class NcclBackend final : public Backend {
 public:
  NcclBackend(const BackendContext& c, int device) : rank_(c.rank), size_(c.size), device_(device), timeout_(c.timeout) {
    kernels::cuda::set_device(device_);
    ncclUniqueId id;
    std::string key = c.prefix + "unique_id";
    if (c.rank == 0) {
      HT_NCCL_CHECK(ncclGetUniqueId(&id));
      c.store.set(key, std::vector<char>(id.internal, id.internal + sizeof id.internal));
    } else {
      std::vector<char> v = c.store.get(key);
      HT_CHECK(v.size() == sizeof id.internal, "[distributed] bad NCCL unique id in the store");
      std::copy(v.begin(), v.end(), id.internal);
    }
    HT_NCCL_CHECK(ncclCommInitRank(&comm_, size_, id, rank_));
    HT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  }
  ~NcclBackend() override {
    kernels::cuda::set_device(device_);
    cudaStreamSynchronize(stream_);
    ncclCommDestroy(comm_);
    cudaStreamDestroy(stream_);
  }

  WorkPtr all_reduce(Tensor t, ReduceOp op) override {
    return launch("all_reduce", {t}, [&] {
      return ncclAllReduce(t.raw_data(), t.raw_data(), size_t(t.numel()), nccl_dtype(t.dtype()),
                           nccl_op(op, t.dtype()), comm_, stream_);
    });
  }
  WorkPtr broadcast(Tensor t, int root) override {
    return launch("broadcast", {t}, [&] {
      return ncclBroadcast(t.raw_data(), t.raw_data(), t.nbytes(), ncclUint8, root, comm_, stream_);
    });
  }
  WorkPtr all_gather(Tensor in, Tensor out) override {
    return launch("all_gather", {in, out}, [&] {
      return ncclAllGather(in.raw_data(), out.raw_data(), in.nbytes(), ncclUint8, comm_, stream_);
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
    kernels::cuda::set_device(device_);
    cudaEvent_t ready = nullptr, done = nullptr;
    HT_CUDA_CHECK(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
    HT_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    HT_CUDA_CHECK(cudaEventRecord(ready, cudaStreamLegacy));
    HT_CUDA_CHECK(cudaStreamWaitEvent(stream_, ready, 0));
    cudaEventDestroy(ready);
    ncclResult_t r = enqueue();
    if (r != ncclSuccess) {
      cudaEventDestroy(done);
      fail("[distributed] ", op, " failed on rank ", rank_, " of ", size_, " (nccl): ", ncclGetErrorString(r));
    }
    HT_CUDA_CHECK(cudaEventRecord(done, stream_));
    return std::make_shared<NcclWork>(done, comm_, device_, std::move(keep),
                                      ht::detail::concat(op, " on rank ", rank_, " of ", size_), timeout_);
  }

  int rank_, size_, device_;
  std::chrono::milliseconds timeout_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
};

}  // namespace

std::unique_ptr<Backend> make_nccl(const BackendContext& ctx, int device) {
  return std::make_unique<NcclBackend>(ctx, device);
}

}  // namespace ht::distributed::detail
