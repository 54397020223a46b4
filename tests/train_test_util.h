// Shared by the train_resnet18 tests: reading its --log JSONL file.
#pragma once
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ht::testing {

inline std::vector<nlohmann::json> read_log(const std::filesystem::path& p) {
  std::vector<nlohmann::json> rows;
  std::ifstream f(p);
  std::string line;
  while (std::getline(f, line))
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

}  // namespace ht::testing
