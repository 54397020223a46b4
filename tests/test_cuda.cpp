// The CUDA paths the other test files do not reach, each compared with the CPU path on the same inputs (ggml's
// test-backend-ops shape): 16-bit conv / batch norm / pooling / softmax backward, channels_last convolution and
// batch norm, sliced reductions, tensors beyond 2^31 elements, the allocator's out-of-memory retry, GradScaler
// with a real inf, autocast, randn, concurrent optimizer steps, NCCL's deadlines and its teardown at exit.
// Without a GPU each case says so and passes (HT_REQUIRE_CUDA=1 turns that into a failure). A few cases check,
// on every device, logic that the CUDA fixes changed on the CPU side too: exact log / cos, 32-bit fast division
// and dimension collapsing, matmul folding, an optimizer step skipped by the found-inf flag, GradScaler's
// clean and skipped steps, and the device switch of kernels/dispatch.cpp.
//
// [cuda]: runs CUDA code (scripts/gpu-check runs these under compute-sanitizer memcheck); [race]: also under
// racecheck (halftorch's block reductions: softmax, row reductions, batch-norm statistics, no cuDNN); [big]:
// fills most of the GPU's memory or walks over 2^31 elements, left out under the sanitizers (too slow there).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <set>
#include <thread>

#include "core/autocast.h"
#include "core/raw.h"
#include "distributed/process_group.h"
#include "kernels/elementwise.h"
#include "kernels/nn_kernels.h"
#include "kernels/optim_kernels.h"
#include "nn/functional.h"
#include "nn/resnet.h"
#include "optim/adam.h"
#include "optim/grad_scaler.h"
#include "optim/sgd.h"
#include "tests/helpers.h"

using namespace ht;
using namespace ht::testing;
namespace F = ht::nn::functional;
namespace dist = ht::distributed;

namespace {

// True when a GPU is there; else a visible skip (a failure under HT_REQUIRE_CUDA=1).
bool cuda_or_skip(const char* what) {
  if (cuda::is_available()) return true;
  if (require_cuda()) FAIL("HT_REQUIRE_CUDA=1 but no CUDA device is available");
  WARN("CUDA not available: skipping " << what);
  return false;
}

// The same values, laid out channels_last (NHWC strides on the NCHW shape).
Tensor channels_last(const Tensor& x) { return x.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2}); }

Tensor sample(Shape s, uint64_t seed, DType dt = kFloat32, Device dev = kCPU) {
  Generator g(seed);
  return randn(std::move(s), g).to(dev, dt);
}

// Tolerances for a 16-bit result against a float32 CPU reference on the same (16-bit) inputs.
double tol16(DType dt) { return dt == kBFloat16 ? 2e-2 : 4e-3; }

}  // namespace

// ---- every device (CPU always)

TEST_CASE("randn's own log and cos agree with the C library to the last bits", "[random]") {
  double worst_log = 0, worst_cos = 0;
  for (int i = 0; i < 200000; ++i) {
    double u = kernels::uniform01(11, uint64_t(i));
    double x = 1.0 - u;
    // references in long double, so that their own rounding (2 pi u above all) does not count
    long double ref = std::log(static_cast<long double>(x));
    long double err = std::fabs(kernels::exact::log(x) - ref) / std::max(std::fabs(ref), 1e-300L);
    worst_log = std::max(worst_log, double(ref == 0 ? std::fabs(kernels::exact::log(x)) : err));
    long double angle = 6.283185307179586476925286766559L * static_cast<long double>(u);
    worst_cos = std::max(worst_cos, double(std::fabs(kernels::exact::cos_2pi(u) - std::cos(angle))));
  }
  INFO("worst relative log error " << worst_log << ", worst absolute cos error " << worst_cos);
  CHECK(worst_log < 5e-16);
  CHECK(worst_cos < 5e-16);
  CHECK(kernels::exact::log(1.0) == 0.0);
  CHECK(kernels::exact::cos_2pi(0.0) == 1.0);
  CHECK(std::fabs(kernels::exact::log(0x1p-53) - std::log(0x1p-53)) < 1e-13);
}

TEST_CASE("elementwise ops on channels_last, transposed and broadcast operands match contiguous ones", "[cuda]") {
  for (Device dev : test_devices()) {
    INFO(dev.str());
    Tensor a = sample({2, 5, 3, 4}, 1).to(dev), b = sample({2, 5, 3, 4}, 2).to(dev);
    Tensor want = add(a, b);
    check_equal(add(channels_last(a), channels_last(b)), want, "both channels_last");
    check_equal(add(channels_last(a), b), want, "mixed layouts");
    Tensor row = sample({1, 5, 1, 1}, 3).to(dev);
    check_equal(mul(channels_last(a), row), mul(a, row), "channels_last times a broadcast row");
    Tensor t = sample({7, 9}, 4).to(dev);
    check_equal(add(t.t(), t.t()).contiguous(), add(t, t).t().contiguous(), "transposed");
    check_equal(relu(a.narrow(3, 1, 2)), relu(a.narrow(3, 1, 2).contiguous()), "a narrowed view");
  }
}

TEST_CASE("matmul of a batch with a 2-d or a broadcast matrix: one GEMM, the same values and gradients",
          "[cuda]") {
  for (Device dev : test_devices()) {
    INFO(dev.str());
    Tensor x = sample({3, 4, 5}, 1, kFloat64, dev).requires_grad_();
    Tensor w = sample({5, 6}, 2, kFloat64, dev).requires_grad_();
    Tensor y = matmul(x, w);
    REQUIRE(y.sizes() == Shape{3, 4, 6});
    for (int64_t b = 0; b < 3; ++b)
      check_close(y.select(0, b), matmul(x.detach().select(0, b), w.detach()), 1e-12, 1e-12, "batch entry");
    sum(mul(y, y)).backward();
    Tensor gw = zeros({5, 6}, {.dtype = kFloat64, .device = dev});
    for (int64_t b = 0; b < 3; ++b) {
      Tensor xb = x.detach().select(0, b);
      gw = add(gw, matmul(xb.t(), mul(matmul(xb, w.detach()), 2.0)));
    }
    check_close(w.grad(), gw, 1e-10, 1e-10, "weight gradient");
    // a 2-d left operand against a batch: broadcast with batch stride 0, no copy per batch entry
    Tensor a = sample({4, 5}, 3, kFloat64, dev), bb = sample({3, 5, 6}, 4, kFloat64, dev);
    Tensor z = matmul(a, bb);
    for (int64_t b = 0; b < 3; ++b) check_close(z.select(0, b), matmul(a, bb.select(0, b)), 1e-12, 1e-12, "broadcast");
  }
  check_gradients([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); },
                  {sample({2, 3, 4}, 5, kFloat64), sample({4, 2}, 6, kFloat64)});
}

TEST_CASE("an optimizer step skipped by the found-inf flag changes nothing, step count and momentum included",
          "[cuda][optim]") {
  for (Device dev : test_devices()) {
    INFO(dev.str());
    Tensor inf_flag = ones({1}, {.device = dev}), clean = zeros({1}, {.device = dev});
    Tensor p0 = sample({300}, 1).to(dev), g = sample({300}, 2).to(dev);
    auto run = [&](bool sgd, bool skip_first) {
      Tensor p = p0.clone().set_requires_grad(true);
      std::unique_ptr<optim::Optimizer> opt;
      if (sgd) {
        // a dampening, so that a buffer wrongly taken as initialised by the skipped step would show
        opt = std::make_unique<optim::SGD>(std::vector<Tensor>{p},
                                           optim::SGDOptions{.lr = 0.1, .momentum = 0.9, .dampening = 0.5});
      } else {
        opt = std::make_unique<optim::Adam>(std::vector<Tensor>{p}, optim::AdamOptions{.lr = 0.1});
      }
      p.set_grad(g.clone());
      if (skip_first) {
        opt->step(optim::StepScaling{1.f, &inf_flag});
        check_equal(p, p0, "a skipped step leaves the parameter");
        if (!sgd) CHECK(static_cast<optim::Adam&>(*opt).step_count(0) == 0);
      }
      opt->step(optim::StepScaling{1.f, &clean});
      opt->step(optim::StepScaling{1.f, &clean});
      if (!sgd) CHECK(static_cast<optim::Adam&>(*opt).step_count(0) == 2);
      return p.detach();
    };
    for (bool sgd : {false, true}) check_equal(run(sgd, true), run(sgd, false), sgd ? "SGD" : "Adam");
  }
}

