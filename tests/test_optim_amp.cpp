// Mixed precision: GradScaler against PyTorch's GradScaler sequence (scales, skipped steps, growth tracker),
// skipped steps leaving parameters, masters, moments and step counts untouched, PyTorch's misuse errors,
// scaler state_dicts both ways, fp32 master weights versus pure fp16 updates, and the autocast switch.
#include <cstring>

#include "optim/adam.h"
#include "optim/sgd.h"
#include "core/autocast.h"
#include "optim/grad_scaler.h"
#include "kernels/optim_kernels.h"
#include "tests/test_optim_util.h"

using namespace ht;
using optim_test::check_throws;
using optim_test::max_rel_error;

namespace {

struct Scenario {
  std::string name;
  amp::GradScalerOptions options;
  int steps;
  std::vector<int> inf_steps, nan_steps, unscale_first;
  double grad_scale = 1;  // the size of the gradients before scaling
};

std::vector<Scenario> scenarios() {
  return {
      {"growth every 3 steps, back-off on inf and NaN", {.init_scale = 1024, .growth_interval = 3}, 26,
       {2, 3, 9, 17}, {16}, {5, 9, 12}},
      {"PyTorch defaults", {}, 8, {0, 1, 5}, {}, {3}},
      {"growth would overflow float32: the scale stays", {.init_scale = 1.7e38, .growth_interval = 1}, 4, {}, {}, {},
       1e-3},
      {"custom factors", {.init_scale = 256, .growth_factor = 3, .backoff_factor = 0.25, .growth_interval = 2}, 12,
       {4, 5}, {8}, {}},
  };
}

bool in(const std::vector<int>& xs, int x) { return std::find(xs.begin(), xs.end(), x) != xs.end(); }

struct Data {
  std::vector<Tensor> init;
  std::vector<std::vector<Tensor>> grads;
};

Data scenario_data(const Scenario& s) {
  Data d;
  Generator gen(99);
  d.init = {randn({4, 6}, gen), randn({9}, gen)};
  for (int t = 0; t < s.steps; ++t) {
    std::vector<Tensor> gs;
    for (const Tensor& p : d.init) gs.push_back(mul(randn(p.sizes(), gen), s.grad_scale));
    if (in(s.inf_steps, t)) gs[1].view({9}).narrow(0, 3, 1).fill_(INFINITY);
    if (in(s.nan_steps, t)) gs[0].view({24}).narrow(0, 7, 1).fill_(NAN);
    d.grads.push_back(gs);
  }
  return d;
}

Value spec_value(const Scenario& s, const Data& d) {
  Value spec = Value::dict();
  Dict& sd = spec.to_dict();
  Value opts = Value::dict();
  opts.to_dict().set("init_scale", s.options.init_scale);
  opts.to_dict().set("growth_factor", s.options.growth_factor);
  opts.to_dict().set("backoff_factor", s.options.backoff_factor);
  opts.to_dict().set("growth_interval", s.options.growth_interval);
  sd.set("options", opts);
  ValueList init, grads, unscale;
  for (const Tensor& p : d.init) init.emplace_back(p);
  for (int t = 0; t < s.steps; ++t) {
    ValueList gs;
    for (const Tensor& g : d.grads[size_t(t)]) gs.emplace_back(g);
    grads.push_back(Value::list(gs));
    unscale.emplace_back(in(s.unscale_first, t));
  }
  sd.set("params", Value::list(init));
  sd.set("grads", Value::list(grads));
  sd.set("unscale_first", Value::list(unscale));
  return spec;
}

// A scaler after two clean steps, one overflow and a custom interval: the state halftorch hands to PyTorch.
Value halftorch_scaler_state() {
  Tensor p = zeros({3}).set_requires_grad(true);
  optim::SGD sgd({p}, {.lr = 0.1});
  amp::GradScaler scaler({.init_scale = 4096, .growth_interval = 7});
  for (float g : {1.f, 1.f, INFINITY, 1.f}) {
    p.set_grad(scaler.scale(full({3}, g)));
    scaler.step(sgd);
    scaler.update();
  }
  return scaler.state_dict();
}

const Value& torch_sequences() {
  static Value out = [] {
    auto dir = ht::testing::temp_dir("optim-amp");
    ValueList specs;
    for (const Scenario& s : scenarios()) specs.push_back(spec_value(s, scenario_data(s)));
    Value load = Value::dict();
    load.to_dict().set("load_state", halftorch_scaler_state());
    specs.push_back(load);
    ht::save(Value::list(specs), (dir / "scaler_in.pth").string());
    optim_test::run_script("optim_scaler.py",
                           (dir / "scaler_in.pth").string() + " " + (dir / "scaler_out.pth").string(), dir);
    return ht::load((dir / "scaler_out.pth").string());
  }();
  return out;
}


}  // namespace

