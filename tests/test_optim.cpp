// Optimizers against real torch.optim (Debian's torch 1.13 and the torch 2.x venv, run at test time): Adam, AdamW and SGD with each
// option, 100 steps on identical fp32 CPU parameters and gradients; state_dicts crossing both ways through
// ht::save / torch.load and torch.save / ht::load; option validation; the fused kernels' skip flag; CUDA parity.
#include <map>

#include "kernels/optim_kernels.h"
#include "optim/adam.h"
#include "optim/sgd.h"
#include "tests/test_optim_util.h"

using namespace ht;
using optim_test::check_throws;
using optim_test::max_rel_error;

namespace {

constexpr int kSteps = 100;
constexpr int kSnapshot = 40;  // where state_dicts are handed over
constexpr double kTol = 1e-6;

struct Opts {
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  bool amsgrad = false, maximize = false;
  double momentum = 0, dampening = 0;
  bool nesterov = false;
};
struct GroupSpec {
  std::vector<int64_t> params;
  Opts opts;
};
struct Case {
  std::string name, kind;
  std::vector<GroupSpec> groups;
};

std::vector<Case> cases() {
  std::vector<int64_t> all{0, 1, 2};
  auto one = [&](std::string name, std::string kind, Opts o) { return Case{name, kind, {{all, o}}}; };
  return {
      one("Adam defaults", "Adam", {}),
      one("Adam weight_decay (L2)", "Adam", {.lr = 1e-2, .weight_decay = 0.1}),
      one("Adam amsgrad", "Adam", {.lr = 3e-3, .amsgrad = true}),
      one("Adam maximize", "Adam", {.maximize = true}),
      one("Adam all options", "Adam",
          {.lr = 5e-3, .beta1 = 0.8, .beta2 = 0.99, .eps = 1e-6, .weight_decay = 0.05, .amsgrad = true,
           .maximize = true}),
      one("AdamW defaults", "AdamW", {.weight_decay = 1e-2}),
      one("AdamW decay + amsgrad", "AdamW", {.lr = 1e-2, .weight_decay = 0.1, .amsgrad = true}),
      one("AdamW maximize", "AdamW", {.weight_decay = 1e-2, .maximize = true}),
      one("SGD plain", "SGD", {.lr = 0.01}),
      one("SGD momentum", "SGD", {.lr = 0.01, .momentum = 0.9}),
      one("SGD momentum + dampening", "SGD", {.lr = 0.01, .momentum = 0.9, .dampening = 0.3}),
      one("SGD nesterov", "SGD", {.lr = 0.01, .momentum = 0.9, .nesterov = true}),
      one("SGD weight_decay", "SGD", {.lr = 0.02, .weight_decay = 0.01, .momentum = 0.5}),
      one("SGD maximize", "SGD", {.lr = 0.01, .maximize = true, .momentum = 0.9}),
      Case{"Adam param groups", "Adam",
           {{{0, 1}, {.lr = 1e-2, .amsgrad = true}}, {{2}, {.lr = 1e-3, .weight_decay = 0.1}}}},
      Case{"SGD param groups", "SGD", {{{0}, {.lr = 0.05}}, {{1, 2}, {.lr = 0.01, .momentum = 0.9, .nesterov = true}}}},
  };
}

Value options_value(const std::string& kind, const Opts& o) {
  Value v = Value::dict();
  Dict& d = v.to_dict();
  d.set("lr", o.lr);
  d.set("weight_decay", o.weight_decay);
  d.set("maximize", o.maximize);
  if (kind == "SGD") {
    d.set("momentum", o.momentum);
    d.set("dampening", o.dampening);
    d.set("nesterov", o.nesterov);
  } else {
    d.set("betas", Value::list({o.beta1, o.beta2}));
    d.set("eps", o.eps);
    d.set("amsgrad", o.amsgrad);
  }
  return v;
}

std::unique_ptr<optim::Optimizer> make_optimizer(const Case& c, const std::vector<Tensor>& params) {
  auto pick = [&](const GroupSpec& g) {
    std::vector<Tensor> ps;
    for (int64_t i : g.params) ps.push_back(params[size_t(i)]);
    return ps;
  };
  if (c.kind == "SGD") {
    std::vector<optim::ParamGroup<optim::SGDOptions>> groups;
    for (const auto& g : c.groups)
      groups.push_back({pick(g), optim::SGDOptions{.lr = g.opts.lr, .momentum = g.opts.momentum,
                                                   .dampening = g.opts.dampening, .weight_decay = g.opts.weight_decay,
                                                   .nesterov = g.opts.nesterov, .maximize = g.opts.maximize}});
    return std::make_unique<optim::SGD>(groups);
  }
  auto adam_opts = [](const Opts& o) {
    return optim::AdamOptions{.lr = o.lr, .betas = {o.beta1, o.beta2}, .eps = o.eps, .weight_decay = o.weight_decay,
                              .amsgrad = o.amsgrad, .maximize = o.maximize};
  };
  if (c.kind == "AdamW") {
    std::vector<optim::ParamGroup<optim::AdamWOptions>> groups;
    for (const auto& g : c.groups) {
      auto a = adam_opts(g.opts);
      groups.push_back({pick(g), optim::AdamWOptions{a.lr, a.betas, a.eps, a.weight_decay, a.amsgrad, a.maximize}});
    }
    return std::make_unique<optim::AdamW>(groups);
  }
  std::vector<optim::ParamGroup<optim::AdamOptions>> groups;
  for (const auto& g : c.groups) groups.push_back({pick(g), adam_opts(g.opts)});
  return std::make_unique<optim::Adam>(groups);
}

// The problem every case runs: three parameters, fresh N(0,1) gradients each step; parameter 1 has no gradient
// every third step (torch.optim then skips it: no state change, no step count).
struct Problem {
  std::vector<Tensor> init;
  std::vector<std::vector<Tensor>> grads;  // [step][param], undefined = None
};

const Problem& problem() {
  static Problem p = [] {
    Problem pr;
    Generator gen(2024);
    for (Shape s : {Shape{5, 7}, Shape{13}, Shape{2, 3, 4}}) pr.init.push_back(randn(s, gen));
    for (int t = 0; t < kSteps; ++t) {
      std::vector<Tensor> gs;
      for (size_t i = 0; i < pr.init.size(); ++i)
        gs.push_back(i == 1 && t % 3 == 2 ? Tensor() : mul(randn(pr.init[i].sizes(), gen), 0.5 + 0.01 * t));
      pr.grads.push_back(gs);
    }
    return pr;
  }();
  return p;
}

Value tensor_list(const std::vector<Tensor>& ts) {
  ValueList items;
  for (const Tensor& t : ts) items.push_back(t.defined() ? Value(t) : Value());
  return Value::list(std::move(items));
}

Value case_spec(const Case& c, const std::vector<Tensor>& params, int first_step, int last_step) {
  Value spec = Value::dict();
  Dict& d = spec.to_dict();
  d.set("kind", c.kind);
  ValueList groups;
  for (const auto& g : c.groups) {
    Value gv = options_value(c.kind, g.opts);
    ValueList idx;
    for (int64_t i : g.params) idx.emplace_back(i);
    gv.to_dict().set("params", Value::list(idx));
    groups.push_back(gv);
  }
  d.set("groups", Value::list(groups));
  d.set("params", tensor_list(params));
  ValueList grads;
  for (int t = first_step; t < last_step; ++t) grads.push_back(tensor_list(problem().grads[size_t(t)]));
  d.set("grads", Value::list(grads));
  d.set("snapshot", int64_t(kSnapshot));
  return spec;
}

std::vector<Tensor> fresh_params(const std::vector<Tensor>& from) {
  std::vector<Tensor> ps;
  for (const Tensor& t : from) ps.push_back(t.detach().clone().set_requires_grad(true));
  return ps;
}

void run_steps(optim::Optimizer& opt, std::vector<Tensor>& params, int first, int last,
               std::vector<std::vector<Tensor>>* trajectory = nullptr) {
  for (int t = first; t < last; ++t) {
    for (size_t i = 0; i < params.size(); ++i) {
      const Tensor& g = problem().grads[size_t(t)][i];
      params[i].set_grad(g.defined() ? g.clone() : Tensor());
    }
    opt.step();
    if (trajectory) {
      std::vector<Tensor> snap;
      for (const Tensor& p : params) snap.push_back(p.detach().clone());
      trajectory->push_back(snap);
    }
  }
}

// torch's results for every case, computed once per test binary.
struct Reference {
  Value run;     // per case: trajectory, snapshot_params, snapshot_state, final_state
  Value resume;  // per case: torch continuing from halftorch's state_dict at kSnapshot
};

// `python` runs torch.optim: Debian's torch 1.13 by default, or the torch 2.x venv.
const Reference& reference(const std::string& python = HT_PYTHON) {
  static std::map<std::string, Reference> by_python;
  if (auto it = by_python.find(python); it != by_python.end()) return it->second;
  Reference ref = [&] {
    auto dir = ht::testing::temp_dir(python == HT_PYTHON ? "optim" : "optim-torch2");
    ValueList run_specs, resume_specs;
    for (const Case& c : cases()) {
      run_specs.push_back(case_spec(c, problem().init, 0, kSteps));
      // halftorch's own first kSnapshot steps, handed to torch as a state_dict
      auto params = fresh_params(problem().init);
      auto opt = make_optimizer(c, params);
      run_steps(*opt, params, 0, kSnapshot);
      Value spec = case_spec(c, params, kSnapshot, kSteps);
      spec.to_dict().set("state_dict", opt->state_dict());
      resume_specs.push_back(spec);
    }
    ht::save(Value::list(run_specs), (dir / "run_in.pth").string());
    ht::save(Value::list(resume_specs), (dir / "resume_in.pth").string());
    optim_test::run_script("optim_ref.py", "run " + (dir / "run_in.pth").string() + " " + (dir / "run_out.pth").string(),
                           dir, python);
    optim_test::run_script("optim_ref.py",
                           "resume " + (dir / "resume_in.pth").string() + " " + (dir / "resume_out.pth").string(), dir,
                           python);
    return Reference{ht::load((dir / "run_out.pth").string()), ht::load((dir / "resume_out.pth").string())};
  }();
  return by_python.emplace(python, std::move(ref)).first->second;
}

// Runs f(case index, case) for every case, with the case named in failure messages.
template <class F>
void for_each_case(F&& f) {
  const auto all = cases();
  for (size_t k = 0; k < all.size(); ++k) {
    INFO(all[k].name);
    f(int64_t(k), all[k]);
  }
}

double worst_error(const std::vector<Tensor>& got, const Value& want) {
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, max_rel_error(got[i], want[int64_t(i)].to_tensor()));
  return worst;
}

}  // namespace

