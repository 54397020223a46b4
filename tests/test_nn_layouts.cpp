// The nn kernels in every dtype and memory format: each convolution, batch-norm and pooling configuration of
// the PyTorch fixtures (tests/py/nn_layers.py) runs in float32, bfloat16 and float16, NCHW and channels_last,
// and is compared with the float64 path on the same (rounded) inputs, forward and every gradient. The float64
// path itself is checked against PyTorch here too. Outputs and input gradients keep the input's layout.
// Tolerances (error relative to the reference's largest magnitude): float32 1e-5 as the PyTorch tests; bf16
// 1e-2 and fp16 2e-3, a few roundings of the result to 8 and 11 significant bits (2^-9 = 2.0e-3 and
// 2^-12 = 2.4e-4 relative), since inside each kernel the math is float32.
#include "nn/functional.h"
#include "nn/resnet.h"
#include "nn_test_util.h"

using namespace ht;
using namespace ht::testing;
namespace F = ht::nn::functional;

namespace {

struct Variant {
  DType dtype;
  MemoryFormat format;
  double tol;
};
std::vector<Variant> variants() {
  std::vector<Variant> v;
  for (MemoryFormat f : {MemoryFormat::Contiguous, MemoryFormat::ChannelsLast}) {
    v.push_back({kFloat32, f, 1e-5});
    v.push_back({kBFloat16, f, 1e-2});
    v.push_back({kFloat16, f, 2e-3});
  }
  return v;
}
std::string name(const Variant& v) { return std::string(dtype_name(v.dtype)) + " " + memory_format_name(v.format); }

// t rounded to the variant's dtype, laid out in its format (4-d tensors only), as a fresh leaf.
Tensor leaf(const Tensor& t, DType dtype, MemoryFormat format) {
  Tensor r = t.to(dtype);
  if (r.dim() == 4) r = r.contiguous(format);
  return r.detach().clone(MemoryFormat::Preserve).requires_grad_(true);
}
// The same values in float64 NCHW: the reference's input.
Tensor reference_leaf(const Tensor& t, DType dtype) { return t.to(dtype).to(kFloat64).contiguous().requires_grad_(true); }

// Backpropagates fixture `key` (rounded to the variant's dtype, in its layout) through y, and in float64 through yr.
void backward_both(const Tensor& y, const Tensor& yr, const std::string& key, const Variant& v) {
  Tensor gy = fx(key).to(v.dtype);
  y.backward(gy.dim() == 4 ? gy.contiguous(v.format) : gy);
  yr.backward(gy.to(kFloat64));
}

void check_layout(const Tensor& t, const Variant& v, const std::string& what) {
  INFO(what << " strides " << shape_str(t.strides()));
  if (t.dim() == 4) CHECK(t.is_contiguous(v.format));
}

}  // namespace

TEST_CASE("conv2d in every dtype and memory format matches the float64 path", "[nn][conv][layouts]") {
  for (int i = 0; has("conv" + std::to_string(i) + ".x"); ++i) {
    std::string c = "conv" + std::to_string(i);
    auto k = cfg(c);
    // the float64 path against PyTorch's float32 fixture
    Tensor x64 = reference_leaf(fx(c + ".x"), kFloat64), w64 = reference_leaf(fx(c + ".w"), kFloat64);
    Tensor b64 = k[14] ? reference_leaf(fx(c + ".b"), kFloat64) : Tensor();
    check_rel(F::conv2d(x64, w64, b64, {k[7], k[8]}, {k[9], k[10]}, {k[11], k[12]}, k[13]), fx(c + ".y"), 1e-5,
              c + " float64 forward against PyTorch");
    for (const Variant& v : variants()) {
      INFO(c << " in " << name(v));
      Tensor x = leaf(fx(c + ".x"), v.dtype, v.format), w = leaf(fx(c + ".w"), v.dtype, MemoryFormat::Contiguous);
      Tensor b = k[14] ? leaf(fx(c + ".b"), v.dtype, v.format) : Tensor();
      Tensor xr = reference_leaf(fx(c + ".x"), v.dtype), wr = reference_leaf(fx(c + ".w"), v.dtype);
      Tensor br = k[14] ? reference_leaf(fx(c + ".b"), v.dtype) : Tensor();
      Tensor y = F::conv2d(x, w, b, {k[7], k[8]}, {k[9], k[10]}, {k[11], k[12]}, k[13]);
      Tensor yr = F::conv2d(xr, wr, br, {k[7], k[8]}, {k[9], k[10]}, {k[11], k[12]}, k[13]);
      CHECK(y.dtype() == v.dtype);
      check_layout(y, v, "output");
      check_rel(y, yr, v.tol, "forward");
      backward_both(y, yr, c + ".gy", v);
      check_layout(x.grad(), v, "input gradient");
      check_rel(x.grad(), xr.grad(), v.tol, "input gradient");
      check_rel(w.grad(), wr.grad(), v.tol, "weight gradient");
      if (k[14]) check_rel(b.grad(), br.grad(), v.tol, "bias gradient");
    }
  }
}

