// train_resnet18's optimizer, schedule, gradient and run flags against PyTorch: the lr of every batch under each
// --sched equals torch.optim.lr_scheduler's (LinearLR warmup joined by SequentialLR, as torchvision's reference
// script builds it) across a resume; ht::nn::utils::clip_grad_norm_ / clip_grad_value_ equal torch.nn.utils' on
// the same gradients; SGD (nesterov, weight decay) with --clip-grad, --accum-steps and --label-smoothing follows
// the same recipe written in PyTorch step for step; kill -9 and --resume auto; a resume with another --opt or a
// broken entry; the progress line and summary; --model-ema against timm's rule; top-5 against torchvision's.
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "core/ops.h"
#include "core/random.h"
#include "examples/eval_metrics.h"
#include "io/serialize.h"
#include "nn/utils.h"
#include "tests/helpers.h"
#include "tests/train_test_util.h"

using namespace ht;
using testing::bin;
using testing::run_command;
using testing::read_log;
using testing::run_python;

namespace {
std::vector<double> logged(const std::filesystem::path& p, const char* key) {
  std::vector<double> out;
  for (const auto& r : read_log(p))
    if (r.contains(key) && r.contains("step")) out.push_back(r[key].get<double>());
  return out;
}

// run_command's exit code of a program that SIGKILL ended (sh reports 128 + 9)
bool killed(int exit_code) { return exit_code == 137 || exit_code == -1; }

struct SchedRun {
  std::string name, flags, torch_sched;  // torch_sched: Python building `sched` from `opt` (E epochs, S steps/epoch)
  bool per_step;
  int64_t epochs, limit, batch, accum;
};
}  // namespace

