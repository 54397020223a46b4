// DistributedDataParallel: the broadcast at construction, buffer broadcasts before training forwards, and the
// bucketed gradient reducer driven by autograd's grad-ready hooks.
#include "distributed/ddp.h"

#include <map>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/raw.h"
#include "kernels/kernels.h"

namespace ht::distributed {

namespace {
// Broadcasts `tensors` from `root`, one flat message per (device, dtype) group instead of one per tensor.
void broadcast_coalesced(ProcessGroup& pg, const std::vector<Tensor>& tensors, int root) {
  NoGradGuard no_grad;
  std::map<std::pair<int, int>, std::vector<Tensor>> groups;  // (device key, dtype) -> tensors
  for (const Tensor& t : tensors) {
    int dev = t.is_cuda() ? 1 + t.device().index : 0;
    groups[{dev, int(t.dtype())}].push_back(t);
  }
  for (auto& [key, ts] : groups) {
    std::vector<Tensor> flat;
    for (const Tensor& t : ts) flat.push_back(t.contiguous().reshape({-1}));
    Tensor buffer = flat.size() == 1 ? flat[0].clone() : cat(flat, 0);
    pg.broadcast(buffer, root);
    if (pg.rank() == root) continue;
    int64_t offset = 0;
    for (const Tensor& t : ts) {
      Tensor dst = t;
      dst.copy_(buffer.narrow(0, offset, t.numel()).view(t.sizes()));
      offset += t.numel();
    }
  }
}
}  // namespace

struct DistributedDataParallel::Reducer {
  struct Slot {
    size_t param;
    int64_t offset;
  };
  struct Bucket {
    Tensor buffer;  // flat, in the reduce dtype, on the parameters' device
    std::vector<Slot> slots;
    size_t pending = 0;
    WorkPtr work;
  };

  ProcessGroup& pg;
  std::vector<Tensor> params;
  std::vector<std::string> names;
  std::vector<Bucket> buckets;
  std::vector<std::pair<size_t, size_t>> where;  // param -> (bucket, slot)
  std::vector<int64_t> hook_ids;
  std::vector<bool> ready;
  size_t next_launch = 0;
  bool in_backward = false;
  uint64_t pass = 0;  // the backward pass in_backward refers to

  Reducer(ProcessGroup& group, const nn::Module& module, const DDPOptions& o) : pg(group) {
    for (auto& [name, p] : module.named_parameters()) {
      if (!p.requires_grad()) continue;
      params.push_back(p);
      names.push_back(name);
    }
    where.resize(params.size());
    ready.assign(params.size(), false);
    // Reverse parameter order (gradients become ready roughly back to front), one open bucket per
    // (device, dtype); a bucket closes when the next parameter would take it past its cap.
    std::map<std::pair<int, int>, size_t> open;
    std::vector<int64_t> bytes;
    for (size_t k = params.size(); k-- > 0;) {
      const Tensor& p = params[k];
      DType rd = o.reduce_dtype && is_floating(p.dtype()) ? *o.reduce_dtype : p.dtype();
      std::pair<int, int> key{p.is_cuda() ? 1 + p.device().index : 0, int(rd)};
      int64_t nbytes = p.numel() * int64_t(element_size(rd));
      auto it = open.find(key);
      if (it != open.end()) {
        double cap = (it->second == 0 ? o.first_bucket_mb : o.bucket_cap_mb) * 1024 * 1024;
        if (double(bytes[it->second] + nbytes) > cap) {
          open.erase(it);
          it = open.end();
        }
      }
      if (it == open.end()) {
        it = open.emplace(key, buckets.size()).first;
        buckets.emplace_back();
        bytes.push_back(0);
        // a 0-element tensor keeps the dtype and device until the size is known
        buckets.back().buffer = empty({0}, {.dtype = rd, .device = p.device()});
      }
      Bucket& b = buckets[it->second];
      where[k] = {it->second, b.slots.size()};
      b.slots.push_back({k, bytes[it->second] / int64_t(element_size(rd))});
      bytes[it->second] += nbytes;
    }
    for (size_t i = 0; i < buckets.size(); ++i) {
      Bucket& b = buckets[i];
      b.buffer = zeros({bytes[i] / int64_t(b.buffer.element_size())}, {.dtype = b.buffer.dtype(),
                                                                        .device = b.buffer.device()});
      b.pending = b.slots.size();
    }
    for (size_t k = 0; k < params.size(); ++k)
      hook_ids.push_back(autograd::register_grad_ready_hook(params[k], [this, k](const Tensor&) { on_ready(k); }));
  }

  ~Reducer() {
    for (size_t k = 0; k < params.size(); ++k) autograd::remove_grad_ready_hook(params[k], hook_ids[k]);
  }

