"""PyTorch's side of examples/bench_allreduce.cpp: torch.distributed.all_reduce over Gloo (CPU tensors), same
sizes, same report (algbw = bytes / time, busbw = algbw * 2 (n - 1) / n).
    scripts/launch -n 2 /usr/bin/python3 tests/py/bench_allreduce_torch.py [--dtype float32] [--min-mb 1] [--max-mb 64]"""
import argparse
import time

import torch
import torch.distributed as dist


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--min-mb", type=float, default=1)
    ap.add_argument("--max-mb", type=float, default=64)
    ap.add_argument("--iters", type=int, default=20)
    a = ap.parse_args()
    dist.init_process_group("gloo")
    n, rank = dist.get_world_size(), dist.get_rank()
    dtype = getattr(torch, a.dtype)
    if rank == 0:
        print(f"torch {torch.__version__} all_reduce(sum) over {n} rank(s), cpu {a.dtype}, {a.iters} iterations per size")
        print(f"{'bytes':>12} {'time(us)':>10} {'algbw(GB/s)':>12} {'busbw(GB/s)':>12}")
    w = torch.ones(1 << 20, dtype=dtype)  # warm-up, as in bench_allreduce.cpp
    for _ in range(20):
        dist.all_reduce(w)
    mb = a.min_mb
    while mb <= a.max_mb * 1.0001:
        numel = int(mb * 1024 * 1024) // torch.tensor([], dtype=dtype).element_size()
        t = torch.ones(numel, dtype=dtype)
        dist.all_reduce(t)
        dist.barrier()
        t0 = time.perf_counter()
        works = [dist.all_reduce(t, async_op=True) for _ in range(a.iters)]
        for w in works:
            w.wait()
        secs = (time.perf_counter() - t0) / a.iters
        nbytes = numel * t.element_size()
        algbw = nbytes / secs / 1e9
        if rank == 0:
            print(f"{nbytes:12d} {secs * 1e6:10.1f} {algbw:12.3f} {algbw * 2 * (n - 1) / n:12.3f}")
        mb *= 2


if __name__ == "__main__":
    main()
