// The `halftorch` command-line tool: inspect, convert and diff checkpoints (.pth, legacy .pth, .safetensors).
// Errors go to stderr as "error: ...", exit 1; bad usage exits 2.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/convert.h"
#include "io/file.h"
#include "io/serialize.h"

namespace {

using ht::Value;

constexpr const char* kUsage =
    "usage: halftorch <command> [options]\n"
    "\n"
    "commands:\n"
    "  inspect [--json] FILE                       list tensors (name, dtype, shape, size) and other values\n"
    "  convert IN OUT [--dtype float16|bfloat16|float32]\n"
    "                                              rewrite a checkpoint; OUT's extension picks the format\n"
    "  diff A B [--atol X]                         compare two checkpoints; exit 0 when equal within atol\n"
    "\n"
    "Run 'halftorch <command> --help' for details.\n";

constexpr const char* kInspectHelp =
    "usage: halftorch inspect [--json] FILE\n"
    "\n"
    "Prints the file's format, a table of its tensors (name, dtype, shape, size) in file order, and its\n"
    "non-tensor values. Names are state_dict keys, or for nested checkpoints the keys and list indices from\n"
    "the root joined with '/' (model/conv1.weight, optimizer/state/0/exp_avg).\n"
    "  --json   one JSON object: {\"format\": ..., \"tensors\": {NAME: {\"dtype\": ..., \"shape\": [...]}}}\n";

constexpr const char* kConvertHelp =
    "usage: halftorch convert IN OUT [--dtype float16|bfloat16|float32]\n"
    "\n"
    "Reads IN (.pth zip or legacy, .safetensors) and writes OUT as a PyTorch zip checkpoint (.pth, .pt, .bin)\n"
    "or safetensors (.safetensors). Structure, order and non-tensor values are kept.\n"
    "  --dtype D   cast floating-point tensors to D, rounding as PyTorch's .half()/.bfloat16() do; integer\n"
    "              and bool tensors are untouched. Values that overflow to inf are reported on stderr.\n";

constexpr const char* kDiffHelp =
    "usage: halftorch diff A B [--atol X]\n"
    "\n"
    "Compares two checkpoints: names missing from B or extra in B, dtype and shape differences, and the\n"
    "largest absolute difference per tensor. Differing tensors are listed by name on stdout.\n"
    "Exit status: 0 when equal within atol (default 0), 1 when they differ.\n";

struct UsageError {
  std::string message;
};

// Splits argv into positional arguments and --options (with values where `takes_value` says so).
struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> options;
};

Args parse(int argc, char** argv, int first, const std::vector<std::string>& flags,
           const std::vector<std::string>& valued) {
  Args a;
  for (int i = first; i < argc; ++i) {
    std::string s = argv[i];
    if (s.size() > 1 && s[0] == '-') {
      std::string name = s, value;
      if (auto eq = s.find('='); eq != std::string::npos) {
        name = s.substr(0, eq);
        value = s.substr(eq + 1);
      }
      bool is_flag = std::find(flags.begin(), flags.end(), name) != flags.end();
      bool is_valued = std::find(valued.begin(), valued.end(), name) != valued.end();
      if (!is_flag && !is_valued) throw UsageError{"unknown option " + name};
      if (is_valued && value.empty()) {
        if (i + 1 >= argc) throw UsageError{name + " needs a value"};
        value = argv[++i];
      }
      a.options[name] = value;
    } else {
      a.positional.push_back(s);
    }
  }
  return a;
}

