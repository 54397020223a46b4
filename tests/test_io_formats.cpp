// io: safetensors (round trips, the `safetensors` library both ways, the format's rules) and .npy (NumPy interop), and zip64
// checkpoints.
#include <cmath>
#include <fstream>

#include "io/file.h"
#include "io/serialize.h"
#include "test_io_util.h"

using namespace ht_test;
using ht::Value;
using Catch::Matchers::Contains;
using namespace std::string_literals;

namespace {

std::string load_error(const std::string& path) {
  try {
    ht::load(path);
  } catch (const ht::Error& e) {
    return e.what();
  }
  return "<no error>";
}

// A safetensors file from a header text and a data buffer.
std::string safetensors_bytes(const std::string& header, const std::string& data) {
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(char(uint64_t(header.size()) >> (8 * i)));
  return out + header + data;
}

}  // namespace

TEST_CASE("safetensors: round trip keeps names, order, dtypes, values and metadata", "[io]") {
  TempDir tmp;
  Value v = ht::load(fixture("dtypes.pt"));
  Value plain = Value::dict();
  for (const auto& [k, t] : v.to_dict().items()) plain.to_dict().set(k, t);
  plain.to_dict().attrs = std::make_shared<ht::Dict>();
  Value meta = Value::dict();
  meta.to_dict().set("format"s, "pt");
  meta.to_dict().set("note"s, "halftorch");
  plain.to_dict().attrs->set("__metadata__"s, meta);
  ht::save(plain, tmp / "d.safetensors");
  ht::io::Format format;
  Value back = ht::io::load(tmp / "d.safetensors", &format);
  CHECK(format == ht::io::Format::Safetensors);
  REQUIRE(back.to_dict().size() == v.to_dict().size());
  for (size_t i = 0; i < back.to_dict().size(); ++i) {
    const auto& [k, t] = v.to_dict().items()[i];
    const auto& [k2, t2] = back.to_dict().items()[i];
    INFO(ht::key_str(k));
    CHECK(k == k2);
    CHECK(t.to_tensor().dtype() == t2.to_tensor().dtype());
    CHECK(t.to_tensor().sizes() == t2.to_tensor().sizes());
    CHECK(t.to_tensor().to_vector<double>() == t2.to_tensor().to_vector<double>());
  }
  CHECK(back.to_dict().attrs->at("__metadata__"s)["note"].to_string() == "halftorch");
  // views of one storage are written as separate contiguous tensors
  Value views = ht::load(fixture("views.pt"));
  ht::save(views, tmp / "v.safetensors");
  Value vb = ht::load(tmp / "v.safetensors");
  CHECK(vb["t"].to_tensor().to_vector<float>() == views["t"].to_tensor().to_vector<float>());
  CHECK(vb["t"].to_tensor().is_contiguous());
}

TEST_CASE("safetensors: the safetensors library reads what halftorch writes and the other way round",
          "[io][torch2]") {
  std::string py = ht::testing::torch2_python();  // the venv holds PyPI's safetensors package
  if (py.empty()) return;
  TempDir tmp;
  std::string script = quote(std::string(HT_SOURCE_DIR) + "/tests/py/safetensors_check.py");
  RunResult r = run(py + " " + script + " make " + quote(tmp.path().string()));
  INFO(r.out);
  REQUIRE(r.rc == 0);
  // safetensors.torch.save_file's file holds what torch.save wrote of the same tensors
  Value lib = ht::load(tmp / "lib.safetensors"), want = ht::load(tmp / "lib.pt");
  REQUIRE(lib.to_dict().size() == want.to_dict().size());
  for (const auto& [key, t] : want.to_dict().items()) {
    INFO(ht::key_str(key));
    const Value* got = lib.to_dict().find(key);
    REQUIRE(got != nullptr);
    const ht::Tensor &g = got->to_tensor(), &w = t.to_tensor();
    CHECK(g.dtype() == w.dtype());
    CHECK(g.sizes() == w.sizes());
    std::vector<double> gv = g.to_vector<double>(), wv = w.to_vector<double>();
    REQUIRE(gv.size() == wv.size());
    for (size_t i = 0; i < gv.size(); ++i) CHECK((gv[i] == wv[i] || (std::isnan(gv[i]) && std::isnan(wv[i]))));
  }
  const Value& meta = lib.to_dict().attrs->at("__metadata__"s);
  CHECK(meta["format"].to_string() == "pt");
  CHECK(meta["source"].to_string().rfind("safetensors ", 0) == 0);
  // and halftorch's file, with a non-contiguous view added and a metadata entry more, loads in the library
  lib.to_dict().set("f32_t"s, lib["f32"].to_tensor().t());
  Value new_meta = meta;
  new_meta.to_dict().set("writer"s, "halftorch");
  lib.to_dict().attrs->set("__metadata__"s, new_meta);
  ht::save(lib, tmp / "ht.safetensors");
  r = run(py + " " + script + " check " + quote(tmp.path().string()) + " " + quote(tmp / "ht.safetensors"));
  INFO(r.out);
  CHECK(r.rc == 0);
}

