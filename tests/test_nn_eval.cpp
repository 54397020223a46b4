// eval_resnet18 and the dataset readers: accuracy line and logits against PyTorch on Fashion-MNIST, fp16 mode,
// the error for weights that do not fit the data, and the IDX / CIFAR-10 readers.
#include <fstream>
#include <regex>

#include "io/datasets.h"
#include "nn_test_util.h"

using namespace ht;
using namespace ht::testing;

namespace {

const std::string kFashion = "/usr/share/datasets/fashion-mnist";

std::string eval_binary() {
  std::string p = std::string(HT_BINARY_DIR) + "/bin/eval_resnet18";
  INFO("build the eval_resnet18 target first: " << p);
  REQUIRE(std::filesystem::exists(p));
  return p;
}

// Runs a command; returns exit code and output.
std::pair<int, std::string> shell(const std::string& cmd, const std::filesystem::path& dir) {
  auto log = dir / "cmd.log";
  int rc = std::system((cmd + " > " + log.string() + " 2>&1").c_str());
  std::stringstream ss;
  ss << std::ifstream(log).rdbuf();
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, ss.str()};
}

std::string last_line(const std::string& s) {
  std::string t = s;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  return t.substr(t.rfind('\n') == std::string::npos ? 0 : t.rfind('\n') + 1);
}

}  // namespace

TEST_CASE("eval_resnet18 matches PyTorch's logits and accuracy on Fashion-MNIST", "[nn][eval]") {
  auto dir = nn_fixture("nn_resnet.py", "1");
  auto model = (dir / "model.pth").string(), npy = (dir / "logits.npy").string();
  auto [rc, out] = shell(eval_binary() + " --weights " + model + " --device cpu --limit 100 --batch-size 32 --logits " +
                             npy, dir);
  INFO(out);
  REQUIRE(rc == 0);
  std::smatch m;
  std::string last = last_line(out);
  REQUIRE(std::regex_match(last, m, std::regex("test accuracy: (0\\.[0-9]{4}|1\\.0000)")));
  auto [prc, pout] = run_script("nn_eval_check.py", model + " " + npy + " 100 " + kFashion, dir);
  INFO(pout);
  CHECK(prc == 0);
  CHECK(pout.find("accuracy " + m[1].str()) != std::string::npos);
}

TEST_CASE("eval_resnet18 runs in fp16 and stays close to PyTorch's fp32 logits", "[nn][eval]") {
  auto dir = nn_fixture("nn_resnet.py", "1");
  auto model = (dir / "model.pth").string(), npy = (dir / "logits16.npy").string();
  auto [rc, out] = shell(eval_binary() + " --weights " + model + " --precision fp16 --device cpu --limit 64 --logits " +
                             npy, dir);
  INFO(out);
  REQUIRE(rc == 0);
  CHECK(std::regex_match(last_line(out), std::regex("test accuracy: [01]\\.[0-9]{4}")));
  auto [prc, pout] = run_script("nn_eval_check.py", model + " " + npy + " 64 " + kFashion + " 2e-2", dir);
  INFO(pout);
  CHECK(prc == 0);
}

TEST_CASE("eval_resnet18 rejects weights that do not fit the data, naming the tensor and both shapes", "[nn][eval]") {
  auto dir = nn_fixture("nn_resnet.py", "3");
  auto [rc, out] = shell(eval_binary() + " --weights " + (dir / "model.pth").string() + " --limit 8", dir);
  INFO(out);
  CHECK(rc == 1);
  CHECK(out.find("conv1.weight") != std::string::npos);
  CHECK(out.find("[64, 3, 7, 7]") != std::string::npos);
  CHECK(out.find("[64, 1, 7, 7]") != std::string::npos);
  auto [rc2, out2] = shell(eval_binary() + " --weights " + (dir / "model.pth").string() + " --precision fp8", dir);
  CHECK(rc2 == 1);
  CHECK(out2.find("--precision") != std::string::npos);
}

TEST_CASE("the Fashion-MNIST reader gives 10000 test images of 1x28x28 with labels 0..9", "[io][datasets]") {
  io::ImageDataset d = io::load_fashion_mnist(kFashion);
  CHECK(d.images.sizes() == Shape{10000, 1, 28, 28});
  CHECK(d.images.dtype() == kUInt8);
  std::vector<int64_t> l = d.labels.to_vector<int64_t>();
  REQUIRE(l.size() == 10000);
  std::vector<int> counts(10, 0);
  for (int64_t v : l) {
    REQUIRE((v >= 0 && v < 10));
    counts[size_t(v)]++;
  }
  for (int c : counts) CHECK(c == 1000);  // the test split is balanced
  Tensor x = io::normalize_images(d.images.narrow(0, 0, 2), {0.2860}, {0.3530});
  double first = double(d.images.narrow(0, 0, 1).flatten().to_vector<uint8_t>()[0]);
  CHECK(x.flatten().to_vector<float>()[0] == Approx((first / 255.0 - 0.2860) / 0.3530));
  CHECK_THROWS_WITH(io::load_fashion_mnist("/nonexistent"), Catch::Contains("[datasets] expected t10k-images-idx3-ubyte"));
}

TEST_CASE("the CIFAR-10 reader parses binary records: label byte, then 3x32x32 planes", "[io][datasets]") {
  auto dir = temp_dir("cifar");
  std::vector<uint8_t> bytes;
  for (int r = 0; r < 3; ++r) {
    bytes.push_back(uint8_t(r * 3));
    for (int i = 0; i < 3072; ++i) bytes.push_back(uint8_t((i + r) % 251));
  }
  std::ofstream(dir / "test_batch.bin", std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                                                 std::streamsize(bytes.size()));
  io::ImageDataset d = io::load_cifar10(dir.string());
  CHECK(d.images.sizes() == Shape{3, 3, 32, 32});
  CHECK(d.labels.to_vector<int64_t>() == std::vector<int64_t>{0, 3, 6});
  std::vector<uint8_t> px = d.images.select(0, 2).flatten().to_vector<uint8_t>();
  CHECK(int(px[0]) == 2);
  CHECK(int(px[1024]) == (1024 + 2) % 251);  // green plane starts at 1024
  std::ofstream(dir / "test_batch.bin", std::ios::binary | std::ios::app).put('x');
  CHECK_THROWS_WITH(io::load_cifar10(dir.string()), Catch::Contains("multiple of 3073"));
  Tensor norm = io::normalize_images(d.images, {0.4914, 0.4822, 0.4465}, {0.2470, 0.2435, 0.2616});
  CHECK(norm.select(0, 2).select(0, 1).flatten().to_vector<float>()[0] == Approx((double(px[1024]) / 255.0 - 0.4822) / 0.2435).epsilon(1e-5));
}
