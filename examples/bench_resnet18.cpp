// bench_resnet18: ResNet-18 on the CPU, one training step (forward, cross-entropy, backward, Adam step) or one
// evaluation forward (--eval: model.eval() under no_grad), on a random batch; prints ms/step and images/s, then
// one JSON line for scripts. tests/py/bench_resnet18_torch.py is PyTorch's side of the same measurement.
//   bench_resnet18 [--batch-size 128] [--threads 2] [--warmup 2] [--steps 5] [--precision fp32|bf16|fp16[,...]]
//                  [--image-size 28] [--channels 1] [--num-classes N] [--eval] [--no-optimizer]
//                  [--channels-last] [--gemm-peak] [--gemm-size 2048]
// --image-size 28 --channels 1 is the Fashion-MNIST model (conv1 1->64, 10 classes); --image-size 224
// --channels 3 is torchvision's resnet18 (1000 classes). bf16 and fp16 put the model in that dtype, Adam keeps
// fp32 master weights, and fp16 scales the loss with ht::amp::GradScaler, as train_resnet18 does. The warm-up
// runs on past --warmup until the optimizer has stepped once (fp16's first steps overflow and are skipped).
// --precision takes a comma list (fp32,fp16): one model per precision from the same initialisation, whose
// timed steps alternate (fp32, fp16, fp32, ...), so that a shared machine's slow spells fall on both alike; each
// precision then gets its own line, and a last line gives each one's speed over the first's, median against
// median of the interleaved steps (and best against best).
// --gemm-peak first measures the GEMM rate of ht::matmul on square matrices (best of 3) in the dtype the step's
// convolutions compute in (bf16 for --precision bf16; fp32 for fp32 and for fp16, whose convolutions run on
// fp32 stand-ins) and then reports the step's achieved GFLOP/s against it; the step's FLOPs are counted
// analytically (2 x MACs of every convolution and of the linear layer, forward; a training step counts 3 x
// forward).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "examples/common.h"

namespace {
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
// CPU seconds of all threads: on a shared machine this moves less than wall time.
double cpu_now() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

// Multiply-accumulates of one forward pass of torchvision's resnet18 on one in_channels x size x size image:
// every convolution (stem, 3x3 pairs, 1x1 downsamples) and the final linear layer.
double resnet18_macs(int64_t in_channels, int64_t size, int64_t num_classes) {
  auto out = [](int64_t in, int64_t k, int64_t s, int64_t p) { return (in + 2 * p - k) / s + 1; };
  double macs = 0;
  int64_t hw = out(size, 7, 2, 3), c = 64;
  macs += double(hw * hw) * double(64 * in_channels * 49);
  hw = out(hw, 3, 2, 1);  // max pool
  const int64_t widths[] = {64, 128, 256, 512};
  for (int64_t stage = 0; stage < 4; ++stage) {
    int64_t cout = widths[stage], stride = stage ? 2 : 1;
    for (int64_t block = 0; block < 2; ++block) {
      int64_t s = block ? 1 : stride, cin = block ? cout : c;
      int64_t o = out(hw, 3, s, 1);
      macs += double(o * o) * double(cout * cin * 9 + cout * cout * 9);
      if (s != 1 || cin != cout) macs += double(o * o) * double(cout * cin);  // 1x1 downsample
      hw = o;
    }
    c = cout;
  }
  return macs + double(512 * num_classes);
}

// Best rate of ht::matmul on n x n matrices of `dtype` over `reps` runs after one warm-up, in GFLOP/s.
double gemm_peak(int64_t n, int reps, ht::DType dtype) {
  ht::Tensor a = ht::randn({n, n}).to(dtype), b = ht::randn({n, n}).to(dtype);
  ht::matmul(a, b);
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    double t0 = now();
    ht::Tensor c = ht::matmul(a, b);
    best = std::min(best, now() - t0);
  }
  return 2.0 * double(n) * double(n) * double(n) / best / 1e9;
}

