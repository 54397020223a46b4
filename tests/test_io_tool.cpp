// The `halftorch` tool (build/bin/halftorch): inspect, convert and diff on PyTorch-written checkpoints, checked
// with PyTorch where the result is a file.
#include <nlohmann/json.hpp>

#include "io/file.h"
#include "io/serialize.h"
#include "test_io_util.h"

using namespace ht_test;
using Catch::Matchers::Contains;

namespace {
RunResult tool(const std::string& args) { return run(quote(std::string(HT_BINARY_DIR) + "/bin/halftorch") + " " + args); }
}  // namespace

TEST_CASE("tool: inspect --json lists tensors in file order with nested paths", "[io][tool]") {
  RunResult r = tool("inspect --json " + quote(fixture("checkpoint.pt")));
  REQUIRE(r.rc == 0);
  auto j = nlohmann::ordered_json::parse(r.out);
  CHECK(j["format"] == "pth");
  std::vector<std::string> names;
  for (auto& [k, v] : j["tensors"].items()) names.push_back(k);
  REQUIRE(names.size() == 27);
  CHECK(names[0] == "model/conv.weight");
  CHECK(j["tensors"]["model/conv.weight"]["dtype"] == "float32");
  CHECK(j["tensors"]["model/conv.weight"]["shape"] == nlohmann::json({4, 3, 3, 3}));
  CHECK(j["tensors"]["model/bn.num_batches_tracked"]["shape"] == nlohmann::json::array());
  CHECK(j["tensors"].contains("optimizer/state/0/exp_avg"));

  r = tool("inspect --json " + quote(fixture("resnet18.pt")));
  REQUIRE(r.rc == 0);
  j = nlohmann::ordered_json::parse(r.out);
  CHECK(j["tensors"].begin().key() == "conv1.weight");
  CHECK(j["tensors"]["conv1.weight"]["shape"] == nlohmann::json({64, 3, 7, 7}));

  r = tool("inspect --json " + quote(fixture("legacy.pt")));
  REQUIRE(r.rc == 0);
  CHECK(nlohmann::json::parse(r.out)["format"] == "pth-legacy");
}

TEST_CASE("tool: inspect prints a table and the non-tensor values", "[io][tool]") {
  RunResult r = tool("inspect " + quote(fixture("checkpoint.pt")));
  REQUIRE(r.rc == 0);
  CHECK_THAT(r.out, Contains("format: pth"));
  CHECK_THAT(r.out, Contains("model/conv.weight"));
  CHECK_THAT(r.out, Contains("[4, 3, 3, 3]"));
  CHECK_THAT(r.out, Contains("epoch = 3"));
  CHECK_THAT(r.out, Contains("scaler/scale = 65536.0"));
  CHECK_THAT(r.out, Contains("optimizer/param_groups/0/betas = (0.9, 0.999)"));
  CHECK_THAT(r.out, Contains("nothing = None"));
}

TEST_CASE("tool: convert casts floating tensors only and torch loads the result", "[io][tool]") {
  TempDir tmp;
  std::string out = tmp / "resnet18_fp16.pth";
  RunResult r = tool("convert " + quote(fixture("resnet18.pt")) + " " + quote(out) + " --dtype float16");
  INFO(r.out);
  REQUIRE(r.rc == 0);
  ht::StateDict sd = ht::load_state_dict_file(out);
  CHECK(sd.find("conv1.weight")->dtype() == ht::kFloat16);
  CHECK(sd.find("bn1.num_batches_tracked")->dtype() == ht::kInt64);
  // about half the size of the fp32 file
  double ratio = double(fs::file_size(out)) / double(fs::file_size(fixture("resnet18.pt")));
  CHECK(ratio < 0.52);
  CHECK(ratio > 0.48);
  // values rounded exactly as torch's .half()
  r = python("io_check.py", "half " + quote(fixture("resnet18.pt")) + " " + quote(out));
  INFO(r.out);
  CHECK(r.rc == 0);
  r = python("io_check.py", "resnet " + quote(out));
  INFO(r.out);
  CHECK(r.rc == 0);
}

