// Kernel benchmark: elementwise throughput against memcpy (or device copy) bandwidth, and GEMM through
// halftorch against calling OpenBLAS directly. Run: build/bin/bench_kernels [--device cpu|cuda]
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <halftorch/halftorch.h>

#include "kernels/kernels.h"

using namespace ht;

namespace {
// Median seconds of `reps` runs after one warm-up.
double time_it(const std::function<void()>& f, Device dev, int reps = 7) {
  f();
  cuda::synchronize();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    auto a = std::chrono::steady_clock::now();
    f();
    if (dev.is_cuda()) cuda::synchronize();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}
void report(const char* what, double bytes, double secs, double ref_gbs) {
  double gbs = bytes / secs / 1e9;
  std::printf("%-44s %8.2f GB/s  %5.1f%% of copy\n", what, gbs, 100 * gbs / ref_gbs);
}
}  // namespace

int main(int argc, char** argv) {
  Device dev = kCPU;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--device" && i + 1 < argc) dev = Device(argv[++i]);
    else if (a == "--help") {
      std::printf("usage: bench_kernels [--device cpu|cuda]\n");
      return 0;
    } else {
      std::fprintf(stderr, "error: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  try {
    const int64_t n = int64_t(1) << 25;  // 32M elements
    std::printf("device %s, %lld elements\n", dev.str().c_str(), static_cast<long long>(n));
    Tensor a32 = rand({n}, {.device = dev}), b32 = rand({n}, {.device = dev});
    Tensor a16 = a32.half(), b16 = b32.half();
    Tensor out32 = empty({n}, {.device = dev}), out16 = empty({n}, {.dtype = kFloat16, .device = dev});
    double copy_secs = time_it([&] {
      kernels::copy_bytes_across(a32.raw_data(), dev, out32.raw_data(), dev, size_t(n) * 4);
    }, dev);
    double copy_gbs = 2.0 * n * 4 / copy_secs / 1e9;
    std::printf("%-44s %8.2f GB/s (read + write)\n", dev.is_cpu() ? "memcpy" : "cudaMemcpy device-to-device", copy_gbs);
    report("add float32 (2 reads + 1 write)", 3.0 * n * 4, time_it([&] { a32 + b32; }, dev), copy_gbs);
    report("add float16 (2 reads + 1 write)", 3.0 * n * 2, time_it([&] { a16 + b16; }, dev), copy_gbs);
    report("relu float16 (1 read + 1 write)", 2.0 * n * 2, time_it([&] { relu(a16); }, dev), copy_gbs);
    report("mul scalar float32", 2.0 * n * 4, time_it([&] { a32 * 3.0; }, dev), copy_gbs);
    report("cast float32 -> float16", 1.0 * n * 6, time_it([&] { a32.half(); }, dev), copy_gbs);
    report("sum float16 (1 read)", 1.0 * n * 2, time_it([&] { sum(a16); }, dev), copy_gbs / 2);

    // Batch norm as a ResNet-18 training step at 224x224, batch 32, runs it: forward with batch statistics, and
    // forward + backward (both through autograd); GB/s counts the bytes of x, y, gy, gx once per pass over them.
    for (auto [c, hw] : {std::pair<int64_t, int64_t>{64, 112}, {128, 28}}) {
      for (DType dtype : {kFloat32, kBFloat16}) {
        for (bool channels_last : {false, true}) {
          MemoryFormat format = channels_last ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous;
          Tensor x = randn({32, c, hw, hw}, {.device = dev}).to(dtype).contiguous(format);
          Tensor gy = randn({32, c, hw, hw}, {.device = dev}).to(dtype).contiguous(format);
          Tensor mean = zeros({c}, {.device = dev}), var = ones({c}, {.device = dev});
          Tensor w = ones({c}, {.device = dev}).requires_grad_(), b = zeros({c}, {.device = dev}).requires_grad_();
          double fwd = time_it([&] {
            NoGradGuard no_grad;
            nn::functional::batch_norm(x, mean, var, w, b, true);
          }, dev);
          Tensor xg = x.detach().requires_grad_();
          double both = time_it([&] { nn::functional::batch_norm(xg, mean, var, w, b, true).backward(gy); }, dev);
          double bytes = double(x.numel()) * double(element_size(dtype));
          char what[96];
          std::snprintf(what, sizeof what, "batch norm %s %s 32x%lldx%lldx%lld", dtype_name(dtype),
                        channels_last ? "NHWC" : "NCHW", static_cast<long long>(c), static_cast<long long>(hw),
                        static_cast<long long>(hw));
          std::printf("%-44s fwd %7.2f ms (%6.2f GB/s)  bwd %7.2f ms\n", what, fwd * 1e3, 2 * bytes / fwd / 1e9,
                      (both - fwd) * 1e3);
        }
      }
    }

    const int64_t m = 1024;
    Tensor x = rand({m, m}, {.device = dev}), y = rand({m, m}, {.device = dev});
    double flops = 2.0 * m * m * m;
    double ht_secs = time_it([&] { matmul(x, y); }, dev, 11);
    std::printf("%-44s %8.2f GFLOP/s\n", "matmul float32 1024x1024 (halftorch)", flops / ht_secs / 1e9);
    if (dev.is_cpu()) {
      std::vector<float> c(size_t(m * m));
      double blas_secs = time_it([&] {
        dnnl_sgemm('N', 'N', m, m, m, 1.f, x.data_ptr<float>(), m, y.data_ptr<float>(), m, 0.f, c.data(), m);
      }, dev, 11);
      std::printf("%-44s %8.2f GFLOP/s\n", "dnnl_sgemm 1024x1024 (oneDNN direct)", flops / blas_secs / 1e9);
      std::printf("halftorch matmul overhead over oneDNN: %+.1f%%\n", 100 * (ht_secs / blas_secs - 1));
    } else {
      Tensor xh = x.half(), yh = y.half();
      const int64_t big = 8192;
      Tensor p = rand({big, big}, {.dtype = kFloat16, .device = dev}), q = rand({big, big}, {.dtype = kFloat16, .device = dev});
      std::printf("%-44s %8.2f TFLOP/s\n", "matmul float16 8192^3 (cublasGemmEx)",
                  2.0 * big * big * big / time_it([&] { matmul(p, q); }, dev, 5) / 1e12);
      std::printf("%-44s %8.2f TFLOP/s\n", "matmul float16 1024^3",
                  flops / time_it([&] { matmul(xh, yh); }, dev, 11) / 1e12);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