TEST_CASE("float16 channels_last convolutions with 16k channels (widened straight into oneDNN's blocked layout) "
          "give the NCHW bits and match the float64 path",
          "[nn][conv][layouts]") {
  // channels a multiple of 16 take the one-pass widening (and narrowing) between channels_last float16 and
  // oneDNN's nChw16c float32; NCHW float16 widens and reorders in two passes: the same values either way
  manual_seed(21);
  for (int64_t stride : {1, 2}) {
    INFO("stride " << stride);
    Tensor x0 = randn({2, 32, 9, 9}).to(kFloat16), w0 = mul(randn({48, 32, 3, 3}), 0.1).to(kFloat16);
    Tensor gy0 = randn({2, 48, (9 + 2 - 3) / stride + 1, (9 + 2 - 3) / stride + 1}).to(kFloat16);
    auto run = [&](MemoryFormat f, DType dt) {
      Tensor x = x0.to(dt).contiguous(f).detach().requires_grad_(true);
      Tensor w = w0.to(dt).detach().requires_grad_(true);
      Tensor y = F::conv2d(x, w, Tensor(), stride, 1);
      y.backward(dt == kFloat64 ? gy0.to(dt) : gy0.to(dt).contiguous(f));
      return std::vector<Tensor>{y.detach(), x.grad(), w.grad()};
    };
    auto cl = run(MemoryFormat::ChannelsLast, kFloat16), nchw = run(MemoryFormat::Contiguous, kFloat16);
    auto wide = run(MemoryFormat::Contiguous, kFloat64);
    const char* what[] = {"forward", "input gradient", "weight gradient"};
    for (int k = 0; k < 3; ++k) {
      check_equal(cl[size_t(k)].contiguous(), nchw[size_t(k)], std::string(what[k]) + ": channels_last = NCHW");
      check_rel(cl[size_t(k)], wide[size_t(k)], 2e-3, std::string(what[k]) + " against float64");
    }
    CHECK(cl[0].is_contiguous(MemoryFormat::ChannelsLast));
    CHECK(cl[1].is_contiguous(MemoryFormat::ChannelsLast));
    // the inference fusion takes the same path for its input and output
    NoGradGuard ng;
    Tensor rm = rand({48}), rv = add(rand({48}), 0.5), bw = randn({48}), bb = randn({48});
    Tensor r = randn(gy0.sizes()).to(kFloat16);
    auto fused = [&](MemoryFormat f) {
      return F::conv2d_batch_norm_inference(x0.contiguous(f), w0, stride, 1, 1, 1, rm, rv, bw, bb, 1e-5,
                                            r.contiguous(f), true);
    };
    check_equal(fused(MemoryFormat::ChannelsLast).contiguous(), fused(MemoryFormat::Contiguous),
                "conv2d_batch_norm_inference: channels_last = NCHW");
  }
}