TEST_CASE("optimizers follow torch.optim step by step for 100 steps (fp32, CPU)") {
  for_each_case([](int64_t k, const Case& c) {
    auto params = fresh_params(problem().init);
    auto opt = make_optimizer(c, params);
    std::vector<std::vector<Tensor>> traj;
    run_steps(*opt, params, 0, kSteps, &traj);
    const Value& want = reference().run[k]["trajectory"];
    REQUIRE(want.items().size() == size_t(kSteps));
    double worst = 0;
    for (int t = 0; t < kSteps; ++t) worst = std::max(worst, worst_error(traj[size_t(t)], want[t]));
    INFO("max relative error over all steps: " << worst);
    CHECK(worst < kTol);
    // the moments too, in torch.optim's keys
    const Dict& torch_state = reference().run[k]["final_state"]["state"].to_dict();
    const Value ours_sd = opt->state_dict();
    const Dict& ours = ours_sd["state"].to_dict();
    REQUIRE(ours.size() == torch_state.size());
    for (const auto& [key, entry] : torch_state.items()) {
      for (const auto& [name, v] : entry.to_dict().items()) {
        INFO("state[" << key_str(key) << "][" << key_str(name) << "]");
        const Value& mine = ours.at(key)[std::get<std::string>(name)];
        if (v.is_none()) {
          CHECK(mine.is_none());
        } else if (key_str(name) == "step") {
          CHECK(mine.to_tensor().dtype() == kFloat32);
          CHECK(mine.to_tensor().dim() == 0);
          CHECK(mine.to_tensor().item_double() == v.to_tensor().item_double());
        } else {
          CHECK(max_rel_error(mine.to_tensor(), v.to_tensor()) < kTol);
        }
      }
    }
  });
}