TEST_CASE("--sched: the lr of every batch equals torch's scheduler, resumed halfway or not") {
  std::string py = testing::torch2_python();  // SequentialLR as torch 2.x defines it
  if (py.empty()) return;
  const std::string L = "torch.optim.lr_scheduler.";
  std::vector<SchedRun> runs = {
      {"step + warmup, sgd", "--opt sgd --lr 0.05 --sched step --lr-step-size 2 --lr-gamma 0.5 --warmup-epochs 2",
       "main = " + L + "StepLR(opt, step_size=2, gamma=0.5)\n"
       "sched = " + L + "SequentialLR(opt, [" + L + "LinearLR(opt, start_factor=0.01, total_iters=2), main], milestones=[2])\n",
       false, 6, 32, 32, 1},
      {"cosine + warmup, adamw", "--opt adamw --lr 0.002 --sched cosine --warmup-epochs 1 --lr-min 1e-5",
       "main = " + L + "CosineAnnealingLR(opt, T_max=E - 1, eta_min=1e-5)\n"
       "sched = " + L + "SequentialLR(opt, [" + L + "LinearLR(opt, start_factor=0.01, total_iters=1), main], milestones=[1])\n",
       false, 6, 32, 32, 1},
      {"cosine, adam", "--opt adam --lr 0.001 --sched cosine",
       "sched = " + L + "CosineAnnealingLR(opt, T_max=E)\n", false, 4, 32, 32, 1},
      {"onecycle per optimizer step, accumulating 2 batches", "--opt sgd --lr 0.1 --sched onecycle --accum-steps 2",
       "sched = " + L + "OneCycleLR(opt, max_lr=0.1, epochs=E, steps_per_epoch=S)\n", true, 2, 96, 16, 2},
  };
  for (const SchedRun& r : runs) {
    SECTION(r.name) {
      auto dir = testing::temp_dir("train_sched_" + std::to_string(&r - runs.data()));
      int64_t batches = (r.limit + r.batch - 1) / r.batch, steps = (batches + r.accum - 1) / r.accum;
      std::string opt = r.flags.find("--opt sgd") != std::string::npos ? "SGD(p, lr=LR, momentum=0.9)"
                        : r.flags.find("adamw") != std::string::npos ? "AdamW(p, lr=LR)" : "Adam(p, lr=LR)";
      std::string lr = r.flags.substr(r.flags.find("--lr ") + 5);
      lr = lr.substr(0, lr.find(' '));
      std::string code = "import json, torch, warnings\nwarnings.simplefilter('ignore')\n"
                         "E, S, B, K, LR = " + std::to_string(r.epochs) + ", " + std::to_string(steps) + ", " +
                         std::to_string(batches) + ", " + std::to_string(r.accum) + ", " + lr + "\n"
                         "p = [torch.zeros(1, requires_grad=True)]\nopt = torch.optim." + opt + "\n" + r.torch_sched +
                         "lrs = []\nfor e in range(E):\n"
                         "    for b in range(B):\n"
                         "        lrs.append(opt.param_groups[0]['lr'])\n"
                         "        if (b + 1) % K == 0 or b + 1 == B:\n"
                         "            opt.step()\n" +
                         (r.per_step ? "            sched.step()\n" : "") +
                         (r.per_step ? "" : "    sched.step()\n") + "print(json.dumps(lrs))\n";
      auto want = nlohmann::json::parse(run_python(code, dir, py)).get<std::vector<double>>();
      std::string common = bin("train_resnet18") + " --device cpu --precision fp32 --seed 3 --limit " +
                           std::to_string(r.limit) + " --batch-size " + std::to_string(r.batch) + " " + r.flags;
      auto whole = run_command(common + " --epochs " + std::to_string(r.epochs) + " --out " + (dir / "a.pth").string() +
                               " --log " + (dir / "a.jsonl").string());
      INFO(whole.output);
      REQUIRE(whole.exit_code == 0);
      std::vector<double> got = logged(dir / "a.jsonl", "lr");
      REQUIRE(got.size() == want.size());
      for (size_t i = 0; i < got.size(); ++i) {
        INFO("batch " << i << ": halftorch " << got[i] << ", torch " << want[i]);
        REQUIRE(std::fabs(got[i] - want[i]) <= 1e-12 * std::fabs(want[i]) + 1e-15);
      }
      // The same command killed in the first batch after half the epochs, then resumed from the epoch's
      // checkpoint: the same lr sequence and the same losses.
      std::string again = common + " --epochs " + std::to_string(r.epochs) + " --checkpoint " + (dir / "ck.pth").string() +
                          " --resume auto --out " + (dir / "b.pth").string() + " --log " + (dir / "b.jsonl").string();
      auto first = run_command("HT_TRAIN_KILL_AT=step:" + std::to_string(r.epochs / 2 * batches + 1) + " " + again);
      INFO(first.output);
      REQUIRE(killed(first.exit_code));
      auto rest = run_command(again);
      INFO(rest.output);
      REQUIRE(rest.exit_code == 0);
      REQUIRE(rest.output.find("resuming from") != std::string::npos);
      REQUIRE(logged(dir / "b.jsonl", "lr") == got);
      REQUIRE(logged(dir / "b.jsonl", "loss") == logged(dir / "a.jsonl", "loss"));
    }
  }
}