TEST_CASE("GradScaler with Adam: a clean scaled step is the plain step, a NaN skips it and backs the scale off",
          "[cuda][optim]") {
  for (Device dev : test_devices()) {
    INFO(dev.str());
    Tensor p = sample({50}, 1).to(dev).set_requires_grad(true);
    Tensor p0 = p.detach().clone();
    optim::Adam opt({p}, {.lr = 0.1});
    amp::GradScaler scaler({.init_scale = 256.0, .growth_interval = 1});
    scaler.scale(ones({1}, {.device = dev}));
    Tensor g = sample({50}, 2).to(dev);
    p.set_grad(mul(g, 256.0));
    REQUIRE(scaler.step(opt));
    scaler.update();
    CHECK(opt.step_count(0) == 1);
    CHECK(scaler.get_scale() == 512.0);
    // the same first step without scaling, from the same start
    Tensor q = p0.clone().set_requires_grad(true);
    optim::Adam plain({q}, {.lr = 0.1});
    q.set_grad(g.clone());
    plain.step();
    check_equal(p.detach(), q.detach(), "a scaled clean step is the unscaled step");
    Tensor bad = mul(g, 512.0);
    bad.narrow(0, 7, 1).fill_(NAN);
    p.set_grad(bad);
    Tensor before = p.detach().clone();
    CHECK_FALSE(scaler.step(opt));
    scaler.update();
    check_equal(p.detach(), before, "a NaN gradient skips the step");
    CHECK(opt.step_count(0) == 1);
    CHECK(scaler.get_scale() == 256.0);
  }
}

TEST_CASE("32-bit fast division is exact below 2^31 and the strided path collapses dims as it should",
          "[elementwise]") {
  std::vector<uint32_t> divisors{1, 2, 3, 5, 7, 10, 31, 64, 100, 255, 256, 257, 1000, 4095, 65535, 65536, 65537,
                                 1000003, 0x40000000u, 0x7ffffffeu, 0x7fffffffu};
  uint64_t state = 12345;
  auto next = [&] { return state = state * 6364136223846793005ull + 1442695040888963407ull; };
  for (int i = 0; i < 200; ++i) divisors.push_back(uint32_t(next() >> 33) | 1u);
  size_t wrong = 0;
  for (uint32_t d : divisors) {
    kernels::IntDivider div(d);
    std::vector<uint32_t> ns{0, 1, d - 1, d, d + 1, 2 * d - 1, 0x7fffffffu, 0x7ffffffeu, 0x40000000u};
    for (int i = 0; i < 2000; ++i) ns.push_back(uint32_t(next() >> 33));
    for (uint32_t n : ns) {
      if (n > 0x7fffffffu) continue;
      if (div.div(n) != n / d) {
        if (++wrong < 5) WARN("IntDivider(" << d << ").div(" << n << ") = " << div.div(n) << ", want " << n / d);
      }
    }
  }
  CHECK(wrong == 0);

  // a view of the given sizes and strides (element strides; the data pointer is never read)
  auto view = [](std::vector<int64_t> sizes, std::vector<int64_t> strides) {
    kernels::RawView v;
    v.ndim = int(sizes.size());
    for (int d = 0; d < v.ndim; ++d) {
      v.sizes[d] = sizes[size_t(d)];
      v.strides[d] = strides[size_t(d)];
    }
    return v;
  };
  // every linear index visits one output element once, paired with the input element of the same coordinates
  auto check_offsets = [](const kernels::OffsetCalc<2>& oc, const kernels::RawView& out, const kernels::RawView& in) {
    std::map<int64_t, int64_t> input_of;  // output offset -> input offset, by a plain walk over coordinates
    std::vector<int64_t> idx(size_t(out.ndim), 0);
    for (int64_t i = 0; i < out.numel(); ++i) {
      int64_t o = 0, x = 0;
      for (int d = 0; d < out.ndim; ++d) {
        o += idx[size_t(d)] * out.strides[d];
        x += idx[size_t(d)] * in.strides[d];
      }
      input_of[o] = x;
      for (int d = out.ndim - 1; d >= 0 && ++idx[size_t(d)] == out.sizes[d]; --d) idx[size_t(d)] = 0;
    }
    REQUIRE(int64_t(input_of.size()) == out.numel());
    std::set<int64_t> seen;
    size_t bad = 0;
    for (int64_t i = 0; i < out.numel(); ++i) {
      int64_t off[2];
      oc.get(i, off);
      auto it = input_of.find(off[0]);
      if (it == input_of.end() || it->second != off[1] || !seen.insert(off[0]).second) ++bad;
    }
    CHECK(bad == 0);
    CHECK(int64_t(seen.size()) == out.numel());
  };
  struct Case {
    const char* what;
    kernels::RawView out, in;
    int ndim;
    bool flat;
  };
  const std::vector<Case> cases{
      {"contiguous", view({2, 3, 4, 5}, {60, 20, 5, 1}), view({2, 3, 4, 5}, {60, 20, 5, 1}), 1, true},
      {"both channels_last", view({2, 3, 4, 5}, {60, 1, 15, 3}), view({2, 3, 4, 5}, {60, 1, 15, 3}), 1, true},
      {"size-1 dims with odd strides", view({3, 1, 4}, {4, 99, 1}), view({3, 1, 4}, {4, 7, 1}), 1, true},
      {"a transposed input", view({7, 9}, {9, 1}), view({7, 9}, {1, 7}), 2, false},
      {"a broadcast row", view({2, 5, 3, 4}, {60, 12, 4, 1}), view({2, 5, 3, 4}, {0, 1, 0, 0}), 3, false},
      {"a narrowed input", view({4, 6}, {6, 1}), view({4, 6}, {10, 1}), 2, false},
      {"NCHW output, channels_last input", view({2, 3, 4, 5}, {60, 20, 5, 1}), view({2, 3, 4, 5}, {60, 1, 15, 3}),
       3, false},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    const kernels::RawView* views[2] = {&c.out, &c.in};
    kernels::OffsetCalc<2> oc = kernels::collapse_dims<2>(views);
    CHECK(oc.ndim == c.ndim);
    CHECK(kernels::is_flat(oc) == c.flat);
    CHECK(oc.narrow);
    check_offsets(oc, c.out, c.in);
    // the 64-bit path gives the same offsets
    kernels::OffsetCalc<2> wide = oc;
    wide.narrow = false;
    for (int64_t i = 0; i < c.out.numel(); ++i) {
      int64_t a[2], b[2];
      oc.get(i, a);
      wide.get(i, b);
      REQUIRE(a[0] == b[0]);
      REQUIRE(a[1] == b[1]);
    }
  }
}

TEST_CASE("the device switch: operands on two devices are refused; CUDA work without a GPU says why",
          "[dispatch]") {
  auto view = [](Device dev, float* data) {
    kernels::RawView v;
    v.data = data;
    v.device = dev;
    v.ndim = 1;
    v.sizes[0] = 4;
    v.strides[0] = 1;
    return v;
  };
  float a[4] = {1, 2, 3, 4}, b[4] = {};
  kernels::RawView on_cpu = view(kCPU, a), out = view(kCPU, b);
  kernels::binary(kernels::BinaryOp::Add, on_cpu, on_cpu, out, 1, 0);
  CHECK(b[3] == 8.f);
  // checked before any backend runs, so on every machine (the CUDA view's memory is never touched)
  kernels::RawView on_cuda = view(kCUDA, nullptr);
  REQUIRE_THROWS_WITH(kernels::binary(kernels::BinaryOp::Add, on_cpu, on_cuda, out, 1, 0),
                      Catch::Contains("[binary] expected all tensors on one device, got cpu and cuda:0"));
  kernels::Pool2dShape ps;
  ps.planes = 1, ps.h = 2, ps.w = 2, ps.out_h = 1, ps.out_w = 1, ps.kh = 2, ps.kw = 2;
  REQUIRE_THROWS_WITH(kernels::max_pool2d_forward(ps, on_cpu, out, &on_cuda),
                      Catch::Contains("[max_pool2d] expected all tensors on one device"));
  if (cuda::is_available()) return;
  // each family's CUDA branch, reached without a GPU: an error naming CUDA (built without it, or no device)
  REQUIRE_THROWS_WITH(kernels::fill(on_cuda, 1.0), Catch::Contains("[cuda]"));
  REQUIRE_THROWS_WITH(kernels::adaptive_avg_pool2d_forward(ps, on_cuda, on_cuda), Catch::Contains("[cuda]"));
  kernels::GradTensor g;
  g.grad = nullptr;
  g.numel = 4;
  float flag = 0;
  REQUIRE_THROWS_WITH(kernels::unscale_and_check(kCUDA, &g, 1, 1.f, &flag), Catch::Contains("[cuda]"));
  REQUIRE_THROWS_WITH(kernels::copy_bytes_across(a, kCPU, nullptr, kCUDA, 16), Catch::Contains("[cuda]"));
}

