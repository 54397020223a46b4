// io: hostile and broken inputs give an ht::Error naming the problem; nothing from a file is ever executed.
#include <fstream>

#include "io/file.h"
#include "io/pickle.h"
#include "io/serialize.h"
#include "io/zip.h"
#include "test_io_util.h"

using namespace ht_test;
using ht::Value;
using Catch::Matchers::Contains;
using namespace std::string_literals;

namespace {

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const ht::Error& e) {
    return e.what();
  }
  return "<no error>";
}

std::string unpickle_error(const std::string& bytes) {
  return error_of([&] {
    ht::io::unpickle(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), nullptr, "test");
  });
}

// A torch.save-style zip holding only `pickle` as data.pkl (plus extra records).
std::string zip_with(const std::string& dir, const std::string& pickle,
                     const std::vector<std::pair<std::string, std::string>>& records = {}) {
  std::string path = dir + "/crafted.pt";
  ht::io::AtomicFileWriter out(path);
  ht::io::ZipWriter zip(out, "archive");
  zip.add("data.pkl", pickle.data(), pickle.size());
  for (const auto& [name, data] : records) zip.add(name, data.data(), data.size());
  zip.finish();
  out.commit();
  return path;
}

// The pickle of {'w': tensor of `numel` floats in storage '0'}, with `stride` and `offset`.
std::string tensor_pickle(int numel, const std::string& size, const std::string& stride, int offset) {
  std::string p = "\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storage"
                  "ctorch\nFloatStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK"s;
  p += char(numel);
  p += "tQK";
  p += char(offset);
  p += size + stride;
  p += "\x89" "ccollections\nOrderedDict\n)RtRs."s;
  return p;
}

}  // namespace

TEST_CASE("io hostile: a pickle calling os.system is refused without running it", "[io]") {
  std::string err = error_of([] { ht::load(fixture("evil.pt")); });
  CHECK_THAT(err, Contains("posix.system"));
  CHECK_FALSE(fs::exists(fixture("pwned")));
  CHECK_THAT(unpickle_error("\x80\x02" "cos\nsystem\nX\x02\x00\x00\x00ls\x85R."s), Contains("os.system"));
  CHECK_THAT(unpickle_error("\x80\x04\x8c\x08" "builtins\x8c\x04" "eval\x93."s), Contains("builtins.eval"));
  // an allowlisted value is still not callable
  CHECK_THAT(unpickle_error("\x80\x02" "ctorch\nfloat16\n)R."s), Contains("not as a function"));
}

TEST_CASE("io hostile: a whole pickled module is refused with a hint", "[io]") {
  std::string err = error_of([] { ht::load(fixture("whole_module.pt")); });
  CHECK_THAT(err, Contains("__main__.Small"));
  CHECK_THAT(err, Contains("save and load its state_dict() instead"));
}

TEST_CASE("io hostile: broken pickles", "[io]") {
  CHECK_THAT(unpickle_error(""s), Contains("truncated"));
  CHECK_THAT(unpickle_error("\x80\x02"s), Contains("truncated"));
  CHECK_THAT(unpickle_error("\x80\x02X\xf0\xff\xff\xff" "abc."s), Contains("truncated"));
  CHECK_THAT(unpickle_error("\x80\x02\x8d\xff\xff\xff\xff\xff\xff\xff\xff."s), Contains("truncated"));
  CHECK_THAT(unpickle_error("\x80\x02h\x05."s), Contains("memo"));
  CHECK_THAT(unpickle_error("\x80\x02" "a."s), Contains("empty stack"));
  CHECK_THAT(unpickle_error("\x80\x02N\x85K\x01" "a."s), Contains("appends to a tuple"));
  CHECK_THAT(unpickle_error("\x80\x02]q\x00h\x00" "a."s), Contains("cycle"));
  CHECK_THAT(unpickle_error("\x80\x02\xff."s), Contains("opcode 0xff"));
  CHECK_THAT(unpickle_error("\x80\x09N."s), Contains("protocol 9"));
  CHECK_THAT(unpickle_error("\x80\x02NN."s), Contains("2 values"));
  CHECK_THAT(unpickle_error("\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01."s), Contains("64 bits"));
  CHECK_THAT(unpickle_error("\x80\x02}]N" "s."s), Contains("dict key of type list"));
  std::string deep = "\x80\x02" + std::string(5000, ']') + std::string(4999, 'a') + ".";
  CHECK_THAT(unpickle_error(deep), Contains("deeper"));
  // exponential sharing: each level holds the previous one twice
  std::string dag = "\x80\x02]q\x00"s;
  for (int i = 0; i < 60; ++i) dag += "0h\x00h\x00\x86q\x00"s;
  dag += ".";
  CHECK_THAT(unpickle_error(dag), Contains("too many values"));
  // a valid protocol-4 pickle still works
  Value v = ht::io::unpickle(reinterpret_cast<const uint8_t*>("\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00"
                                                              "\x8c\x02hi\x94."),
                             17, nullptr, "test");
  CHECK(v.to_string() == "hi");
}