TEST_CASE("clip_grad_norm_ and clip_grad_value_ equal torch.nn.utils' on the same gradients") {
  auto dir = testing::temp_dir("clip_grad");
  manual_seed(11);
  std::vector<Tensor> params;
  Value grads = Value::dict();
  const std::vector<Shape> shapes = {{64, 3, 3, 3}, {64}, {10, 64}, {10}};
  for (size_t i = 0; i < shapes.size(); ++i) {
    Tensor p = zeros(shapes[i]);
    p.set_requires_grad(true);
    p.set_grad(mul(randn(shapes[i]), 0.3 * double(i + 1)));
    params.push_back(p);
    grads.to_dict().set("g" + std::to_string(i), p.grad().clone());
  }
  save(grads, (dir / "grads.pth").string());
  // (max_norm, norm_type): clipping by the 2-, 1- and inf-norm, and a threshold above the norm (scaled by ~1)
  const std::vector<std::pair<double, double>> cases = {{1.0, 2.0}, {5.0, 1.0}, {0.5, INFINITY}, {1e6, 2.0}};
  std::string code = "import json, torch\ng = torch.load('" + (dir / "grads.pth").string() + "')\nout = []\n"
                     "for mx, nt in [(1.0, 2.0), (5.0, 1.0), (0.5, float('inf')), (1e6, 2.0)]:\n"
                     "    ps = [torch.zeros_like(g['g%d' % i], requires_grad=True) for i in range(4)]\n"
                     "    for i, p in enumerate(ps): p.grad = g['g%d' % i].clone()\n"
                     "    n = torch.nn.utils.clip_grad_norm_(ps, mx, nt)\n"
                     "    out.append([float(n)] + [p.grad.flatten().tolist() for p in ps])\n"
                     "ps = [torch.zeros_like(g['g%d' % i], requires_grad=True) for i in range(4)]\n"
                     "for i, p in enumerate(ps): p.grad = g['g%d' % i].clone()\n"
                     "torch.nn.utils.clip_grad_value_(ps, 0.4)\n"
                     "out.append([0.0] + [p.grad.flatten().tolist() for p in ps])\n"
                     "print(json.dumps(out))\n";
  auto want = nlohmann::json::parse(run_python(code, dir));
  for (size_t c = 0; c <= cases.size(); ++c) {
    std::vector<Tensor> ps;
    for (const Tensor& src : params) {
      Tensor p = zeros(src.sizes());
      p.set_requires_grad(true);
      p.set_grad(src.grad().clone());
      ps.push_back(p);
    }
    if (c < cases.size()) {
      INFO("max_norm " << cases[c].first << ", norm_type " << cases[c].second);
      double norm = nn::utils::clip_grad_norm_(ps, cases[c].first, cases[c].second).item<double>();
      double torch_norm = want[c][0].get<double>();
      REQUIRE(std::fabs(norm - torch_norm) <= 1e-6 * torch_norm);
    } else {
      nn::utils::clip_grad_value_(ps, 0.4);
    }
    for (size_t i = 0; i < ps.size(); ++i) {
      std::vector<float> got = ps[i].grad().to_vector<float>();
      auto w = want[c][i + 1].get<std::vector<float>>();
      REQUIRE(got.size() == w.size());
      for (size_t k = 0; k < got.size(); ++k) {
        INFO("case " << c << " param " << i << " element " << k);
        REQUIRE(std::fabs(got[k] - w[k]) <= 2e-6f * std::fabs(w[k]) + 1e-9f);
      }
    }
  }
  std::vector<Tensor> bad = {zeros({3})};
  bad[0].set_requires_grad(true);
  bad[0].set_grad(full({3}, INFINITY));
  REQUIRE_THROWS_WITH(nn::utils::clip_grad_norm_(bad, 1.0, 2.0, true), Catch::Contains("non-finite"));
}