namespace {

// The bound on the relative error at step 100 against `python`'s torch. torch 2.x's Adam and AdamW with weight
// decay round differently from 1.13's: measured on these cases, the two torch versions end up to 6.2e-6 apart
// (Adam weight_decay (L2) 6.2e-6, AdamW decay + amsgrad 4.7e-6, Adam param groups 3.5e-6; every other case within
// 5e-7), so against 2.x those cases get 1e-5 and the rest keep kTol.
double tolerance(const std::string& python, const Case& c) {
  bool decayed = c.kind != "SGD" && std::any_of(c.groups.begin(), c.groups.end(),
                                                [](const GroupSpec& g) { return g.opts.weight_decay > 0; });
  return python != HT_PYTHON && decayed ? 1e-5 : kTol;
}

// Loads torch's state_dict at kSnapshot and runs to kSteps: halftorch ends where torch ended.
void check_torch_state_continues(const std::string& python) {
  for_each_case([&](int64_t k, const Case& c) {
    const Value& ref = reference(python).run[k];
    std::vector<Tensor> start;
    for (const Value& v : ref["snapshot_params"].items()) start.push_back(v.to_tensor());
    auto params = fresh_params(start);
    auto opt = make_optimizer(c, params);
    opt->load_state_dict(ref["snapshot_state"]);
    run_steps(*opt, params, kSnapshot, kSteps);
    double err = worst_error(params, ref["trajectory"][kSteps - 1]);
    INFO("relative error at step 100: " << err);
    CHECK(err < tolerance(python, c));
  });
}

// torch loaded halftorch's state_dict at kSnapshot and ran to kSteps: it ends where halftorch ends.
void check_halftorch_state_continues(const std::string& python) {
  for_each_case([&](int64_t k, const Case& c) {
    auto params = fresh_params(problem().init);
    auto opt = make_optimizer(c, params);
    run_steps(*opt, params, 0, kSteps);
    double err = worst_error(params, reference(python).resume[k]["params"]);
    INFO("relative error at step 100: " << err);
    CHECK(err < tolerance(python, c));
  });
}

}  // namespace