std::string human_size(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = double(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

// Non-tensor leaves (and empty containers) with their '/'-joined paths, in file order.
void collect_values(const Value& v, const std::string& path, std::vector<std::pair<std::string, Value>>& out) {
  auto join = [&](const std::string& k) { return path.empty() ? k : path + "/" + k; };
  if (v.is_tensor()) return;
  if (v.is_dict() && !v.to_dict().empty()) {
    for (const auto& [k, item] : v.to_dict().items()) collect_values(item, join(ht::key_str(k)), out);
  } else if ((v.is_list() || v.is_tuple()) && !v.items().empty()) {
    bool has_tensor = false;
    for (const Value& x : v.items()) has_tensor |= x.is_tensor() || x.is_container();
    if (!has_tensor) {  // a list of scalars reads best on one line
      out.emplace_back(path, v);
      return;
    }
    for (size_t i = 0; i < v.items().size(); ++i) collect_values(v.items()[i], join(std::to_string(i)), out);
  } else {
    out.emplace_back(path, v);
  }
}

int cmd_inspect(int argc, char** argv) {
  Args a = parse(argc, argv, 2, {"--json", "--help", "-h"}, {});
  if (a.options.count("--help") || a.options.count("-h")) return std::cout << kInspectHelp, 0;
  if (a.positional.size() != 1) throw UsageError{"inspect takes one FILE"};
  ht::io::Format format;
  Value v = ht::io::load(a.positional[0], &format);
  std::vector<std::pair<std::string, ht::Tensor>> tensors;
  ht::for_each_tensor(v, [&](const std::string& p, const ht::Tensor& t) { tensors.emplace_back(p, t); });
  if (v.is_tensor()) tensors.back().first = "<tensor>";

  if (a.options.count("--json")) {
    nlohmann::ordered_json j;
    j["format"] = ht::io::format_name(format);
    j["tensors"] = nlohmann::ordered_json::object();
    for (const auto& [name, t] : tensors)  // JSON strings must be UTF-8: bytes that are not are written \xNN
      j["tensors"][ht::escape_bytes(name)] = {{"dtype", ht::dtype_name(t.dtype())}, {"shape", t.sizes()}};
    std::cout << j.dump() << "\n";
    return 0;
  }
  size_t width = 4;
  for (const auto& [name, t] : tensors) width = std::max(width, ht::escape_bytes(name).size());
  std::printf("format: %s\n", ht::io::format_name(format));
  std::printf("%-*s  %-9s  %-20s  %s\n", int(width), "name", "dtype", "shape", "size");
  uint64_t total = 0, elements = 0;
  for (const auto& [name, t] : tensors) {
    std::printf("%-*s  %-9s  %-20s  %s\n", int(width), ht::escape_bytes(name).c_str(), ht::dtype_name(t.dtype()),
                ht::shape_str(t.sizes()).c_str(), human_size(t.nbytes()).c_str());
    total += t.nbytes();
    elements += uint64_t(t.numel());
  }
  std::printf("%zu tensors, %llu elements, %s\n", tensors.size(), (unsigned long long)elements,
              human_size(total).c_str());
  std::vector<std::pair<std::string, Value>> values;
  if (!v.is_tensor()) collect_values(v, "", values);
  if (!values.empty()) {
    std::printf("\nvalues:\n");
    for (const auto& [path, x] : values)
      std::printf("  %s = %s\n", ht::escape_bytes(path).c_str(), ht::escape_bytes(ht::io::repr(x)).c_str());
  }
  return 0;
}

int cmd_convert(int argc, char** argv) {
  Args a = parse(argc, argv, 2, {"--help", "-h"}, {"--dtype"});
  if (a.options.count("--help") || a.options.count("-h")) return std::cout << kConvertHelp, 0;
  if (a.positional.size() != 2) throw UsageError{"convert takes IN and OUT"};
  const std::string &in = a.positional[0], &out = a.positional[1];
  std::string ext = ht::io::extension_of(out);
  if (ext != ".pth" && ext != ".pt" && ext != ".bin" && ext != ".safetensors")
    throw UsageError{"OUT must end in .pth, .pt, .bin or .safetensors, got '" + out + "'"};
  Value v = ht::load(in);
  if (a.options.count("--dtype")) {
    const std::string& name = a.options["--dtype"];
    if (name != "float16" && name != "bfloat16" && name != "float32")
      throw UsageError{"--dtype must be float16, bfloat16 or float32, got '" + name + "'"};
    std::vector<std::pair<std::string, int64_t>> overflows;
    v = ht::io::cast_floating(v, ht::dtype_from_name(name), &overflows);
    for (const auto& [path, n] : overflows)
      std::fprintf(stderr, "warning: %s: %lld values overflow to inf in %s\n", ht::escape_bytes(path).c_str(),
                   (long long)n, ht::escape_bytes(name).c_str());
  }
  ht::save(v, out);
  return 0;
}

int cmd_diff(int argc, char** argv) {
  Args a = parse(argc, argv, 2, {"--help", "-h"}, {"--atol"});
  if (a.options.count("--help") || a.options.count("-h")) return std::cout << kDiffHelp, 0;
  if (a.positional.size() != 2) throw UsageError{"diff takes two files"};
  double atol = 0;
  if (a.options.count("--atol")) {
    const std::string& s = a.options["--atol"];
    char* end = nullptr;
    atol = std::strtod(s.c_str(), &end);
    if (s.empty() || *end != '\0' || !(atol >= 0)) throw UsageError{"--atol must be a number >= 0, got '" + s + "'"};
  }
  Value va = ht::load(a.positional[0]), vb = ht::load(a.positional[1]);
  std::vector<std::pair<std::string, ht::Tensor>> ta, tb;
  ht::for_each_tensor(va, [&](const std::string& p, const ht::Tensor& t) { ta.emplace_back(p, t); });
  ht::for_each_tensor(vb, [&](const std::string& p, const ht::Tensor& t) { tb.emplace_back(p, t); });
  std::map<std::string, ht::Tensor> mb(tb.begin(), tb.end());
  std::map<std::string, bool> in_a;
  bool differ = false;
  for (const auto& [name, t] : ta) {
    in_a[name] = true;
    auto it = mb.find(name);
    if (it == mb.end()) {
      std::printf("%s: missing in B\n", ht::escape_bytes(name).c_str());
      differ = true;
    } else if (it->second.dtype() != t.dtype() || it->second.sizes() != t.sizes()) {
      std::printf("%s: %s%s vs %s%s\n", ht::escape_bytes(name).c_str(), ht::dtype_name(t.dtype()),
                  ht::shape_str(t.sizes()).c_str(),
                  ht::dtype_name(it->second.dtype()), ht::shape_str(it->second.sizes()).c_str());
      differ = true;
    } else {
      double d = ht::io::max_abs_diff(t, it->second);
      if (d > atol) {
        std::printf("%s: max abs diff %g\n", ht::escape_bytes(name).c_str(), d);
        differ = true;
      }
    }
  }
  for (const auto& [name, t] : tb) {
    if (!in_a.count(name)) {
      std::printf("%s: extra in B\n", ht::escape_bytes(name).c_str());
      differ = true;
    }
  }
  // Non-tensor values (epoch, hyper-parameters) are compared by their text.
  std::vector<std::pair<std::string, Value>> xa, xb;
  collect_values(va, "", xa);
  collect_values(vb, "", xb);
  std::map<std::string, std::string> rb;
  for (const auto& [p, x] : xb) rb[p] = ht::io::repr(x);
  for (const auto& [p, x] : xa) {
    auto it = rb.find(p);
    std::string ra = ht::io::repr(x);
    if (it == rb.end()) {
      std::printf("%s: value missing in B\n", ht::escape_bytes(p).c_str());
      differ = true;
    } else if (it->second != ra) {
      std::printf("%s: %s vs %s\n", ht::escape_bytes(p).c_str(), ht::escape_bytes(ra).c_str(),
                  ht::escape_bytes(it->second).c_str());
      differ = true;
    }
    if (it != rb.end()) rb.erase(it);
  }
  for (const auto& [p, r] : rb) {
    std::printf("%s: value extra in B\n", ht::escape_bytes(p).c_str());
    differ = true;
  }
  if (!differ) std::printf("equal\n");
  return differ ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string cmd = argc > 1 ? argv[1] : "";
  try {
    if (cmd == "--help" || cmd == "-h" || cmd == "help") return std::cout << kUsage, 0;
    if (cmd == "inspect") return cmd_inspect(argc, argv);
    if (cmd == "convert") return cmd_convert(argc, argv);
    if (cmd == "diff") return cmd_diff(argc, argv);
    throw UsageError{cmd.empty() ? "no command given" : "unknown command '" + cmd + "'"};
  } catch (const UsageError& e) {
    std::fprintf(stderr, "error: %s\n\n%s", e.message.c_str(),
                 cmd == "inspect" ? kInspectHelp : cmd == "convert" ? kConvertHelp : cmd == "diff" ? kDiffHelp : kUsage);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