TEST_CASE("--opt sgd --nesterov --clip-grad --accum-steps --label-smoothing follow the PyTorch recipe step for step") {
  // fp32 SGD against torch.optim.SGD. Two fp32 implementations differ by rounding (~1e-7 relative); the second
  // step of this recipe amplifies it: torch's own fp32 run is 3.5e-3 (relative) from its float64 run at batch 5
  // (torch 1.13, measured with this snippet). So batches 1-4 (the first step's effect included) are compared
  // with torch's fp32 run to 1e-4, and all six with torch's float64 run to 5e-3, above torch fp32's own distance.
  auto dir = testing::temp_dir("train_sgd_recipe");
  std::string init = (dir / "init.pth").string();
  std::string code = "import sys, json, torch\nsys.path.insert(0, '" + std::string(HT_SOURCE_DIR) +
                     "/tests/py')\nimport fmnist\ntorch.set_num_threads(2)\ntorch.manual_seed(0)\n"
                     "m0 = fmnist.resnet18_1ch()\ntorch.save(m0.state_dict(), '" + init + "')\n"
                     "def run(dtype):\n"
                     "    m = fmnist.resnet18_1ch().to(dtype); m.load_state_dict(m0.state_dict())\n"
                     "    x, y = fmnist.load(True, 96); x = x.to(dtype)\n"
                     "    opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)\n"
                     "    m.train(); losses = []; norms = []\n"
                     "    for b, i in enumerate(range(0, 96, 16)):\n"
                     "        loss = torch.nn.functional.cross_entropy(m(x[i:i+16]), y[i:i+16], label_smoothing=0.1)\n"
                     "        (loss / 2).backward(); losses.append(float(loss))\n"
                     "        if b % 2 == 1:\n"
                     "            norms.append(float(torch.nn.utils.clip_grad_norm_(m.parameters(), 2.0)))\n"
                     "            opt.step(); opt.zero_grad()\n"
                     "    return losses, norms\n"
                     "l32, norms = run(torch.float32)\nl64, _ = run(torch.float64)\n"
                     "print(json.dumps([l32, l64, norms]))\n";
  auto want = nlohmann::json::parse(run_python(code, dir));
  auto losses = want[0].get<std::vector<double>>(), losses64 = want[1].get<std::vector<double>>();
  auto norms = want[2].get<std::vector<double>>();
  REQUIRE(*std::max_element(norms.begin(), norms.end()) > 2.0);  // the clipping really acts in this run
  auto r = run_command(bin("train_resnet18") + " --device cpu --precision fp32 --no-shuffle --limit 96 --batch-size 16"
                       " --opt sgd --lr 0.05 --momentum 0.9 --nesterov --weight-decay 1e-4 --clip-grad 2"
                       " --accum-steps 2 --label-smoothing 0.1 --init " + init + " --out " +
                       (dir / "out.pth").string() + " --log " + (dir / "log.jsonl").string());
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  std::vector<double> got = logged(dir / "log.jsonl", "loss");
  REQUIRE(got.size() == losses.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("batch " << i + 1 << ": halftorch " << got[i] << ", torch fp32 " << losses[i] << ", float64 " << losses64[i]);
    if (i < 4) REQUIRE(std::fabs(got[i] - losses[i]) <= 1e-4 * std::fabs(losses[i]));
    REQUIRE(std::fabs(got[i] - losses64[i]) <= 5e-3 * std::fabs(losses64[i]));
  }
}

TEST_CASE("train_resnet18 rejects bad optimizer and schedule flags by name") {
  const std::pair<const char*, const char*> cases[] = {
      {"--opt lamb", "--opt must be adam, adamw or sgd"},
      {"--opt adam --nesterov", "--nesterov is an SGD option"},
      {"--sched poly", "--sched must be none, step, cosine or onecycle"},
      {"--sched onecycle --warmup-epochs 1", "onecycle warms up by itself"},
      {"--accum-steps 0", "--accum-steps must be positive"},
      {"--label-smoothing 1.5", "--label-smoothing must be between 0 and 1"},
      {"--clip-grad -1", "--clip-grad must be positive"},
  };
  for (const auto& [flags, message] : cases) {
    auto r = run_command(bin("train_resnet18") + " " + flags);
    INFO(flags << "\n" << r.output);
    REQUIRE(r.exit_code == 2);
    REQUIRE(r.output.find(message) != std::string::npos);
  }
}

namespace {
StateDict weights_in(const std::string& path) {  // a state_dict file, or a checkpoint's "model"
  Value v = load(path);
  return to_state_dict(v.is_dict() && v.to_dict().contains("model") ? v["model"] : v);
}

void require_same_tensors(const std::string& a, const std::string& b) {
  StateDict sa = weights_in(a), sb = weights_in(b);
  REQUIRE(sa.size() == sb.size());
  for (size_t i = 0; i < sa.size(); ++i) {
    INFO(a << " vs " << b << ": " << sa.tensors[i].first);
    REQUIRE(sa.tensors[i].first == sb.tensors[i].first);
    testing::check_equal(sa.tensors[i].second, sb.tensors[i].second, sa.tensors[i].first);
  }
}
}  // namespace