// ---- CUDA against the CPU

TEST_CASE("randn and rand draw the same bits on CUDA as on the CPU", "[cuda]") {
  if (!cuda_or_skip("randn CUDA vs CPU")) return;
  for (DType dt : {kFloat64, kFloat32, kFloat16, kBFloat16}) {
    INFO(dtype_name(dt));
    Generator a(42), b(42);
    check_equal(randn({100003}, a, {.dtype = dt, .device = kCUDA}), randn({100003}, b, {.dtype = dt}), "randn");
    check_equal(rand({100003}, a, {.dtype = dt, .device = kCUDA}), rand({100003}, b, {.dtype = dt}), "rand");
  }
}

TEST_CASE("16-bit conv, batch norm and pooling on CUDA match the CPU in float32 on the same inputs", "[cuda]") {
  if (!cuda_or_skip("16-bit conv / batch norm / pooling")) return;
  for (DType dt : {kFloat16, kBFloat16}) {
    INFO(dtype_name(dt));
    const double tol = tol16(dt);
    // one op at a time, so the tolerance is that op's own rounding
    auto both = [&](const std::vector<Tensor>& cpu_in, auto f) {
      std::vector<Tensor> c, g;
      for (const Tensor& t : cpu_in) {
        c.push_back(t.to(kFloat32).requires_grad_());
        g.push_back(t.to(kCUDA).requires_grad_());
      }
      Tensor yc = f(c), yg = f(g);
      REQUIRE(yg.dtype() == dt);
      check_close(yg, yc, tol, tol, "forward");
      Tensor w = sample(yc.sizes(), 99, dt);
      sum(mul(yc, w.to(kFloat32))).backward();
      sum(mul(yg, w.to(kCUDA))).backward();
      for (size_t i = 0; i < c.size(); ++i) check_close(g[i].grad(), c[i].grad(), 4 * tol, 4 * tol, "gradient");
    };
    Tensor x = sample({4, 8, 10, 10}, 1, dt), k = sample({16, 8, 3, 3}, 2, dt), bias = sample({16}, 3, dt);
    both({mul(x, 0.3), mul(k, 0.1), bias}, [](const std::vector<Tensor>& v) {
      return F::conv2d(v[0], v[1], v[2], 1, 1);
    });
    both({x}, [](const std::vector<Tensor>& v) { return F::max_pool2d(v[0], 3, 2, 1); });
    both({x}, [](const std::vector<Tensor>& v) { return F::adaptive_avg_pool2d(v[0], {3, 4}); });
    // batch norm with parameters in the input's dtype, then in float32 (PyTorch's mixed-precision rule)
    for (DType pt : {dt, kFloat32}) {
      INFO("batch norm parameters " << dtype_name(pt));
      Tensor wgt = sample({8}, 4, pt), b = sample({8}, 5, pt);
      Tensor rm_c = zeros({8}), rv_c = ones({8});
      Tensor rm_g = zeros({8}, {.dtype = pt, .device = kCUDA}), rv_g = ones({8}, {.dtype = pt, .device = kCUDA});
      std::vector<Tensor> c{x.to(kFloat32).requires_grad_(), wgt.to(kFloat32).requires_grad_(),
                            b.to(kFloat32).requires_grad_()};
      std::vector<Tensor> g{x.to(kCUDA).requires_grad_(), wgt.to(kCUDA).requires_grad_(), b.to(kCUDA).requires_grad_()};
      Tensor yc = F::batch_norm(c[0], rm_c, rv_c, c[1], c[2], true);
      Tensor yg = F::batch_norm(g[0], rm_g, rv_g, g[1], g[2], true);
      REQUIRE(yg.dtype() == dt);
      check_close(yg, yc, tol, tol, "batch norm forward");
      check_close(rm_g, rm_c, tol, tol, "running mean");
      check_close(rv_g, rv_c, tol, tol, "running var");
      Tensor w = sample(yc.sizes(), 98, dt);
      sum(mul(yc, w.to(kFloat32))).backward();
      sum(mul(yg, w.to(kCUDA))).backward();
      for (size_t i = 0; i < 3; ++i) check_close(g[i].grad(), c[i].grad(), 4 * tol, 4 * tol, "batch norm gradient");
      REQUIRE(g[1].grad().dtype() == pt);
      Tensor ye = F::batch_norm(x.to(kCUDA), rm_g, rv_g, wgt.to(kCUDA), b.to(kCUDA), false);
      check_close(ye, F::batch_norm(x.to(kFloat32), rm_c, rv_c, wgt.to(kFloat32), b.to(kFloat32), false), tol, tol,
                  "batch norm eval");
    }
  }
}

TEST_CASE("inference fusions on CUDA (conv + batch norm + residual + ReLU, max pooling without indices) match "
          "the CPU",
          "[cuda]") {
  if (!cuda_or_skip("conv2d_batch_norm_inference / values-only max pooling")) return;
  for (DType dt : {kFloat32, kFloat16, kBFloat16}) {
    for (MemoryFormat format : {MemoryFormat::Contiguous, MemoryFormat::ChannelsLast}) {
      INFO(dtype_name(dt) << " " << memory_format_name(format));
      const double tol = dt == kFloat32 ? 1e-5 : tol16(dt);
      NoGradGuard ng;
      Tensor x = mul(sample({4, 8, 10, 10}, 11, dt), 0.3).contiguous(format);
      Tensor k = mul(sample({16, 8, 3, 3}, 12, dt), 0.1);
      Tensor residual = sample({4, 16, 10, 10}, 13, dt).contiguous(format);
      Tensor rm = sample({16}, 14, kFloat32), rv = add(abs(sample({16}, 15, kFloat32)), 0.5);
      Tensor wgt = sample({16}, 16, kFloat32), b = sample({16}, 17, kFloat32);
      auto fused = [&](Device dev) {
        return F::conv2d_batch_norm_inference(x.to(dev), k.to(dev), 1, 1, 1, 1, rm.to(dev), rv.to(dev), wgt.to(dev),
                                              b.to(dev), 1e-5, residual.to(dev), true);
      };
      Tensor yg = fused(kCUDA);
      REQUIRE(yg.dtype() == dt);
      CHECK(yg.is_contiguous(format));
      check_close(yg, fused(kCPU), 2 * tol, 2 * tol, "conv2d_batch_norm_inference");
      Tensor pg = F::max_pool2d(x.to(kCUDA), 3, 2, 1);
      CHECK(pg.is_contiguous(format));
      check_close(pg, F::max_pool2d_with_indices(x, 3, 2, 1).first, 0, 0, "max_pool2d values");
    }
  }
}