  Tensor slot_view(const Bucket& b, const Slot& s) const {
    return b.buffer.narrow(0, s.offset, params[s.param].numel());
  }

  void on_ready(size_t k) {
    if (in_backward && pass != autograd::backward_pass_id()) {
      // the pass that started this round threw before its end-of-backward callback: start over
      for (size_t i = 0; i < next_launch; ++i) {
        try {
          buckets[i].work->wait();
        } catch (const Error&) {
        }
      }
      reset();
    }
    if (!in_backward) {
      in_backward = true;
      pass = autograd::backward_pass_id();
      autograd::queue_callback([this] { finalize(); });
    }
    HT_CHECK(!ready[k], "[DistributedDataParallel] parameter '", names[k], "' became ready twice in one backward");
    ready[k] = true;
    auto [bi, si] = where[k];
    Bucket& b = buckets[bi];
    Tensor dst = slot_view(b, b.slots[si]);
    dst.copy_(params[k].grad().reshape({-1}));
    if (--b.pending == 0) launch_ready();
  }

  // Launches buckets strictly in order, so every rank issues the same sequence of collectives.
  void launch_ready() {
    while (next_launch < buckets.size() && buckets[next_launch].pending == 0) {
      Bucket& b = buckets[next_launch++];
      if (pg.size() > 1) {
        kernels::RawView v = detail::raw(b.buffer, "DistributedDataParallel");
        kernels::unary(kernels::UnaryOp::DivScalar, v, v, double(pg.size()), 0);  // PyTorch's pre-division
      }
      b.work = pg.all_reduce_async(b.buffer, ReduceOp::Sum);
    }
  }

  void reset() {
    in_backward = false;
    next_launch = 0;
    ready.assign(params.size(), false);
    for (Bucket& b : buckets) {
      b.pending = b.slots.size();
      b.work.reset();
    }
  }

  void finalize() {
    if (next_launch < buckets.size()) {
      std::vector<std::string> missing;
      for (size_t k = 0; k < params.size(); ++k)
        if (!ready[k]) missing.push_back(names[k]);
      for (size_t i = 0; i < next_launch; ++i) buckets[i].work->wait();
      reset();
      fail("[DistributedDataParallel] these parameters received no gradient in this backward: ", missing,
           "; every parameter that requires grad must take part in the loss on every rank (the other ranks "
           "are now waiting for their gradients)");
    }
    for (Bucket& b : buckets) {
      b.work->wait();
      for (const Slot& s : b.slots) {
        Tensor g = params[s.param].grad();
        g.copy_(slot_view(b, s).view(g.sizes()));
      }
    }
    reset();
  }
};

DistributedDataParallel::DistributedDataParallel(nn::ModulePtr module, std::shared_ptr<ProcessGroup> group,
                                                 DDPOptions options)
    : module_(std::move(module)), group_(group ? std::move(group) : default_group_ptr()), options_(options) {
  HT_CHECK(module_, "[DistributedDataParallel] module is null");
  HT_CHECK(options_.bucket_cap_mb > 0 && options_.first_bucket_mb > 0,
           "[DistributedDataParallel] bucket sizes must be positive");
  HT_CHECK(!options_.reduce_dtype || is_floating(*options_.reduce_dtype),
           "[DistributedDataParallel] reduce_dtype must be a floating dtype, got ",
           dtype_name(*options_.reduce_dtype));
  if (group_->size() > 1) {
    std::vector<Tensor> state = module_->parameters();
    for (const Tensor& b : module_->buffers()) state.push_back(b);
    broadcast_coalesced(*group_, state, 0);
  }
  reducer_ = std::make_unique<Reducer>(*group_, *module_, options_);
}

DistributedDataParallel::~DistributedDataParallel() = default;

Tensor DistributedDataParallel::forward(const Tensor& x) {
  if (options_.broadcast_buffers && module_->is_training() && group_->size() > 1) sync_buffers();
  return module_->forward(x);
}

void DistributedDataParallel::sync_buffers() {
  std::vector<Tensor> buffers = module_->buffers();
  if (!buffers.empty() && group_->size() > 1) broadcast_coalesced(*group_, buffers, 0);
}

std::vector<std::vector<size_t>> DistributedDataParallel::bucket_layout() const {
  std::vector<std::vector<size_t>> out;
  for (const auto& b : reducer_->buckets) {
    out.emplace_back();
    for (const auto& s : b.slots) out.back().push_back(s.param);
  }
  return out;
}

void sync_grad_scaler(amp::GradScaler& scaler, std::shared_ptr<ProcessGroup> group) {
  std::shared_ptr<ProcessGroup> pg = group ? std::move(group) : default_group_ptr();
  scaler.set_found_inf_reducer([pg](Tensor& flag) { pg->all_reduce(flag, ReduceOp::Max); });
}

}  // namespace ht::distributed