struct WorkloadShape {
  int64_t batch, channels, image_size, num_classes;
  bool eval, optimizer, channels_last;
};
// One precision's model, optimizer, scaler and batch, and the wall and CPU time of each of its timed steps.
// bf16 and fp16 put the model in that dtype, Adam keeps fp32 master weights, and fp16 scales the loss with
// ht::amp::GradScaler, as train_resnet18 does.
class Workload {
 public:
  Workload(std::string name, const WorkloadShape& shape, ht::Tensor labels)
      : precision(std::move(name)), shape_(shape), labels_(std::move(labels)) {
    const ht::DType dtype = precision == "bf16" ? ht::kBFloat16 : precision == "fp16" ? ht::kFloat16 : ht::kFloat32;
    ht::manual_seed(0);
    model_ = ht::nn::resnet18({.num_classes = shape.num_classes, .in_channels = shape.channels});
    model_->to(dtype);
    model_->train(!shape.eval);
    x_ = ht::randn({shape.batch, shape.channels, shape.image_size, shape.image_size}).to(ht::kCPU, dtype);
    if (shape.channels_last) {
      model_->to(ht::MemoryFormat::ChannelsLast);
      x_ = x_.contiguous(ht::MemoryFormat::ChannelsLast);
    }
    // built after model->to(...), so that it steps the parameters' final dtype and layout
    opt_ = std::make_unique<ht::optim::Adam>(model_->parameters(), ht::optim::AdamOptions{.lr = 1e-3});
    scaler_ = std::make_unique<ht::amp::GradScaler>(ht::amp::GradScalerOptions{.enabled = dtype == ht::kFloat16});
  }
  // Warm-up: `steps` steps, and on (at most 20 more) until the optimizer has stepped once, so that the timed
  // steps are steady ones: fp16 starts at a loss scale of 2^16 whose first steps overflow and are skipped, and
  // the first real step allocates Adam's state.
  void warm_up(int64_t steps) {
    bool stepped_once = shape_.eval || !shape_.optimizer;
    for (int64_t i = 0; i < steps || (!stepped_once && i < steps + 20); ++i) stepped_once = step() || stepped_once;
  }
  void timed_step() {
    double t0 = now(), c0 = cpu_now();
    step();
    seconds_.push_back(now() - t0);
    cpu_seconds_ += cpu_now() - c0;
  }
  double mean_seconds() const {
    double total = 0;
    for (double s : seconds_) total += s;
    return total / double(seconds_.size());
  }
  double mean_cpu_seconds() const { return cpu_seconds_ / double(seconds_.size()); }
  double best_seconds() const { return *std::min_element(seconds_.begin(), seconds_.end()); }
  double median_seconds() const {
    std::vector<double> s = seconds_;
    std::sort(s.begin(), s.end());
    size_t n = s.size();
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
  }
  const std::string precision;

 private:
  // one step; whether the optimizer stepped (fp16's GradScaler skips a step whose scaled gradients overflow)
  bool step() {
    if (shape_.eval) {
      ht::NoGradGuard no_grad;
      (*model_)(x_);
      return false;
    }
    ht::Tensor loss = ht::nn::functional::cross_entropy((*model_)(x_), labels_);
    opt_->zero_grad();
    scaler_->scale(loss).backward();
    bool stepped = false;
    if (shape_.optimizer) {
      stepped = scaler_->step(*opt_);
      scaler_->update();
    }
    loss.item<float>();
    return stepped;
  }

  WorkloadShape shape_;
  ht::Tensor labels_, x_;
  std::shared_ptr<ht::nn::ResNet> model_;
  std::unique_ptr<ht::optim::Adam> opt_;
  std::unique_ptr<ht::amp::GradScaler> scaler_;
  std::vector<double> seconds_;
  double cpu_seconds_ = 0;
};
}  // namespace

