// Helpers for the io tests: temporary folders, running the Python checkers and the halftorch tool, and the
// PyTorch-written fixtures (made once per test binary by tests/py/io_make.py).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>

#include "tests/helpers.h"

namespace ht_test {

namespace fs = std::filesystem;

// A fresh folder under the system temp dir, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "ht_io_XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

struct RunResult {
  int rc = -1;
  std::string out;  // stdout and stderr together
};

inline std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

inline RunResult run(const std::string& cmd) {
  ht::testing::CommandResult r = ht::testing::run_command(cmd);
  return {r.exit_code, r.output};
}

// Runs tests/py/<script> with Debian's python3 and torch.
inline RunResult python(const std::string& script, const std::string& args) {
  return run(std::string(HT_PYTHON) + " " + quote(std::string(HT_SOURCE_DIR) + "/tests/py/" + script) + " " + args);
}

// The folder of PyTorch-written fixtures, made on first use and removed when the binary exits.
inline const std::string& fixtures() {
  static TempDir dir;
  static bool made = false;
  if (!made) {
    RunResult r = python("io_make.py", quote(dir.path().string()));
    INFO(r.out);
    REQUIRE(r.rc == 0);
    made = true;
  }
  static std::string path = dir.path().string();
  return path;
}

inline std::string fixture(const std::string& name) { return fixtures() + "/" + name; }

// Writes raw bytes to a file (hand-made broken or minimal inputs).
inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}

}  // namespace ht_test