TEST_CASE("fp16 softmax and log_softmax backward on CUDA match the CPU", "[cuda][race]") {
  if (!cuda_or_skip("fp16 softmax backward")) return;
  for (int64_t cols : {1, 7, 1000, 70000}) {
    INFO(cols << " columns");
    Tensor x = sample({5, cols}, 1, kFloat16);
    for (bool log : {false, true}) {
      Tensor xc = x.to(kFloat32).requires_grad_(), xg = x.to(kCUDA).requires_grad_();
      // autocast aside, softmax keeps a 16-bit input's dtype; the kernels compute in float32 either way
      Tensor yc = log ? log_softmax(xc, 1) : softmax(xc, 1), yg = log ? log_softmax(xg, 1) : softmax(xg, 1);
      check_close(yg, yc, 2e-3, 2e-3, "forward");
      Tensor w = sample({5, cols}, 2, kFloat16);
      sum(mul(yc, w.to(kFloat32))).backward();
      sum(mul(yg, w.to(kCUDA))).backward();
      check_close(xg.grad(), xc.grad(), 4e-3, 4e-3, log ? "log_softmax gradient" : "softmax gradient");
    }
  }
}

TEST_CASE("softmax and log_softmax on CUDA in every floating dtype, rows with -inf and NaN, match the CPU",
          "[cuda]") {
  if (!cuda_or_skip("softmax in every floating dtype")) return;
  const Device gpu = kCUDA;
  // per dtype: (forward, gradient) tolerance; both devices compute in float32 (float64 for float64) and round
  // once, so only the summation order differs (16-bit outputs: one rounding step apart at most)
  struct Case {
    DType dt;
    double forward, gradient;
  };
  for (Case c : {Case{kFloat32, 1e-5, 1e-5}, Case{kFloat64, 1e-12, 1e-12}, Case{kBFloat16, 8e-3, 2e-2},
                 Case{kFloat16, 2e-3, 4e-3}}) {
    for (int64_t cols : {1, 33, 1000, 70000}) {
      INFO(dtype_name(c.dt) << ", " << cols << " columns");
      Tensor x = sample({5, cols}, 11, c.dt);
      // row 1 starts with -inf (weight 0), row 2 is all -inf and row 3 holds a NaN: both all NaN, as in PyTorch
      x.select(0, 1).narrow(0, 0, 1).fill_(-INFINITY);
      x.select(0, 2).fill_(-INFINITY);
      x.select(0, 3).narrow(0, cols / 2, 1).fill_(NAN);
      Tensor w = sample({5, cols}, 12, c.dt);
      for (bool log : {false, true}) {
        INFO((log ? "log_softmax" : "softmax"));
        Tensor xc = x.clone().requires_grad_(), xg = x.to(gpu).detach().requires_grad_();
        Tensor yc = log ? log_softmax(xc, 1) : softmax(xc, 1), yg = log ? log_softmax(xg, 1) : softmax(xg, 1);
        REQUIRE(yg.dtype() == c.dt);
        check_close(yg, yc, c.forward, c.forward, "forward");
        CHECK(std::isnan(yg.select(0, 2).select(0, 0).to(kCPU).item_double()));
        CHECK(std::isnan(yg.select(0, 3).select(0, 0).to(kCPU).item_double()));
        sum(mul(yc, w)).backward();
        sum(mul(yg, w.to(gpu))).backward();
        check_close(xg.grad(), xc.grad(), c.gradient, c.gradient, "gradient");
      }
    }
  }
}

TEST_CASE("channels_last convolution on CUDA matches NCHW and the CPU", "[cuda]") {
  if (!cuda_or_skip("channels_last cuDNN convolution")) return;
  for (DType dt : {kFloat32, kFloat16}) {
    INFO(dtype_name(dt));
    const double tol = dt == kFloat32 ? 1e-4 : 4e-3;
    kernels::Conv2dShape s;
    s.n = 3; s.c_in = 6; s.h = 9; s.w = 11; s.c_out = 10; s.kh = 3; s.kw = 3;
    s.stride_h = 2; s.pad_h = 1; s.pad_w = 1;
    s.out_h = (s.h + 2 * s.pad_h - s.kh) / s.stride_h + 1;
    s.out_w = (s.w + 2 * s.pad_w - s.kw) / s.stride_w + 1;
    Tensor x = sample({s.n, s.c_in, s.h, s.w}, 1, dt, kCUDA), w = sample({s.c_out, s.c_in, 3, 3}, 2, dt, kCUDA);
    Tensor gy = sample({s.n, s.c_out, s.out_h, s.out_w}, 3, dt, kCUDA);
    Tensor y_ref = empty(gy.sizes(), {.dtype = dt, .device = kCUDA});
    kernels::conv2d_forward(s, detail::raw(x), detail::raw(w), nullptr, detail::raw(y_ref));
    check_close(y_ref.to(kCPU, kFloat32), F::conv2d(x.to(kCPU, kFloat32), w.to(kCPU, kFloat32), {}, {2, 1}, 1),
                tol, tol, "NCHW against the CPU");
    // the kernel takes one layout for all of a convolution's tensors (conv2d hands it the weight in that layout)
    Tensor xl = channels_last(x), wl = channels_last(w);
    Tensor yl = channels_last(empty(gy.sizes(), {.dtype = dt, .device = kCUDA}));
    kernels::conv2d_forward(s, detail::raw(xl), detail::raw(wl), nullptr, detail::raw(yl));
    REQUIRE(yl.stride(1) == 1);  // written in the output view's layout
    check_close(yl, y_ref, tol, tol, "forward");
    Tensor gx_ref = empty(x.sizes(), {.dtype = dt, .device = kCUDA}), gx = channels_last(gx_ref.clone());
    Tensor gw_ref = empty(w.sizes(), {.dtype = dt, .device = kCUDA}), gw = channels_last(gw_ref.clone());
    kernels::RawView gx_ref_v = detail::raw(gx_ref), gx_v = detail::raw(gx);
    kernels::RawView gw_ref_v = detail::raw(gw_ref), gw_v = detail::raw(gw);
    kernels::conv2d_backward(s, detail::raw(x), detail::raw(w), detail::raw(gy), &gx_ref_v, &gw_ref_v);
    kernels::conv2d_backward(s, detail::raw(xl), detail::raw(wl), detail::raw(channels_last(gy)), &gx_v, &gw_v);
    check_close(gx, gx_ref, tol, tol, "input gradient");
    check_close(gw, gw_ref, 4 * tol, 4 * tol, "weight gradient");
    // NHWC and NCHW descriptors are not mixed: a channels_last input with an NCHW 3x3 weight is refused
    kernels::RawView gx_mixed = detail::raw(gx);
    CHECK_THROWS_WITH(kernels::conv2d_backward(s, detail::raw(xl), detail::raw(w), detail::raw(channels_last(gy)),
                                               &gx_mixed, nullptr),
                      Catch::Contains("dense in the convolution's layout (channels_last)"));
  }
}

TEST_CASE("conv2d on CUDA with channels_last inputs matches the CPU where tensors lie alike in both layouts",
          "[cuda]") {
  if (!cuda_or_skip("channels_last conv2d with ambiguous layouts")) return;
  // [n, c_in, h, w], [c_out, c_in, kh, kw]: an NCHW 3x3 weight under a channels_last input (conv2d copies it into
  // the input's layout); a 1x1 kernel and a one-channel input (dense in both layouts); a 1x1 map (layer4 of a
  // 28x28 ResNet-18); all forward and both gradients against the CPU, float32 and float16.
  struct Case {
    Shape x, w;
    int64_t padding;
  };
  for (const Case& c : {Case{{2, 6, 7, 7}, {8, 6, 3, 3}, 1}, Case{{2, 6, 7, 7}, {8, 6, 1, 1}, 0},
                        Case{{2, 1, 9, 9}, {8, 1, 3, 3}, 1}, Case{{3, 16, 1, 1}, {32, 16, 3, 3}, 1}}) {
    for (DType dt : {kFloat32, kFloat16}) {
      INFO(shape_str(c.x) << " * " << shape_str(c.w) << " in " << dtype_name(dt));
      const double tol = dt == kFloat32 ? 1e-4 : 4e-3;
      Tensor x = channels_last(sample(c.x, 21, dt)), w = sample(c.w, 22, dt);
      Tensor xc = x.to(kFloat32).requires_grad_(), wc = w.to(kFloat32).requires_grad_();
      Tensor xg = x.to(kCUDA).requires_grad_(), wg = w.to(kCUDA).requires_grad_();
      Tensor yc = F::conv2d(xc, wc, {}, 1, c.padding), yg = F::conv2d(xg, wg, {}, 1, c.padding);
      // channels_last, except under a one-channel input, which PyTorch's rule takes as NCHW
      CHECK(yg.strides() == yc.strides());
      check_close(yg, yc, tol, tol, "forward");
      Tensor gy = sample(yc.sizes(), 23, dt);
      yc.backward(gy.to(kFloat32));
      yg.backward(gy.to(kCUDA));
      check_close(xg.grad(), xc.grad(), 4 * tol, 4 * tol, "input gradient");
      check_close(wg.grad(), wc.grad(), 4 * tol, 4 * tol, "weight gradient");
    }
  }
}