TEST_CASE("kill -9 mid-step or mid-checkpoint, rerun with --resume auto: the weights of an uninterrupted run") {
  for (const char* precision : {"fp16", "fp32"}) {
    SECTION(precision) {
      auto dir = testing::temp_dir(std::string("train_restart_") + precision);
      auto p = [&](const std::string& f) { return (dir / f).string(); };
      // 2 epochs of 4 batches, a checkpoint every 2 optimizer steps, 3 kept
      std::string common = bin("train_resnet18") + " --device cpu --precision " + precision +
                           " --limit 64 --batch-size 16 --epochs 2 --seed 9 --opt sgd --lr 0.02 --sched cosine"
                           " --save-every 2 --keep 3 --resume auto";
      auto whole = run_command(common + " --checkpoint " + p("a.ck") + " --out " + p("a.pth") + " --log " + p("a.jsonl"));
      INFO(whole.output);
      REQUIRE(whole.exit_code == 0);
      REQUIRE(std::filesystem::exists(p("a.ck.1")));
      REQUIRE(std::filesystem::exists(p("a.ck.3")));
      REQUIRE_FALSE(std::filesystem::exists(p("a.ck.4")));
      // the same command killed four times: mid-step (before the first checkpoint, and later), and while
      // writing a checkpoint (the first, and one at an epoch end), then run to the end
      std::string run = common + " --checkpoint " + p("b.ck") + " --out " + p("b.pth") + " --log " + p("b.jsonl");
      for (const char* kill_at : {"step:2", "save:1", "step:3", "save:2"}) {
        auto r = run_command(std::string("HT_TRAIN_KILL_AT=") + kill_at + " " + run);
        INFO(kill_at << "\n" << r.output);
        REQUIRE(killed(r.exit_code));
      }
      auto finished = run_command(run);
      INFO(finished.output);
      REQUIRE(finished.exit_code == 0);
      REQUIRE(finished.output.find("resuming from") != std::string::npos);
      require_same_tensors(p("a.pth"), p("b.pth"));
      require_same_tensors(p("a.ck"), p("b.ck"));
      REQUIRE(logged(dir / "b.jsonl", "loss") == logged(dir / "a.jsonl", "loss"));
    }
  }
}

