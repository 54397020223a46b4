// ht::distributed on one machine: the sampler, the store and the autograd hooks in process; collectives, DDP,
// the distributed GradScaler and failure handling with real processes (build/bin/dist_worker ranks over Gloo on
// localhost); train_resnet18 under scripts/launch; NCCL on a GPU when there is one.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "distributed/ddp.h"
#include "distributed/sampler.h"
#include "distributed/store.h"
#include "io/serialize.h"
#include "nn/functional.h"
#include "nn/layers.h"
#include "tests/helpers.h"

using namespace ht;
using namespace ht::testing;
namespace dist = ht::distributed;
using std::chrono::milliseconds;

namespace {

std::string slurp(const std::filesystem::path& p) {
  std::stringstream ss;
  ss << std::ifstream(p).rdbuf();
  return ss.str();
}

struct RankResult {
  int code;            // exit code, or 128 + signal
  std::string output;  // stdout and stderr
};
struct WorldResult {
  std::vector<RankResult> ranks;
  double seconds;
  std::string summary() const {
    std::string s;
    for (size_t r = 0; r < ranks.size(); ++r)
      s += "--- rank " + std::to_string(r) + " (exit " + std::to_string(ranks[r].code) + ")\n" + ranks[r].output;
    return s;
  }
};

struct WorldOptions {
  std::vector<std::string> env;  // extra NAME=value entries; they override the launcher's
  std::vector<int> ranks;        // the ranks to start (default: all)
  double limit_s = 120;          // then every rank still running is killed, which fails the test
  int until_rank = -1;           // when >= 0: once this rank exits, the others are killed (not a failure)
};

// Starts ranks of `args` as separate processes with the variables a launcher sets, and waits for them.
WorldResult run_world(int world, const std::vector<std::string>& args, const std::filesystem::path& dir,
                      WorldOptions o = {}) {
  if (o.ranks.empty())
    for (int r = 0; r < world; ++r) o.ranks.push_back(r);
  int port = free_port();
  auto start = std::chrono::steady_clock::now();
  std::vector<pid_t> pids;
  for (int r : o.ranks) {
    std::map<std::string, std::string> env;
    for (char** e = environ; *e; ++e) {
      std::string kv = *e;
      env[kv.substr(0, kv.find('='))] = kv.substr(kv.find('=') + 1);
    }
    env["RANK"] = std::to_string(r);
    env["WORLD_SIZE"] = std::to_string(world);
    env["LOCAL_RANK"] = std::to_string(r);
    env["MASTER_ADDR"] = "127.0.0.1";
    env["MASTER_PORT"] = std::to_string(port);
    env["OMP_NUM_THREADS"] = "1";
    for (auto& kv : o.env) env[kv.substr(0, kv.find('='))] = kv.substr(kv.find('=') + 1);
    std::vector<std::string> flat;
    for (auto& [k, v] : env) flat.push_back(k + "=" + v);
    std::string out = (dir / ("rank" + std::to_string(r) + ".out")).string();
    std::vector<char*> argv, envp;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (auto& e : flat) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      FILE* f = std::freopen(out.c_str(), "w", stdout);
      if (f) ::dup2(::fileno(stdout), 2);
      ::execve(argv[0], argv.data(), envp.data());
      ::_exit(127);
    }
    pids.push_back(pid);
  }
  WorldResult res;
  res.ranks.resize(o.ranks.size(), {-1, ""});
  size_t left = pids.size();
  bool killed = false, stopped = false;
  while (left > 0) {
    for (size_t i = 0; i < pids.size(); ++i) {
      if (res.ranks[i].code != -1) continue;
      int status = 0;
      if (::waitpid(pids[i], &status, WNOHANG) == pids[i]) {
        res.ranks[i].code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        --left;
        if (o.ranks[i] == o.until_rank && !stopped) {
          res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          stopped = true;
          for (size_t j = 0; j < pids.size(); ++j)
            if (res.ranks[j].code == -1) ::kill(pids[j], SIGKILL);
        }
      }
    }
    double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (left > 0 && t > o.limit_s && !killed && !stopped) {
      for (size_t i = 0; i < pids.size(); ++i)
        if (res.ranks[i].code == -1) ::kill(pids[i], SIGKILL);
      killed = true;
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  if (!stopped) res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (size_t i = 0; i < o.ranks.size(); ++i)
    res.ranks[i].output = slurp(dir / ("rank" + std::to_string(o.ranks[i]) + ".out"));
  INFO(res.summary());
  CHECK_FALSE(killed);
  return res;
}

std::string worker() { return bin("dist_worker"); }

void require_all_ok(const WorldResult& r) {
  INFO(r.summary());
  for (const auto& rk : r.ranks) REQUIRE(rk.code == 0);
}

// Every floating tensor of a within `rel` relative (to the tensor's largest magnitude) of b's.
double max_relative_diff(const StateDict& a, const StateDict& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a.tensors[i].first == b.tensors[i].first);
    std::vector<double> x = a.tensors[i].second.to_vector<double>(), y = b.tensors[i].second.to_vector<double>();
    REQUIRE(x.size() == y.size());
    double scale = 0;
    for (double v : y) scale = std::max(scale, std::fabs(v));
    for (size_t k = 0; k < x.size(); ++k) worst = std::max(worst, std::fabs(x[k] - y[k]) / std::max(scale, 1e-12));
  }
  return worst;
}

}  // namespace