TEST_CASE("float64 conv2d on CUDA runs NCHW, as PyTorch's cuDNN path does, and matches the CPU", "[cuda]") {
  if (!cuda_or_skip("float64 conv2d with a channels_last input")) return;
  // cuDNN's double convolutions are NCHW only: a channels_last float64 input (or weight) gives a contiguous
  // output on CUDA (PyTorch's cudnn_conv_suggest_memory_format), while the CPU keeps channels_last.
  Tensor x = channels_last(sample({2, 6, 7, 7}, 31, kFloat64)), w = sample({8, 6, 3, 3}, 32, kFloat64);
  Tensor xc = x.clone().requires_grad_(), wc = w.clone().requires_grad_();
  Tensor xg = x.to(kCUDA).requires_grad_(), wg = channels_last(w.to(kCUDA)).requires_grad_();
  REQUIRE(xg.is_contiguous(MemoryFormat::ChannelsLast));
  Tensor yc = F::conv2d(xc, wc, {}, 1, 1), yg = F::conv2d(xg, wg, {}, 1, 1);
  CHECK(yc.is_contiguous(MemoryFormat::ChannelsLast));
  CHECK(yg.is_contiguous());
  check_close(yg, yc, 1e-12, 1e-12, "forward");
  Tensor gy = sample(yc.sizes(), 33, kFloat64);
  yc.backward(gy);
  yg.backward(channels_last(gy.to(kCUDA)));
  check_close(xg.grad(), xc.grad(), 1e-12, 1e-12, "input gradient");
  check_close(wg.grad(), wc.grad(), 1e-12, 1e-12, "weight gradient");
}

// halftorch's own batch-norm kernels (split per-channel reductions), apart from cuDNN's convolutions so that
// racecheck sees only them
TEST_CASE("batch norm on CUDA in NCHW and channels_last: the same statistics, outputs and gradients", "[cuda][race]") {
  if (!cuda_or_skip("CUDA batch norm in both layouts")) return;
  for (DType dt : {kFloat32, kFloat16, kBFloat16}) {
    INFO(dtype_name(dt));
    const double tol = dt == kFloat32 ? 1e-4 : dt == kFloat16 ? 4e-3 : 2e-2;
    // few channels over many pixels (many slices), and a channel count that is no multiple of 32
    for (Shape shape : {Shape{64, 3, 40, 40}, Shape{5, 40, 7, 9}}) {
      INFO("batch norm over " << shape_str(shape));
      kernels::BatchNormShape bs{shape[0], shape[1], shape[2] * shape[3]};
      Tensor bx = sample(shape, 4, dt, kCUDA), bw = sample({shape[1]}, 5, kFloat32, kCUDA);
      Tensor bb = sample({shape[1]}, 6, kFloat32, kCUDA), bgy = sample(shape, 7, dt, kCUDA);
      // the kernels on `dev` with activations in dtype t, in one layout
      auto run = [&](bool last, Device dev, DType t) {
        kernels::BatchNormShape st = bs;
        st.channels_last = last;
        auto in_layout = [&](const Tensor& v) { return last ? channels_last(v) : v; };
        Tensor xv = in_layout(bx.to(dev, t)), gyv = in_layout(bgy.to(dev, t));
        Tensor y = in_layout(empty(shape, {.dtype = t, .device = dev}));
        Tensor gx = in_layout(empty(shape, {.dtype = t, .device = dev}));
        Tensor mean = empty({shape[1]}, {.device = dev}), invstd = empty({shape[1]}, {.device = dev});
        Tensor rm = zeros({shape[1]}, {.device = dev}), rv = ones({shape[1]}, {.device = dev});
        Tensor gw = empty({shape[1]}, {.device = dev}), gb = empty({shape[1]}, {.device = dev});
        Tensor pw = bw.to(dev), pb = bb.to(dev);
        kernels::RawView w = detail::raw(pw), b = detail::raw(pb), rmv = detail::raw(rm), rvv = detail::raw(rv);
        kernels::RawView gwv = detail::raw(gw), gbv = detail::raw(gb), gxv = detail::raw(gx);
        kernels::batch_norm_forward_train(st, detail::raw(xv), &w, &b, &rmv, &rvv, 0.1, 1e-5, detail::raw(y),
                                          detail::raw(mean), detail::raw(invstd));
        kernels::batch_norm_backward(st, detail::raw(xv), detail::raw(gyv), detail::raw(mean), detail::raw(invstd),
                                     &w, true, &gxv, &gwv, &gbv);
        return std::vector<Tensor>{y, gx, mean, invstd, rm, rv, gw, gb};
      };
      std::vector<Tensor> nchw = run(false, kCUDA, dt), last = run(true, kCUDA, dt);
      REQUIRE(last[0].stride(1) == 1);
      const char* names[] = {"y", "gx", "mean", "invstd", "running_mean", "running_var", "gweight", "gbias"};
      for (size_t i = 0; i < nchw.size(); ++i) check_close(last[i], nchw[i], tol, tol, names[i]);
      // and against the CPU kernels in float32 on the same (dt-rounded) values
      std::vector<Tensor> cpu = run(false, kCPU, kFloat32);
      for (size_t i = 0; i < nchw.size(); ++i) {
        const double t = i < 2 && dt != kFloat32 ? 4 * tol : 1e-4;  // y and gx are rounded to dt on CUDA
        check_close(nchw[i].to(kCPU, kFloat32), cpu[i], t, t, std::string(names[i]) + " against the CPU");
      }
    }
  }
}

TEST_CASE("long single rows and many short rows reduce on CUDA as on the CPU", "[cuda][race]") {
  if (!cuda_or_skip("sliced reductions")) return;
  for (DType dt : {kFloat32, kFloat16, kBFloat16, kInt64}) {
    for (Shape shape : {Shape{1, 5000011}, Shape{3, 2000003}, Shape{100000, 7}, Shape{1, 1}}) {
      INFO(dtype_name(dt) << " " << shape_str(shape));
      Tensor x = dt == kInt64 ? mul(sample(shape, 1), 1000.0).to(kInt64) : sample(shape, 1, dt);
      Tensor g = x.to(kCUDA);
      const double tol = dt == kFloat16 ? 2e-3 : dt == kBFloat16 ? 1e-2 : 1e-5;
      // float sums differ only by summation order; the reference sums in float64
      Tensor ref_sum = sum(x.to(kFloat64), {1});
      check_close(sum(g, {1}).to(kCPU, kFloat64), ref_sum, tol * std::sqrt(double(shape[1])), tol, "sum");
      if (dt != kInt64) {
        check_close(mean(g, {1}).to(kCPU, kFloat64), mean(x.to(kFloat64), {1}), tol, tol, "mean");
      } else {
        check_equal(sum(g, {1}).to(kCPU), sum(x, {1}), "integer sum");
      }
      auto [mx, mi] = max(g, 1);
      auto [cx, ci] = max(x, 1);
      check_equal(mx.to(kCPU), cx, "max");
      check_equal(mi.to(kCPU), ci, "max index");
      check_equal(argmin(g, 1).to(kCPU), argmin(x, 1), "argmin");
      if (dt != kInt64) check_equal(max(g).to(kCPU), max(x), "full max");
    }
  }
  // ties and NaN: the first maximum wins, a NaN beats everything, across the slices of a long row
  Tensor t = zeros({1, 3000000});
  t.narrow(1, 2999990, 1).fill_(7.0);
  t.narrow(1, 1500000, 1).fill_(7.0);
  CHECK(argmax(t.to(kCUDA), 1).item<int64_t>() == 1500000);
  t.narrow(1, 2500000, 1).fill_(NAN);
  CHECK(argmax(t.to(kCUDA), 1).item<int64_t>() == 2500000);
  // ties and NaN inside one block and one warp (a short row): the first one still wins
  Tensor s = from_vector(std::vector<float>{1, 7, 3, 7, 7, 0, 7, 2}, {1, 8});
  CHECK(argmax(s.to(kCUDA), 1).item<int64_t>() == 1);
  CHECK(std::get<1>(max(s.to(kCUDA), 1)).item<int64_t>() == 1);
  CHECK(argmin(neg(s).to(kCUDA), 1).item<int64_t>() == 1);
  Tensor many = zeros({4, 1000});  // many short rows, each with ties at 3 and 900
  many.narrow(1, 3, 1).fill_(5.0);
  many.narrow(1, 900, 1).fill_(5.0);
  many.select(0, 2).narrow(0, 500, 1).fill_(NAN);
  many.select(0, 3).narrow(0, 600, 1).fill_(NAN);
  many.select(0, 3).narrow(0, 700, 1).fill_(NAN);
  check_equal(argmax(many.to(kCUDA), 1).to(kCPU), from_vector(std::vector<int64_t>{3, 3, 500, 600}, {4}),
              "first maximum, first NaN");
}