TEST_CASE("io hostile: broken files", "[io]") {
  TempDir tmp;
  SECTION("empty, garbage, directory, missing") {
    write_bytes(tmp / "empty.pt", "");
    CHECK_THAT(error_of([&] { ht::load(tmp / "empty.pt"); }), Contains("empty"));
    write_bytes(tmp / "garbage.pt", std::string("this is not a checkpoint at all\n"));
    CHECK_THAT(error_of([&] { ht::load(tmp / "garbage.pt"); }), Contains("not a checkpoint"));
    CHECK_THAT(error_of([&] { ht::load(tmp.path().string()); }), Contains("directory"));
    CHECK_THAT(error_of([&] { ht::load(tmp / "missing.pt"); }), Contains("cannot open"));
    write_bytes(tmp / "pk.pt", "PK\x03\x04garbage");
    CHECK_THAT(error_of([&] { ht::load(tmp / "pk.pt"); }), Contains("zip"));
  }
  SECTION("every truncation of real files") {
    for (const char* name : {"checkpoint.pt", "legacy.pt", "views.pt"}) {
      std::string bytes = ht::io::read_file(fixture(name));
      for (size_t n = 0; n < bytes.size(); n += 7) {
        INFO(name << " truncated to " << n << " bytes");
        write_bytes(tmp / "t.pt", bytes.substr(0, n));
        CHECK_THROWS_AS(ht::load(tmp / "t.pt"), ht::Error);
      }
    }
  }
  SECTION("every single-byte corruption of a small file throws or loads, never crashes") {
    std::string bytes = ht::io::read_file(fixture("views.pt"));
    for (size_t i = 0; i < bytes.size(); ++i) {
      std::string b = bytes;
      b[i] = char(b[i] ^ 0x5a);
      write_bytes(tmp / "c.pt", b);
      try {
        Value v = ht::load(tmp / "c.pt");
        ht::for_each_tensor(v, [](const std::string&, const ht::Tensor& t) { (void)t.to_vector<double>(); });
      } catch (const ht::Error&) {
      }
    }
    SUCCEED("no crash");
  }
  SECTION("a storage record whose size disagrees with the pickle") {
    std::string pkl = tensor_pickle(4, "K\x04\x85", "K\x01\x85", 0);
    std::string path = zip_with(tmp.path().string(), pkl, {{"data/0", std::string(12, '\0')}});
    CHECK_THAT(error_of([&] { ht::load(path); }), Contains("has 12 bytes, but its pickle says 16"));
  }
  SECTION("a view reaching past its storage") {
    std::string pkl = tensor_pickle(4, "K\x04\x85", "K\x02\x85", 0);
    std::string path = zip_with(tmp.path().string(), pkl, {{"data/0", std::string(16, '\0')}});
    CHECK_THAT(error_of([&] { ht::load(path); }), Contains("reaches past its storage"));
  }
  SECTION("sizes that would overflow") {
    std::string big = "\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x10"s;  // 2^60
    std::string pkl = tensor_pickle(4, big + big + "\x86", "K\x00K\x00\x86"s, 0);
    std::string path = zip_with(tmp.path().string(), pkl, {{"data/0", std::string(16, '\0')}});
    CHECK_THAT(error_of([&] { ht::load(path); }), Contains("overflows"));
  }
  SECTION("a missing storage record") {
    std::string path = zip_with(tmp.path().string(), tensor_pickle(4, "K\x04\x85", "K\x01\x85", 0));
    CHECK_THAT(error_of([&] { ht::load(path); }), Contains("archive/data/0' is missing"));
  }
  SECTION("a persistent id that is not a storage") {
    std::string path = zip_with(tmp.path().string(), "\x80\x02X\x06\x00\x00\x00moduleQ."s);
    CHECK_THAT(error_of([&] { ht::load(path); }), Contains("not a storage tuple"));
  }
}