int main(int argc, char** argv) {
  int64_t batch = 128, warmup = 2, steps = 5, image_size = 28, channels = 1, num_classes = 0, gemm_size = 2048;
  int threads = 2;
  bool eval = false, optimizer = true, channels_last = false, want_gemm = false;
  std::string precision = "fp32";
  const char* usage =
      "usage: bench_resnet18 [--batch-size B] [--threads T] [--warmup W] [--steps S] [--precision fp32|bf16|fp16[,...]]\n"
      "                      [--image-size 28|224] [--channels 1|3] [--num-classes N] [--eval] [--no-optimizer]\n"
      "                      [--channels-last] [--gemm-peak] [--gemm-size N]\n";
  std::optional<int> done = examples::parse_flags(
      argc, argv, usage, {"--eval", "--no-optimizer", "--channels-last", "--gemm-peak"},
      [&](const std::string& f, const std::string& v) {
        long n = std::atol(v.c_str());
        if (f == "--batch-size") batch = n;
        else if (f == "--threads") threads = int(n);
        else if (f == "--warmup") warmup = n;
        else if (f == "--steps") steps = n;
        else if (f == "--image-size") image_size = n;
        else if (f == "--channels") channels = n;
        else if (f == "--num-classes") num_classes = n;
        else if (f == "--gemm-size") gemm_size = n;
        else if (f == "--precision") precision = v;
        else if (f == "--eval") eval = true;
        else if (f == "--no-optimizer") optimizer = false;
        else if (f == "--channels-last") channels_last = true;
        else if (f == "--gemm-peak") want_gemm = true;
        else return false;
        return true;
      });
  if (done) return *done;
  std::vector<std::string> precisions;
  {
    std::stringstream list(precision);
    for (std::string p; std::getline(list, p, ',');) precisions.push_back(p);
  }
  if (precisions.empty()) precisions.push_back(precision);
  for (const std::string& p : precisions)
    if (p != "fp32" && p != "bf16" && p != "fp16") {
      std::cerr << "error: --precision must be fp32, bf16 or fp16, or a comma list of them; got '" << precision
                << "'\n" << usage;
      return 2;
    }
  if (batch <= 0 || steps <= 0 || warmup < 0 || image_size < 8 || channels <= 0 || threads <= 0) {
    std::cerr << "error: --batch-size, --steps, --channels and --threads must be positive, --image-size at least 8\n"
              << usage;
    return 2;
  }
  if (num_classes <= 0) num_classes = channels == 1 ? 10 : 1000;
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
    // the GEMM peak in the dtype the (first) precision's convolutions compute in
    const ht::DType gemm_dtype = precisions.front() == "bf16" ? ht::kBFloat16 : ht::kFloat32;
    const char* gemm_name = gemm_dtype == ht::kBFloat16 ? "bf16" : "fp32";
    double peak = want_gemm ? gemm_peak(gemm_size, 3, gemm_dtype) : 0;
    if (want_gemm)
      std::printf("halftorch %s GEMM %lld^3: %.1f GFLOP/s (best of 3, %d threads)\n", gemm_name,
                  static_cast<long long>(gemm_size), peak, threads);
    std::vector<int64_t> labels(static_cast<size_t>(batch));
    for (int64_t i = 0; i < batch; ++i) labels[size_t(i)] = i % num_classes;
    const ht::Tensor y = ht::from_vector(labels, {batch});
    const WorkloadShape shape{batch, channels, image_size, num_classes, eval, optimizer, channels_last};
    std::vector<std::unique_ptr<Workload>> loads;
    for (const std::string& p : precisions) loads.push_back(std::make_unique<Workload>(p, shape, y));
    for (auto& w : loads) w->warm_up(warmup);
    // timed steps, interleaved across the precisions
    for (int64_t i = 0; i < steps; ++i)
      for (auto& w : loads) w->timed_step();
    const double flops = 2 * resnet18_macs(channels, image_size, num_classes) * double(batch) * (eval ? 1 : 3);
    const std::string mode = eval ? "eval" : optimizer ? "train" : "train-no-optimizer";
    for (const auto& w : loads) {
      const double dt = w->mean_seconds(), dc = w->mean_cpu_seconds();
      std::printf("halftorch %s %s%s %lldx%lldx%lldx%lld: %.1f ms/step, %.1f images/s, %.1f CPU ms/step, %.1f GFLOP/s",
                  mode.c_str(), w->precision.c_str(), channels_last ? " channels_last" : "",
                  static_cast<long long>(batch), static_cast<long long>(channels), static_cast<long long>(image_size),
                  static_cast<long long>(image_size), dt * 1000, double(batch) / dt, dc * 1000, flops / dt / 1e9);
      if (want_gemm) std::printf(" (%.0f%% of the %s GEMM peak)", 100 * flops / dt / 1e9 / peak, gemm_name);
      std::printf(" (%d threads)\n", threads);
      nlohmann::json j = {{"impl", "halftorch"},
                          {"version", "halftorch"},
                          {"mode", mode},
                          {"precision", w->precision},
                          {"channels_last", channels_last},
                          {"batch", batch},
                          {"channels", channels},
                          {"image_size", image_size},
                          {"num_classes", num_classes},
                          {"threads", threads},
                          {"steps", steps},
                          {"ms_per_step", dt * 1000},
                          {"images_per_s", double(batch) / dt},
                          {"cpu_ms_per_step", dc * 1000},
                          {"median_ms_per_step", w->median_seconds() * 1000},
                          {"best_ms_per_step", w->best_seconds() * 1000},
                          {"gflop_per_step", flops / 1e9},
                          {"gflops", flops / dt / 1e9}};
      if (loads.size() > 1) j["interleaved_with"] = precision;
      if (want_gemm) {
        j["gemm_peak_gflops"] = peak;
        j["gemm_dtype"] = gemm_name;
      }
      std::printf("%s\n", j.dump().c_str());
    }
    if (loads.size() > 1) {
      const Workload& base = *loads.front();
      std::printf("interleaved, images/s over %s's:", base.precision.c_str());
      for (size_t k = 1; k < loads.size(); ++k)
        std::printf(" %s %.3f median, %.3f best;", loads[k]->precision.c_str(),
                    base.median_seconds() / loads[k]->median_seconds(), base.best_seconds() / loads[k]->best_seconds());
      std::printf(" %lld steps each\n", static_cast<long long>(steps));
    }
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