TEST_CASE("conv2d_batch_norm_inference in every dtype and memory format matches conv2d, batch_norm, add and relu "
          "in float64",
          "[nn][conv][bn][layouts]") {
  // The fused op applies batch norm, the residual and ReLU to the convolution's float accumulator and rounds
  // once: against the float64 ops on the same rounded inputs it keeps the conv2d test's tolerances.
  for (int i = 0; has("conv" + std::to_string(i) + ".x"); ++i) {
    std::string c = "conv" + std::to_string(i);
    auto k = cfg(c);
    nn::Size2 stride{k[7], k[8]}, padding{k[9], k[10]}, dilation{k[11], k[12]};
    const int64_t groups = k[13];
    Tensor w0 = fx(c + ".w");
    const int64_t c_out = w0.size(0);
    manual_seed(40 + i);
    Tensor rm0 = randn({c_out}), rv0 = add(rand({c_out}), 0.5), bw0 = randn({c_out}), bb0 = randn({c_out});
    for (const Variant& v : variants()) {
      // 16-bit inputs take float32 batch-norm parameters on odd configurations, their own dtype on even ones
      DType param = v.dtype == kFloat32 || i % 2 ? kFloat32 : v.dtype;
      for (bool with_residual : {false, true})
        for (bool relu : {false, true}) {
          INFO(c << " in " << name(v) << ", parameters " << dtype_name(param) << (with_residual ? ", residual" : "")
                 << (relu ? ", relu" : ""));
          NoGradGuard ng;
          Tensor x = fx(c + ".x").to(v.dtype).contiguous(v.format), w = w0.to(v.dtype);
          Tensor rm = rm0.to(param), rv = rv0.to(param), bw = bw0.to(param), bb = bb0.to(param);
          Tensor yr = F::conv2d(x.to(kFloat64), w.to(kFloat64), Tensor(), stride, padding, dilation, groups);
          Tensor residual;
          if (with_residual) residual = randn(yr.sizes()).to(v.dtype).contiguous(v.format);
          Tensor want = F::batch_norm(yr, rm.to(kFloat64), rv.to(kFloat64), bw.to(kFloat64), bb.to(kFloat64),
                                      /*training=*/false, 0.1, 1e-5);
          if (with_residual) want = add(want, residual.to(kFloat64));
          if (relu) want = ht::relu(want);
          Tensor y = F::conv2d_batch_norm_inference(x, w, stride, padding, dilation, groups, rm, rv, bw, bb, 1e-5,
                                                    residual, relu);
          CHECK(y.dtype() == v.dtype);
          check_layout(y, v, "output");
          check_rel(y, want, v.tol, "forward");
          // the float64 path: the same ops one after another
          Tensor wide = F::conv2d_batch_norm_inference(x.to(kFloat64), w.to(kFloat64), stride, padding, dilation,
                                                       groups, rm.to(kFloat64), rv.to(kFloat64), bw.to(kFloat64),
                                                       bb.to(kFloat64), 1e-5,
                                                       with_residual ? residual.to(kFloat64) : Tensor(), relu);
          check_rel(wide, want, 1e-12, "float64");
        }
    }
  }
}

TEST_CASE("conv2d_batch_norm_inference refuses inputs that require grad and names a residual that does not fit",
          "[nn][conv][bn]") {
  Tensor x = randn({2, 4, 6, 6}), w = randn({8, 4, 3, 3}), rm = rand({8}), rv = add(rand({8}), 0.5);
  Tensor bw = randn({8}), bb = randn({8});
  CHECK_THROWS_WITH(F::conv2d_batch_norm_inference(x, w, 1, 1, 1, 1, rm, rv, bw, bb, 1e-5, randn({2, 8, 6, 5})),
                    Catch::Contains("[conv2d_batch_norm_inference] expected a residual like the output ([2, 8, 6, 6]"));
  CHECK_THROWS_WITH(F::conv2d_batch_norm_inference(x, w, 1, 1, 1, 1, rm, rv, randn({4}), bb, 1e-5),
                    Catch::Contains("[batch_norm] expected weight of shape [8]"));
  Tensor wg = w.clone().requires_grad_();
  CHECK_THROWS_WITH(F::conv2d_batch_norm_inference(x, wg, 1, 1, 1, 1, rm, rv, bw, bb, 1e-5),
                    Catch::Contains("[conv2d_batch_norm_inference] records no autograd history"));
  NoGradGuard ng;
  CHECK_FALSE(F::conv2d_batch_norm_inference(x, wg, 1, 1, 1, 1, rm, rv, bw, bb, 1e-5).requires_grad());
}

TEST_CASE("batch_norm in every dtype and memory format matches the float64 path; 16-bit inputs take float32 "
          "weights and statistics",
          "[nn][bn][layouts]") {
  for (int i = 0; has("bn" + std::to_string(i) + ".x"); ++i) {
    std::string c = "bn" + std::to_string(i);
    bool training = cfg(c)[0] != 0;
    for (const Variant& v : variants()) {
      INFO(c << (training ? " (training)" : " (eval)") << " in " << name(v));
      // PyTorch's mixed-precision rule: weight, bias and running statistics stay float32 under a 16-bit input
      DType param = kFloat32;
      Tensor x = leaf(fx(c + ".x"), v.dtype, v.format);
      Tensor w = leaf(fx(c + ".w"), param, v.format), b = leaf(fx(c + ".b"), param, v.format);
      Tensor rm = fx(c + ".rm").to(param).clone(), rv = fx(c + ".rv").to(param).clone();
      Tensor xr = reference_leaf(fx(c + ".x"), v.dtype);
      Tensor wr = reference_leaf(fx(c + ".w"), param), br = reference_leaf(fx(c + ".b"), param);
      Tensor rmr = fx(c + ".rm").to(kFloat64).clone(), rvr = fx(c + ".rv").to(kFloat64).clone();
      Tensor y = F::batch_norm(x, rm, rv, w, b, training, 0.1, 1e-5);
      Tensor yr = F::batch_norm(xr, rmr, rvr, wr, br, training, 0.1, 1e-5);
      CHECK(y.dtype() == v.dtype);
      CHECK(rm.dtype() == param);
      check_layout(y, v, "output");
      check_rel(y, yr, v.tol, "forward");
      check_rel(rm, rmr, 1e-5, "running_mean");
      check_rel(rv, rvr, 1e-5, "running_var");
      backward_both(y, yr, c + ".gy", v);
      check_layout(x.grad(), v, "input gradient");
      CHECK(w.grad().dtype() == param);
      check_rel(x.grad(), xr.grad(), v.tol, "input gradient");
      check_rel(w.grad(), wr.grad(), v.dtype == kFloat32 ? v.tol : 1e-4, "weight gradient");
      check_rel(b.grad(), br.grad(), v.dtype == kFloat32 ? v.tol : 1e-4, "bias gradient");
    }
  }
}

