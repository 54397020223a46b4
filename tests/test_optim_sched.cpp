// LR schedulers against torch.optim.lr_scheduler (torch 1.13 at test time): the lr (and OneCycleLR's
// momentum) after every step, the scheduler's state_dict, the extras in the optimizer's param_groups, and resuming.
#include "optim/adam.h"
#include "optim/lr_scheduler.h"
#include "optim/sgd.h"
#include "tests/test_optim_util.h"

using namespace ht;

namespace {

struct SchedCase {
  std::string name, optimizer, scheduler;
  std::vector<double> lrs;
  double momentum;
  Value args;  // the Python kwargs
  int steps;
  std::function<std::unique_ptr<optim::LRScheduler>(optim::Optimizer&, int64_t last_epoch)> make;
};

Value kwargs(std::initializer_list<std::pair<const char*, Value>> items) {
  Value v = Value::dict();
  for (const auto& [k, x] : items) v.to_dict().set(k, x);
  return v;
}

std::vector<SchedCase> sched_cases() {
  using optim::OneCycleOptions;
  return {
      {"StepLR", "SGD", "StepLR", {0.1, 0.01}, 0.9, kwargs({{"step_size", 3}, {"gamma", 0.5}}), 12,
       [](optim::Optimizer& o, int64_t e) { return std::make_unique<optim::StepLR>(o, 3, 0.5, e); }},
      {"LinearLR warmup", "Adam", "LinearLR", {1e-3, 1e-2}, 0,
       kwargs({{"start_factor", 0.1}, {"end_factor", 1.0}, {"total_iters", 5}}), 10,
       [](optim::Optimizer& o, int64_t e) { return std::make_unique<optim::LinearLR>(o, 0.1, 1.0, 5, e); }},
      {"LinearLR defaults", "SGD", "LinearLR", {0.1}, 0.0, kwargs({}), 8,
       [](optim::Optimizer& o, int64_t e) { return std::make_unique<optim::LinearLR>(o, 1.0 / 3, 1.0, 5, e); }},
      {"CosineAnnealingLR past T_max", "Adam", "CosineAnnealingLR", {1e-3, 3e-3}, 0,
       kwargs({{"T_max", 10}, {"eta_min", 1e-4}}), 25,
       [](optim::Optimizer& o, int64_t e) { return std::make_unique<optim::CosineAnnealingLR>(o, 10, 1e-4, e); }},
      {"OneCycleLR cos, Adam betas", "Adam", "OneCycleLR", {1e-3, 1e-3}, 0,
       kwargs({{"max_lr", Value::list({0.1, 0.05})}, {"total_steps", 20}}), 19,
       [](optim::Optimizer& o, int64_t e) {
         return std::make_unique<optim::OneCycleLR>(o, std::vector<double>{0.1, 0.05},
                                                    OneCycleOptions{.total_steps = 20}, e);
       }},
      {"OneCycleLR linear three-phase, SGD momentum", "SGD", "OneCycleLR", {0.1}, 0.9,
       kwargs({{"max_lr", 0.2}, {"epochs", 2}, {"steps_per_epoch", 5}, {"anneal_strategy", "linear"},
               {"three_phase", true}}),
       9,
       [](optim::Optimizer& o, int64_t e) {
         return std::make_unique<optim::OneCycleLR>(
             o, 0.2, OneCycleOptions{.epochs = 2, .steps_per_epoch = 5, .anneal_strategy = "linear", .three_phase = true},
             e);
       }},
  };
}

struct Setup {
  std::vector<Tensor> params;
  std::unique_ptr<optim::Optimizer> opt;
};

Setup make_optimizer(const SchedCase& c) {
  Setup s;
  if (c.optimizer == "SGD") {
    std::vector<optim::ParamGroup<optim::SGDOptions>> groups;
    for (double lr : c.lrs) {
      s.params.push_back(zeros({2}).set_requires_grad(true));
      groups.push_back({{s.params.back()}, optim::SGDOptions{.lr = lr, .momentum = c.momentum}});
    }
    s.opt = std::make_unique<optim::SGD>(groups);
  } else {
    std::vector<optim::ParamGroup<optim::AdamOptions>> groups;
    for (double lr : c.lrs) {
      s.params.push_back(zeros({2}).set_requires_grad(true));
      groups.push_back({{s.params.back()}, optim::AdamOptions{.lr = lr}});
    }
    s.opt = std::make_unique<optim::Adam>(groups);
  }
  return s;
}

const Value& torch_schedules() {
  static Value out = [] {
    auto dir = ht::testing::temp_dir("optim-sched");
    ValueList specs;
    for (const SchedCase& c : sched_cases()) {
      Value spec = Value::dict();
      Dict& d = spec.to_dict();
      d.set("optimizer", c.optimizer);
      ValueList lrs;
      for (double lr : c.lrs) lrs.emplace_back(lr);
      d.set("lrs", Value::list(lrs));
      d.set("momentum", c.momentum);
      d.set("scheduler", c.scheduler);
      d.set("args", c.args);
      d.set("steps", int64_t(c.steps));
      specs.push_back(spec);
    }
    ht::save(Value::list(specs), (dir / "sched_in.pth").string());
    optim_test::run_script("optim_sched.py", (dir / "sched_in.pth").string() + " " + (dir / "sched_out.pth").string(),
                           dir);
    return ht::load((dir / "sched_out.pth").string());
  }();
  return out;
}

bool same(double a, double b) { return std::fabs(a - b) <= 1e-15 * std::fabs(b); }

std::vector<double> momenta(const optim::Optimizer& o) {
  std::vector<double> m;
  for (size_t g = 0; g < o.num_param_groups(); ++g) m.push_back(o.momentum(g));
  return m;
}

void check_row(const std::vector<double>& got, const Value& want, const char* what) {
  REQUIRE(got.size() == want.items().size());
  for (size_t g = 0; g < got.size(); ++g) {
    INFO(what << " of group " << g << ": got " << got[g] << ", want " << want[int64_t(g)].to_double());
    CHECK(same(got[g], want[int64_t(g)].to_double()));
  }
}

}  // namespace