TEST_CASE("safetensors: what the format forbids is refused with a clear error", "[io]") {
  TempDir tmp;
  auto check = [&](const std::string& header, const std::string& data, const std::string& message) {
    write_bytes(tmp / "x.safetensors", safetensors_bytes(header, data));
    CHECK_THAT(load_error(tmp / "x.safetensors"), Contains(message));
  };
  const std::string f4(4, '\0');
  check(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", f4 + "x", "trailing bytes");
  check(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", f4 + f4, "expected 0");
  check(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", f4, "needs 8");
  check(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
        f4, "starts at byte 0");
  check(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
        f4, "names 'a' twice");
  check(R"({"a":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}})", f4 + f4, "'C64' is not supported");
  check(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", f4, "negative");
  check(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,40]}})", f4, "outside the data buffer");
  check(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", f4, "larger than the file");
  check(R"({"a":{"dtype":"F32","shape":[1]}})", f4, "no 'data_offsets'");
  check(R"({"__metadata__":{"k":1}})", "", "not a string");
  check(R"({"a": nonsense})", "", "not valid JSON");
  write_bytes(tmp / "x.safetensors", "\xff\xff\xff\xff\xff\xff\xff\x7f{}"s);
  CHECK_THAT(load_error(tmp / "x.safetensors"), Contains("not a checkpoint"));
  // zero-size and 0-d tensors are fine
  write_bytes(tmp / "ok.safetensors",
              safetensors_bytes(R"({"e":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},)"
                                R"("s":{"dtype":"I64","shape":[],"data_offsets":[0,8]}})",
                                "\x07\x00\x00\x00\x00\x00\x00\x00"s));
  Value ok = ht::load(tmp / "ok.safetensors");
  CHECK(ok["e"].to_tensor().sizes() == ht::Shape{0, 3});
  CHECK(ok["s"].to_tensor().item<int64_t>() == 7);
  // only a flat map of tensors fits
  try {
    ht::save(ht::load(fixture("checkpoint.pt")), tmp / "ck.safetensors");
    FAIL("saved a nested checkpoint as safetensors");
  } catch (const ht::Error& e) {
    CHECK_THAT(std::string(e.what()), Contains("safetensors holds only tensors, but 'model' is a dict"));
  }
  CHECK_FALSE(fs::exists(tmp / "ck.safetensors"));
}

TEST_CASE("npy: NumPy's files load, and NumPy loads what halftorch writes", "[io]") {
  TempDir tmp;
  RunResult r = python("io_check.py", "npy-make " + quote(tmp.path().string()));
  INFO(r.out);
  REQUIRE(r.rc == 0);
  for (const char* name : {"f32", "fortran", "i64", "bool", "f16", "scalar", "empty", "u8", "i8"}) {
    SECTION(name) {
      std::string ref = tmp / (std::string(name) + ".npy");
      ht::io::Format format;
      Value v = ht::io::load(ref, &format);
      CHECK(format == ht::io::Format::Npy);
      const ht::Tensor& t = v.to_tensor();
      if (std::string(name) == "f32" || std::string(name) == "fortran") {
        CHECK(t.sizes() == ht::Shape{2, 3, 4});
        std::vector<float> want(24);
        for (int i = 0; i < 24; ++i) want[size_t(i)] = float(i);
        CHECK(t.to_vector<float>() == want);
      }
      std::string out = tmp / (std::string(name) + ".ht.npy");
      ht::save(v, out);
      r = python("io_check.py", "npy-same " + quote(out) + " " + quote(ref));
      INFO(r.out);
      CHECK(r.rc == 0);
    }
  }
  SECTION("errors") {
    CHECK_THROWS_AS(ht::save(ht::ones({2}).to(ht::kBFloat16), tmp / "x.npy"), ht::Error);
    auto npy = [](const std::string& dict) {
      std::string h = dict + "\n";
      return "\x93NUMPY\x01\x00"s + char(h.size() & 0xff) + char(h.size() >> 8) + h;
    };
    write_bytes(tmp / "bad.npy", npy("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }") + "12345678");
    CHECK_THAT(load_error(tmp / "bad.npy"), Contains("'<c8' is not supported"));
    write_bytes(tmp / "short.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1000,), }") + "1234");
    CHECK_THAT(load_error(tmp / "short.npy"), Contains("larger than the file"));
    write_bytes(tmp / "short.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }") + "1234");
    CHECK_THAT(load_error(tmp / "short.npy"), Contains("needs 12"));
  }
}

// Writes a > 4 GiB checkpoint (zip64 extras on a record and on a header offset), reads it back, and has
// PyTorch load it. Hidden: needs ~10 GB of disk and memory and a few minutes. Run with `test_io_formats [.slow]`.
TEST_CASE("zip64: a checkpoint over 4 GiB round trips through PyTorch", "[io][.slow]") {
  TempDir tmp;
  ht::StateDict sd;
  ht::Tensor big = ht::zeros({(int64_t(1) << 32) + 1024}, {.dtype = ht::kUInt8});
  static_cast<uint8_t*>(big.raw_data())[int64_t(1) << 32] = 7;
  sd.add("big", big);
  sd.add("after", ht::arange(0.0, 5.0, 1.0));
  ht::save(sd, tmp / "big.pth");
  CHECK(fs::file_size(tmp / "big.pth") > (uint64_t(1) << 32));
  ht::StateDict back = ht::load_state_dict_file(tmp / "big.pth");
  CHECK(static_cast<const uint8_t*>(back.find("big")->raw_data())[int64_t(1) << 32] == 7);
  CHECK(back.find("after")->to_vector<float>() == std::vector<float>{0, 1, 2, 3, 4});
  RunResult r = run(std::string(HT_PYTHON) + " -c " +
                    quote("import torch,sys; sd=torch.load(sys.argv[1], weights_only=True); "
                          "assert sd['big'].numel()==2**32+1024 and int(sd['big'][2**32])==7; "
                          "assert sd['after'].tolist()==[0,1,2,3,4]; print('ok')") +
                    " " + quote(tmp / "big.pth"));
  INFO(r.out);
  CHECK(r.rc == 0);
}