TEST_CASE("DistributedSampler: disjoint shards that cover the epoch, reshuffled per epoch", "[distributed]") {
  for (int world : {1, 2, 3, 4}) {
    for (int64_t n : {0, 1, 12, 13, 100}) {
      INFO("world " << world << ", n " << n);
      std::vector<int64_t> count(size_t(n), 0);
      int64_t total = 0;
      for (int r = 0; r < world; ++r) {
        dist::DistributedSampler s(n, world, r, true, 42);
        s.set_epoch(3);
        std::vector<int64_t> mine = s.indices();
        REQUIRE(int64_t(mine.size()) == s.num_samples());
        REQUIRE(s.num_samples() == (n + world - 1) / world);
        for (int64_t i : mine) {
          REQUIRE(i >= 0);
          REQUIRE(i < n);
          count[size_t(i)]++;
        }
        total += int64_t(mine.size());
      }
      // divisible: exactly once; otherwise PyTorch's padding repeats the head of the order (total - n) times
      int64_t extra = 0;
      for (int64_t c : count) {
        REQUIRE(c >= 1);
        extra += c - 1;
      }
      REQUIRE(extra == total - n);
      REQUIRE(extra < world);
      if (n % world == 0) REQUIRE(extra == 0);
    }
  }
  // drop_last cuts the tail instead: every index at most once
  for (int r = 0; r < 3; ++r) REQUIRE(dist::DistributedSampler(13, 3, r, true, 0, true).indices().size() == 4);
  // the union of rank r's positions is the single-process order (world 1 = the whole permutation)
  dist::DistributedSampler one(12, 1, 0, true, 5), a(12, 2, 0, true, 5), b(12, 2, 1, true, 5);
  std::vector<int64_t> whole = one.indices(), ra = a.indices(), rb = b.indices();
  REQUIRE(whole == dist::epoch_permutation(12, 5, 0));
  for (size_t i = 0; i < 6; ++i) {
    REQUIRE(ra[i] == whole[2 * i]);
    REQUIRE(rb[i] == whole[2 * i + 1]);
  }
  one.set_epoch(1);
  REQUIRE(one.indices() != whole);  // a new order each epoch
  std::vector<int64_t> sorted = one.indices();
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 12; ++i) REQUIRE(sorted[size_t(i)] == i);
  REQUIRE(dist::DistributedSampler(10, 2, 0, false).indices() == std::vector<int64_t>{0, 2, 4, 6, 8});
  REQUIRE_THROWS_WITH(dist::DistributedSampler(10, 2, 2), Catch::Contains("Invalid rank 2"));
}