// Batch norm written with plain float64 tensor ops (mean, biased variance, broadcasting), through autograd: a
// reference that shares no code with the batch-norm kernels.
Tensor composed_batch_norm(const Tensor& x, const Tensor& w, const Tensor& b, bool training, const Tensor& rm,
                           const Tensor& rv) {
  const int64_t c = x.size(1);
  Tensor mean = training ? ht::mean(x, {0, 2, 3}, true) : rm.reshape({1, c, 1, 1});
  Tensor var = training ? ht::var(x, {0, 2, 3}, /*unbiased=*/false, true) : rv.reshape({1, c, 1, 1});
  return (x - mean) * rsqrt(var + 1e-5) * w.reshape({1, c, 1, 1}) + b.reshape({1, c, 1, 1});
}

TEST_CASE("batch_norm on maps whose rows cross the kernel's 1024-element chunks matches batch norm composed of "
          "float64 ops",
          "[nn][bn][layouts]") {
  // [n, c, h, w]: channels_last rows of 1030 channels (two chunks); NCHW rows of 33 x 33 = 1089 values (two
  // chunks, the second not a multiple of 8); both large enough to run in parallel; and a map too small to.
  for (Shape shape : {Shape{4, 1030, 3, 3}, Shape{8, 4, 33, 33}, Shape{3, 5, 2, 3}}) {
    manual_seed(11);
    Tensor x0 = randn(shape) * 3.0 + 1.5, gy0 = randn(shape);
    Tensor w0 = randn({shape[1]}), b0 = randn({shape[1]}), rm0 = randn({shape[1]}), rv0 = rand({shape[1]}) + 0.5;
    for (const Variant& v : variants())
      for (bool training : {true, false}) {
        INFO(shape_str(shape) << (training ? " (training)" : " (eval)") << " in " << name(v));
        Tensor x = leaf(x0, v.dtype, v.format), w = leaf(w0, kFloat32, v.format), b = leaf(b0, kFloat32, v.format);
        Tensor rm = rm0.clone(), rv = rv0.clone();
        Tensor xr = reference_leaf(x0, v.dtype), wr = reference_leaf(w0, kFloat32), br = reference_leaf(b0, kFloat32);
        Tensor y = F::batch_norm(x, rm, rv, w, b, training, 0.1, 1e-5);
        Tensor yr = composed_batch_norm(xr, wr, br, training, rm0.to(kFloat64), rv0.to(kFloat64));
        check_layout(y, v, "output");
        check_rel(y, yr, v.tol, "forward");
        if (training) {
          const double m = double(shape[0] * shape[2] * shape[3]);
          Tensor batch_mean = ht::mean(xr.detach(), {0, 2, 3}), batch_var = ht::var(xr.detach(), {0, 2, 3});
          check_rel(rm, rm0.to(kFloat64) * 0.9 + batch_mean * 0.1, 1e-5, "running_mean");
          check_rel(rv, rv0.to(kFloat64) * 0.9 + batch_var * 0.1, 1e-5, "running_var (unbiased, m = " +
                                                                             std::to_string(int64_t(m)) + ")");
        }
        y.backward(gy0.to(v.dtype).contiguous(v.format));
        yr.backward(gy0.to(v.dtype).to(kFloat64));
        check_layout(x.grad(), v, "input gradient");
        check_rel(x.grad(), xr.grad(), v.tol, "input gradient");
        check_rel(w.grad(), wr.grad(), v.dtype == kFloat32 ? v.tol : 1e-4, "weight gradient");
        check_rel(b.grad(), br.grad(), v.dtype == kFloat32 ? v.tol : 1e-4, "bias gradient");
      }
  }
}