TEST_CASE("GradScaler reproduces PyTorch's scales, skipped steps and growth tracker") {
  const auto all = scenarios();
  for (size_t k = 0; k < all.size(); ++k) {
    const Scenario& s = all[k];
    INFO(s.name);
    const Data d = scenario_data(s);
    const Value& want = torch_sequences()[int64_t(k)];
    std::vector<Tensor> params;
    for (const Tensor& p : d.init) params.push_back(p.clone().set_requires_grad(true));
    optim::Adam opt(params, {.lr = 1e-2});
    amp::GradScaler scaler(s.options);
    for (int t = 0; t < s.steps; ++t) {
      INFO("step " << t);
      for (size_t i = 0; i < params.size(); ++i) params[i].set_grad(scaler.scale(d.grads[size_t(t)][i]));
      if (in(s.unscale_first, t)) scaler.unscale_(opt);
      bool stepped = scaler.step(opt);
      scaler.update();
      CHECK(stepped == want["stepped"][t].to_bool());
      CHECK(stepped == !(in(s.inf_steps, t) || in(s.nan_steps, t)));
      CHECK(scaler.get_scale() == want["scales"][t].to_double());
      CHECK(scaler.growth_tracker() == want["trackers"][t].to_int());
      CHECK(opt.step_count(0) == want["steps"][t].to_double());
      for (size_t i = 0; i < params.size(); ++i)
        CHECK(max_rel_error(params[i], want["params"][t][int64_t(i)].to_tensor()) < 1e-6);
    }
    // state_dicts: same keys and values as PyTorch's, and PyTorch's loads into a fresh scaler
    Value mine = scaler.state_dict();
    const Value& theirs = want["state_dict"];
    std::vector<std::string> keys;
    for (const auto& [key, v] : mine.to_dict().items()) keys.push_back(key_str(key));
    CHECK(keys == std::vector<std::string>{"scale", "growth_factor", "backoff_factor", "growth_interval",
                                           "_growth_tracker"});
    for (const std::string& key : keys) {
      INFO(key);
      CHECK(mine[key].kind() == theirs[key].kind());
      CHECK(mine[key].to_double() == theirs[key].to_double());
    }
    amp::GradScaler restored;
    restored.load_state_dict(theirs);
    CHECK(restored.get_scale() == scaler.get_scale());
    CHECK(restored.growth_tracker() == scaler.growth_tracker());
    CHECK(restored.get_growth_interval() == s.options.growth_interval);
  }
}

TEST_CASE("PyTorch's GradScaler loads halftorch's scaler state_dict") {
  const Value& got = torch_sequences()[int64_t(scenarios().size())];
  CHECK(got["scale"].to_double() == 2048.0);
  CHECK(got["tracker"].to_int() == 1);
  const Value mine = halftorch_scaler_state();
  for (const auto& [key, v] : got["state_dict"].to_dict().items()) {
    INFO(key_str(key));
    CHECK(v.to_double() == mine[std::get<std::string>(key)].to_double());
  }
}

