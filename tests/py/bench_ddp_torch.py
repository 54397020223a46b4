"""PyTorch's side of examples/bench_ddp.cpp: DistributedDataParallel (gloo) ResNet-18 training steps (forward,
cross-entropy, backward, Adam) on 1x28x28 batches; rank 0 prints ms/step and images/s over all ranks.
    scripts/launch -n 2 /usr/bin/python3 tests/py/bench_ddp_torch.py [--batch-size 64] [--no-ddp]"""
import argparse
import os
import time

import torch
import torch.distributed as dist
import torchvision


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--no-ddp", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    ddp = not a.no_ddp
    if ddp:
        dist.init_process_group("gloo")
    rank, world = (dist.get_rank(), dist.get_world_size()) if ddp else (0, 1)
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10)
    model.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    model.train()
    net = torch.nn.parallel.DistributedDataParallel(model) if ddp else model
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(rank + 1)
    x = torch.randn(a.batch_size, 1, 28, 28, generator=g)
    y = (torch.arange(a.batch_size) + rank) % 10

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()

    for _ in range(a.warmup):
        step()
    if ddp:
        dist.barrier()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    if ddp:
        dist.barrier()
    dt = (time.perf_counter() - t0) / a.steps
    if rank == 0:
        print(f"torch {torch.__version__}{' DDP' if ddp else ' (no DDP)'}: {world} process(es), {dt * 1000:.1f} ms/step, "
              f"{a.batch_size * world / dt:.1f} images/s (batch {a.batch_size} per process, "
              f"{torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