TEST_CASE("TCPStore: set, get, add, waits with deadlines, clear errors", "[distributed]") {
  int port = free_port();
  dist::TCPStore server("127.0.0.1", port, true, milliseconds(2000));
  dist::TCPStore client("localhost", port, false, milliseconds(2000));
  server.set("a", {'x', 'y'});
  REQUIRE(client.get("a") == std::vector<char>{'x', 'y'});
  REQUIRE(client.add("n", 5) == 5);
  REQUIRE(server.add("n", -2) == 3);
  // a get blocks until another client sets the key
  std::thread later([&] {
    std::this_thread::sleep_for(milliseconds(200));
    server.set("late", {'!'});
  });
  REQUIRE(client.get("late") == std::vector<char>{'!'});
  later.join();
  REQUIRE(client.local_address() == "127.0.0.1");
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE_THROWS_WITH(client.wait({"never"}, milliseconds(300)),
                      Catch::Contains("timed out after 0.3 s waiting for key 'never'"));
  REQUIRE(std::chrono::steady_clock::now() - t0 < milliseconds(2000));
  // nobody serves this port: the client gives up at its deadline and names the address
  int closed = free_port();
  REQUIRE_THROWS_WITH(dist::TCPStore("127.0.0.1", closed, false, milliseconds(500)),
                      Catch::Contains("could not reach the rendezvous store at MASTER_ADDR=127.0.0.1 MASTER_PORT=" +
                                      std::to_string(closed)) &&
                          Catch::Contains("Connection refused"));
  REQUIRE_THROWS_WITH(dist::TCPStore("no-such-host.invalid", port, false, milliseconds(500)),
                      Catch::Contains("cannot resolve MASTER_ADDR 'no-such-host.invalid'"));
  REQUIRE_THROWS_WITH(dist::TCPStore("127.0.0.1", port, true, milliseconds(500)),
                      Catch::Contains("cannot serve the rendezvous store on MASTER_PORT " + std::to_string(port)) &&
                          Catch::Contains("in use"));
}

TEST_CASE("grad-ready hooks fire once per backward, after every contribution; callbacks at its end",
          "[distributed][autograd]") {
  Tensor w = ones({3}).requires_grad_();
  Tensor unused = ones({1}).requires_grad_();
  std::vector<std::vector<float>> seen;
  int callbacks = 0;
  int64_t id = autograd::register_grad_ready_hook(w, [&](const Tensor& leaf) {
    seen.push_back(leaf.grad().to_vector<float>());
    autograd::queue_callback([&] { ++callbacks; });
  });
  autograd::register_grad_ready_hook(unused, [&](const Tensor&) { FAIL("hook of a leaf outside the graph ran"); });
  // w reaches the loss by three paths: the hook must see the sum of all of them
  Tensor loss = add(sum(mul(w, 2.0)), sum(mul(w, w)));
  loss = add(loss, sum(w));
  loss.backward();
  REQUIRE(seen.size() == 1);
  REQUIRE(seen[0] == std::vector<float>{5, 5, 5});  // 2 + 2w + 1
  REQUIRE(callbacks == 1);
  sum(w).backward();  // a second pass: fires again, with the accumulated gradient
  REQUIRE(seen.size() == 2);
  REQUIRE(seen[1] == std::vector<float>{6, 6, 6});
  autograd::remove_grad_ready_hook(w, id);
  sum(w).backward();
  REQUIRE(seen.size() == 2);
  REQUIRE_THROWS_WITH(autograd::queue_callback([] {}), Catch::Contains("during a backward pass"));
}

TEST_CASE("collectives over Gloo with 2 and 3 processes", "[distributed]") {
  auto dir = temp_dir("dist-coll");
  for (int world : {2, 3}) {
    WorldResult r = run_world(world, {worker(), "collectives", "cpu"}, dir);
    require_all_ok(r);
    for (const auto& rk : r.ranks) REQUIRE_THAT(rk.output, Catch::Contains("collectives ok"));
  }
  // a world of one works without any peer
  require_all_ok(run_world(1, {worker(), "collectives", "cpu"}, dir));
}

