// ProcessGroup: settings from the environment, the store, and dispatch by device to Gloo (CPU) or NCCL (CUDA).
#include "distributed/process_group.h"

#include <csignal>
#include <cstdlib>
#include <mutex>

#include "distributed/backend.h"
#include "distributed/launch_env.h"

namespace ht::distributed {

namespace {
std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

// The settings a group starts from: the launcher's variables (distributed/launch_env.h), then InitOptions.
struct Resolved {
  InitOptions o;
  LaunchEnv env;
  bool client_only = false;  // torchrun's agent serves the store: rank 0 does not
};

Resolved resolve(InitOptions o) {
  Resolved r;
  r.env = read_launch_env();
  const LaunchEnv& e = r.env;
  if (o.world_size < 0) o.world_size = e.world_size;
  if (o.rank < 0) o.rank = e.rank;
  if (o.local_rank < 0) o.local_rank = e.launcher != "none" ? e.local_rank : o.rank;
  if (o.master_addr.empty()) o.master_addr = e.master_addr.empty() ? "127.0.0.1" : e.master_addr;
  // a world of one meets nobody: without MASTER_PORT its store takes any free port (no clash with other jobs)
  if (o.master_port < 0) o.master_port = e.master_port >= 0 ? e.master_port : o.world_size == 1 ? 0 : 29500;
  // as torch's _create_c10d_store: the agent's store only where the agent said it is
  r.client_only = e.use_agent_store && o.master_addr == e.master_addr && o.master_port == e.master_port;
  HT_CHECK(o.master_port > 0 || o.world_size == 1, "[distributed] MASTER_PORT 0 (any free port) only works for ",
           "a world of one; WORLD_SIZE is ", o.world_size);
  if (o.timeout.count() <= 0) {
    std::string t = env_or("HT_DIST_TIMEOUT", "300");
    double s = 0;
    try {
      s = std::stod(t);
    } catch (const std::logic_error&) {
      s = -1;
    }
    HT_CHECK(s > 0, "[distributed] HT_DIST_TIMEOUT must be a positive number of seconds, got '", t, "'");
    o.timeout = std::chrono::milliseconds(int64_t(s * 1000));
  }
  HT_CHECK(o.world_size >= 1, "[distributed] WORLD_SIZE must be at least 1, got ", o.world_size);
  HT_CHECK(o.rank >= 0 && o.rank < o.world_size, "[distributed] RANK must be in [0, WORLD_SIZE=", o.world_size,
           "), got ", o.rank);
  HT_CHECK(o.backend == "auto" || o.backend == "gloo" || o.backend == "nccl",
           "[distributed] unknown backend '", o.backend, "' (expected auto, gloo or nccl)");
  r.o = o;
  return r;
}
}  // namespace

bool launched_from_env() { return launcher_detected(); }

namespace {
// An empty tensor needs no communication (and Gloo's algorithms assume at least one element).
struct DoneWork final : Work {
  void wait() override {}
};
}  // namespace

struct ProcessGroup::Impl {
  InitOptions o;
  std::unique_ptr<TCPStore> store;
  std::unique_ptr<detail::Backend> gloo, nccl;
  std::mutex mu;

  detail::BackendContext context(const std::string& prefix) {
    return {*store, prefix, o.rank, o.world_size, o.timeout};
  }

