"""Benchmark: load + save of a 512 MiB fp16 state_dict, `halftorch convert big.pth out.pth` against
`torch.save(torch.load(big.pth), out.pth)` on the same machine and run; medians of several runs.

Usage: io_bench.py HALFTORCH_BINARY WORKDIR [--runs N] [--mib M]
Prints a small table and the disk's sequential write speed (dd with fdatasync) for reference.
"""
import os
import resource
import statistics
import subprocess
import sys
import time

import torch


def timed(fn):
    """(wall seconds, CPU seconds of this process and its children): CPU time is robust on a busy machine."""
    def cpu():
        a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime
    t, c = time.perf_counter(), cpu()
    fn()
    return time.perf_counter() - t, cpu() - c


def main():
    tool, work = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 5
    mib = int(sys.argv[sys.argv.index("--mib") + 1]) if "--mib" in sys.argv else 512
    os.makedirs(work, exist_ok=True)
    big, out_t, out_h = (os.path.join(work, n) for n in ("big.pth", "out_torch.pth", "out_ht.pth"))
    n_tensors = 64
    per = mib * 2 ** 20 // 2 // n_tensors
    torch.manual_seed(0)
    torch.save({f"layer{i}.weight": torch.randn(per).half() for i in range(n_tensors)}, big)

    def torch_path():
        torch.save(torch.load(big), out_t)
        os.sync()  # halftorch fsyncs its output; make torch's bytes reach the disk too, for a fair time

    def ht_path():
        subprocess.run([tool, "convert", big, out_h], check=True)

    t_torch, t_ht = [], []
    for _ in range(runs):
        t_torch.append(timed(torch_path))
        t_ht.append(timed(ht_path))
    dd = subprocess.run(["dd", "if=/dev/zero", f"of={os.path.join(work, 'dd.bin')}", "bs=1M", f"count={mib}",
                         "conv=fdatasync"], capture_output=True, text=True).stderr.strip().splitlines()[-1]
    med = lambda xs, i: statistics.median(x[i] for x in xs)  # noqa: E731
    mt, mh, ct, ch = med(t_torch, 0), med(t_ht, 0), med(t_torch, 1), med(t_ht, 1)
    print(f"state_dict: {n_tensors} fp16 tensors, {mib} MiB, {runs} runs (medians), in {work}")
    print(f"torch.save(torch.load())   wall {mt:7.3f} s {mib / mt:8.1f} MiB/s   cpu {ct:7.3f} s")
    print(f"halftorch convert          wall {mh:7.3f} s {mib / mh:8.1f} MiB/s   cpu {ch:7.3f} s")
    print(f"ratio torch / halftorch    wall {mt / mh:7.2f}x                 cpu {ct / ch:7.2f}x")
    print(f"disk sequential write (dd, fdatasync): {dd}")
    for f in (big, out_t, out_h, os.path.join(work, "dd.bin")):
        os.remove(f)


if __name__ == "__main__":
    main()