TEST_CASE("tensors beyond 2^31 elements: elementwise, reductions and a convolution split by batch", "[cuda][big]") {
  if (!cuda_or_skip("tensors over 2^31 elements")) return;
  const int64_t n = (int64_t(1) << 31) + 4098;
  try {
    Tensor x = ones({n}, {.dtype = kUInt8, .device = kCUDA});
    x.narrow(0, n - 3, 1).fill_(5.0);
    CHECK(sum(x).item<int64_t>() == n + 4);
    CHECK(argmax(x.view({1, n}), 1).item<int64_t>() == n - 3);
    // a strided view over all of it: the 64-bit index path of the elementwise executor
    Tensor xt = x.view({2, n / 2}).t();
    Tensor y = add(xt, xt);
    CHECK(sum(y).item<int64_t>() == 2 * (n + 4));
    CHECK(y.select(0, n / 2 - 3).to(kCPU).to_vector<double>() == std::vector<double>{2, 10});
  } catch (const Error& e) {
    if (std::string(e.what()).find("out of memory") == std::string::npos) throw;
    WARN("not enough GPU memory for the 2^31-element elementwise case: " << e.what());
  }
  cuda::empty_cache();
  // 65537 images of 8 x 64 x 64 halves: 2^31 + 32768 elements, so cuDNN gets two slices of the batch
  const int64_t images = 65537;
  try {
    Tensor x = full({images, 8, 64, 64}, 0.5, {.dtype = kFloat16, .device = kCUDA});
    x.narrow(0, images - 1, 1).copy_(sample({1, 8, 64, 64}, 1, kFloat16, kCUDA));
    Tensor w = mul(sample({8, 8, 3, 3}, 2, kFloat16, kCUDA), 0.1);
    Tensor y = F::conv2d(x, w, {}, 1, 1);
    for (int64_t i : {int64_t(0), images - 1})
      check_close(y.narrow(0, i, 1), F::conv2d(x.narrow(0, i, 1), w, {}, 1, 1), 2e-3, 2e-3, "image " +
                  std::to_string(i));
    y = Tensor();
    // backward over both slices: the weight gradient sums over all images (images - 1 alike, and the last),
    // the input gradient is per image. gy = 2^-14 keeps the fp16 weight gradient, a sum over 2^28 positions, finite.
    const double g = std::ldexp(1.0, -14);
    Tensor xg = x.detach().requires_grad_(), wg = w.detach().requires_grad_();
    Tensor yg = F::conv2d(xg, wg, {}, 1, 1);
    yg.backward(full(yg.sizes(), g, {.dtype = kFloat16, .device = kCUDA}));
    yg = Tensor();
    Tensor want_gw = zeros({8, 8, 3, 3}, {.dtype = kFloat64});
    for (int64_t i : {int64_t(0), images - 1}) {
      Tensor xi = x.narrow(0, i, 1).to(kFloat32).detach().requires_grad_(), wi = w.to(kFloat32).detach().requires_grad_();
      F::conv2d(xi, wi, {}, 1, 1).backward(full({1, 8, 64, 64}, g, {.device = kCUDA}));
      want_gw = add(want_gw, mul(wi.grad().to(kCPU, kFloat64), i == 0 ? double(images - 1) : 1.0));
      check_close(xg.grad().narrow(0, i, 1), xi.grad(), 1e-6, 4e-3, "input gradient of image " + std::to_string(i));
    }
    check_close(wg.grad(), want_gw, 0, 4e-3, "weight gradient summed over both slices");
  } catch (const Error& e) {
    if (std::string(e.what()).find("out of memory") == std::string::npos) throw;
    WARN("not enough GPU memory for the 2^31-element convolution: " << e.what());
  }
  cuda::empty_cache();
}

TEST_CASE("the CUDA allocator: memory_stats, empty_cache, and freeing the cache to retry an allocation",
          "[cuda][big]") {
  if (!cuda_or_skip("the CUDA allocator")) return;
  cuda::empty_cache();
  cuda::MemoryStats s0 = cuda::memory_stats(0);
  CHECK(s0.reserved == s0.allocated);  // nothing cached after empty_cache
  {
    Tensor t = empty({10 << 20}, {.dtype = kUInt8, .device = kCUDA});
    cuda::MemoryStats s1 = cuda::memory_stats(0);
    CHECK(s1.allocated >= s0.allocated + (10 << 20));
    CHECK(s1.peak_allocated >= s1.allocated);
  }
  cuda::MemoryStats s2 = cuda::memory_stats(0);
  CHECK(s2.allocated == s0.allocated);
  CHECK(s2.reserved > s2.allocated);  // the block stays cached
  cuda::empty_cache();
  CHECK(cuda::memory_stats(0).reserved == s0.allocated);

  REQUIRE_THROWS_WITH(empty({int64_t(1) << 42}, {.dtype = kUInt8, .device = kCUDA}),
                      Catch::Contains("[cuda] out of memory: tried to allocate 4398046511104 bytes"));
  // fill the device with 1 GiB blocks, free them (they stay cached), then ask for one block larger than any
  // of them: only the out-of-memory retry, which frees the cache first, can serve it
  std::vector<Tensor> blocks;
  const int64_t gib = int64_t(1) << 30;
  try {
    for (int i = 0; i < 1024; ++i) blocks.push_back(empty({gib}, {.dtype = kUInt8, .device = kCUDA}));
  } catch (const Error& e) {
    REQUIRE_THAT(e.what(), Catch::Contains("out of memory"));
  }
  INFO(blocks.size() << " blocks of 1 GiB");
  REQUIRE(blocks.size() >= 3);
  size_t count = blocks.size();
  blocks.clear();
  cuda::MemoryStats cached = cuda::memory_stats(0);
  CHECK(cached.reserved >= s0.allocated + count * size_t(gib));
  Tensor big = empty({int64_t(count - 2) * gib + (64 << 20)}, {.dtype = kUInt8, .device = kCUDA});
  big.fill_(1.0);
  CHECK(cuda::memory_stats(0).reserved < cached.reserved);  // the cached blocks went back to the driver
  big = Tensor();
  cuda::empty_cache();
  CHECK(sum(ones({4}, {.device = kCUDA})).item<float>() == 4.f);
}