TEST_CASE("a skipped step leaves fp16 parameters, masters, moments and the step count untouched") {
  Generator gen(5);
  Tensor p = randn({300}, gen).to(kFloat16).set_requires_grad(true);
  optim::Adam opt({p}, {.lr = 1e-3});
  amp::GradScaler scaler;
  auto set_grad = [&](bool poison) {
    Tensor g = mul(randn({300}, gen), 1e-3);
    if (poison) g.narrow(0, 123, 1).fill_(INFINITY);
    p.set_grad(scaler.scale(g).to(kFloat16));
  };
  for (int t = 0; t < 3; ++t) {
    set_grad(false);
    REQUIRE(scaler.step(opt));
    scaler.update();
  }
  Value before = opt.state_dict();
  Tensor p0 = p.detach().clone();
  Tensor master0 = opt.master_params()[0].clone();
  Tensor m0 = before["state"][int64_t(0)]["exp_avg"].to_tensor().clone();
  Tensor v0 = before["state"][int64_t(0)]["exp_avg_sq"].to_tensor().clone();
  double scale0 = scaler.get_scale();
  set_grad(true);
  CHECK_FALSE(scaler.step(opt));
  scaler.update();
  Value after = opt.state_dict();
  ht::testing::check_equal(p, p0, "fp16 parameter");
  ht::testing::check_equal(opt.master_params()[0], master0, "fp32 master");
  ht::testing::check_equal(after["state"][int64_t(0)]["exp_avg"].to_tensor(), m0, "exp_avg");
  ht::testing::check_equal(after["state"][int64_t(0)]["exp_avg_sq"].to_tensor(), v0, "exp_avg_sq");
  CHECK(opt.step_count(0) == 3);
  CHECK(after["state"][int64_t(0)]["step"].to_tensor().item_double() == 3);
  CHECK(scaler.get_scale() == scale0 / 2);
  CHECK(scaler.growth_tracker() == 0);
  // the master copy is in the saved state, in fp32, and the moments are fp32 too
  CHECK(after["state"][int64_t(0)]["master_param"].to_tensor().dtype() == kFloat32);
  CHECK(after["state"][int64_t(0)]["exp_avg"].to_tensor().dtype() == kFloat32);
}

TEST_CASE("the gradient check finds inf and NaN in every 16-bit pattern, with and without unscaling") {
  // all 65536 bit patterns of each 16-bit dtype, one at a time among finite values: the flag is set exactly
  // for those that widen to a non-finite float, whether the kernel only checks (inv_scale 1) or also unscales
  for (DType dt : {kFloat16, kBFloat16}) {
    INFO(dtype_name(dt));
    std::vector<uint16_t> bits(4096, dt == kFloat16 ? uint16_t(0x3C00) : uint16_t(0x3F80));  // 1.0
    int64_t mismatches = 0;
    for (uint32_t pattern = 0; pattern < 65536; ++pattern) {
      for (float inv_scale : {1.f, 0.5f}) {
        std::fill(bits.begin(), bits.end(), dt == kFloat16 ? uint16_t(0x3C00) : uint16_t(0x3F80));
        bits[pattern % bits.size()] = uint16_t(pattern);
        float widened = dt == kFloat16 ? float(Half::from_bits(uint16_t(pattern)))
                                       : float(BFloat16::from_bits(uint16_t(pattern)));
        kernels::GradTensor g{bits.data(), int64_t(bits.size()), dt};
        float flag = 0;
        kernels::unscale_and_check(kCPU, &g, 1, inv_scale, &flag);
        mismatches += (flag != 0) != !std::isfinite(widened);
      }
    }
    CHECK(mismatches == 0);
  }
}

TEST_CASE("GradScaler raises PyTorch's errors on misuse") {
  Tensor p = randn({3}).set_requires_grad(true);
  optim::Adam opt({p});
  check_throws([] { amp::GradScaler({.growth_factor = 1.0}); }, "The growth factor must be > 1.0.");
  check_throws([] { amp::GradScaler({.backoff_factor = 1.0}); }, "The backoff factor must be < 1.0.");
  amp::GradScaler scaler;
  check_throws([&] { scaler.unscale_(opt); }, "Attempted unscale_ but _scale is None.");
  check_throws([&] { scaler.step(opt); }, "Attempted step but _scale is None.");
  check_throws([&] { scaler.update(); }, "Attempted update but _scale is None.");
  p.set_grad(scaler.scale(ones({3})));
  check_throws([&] { scaler.update(); }, "No inf checks were recorded prior to update.");
  Tensor no_grad = zeros({2}).set_requires_grad(true);
  optim::SGD idle({no_grad});
  check_throws([&] { scaler.step(idle); }, "No inf checks were recorded for this optimizer.");
  check_throws([&] { scaler.update(); }, "No inf checks were recorded prior to update.");
  scaler.unscale_(opt);
  check_throws([&] { scaler.unscale_(opt); },
               "unscale_() has already been called on this optimizer since the last update().");
  CHECK(scaler.step(opt));
  check_throws([&] { scaler.unscale_(opt); }, "unscale_() is being called after step().");
  check_throws([&] { scaler.step(opt); }, "step() has already been called since the last update().");
  scaler.update();
  check_throws([&] { scaler.load_state_dict(Value::dict()); }, "The source state dict is empty");
  // disabled: scale() is the identity, step() just steps, state_dict() is empty, load_state_dict a no-op
  amp::GradScaler off({.enabled = false});
  Tensor loss = full({}, 2.0);
  CHECK(off.scale(loss).same(loss));
  CHECK(off.get_scale() == 1.0);
  CHECK(off.state_dict().to_dict().empty());
  off.load_state_dict(Value::dict());
  Tensor before = p.detach().clone();
  p.set_grad(ones({3}));
  CHECK(off.step(opt));
  CHECK(max_rel_error(p, before) > 0);
}