TEST_CASE("tool: convert keeps structure, reports overflow, writes safetensors", "[io][tool]") {
  TempDir tmp;
  RunResult r = tool("convert " + quote(fixture("checkpoint.pt")) + " " + quote(tmp / "ck.pth") + " --dtype bfloat16");
  INFO(r.out);
  REQUIRE(r.rc == 0);
  ht::Value v = ht::load(tmp / "ck.pth");
  CHECK(v["epoch"].to_int() == 3);
  CHECK(v["model"]["conv.weight"].to_tensor().dtype() == ht::kBFloat16);
  CHECK(v["model"].to_dict().attrs != nullptr);

  r = tool("convert " + quote(fixture("dtypes.pt")) + " " + quote(tmp / "d.pth") + " --dtype float16");
  REQUIRE(r.rc == 0);
  CHECK(r.out.empty());  // 65504 is the largest half: no overflow
  ht::StateDict big;
  big.add("w", ht::full({3}, 1e6));
  ht::save(big, tmp / "big.pth");
  r = tool("convert " + quote(tmp / "big.pth") + " " + quote(tmp / "big16.pth") + " --dtype float16");
  CHECK(r.rc == 0);
  CHECK_THAT(r.out, Contains("w: 3 values overflow to inf"));

  r = tool("convert " + quote(fixture("resnet18.pt")) + " " + quote(tmp / "r.safetensors"));
  REQUIRE(r.rc == 0);
  r = python("io_check.py", "safetensors " + quote(fixture("resnet18.pt")) + " " + quote(tmp / "r.safetensors"));
  INFO(r.out);
  CHECK(r.rc == 0);
  r = tool("convert " + quote(tmp / "r.safetensors") + " " + quote(tmp / "back.pth"));
  REQUIRE(r.rc == 0);
  r = tool("diff " + quote(fixture("resnet18.pt")) + " " + quote(tmp / "back.pth"));
  INFO(r.out);
  CHECK(r.rc == 0);
}

TEST_CASE("tool: diff reports missing, extra, dtype and value differences", "[io][tool]") {
  TempDir tmp;
  RunResult r = tool("diff " + quote(fixture("views.pt")) + " " + quote(fixture("archive_layout.pt")));
  CHECK(r.rc == 0);
  ht::StateDict a, b;
  a.add("same", ht::ones({2}));
  a.add("close", ht::full({2}, 1.0));
  a.add("gone", ht::ones({1}));
  a.add("cast", ht::ones({1}));
  b.add("same", ht::ones({2}));
  b.add("close", ht::full({2}, 1.25));
  b.add("cast", ht::ones({1}).to(ht::kFloat16));
  b.add("new", ht::ones({1}));
  ht::save(a, tmp / "a.pth");
  ht::save(b, tmp / "b.pth");
  r = tool("diff " + quote(tmp / "a.pth") + " " + quote(tmp / "b.pth"));
  CHECK(r.rc == 1);
  CHECK_THAT(r.out, Contains("close: max abs diff 0.25"));
  CHECK_THAT(r.out, Contains("gone: missing in B"));
  CHECK_THAT(r.out, Contains("new: extra in B"));
  CHECK_THAT(r.out, Contains("cast: float32[1] vs float16[1]"));
  CHECK(r.out.find("same") == std::string::npos);
  b = a;
  b.tensors[1].second = ht::full({2}, 1.25);
  ht::save(b, tmp / "b.pth");
  CHECK(tool("diff " + quote(tmp / "a.pth") + " " + quote(tmp / "b.pth") + " --atol 0.3").rc == 0);
  CHECK(tool("diff " + quote(tmp / "a.pth") + " " + quote(tmp / "b.pth") + " --atol 0.2").rc == 1);
}

