// The Gloo backend: CPU tensors over Gloo's TCP transport. Its collectives run on two communication threads
// per group, in call order on each, so asynchronous all-reduces overlap the caller's compute (the
// DistributedDataParallel reducer launches buckets while backward goes on) and each other. Reductions are halftorch's own
// functions over Gloo's byte buffers: fp16 and bf16 sum in float and round once per step, as PyTorch's do.
#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/store.h>
#include <gloo/transport/tcp/device.h>

#include <array>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

#include "distributed/backend.h"

namespace ht::distributed::detail {

namespace {

// Gloo's rendezvous over halftorch's TCPStore, under a key prefix.
class StoreAdapter final : public gloo::rendezvous::Store {
 public:
  StoreAdapter(TCPStore& store, std::string prefix) : store_(store), prefix_(std::move(prefix)) {}
  void set(const std::string& key, const std::vector<char>& data) override { store_.set(prefix_ + key, data); }
  std::vector<char> get(const std::string& key) override { return store_.get(prefix_ + key); }
  void wait(const std::vector<std::string>& keys) override { wait(keys, store_.timeout()); }
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) override {
    std::vector<std::string> full;
    for (const auto& k : keys) full.push_back(prefix_ + k);
    store_.wait(full, timeout);
  }

 private:
  TCPStore& store_;
  std::string prefix_;
};

// A collective queued on the communication thread; wait() blocks until it ran and rethrows its error.
class ThreadWork final : public Work {
 public:
  explicit ThreadWork(std::vector<Tensor> keep) : keep_(std::move(keep)) {}
  void wait() override {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return done_; });
    if (error_) std::rethrow_exception(error_);
  }
  void finish(std::exception_ptr e) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
      error_ = e;
      keep_.clear();
    }
    cv_.notify_all();
  }

 private:
  std::vector<Tensor> keep_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::exception_ptr error_;
};

template <class T, class Op>
void reduce_fn(void* out, const void* a, const void* b, size_t n) {
  T* o = static_cast<T*>(out);
  const T* x = static_cast<const T*>(a);
  const T* y = static_cast<const T*>(b);
  using A = opmath_t<T>;
  for (size_t i = 0; i < n; ++i) o[i] = T(Op{}(A(x[i]), A(y[i])));
}
struct SumOp { template <class A> A operator()(A x, A y) const { return A(x + y); } };
struct MaxOp { template <class A> A operator()(A x, A y) const { return x < y ? y : x; } };
struct MinOp { template <class A> A operator()(A x, A y) const { return y < x ? y : x; } };

gloo::AllreduceOptions::Func reducer(DType dtype, ReduceOp op) {
  return visit_dtype(dtype, [&](auto tag) -> gloo::AllreduceOptions::Func {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, bool>) {
      // sum of bools is "any", as PyTorch's bool all_reduce
      if (op == ReduceOp::Min) return reduce_fn<T, MinOp>;
      return reduce_fn<T, MaxOp>;
    } else {
      switch (op) {
        case ReduceOp::Max: return reduce_fn<T, MaxOp>;
        case ReduceOp::Min: return reduce_fn<T, MinOp>;
        default: return reduce_fn<T, SumOp>;
      }
    }
  });
}

// The address other ranks reach this one at: GLOO_SOCKET_IFNAME's interface when set (PyTorch's variable),
// else the local address of the connection to the store, which routes to MASTER_ADDR's network.
gloo::transport::tcp::attr device_attr(const TCPStore& store) {
  gloo::transport::tcp::attr attr;
  const char* iface = std::getenv("GLOO_SOCKET_IFNAME");
  if (iface && *iface) attr.iface = iface;
  else attr.hostname = store.local_address();
  return attr;
}

class GlooBackend final : public Backend {
 public:
  explicit GlooBackend(const BackendContext& c) : rank_(c.rank), size_(c.size) {
    try {
      device_ = gloo::transport::tcp::CreateDevice(device_attr(c.store));
      context_ = std::make_shared<gloo::rendezvous::Context>(c.rank, c.size);
      context_->setTimeout(c.timeout);
      StoreAdapter store(c.store, c.prefix);
      context_->connectFullMesh(store, device_);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      fail("[distributed] rank ", rank_, " of ", size_, " could not connect to the other ranks (gloo): ", e.what());
    }
    for (auto& w : workers_) w.thread = std::thread([this, &w] { loop(w); });
  }

  ~GlooBackend() override {
    for (auto& w : workers_) {
      {
        std::lock_guard<std::mutex> lock(w.mu);
        w.stop = true;
      }
      w.cv.notify_all();
      w.thread.join();
    }
  }