TEST_CASE("GradScaler scales 16-bit losses in float32 and unscales fp16 gradients") {
  amp::GradScaler scaler;
  Tensor loss = full({}, 3.0, {.dtype = kFloat16});
  Tensor scaled = scaler.scale(loss);
  CHECK(scaled.dtype() == kFloat32);
  CHECK(scaled.item<float>() == 3.0f * 65536.0f);  // would be inf in float16
  CHECK(scaler.get_scale() == 65536.0);
  // unscale_ accepts fp16 gradients (PyTorch refuses them: its optimizers have no fp32 master weights)
  Tensor p = zeros({4}, {.dtype = kFloat16}).set_requires_grad(true);
  optim::SGD sgd({p}, {.lr = 1.0});
  p.set_grad(full({4}, 0.5 * 65536, {.dtype = kFloat16}));
  scaler.unscale_(sgd);
  ht::testing::check_equal(p.grad(), full({4}, 0.5, {.dtype = kFloat16}), "unscaled fp16 gradient");
  CHECK(scaler.step(sgd));
  ht::testing::check_equal(p, full({4}, -0.5, {.dtype = kFloat16}), "one SGD step");
  scaler.update(1024.0);
  CHECK(scaler.get_scale() == 1024.0);
}

TEST_CASE("fp16 training with fp32 master weights tracks fp32; pure fp16 updates stall") {
  // least squares y = x w, weights of size ~1 started 0.03 from the optimum, Adam lr 1e-4: each update is
  // below half a float16 ulp at 1 (4.9e-4), so rounding the update into an fp16 weight loses it.
  Generator gen(11);
  const int64_t n = 64, d = 16;
  Tensor x = randn({n, d}, gen);
  Tensor w_true = add(rand({d, 1}, gen), 0.5);
  Tensor y = matmul(x, w_true);
  Tensor w0 = add(w_true, mul(randn({d, 1}, gen), 0.03));
  const int steps = 500;
  auto train = [&](DType dt, bool master_weights, Tensor* final_master) {
    Tensor w = w0.to(kCPU, dt, true).set_requires_grad(true);
    optim::Adam opt({w}, {.lr = 1e-4, .master_weights = master_weights});
    Tensor xs = x.to(dt), ys = y.to(dt);
    std::vector<double> losses;  // of the model's own weights, evaluated in fp32
    for (int t = 0; t < steps; ++t) {
      opt.zero_grad();
      mean(square(sub(matmul(xs, w), ys))).backward();
      opt.step();
      NoGradGuard ng;
      losses.push_back(mean(square(sub(matmul(x, w.detach().to(kFloat32)), y))).item<double>());
    }
    if (final_master) *final_master = opt.master_params()[0];
    return losses;
  };
  Tensor master;
  auto fp32 = train(kFloat32, true, nullptr);
  auto mixed = train(kFloat16, true, &master);
  auto pure = train(kFloat16, false, nullptr);
  INFO("loss at steps 0, 250, 499: fp32 " << fp32[0] << " " << fp32[250] << " " << fp32[499] << "; fp16 + master "
                                          << mixed[0] << " " << mixed[250] << " " << mixed[499] << "; pure fp16 "
                                          << pure[0] << " " << pure[250] << " " << pure[499]);
  CHECK(fp32.back() < 0.1 * fp32.front());  // the fp32 run learns
  for (int t = 0; t < steps; t += 50) {
    INFO("step " << t);
    CHECK(std::fabs(mixed[size_t(t)] - fp32[size_t(t)]) <= 0.05 * fp32[size_t(t)] + 1e-4 * fp32.front());
  }
  CHECK(mixed.back() < 0.1 * mixed.front());
  CHECK(pure.back() > 0.99 * pure.front());  // stalled: every update rounded away
  CHECK(master.dtype() == kFloat32);
}