TEST_CASE("--resume with another --opt, or a checkpoint entry in the wrong layout, names what it found and expected") {
  auto dir = testing::temp_dir("train_resume_mismatch");
  auto p = [&](const std::string& f) { return (dir / f).string(); };
  std::string common = bin("train_resnet18") + " --device cpu --precision fp32 --limit 32 --batch-size 16 --seed 2";
  auto sgd = run_command(common + " --opt sgd --checkpoint " + p("sgd.ck") + " --out " + p("sgd.pth"));
  INFO(sgd.output);
  REQUIRE(sgd.exit_code == 0);
  auto adam = run_command(common + " --checkpoint " + p("adam.ck") + " --out " + p("adam.pth"));
  REQUIRE(adam.exit_code == 0);
  struct Case {
    std::string flags, message;
  };
  const Case cases[] = {
      {"--opt adam --resume " + p("sgd.ck"),
       p("sgd.ck") + ": its optimizer state was written by --opt sgd, but this run has --opt adam; resume with --opt sgd, "
       "or start a new run from its weights with --init " + p("sgd.ck") + " --opt adam"},
      {"--opt adamw --resume " + p("adam.ck"), "written by --opt adam, but this run has --opt adamw"},
      {"--opt sgd --resume " + p("adam.ck"), "written by --opt adam, but this run has --opt sgd"},
  };
  for (const auto& c : cases) {
    auto r = run_command(common + " --epochs 2 --out " + p("x.pth") + " " + c.flags);
    INFO(c.flags << "\n" << r.output);
    REQUIRE(r.exit_code == 1);
    REQUIRE(r.output.find(c.message) != std::string::npos);
  }
  // the way on that the message offers: the checkpoint's weights, a new optimizer
  auto init = run_command(common + " --opt adam --init " + p("sgd.ck") + " --out " + p("x.pth"));
  INFO(init.output);
  REQUIRE(init.exit_code == 0);
  // torch 1.x's AdamW groups carry no decoupled_weight_decay: Adam's and AdamW's cannot be told apart and either
  // resumes; an Adam state without 'step', or a scaler without its keys, names the entry and the layout expected
  run_python("import torch\nck = torch.load('" + p("adam.ck") + "')\n"
             "g = ck['optimizer']['param_groups'][0]; del g['decoupled_weight_decay']\n"
             "torch.save(ck, '" + p("torch1.ck") + "')\n"
             "del ck['optimizer']['state'][0]['step']; torch.save(ck, '" + p("nostep.ck") + "')\n"
             "ck = torch.load('" + p("torch1.ck") + "'); ck['scaler'] = {'scale': 1024.0}\n"
             "torch.save(ck, '" + p("scaler.ck") + "')\n",
             dir);
  auto adamw = run_command(common + " --epochs 2 --opt adamw --resume " + p("torch1.ck") + " --out " + p("x.pth"));
  INFO(adamw.output);
  REQUIRE(adamw.exit_code == 0);
  const Case broken[] = {
      {"nostep.ck", p("nostep.ck") + ": 'optimizer': [Adam] state[0] has no 'step' (it holds 'exp_avg', 'exp_avg_sq'); "
                    "Adam's state is 'step', 'exp_avg', 'exp_avg_sq'"},
      {"scaler.ck", p("scaler.ck") + ": 'scaler': [GradScaler] expected torch.amp.GradScaler's state_dict ('scale', "
                    "'growth_factor', 'backoff_factor', 'growth_interval', '_growth_tracker'), but 'growth_factor' is missing"},
  };
  for (const auto& c : broken) {
    auto r = run_command(common + " --amp float16 --epochs 2 --resume " + p(c.flags) + " --out " + p("x.pth"));
    INFO(c.flags << "\n" << r.output);
    REQUIRE(r.exit_code == 1);
    REQUIRE(r.output.find(c.message) != std::string::npos);
  }
}