  detail::Backend& backend_for(const Tensor& t, const char* op) {
    HT_CHECK(t.defined(), "[distributed] ", op, ": undefined tensor");
    HT_CHECK(t.is_contiguous(), "[distributed] ", op, " expects a contiguous tensor, got shape ",
             shape_str(t.sizes()), " with strides ", shape_str(t.strides()));
    std::lock_guard<std::mutex> lock(mu);
    if (t.is_cuda()) {
      HT_CHECK(o.backend != "gloo", "[distributed] ", op, " on a CUDA tensor, but the group was created with ",
               "backend 'gloo' (CPU tensors only); use backend 'auto' or 'nccl'");
      if (!nccl) nccl = detail::make_nccl(context("nccl/"), t.device().index);
      return *nccl;
    }
    HT_CHECK(gloo, "[distributed] ", op, " on a CPU tensor, but the group was created with backend 'nccl' ",
             "(CUDA tensors only); use backend 'auto' or 'gloo'");
    return *gloo;
  }
};

ProcessGroup::ProcessGroup(InitOptions options) : impl_(std::make_unique<Impl>()) {
  Resolved r = resolve(std::move(options));
  impl_->o = r.o;
  const InitOptions& o = impl_->o;
  // A peer that dies mid-collective must be an error on the others, not a SIGPIPE death: Gloo writes to its
  // sockets without MSG_NOSIGNAL. Python (so torch.distributed) ignores SIGPIPE too; a handler of yours stays.
  if (o.world_size > 1) {
    struct sigaction old {};
    if (::sigaction(SIGPIPE, nullptr, &old) == 0 && !(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL)
      ::signal(SIGPIPE, SIG_IGN);
  }
  bool serve = o.rank == 0 && !r.client_only;
  impl_->store = std::make_unique<TCPStore>(o.master_addr, o.master_port, serve, o.timeout, r.env.store_namespace());
  if (o.backend == "nccl") return;
  try {
    impl_->gloo = detail::make_gloo(impl_->context("gloo/"));
  } catch (const Error& e) {
    // srun is what starts every task; a program run directly in an sbatch script is task 0 alone
    if (r.env.launcher != "slurm" || o.world_size == 1) throw;
    fail(e.what(), "; under Slurm (SLURM_NTASKS=", o.world_size, "), start the program with srun");
  }
}

ProcessGroup::~ProcessGroup() = default;

int ProcessGroup::rank() const { return impl_->o.rank; }
int ProcessGroup::size() const { return impl_->o.world_size; }
int ProcessGroup::local_rank() const { return impl_->o.local_rank; }
std::chrono::milliseconds ProcessGroup::timeout() const { return impl_->o.timeout; }

Device ProcessGroup::cuda_device() const {
  int n = cuda::device_count();
  HT_CHECK(n > 0, "[distributed] rank ", rank(), " asked for its CUDA device, but no CUDA GPU is available");
  return Device(DeviceType::CUDA, local_rank() % n);
}

void ProcessGroup::all_reduce(Tensor& t, ReduceOp op) { all_reduce_async(t, op)->wait(); }

WorkPtr ProcessGroup::all_reduce_async(Tensor t, ReduceOp op) {
  detail::Backend& b = impl_->backend_for(t, "all_reduce");
  if (t.numel() == 0) return std::make_shared<DoneWork>();
  return b.all_reduce(t, op);
}

void ProcessGroup::broadcast(Tensor& t, int root) {
  HT_CHECK(root >= 0 && root < size(), "[distributed] broadcast: root ", root, " is not a rank of a group of ",
           size());
  detail::Backend& b = impl_->backend_for(t, "broadcast");
  if (t.numel() > 0) b.broadcast(t, root)->wait();
}

std::vector<Tensor> ProcessGroup::all_gather(const Tensor& t) {
  Tensor in = t.contiguous();
  Shape s = in.sizes();
  s.insert(s.begin(), size());
  Tensor out = empty(s, {.dtype = in.dtype(), .device = in.device()});
  detail::Backend& b = impl_->backend_for(in, "all_gather");
  if (in.numel() > 0) b.all_gather(in, out)->wait();
  std::vector<Tensor> parts;
  for (int r = 0; r < size(); ++r) parts.push_back(out.select(0, r));
  return parts;
}

void ProcessGroup::barrier() {
  if (impl_->gloo) {
    impl_->gloo->barrier()->wait();
  } else {
    Tensor one = ones({1}, {.device = cuda_device()});
    impl_->backend_for(one, "barrier").barrier()->wait();
  }
}

namespace {
std::mutex g_mu;
std::shared_ptr<ProcessGroup> g_default;
}  // namespace

void init_process_group(InitOptions options) {
  std::lock_guard<std::mutex> lock(g_mu);
  HT_CHECK(!g_default, "[distributed] init_process_group was called twice; call destroy_process_group first");
  g_default = std::make_shared<ProcessGroup>(std::move(options));
}

bool is_initialized() {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_default != nullptr;
}

std::shared_ptr<ProcessGroup> default_group_ptr() {
  std::lock_guard<std::mutex> lock(g_mu);
  HT_CHECK(g_default, "[distributed] the default process group is not initialised; call init_process_group()");
  return g_default;
}

ProcessGroup& default_group() { return *default_group_ptr(); }

void destroy_process_group() {
  std::lock_guard<std::mutex> lock(g_mu);
  g_default.reset();
}

int get_rank() { return is_initialized() ? default_group().rank() : 0; }
int get_world_size() { return is_initialized() ? default_group().size() : 1; }

}  // namespace ht::distributed
