// bench_ddp: data-parallel ResNet-18 training steps (forward, cross-entropy, backward with DDP's bucketed
// all-reduce, Adam) on 1x28x28 batches; rank 0 prints ms/step and images/s over all ranks. Run it under a
// launcher; tests/py/bench_ddp_torch.py is PyTorch's DistributedDataParallel doing the same.
//   scripts/launch -n 2 build/bin/bench_ddp [--batch-size 64] [--warmup 2] [--steps 6] [--no-ddp]
//                                           [--device cpu|cuda] [--precision fp32|fp16]
// On CUDA each rank takes cuda:LOCAL_RANK; fp16 is model.half() + GradScaler (fp32 master weights).
// --no-ddp runs the same loop without the wrapper (one process): the difference is DDP's own overhead.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include <halftorch/halftorch.h>

#include "examples/common.h"

namespace dist = ht::distributed;

int main(int argc, char** argv) {
  int64_t batch = 64, warmup = 2, steps = 6;
  bool use_ddp = true;
  std::string device_name = "cpu", precision = "fp32";
  const char* usage =
      "usage: [scripts/launch -n N] bench_ddp [--batch-size B] [--warmup W] [--steps S] [--no-ddp]\n"
      "                                       [--device cpu|cuda] [--precision fp32|fp16]\n";
  std::optional<int> done =
      examples::parse_flags(argc, argv, usage, {"--no-ddp"}, [&](const std::string& f, const std::string& v) {
        if (f == "--no-ddp") use_ddp = false;
        else if (f == "--device") device_name = v;
        else if (f == "--precision") precision = v;
        else if (f == "--batch-size") batch = std::atol(v.c_str());
        else if (f == "--warmup") warmup = std::atol(v.c_str());
        else if (f == "--steps") steps = std::atol(v.c_str());
        else return false;
        return true;
      });
  if (done) return *done;
  try {
    std::shared_ptr<dist::ProcessGroup> pg;
    if (use_ddp) {
      dist::init_process_group();
      pg = dist::default_group_ptr();
    }
    int rank = pg ? pg->rank() : 0, world = pg ? pg->size() : 1;
    ht::Device device = device_name == "cuda" ? (pg ? pg->cuda_device() : ht::kCUDA) : ht::kCPU;
    bool fp16 = precision == "fp16";
    ht::DType dtype = fp16 ? ht::kFloat16 : ht::kFloat32;
    ht::manual_seed(0);
    auto model = ht::nn::resnet18({.num_classes = 10, .in_channels = 1});
    model->to(device).to(dtype);
    model->train();
    std::unique_ptr<dist::DistributedDataParallel> ddp;
    if (pg) ddp = std::make_unique<dist::DistributedDataParallel>(model, pg);
    ht::optim::Adam opt(model->parameters(), {.lr = 1e-3});
    ht::amp::GradScaler scaler({.enabled = fp16});
    if (pg && fp16) dist::sync_grad_scaler(scaler, pg);
    ht::Generator gen(uint64_t(rank) + 1);
    ht::Tensor x = ht::randn({batch, 1, 28, 28}, gen).to(device, dtype);
    std::vector<int64_t> labels(static_cast<size_t>(batch));
    for (int64_t i = 0; i < batch; ++i) labels[size_t(i)] = (i + rank) % 10;
    ht::Tensor y = ht::from_vector(labels, {batch}).to(device);
    auto step = [&] {
      opt.zero_grad();
      ht::Tensor loss = ht::nn::functional::cross_entropy(ddp ? (*ddp)(x) : (*model)(x), y);
      scaler.scale(loss).backward();
      scaler.step(opt);  // reads the found-inf flag: one host sync per step, as in training
      scaler.update();
      if (!fp16) ht::cuda::synchronize();
    };
    for (int64_t i = 0; i < warmup; ++i) step();
    if (pg) pg->barrier();
    auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < steps; ++i) step();
    if (pg) pg->barrier();
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / double(steps);
    if (rank == 0)
      std::printf("halftorch%s: %d process(es), %s %s, %.1f ms/step, %.1f images/s (batch %lld per process, %s "
                  "threads)\n",
                  ddp ? " DDP" : " (no DDP)", world, device.str().c_str(), precision.c_str(), dt * 1000,
                  double(batch * world) / dt, static_cast<long long>(batch),
                  std::getenv("OMP_NUM_THREADS") ? std::getenv("OMP_NUM_THREADS") : "?");
    // the group goes while the CUDA runtime is still up, as torch.distributed programs end
    ddp.reset();
    pg.reset();
    if (use_ddp) dist::destroy_process_group();
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