TEST_CASE("progress: a tqdm-like line per tenth of an epoch when stdout is not a terminal, and one summary at the end") {
  auto dir = testing::temp_dir("train_progress");
  auto p = [&](const std::string& f) { return (dir / f).string(); };
  auto r = run_command(bin("train_resnet18") + " --device cpu --precision fp32 --limit 160 --batch-size 8 --epochs 2 "
                       "--out " + p("m.pth") + " --checkpoint " + p("ck.pth") + " --log " + p("log.jsonl"));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  // 20 batches an epoch: a line every 2 batches, with the epoch's and the run's elapsed<remaining
  const std::regex line(R"(epoch ([12])/2 (\d+)/20 \[\d\d:\d\d<\d\d:\d\d, \d+ img/s\] loss \d+\.\d{4}  run \d\d:\d\d<(\d\d:\d\d|\?))");
  std::istringstream lines(r.output);
  std::string text;
  std::vector<int> steps;
  while (std::getline(lines, text)) {
    std::smatch m;
    if (std::regex_match(text, m, line)) steps.push_back(std::stoi(m[2]));
  }
  REQUIRE(steps == std::vector<int>{2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20});
  REQUIRE(r.output.find("\r") == std::string::npos);  // no bar redrawn into a log
  // the summary: last and best top-1 as the epochs printed them, wall time, throughput, the files written; the
  // final line stays the top-1 accuracy
  auto accuracy = [&](int epoch) {
    std::string label = "epoch " + std::to_string(epoch) + ": test accuracy ";
    auto at = r.output.find(label);
    REQUIRE(at != std::string::npos);
    return r.output.substr(at + label.size(), 6);
  };
  std::string best = std::max(accuracy(1), accuracy(2));
  std::smatch m;
  REQUIRE(std::regex_search(r.output, m, std::regex(R"(done in \d\d:\d\d \(\d+\.\d s\): top-1 last (\S+), best (\S+) \(epoch (\d)\); 320 images trained at \d+ img/s)")));
  CHECK(m[1] == accuracy(2));
  CHECK(m[2] == best);
  CHECK(accuracy(std::stoi(m[3])) == best);
  REQUIRE(r.output.find("wrote " + p("m.pth") + " " + p("ck.pth") + " " + p("log.jsonl") + "\ntest accuracy: " + accuracy(2) + "\n") !=
          std::string::npos);
  // on a terminal (script(1) gives it one) the bar is redrawn in place at every batch
  auto tty = run_command("script -qec " + std::string("'") + bin("train_resnet18") + " --device cpu --precision fp32 --limit 32 "
                         "--batch-size 16 --out " + p("t.pth") + "' /dev/null");
  INFO(tty.output);
  REQUIRE(tty.exit_code == 0);
  REQUIRE(tty.output.find("\repoch 1/1 [==========          ] 1/2 [") != std::string::npos);
  REQUIRE(tty.output.find("\repoch 1/1 [====================] 2/2 [") != std::string::npos);
}

TEST_CASE("--model-ema follows timm's ModelEmaV2 rule replayed in PyTorch on the same weights, step by step") {
  auto dir = testing::temp_dir("train_model_ema");
  auto p = [&](const std::string& f) { return (dir / f).string(); };
  run_python("import sys, torch\nsys.path.insert(0, '" + std::string(HT_SOURCE_DIR) + "/tests/py')\nimport fmnist\n"
             "torch.manual_seed(0)\ntorch.save(fmnist.resnet18_1ch().state_dict(), '" + p("init.pth") + "')\n",
             dir);
  // 4 batches, fp16 (the average is taken of the fp32 masters, which start from the init rounded to fp16): a
  // checkpoint after every optimizer step, 3 kept, so ck.3, ck.2, ck.1 and ck hold the model and its average after
  // steps 1 to 4
  auto r = run_command(bin("train_resnet18") + " --device cpu --limit 64 --batch-size 16 --model-ema 0.9 --init " +
                       p("init.pth") + " --checkpoint " + p("ck") + " --save-every 1 --keep 3 --out " + p("m.pth"));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  REQUIRE_THAT(r.output, Catch::Contains("(EMA: accuracy"));
  std::string cks = p("ck.3") + " " + p("ck.2") + " " + p("ck.1") + " " + p("ck");
  auto diffs = nlohmann::json::parse(run_python("import runpy, sys\nsys.argv = ['ema_check.py', '0.9', '" + p("init.pth") +
                                                "'] + '" + cks + " --half-init'.split()\nrunpy.run_path('" + HT_SOURCE_DIR +
                                                "/tests/py/ema_check.py', run_name='__main__')\n",
                                                dir));
  REQUIRE(diffs.size() == 4);
  for (size_t t = 0; t < diffs.size(); ++t) {
    INFO("after step " << t + 1 << ": largest difference " << diffs[t][0] << ", integer entries differing " << diffs[t][1]);
    CHECK(diffs[t][0].get<double>() == 0.0);  // bit for bit: the same fp32 operations in the same order
    CHECK(diffs[t][1].get<int>() == 0);
  }
  // <out>_ema.pth is the last average in fp16, as ModelEmaV2's module.half() would save it
  StateDict ema16 = load_state_dict_file(p("m_ema.pth")), ema32 = to_state_dict(load(p("ck"))["model_ema"]);
  REQUIRE(ema16.size() == ema32.size());
  for (size_t i = 0; i < ema16.size(); ++i) {
    const auto& [name, t] = ema16.tensors[i];
    if (!t.is_floating_point()) continue;
    REQUIRE(t.dtype() == kFloat16);
    testing::check_equal(t, ema32.tensors[i].second.to(kFloat16), name);
  }
}

