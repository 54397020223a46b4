// The optimizer step for ResNet-18's 11.7M parameters: halftorch's fused Adam with fp16 parameters, fp32
// master weights and fp32 moments, against torch.optim.Adam on fp32 parameters measured in the same run (CPU);
// on a GPU also the fused kernel's achieved memory bandwidth against a device-to-device copy.
//   bench_optim [steps] [path/to/tests/py/bench_optim_torch.py]   (run from the source root by default; the
//   comparison needs /usr/bin/python3 with torch)
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "core/ops.h"
#include "core/random.h"
#include "core/tensor.h"
#include "optim/adam.h"

using namespace ht;
using Clock = std::chrono::steady_clock;

namespace {

// torchvision's ResNet-18 (1000 classes): conv, batch-norm weight/bias and fc shapes, in parameters() order.
std::vector<Shape> resnet18_shapes() {
  std::vector<Shape> s{{64, 3, 7, 7}, {64}, {64}};
  int64_t in = 64;
  for (int64_t planes : {64, 128, 256, 512}) {
    for (int block = 0; block < 2; ++block) {
      int64_t cin = block == 0 ? in : planes;
      s.insert(s.end(), {{planes, cin, 3, 3}, {planes}, {planes}, {planes, planes, 3, 3}, {planes}, {planes}});
      if (block == 0 && planes != 64) s.insert(s.end(), {{planes, in, 1, 1}, {planes}, {planes}});
    }
    in = planes;
  }
  s.insert(s.end(), {{1000, 512}, {1000}});
  return s;
}

double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

struct Timing {
  double wall_ms, cpu_ms;  // per step; cpu: all threads' CPU time, steadier than wall time on a busy machine
};

Timing time_steps(optim::Optimizer& opt, int steps, bool cuda) {
  for (int i = 0; i < 3; ++i) opt.step();
  if (cuda) ht::cuda::synchronize();
  auto t0 = Clock::now();
  double c0 = cpu_seconds();
  for (int i = 0; i < steps; ++i) opt.step();
  if (cuda) ht::cuda::synchronize();
  return {std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / steps,
          (cpu_seconds() - c0) * 1e3 / steps};
}

struct Run {
  std::vector<Tensor> params;
  std::unique_ptr<optim::Adam> opt;
};

Run make_run(const std::vector<Shape>& shapes, DType dtype, Device device) {
  Run r;
  Generator gen(0);
  for (const Shape& s : shapes) {
    Tensor p = randn(s, gen).to(device, dtype, true).set_requires_grad(true);
    p.set_grad(mul(randn(s, gen), 1e-3).to(device, dtype));
    r.params.push_back(p);
  }
  r.opt = std::make_unique<optim::Adam>(r.params, optim::AdamOptions{.lr = 1e-3});
  return r;
}

Timing torch_time(const std::string& script, const std::vector<Shape>& shapes, int steps, bool foreach) {
  std::string json = "[";
  for (size_t i = 0; i < shapes.size(); ++i) {
    json += i ? ",[" : "[";
    for (size_t d = 0; d < shapes[i].size(); ++d) json += (d ? "," : "") + std::to_string(shapes[i][d]);
    json += "]";
  }
  json += "]";
  std::string cmd = "/usr/bin/python3 " + script + " '" + json + "' " +
                    std::to_string(steps) + (foreach ? " foreach" : "");
  FILE* f = popen(cmd.c_str(), "r");
  Timing t{-1, -1};
  if (!f) return t;
  char line[512] = {};
  while (fgets(line, sizeof line, f))
    if (std::sscanf(line, "torch_ms_per_step=%lf cpu_ms_per_step=%lf", &t.wall_ms, &t.cpu_ms) == 2)
      std::printf("  torch.optim.Adam fp32: %s", line);
  pclose(f);
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 20;
  const std::string script = argc > 2 ? argv[2] : "tests/py/bench_optim_torch.py";
  const auto shapes = resnet18_shapes();
  int64_t total = 0;
  for (const Shape& s : shapes) total += numel_of(s);
  std::printf("ResNet-18 parameters: %zu tensors, %lld elements\n", shapes.size(), (long long)total);

  std::printf("CPU, %d steps each (OMP_NUM_THREADS=%s), per step: wall ms, CPU ms of all threads\n", steps,
              std::getenv("OMP_NUM_THREADS") ?: "unset");
  Run mixed = make_run(shapes, kFloat16, kCPU);
  Timing ht_mixed = time_steps(*mixed.opt, steps, false);
  std::printf("  halftorch Adam fp16 params + fp32 master/moments: wall %8.2f  cpu %8.2f\n", ht_mixed.wall_ms,
              ht_mixed.cpu_ms);
  mixed = Run{};
  Run fp32 = make_run(shapes, kFloat32, kCPU);
  Timing ht_fp32 = time_steps(*fp32.opt, steps, false);
  std::printf("  halftorch Adam fp32 params:                       wall %8.2f  cpu %8.2f\n", ht_fp32.wall_ms,
              ht_fp32.cpu_ms);
  fp32 = Run{};
  Timing single = torch_time(script, shapes, steps, false);
  Timing foreach = torch_time(script, shapes, steps, true);
  if (single.wall_ms > 0) {
    std::printf("  torch.optim.Adam fp32 (single-tensor, its CPU default) / halftorch fp16+master: %.2fx wall, "
                "%.2fx cpu\n", single.wall_ms / ht_mixed.wall_ms, single.cpu_ms / ht_mixed.cpu_ms);
    std::printf("  torch.optim.Adam fp32 (foreach=True) / halftorch fp16+master:                 %.2fx wall, "
                "%.2fx cpu\n", foreach.wall_ms / ht_mixed.wall_ms, foreach.cpu_ms / ht_mixed.cpu_ms);
  } else {
    std::printf("  torch comparison unavailable (no /usr/bin/python3 with torch)\n");
  }

  if (ht::cuda::is_available()) {
    Run gpu = make_run(shapes, kFloat16, kCUDA);
    double ms = time_steps(*gpu.opt, 200, true).wall_ms;
    // per element: read grad (2) + master, exp_avg, exp_avg_sq (12); write param (2) + the three fp32 (12)
    double bytes = double(total) * 28;
    Tensor big = empty({int64_t(1) << 28}, {.dtype = kFloat32, .device = kCUDA});  // 1 GiB
    Tensor dst = empty_like(big);
    dst.copy_(big);
    ht::cuda::synchronize();
    auto t0 = Clock::now();
    for (int i = 0; i < 20; ++i) dst.copy_(big);
    ht::cuda::synchronize();
    double copy_s = std::chrono::duration<double>(Clock::now() - t0).count() / 20;
    double copy_bw = 2.0 * double(big.nbytes()) / copy_s;
    double adam_bw = bytes / (ms * 1e-3);
    std::printf("CUDA: fused Adam fp16+master %.3f ms/step, %.1f GB/s; device copy %.1f GB/s; %.0f%% of copy\n", ms,
                adam_bw / 1e9, copy_bw / 1e9, 100 * adam_bw / copy_bw);
  } else {
    std::printf("CUDA: not available on this machine (fused-kernel bandwidth not measured)\n");
  }
  return 0;
}