TEST_CASE("the fp16 recipe end to end: half model, GradScaler, Adam with masters, tracks fp32") {
  // PyTorch's model.half() + GradScaler recipe, which PyTorch itself refuses ("Attempting to unscale FP16
  // gradients"). The first backward overflows: d(scaled loss)/d(loss) = 65536 is inf in float16, so the first
  // step is skipped and the scale backs off, as it would in PyTorch.
  Generator gen(21);
  Tensor x = randn({64, 16}, gen), w_true = add(rand({16, 1}, gen), 0.5);
  Tensor y = matmul(x, w_true), w0 = add(w_true, mul(randn({16, 1}, gen), 0.03));
  auto eval = [&](const Tensor& w) {
    NoGradGuard ng;
    return mean(square(sub(matmul(x, w.detach().to(kFloat32)), y))).item<double>();
  };
  Tensor w32 = w0.to(kCPU, kFloat32, true).set_requires_grad(true);
  optim::Adam opt32({w32}, {.lr = 1e-4});
  Tensor w16 = w0.to(kCPU, kFloat16, true).set_requires_grad(true);
  optim::Adam opt16({w16}, {.lr = 1e-4});
  amp::GradScaler scaler;
  Tensor x16 = x.to(kFloat16), y16 = y.to(kFloat16);
  int skipped = 0;
  for (int t = 0; t < 300; ++t) {
    opt32.zero_grad();
    mean(square(sub(matmul(x, w32), y))).backward();
    opt32.step();
    opt16.zero_grad();
    scaler.scale(mean(square(sub(matmul(x16, w16), y16)))).backward();
    REQUIRE(w16.grad().dtype() == kFloat16);
    skipped += scaler.step(opt16) ? 0 : 1;
    scaler.update();
  }
  INFO("fp32 loss " << eval(w32) << ", fp16 recipe loss " << eval(w16) << ", start " << eval(w0) << ", skipped "
                    << skipped << ", final scale " << scaler.get_scale());
  CHECK(skipped == 1);
  CHECK(scaler.get_scale() == 32768.0);
  CHECK(opt16.step_count(0) == 299);
  CHECK(eval(w32) < 0.3 * eval(w0));
  CHECK(std::fabs(eval(w16) - eval(w32)) <= 0.05 * eval(w32) + 1e-4 * eval(w0));
}

TEST_CASE("16-bit parameters always hold their fp32 master, rounded") {
  for (DType dt : {kFloat16, kBFloat16}) {
    INFO(dtype_name(dt));
    Generator gen(3);
    Tensor a = randn({50}, gen).to(dt).set_requires_grad(true), b = randn({7, 3}, gen).to(dt).set_requires_grad(true);
    optim::AdamW adamw({a}, {.lr = 1e-2, .amsgrad = true});
    optim::SGD sgd({b}, {.lr = 1e-2, .momentum = 0.9, .nesterov = true});
    for (int t = 0; t < 5; ++t) {
      a.set_grad(randn({50}, gen).to(dt));
      b.set_grad(randn({7, 3}, gen).to(dt));
      adamw.step();
      sgd.step();
    }
    Tensor ma = adamw.master_params()[0], mb = sgd.master_params()[0];
    CHECK(ma.dtype() == kFloat32);
    CHECK(mb.dtype() == kFloat32);
    ht::testing::check_equal(a, ma.to(dt), "AdamW parameter == rounded master");
    ht::testing::check_equal(b, mb.to(dt), "SGD parameter == rounded master");
    CHECK(max_rel_error(ma, a.to(kFloat32)) > 0);  // the master keeps what the 16-bit copy cannot
    // load_master_params sets both; reset_master_params follows a parameter written from outside
    adamw.load_master_params({full({50}, 0.1)});
    ht::testing::check_equal(adamw.master_params()[0], full({50}, 0.1), "loaded master");
    ht::testing::check_equal(a, full({50}, 0.1).to(dt), "parameter after load_master_params");
    {
      NoGradGuard ng;
      a.fill_(2.0);
    }
    adamw.reset_master_params();
    ht::testing::check_equal(adamw.master_params()[0], full({50}, 2.0), "master after reset");
  }
}

