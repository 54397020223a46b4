// train_resnet18's checkpoint files: each is written whole to a temporary file in the same directory, flushed
// to disk and renamed over the target, so the target is at every moment either the previous complete
// checkpoint or the new complete one (rename(2) is atomic within a file system). A process killed with
// SIGKILL at any point leaves at worst a stale `<path>.tmp.<pid>`, which --resume never reads.
// --keep K rotates the previous ones to <path>.1 (newest) ... <path>.K by hard links and renames, so <path>
// itself never disappears between two writes.
#pragma once
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include <halftorch/halftorch.h>

namespace examples {

// Fault injection for the restart tests: HT_TRAIN_KILL_AT="<where>:<n>" makes the n-th pass (1-based) through
// <where> ("step": a batch's gradients computed, before the optimizer step; "save": a checkpoint written to its
// temporary file, which is then cut to half its size) end the process with SIGKILL. Unset, it costs one getenv.
inline bool kill_point(const char* where) {
  static const char* spec = std::getenv("HT_TRAIN_KILL_AT");
  if (!spec) return false;
  std::string s = spec, w = where;
  if (s.rfind(w + ":", 0) != 0) return false;
  static int64_t passes = 0;  // one <where> per process: the spec names only one
  return ++passes == std::atoll(s.c_str() + w.size() + 1);
}
inline void die_now() { ::kill(::getpid(), SIGKILL); }

inline void fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// Writes `value` to `path` atomically, first moving the previous `path` to `path`.1 (and .1 to .2, ...) when
// keep > 0; the oldest beyond `keep` is removed.
inline void save_checkpoint_atomically(const ht::Value& value, const std::string& path, int64_t keep) {
  namespace fs = std::filesystem;
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  ht::save(value, tmp);
  if (kill_point("save")) {  // a torn temporary file, as a kill in the middle of the write leaves
    std::filesystem::resize_file(tmp, std::filesystem::file_size(tmp) / 2);
    die_now();
  }
  fsync_path(tmp);
  if (keep > 0 && fs::exists(path)) {
    auto numbered = [&](int64_t i) { return path + "." + std::to_string(i); };
    std::error_code ec;
    fs::remove(numbered(keep), ec);
    for (int64_t i = keep - 1; i >= 1; --i)
      if (fs::exists(numbered(i))) fs::rename(numbered(i), numbered(i + 1));
    const std::string link_tmp = numbered(1) + ".tmp." + std::to_string(::getpid());
    fs::remove(link_tmp, ec);
    fs::create_hard_link(path, link_tmp);  // <path> stays in place; .1 appears whole
    fs::rename(link_tmp, numbered(1));
  }
  fs::rename(tmp, path);
  fsync_path(fs::path(path).parent_path().empty() ? "." : fs::path(path).parent_path().string());
}

// Drops the lines of a --log JSONL file past a checkpoint: step lines after `global_step`, epoch lines after
// `epochs_done` (what a killed run logged between its last checkpoint and its death).
inline void truncate_log_after(const std::string& path, int64_t epochs_done, int64_t global_step) {
  std::ifstream in(path);
  if (!in) return;
  std::string line, kept;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) continue;  // a line cut short by the kill
    bool keep = j.contains("step") ? j["step"].get<int64_t>() <= global_step
                                   : !j.contains("epoch") || j["epoch"].get<int64_t>() <= epochs_done;
    if (keep) kept += line + "\n";
  }
  in.close();
  std::ofstream(path, std::ios::trunc) << kept;
}

}  // namespace examples