TEST_CASE("a torch.optim state_dict loads into halftorch and continues identically") {
  check_torch_state_continues(HT_PYTHON);
}

TEST_CASE("a halftorch state_dict loads into torch.optim and continues identically") {
  check_halftorch_state_continues(HT_PYTHON);
}

TEST_CASE("torch 2.x: its optimizer state_dicts (2.x param-group keys) load into halftorch and the other way round",
          "[torch2]") {
  // torch 2.x's groups add foreach, differentiable, fused and decoupled_weight_decay (False for Adam, True for
  // AdamW) to 1.13's, and its SGD without momentum keeps no per-parameter state at all.
  std::string py = testing::torch2_python();
  if (py.empty()) return;
  const Value& adam = reference(py).run[0]["snapshot_state"]["param_groups"][0];
  REQUIRE(adam.to_dict().contains("decoupled_weight_decay"));
  CHECK_FALSE(adam["decoupled_weight_decay"].to_bool());
  check_torch_state_continues(py);
  check_halftorch_state_continues(py);
}

TEST_CASE("state_dict layout is torch.optim's") {
  auto params = fresh_params(problem().init);
  optim::Adam adam(params, {.lr = 0.01, .amsgrad = true});
  run_steps(adam, params, 0, 3);
  Value sd = adam.state_dict();
  const Value& g = sd["param_groups"][0];
  std::vector<std::string> keys;
  for (const auto& [k, v] : g.to_dict().items()) keys.push_back(key_str(k));
  CHECK(keys == std::vector<std::string>{"lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "foreach",
                                         "capturable", "differentiable", "fused", "decoupled_weight_decay", "params"});
  CHECK_FALSE(g["decoupled_weight_decay"].to_bool());
  CHECK(optim::AdamW(params).state_dict()["param_groups"][0]["decoupled_weight_decay"].to_bool());
  CHECK(g["betas"].is_tuple());
  CHECK(g["params"].items().size() == 3);
  // parameter 1 had no gradient at step 3 (index 2): its count stays at 2
  CHECK(sd["state"][int64_t(0)]["step"].to_tensor().item_double() == 3);
  CHECK(sd["state"][int64_t(1)]["step"].to_tensor().item_double() == 2);
  CHECK(sd["state"][int64_t(0)].to_dict().contains("max_exp_avg_sq"));
  CHECK(!sd["state"][int64_t(0)].to_dict().contains("master_param"));  // fp32 parameters need no master copy
}

