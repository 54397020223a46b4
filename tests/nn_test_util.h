// Helpers for the nn tests: PyTorch-made fixtures (tests/py/nn_*.py run once per test binary into a temp
// folder), and a closeness check by error relative to the reference's largest magnitude.
#pragma once
#include <algorithm>
#include <cmath>
#include <map>
#include <string>

#include "helpers.h"
#include "io/serialize.h"

namespace ht::testing {

// Runs tests/py/<script> ARGS with the real interpreter; returns its exit code and output (stdout and stderr).
inline std::pair<int, std::string> run_script(const std::string& script, const std::string& args,
                                              const std::filesystem::path& log_dir) {
  auto log = log_dir / (script + ".log");
  std::string cmd = std::string(HT_PYTHON) + " " + HT_SOURCE_DIR + "/tests/py/" + script + " " + args + " > " +
                    log.string() + " 2>&1";
  int rc = std::system(cmd.c_str());
  std::stringstream out;
  out << std::ifstream(log).rdbuf();
  return {rc, out.str()};
}

// Runs tests/py/<script> with a fresh folder and `args`; returns the folder (made once per script and args).
inline std::filesystem::path nn_fixture(const std::string& script, const std::string& args = "") {
  static std::map<std::string, std::filesystem::path> made;
  auto it = made.find(script + args);
  if (it != made.end()) return it->second;
  auto dir = temp_dir("nn-" + std::to_string(made.size()));
  auto [rc, out] = run_script(script, dir.string() + " " + args, dir);
  INFO("python " << script << " output:\n" << out);
  REQUIRE(rc == 0);
  made[script + args] = dir;
  return dir;
}

// The layer fixtures of tests/py/nn_layers.py (conv, batch norm, pooling, linear, loss configurations).
inline const StateDict& layers() {
  static StateDict sd = load_state_dict_file((nn_fixture("nn_layers.py") / "layers.pth").string());
  return sd;
}
inline bool has(const std::string& key) { return layers().find(key) != nullptr; }
inline Tensor fx(const std::string& key, Device dev = kCPU) {
  const Tensor* t = layers().find(key);
  INFO("fixture key " << key);
  REQUIRE(t != nullptr);
  return t->to(dev);
}
inline std::vector<int64_t> cfg(const std::string& c) { return fx(c + ".cfg").to_vector<int64_t>(); }

// max |got - want| / max |want| <= tol; on failure names the worst element.
inline void check_rel(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
  INFO(what);
  REQUIRE(got.defined());
  REQUIRE(got.sizes() == want.sizes());
  std::vector<double> g = got.to_vector<double>(), w = want.to_vector<double>();
  double scale = 0, worst = -1;
  size_t wi = 0;
  for (double v : w) scale = std::max(scale, std::fabs(v));
  for (size_t i = 0; i < g.size(); ++i) {
    double e = std::fabs(g[i] - w[i]);
    if (std::isnan(e)) e = INFINITY;
    if (e > worst) {
      worst = e;
      wi = i;
    }
  }
  double rel = g.empty() ? 0 : worst / std::max(scale, 1e-30);
  if (!(rel <= tol) && !g.empty())
    FAIL("relative error " << rel << " > " << tol << "; worst element at flat index " << wi << ": got " << g[wi]
                           << ", want " << w[wi] << " (reference max |x| " << scale << ")");
  SUCCEED();
}

}  // namespace ht::testing
