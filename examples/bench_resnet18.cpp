// bench_resnet18: one ResNet-18 training step (forward, cross-entropy, backward) in fp32 on the CPU, on a batch
// of Fashion-MNIST-sized images (1x28x28); prints ms/step and images/s. tests/py/bench_resnet18_torch.py is
// PyTorch's side of the same measurement.
//   bench_resnet18 [--batch-size 128] [--threads 2] [--warmup 2] [--steps 5]
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "nn/functional.h"
#include "nn/resnet.h"

namespace {
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
// CPU seconds of all threads: on a shared machine this moves less than wall time.
double cpu_now() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}
}  // namespace

int main(int argc, char** argv) {
  int64_t batch = 128, warmup = 2, steps = 5;
  int threads = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string f = argv[i];
    long v = std::atol(argv[i + 1]);
    if (f == "--batch-size") batch = v;
    else if (f == "--threads") threads = int(v);
    else if (f == "--warmup") warmup = v;
    else if (f == "--steps") steps = v;
    else {
      std::cerr << "usage: bench_resnet18 [--batch-size B] [--threads T] [--warmup W] [--steps S]\n";
      return 1;
    }
  }
  // OpenMP and OpenBLAS size their thread pools from the environment when the library loads: set it and
  // start again when it does not already ask for `threads`.
  std::string want = std::to_string(threads);
  const char* have = std::getenv("OMP_NUM_THREADS");
  if (!have || want != have) {
    setenv("OMP_NUM_THREADS", want.c_str(), 1);
    setenv("OPENBLAS_NUM_THREADS", want.c_str(), 1);
    execv("/proc/self/exe", argv);
    std::perror("bench_resnet18: execv");
    return 1;
  }
  try {
    ht::manual_seed(0);
    auto model = ht::nn::resnet18({.num_classes = 10, .in_channels = 1});
    model->train();
    ht::Tensor x = ht::randn({batch, 1, 28, 28});
    std::vector<int64_t> labels(static_cast<size_t>(batch));
    for (int64_t i = 0; i < batch; ++i) labels[size_t(i)] = i % 10;
    ht::Tensor y = ht::from_vector(labels, {batch});
    auto step = [&] {
      model->zero_grad();
      ht::Tensor loss = ht::nn::functional::cross_entropy(model->forward(x), y);
      loss.backward();
      return loss.item<float>();
    };
    for (int64_t i = 0; i < warmup; ++i) step();
    double t0 = now(), c0 = cpu_now();
    for (int64_t i = 0; i < steps; ++i) step();
    double dt = (now() - t0) / double(steps), dc = (cpu_now() - c0) / double(steps);
    std::printf("halftorch: %.1f ms/step, %.1f images/s, %.1f CPU ms/step (batch %lld, %d threads)\n", dt * 1000,
                double(batch) / dt, dc * 1000, static_cast<long long>(batch), threads);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