TEST_CASE("optimizer options are validated with PyTorch's messages") {
  auto params = fresh_params(problem().init);
  check_throws([&] { optim::Adam(params, {.lr = -1}); }, "[Adam] Invalid learning rate: -1");
  check_throws([&] { optim::Adam(params, {.eps = -1}); }, "Invalid epsilon value");
  check_throws([&] { optim::Adam(params, {.betas = {1.0, 0.9}}); }, "Invalid beta parameter at index 0: 1");
  check_throws([&] { optim::AdamW(params, {.betas = {0.9, -0.1}}); }, "[AdamW] Invalid beta parameter at index 1");
  check_throws([&] { optim::AdamW(params, {.weight_decay = -1}); }, "Invalid weight_decay value");
  check_throws([&] { optim::SGD(params, {.momentum = -0.5}); }, "[SGD] Invalid momentum value");
  check_throws([&] { optim::SGD(params, {.lr = 0.1, .nesterov = true}); },
              "Nesterov momentum requires a momentum and zero dampening");
  check_throws([&] { optim::SGD(std::vector<Tensor>{params[0], params[0]}); }, "more than one parameter group");
  check_throws([&] { optim::SGD(std::vector<Tensor>{zeros({3}, {.dtype = kInt64})}); }, "expected float32, float16");
  optim::Adam adam(params);
  Value sd = adam.state_dict();
  optim::Adam two_groups(std::vector<optim::ParamGroup<optim::AdamOptions>>{{{params[0]}, {}}, {{params[1]}, {}}});
  check_throws([&] { two_groups.load_state_dict(sd); }, "different number of parameter groups");
  optim::Adam fewer(std::vector<Tensor>{params[0]});
  check_throws([&] { fewer.load_state_dict(sd); }, "doesn't match the size of optimizer's group");
  check_throws([&] { adam.load_state_dict(Value::dict()); }, "expected torch.optim's layout, a dict with 'state' and 'param_groups'");
}

TEST_CASE("a state_dict of another optimizer is refused naming what it holds and what was expected") {
  auto params = fresh_params(problem().init);
  optim::SGD sgd(params, {.lr = 0.01, .momentum = 0.9});
  run_steps(sgd, params, 0, 2);
  optim::Adam adam(params, {.weight_decay = 0.1});
  run_steps(adam, params, 0, 2);
  optim::AdamW adamw(params, {.weight_decay = 0.1});
  const Value sgd_state = sgd.state_dict(), adam_state = adam.state_dict(), adamw_state = adamw.state_dict();
  check_throws([&] { adam.load_state_dict(sgd_state); },
               "[Adam] state[0] has no 'step' (it holds 'momentum_buffer'); Adam's state is 'step', 'exp_avg', "
               "'exp_avg_sq' (and 'max_exp_avg_sq' with amsgrad): was the state_dict saved by another optimizer?");
  check_throws([&] { sgd.load_state_dict(adam_state); },
               "[SGD] state[0] holds 'step', but SGD's state is 'momentum_buffer' (and 'master_param'");
  // Adam and AdamW keep the same state; torch 2.x's decoupled_weight_decay tells their groups apart
  check_throws([&] { adamw.load_state_dict(adam_state); },
               "[AdamW] param group 0 was saved with decoupled_weight_decay=False (Adam's weight decay); load it into Adam");
  check_throws([&] { adam.load_state_dict(adamw_state); }, "decoupled_weight_decay=True (AdamW's");
  optim::AdamW no_decay(params, {.weight_decay = 0});
  no_decay.load_state_dict(optim::Adam(params).state_dict());  // without weight decay the two are one optimizer
}

TEST_CASE("zero_grad drops or zeroes gradients; parameters without gradients are left alone") {
  auto params = fresh_params(problem().init);
  optim::SGD sgd(params, {.lr = 0.1});
  params[0].set_grad(ones({5, 7}));
  params[2].set_grad(ones({2, 3, 4}));
  Tensor before = params[1].detach().clone();
  sgd.step();
  ht::testing::check_equal(params[1], before, "a parameter without grad does not move");
  sgd.zero_grad(false);
  REQUIRE(params[0].grad().defined());
  CHECK(sum(abs(params[0].grad())).item<float>() == 0.f);
  sgd.zero_grad();
  CHECK(!params[0].grad().defined());
  CHECK(!params[2].grad().defined());
}

