// snippet: ddp_step
#include <halftorch/halftorch.h>

// scripts/launch -n 2 ./ddp_step   (started alone it is a world of one, and runs the same way)
int main() {
  namespace dist = ht::distributed;
  dist::init_process_group();  // RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT from the launcher
  dist::ProcessGroup& pg = dist::default_group();
  ht::Device dev = ht::cuda::is_available() ? pg.cuda_device() : ht::kCPU;  // NCCL on GPUs, Gloo on CPUs

  auto model = ht::nn::resnet18({.num_classes = 10, .in_channels = 1});
  model->to(dev).half();
  dist::DistributedDataParallel ddp(model);  // rank 0's weights and buffers on every rank
  ht::optim::Adam opt(model->parameters(), {.lr = 1e-3});
  ht::amp::GradScaler scaler;
  dist::sync_grad_scaler(scaler);  // one rank's overflow skips the step everywhere

  dist::DistributedSampler sampler(1024, pg.size(), pg.rank(), /*shuffle=*/true, /*seed=*/0);
  sampler.set_epoch(0);
  std::vector<int64_t> mine = sampler.indices();  // this rank's shard of the epoch (read these images)
  std::printf("rank %d of %d: %zu images this epoch\n", pg.rank(), pg.size(), mine.size());

  ht::Tensor x = ht::randn({8, 1, 28, 28}, {.dtype = ht::kFloat16, .device = dev});
  ht::Tensor y = ht::arange(8, {.dtype = ht::kInt64, .device = dev});
  ht::Tensor loss = ht::nn::functional::cross_entropy(ddp(x), y);
  opt.zero_grad();
  scaler.scale(loss).backward();  // gradients averaged over the ranks, bucket by bucket, during backward
  scaler.step(opt);
  scaler.update();
  if (pg.rank() == 0) ht::save(model->state_dict(), "model_fp16.pth");  // rank 0 writes, as in PyTorch
}