TEST_CASE("the fused kernels round masters to float16 and bfloat16 exactly as Half and BFloat16 do") {
  // float bit patterns over every exponent (no NaNs), including float16 subnormals, ties and overflow to inf
  std::vector<float> values;
  for (uint32_t k = 0; k < (1u << 20); ++k) {
    uint32_t bits = (k & 1u) << 31 | ((k >> 1) * 4099u) % 0x7f800001u;
    float f;
    std::memcpy(&f, &bits, 4);
    values.push_back(f);
  }
  Tensor fp32 = from_vector(values, {int64_t(values.size())});
  for (DType dt : {kFloat16, kBFloat16}) {
    INFO(dtype_name(dt));
    Tensor p = zeros({int64_t(values.size())}, {.dtype = dt}).set_requires_grad(true);
    optim::SGD sgd({p}, {.lr = 0.0});
    sgd.load_master_params({fp32});
    p.set_grad(zeros({int64_t(values.size())}, {.dtype = dt}));
    sgd.step();  // p = master - 0 * 0, written back through the kernel's conversion
    CHECK(sgd.master_params()[0].to_vector<float>() == values);
    // compared as floats (exact, inf == inf): every value rounds as Tensor::to rounds it
    std::vector<float> got = p.to_vector<float>(), want = fp32.to(dt).to_vector<float>();
    size_t mismatches = 0;
    for (size_t i = 0; i < got.size(); ++i) mismatches += got[i] != want[i];
    CHECK(mismatches == 0);
  }
}

TEST_CASE("autocast: the switch, its nesting, and the cast policy ops consult") {
  Tensor x = randn({3, 3}).set_requires_grad(true);
  CHECK_FALSE(amp::is_autocast_enabled());
  CHECK(amp::autocast_input(x, amp::CastPolicy::LowerPrecision).same(x));
  {
    amp::AutocastGuard guard(DeviceType::CPU, kFloat16);
    CHECK(amp::is_autocast_enabled());
    CHECK(amp::autocast_dtype() == kFloat16);
    Tensor low = amp::autocast_input(x, amp::CastPolicy::LowerPrecision);
    CHECK(low.dtype() == kFloat16);
    CHECK(amp::autocast_input(low, amp::CastPolicy::Float32).dtype() == kFloat32);
    CHECK(amp::autocast_input(x, amp::CastPolicy::Float32).same(x));
    CHECK(amp::autocast_input(zeros({2}, {.dtype = kInt64}), amp::CastPolicy::LowerPrecision).dtype() == kInt64);
    CHECK(amp::autocast_input(zeros({2}, {.dtype = kFloat64}), amp::CastPolicy::LowerPrecision).dtype() == kFloat64);
    // gradients flow back through the cast in the input's dtype
    sum(low).backward();
    REQUIRE(x.grad().defined());
    CHECK(x.grad().dtype() == kFloat32);
    {
      amp::AutocastGuard inner(DeviceType::CPU, kBFloat16);
      CHECK(amp::autocast_input(x, amp::CastPolicy::LowerPrecision).dtype() == kBFloat16);
      amp::AutocastGuard off(DeviceType::CPU, kBFloat16, false);
      CHECK(amp::autocast_input(x, amp::CastPolicy::LowerPrecision).same(x));
    }
    CHECK(amp::autocast_dtype() == kFloat16);
  }
  CHECK_FALSE(amp::is_autocast_enabled());
  amp::AutocastGuard cuda_only(DeviceType::CUDA, kFloat16);
  CHECK(amp::autocast_input(x, amp::CastPolicy::LowerPrecision).same(x));  // a CPU tensor under CUDA autocast
  check_throws([] { amp::AutocastGuard bad(DeviceType::CPU, kFloat32); }, "[autocast] expected float16 or bfloat16");
}