  WorkPtr all_reduce(Tensor t, ReduceOp op) override {
    return enqueue("all_reduce", {t}, [this, t, op](uint32_t tag) {
      visit_dtype(t.dtype(), [&](auto type) {
        using T = typename decltype(type)::type;
        gloo::AllreduceOptions o(context_);
        o.setOutput<T>(static_cast<T*>(t.raw_data()), size_t(t.numel()));
        o.setReduceFunction(reducer(t.dtype(), op));
        o.setTag(tag);
        gloo::allreduce(o);
        if (op == ReduceOp::Avg && !std::is_same_v<T, bool>) {
          T* p = static_cast<T*>(t.raw_data());
          using A = opmath_t<T>;
          for (int64_t i = 0; i < t.numel(); ++i) p[i] = T(A(p[i]) / A(size_));
        }
      });
    });
  }

  WorkPtr broadcast(Tensor t, int root) override {
    return enqueue("broadcast", {t}, [this, t, root](uint32_t tag) {
      gloo::BroadcastOptions o(context_);
      o.setOutput<uint8_t>(static_cast<uint8_t*>(t.raw_data()), t.nbytes());
      o.setRoot(root);
      o.setTag(tag);
      gloo::broadcast(o);
    });
  }

  WorkPtr all_gather(Tensor in, Tensor out) override {
    return enqueue("all_gather", {in, out}, [this, in, out](uint32_t tag) {
      gloo::AllgatherOptions o(context_);
      o.setInput<uint8_t>(static_cast<uint8_t*>(in.raw_data()), in.nbytes());
      o.setOutput<uint8_t>(static_cast<uint8_t*>(out.raw_data()), out.nbytes());
      o.setTag(tag);
      gloo::allgather(o);
    });
  }

  WorkPtr barrier() override {
    return enqueue("barrier", {}, [this](uint32_t tag) {
      gloo::BarrierOptions o(context_);
      o.setTag(tag);
      gloo::barrier(o);
    });
  }

 private:
  struct Task {
    const char* name;
    uint32_t tag;
    std::function<void(uint32_t)> run;
    std::shared_ptr<ThreadWork> work;
  };
  // Two workers, as PyTorch's ProcessGroupGloo: collective k (in call order) gets tag k and runs on worker
  // k % 2, so two collectives can be in flight; ranks match them by tag, which every rank assigns alike.
  struct Worker {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Task> queue;
    bool stop = false;
    std::thread thread;
  };

  WorkPtr enqueue(const char* name, std::vector<Tensor> keep, std::function<void(uint32_t)> run) {
    auto work = std::make_shared<ThreadWork>(std::move(keep));
    uint32_t tag;
    {
      std::lock_guard<std::mutex> lock(tag_mu_);
      tag = next_tag_++;
    }
    Worker& w = workers_[tag % workers_.size()];
    {
      std::lock_guard<std::mutex> lock(w.mu);
      w.queue.push_back({name, tag, std::move(run), work});
    }
    w.cv.notify_all();
    return work;
  }

  void loop(Worker& w) {
    for (;;) {
      Task task;
      {
        std::unique_lock<std::mutex> lock(w.mu);
        w.cv.wait(lock, [&] { return w.stop || !w.queue.empty(); });
        if (w.queue.empty()) return;
        task = std::move(w.queue.front());
        w.queue.pop_front();
      }
      std::exception_ptr err;
      {
        std::lock_guard<std::mutex> lock(broken_mu_);
        err = broken_;
      }
      if (!err) {
        try {
          task.run(task.tag);
        } catch (const std::exception& e) {
          // Gloo reports a closed connection at once and a silent peer at the timeout; after either the
          // group cannot go on, so every later collective fails with the first error.
          std::lock_guard<std::mutex> lock(broken_mu_);
          if (!broken_) broken_ = std::make_exception_ptr(Error(detail_message(task.name, e.what())));
          err = broken_;
        }
      }
      task.work->finish(err);
    }
  }

  std::string detail_message(const char* op, const std::string& what) const {
    return ht::detail::concat("[distributed] ", op, " failed on rank ", rank_, " of ", size_, " (gloo): ", what,
                              " -- another rank exited, crashed or stopped responding within the timeout");
  }

  int rank_, size_;
  std::shared_ptr<gloo::transport::Device> device_;
  std::shared_ptr<gloo::rendezvous::Context> context_;
  std::mutex tag_mu_, broken_mu_;
  uint32_t next_tag_ = 0;
  std::exception_ptr broken_;
  std::array<Worker, 2> workers_;
};

}  // namespace

std::unique_ptr<Backend> make_gloo(const BackendContext& ctx) { return std::make_unique<GlooBackend>(ctx); }

}  // namespace ht::distributed::detail