TEST_CASE("tool: errors and usage", "[io][tool]") {
  TempDir tmp;
  RunResult r = tool("inspect " + quote(tmp / "missing.pth"));
  CHECK(r.rc == 1);
  CHECK(r.out.rfind("error: ", 0) == 0);
  CHECK(tool("").rc == 2);
  CHECK(tool("frobnicate").rc == 2);
  CHECK(tool("inspect").rc == 2);
  CHECK(tool("convert a.pth").rc == 2);
  CHECK(tool("convert " + quote(fixture("views.pt")) + " " + quote(tmp / "x.pth") + " --dtype int8").rc == 2);
  CHECK(tool("diff a b --atol nope").rc == 2);
  for (const char* cmd : {"--help", "inspect --help", "convert --help", "diff --help"}) {
    r = tool(cmd);
    CHECK(r.rc == 0);
    CHECK_THAT(r.out, Contains("usage: halftorch"));
  }
  // a failed convert leaves no output file
  r = tool("convert " + quote(fixture("checkpoint.pt")) + " " + quote(tmp / "ck.safetensors"));
  CHECK(r.rc == 1);
  CHECK_THAT(r.out, Contains("error: "));
  CHECK_THAT(r.out, Contains("safetensors holds only"));
  CHECK(std::distance(fs::directory_iterator(tmp.path()), fs::directory_iterator()) == 0);
}

TEST_CASE("tool: bytes read from a file are escaped in tables, JSON and errors", "[io][tool]") {
  // A torch-written legacy file (a raw pickle, no CRC) whose key names are patched to hold a byte that is not
  // UTF-8 and a terminal escape: the tool prints them as \x80 and \x1b, never raw.
  TempDir dir;
  std::string path = (dir.path() / "bytes.pt").string();
  std::string script = (dir.path() / "make.py").string();
  std::ofstream(script) << "import torch, sys\n"
                           "torch.save({'wQeight': torch.ones(2), 'bEias': torch.zeros(1)}, sys.argv[1],\n"
                           "           _use_new_zipfile_serialization=False)\n"
                           "b = open(sys.argv[1], 'rb').read().replace(b'wQeight', b'w\\x80eight').replace(b'bEias', b'b\\x1bias')\n"
                           "open(sys.argv[1], 'wb').write(b)\n";
  RunResult made = run(std::string(HT_PYTHON) + " " + quote(script) + " " + quote(path));
  INFO(made.out);
  REQUIRE(made.rc == 0);
  for (const std::string& args : {"inspect ", "inspect --json "}) {
    RunResult r = tool(args + quote(path));
    INFO(args << ": " << r.out);
    REQUIRE(r.rc == 0);
    CHECK(r.out.find('\x80') == std::string::npos);
    CHECK(r.out.find('\x1b') == std::string::npos);
    if (args != "inspect ") {  // JSON writes the backslash as \\; the parsed key is the escaped text
      auto keys = nlohmann::json::parse(r.out)["tensors"];
      CHECK(keys.contains("w\\x80eight"));
      CHECK(keys.contains("b\\x1bias"));
    } else {
      CHECK_THAT(r.out, Contains("w\\x80eight"));
      CHECK_THAT(r.out, Contains("b\\x1bias"));
    }
  }
  // diff against a file without them lists both names as missing in B, escaped
  std::string plain = (dir.path() / "plain.pt").string();
  ht::save(ht::Value::dict(), plain);
  RunResult d = tool("diff " + quote(path) + " " + quote(plain));
  INFO(d.out);
  CHECK(d.out.find('\x80') == std::string::npos);
  CHECK_THAT(d.out, Contains("w\\x80eight: missing in B"));
  // an error message that echoes a name from the file escapes it too
  std::string bad = (dir.path() / "bad.pt").string();
  std::string s;
  {
    std::ifstream f(path, std::ios::binary);
    s.assign(std::istreambuf_iterator<char>(f), {});
  }
  write_bytes(bad, s.substr(0, s.size() / 2));
  RunResult r = tool("inspect " + quote(bad));
  INFO(r.out);
  CHECK(r.rc != 0);
  CHECK(r.out.find('\x80') == std::string::npos);
  CHECK(ht::escape_bytes("k\x80y\x1b[31m \xc3\xa9\n") == "k\\x80y\\x1b[31m \xc3\xa9\n");
}
