"""torch.optim.Adam step time on ResNet-18's parameter shapes (fp32, CPU), for examples/bench_optim.cpp.

Prints one line: torch_ms_per_step=<wall ms> cpu_ms_per_step=<CPU ms, all threads> foreach=<bool> threads=<n>.
  bench_optim_torch.py SHAPES_JSON STEPS [foreach]
"""
import json
import sys
import time

import torch


def main():
    shapes = json.loads(sys.argv[1])
    steps = int(sys.argv[2])
    foreach = len(sys.argv) > 3 and sys.argv[3] == "foreach"
    torch.manual_seed(0)
    params = [torch.randn(s, requires_grad=True) for s in shapes]
    for p in params:
        p.grad = torch.randn(p.shape) * 1e-3
    opt = torch.optim.Adam(params, lr=1e-3, foreach=foreach)
    for _ in range(3):
        opt.step()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        opt.step()
    ms = (time.perf_counter() - t0) * 1e3 / steps
    cpu_ms = (time.process_time() - c0) * 1e3 / steps
    print("torch_ms_per_step=%.3f cpu_ms_per_step=%.3f foreach=%s threads=%d"
          % (ms, cpu_ms, foreach, torch.get_num_threads()))


if __name__ == "__main__":
    main()