TEST_CASE("pooling in every dtype and memory format matches the float64 path, indices included",
          "[nn][pool][layouts]") {
  for (const Variant& v : variants()) {
    for (int i = 0; has("maxpool" + std::to_string(i) + ".x"); ++i) {
      std::string c = "maxpool" + std::to_string(i);
      auto k = cfg(c);
      INFO(c << " in " << name(v));
      Tensor x = leaf(fx(c + ".x"), v.dtype, v.format), xr = reference_leaf(fx(c + ".x"), v.dtype);
      auto [y, idx] = F::max_pool2d_with_indices(x, k[4], k[5], k[6], k[7], k[8] != 0);
      auto [yr, idxr] = F::max_pool2d_with_indices(xr, k[4], k[5], k[6], k[7], k[8] != 0);
      check_layout(y, v, "output");
      check_equal(y.to(kFloat64), yr, "forward (a maximum is one of the inputs)");
      check_equal(idx.contiguous(), idxr, "indices");
      {  // with no backward to come, max_pool2d computes the values alone: the same bits
        NoGradGuard ng;
        Tensor values = F::max_pool2d(x, k[4], k[5], k[6], k[7], k[8] != 0);
        check_layout(values, v, "values-only output");
        check_equal(values, y.detach(), "values without indices");
      }
      backward_both(y, yr, c + ".gy", v);
      check_layout(x.grad(), v, "input gradient");
      check_rel(x.grad(), xr.grad(), v.tol, "input gradient");
    }
    for (int i = 0; has("avgpool" + std::to_string(i) + ".x"); ++i) {
      std::string c = "avgpool" + std::to_string(i);
      auto k = cfg(c);
      INFO(c << " in " << name(v));
      Tensor x = leaf(fx(c + ".x"), v.dtype, v.format), xr = reference_leaf(fx(c + ".x"), v.dtype);
      Tensor y = F::adaptive_avg_pool2d(x, {k[4], k[5]}), yr = F::adaptive_avg_pool2d(xr, {k[4], k[5]});
      check_layout(y, v, "output");
      check_rel(y, yr, v.tol, "forward");
      backward_both(y, yr, c + ".gy", v);
      check_layout(x.grad(), v, "input gradient");
      check_rel(x.grad(), xr.grad(), v.tol, "input gradient");
    }
  }
}

TEST_CASE("a channels_last resnet18 gives the NCHW model's logits and gradients, and stays channels_last",
          "[nn][resnet][layouts]") {
  manual_seed(3);
  auto nchw = nn::resnet18({.num_classes = 10, .in_channels = 1});
  auto cl = nn::resnet18({.num_classes = 10, .in_channels = 1});
  cl->load_state_dict(nchw->state_dict());
  cl->to(MemoryFormat::ChannelsLast);
  for (const auto& [key, p] : cl->named_parameters())
    if (p.dim() == 4) {
      INFO(key);
      CHECK(p.is_contiguous(MemoryFormat::ChannelsLast));
    }
  Tensor x = randn({8, 1, 28, 28});
  Tensor y = nchw->forward(x), ycl = cl->forward(x.contiguous(MemoryFormat::ChannelsLast));
  check_rel(ycl, y, 1e-5, "logits");
  sum(y).backward();
  sum(ycl).backward();
  auto p1 = nchw->named_parameters(), p2 = cl->named_parameters();
  for (size_t i = 0; i < p1.size(); ++i) {
    INFO(p1[i].first);
    check_rel(p2[i].second.grad(), p1[i].second.grad(), 1e-4, "gradient");
    if (p2[i].second.dim() == 4) CHECK(p2[i].second.grad().is_contiguous(MemoryFormat::ChannelsLast));
  }
}

TEST_CASE("the CPU convolution gives the same bits run after run", "[nn][conv][determinism]") {
  manual_seed(5);
  Tensor x = randn({16, 32, 9, 9}), w = randn({48, 32, 3, 3}), gy = randn({16, 48, 9, 9});
  auto run = [&] {
    Tensor xl = x.clone().requires_grad_(true), wl = w.clone().requires_grad_(true);
    Tensor y = F::conv2d(xl, wl, Tensor(), 1, 1);
    y.backward(gy);
    return std::vector<Tensor>{y.detach(), xl.grad(), wl.grad()};
  };
  auto a = run(), b = run();
  for (size_t i = 0; i < a.size(); ++i) check_equal(a[i], b[i], "run twice");
}