TEST_CASE("DDP with 2 processes of batch B gives one process's parameters with batch 2B (fp32)", "[distributed]") {
  auto dir = temp_dir("dist-ddp");
  for (std::string optim : {"sgd", "adam"}) {
    INFO("optimizer " << optim);
    std::string one = (dir / (optim + "-one.pth")).string(), two = (dir / (optim + "-two.pth")).string(),
                three = (dir / (optim + "-three.pth")).string();
    CommandResult single = run_command(worker() + " ddp " + one + " 6 24 " + optim + " fp32");
    INFO(single.output);
    REQUIRE(single.exit_code == 0);
    WorldResult r2 = run_world(2, {worker(), "ddp", two, "6", "12", optim, "fp32"}, dir);
    require_all_ok(r2);
    REQUIRE_THAT(r2.ranks[0].output, Catch::Contains("buckets"));
    WorldResult r3 = run_world(3, {worker(), "ddp", three, "6", "8", optim, "fp32"}, dir);
    require_all_ok(r3);
    StateDict a = load_state_dict_file(one), b = load_state_dict_file(two), c = load_state_dict_file(three);
    double d2 = max_relative_diff(b, a), d3 = max_relative_diff(c, a);
    INFO("max relative difference: world 2 " << d2 << ", world 3 " << d3);
    CHECK(d2 < 1e-6);
    CHECK(d3 < 1e-6);
    // the parameters moved: the comparison is not between two copies of the initial weights
    StateDict init = load_state_dict_file(one);
    CommandResult zero = run_command(worker() + " ddp " + (dir / "init.pth").string() + " 0 24 " + optim + " fp32");
    REQUIRE(zero.exit_code == 0);
    CHECK(max_relative_diff(load_state_dict_file((dir / "init.pth").string()), a) > 1e-3);
  }
}

TEST_CASE("DDP in fp16 with GradScaler: gradients reduced in fp16 or fp32 track one process", "[distributed]") {
  auto dir = temp_dir("dist-ddp16");
  std::string one = (dir / "one.pth").string();
  CommandResult single = run_command(worker() + " ddp " + one + " 6 24 adam fp16");
  INFO(single.output);
  REQUIRE(single.exit_code == 0);
  StateDict a = load_state_dict_file(one);
  for (std::string reduce : {"grad", "fp32"}) {
    std::string two = (dir / ("two-" + reduce + ".pth")).string();
    require_all_ok(run_world(2, {worker(), "ddp", two, "6", "12", "adam", "fp16", reduce}, dir));
    double d = max_relative_diff(load_state_dict_file(two), a);
    INFO("reduce in " << reduce << ": max relative difference " << d);
    // fp16 weights: one fp16 rounding step (2^-11 relative) of the largest magnitude covers the rest
    CHECK(d < 2e-3);
  }
}

TEST_CASE("GradScaler with several processes: one rank's overflow skips the step on every rank", "[distributed]") {
  auto dir = temp_dir("dist-scaler");
  WorldResult r = run_world(2, {worker(), "scaler"}, dir);
  require_all_ok(r);
  for (const auto& rk : r.ranks) REQUIRE_THAT(rk.output, Catch::Contains("scaler ok"));
}

TEST_CASE("a rank that dies or hangs makes the others fail with an error, not hang", "[distributed]") {
  auto dir = temp_dir("dist-fail");
  SECTION("killed rank") {
    WorldResult r = run_world(3, {worker(), "fail", "die", "1", "5"}, dir, {.env = {"HT_DIST_TIMEOUT=60"}, .limit_s = 60});
    INFO(r.summary());
    REQUIRE(r.ranks[1].code == 128 + SIGKILL);
    for (int k : {0, 2}) {
      REQUIRE(r.ranks[size_t(k)].code == 3);
      REQUIRE_THAT(r.ranks[size_t(k)].output, Catch::Contains("all_reduce failed on rank " + std::to_string(k) +
                                                              " of 3 (gloo)"));
    }
    CHECK(r.seconds < 30);  // at once, not at the 60 s timeout
  }
  SECTION("hung rank") {
    // rank 1 stops answering after 5 all-reduces; it is killed once rank 0 has given up
    WorldResult r = run_world(2, {worker(), "fail", "hang", "1", "5"}, dir,
                              {.env = {"HT_DIST_TIMEOUT=3"}, .limit_s = 60, .until_rank = 0});
    INFO(r.summary());
    REQUIRE(r.ranks[0].code == 3);
    REQUIRE_THAT(r.ranks[0].output, Catch::Contains("all_reduce failed on rank 0 of 2 (gloo)"));
    CHECK(r.seconds >= 3);  // the deadline, not before
    CHECK(r.seconds < 30);
  }
}