TEST_CASE("GradScaler on CUDA: the unscale kernel finds a real inf, the step is skipped, the scale backs off",
          "[cuda][optim]") {
  if (!cuda_or_skip("GradScaler with an inf on CUDA")) return;
  for (DType dt : {kFloat32, kFloat16}) {
    INFO(dtype_name(dt));
    std::vector<Tensor> result;
    for (Device dev : {kCPU, kCUDA}) {
      Tensor p = sample({40000}, 1, dt, dev).set_requires_grad(true);  // more than one 16384-element chunk
      Tensor p0 = p.detach().clone();
      optim::Adam opt({p}, {.lr = 1e-2});
      amp::GradScaler scaler({.init_scale = 1024.0});
      scaler.scale(ones({1}, {.device = dev}));  // starts the scale
      Tensor g = mul(sample({40000}, 2, dt, dev), 1024.0);
      g.narrow(0, 20001, 1).fill_(INFINITY);
      p.set_grad(g);
      CHECK_FALSE(scaler.step(opt));
      scaler.update();
      check_equal(p.detach(), p0, "skipped step on " + dev.str());
      CHECK(opt.step_count(0) == 0);
      CHECK(scaler.get_scale() == 512.0);
      p.set_grad(mul(sample({40000}, 3, dt, dev), 512.0));
      CHECK(scaler.step(opt));
      scaler.update();
      CHECK(opt.step_count(0) == 1);
      result.push_back(p.detach().to(kCPU));
    }
    check_close(result[1], result[0], 1e-6, dt == kFloat32 ? 1e-6 : 1e-3, "the clean step, CUDA vs CPU");
  }
  // the kernel skips by itself when handed a set flag on the device
  Tensor p = sample({1000}, 4, kFloat32, kCUDA), g = sample({1000}, 5, kFloat32, kCUDA), p0 = p.clone();
  Tensor m = zeros({1000}, {.device = kCUDA}), v = zeros({1000}, {.device = kCUDA});
  Tensor flag = ones({1}, {.device = kCUDA});
  kernels::AdamTensor e;
  e.param = p.raw_data();
  e.grad = g.raw_data();
  e.exp_avg = m.data_ptr<float>();
  e.exp_avg_sq = v.data_ptr<float>();
  e.numel = 1000;
  e.beta1 = 0.9f, e.one_minus_beta1 = 0.1f, e.beta2 = 0.999f, e.one_minus_beta2 = 0.001f, e.eps = 1e-8f;
  e.neg_step_size = -0.1f;
  e.bias_correction2_sqrt = 0.0316f;
  kernels::adam_step(kCUDA, &e, 1, 1.f, flag.data_ptr<float>());
  check_equal(p, p0, "kernel-level skip");
  check_equal(m, zeros({1000}), "moments untouched");
}

TEST_CASE("optimizer steps from two host threads on one device do not mix their tables", "[cuda][optim]") {
  if (!cuda_or_skip("concurrent optimizer steps")) return;
  auto train = [](uint64_t seed, std::vector<Tensor>* out) {
    std::vector<Tensor> ps;
    for (int64_t n : {100, 20000, 7}) ps.push_back(sample({n}, seed + uint64_t(n), kFloat16, kCUDA).requires_grad_());
    optim::Adam opt(ps, {.lr = 1e-2});
    for (int step = 0; step < 50; ++step) {
      for (Tensor& p : ps) p.set_grad(sample(p.sizes(), seed * 100 + uint64_t(step), kFloat16, kCUDA));
      opt.step();
    }
    for (const Tensor& p : ps) out->push_back(p.detach().to(kCPU));
  };
  std::vector<Tensor> alone_a, alone_b, a, b;
  train(1, &alone_a);
  train(2, &alone_b);
  std::thread ta(train, 1, &a), tb(train, 2, &b);
  ta.join();
  tb.join();
  for (size_t i = 0; i < a.size(); ++i) {
    check_equal(a[i], alone_a[i], "thread a");
    check_equal(b[i], alone_b[i], "thread b");
  }
}

TEST_CASE("autocast on CUDA runs matmul and conv in 16-bit like autocast on the CPU", "[cuda]") {
  if (!cuda_or_skip("autocast on CUDA")) return;
  for (DType dt : {kFloat16, kBFloat16}) {
    INFO(dtype_name(dt));
    Tensor a = sample({16, 32}, 1), w = sample({8, 32}, 2), img = sample({2, 3, 9, 9}, 3), k = sample({4, 3, 3, 3}, 4);
    Tensor lc, lg, cc, cg;
    {
      amp::AutocastGuard g(DeviceType::CPU, dt);
      lc = linear(a, w);
      cc = F::conv2d(img, k, {}, 1, 1);
    }
    {
      amp::AutocastGuard g(DeviceType::CUDA, dt);
      lg = linear(a.to(kCUDA), w.to(kCUDA));
      cg = F::conv2d(img.to(kCUDA), k.to(kCUDA), {}, 1, 1);
      Tensor s = softmax(lg, 1);
      CHECK(s.dtype() == kFloat32);
    }
    REQUIRE(lg.dtype() == dt);
    REQUIRE(cg.dtype() == dt);
    check_close(lg, lc, tol16(dt), tol16(dt), "linear");
    check_close(cg, cc, tol16(dt), tol16(dt), "conv2d");
  }
}

TEST_CASE("PyTorch's AMP recipe on CUDA: fp32 ResNet-18 under autocast, batch norm keeps fp32 parameters",
          "[cuda]") {
  if (!cuda_or_skip("the AMP recipe on CUDA")) return;
  Tensor x = sample({8, 1, 28, 28}, 1);
  Tensor y = from_vector(std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7}, {8});
  // the first-step loss bounds the CPU recipe meets against torch.autocast (tests/test_train.cpp, "--amp ...");
  // both devices compute 16-bit convolutions with float accumulation, so the same bounds apply between them
  for (auto [dt, bound] : {std::pair{kFloat16, 2e-3}, std::pair{kBFloat16, 5e-3}}) {
    INFO(dtype_name(dt));
    std::vector<double> losses;
    for (Device dev : {kCPU, kCUDA}) {
      manual_seed(0);  // the same initial weights on both devices
      auto model = nn::resnet18({.num_classes = 10, .in_channels = 1});
      model->to(dev);
      model->train();
      optim::Adam opt(model->parameters(), {.lr = 1e-3});
      amp::GradScaler scaler({.enabled = dt == kFloat16});
      Tensor loss;
      {
        amp::AutocastGuard g(dev.type, dt);
        Tensor logits = (*model)(x.to(dev));
        REQUIRE(logits.dtype() == dt);
        loss = F::cross_entropy(logits, y.to(dev));
      }
      REQUIRE(loss.dtype() == kFloat32);
      scaler.scale(loss).backward();
      scaler.step(opt);
      scaler.update();
      for (const auto& [name, t] : model->named_parameters()) {
        INFO(name);
        REQUIRE(t.dtype() == kFloat32);
        REQUIRE(t.grad().dtype() == kFloat32);
      }
      for (const auto& [name, t] : model->named_buffers())
        if (t.is_floating_point()) REQUIRE(t.dtype() == kFloat32);  // running statistics
      losses.push_back(loss.item_double());
    }
    INFO("loss on the CPU " << losses[0] << ", on CUDA " << losses[1]);
    CHECK(std::fabs(losses[1] - losses[0]) <= bound * std::fabs(losses[0]));
  }
}

TEST_CASE("NCCL: a communicator whose peer never comes fails at the deadline, not in a hang", "[cuda][distributed]") {
  if (!cuda_or_skip("the NCCL deadline")) return;
  dist::InitOptions o{.backend = "nccl", .rank = 0, .world_size = 2, .master_addr = "127.0.0.1",
                      .master_port = free_port(), .timeout = std::chrono::milliseconds(3000)};
  dist::ProcessGroup pg(o);
  Tensor t = ones({4}, {.device = kCUDA});
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE_THROWS_WITH(pg.all_reduce(t), Catch::Contains("creating the NCCL communicator of rank 0 of 2") &&
                                            Catch::Contains("did not complete within 3 s"));
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(s < 30);
}

