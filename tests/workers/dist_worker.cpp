// dist_worker: one rank of the distributed tests (tests/test_distributed.cpp starts several). Each mode checks
// its own results where every rank can (collectives, GradScaler) and exits 1 naming the first wrong value, or
// writes what the test compares across runs (ddp). Modes:
//   collectives [cpu|cuda]               all_reduce/broadcast/all_gather/barrier/async over the dtypes
//   ddp OUT.pth STEPS BATCH OPTIM PREC [REDUCE [DEVICE]]  trains a small conv net (no BatchNorm) with DDP (one
//                                        process without the launcher's variables); rank 0 saves it
//   scaler                               GradScaler skips on every rank when rank 1 alone overflows
//   fail die|hang VICTIM AFTER           the victim dies (SIGKILL) or hangs after AFTER all_reduces; the
//                                        others must get an error: they print it and exit 3
//   init                                 init_process_group + barrier, prints "rank R of W"
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include <halftorch/halftorch.h>

namespace dist = ht::distributed;
using ht::Tensor;

namespace {

int g_checks = 0;
#define EXPECT(cond, ...)                                                                   \
  do {                                                                                      \
    ++g_checks;                                                                             \
    if (!(cond)) ht::fail("check failed: ", #cond, " -- ", __VA_ARGS__);                    \
  } while (0)

// v(rank, i): small integers, exact in every dtype (bf16 included) for sums over a few ranks.
double value(int rank, int64_t i) { return double(i % 7 + rank); }

const char* op_str(dist::ReduceOp op) {
  switch (op) {
    case dist::ReduceOp::Sum: return "sum";
    case dist::ReduceOp::Avg: return "avg";
    case dist::ReduceOp::Max: return "max";
    default: return "min";
  }
}

Tensor make(ht::DType dtype, int64_t n, int rank, ht::Device device) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = dtype == ht::kBool ? double((i + rank) % 2 == 0) : value(rank, i);
  return ht::from_vector(v, {n}).to(device, dtype);
}

void check_all_reduce(dist::ProcessGroup& pg, ht::DType dtype, int64_t n, ht::Device device) {
  int W = pg.size();
  for (dist::ReduceOp op : {dist::ReduceOp::Sum, dist::ReduceOp::Max, dist::ReduceOp::Min, dist::ReduceOp::Avg}) {
    Tensor t = make(dtype, n, pg.rank(), device);
    pg.all_reduce(t, op);
    std::vector<double> got = t.to_vector<double>();
    for (int64_t i = 0; i < n; ++i) {
      double want;
      if (dtype == ht::kBool) {
        bool any = false, all = true;
        for (int r = 0; r < W; ++r) {
          bool b = (i + r) % 2 == 0;
          any = any || b;
          all = all && b;
        }
        want = op == dist::ReduceOp::Min ? all : any;
      } else {
        double sum = 0, mx = -1e30, mn = 1e30;
        for (int r = 0; r < W; ++r) {
          sum += value(r, i);
          mx = std::max(mx, value(r, i));
          mn = std::min(mn, value(r, i));
        }
        want = op == dist::ReduceOp::Sum ? sum : op == dist::ReduceOp::Max ? mx : op == dist::ReduceOp::Min ? mn
                                                                                                              : sum / W;
        if (op == dist::ReduceOp::Avg && ht::is_integral(dtype)) want = std::trunc(sum / W);
        if (op == dist::ReduceOp::Avg && dtype == ht::kFloat16) want = double(ht::Half(float(want)));
        if (op == dist::ReduceOp::Avg && dtype == ht::kBFloat16) want = double(ht::BFloat16(float(want)));
        if (op == dist::ReduceOp::Avg && dtype == ht::kFloat32) want = double(float(want));
      }
      EXPECT(got[size_t(i)] == want, ht::dtype_name(dtype), " all_reduce ", op_str(op), " element ",
             i, ": got ", got[size_t(i)], ", want ", want);
    }
  }
}

int collectives(dist::ProcessGroup& pg, ht::Device device) {
  int W = pg.size(), R = pg.rank();
  for (ht::DType dt : {ht::kFloat32, ht::kFloat64, ht::kFloat16, ht::kBFloat16, ht::kInt64, ht::kInt32, ht::kUInt8,
                       ht::kBool})
    check_all_reduce(pg, dt, 1000, device);
  check_all_reduce(pg, ht::kFloat32, 600000, device);  // several Gloo segments
  check_all_reduce(pg, ht::kFloat16, 300001, device);

  for (int root = 0; root < W; ++root) {
    for (ht::DType dt : {ht::kFloat32, ht::kInt64, ht::kFloat16}) {
      Tensor t = ht::add(ht::arange(0, 100, 1, {.dtype = ht::kFloat64}), 1000.0 * R).to(device, dt);
      pg.broadcast(t, root);
      std::vector<double> got = t.to_vector<double>();
      for (int64_t i = 0; i < 100; ++i) {
        double want = double(ht::Half(float(1000.0 * root + double(i))));
        if (dt != ht::kFloat16) want = 1000.0 * root + double(i);
        EXPECT(got[size_t(i)] == want, "broadcast from ", root, " ", ht::dtype_name(dt), " element ", i, ": got ",
               got[size_t(i)], ", want ", want);
      }
    }
  }

  Tensor mine = ht::add(ht::arange(0, 6, 1, {.dtype = ht::kFloat64}), 10.0 * R).reshape({2, 3}).to(device, ht::kFloat32);
  std::vector<Tensor> all = pg.all_gather(mine);
  EXPECT(int(all.size()) == W, "all_gather returned ", all.size(), " tensors for ", W, " ranks");
  for (int r = 0; r < W; ++r) {
    EXPECT(all[size_t(r)].sizes() == ht::Shape({2, 3}), "all_gather part ", r, " has shape ",
           ht::shape_str(all[size_t(r)].sizes()));
    std::vector<float> got = all[size_t(r)].to_vector<float>();
    for (int i = 0; i < 6; ++i)
      EXPECT(got[size_t(i)] == float(10 * r + i), "all_gather part ", r, " element ", i, ": got ", got[size_t(i)]);
  }

  // empty tensors need no peer
  Tensor none = ht::zeros({0}, {.device = device});
  pg.all_reduce(none);
  pg.broadcast(none, W - 1);
  std::vector<Tensor> nothing = pg.all_gather(none);
  EXPECT(int(nothing.size()) == W && nothing[0].numel() == 0, "all_gather of an empty tensor");

  // several asynchronous all-reduces in flight, waited in order
  std::vector<Tensor> ts;
  std::vector<dist::WorkPtr> works;
  for (int k = 0; k < 4; ++k) {
    ts.push_back(ht::full({1000 * (k + 1)}, double(R + k), {.device = device}));
    works.push_back(pg.all_reduce_async(ts.back()));
  }
  for (int k = 0; k < 4; ++k) {
    works[size_t(k)]->wait();
    double want = 0;
    for (int r = 0; r < W; ++r) want += r + k;
    std::vector<float> got = ts[size_t(k)].to_vector<float>();
    EXPECT(got.front() == float(want) && got.back() == float(want), "async all_reduce ", k, ": got ", got.front());
  }
  pg.barrier();

  // a strided tensor is refused with its shape and strides
  Tensor strided = ht::zeros({4, 4}, {.device = device}).t();
  try {
    pg.all_reduce(strided);
    EXPECT(false, "all_reduce accepted a non-contiguous tensor");
  } catch (const ht::Error& e) {
    EXPECT(std::string(e.what()).find("contiguous") != std::string::npos, "unexpected message: ", e.what());
  }
  std::printf("rank %d of %d: collectives ok, %d checks\n", R, W, g_checks);
  return 0;
}

// A small convolutional net without BatchNorm, the same initial weights on every rank (seeded).
std::shared_ptr<ht::nn::Sequential> small_net() {
  ht::manual_seed(1234);
  using namespace ht::nn;
  return std::make_shared<Sequential>(std::initializer_list<ModulePtr>{
      std::make_shared<Conv2d>(1, 6, Size2{3, 3}, Conv2dOptions{.padding = {1, 1}}), std::make_shared<ReLU>(),
      std::make_shared<Conv2d>(6, 8, Size2{3, 3}, Conv2dOptions{.stride = {2, 2}, .padding = {1, 1}}),
      std::make_shared<ReLU>(), std::make_shared<Flatten>(), std::make_shared<Linear>(8 * 4 * 4, 10)});
}

int ddp(dist::ProcessGroup* pg, const std::string& out, int64_t steps, int64_t batch, const std::string& optim,
        const std::string& precision, const std::string& reduce, const std::string& device_name) {
  ht::Device device = device_name == "cuda" ? (pg ? pg->cuda_device() : ht::kCUDA) : ht::kCPU;
  int W = pg ? pg->size() : 1, R = pg ? pg->rank() : 0;
  bool fp16 = precision == "fp16";
  auto model = small_net();
  model->to(device);
  if (fp16) model->half();
  // the same data on every rank: N = steps * global batch images of 1x8x8
  int64_t n = steps * batch * W;
  ht::Generator gen(99);
  Tensor images = ht::randn({n, 1, 8, 8}, gen);
  std::vector<int64_t> lv(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) lv[size_t(i)] = (i * 7 + i / 3) % 10;
  Tensor labels = ht::from_vector(lv, {n});

  std::unique_ptr<dist::DistributedDataParallel> wrapped;
  if (pg) {
    dist::DDPOptions o;
    o.bucket_cap_mb = 0.002;  // several buckets even for this small net
    o.first_bucket_mb = 0.001;
    if (reduce == "fp32") o.reduce_dtype = ht::kFloat32;
    wrapped = std::make_unique<dist::DistributedDataParallel>(model, dist::default_group_ptr(), o);
  }
  std::unique_ptr<ht::optim::Optimizer> opt;
  if (optim == "adam") opt = std::make_unique<ht::optim::Adam>(model->parameters(), ht::optim::AdamOptions{.lr = 1e-3});
  else opt = std::make_unique<ht::optim::SGD>(model->parameters(), ht::optim::SGDOptions{.lr = 0.05, .momentum = 0.9});
  ht::amp::GradScaler scaler({.init_scale = 1024, .enabled = fp16});
  if (pg && fp16) dist::sync_grad_scaler(scaler);

  dist::DistributedSampler sampler(n, W, R, /*shuffle=*/false);
  std::vector<int64_t> order = sampler.indices();
  for (int64_t s = 0; s < steps; ++s) {
    std::vector<int64_t> idx(order.begin() + s * batch, order.begin() + (s + 1) * batch);
    std::vector<Tensor> xs, ys;
    for (int64_t i : idx) {
      xs.push_back(images.narrow(0, i, 1));
      ys.push_back(labels.narrow(0, i, 1));
    }
    Tensor x = ht::cat(xs, 0).to(device, fp16 ? ht::kFloat16 : ht::kFloat32), y = ht::cat(ys, 0).to(device);
    Tensor logits = wrapped ? (*wrapped)(x) : (*model)(x);
    Tensor loss = ht::nn::functional::cross_entropy(logits, y);
    opt->zero_grad();
    scaler.scale(loss).backward();
    scaler.step(*opt);
    scaler.update();
  }
  if (R == 0) {
    ht::StateDict sd = model->state_dict();
    for (auto& [name, t] : sd.tensors) t = t.to(ht::kCPU, ht::kFloat32).clone();
    ht::save(sd, out);
    std::printf("ddp: %d rank(s), %lld steps of %lld per rank, %zu buckets, saved %s\n", W,
                static_cast<long long>(steps), static_cast<long long>(batch),
                wrapped ? wrapped->bucket_layout().size() : size_t(0), out.c_str());
  }
  return 0;
}

int scaler_mode(dist::ProcessGroup& pg) {
  Tensor p = ht::ones({4}, {.dtype = ht::kFloat16}).requires_grad_();
  ht::optim::Adam opt({p}, {.lr = 0.1});
  ht::amp::GradScaler scaler({.init_scale = 1024});
  dist::sync_grad_scaler(scaler);
  for (int step = 0; step < 2; ++step) {
    Tensor loss = ht::sum(ht::mul(p, 1.0));
    opt.zero_grad();
    scaler.scale(loss).backward();
    if (step == 0 && pg.rank() == 1) {  // only rank 1 overflows
      ht::NoGradGuard ng;
      p.grad().fill_(std::numeric_limits<double>::infinity());
    }
    bool stepped = scaler.step(opt);
    scaler.update();
    EXPECT(stepped == (step == 1), "rank ", pg.rank(), " step ", step, ": stepped=", stepped);
    EXPECT(scaler.get_scale() == 512.0, "rank ", pg.rank(), " scale after step ", step, ": ",
           scaler.get_scale());
  }
  std::vector<float> v = p.to_vector<float>();
  EXPECT(v[0] < 1.0f, "rank ", pg.rank(), ": the second step did not move the parameter (", v[0], ")");
  std::printf("rank %d: scaler ok, %d checks\n", pg.rank(), g_checks);
  return 0;
}

int fail_mode(dist::ProcessGroup& pg, const std::string& how, int victim, int after) {
  Tensor t = ht::ones({1 << 18});
  for (int i = 0; i < 100000; ++i) {
    if (pg.rank() == victim && i == after) {
      std::fflush(stdout);
      if (how == "die") std::raise(SIGKILL);
      for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    try {
      pg.all_reduce(t, dist::ReduceOp::Avg);
    } catch (const ht::Error& e) {
      std::fprintf(stderr, "rank %d caught after %d all_reduces: %s\n", pg.rank(), i, e.what());
      return 3;
    }
  }
  std::fprintf(stderr, "rank %d: 100000 all_reduces without an error\n", pg.rank());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::string mode = argc > 1 ? argv[1] : "";
    auto arg = [&](int i, const char* fallback) { return argc > i ? std::string(argv[i]) : std::string(fallback); };
    // ddp without the launcher's variables is the one-process reference run, without a group
    if (mode != "ddp" || dist::launched_from_env()) dist::init_process_group();
    if (mode == "ddp")
      return ddp(dist::is_initialized() ? &dist::default_group() : nullptr, arg(2, "ddp.pth"), std::stoll(arg(3, "4")),
                 std::stoll(arg(4, "8")), arg(5, "sgd"), arg(6, "fp32"), arg(7, "grad"), arg(8, "cpu"));
    dist::ProcessGroup& pg = dist::default_group();
    if (mode == "collectives") return collectives(pg, arg(2, "cpu") == "cuda" ? pg.cuda_device() : ht::kCPU);
    if (mode == "scaler") return scaler_mode(pg);
    if (mode == "fail") return fail_mode(pg, arg(2, "die"), std::stoi(arg(3, "1")), std::stoi(arg(4, "3")));
    if (mode == "init") {
      pg.barrier();
      std::printf("rank %d of %d\n", pg.rank(), pg.size());
      return 0;
    }
    std::fprintf(stderr, "dist_worker: unknown mode '%s'\n", mode.c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error (rank %s): %s\n", std::getenv("RANK") ? std::getenv("RANK") : "?", e.what());
    dist::report_failure(e);  // torchrun's summary shows the message
    return 1;
  }
}