TEST_CASE("the fused step kernel changes nothing while found_inf is set") {
  for (DType dt : {kFloat32, kFloat16}) {
    Tensor p = randn({1000}).to(dt), g = randn({1000}).to(dt);
    Tensor master = p.to(kCPU, kFloat32, true), m = randn({1000}), v = rand({1000});
    Tensor p0 = p.clone(), master0 = master.clone(), m0 = m.clone(), v0 = v.clone();
    kernels::AdamTensor e;
    e.param = p.raw_data();
    e.grad = g.raw_data();
    e.master = dt == kFloat32 ? nullptr : master.data_ptr<float>();
    e.exp_avg = m.data_ptr<float>();
    e.exp_avg_sq = v.data_ptr<float>();
    e.numel = 1000;
    e.dtype = dt;
    e.beta1 = 0.9f, e.one_minus_beta1 = 0.1f, e.beta2 = 0.999f, e.one_minus_beta2 = 0.001f, e.eps = 1e-8f;
    e.neg_step_size = -0.1f;
    float found = 1.f;
    kernels::adam_step(kCPU, &e, 1, 0.5f, &found);
    ht::testing::check_equal(p, p0, "param");
    ht::testing::check_equal(master, master0, "master");
    ht::testing::check_equal(m, m0, "exp_avg");
    ht::testing::check_equal(v, v0, "exp_avg_sq");
    found = 0.f;
    kernels::adam_step(kCPU, &e, 1, 0.5f, &found);
    CHECK(max_rel_error(m, m0) > 0);
    CHECK(max_rel_error(p, p0) > 0);
  }
}

TEST_CASE("CUDA fused optimizer kernels match the CPU path", "[cuda]") {
  auto devices = ht::testing::test_devices();
  if (devices.size() < 2) return;
  for (DType dt : {kFloat32, kFloat16, kBFloat16}) {
    INFO(dtype_name(dt));
    Generator gen(7);
    std::vector<Tensor> init;
    // sizes straddling the CUDA kernel's 16384-element chunks
    for (int64_t n : {1, 777, 16384, 40000}) init.push_back(randn({n}, gen).to(dt));
    std::vector<std::vector<Tensor>> grads;
    for (int t = 0; t < 20; ++t) {
      std::vector<Tensor> gs;
      for (const Tensor& p : init) gs.push_back(randn(p.sizes(), gen).to(dt));
      grads.push_back(gs);
    }
    auto run = [&](Device dev, bool sgd) {
      std::vector<Tensor> ps;
      for (const Tensor& p : init) ps.push_back(p.to(dev, dt, true).set_requires_grad(true));
      std::unique_ptr<optim::Optimizer> opt;
      if (sgd) {
        opt = std::make_unique<optim::SGD>(ps, optim::SGDOptions{.lr = 0.01, .momentum = 0.9, .nesterov = true});
      } else {
        opt = std::make_unique<optim::AdamW>(ps, optim::AdamWOptions{.lr = 1e-2, .amsgrad = true});
      }
      for (const auto& gs : grads) {
        for (size_t i = 0; i < ps.size(); ++i) ps[i].set_grad(gs[i].to(dev));
        opt->step(optim::StepScaling{0.5f});
      }
      return opt->master_params();
    };
    for (bool sgd : {false, true}) {
      auto cpu = run(kCPU, sgd), gpu = run(kCUDA, sgd);
      for (size_t i = 0; i < cpu.size(); ++i) CHECK(max_rel_error(gpu[i].cpu(), cpu[i]) < 1e-5);
    }
  }
}

TEST_CASE("an optimizer step is an in-place write: a backward that saved the old parameter fails, as in PyTorch") {
  for (int which = 0; which < 2; ++which) {
    Tensor w = ones({3}).requires_grad_(), x = full({3}, 2.0).requires_grad_();
    Tensor loss = sum(mul(w, x));  // saves w for x's gradient
    uint64_t before = w.version();
    {
      Tensor first = sum(mul(w, w));
      first.backward();
    }
    if (which == 0) {
      optim::Adam opt({w});
      opt.step();
    } else {
      optim::SGD opt({w}, optim::SGDOptions{.lr = 0.1});
      opt.step();
    }
    CHECK(w.version() > before);
    CHECK_THROWS_WITH(loss.backward(), Catch::Contains("modified by an inplace operation"));
  }
}