TEST_CASE("schedulers produce torch.optim.lr_scheduler's learning rates and momenta step by step") {
  const auto all = sched_cases();
  for (size_t k = 0; k < all.size(); ++k) {
    const SchedCase& c = all[k];
    INFO(c.name);
    const Value& want = torch_schedules()[int64_t(k)];
    Setup s = make_optimizer(c);
    auto sched = c.make(*s.opt, -1);
    for (int t = 0; t <= c.steps; ++t) {
      INFO("after " << t << " steps");
      if (t > 0) {
        s.opt->step();
        sched->step();
      }
      check_row(sched->get_last_lr(), want["lrs"][t], "lr");
      check_row(momenta(*s.opt), want["momenta"][t], "momentum");
    }
    // the scheduler's state_dict: PyTorch's attributes and values (1.13 keeps OneCycleLR's anneal function as a
    // bound method, which the reference drops; halftorch saves its name as newer PyTorch does)
    Value mine = sched->state_dict();
    const Dict& theirs = want["state_dict"].to_dict();
    for (const auto& [key, v] : theirs.items()) {
      const std::string name = key_str(key);
      INFO("state_dict key " << name);
      const Value* m = mine.to_dict().find(name);
      REQUIRE(m != nullptr);
      if (v.is_list()) {
        REQUIRE(m->items().size() == v.items().size());
        if (name != "_schedule_phases")
          for (size_t i = 0; i < v.items().size(); ++i) CHECK(same(m->items()[i].to_double(), v.items()[i].to_double()));
      } else if (v.is_bool()) {
        CHECK(m->to_bool() == v.to_bool());
      } else {
        CHECK(same(m->to_double(), v.to_double()));
      }
    }
    // the extras schedulers add to the optimizer's param groups (initial_lr, max_lr, ...), saved like PyTorch's
    Value groups = s.opt->state_dict()["param_groups"];
    for (size_t g = 0; g < c.lrs.size(); ++g) {
      for (const auto& [key, v] : want["param_groups"][int64_t(g)].to_dict().items()) {
        const std::string name = key_str(key);
        if (name != "initial_lr" && name != "max_lr" && name != "min_lr" && name != "max_momentum" &&
            name != "base_momentum" && name != "lr")
          continue;
        INFO("param_groups[" << g << "][" << name << "]");
        CHECK(same(groups[int64_t(g)][name].to_double(), v.to_double()));
      }
    }
  }
}

TEST_CASE("a scheduler resumes from its state_dict and the optimizer's") {
  const auto all = sched_cases();
  for (size_t k = 0; k < all.size(); ++k) {
    const SchedCase& c = all[k];
    INFO(c.name);
    Setup a = make_optimizer(c);
    auto sa = c.make(*a.opt, -1);
    const int half = c.steps / 2;
    for (int t = 0; t < half; ++t) sa->step();
    auto dir = ht::testing::temp_dir("optim-sched-resume");
    ht::save(sa->state_dict(), (dir / "sched.pth").string());
    ht::save(a.opt->state_dict(), (dir / "opt.pth").string());
    // PyTorch's recipe: build both as new, then load the optimizer's state and the scheduler's
    Setup b = make_optimizer(c);
    auto sb = c.make(*b.opt, -1);
    b.opt->load_state_dict(ht::load((dir / "opt.pth").string()));
    sb->load_state_dict(ht::load((dir / "sched.pth").string()));
    CHECK(sb->last_epoch() == sa->last_epoch());
    for (int t = half; t < c.steps; ++t) {
      sa->step();
      sb->step();
      CHECK(sb->get_last_lr() == sa->get_last_lr());
      CHECK(momenta(*b.opt) == momenta(*a.opt));
    }
  }
}

TEST_CASE("schedulers check their arguments as PyTorch does") {
  const SchedCase& c = sched_cases()[0];
  Setup s = make_optimizer(c);
  using optim_test::check_throws;
  check_throws([&] { optim::StepLR(*s.opt, 3, 0.1, 5); }, "param 'initial_lr' is not specified");
  check_throws([&] { optim::LinearLR(*s.opt, 1.5); }, "Starting multiplicative factor expected to be between 0 and 1");
  check_throws([&] { optim::OneCycleLR(*s.opt, 0.1, {}); },
               "You must define either total_steps OR (epochs AND steps_per_epoch)");
  check_throws([&] { optim::OneCycleLR(*s.opt, 0.1, {.total_steps = 10, .anneal_strategy = "exp"}); },
               "anneal_strategy must by one of 'cos' or 'linear', instead got exp");
  optim::OneCycleLR one(*s.opt, 0.1, {.total_steps = 3});
  one.step();
  one.step();
  one.step();
  check_throws([&] { one.step(); }, "Tried to step 5 times. The specified number of total steps is 3");
}
