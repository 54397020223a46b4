// Shared by the optimizer tests: the Python reference scripts (real torch at test time) and error measures.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "io/serialize.h"
#include "tests/helpers.h"

namespace optim_test {

// Runs tests/py/<script> with `args` under `python` (default: Debian's python3, torch 1.13); fails the test with
// its output on error.
inline void run_script(const std::string& script, const std::string& args, const std::filesystem::path& dir,
                       const std::string& python = HT_PYTHON) {
  auto log = dir / (script + ".log");
  std::string cmd = python + " " + HT_SOURCE_DIR + "/tests/py/" + script + " " + args + " > " +
                    log.string() + " 2>&1";
  int rc = std::system(cmd.c_str());
  std::stringstream ss;
  ss << std::ifstream(log).rdbuf();
  INFO("python output:\n" << ss.str());
  REQUIRE(rc == 0);
}

// max_i |got_i - want_i| / max(|want_i|, floor): the relative error, with `floor` keeping elements that
// happen to sit near zero from dividing by almost nothing.
inline double max_rel_error(const ht::Tensor& got, const ht::Tensor& want, double floor = 1e-2) {
  REQUIRE(got.sizes() == want.sizes());
  std::vector<double> g = got.to_vector<double>(), w = want.to_vector<double>();
  double worst = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    double e = std::fabs(g[i] - w[i]) / std::max(std::fabs(w[i]), floor);
    if (std::isnan(e)) return INFINITY;
    worst = std::max(worst, e);
  }
  return worst;
}

// Runs f and checks it throws ht::Error with `text` in its message.
template <class F>
void check_throws(F&& f, const std::string& text) {
  try {
    f();
  } catch (const ht::Error& e) {
    INFO(e.what());
    CHECK(std::string(e.what()).find(text) != std::string::npos);
    return;
  }
  FAIL("no error; expected one containing: " << text);
}

}  // namespace optim_test