TEST_CASE("rendezvous errors: missing ranks, wrong MASTER_ADDR or MASTER_PORT", "[distributed]") {
  auto dir = temp_dir("dist-rdzv");
  // rank 0 alone of a world of 2: it waits for rank 1 until the timeout, then says so
  WorldResult alone = run_world(2, {worker(), "init"}, dir, {.env = {"HT_DIST_TIMEOUT=2"}, .ranks = {0}});
  REQUIRE(alone.ranks[0].code == 1);
  REQUIRE_THAT(alone.ranks[0].output, Catch::Contains("timed out after 2 s waiting for key 'gloo/1'"));
  // rank 1 with nobody serving MASTER_PORT
  WorldResult refused = run_world(2, {worker(), "init"}, dir, {.env = {"HT_DIST_TIMEOUT=1"}, .ranks = {1}});
  REQUIRE(refused.ranks[0].code == 1);
  REQUIRE_THAT(refused.ranks[0].output, Catch::Contains("could not reach the rendezvous store at MASTER_ADDR=127.0.0.1"));
  // an address that does not resolve
  WorldResult bad = run_world(2, {worker(), "init"}, dir,
                              {.env = {"HT_DIST_TIMEOUT=1", "MASTER_ADDR=no-such-host.invalid"}, .ranks = {1}});
  REQUIRE(bad.ranks[0].code == 1);
  REQUIRE_THAT(bad.ranks[0].output, Catch::Contains("cannot resolve MASTER_ADDR 'no-such-host.invalid'"));
  // malformed variables
  WorldResult rank_out = run_world(2, {worker(), "init"}, dir, {.env = {"RANK=5"}, .ranks = {1}});
  REQUIRE(rank_out.ranks[0].code == 1);
  REQUIRE_THAT(rank_out.ranks[0].output, Catch::Contains("RANK must be in [0, WORLD_SIZE=2), got 5"));
}

TEST_CASE("train_resnet18 under scripts/launch: rank 0 alone prints and writes, files resume at another world size",
          "[distributed]") {
  auto dir = temp_dir("dist-train");
  std::string launch = std::string(HT_SOURCE_DIR) + "/scripts/launch";
  std::string out = (dir / "model_fp16.pth").string(), ck = (dir / "ck.pth").string(),
              log = (dir / "log.jsonl").string();
  // train_resnet18 on `n` processes (0: without the launcher) in dir; must succeed
  auto train = [&](int n, const std::string& args) {
    std::string cmd = "cd " + dir.string() + " && OMP_NUM_THREADS=1 " +
                      (n > 0 ? launch + " -n " + std::to_string(n) + " " : "") + bin("train_resnet18") +
                      " --limit 256 " + args;
    CommandResult res = run_command(cmd);
    INFO(cmd << "\n" << res.output);
    REQUIRE(res.exit_code == 0);
    return res;
  };
  CommandResult r = train(2, "--batch-size 32 --out " + out + " --checkpoint " + ck + " --log " + log);
  REQUIRE_THAT(r.output, Catch::Contains("2 processes (gloo), batch per process"));
  // one rank speaks: a single header, one line per epoch, one final accuracy
  auto count = [](const std::string& s, const std::string& what) {
    size_t n = 0;
    for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
    return n;
  };
  REQUIRE(count(r.output, "train_resnet18: ") == 1);
  REQUIRE(count(r.output, "test accuracy: ") == 1);
  std::ifstream lf(log);
  std::string line;
  int steps = 0, epochs = 0;
  while (std::getline(lf, line)) {
    steps += line.find("\"loss\"") != std::string::npos;
    epochs += line.find("test_accuracy") != std::string::npos;
  }
  REQUIRE(steps == 4);  // 256 images, 2 ranks x 32 per step
  REQUIRE(epochs == 1);
  double acc = std::stod(r.output.substr(r.output.rfind("test accuracy: ") + 15));
  // the printed accuracy is the saved model's (rank 0's weights and buffers), as one process evaluates it
  CommandResult ev = run_command(bin("eval_resnet18") + " --device cpu --precision fp16 --limit 256 --weights " + out);
  INFO(ev.output);
  REQUIRE(ev.exit_code == 0);
  REQUIRE(std::stod(ev.output.substr(ev.output.rfind("test accuracy: ") + 15)) == Approx(acc).margin(5e-5));
  // the same files as one process writes: PyTorch loads the fp16 model and the checkpoint
  std::string py = "import torch, torchvision\n"
                   "m = torchvision.models.resnet18(num_classes=10)\n"
                   "m.conv1 = torch.nn.Conv2d(1, 64, 7, 2, 3, bias=False)\n"
                   "sd = torch.load('" + out + "')\n"
                   "assert all(v.dtype == torch.float16 for v in sd.values() if v.is_floating_point())\n"
                   "m.half().load_state_dict(sd)\n"
                   "ck = torch.load('" + ck + "')\n"
                   "m.float().load_state_dict(ck['model'])\n"
                   "opt = torch.optim.Adam(m.parameters(), lr=1e-3)\n"
                   "opt.load_state_dict(ck['optimizer'])\n"
                   "assert ck['epoch'] == 1 and ck['global_step'] == 4, ck['global_step']\n"
                   "print('ok')\n";
  REQUIRE_THAT(run_python(py, dir), Catch::Contains("ok"));

  // resume the 2-process checkpoint with 1 process, then that one with 3 processes
  std::string ck2 = (dir / "ck2.pth").string();
  CommandResult one = train(0, "--batch-size 64 --epochs 2 --resume " + ck + " --checkpoint " + ck2 + " --out " + out +
                                   " --log " + log);
  REQUIRE_THAT(one.output, Catch::Contains("epoch 2: test accuracy"));
  REQUIRE(load(ck2)["global_step"].to_int() == 8);
  CommandResult three = train(3, "--batch-size 22 --epochs 3 --resume " + ck2 + " --checkpoint " + ck + " --out " + out);
  REQUIRE_THAT(three.output, Catch::Contains("3 processes (gloo)"));
  REQUIRE_THAT(three.output, Catch::Contains("epoch 3: test accuracy"));
  REQUIRE(load(ck)["global_step"].to_int() == 8 + 4);  // ceil(ceil(256 / 3) / 22) = 4 steps

  // a failing rank: the launcher names it, the survivor reports the lost peer, the exit code is non-zero
  CommandResult fail = run_command("HT_DIST_TIMEOUT=30 " + launch + " -n 2 --grace 20 " + worker() + " fail die 1 3");
  INFO(fail.output);
  REQUIRE(fail.exit_code != 0);
  REQUIRE_THAT(fail.output, Catch::Contains("launch: rank 1") && Catch::Contains("was killed by SIGKILL"));
  REQUIRE_THAT(fail.output, Catch::Contains("all_reduce failed on rank 0 of 2 (gloo)"));
}