TEST_CASE("evaluation's top-5 and loss equal torchvision's accuracy(topk=(1, 5)) and cross_entropy on the same logits") {
  auto dir = testing::temp_dir("train_top5");
  std::string file = (dir / "logits.pth").string();
  // references/classification/utils.py accuracy(): pred = output.topk(5, 1, True, True).indices; a hit when the
  // target is among them. Normal logits have no ties, where torch.topk's order is unspecified.
  auto want = nlohmann::json::parse(run_python(
      "import json, torch\ntorch.manual_seed(0)\n"
      "logits = torch.randn(500, 10) * 3\nlabels = torch.randint(0, 10, (500,))\n"
      "torch.save({'logits': logits, 'labels': labels}, '" + file + "')\n"
      "pred = logits.topk(5, 1, True, True).indices\n"
      "top5 = int(pred.eq(labels[:, None]).any(1).sum())\n"
      "loss = float(torch.nn.functional.cross_entropy(logits.double(), labels, reduction='sum'))\n"
      "print(json.dumps([top5, loss]))\n",
      dir));
  Value saved = load(file);
  examples::EvalSums s;
  examples::add_top5_and_loss(s, saved["logits"].to_tensor().to_vector<float>(), saved["labels"].to_tensor().to_vector<int64_t>());
  CHECK(s.top5 == want[0].get<double>());
  CHECK(s.top5 < 500);  // some misses: the check can fail
  CHECK(s.loss == Approx(want[1].get<double>()).epsilon(1e-12));
  // ties: the target tied for fifth place counts, sixth place does not
  examples::EvalSums t;
  examples::add_top5_and_loss(t, {5, 4, 3, 2, 1, 1, 0, 0, 0, 0}, {5});
  examples::add_top5_and_loss(t, {5, 4, 3, 2, 1.5f, 1, 0, 0, 0, 0}, {5});
  CHECK(t.top5 == 1);
}

TEST_CASE("an fp16 resume whose optimizer state has no master_param rebuilds the fp32 masters from 'model'") {
  // A checkpoint as PyTorch writes it has no master_param; halftorch's 'model' entry holds the fp32 masters, so
  // the same checkpoint without them must resume to the very same weights (not from their fp16 rounding).
  auto dir = testing::temp_dir("train_rebuild_masters");
  auto p = [&](const std::string& f) { return (dir / f).string(); };
  std::string common = bin("train_resnet18") + " --device cpu --limit 48 --batch-size 16 --seed 4";
  auto first = run_command(common + " --checkpoint " + p("ck") + " --out " + p("x.pth"));
  INFO(first.output);
  REQUIRE(first.exit_code == 0);
  run_python("import torch\nck = torch.load('" + p("ck") + "')\nassert ck['optimizer']['state']\n"
             "for s in ck['optimizer']['state'].values(): del s['master_param']\n"
             "torch.save(ck, '" + p("stripped") + "')\n",
             dir);
  auto a = run_command(common + " --epochs 2 --resume " + p("ck") + " --out " + p("a.pth"));
  auto b = run_command(common + " --epochs 2 --resume " + p("stripped") + " --out " + p("b.pth"));
  INFO(a.output << b.output);
  REQUIRE(a.exit_code == 0);
  REQUIRE(b.exit_code == 0);
  CHECK(b.output.find("has no 'master_param' in its optimizer state; fp32 masters rebuilt from 'model'") != std::string::npos);
  CHECK(a.output.find("master_param") == std::string::npos);
  require_same_tensors(p("a.pth"), p("b.pth"));
}
