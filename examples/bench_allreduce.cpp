// bench_allreduce: all-reduce bandwidth through ht::distributed, reported as nccl-tests does: algbw = bytes /
// time, busbw = algbw * 2 (n - 1) / n. CPU tensors go over Gloo, CUDA tensors over NCCL. With --raw on CUDA
// it also times ncclAllReduce called directly on the same communicator settings (halftorch's overhead);
// tests/py/bench_allreduce_torch.py is torch.distributed doing the same over Gloo.
//   scripts/launch -n 2 build/bin/bench_allreduce [--device cpu|cuda] [--dtype float32|float16]
//                                                 [--min-mb 1] [--max-mb 64] [--iters 20]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include <halftorch/halftorch.h>

#include "examples/common.h"

namespace dist = ht::distributed;

int main(int argc, char** argv) {
  std::string device_name = "cpu", dtype_name = "float32";
  double min_mb = 1, max_mb = 64;
  int iters = 20;
  const char* usage =
      "usage: scripts/launch -n N bench_allreduce [--device cpu|cuda] [--dtype float32|float16] [--min-mb X]\n"
      "                                           [--max-mb X] [--iters K]\n";
  std::optional<int> done = examples::parse_flags(argc, argv, usage, {}, [&](const std::string& f, const std::string& v) {
    if (f == "--device") device_name = v;
    else if (f == "--dtype") dtype_name = v;
    else if (f == "--min-mb") min_mb = std::atof(v.c_str());
    else if (f == "--max-mb") max_mb = std::atof(v.c_str());
    else if (f == "--iters") iters = std::atoi(v.c_str());
    else return false;
    return true;
  });
  if (done) return *done;
  try {
    dist::init_process_group();
    dist::ProcessGroup& pg = dist::default_group();
    ht::Device device = device_name == "cuda" ? pg.cuda_device() : ht::kCPU;
    ht::DType dtype = ht::dtype_from_name(dtype_name);
    int n = pg.size();
    if (pg.rank() == 0)
      std::printf("all_reduce(sum) over %d rank(s), %s %s, %d iterations per size\n%12s %10s %12s %12s\n", n,
                  device.str().c_str(), ht::dtype_name(dtype), iters, "bytes", "time(us)", "algbw(GB/s)",
                  "busbw(GB/s)");
    {  // connections and socket buffers warm up over the first megabytes; keep that out of the first size
      ht::Tensor w = ht::ones({1 << 20}, {.dtype = dtype, .device = device});
      for (int k = 0; k < 20; ++k) pg.all_reduce(w);
    }
    for (double mb = min_mb; mb <= max_mb * 1.0001; mb *= 2) {
      int64_t numel = int64_t(mb * 1024 * 1024) / int64_t(ht::element_size(dtype));
      ht::Tensor t = ht::ones({numel}, {.dtype = dtype, .device = device});
      pg.all_reduce(t);  // warm-up (and, on NCCL, the communicator)
      pg.barrier();
      auto t0 = std::chrono::steady_clock::now();
      std::vector<dist::WorkPtr> works;
      for (int k = 0; k < iters; ++k) works.push_back(pg.all_reduce_async(t));
      for (auto& w : works) w->wait();
      ht::cuda::synchronize();
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / iters;
      double bytes = double(numel) * double(ht::element_size(dtype));
      double algbw = bytes / secs / 1e9, busbw = algbw * 2.0 * (n - 1) / n;
      if (pg.rank() == 0) std::printf("%12.0f %10.1f %12.3f %12.3f\n", bytes, secs * 1e6, algbw, busbw);
    }
    dist::destroy_process_group();
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