TEST_CASE("NCCL: a collective a peer abandons aborts the communicator; later ones are refused", "[cuda][distributed]") {
  if (!cuda_or_skip("NCCL abort")) return;
  if (cuda::device_count() < 2) {
    WARN("one GPU: the NCCL abort case needs two (NCCL refuses two ranks on one device)");
    return;
  }
  int port = free_port();
  auto make = [&](int rank) {
    return std::make_unique<dist::ProcessGroup>(dist::InitOptions{.backend = "nccl", .rank = rank, .world_size = 2,
                                                                  .local_rank = rank, .master_addr = "127.0.0.1",
                                                                  .master_port = port,
                                                                  .timeout = std::chrono::milliseconds(4000)});
  };
  std::unique_ptr<dist::ProcessGroup> g0 = make(0), g1 = make(1);
  Tensor a = ones({1000}, {.device = Device(DeviceType::CUDA, 0)});
  Tensor b = ones({1000}, {.device = Device(DeviceType::CUDA, 1)});
  std::thread peer([&] { g1->all_reduce(b); });  // both create the communicator and reduce once
  g0->all_reduce(a);
  peer.join();
  CHECK(a.to(kCPU).to_vector<float>()[0] == 2.f);
  // rank 1 does not come to the second one
  REQUIRE_THROWS_WITH(g0->all_reduce(a), Catch::Contains("did not complete within 4 s"));
  REQUIRE_THROWS_WITH(g0->all_reduce(a), Catch::Contains("no new collectives can run on this group"));
  // a work dropped without wait() and the groups' teardown must not hang or throw
  g1->all_reduce_async(b);
  g0.reset();
  g1.reset();
}

// The child of the next case: a world of one on NCCL whose default group is still initialised when the program
// ends (no destroy_process_group), with a collective dropped without wait() on the way out. Hidden ([.]): it
// runs only when named.
TEST_CASE("NCCL exit child: the default group outlives main", "[.][nccl-exit-child]") {
  dist::init_process_group({.backend = "nccl", .rank = 0, .world_size = 1, .local_rank = 0,
                            .master_addr = "127.0.0.1", .master_port = 0,
                            .timeout = std::chrono::milliseconds(30000)});
  Tensor t = full({1000}, 3.0, {.device = kCUDA});
  dist::default_group().all_reduce(t);
  CHECK(t.to(kCPU).to_vector<float>()[999] == 3.f);
  dist::default_group().all_reduce_async(full({1 << 20}, 1.0, {.device = kCUDA}));
}

TEST_CASE("NCCL: a program that ends with its default group initialised exits cleanly", "[cuda][distributed]") {
  if (!cuda_or_skip("NCCL teardown at exit")) return;
  // the communicator is released by an exit handler before the CUDA runtime unloads; a group destroyed after
  // that must neither throw from its destructor (std::terminate, exit 134) nor hang
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  const std::string log = (std::filesystem::temp_directory_path() /
                           ("ht_nccl_exit_" + std::to_string(::getpid()) + ".log")).string();
  const int status = std::system(("timeout 120 '" + self + "' '[nccl-exit-child]' >'" + log + "' 2>&1").c_str());
  std::ifstream in(log);
  std::string output((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove(log);
  INFO("child output:\n" << output);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(output.find("All tests passed") != std::string::npos);
}

TEST_CASE("every optimizer variant steps on CUDA as on the CPU, in float32 and in 16-bit with or without masters",
          "[cuda][optim]") {
  if (!cuda_or_skip("optimizer variants")) return;
  // one parameter per optimizer; three steps with fixed gradients, the CPU (same dtype) as the reference
  using Make = std::function<std::unique_ptr<optim::Optimizer>(Tensor, bool)>;
  const std::vector<std::pair<const char*, Make>> variants = {
      {"Adam, L2 weight decay, maximize",
       [](Tensor p, bool masters) -> std::unique_ptr<optim::Optimizer> {
         return std::make_unique<optim::Adam>(std::vector<Tensor>{p}, optim::AdamOptions{
             .lr = 1e-2, .weight_decay = 0.1, .maximize = true, .master_weights = masters});
       }},
      {"AdamW, amsgrad",
       [](Tensor p, bool masters) -> std::unique_ptr<optim::Optimizer> {
         return std::make_unique<optim::AdamW>(std::vector<Tensor>{p}, optim::AdamWOptions{
             .lr = 1e-2, .weight_decay = 0.05, .amsgrad = true, .master_weights = masters});
       }},
      {"SGD, nesterov momentum, weight decay",
       [](Tensor p, bool masters) -> std::unique_ptr<optim::Optimizer> {
         return std::make_unique<optim::SGD>(std::vector<Tensor>{p}, optim::SGDOptions{
             .lr = 0.1, .momentum = 0.9, .weight_decay = 1e-3, .nesterov = true, .master_weights = masters});
       }},
      {"SGD, momentum with dampening, maximize",
       [](Tensor p, bool masters) -> std::unique_ptr<optim::Optimizer> {
         return std::make_unique<optim::SGD>(std::vector<Tensor>{p}, optim::SGDOptions{
             .lr = 0.1, .momentum = 0.5, .dampening = 0.2, .maximize = true, .master_weights = masters});
       }},
  };
  struct Precision {
    DType dtype;
    bool masters;
  };
  for (const auto& [name, make] : variants)
    for (Precision pr : {Precision{kFloat32, true}, Precision{kFloat16, true}, Precision{kBFloat16, true},
                         Precision{kFloat16, false}}) {
      INFO(name << ", " << dtype_name(pr.dtype) << (pr.masters ? "" : " without master weights"));
      auto run = [&](Device dev) {
        Tensor p = sample({3, 1000}, 31, pr.dtype, dev);
        p.set_requires_grad(true);
        std::unique_ptr<optim::Optimizer> opt = make(p, pr.masters);
        for (uint64_t step = 0; step < 3; ++step) {
          p.set_grad(mul(sample({3, 1000}, 40 + step, pr.dtype, dev), 0.5));
          opt->step();
        }
        return p.detach();
      };
      const double tol = pr.dtype == kFloat32 ? 1e-6 : tol16(pr.dtype);
      check_close(run(kCUDA), run(kCPU), tol, tol, "parameters after three steps");
    }
}

TEST_CASE("pooling and eval-mode batch norm backward on CUDA in both layouts match the CPU", "[cuda]") {
  if (!cuda_or_skip("pooling and eval batch norm backward")) return;
  for (bool last : {false, true}) {
    for (DType dt : {kFloat32, kBFloat16}) {
      INFO((last ? "channels_last " : "NCHW ") << dtype_name(dt));
      const double tol = dt == kFloat32 ? 1e-5 : tol16(dt);
      Tensor x0 = sample({3, 16, 9, 11}, 51, dt);
      Tensor x = last ? channels_last(x0) : x0;
      auto both = [&](const char* what, auto f) {
        INFO(what);
        Tensor xc = x.detach().clone(MemoryFormat::Preserve).requires_grad_();
        Tensor xg = x.detach().to(kCUDA).requires_grad_();
        Tensor yc = f(xc), yg = f(xg);
        if (last) CHECK(yg.is_contiguous(MemoryFormat::ChannelsLast));
        // pooling picks or averages the same values: float32 agrees to its rounding, 16-bit to one rounding
        check_close(yg, yc, tol, tol, "forward");
        Tensor gy = sample(yc.sizes(), 52, dt);
        yc.backward(gy);
        yg.backward(gy.to(kCUDA));
        check_close(xg.grad(), xc.grad(), 4 * tol, 4 * tol, "input gradient");
      };
      both("max_pool2d 3/2/1", [](const Tensor& v) { return F::max_pool2d(v, 3, 2, 1); });
      both("max_pool2d 2/2/0, dilation 2, ceil_mode",
           [](const Tensor& v) { return F::max_pool2d(v, 2, 2, 0, 2, true); });
      both("adaptive_avg_pool2d to 1x1", [](const Tensor& v) { return F::adaptive_avg_pool2d(v, {1, 1}); });
      both("adaptive_avg_pool2d to 4x5", [](const Tensor& v) { return F::adaptive_avg_pool2d(v, {4, 5}); });
      {
        auto [yc, ic] = F::max_pool2d_with_indices(x, 3, 2, 1);
        auto [yg, ig] = F::max_pool2d_with_indices(x.to(kCUDA), 3, 2, 1);
        check_close(ig.to(kCPU, kFloat64), ic.to(kFloat64), 0, 0, "max_pool2d indices");
      }
      Tensor rm = sample({16}, 53), rv = add(abs(sample({16}, 54)), 0.5);
      Tensor w = sample({16}, 55), b = sample({16}, 56);
      both("batch_norm in eval mode", [&](const Tensor& v) {
        Device d = v.device();
        return F::batch_norm(v, rm.to(d), rv.to(d), w.to(d), b.to(d), /*training=*/false);
      });
    }
  }
}