TEST_CASE("NCCL: collectives and DDP on the GPUs there are", "[distributed][cuda]") {
  if (!cuda::is_available()) {
    if (require_cuda()) FAIL("HT_REQUIRE_CUDA=1 but no CUDA device is available");
    WARN("CUDA not available: skipping the NCCL cases");
    return;
  }
  auto dir = temp_dir("dist-nccl");
  // a world of one still runs every NCCL call; with more GPUs, one rank per GPU
  int world = std::min(cuda::device_count(), 4);
  for (int w : {1, world}) {
    WorldResult r = run_world(w, {worker(), "collectives", "cuda"}, dir);
    require_all_ok(r);
    if (world == 1) break;
  }
  // DDP over NCCL (fp32 and fp16 + GradScaler) against one process without DDP on the same GPU, batch w x B
  for (std::string prec : {"fp32", "fp16"}) {
    std::string one = (dir / (prec + "-one.pth")).string(), many = (dir / (prec + "-ddp.pth")).string();
    CommandResult single = run_command(worker() + " ddp " + one + " 6 " + std::to_string(8 * world) + " adam " +
                                       prec + " grad cuda");
    INFO(single.output);
    REQUIRE(single.exit_code == 0);
    require_all_ok(run_world(world, {worker(), "ddp", many, "6", "8", "adam", prec, "grad", "cuda"}, dir));
    double d = max_relative_diff(load_state_dict_file(many), load_state_dict_file(one));
    INFO(prec << ": max relative difference " << d);
    CHECK(d < (prec == "fp32" ? 1e-6 : 2e-3));
  }
}

