// Shared test helpers: the device list (CUDA cases skipped visibly without a GPU), closeness checks that print
// the worst element, a finite-difference gradient check, and a runner for Python (real PyTorch) snippets.
#pragma once
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sstream>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/random.h"
#include "core/tensor.h"

namespace ht::testing {

inline bool require_cuda() {
  const char* v = std::getenv("HT_REQUIRE_CUDA");
  return v && std::string(v) == "1";
}

// CPU always; CUDA when a GPU is present. Without one, says so once per binary (and fails if HT_REQUIRE_CUDA=1).
inline std::vector<Device> test_devices() {
  std::vector<Device> d{kCPU};
  if (cuda::is_available()) {
    d.push_back(kCUDA);
  } else {
    // every case fails under HT_REQUIRE_CUDA=1 (each would skip its CUDA half); the warning comes once
    if (require_cuda()) FAIL("HT_REQUIRE_CUDA=1 but no CUDA device is available");
    static bool said = false;
    if (!said) {
      said = true;
      WARN("CUDA not available: skipping the CUDA cases of this binary");
    }
  }
  return d;
}

// Tolerance of a dtype for results computed in opmath then rounded (relative, with the same absolute floor).
inline double tol_for(DType t) {
  switch (t) {
    case kFloat64: return 1e-12;
    case kFloat32: return 2e-6;
    case kFloat16: return 2e-3;
    case kBFloat16: return 1.6e-2;
    default: return 0;
  }
}

// |got - want| <= atol + rtol * |want| elementwise (NaN matches NaN); on failure names the worst element.
inline void check_close(const Tensor& got, const Tensor& want, double atol, double rtol, const std::string& what = "") {
  INFO(what);
  REQUIRE(got.sizes() == want.sizes());
  std::vector<double> g = got.to_vector<double>(), w = want.to_vector<double>();
  double worst = -1;
  size_t wi = 0;
  bool ok = true;
  for (size_t i = 0; i < g.size(); ++i) {
    if ((std::isnan(w[i]) && std::isnan(g[i])) || (std::isinf(w[i]) && g[i] == w[i])) continue;
    double err = std::fabs(g[i] - w[i]);
    double lim = atol + rtol * std::fabs(w[i]);
    if (std::isnan(err) || err > lim || (std::isinf(w[i]) && g[i] != w[i])) ok = false;
    double excess = std::isnan(err) ? 1e300 : err - lim;
    if (excess > worst || worst < 0) {
      worst = excess;
      wi = i;
    }
  }
  if (!ok) {
    FAIL("worst element at flat index " << wi << ": got " << g[wi] << ", want " << w[wi] << " (atol " << atol
                                        << ", rtol " << rtol << ")");
  }
  SUCCEED();
}

inline void check_equal(const Tensor& got, const Tensor& want, const std::string& what = "") {
  check_close(got, want, 0, 0, what);
}

// Compares autograd's gradients of sum(f(inputs) * w) with central differences, all in float64 on CPU.
inline void check_gradients(const std::function<Tensor(const std::vector<Tensor>&)>& f, std::vector<Tensor> inputs,
                            double eps = 1e-6, double tol = 1e-6) {
  for (auto& t : inputs) {
    REQUIRE(t.dtype() == kFloat64);
    t = t.detach().clone();  // fresh leaves: gradients of earlier checks must not accumulate in
    t.set_requires_grad(true);
  }
  Tensor y0 = f(inputs);
  Generator gen(1234);
  Tensor w = randn(y0.sizes(), gen, {.dtype = kFloat64, .device = y0.device()});
  Tensor loss = sum(mul(y0, w));
  loss.backward();
  NoGradGuard ng;
  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor x = inputs[k];
    Tensor analytic = x.grad();
    REQUIRE(analytic.defined());
    std::vector<double> num(size_t(x.numel()));
    std::vector<double> base = x.to_vector<double>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      auto eval = [&](double delta) {
        std::vector<double> v = base;
        v[size_t(i)] += delta;
        std::vector<Tensor> in = inputs;
        in[k] = from_vector(v, x.sizes(), x.device());
        return sum(mul(f(in), w)).item<double>();
      };
      num[size_t(i)] = (eval(eps) - eval(-eps)) / (2 * eps);
    }
    check_close(analytic, from_vector(num, x.sizes()), tol, tol, "gradient of input " + std::to_string(k));
  }
}

// A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it), for a store or a launcher to listen on.
inline int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// A folder for one test's files, removed with everything in it when the test binary exits (set
// HT_KEEP_TEST_DIRS=1 to keep them for a look): training tests leave hundreds of MB of checkpoints each.
inline std::filesystem::path temp_dir(const std::string& name) {
  struct RemovedAtExit {
    std::vector<std::filesystem::path> paths;
    ~RemovedAtExit() {
      if (const char* keep = std::getenv("HT_KEEP_TEST_DIRS"); keep && std::string(keep) == "1") return;
      std::error_code ec;
      for (const auto& p : paths) std::filesystem::remove_all(p, ec);
    }
  };
  static RemovedAtExit made;
  auto p = std::filesystem::temp_directory_path() / ("halftorch-test-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::create_directories(p);
  made.paths.push_back(p);
  return p;
}

// Runs a Python snippet with `python` (default: Debian's python3 with torch 1.13); returns its stdout; fails the
// test on error.
inline std::string run_python(const std::string& code, const std::filesystem::path& dir,
                              const std::string& python = HT_PYTHON) {
  auto script = dir / "snippet.py";
  auto out = dir / "snippet.out";
  std::ofstream(script) << code;
  std::string cmd = python + " " + script.string() + " > " + out.string() + " 2>&1";
  int rc = std::system(cmd.c_str());
  std::stringstream ss;
  ss << std::ifstream(out).rdbuf();
  INFO("python output:\n" << ss.str());
  REQUIRE(rc == 0);
  return ss.str();
}

// The interpreter of the PyPI torch 2.x venv that scripts/setup creates with scripts/torch-venv, or "" (with a
// visible warning) when it is missing: the tests that need torch 2.x features then say they were skipped.
inline std::string torch2_python() {
  std::string py = HT_TORCH2_PYTHON;
  if (std::filesystem::exists(py)) return py;
  WARN("SKIPPED: torch 2.x venv missing (" << py << "); run scripts/torch-venv");
  return "";
}

struct CommandResult {
  int exit_code;
  std::string output;  // stdout and stderr together
};

// Runs a shell command, capturing its output and exit code (for the command-line programs' tests).
inline CommandResult run_command(const std::string& cmd) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// A program built into build/bin.
inline std::string bin(const std::string& name) { return std::string(HT_BINARY_DIR) + "/bin/" + name; }

}  // namespace ht::testing