TEST_CASE("DDP in one process: buckets in reverse order under their caps, exact gradients, unused parameters named",
          "[distributed]") {
  auto pg = std::make_shared<dist::ProcessGroup>(dist::InitOptions{.rank = 0, .world_size = 1, .master_port = 0});
  auto make = [] {
    manual_seed(3);
    return std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
        std::make_shared<nn::Linear>(64, 512), std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(512, 512),
        std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(512, 10)});
  };
  auto plain = make(), wrapped_model = make();
  // 0.5 MiB buckets (first 0.25 MiB): fc2.weight (1 MiB) stands alone, the small tensors share
  dist::DistributedDataParallel ddp(wrapped_model, pg, {.bucket_cap_mb = 0.5, .first_bucket_mb = 0.25});
  auto layout = ddp.bucket_layout();
  std::vector<size_t> flat;
  for (auto& b : layout) flat.insert(flat.end(), b.begin(), b.end());
  REQUIRE(flat == std::vector<size_t>{5, 4, 3, 2, 1, 0});  // reverse parameter order
  // first bucket: fc3.bias, fc3.weight (20 KiB), fc2.bias fill it until fc2.weight (1 MiB) would pass 0.25 MiB;
  // fc2.weight alone exceeds 0.5 MiB, so fc1's tensors open the third
  REQUIRE(layout == std::vector<std::vector<size_t>>{{5, 4, 3}, {2}, {1, 0}});

  Tensor x = randn({16, 64}), y = from_vector(std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5}, {16});
  for (int pass = 0; pass < 2; ++pass) {  // the second pass accumulates into the first's gradients
    nn::functional::cross_entropy((*plain)(x), y).backward();
    nn::functional::cross_entropy(ddp(x), y).backward();
  }
  auto a = plain->parameters(), b = wrapped_model->parameters();
  for (size_t i = 0; i < a.size(); ++i) check_equal(b[i].grad(), a[i].grad(), "parameter " + std::to_string(i));

  // a pass that throws half-way (here in a hook of the user's, after DDP's own) leaves no stale state behind
  bool thrown = false;
  int64_t hook = autograd::register_grad_ready_hook(b[4], [&](const Tensor&) {
    if (!thrown) {
      thrown = true;
      throw Error("boom");
    }
  });
  wrapped_model->zero_grad();
  plain->zero_grad();
  REQUIRE_THROWS_WITH(nn::functional::cross_entropy(ddp(x), y).backward(), "boom");
  wrapped_model->zero_grad();
  nn::functional::cross_entropy((*plain)(x), y).backward();
  nn::functional::cross_entropy(ddp(x), y).backward();
  for (size_t i = 0; i < a.size(); ++i) check_equal(b[i].grad(), a[i].grad(), "after the failed pass, " + std::to_string(i));
  autograd::remove_grad_ready_hook(b[4], hook);

  // a parameter outside the loss: the error names it
  auto branchy = std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{std::make_shared<nn::Linear>(4, 4)});
  auto extra = std::make_shared<nn::Linear>(4, 4);
  struct TwoHeads : nn::Module {
    std::shared_ptr<nn::Sequential> used;
    std::shared_ptr<nn::Linear> unused;
    TwoHeads(std::shared_ptr<nn::Sequential> u, std::shared_ptr<nn::Linear> n) {
      used = register_module("used", u);
      unused = register_module("unused", n);
    }
    Tensor forward(const Tensor& x) override { return (*used)(x); }
    std::string type_name() const override { return "TwoHeads"; }
  };
  auto two = std::make_shared<TwoHeads>(branchy, extra);
  dist::DistributedDataParallel ddp2(two, pg);
  REQUIRE_THROWS_WITH(sum(ddp2(ones({2, 4}))).backward(),
                      Catch::Contains("received no gradient in this backward: [unused.weight, unused.bias]"));
}

TEST_CASE("two machines (network namespaces, no shared loopback): collectives, and an address nobody answers",
          "[distributed]") {
  auto dir = temp_dir("dist-netns");
  CommandResult r = run_command("TMPDIR_OUT=" + dir.string() + " " + std::string(HT_SOURCE_DIR) +
                                "/tests/netns_two_hosts.sh " + worker() + " collectives cpu");
  if (r.exit_code == 77) {
    WARN("cannot create network namespaces here (needs root and iproute2): skipping the two-machine case");
    return;
  }
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  REQUIRE_THAT(r.output, Catch::Contains("rank 0 of 2: collectives ok") && Catch::Contains("rank 1 of 2: collectives ok"));
  REQUIRE_THAT(r.output, Catch::Contains("could not reach the rendezvous store at MASTER_ADDR=") &&
                             Catch::Contains("within 2 s"));
}
