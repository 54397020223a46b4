// ht::vision against torchvision + PIL (the PyPI venv): ImageFolder's classes and order, decoding as PIL's
// convert("RGB"), Resize + CenterCrop pixels, RandomResizedCrop's boxes, flips, and errors on bad files. The
// images are Fashion-MNIST pictures written by tests/py/image_folder_make.py at test time.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "data/dataloader.h"
#include "io/npy.h"
#include "tests/helpers.h"
#include "vision/image_folder.h"
#include "vision/resample.h"
#include "vision/transforms.h"

using namespace ht;
using namespace ht::vision;
namespace fs = std::filesystem;

namespace {

Tensor npy(const fs::path& p) { return io::load_npy(io::MappedFile::open(p.string())).to_tensor(); }

// A scratch folder removed when the test binary exits: the fixtures' .npy answers take a few hundred MB.
fs::path scratch_dir(const std::string& name) {
  static struct Cleanup {
    std::vector<fs::path> dirs;
    ~Cleanup() {
      std::error_code ec;
      for (const fs::path& d : dirs) fs::remove_all(d, ec);
    }
  } cleanup;
  fs::path p = testing::temp_dir(name);
  cleanup.dirs.push_back(p);
  return p;
}

// A fixture tree and torchvision's answers for it (tests/py/image_folder_check.py: classes and samples, every
// sample as PIL's convert("RGB"), and Resize(R) + CenterCrop(S) for each "R,S" pair).
struct Fixture {
  fs::path dir, root;
  nlohmann::json folder;
  std::vector<std::pair<int, int>> eval_sizes;
  bool ok = false;
};

Fixture make_fixture(const std::string& name, const std::string& make_script, const std::string& make_args,
                     std::vector<std::pair<int, int>> eval_sizes) {
  Fixture f;
  std::string py = testing::torch2_python();
  if (py.empty()) return f;
  f.dir = scratch_dir(name);
  f.root = f.dir / "root";
  f.eval_sizes = eval_sizes;
  fs::remove_all(f.root);
  std::string src = HT_SOURCE_DIR;
  testing::run_python("import runpy, sys\nsys.argv = ['', '" + f.root.string() + "'" + make_args +
                          "]\nrunpy.run_path('" + src + "/tests/py/" + make_script + "', run_name='__main__')\n",
                      f.dir, py);
  std::string pairs;
  for (auto [r, s] : eval_sizes) pairs += ", '" + std::to_string(r) + "," + std::to_string(s) + "'";
  testing::run_python("import runpy, sys\nsys.argv = ['', '" + f.root.string() + "', '" + f.dir.string() + "'" +
                          pairs + "]\nrunpy.run_path('" + src + "/tests/py/image_folder_check.py', run_name='__main__')\n",
                      f.dir, py);
  std::ifstream(f.dir / "folder.json") >> f.folder;
  f.ok = true;
  return f;
}

// Fashion-MNIST pictures (tests/py/image_folder_make.py), made once per test binary run. Resize(20) shrinks the
// 31x400 and 640x97 pictures, where Pillow 13 resizes vertically first.
const Fixture& fixture() {
  static Fixture f = make_fixture("vision", "image_folder_make.py", "", {{256, 224}, {36, 32}, {300, 299}, {20, 16}});
  return f;
}

// scikit-image's sample photographs from Debian's python3-skimage (tests/py/photo_folder_make.py).
const char* kSkimageData = "/usr/lib/python3/dist-packages/skimage/data";

const Fixture& photo_fixture() {
  static Fixture f = [] {
    if (!fs::exists(fs::path(kSkimageData) / "astronaut.png")) {
      WARN("skipped: no real photographs (install Debian's python3-skimage for " << kSkimageData << ")");
      return Fixture{};
    }
    return make_fixture("photos", "photo_folder_make.py", ", '" + std::string(kSkimageData) + "'", {{256, 224}, {73, 64}});
  }();
  return f;
}

// Every sample of the fixture decodes to PIL's convert("RGB") pixels exactly.
void check_decoding_equals_pil(const Fixture& f) {
  ImageFolder ds(f.root.string());
  int64_t jpeg_values = 0;
  for (size_t i = 0; i < ds.samples().size(); ++i) {
    const std::string& path = ds.samples()[i].first;
    INFO(path);
    Image img = decode_image(path);
    Tensor want = npy(f.dir / ("rgb" + std::to_string(i) + ".npy"));
    REQUIRE(want.sizes() == Shape{img.height, img.width, 3});
    const uint8_t* w = want.data_ptr<uint8_t>();
    bool jpeg = path.find(".png") == std::string::npos && path.find(".PNG") == std::string::npos;
    int worst = 0;
    for (size_t k = 0; k < img.pixels.size(); ++k) worst = std::max(worst, std::abs(int(img.pixels[k]) - int(w[k])));
    if (jpeg) jpeg_values += int64_t(img.pixels.size());
    // PNG: exact. JPEG: the same IDCT and upsampling as PIL's libjpeg-turbo.
    REQUIRE(worst == 0);
  }
  REQUIRE(jpeg_values > 0);
}

// Resize(R) + CenterCrop(S) + ToTensor of every sample against torchvision's, for the fixture's (R, S) pairs.
void check_eval_pipeline(const Fixture& f) {
  for (auto [r, s] : f.eval_sizes) {
    ImageFolder ds(f.root.string(), {.transform = Compose({Resize(r), CenterCrop(s), ToTensor()})});
    Tensor want = npy(f.dir / ("eval_" + std::to_string(r) + "_" + std::to_string(s) + ".npy"));
    REQUIRE(want.size(0) == ds.size());
    double worst = 0;
    int64_t differing = 0, total = 0;
    for (int64_t i = 0; i < ds.size(); ++i) {
      Tensor got = ds.get(i).data;
      REQUIRE(got.sizes() == Shape{3, s, s});
      std::vector<float> g = got.to_vector<float>();
      std::vector<float> w = want.select(0, i).contiguous().to_vector<float>();
      for (size_t k = 0; k < g.size(); ++k) {
        double d = std::fabs(double(g[k]) - double(w[k]));
        worst = std::max(worst, d);
        differing += d > 0;
      }
      total += int64_t(g.size());
    }
    INFO("Resize(" << r << ") + CenterCrop(" << s << "): worst " << worst * 255 << "/255, " << differing << " of "
                   << total << " values differ");
    REQUIRE(worst <= 1.0 / 255 + 1e-6);
    CHECK(differing == 0);  // the same fixed-point arithmetic as PIL's Resample.c: expected bit-exact
  }
}

}  // namespace

TEST_CASE("ImageFolder: classes, indices and sample order equal torchvision's", "[vision]") {
  const Fixture& f = fixture();
  if (!f.ok) return;
  ImageFolder ds(f.root.string());
  REQUIRE(ds.classes() == f.folder["classes"].get<std::vector<std::string>>());
  REQUIRE(ds.classes() == std::vector<std::string>{"Dog", "bird", "cat"});
  REQUIRE(ds.size() == int64_t(f.folder["samples"].size()));
  for (size_t i = 0; i < ds.samples().size(); ++i) {
    INFO("sample " << i);
    REQUIRE(ds.samples()[i].first == f.folder["samples"][i][0].get<std::string>());
    REQUIRE(ds.samples()[i].second == f.folder["samples"][i][1].get<int64_t>());
  }
  for (const auto& [path, c] : ds.samples()) REQUIRE(path.find(".txt") == std::string::npos);
}

TEST_CASE("decode_image equals PIL's Image.open(path).convert('RGB')", "[vision]") {
  const Fixture& f = fixture();
  if (f.ok) check_decoding_equals_pil(f);
}

TEST_CASE("Resize + CenterCrop + ToTensor are within 1/255 of torchvision's PIL pipeline", "[vision]") {
  const Fixture& f = fixture();
  if (f.ok) check_eval_pipeline(f);
}

TEST_CASE("Real photographs: decoding and Resize + CenterCrop equal PIL and torchvision", "[vision]") {
  const Fixture& f = photo_fixture();
  if (!f.ok) return;
  REQUIRE(f.folder["samples"].size() == 5 * 4 * 7 + 2);
  check_decoding_equals_pil(f);
  check_eval_pipeline(f);
}

TEST_CASE("CenterCrop rounds as torchvision and pads a small image with black", "[vision]") {
  Image img(5, 4);
  for (size_t k = 0; k < img.pixels.size(); ++k) img.pixels[k] = uint8_t(k + 1);
  // (5 - 2) / 2 = 1.5 -> 2 (half to even), (4 - 1) / 2 = 1.5 -> 2
  Image c = center_crop(img, 2, 1);
  REQUIRE(c.pixels[0] == img.row(2)[2 * 3]);
  // (5 - 4) / 2 = 0.5 -> 0
  REQUIRE(center_crop(img, 4, 4).pixels[0] == img.pixels[0]);
  Image big = center_crop(img, 8, 6);  // pads (8 - 5) // 2 = 1 left, (6 - 4) // 2 = 1 top
  REQUIRE(big.pixels[0] == 0);
  REQUIRE(big.row(1)[3] == img.pixels[0]);
}

TEST_CASE("CenterCrop pads and crops as torchvision's F.center_crop on PIL images", "[vision]") {
  std::string py = testing::torch2_python();
  if (py.empty()) return;
  auto dir = scratch_dir("center_crop");
  // A 7x5 image cropped to sizes smaller, larger and mixed in each dimension, odd and even differences.
  std::vector<std::pair<int64_t, int64_t>> sizes{{3, 2}, {7, 5}, {10, 5}, {7, 9}, {12, 8}, {11, 3}, {2, 12}, {8, 6}};
  std::string list;
  for (auto [w, h] : sizes) list += "(" + std::to_string(h) + "," + std::to_string(w) + "),";
  testing::run_python("import numpy as np\nfrom PIL import Image\nimport torchvision.transforms.functional as F\n"
                      "img = Image.fromarray((np.arange(7 * 5 * 3).reshape(5, 7, 3) + 1).astype(np.uint8))\n"
                      "for k, s in enumerate([" + list + "]):\n"
                      "    np.save('" + dir.string() + "/cc%d.npy' % k, np.asarray(F.center_crop(img, list(s))))\n",
                      dir, py);
  Image img(7, 5);
  for (size_t k = 0; k < img.pixels.size(); ++k) img.pixels[k] = uint8_t(k + 1);
  for (size_t k = 0; k < sizes.size(); ++k) {
    auto [w, h] = sizes[k];
    INFO("CenterCrop to " << w << "x" << h);
    Tensor want = npy(dir / ("cc" + std::to_string(k) + ".npy"));
    REQUIRE(want.sizes() == Shape{h, w, 3});
    Image got = center_crop(img, w, h);
    REQUIRE(std::equal(got.pixels.begin(), got.pixels.end(), want.data_ptr<uint8_t>()));
  }
}

TEST_CASE("RandomResizedCrop's boxes follow torchvision's get_params", "[vision]") {
  std::string py = testing::torch2_python();
  if (py.empty()) return;
  auto dir = scratch_dir("rrc");
  // torchvision's statistics of the box (area fraction, log aspect ratio) over many draws, and its central fallback
  // (forced by a scale range above 1) for sizes that take each of its three branches.
  std::string out = testing::run_python(R"(
import math, torch
from torchvision import transforms
torch.manual_seed(0)
img = torch.zeros(3, 375, 500)
a, r = [], []
for _ in range(20000):
    i, j, h, w = transforms.RandomResizedCrop.get_params(img, (0.08, 1.0), (3/4, 4/3))
    a.append(h * w / (375 * 500)); r.append(math.log(w / h))
print(sum(a) / len(a), sum(r) / len(r), sum(x * x for x in r) / len(r))
for H, W in [(100, 1000), (1000, 100), (300, 350), (37, 29)]:
    print(*transforms.RandomResizedCrop.get_params(torch.zeros(3, H, W), (2.0, 3.0), (3/4, 4/3)))
)",
                                        dir, py);
  std::istringstream in(out);
  double area_mean, ratio_mean, ratio_sq;
  in >> area_mean >> ratio_mean >> ratio_sq;
  Rng rng(1);
  double a = 0, r = 0, r2 = 0;
  const int n = 20000;
  for (int k = 0; k < n; ++k) {
    Box b = random_resized_crop_box(500, 375, rng);
    REQUIRE(b.top >= 0);
    REQUIRE(b.left >= 0);
    REQUIRE(b.top + b.height <= 375);
    REQUIRE(b.left + b.width <= 500);
    REQUIRE(b.width > 0);
    REQUIRE(b.height > 0);
    double frac = double(b.width * b.height) / (375.0 * 500.0);
    REQUIRE(frac >= 0.07);  // 0.08 less the rounding of w and h to integers
    double lr = std::log(double(b.width) / double(b.height));
    REQUIRE(std::fabs(lr) <= std::log(4.0 / 3.0) + 0.05);
    a += frac;
    r += lr;
    r2 += lr * lr;
  }
  // Means of 20000 draws: standard errors about 0.002 (area) and 0.0012 (log ratio); 5 of them allowed.
  CHECK(std::fabs(a / n - area_mean) < 0.01);
  CHECK(std::fabs(r / n - ratio_mean) < 0.006);
  CHECK(std::fabs(r2 / n - ratio_sq) < 0.003);
  for (auto [h, w] : {std::pair<int64_t, int64_t>{100, 1000}, {1000, 100}, {300, 350}, {37, 29}}) {
    int64_t ti, tj, th, tw;
    in >> ti >> tj >> th >> tw;
    Box b = random_resized_crop_box(w, h, rng, {2.0, 3.0});
    INFO(w << "x" << h);
    REQUIRE(b.top == ti);
    REQUIRE(b.left == tj);
    REQUIRE(b.height == th);
    REQUIRE(b.width == tw);
  }
}

TEST_CASE("RandomResizedCrop on an encoded JPEG decodes at the DCT scale its box allows, as PIL's draft mode",
          "[vision]") {
  const Fixture& f = fixture();
  if (!f.ok) return;
  // (file, box, output size): scales 1/8, 1/2, 1/4 and 1 on 500x375 and 375x500 photos-sized JPEGs, colour
  // 4:2:0, colour 4:4:4 and gray.
  struct Case {
    std::string file;
    Box box;
    int64_t size;
  };
  std::vector<Case> cases{{"cat/q4_50.jpg", {0, 0, 375, 500}, 32},      {"cat/q4_50.jpg", {10, 20, 200, 260}, 64},
                          {"cat/q4_95.JPEG", {100, 50, 150, 120}, 24},  {"cat/q4_95.JPEG", {5, 7, 100, 120}, 224},
                          {"Dog/g4.jpeg", {0, 0, 375, 500}, 32},         {"cat/q5_50.jpg", {33, 41, 300, 200}, 40},
                          {"cat/q5_50.jpg", {1, 3, 499, 374}, 100}};
  nlohmann::json spec = nlohmann::json::array();
  for (const Case& c : cases)
    spec.push_back({(f.root / c.file).string(), c.box.top, c.box.left, c.box.height, c.box.width, c.size});
  fs::path spec_file = f.dir / "draft_cases.json";
  std::ofstream(spec_file) << spec.dump();
  // PIL: Image.draft at the reduction PIL's rule gives for the box (the largest of 8, 4, 2, 1 not above
  // min(box side // size)), the box scaled to the reduced image and widened to whole pixels, crop, bilinear resize.
  testing::run_python(R"(
import json, numpy as np
from PIL import Image
for k, (p, t, l, h, w, size) in enumerate(json.load(open(")" + spec_file.string() + R"("))):
    im = Image.open(p); W, H = im.size
    d = max([1] + [s for s in (2, 4, 8) if w >= size * s and h >= size * s])
    if d > 1: im.draft("RGB", (W // d, H // d))
    assert im.size == (-(-W // d), -(-H // d)), (p, im.size, d)
    rw, rh = im.size
    x0, y0 = l * rw // W, t * rh // H
    x1, y1 = min(rw, -(-(l + w) * rw // W)), min(rh, -(-(t + h) * rh // H))
    out = im.convert("RGB").crop((x0, y0, max(x1, x0 + 1), max(y1, y0 + 1))).resize((size, size), Image.BILINEAR)
    np.save(")" + f.dir.string() + R"(/draft%d.npy" % k, np.asarray(out))
)",
                      f.dir, testing::torch2_python());
  for (size_t k = 0; k < cases.size(); ++k) {
    const Case& c = cases[k];
    std::string path = (f.root / c.file).string();
    INFO(c.file << " box " << c.box.left << "," << c.box.top << " " << c.box.width << "x" << c.box.height << " -> "
                 << c.size);
    std::vector<uint8_t> bytes = read_image_file(path);
    auto [w, h] = jpeg_size(bytes, path);
    Image got = draft_resized_crop({path, bytes, w, h}, c.box, c.size);
    Tensor want = npy(f.dir / ("draft" + std::to_string(k) + ".npy"));
    REQUIRE(want.sizes() == Shape{c.size, c.size, 3});
    REQUIRE(got.width == c.size);
    REQUIRE(got.height == c.size);
    const uint8_t* wp = want.data_ptr<uint8_t>();
    // The reduced decode against the full one: the same picture, a little softer.
    Image full = resize_bilinear(crop(decode_image(path), c.box), c.size, c.size);
    int worst = 0, differing = 0;
    double mean_to_full = 0;
    for (size_t i = 0; i < got.pixels.size(); ++i) {
      worst = std::max(worst, std::abs(int(got.pixels[i]) - int(wp[i])));
      differing += got.pixels[i] != wp[i];
      mean_to_full += std::abs(int(got.pixels[i]) - int(full.pixels[i]));
    }
    mean_to_full /= double(got.pixels.size());
    INFO("worst difference to PIL's draft pipeline " << worst << " (" << differing << " of " << got.pixels.size()
                                                       << " values), mean difference to a full decode " << mean_to_full);
    REQUIRE(worst == 0);  // the same libjpeg-turbo scaled IDCT and Pillow's resampling: bit-exact
    REQUIRE(mean_to_full < 6.0);
  }
}

TEST_CASE("RandomHorizontalFlip flips half of the time, and only flips", "[vision]") {
  Image img(3, 2);
  for (size_t k = 0; k < img.pixels.size(); ++k) img.pixels[k] = uint8_t(k);
  Image flipped = hflip(img);
  REQUIRE(std::equal(flipped.row(1), flipped.row(1) + 3, img.row(1) + 6));
  Transform t = RandomHorizontalFlip();
  Rng rng(4);
  int flips = 0;
  const int n = 10000;
  for (int k = 0; k < n; ++k) {
    Image out = std::get<Image>(t(img, rng));
    if (out.pixels == flipped.pixels) ++flips;
    else REQUIRE(out.pixels == img.pixels);
  }
  CHECK(std::fabs(double(flips) / n - 0.5) < 0.02);  // 4 standard errors
}

TEST_CASE("Resampling: the AVX2 passes, a crop box and an output window give the portable code's bytes", "[vision]") {
  // PIL equality itself is checked on the fixtures above; here every code path against the plain C++ passes, on
  // random pictures, input boxes, output sizes and output windows: shrinking and enlarging, 1-pixel sides, both
  // pass orders, boxes touching the buffer's last byte (where the AVX2 horizontal pass must not load past it).
  if (!resample_has_avx2()) WARN("no AVX2 on this CPU: only the crop box path is compared");
  std::mt19937_64 rng(7);
  auto pick = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  int64_t compared = 0;
  for (int trial = 0; trial < 400; ++trial) {
    Image img(pick(1, 300), pick(1, 300));
    for (uint8_t& v : img.pixels) v = uint8_t(pick(0, 255));
    int64_t out_w = pick(1, trial % 4 == 0 ? 600 : 240), out_h = pick(1, trial % 4 == 1 ? 600 : 240);
    Box box{pick(0, img.height - 1), pick(0, img.width - 1), 0, 0};
    box.height = trial % 3 == 0 ? img.height - box.top : pick(1, img.height - box.top);
    box.width = trial % 3 == 0 ? img.width - box.left : pick(1, img.width - box.left);
    INFO(img.width << "x" << img.height << " -> " << out_w << "x" << out_h << ", box " << box.width << "x"
                   << box.height << " at (" << box.left << ", " << box.top << ")");
    Image want = resize_bilinear(img, out_w, out_h, ResampleCode::kPortable);
    REQUIRE(resize_bilinear(img, out_w, out_h).pixels == want.pixels);
    Image want_box = resize_bilinear(crop(img, box), out_w, out_h, ResampleCode::kPortable);
    REQUIRE(resize_bilinear(img, box, out_w, out_h).pixels == want_box.pixels);
    REQUIRE(resize_bilinear(img, box, out_w, out_h, ResampleCode::kPortable).pixels == want_box.pixels);
    Box window{pick(0, out_h - 1), pick(0, out_w - 1), 0, 0};
    window.height = pick(1, out_h - window.top);
    window.width = pick(1, out_w - window.left);
    INFO("window " << window.width << "x" << window.height << " at (" << window.left << ", " << window.top << ")");
    Image want_window = crop(want, window);
    REQUIRE(resize_bilinear_window(img, out_w, out_h, window).pixels == want_window.pixels);
    REQUIRE(resize_bilinear_window(img, out_w, out_h, window, ResampleCode::kPortable).pixels == want_window.pixels);
    compared += int64_t(want.pixels.size() + want_box.pixels.size() + want_window.pixels.size());
  }
  REQUIRE(compared > 1000000);
}

TEST_CASE("Compose runs ToTensor + Normalize as one pass with the same bits as the two steps", "[vision]") {
  Image img(37, 23);
  std::mt19937_64 gen(3);
  for (uint8_t& v : img.pixels) v = uint8_t(gen());
  Rng rng(0);
  Tensor fused = std::get<Tensor>(Compose({ToTensor(), Normalize(kImageNetMean, kImageNetStd)})(img, rng));
  Tensor apart = std::get<Tensor>(Normalize(kImageNetMean, kImageNetStd)(ToTensor()(img, rng), rng));
  REQUIRE(fused.sizes() == Shape{3, 23, 37});
  std::vector<float> f = fused.to_vector<float>(), a = apart.to_vector<float>();
  REQUIRE(std::memcmp(f.data(), a.data(), f.size() * sizeof(float)) == 0);
  // A Normalize of another channel count is not fused and still names the mismatch.
  REQUIRE_THROWS_WITH(Compose({ToTensor(), Normalize({0.5f}, {0.5f})})(img, rng),
                      Catch::Contains("[Normalize] expected a [1, H, W] tensor, got [3, 23, 37]"));
}

TEST_CASE("Compose runs Resize + CenterCrop as one step with the bytes of the two steps", "[vision]") {
  Image img(37, 23);
  std::mt19937_64 gen(5);
  for (uint8_t& v : img.pixels) v = uint8_t(gen());
  Rng rng(0);
  // shrinking, enlarging, odd and even margins, and crops larger than the resized image (padded with black)
  for (auto [r, c] : std::vector<std::pair<int64_t, int64_t>>{{20, 16}, {20, 17}, {23, 23}, {40, 31}, {12, 15}, {8, 30}}) {
    INFO("Resize(" << r << ") + CenterCrop(" << c << ")");
    Image fused = std::get<Image>(Compose({Resize(r), CenterCrop(c)})(img, rng));
    Image apart = std::get<Image>(CenterCrop(c)(Resize(r)(img, rng), rng));
    REQUIRE(fused.width == apart.width);
    REQUIRE(fused.height == apart.height);
    REQUIRE(fused.pixels == apart.pixels);
  }
}

TEST_CASE("ImageFolder's random transforms depend on (seed, epoch, index), not on workers", "[vision]") {
  const Fixture& f = fixture();
  if (!f.ok) return;
  auto make = [&](bool draft) {
    return std::make_shared<ImageFolder>(
        f.root.string(), ImageFolderOptions{.transform = Compose({RandomResizedCrop(24), RandomHorizontalFlip(),
                                                                  ToTensor(), Normalize(kImageNetMean, kImageNetStd)}),
                                            .seed = 11,
                                            .draft = draft});
  };
  auto epoch_sums = [&](int workers, int64_t epoch, bool draft = false) {
    data::DataLoader loader(make(draft), {.batch_size = 7, .shuffle = true, .seed = 2, .num_workers = workers});
    loader.set_epoch(epoch);
    std::vector<float> all;
    for (data::Batch& b : loader) {
      std::vector<float> v = b.data.to_vector<float>();
      all.insert(all.end(), v.begin(), v.end());
    }
    return all;
  };
  std::vector<float> serial = epoch_sums(0, 1);
  REQUIRE(serial == epoch_sums(3, 1));
  REQUIRE(serial != epoch_sums(0, 2));
  // Draft decoding draws the same boxes (on the full-size image) and is as deterministic; its pixels differ only
  // where a JPEG's box was large enough for a reduced scale, and then only a little.
  std::vector<float> draft = epoch_sums(0, 1, true);
  REQUIRE(draft == epoch_sums(2, 1, true));
  REQUIRE(draft.size() == serial.size());
  double mean = 0;
  for (size_t k = 0; k < draft.size(); ++k) mean += std::fabs(double(draft[k]) - double(serial[k]));
  mean /= double(draft.size());
  INFO("mean difference draft vs full decode (normalised units) " << mean);
  REQUIRE(draft != serial);
  REQUIRE(mean < 0.1);  // about 5/255 after ImageNet's std; a different box would differ by about 1
}

TEST_CASE("Bad image files stop with an error naming the file", "[vision]") {
  const Fixture& f = fixture();
  if (!f.ok) return;
  fs::path bad = f.dir / "bad";
  fs::remove_all(bad);
  fs::create_directories(bad / "only");
  std::vector<uint8_t> jpeg, png;
  {
    std::ifstream a(f.root / "cat" / "q4_50.jpg", std::ios::binary);
    jpeg.assign(std::istreambuf_iterator<char>(a), {});
    std::ifstream b(f.root / "Dog" / "rgb4.png", std::ios::binary);
    png.assign(std::istreambuf_iterator<char>(b), {});
  }
  auto write = [&](const std::string& name, const std::vector<uint8_t>& bytes) {
    std::ofstream o(bad / "only" / name, std::ios::binary);
    o.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    return (bad / "only" / name).string();
  };
  std::vector<uint8_t> truncated(jpeg.begin(), jpeg.begin() + std::ptrdiff_t(jpeg.size() / 2));
  std::vector<uint8_t> broken_crc = png;
  broken_crc[8 + 8 + 13] ^= 0x01;  // the IHDR chunk's CRC (signature, length + type, 13 data bytes)
  std::vector<uint8_t> broken_idat = png;
  broken_idat[png.size() - 12 - 1] ^= 0x40;  // the last byte of the CRC of the IDAT before the 12-byte IEND
  std::string text = "this is a text file, not a JPEG\n";
  std::vector<std::pair<std::string, std::string>> cases{
      {write("truncated.jpg", truncated), "truncated"},
      {write("crc.png", broken_crc), "CRC"},
      {write("idat.png", broken_idat), "CRC"},
      {write("empty.jpg", {}), "empty"},
      {write("text.jpg", std::vector<uint8_t>(text.begin(), text.end())), "neither a JPEG nor a PNG"},
      {write("cut.png", std::vector<uint8_t>(png.begin(), png.begin() + 100)), "truncated"},
  };
  // scikit-image's own truncated JPEG test file, where installed.
  if (std::ifstream real{fs::path(kSkimageData) / "truncated.jpg", std::ios::binary})
    cases.push_back({write("skimage_truncated.jpg", {std::istreambuf_iterator<char>(real), {}}), "truncated"});
  for (const auto& [path, why] : cases) {
    INFO(path);
    REQUIRE_THROWS_WITH(decode_image(path), Catch::Contains(path) && Catch::Contains(why, Catch::CaseSensitive::No));
  }
  // Through the loader: the error names the sample index and the file.
  auto ds = std::make_shared<ImageFolder>(bad.string());
  data::DataLoader loader(ds, {.batch_size = 2, .num_workers = 2});
  REQUIRE_THROWS_WITH([&] { for (data::Batch& b : loader) (void)b; }(),
                      Catch::Contains("sample 0") && Catch::Contains(ds->samples()[0].first));
  // skip_bad_images: the bad files leave their batches, the good one arrives, bad_files() names the rest; a batch of
  // bad files only is not yielded at all.
  {
    std::ofstream o(bad / "only" / "zz_good.jpg", std::ios::binary);
    o.write(reinterpret_cast<const char*>(jpeg.data()), std::streamsize(jpeg.size()));
  }
  auto lenient = std::make_shared<ImageFolder>(bad.string(), ImageFolderOptions{.skip_bad_images = true});
  REQUIRE(lenient->size() == int64_t(cases.size()) + 1);
  for (int workers : {0, 2}) {
    data::DataLoader skipping(lenient, {.batch_size = 3, .num_workers = workers});
    std::vector<int64_t> seen;
    for (data::Batch& b : skipping) {
      REQUIRE(b.data.size(0) == int64_t(b.indices.size()));
      seen.insert(seen.end(), b.indices.begin(), b.indices.end());
    }
    REQUIRE(seen == std::vector<int64_t>{lenient->size() - 1});
    std::vector<std::string> skipped = lenient->bad_files();
    REQUIRE(skipped.size() == cases.size());
    for (const auto& [path, why] : cases) REQUIRE(std::find(skipped.begin(), skipped.end(), path) != skipped.end());
  }
  fs::remove(bad / "only" / "zz_good.jpg");
  // An empty class folder, a missing root.
  fs::create_directories(bad / "empty_class");
  REQUIRE_THROWS_WITH(ImageFolder(bad.string()), Catch::Contains("no valid file") && Catch::Contains("empty_class"));
  REQUIRE_THROWS_WITH(ImageFolder((bad / "missing").string()), Catch::Contains("missing") && Catch::Contains("not a folder"));
}

TEST_CASE("eval_resnet18 --data folder: logits equal torchvision's ImageFolder + transforms + model", "[vision][programs]") {
  const Fixture& f = fixture();
  if (!f.ok) return;
  fs::path data = f.dir / "data";
  fs::remove_all(data);
  fs::create_directories(data);
  fs::create_directory_symlink(f.root, data / "val");
  // A randomly initialised torchvision ResNet-18 with 3 classes, and its fp32 logits on the folder through
  // torchvision's ImageFolder with Resize(36) + CenterCrop(32) + ToTensor + ImageNet Normalize.
  testing::run_python(R"(
import numpy as np, torch, torchvision
from torchvision import datasets, transforms
torch.manual_seed(0)
m = torchvision.models.resnet18(num_classes=3)
with torch.no_grad():
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1); mod.running_var.uniform_(0.5, 2.0)
torch.save(m.state_dict(), ")" + (f.dir / "w.pth").string() + R"(")
m.eval()
t = transforms.Compose([transforms.Resize(36), transforms.CenterCrop(32), transforms.ToTensor(),
                        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
ds = datasets.ImageFolder(")" + (data / "val").string() + R"(", transform=t)
x = torch.stack([ds[i][0] for i in range(len(ds))])
with torch.no_grad():
    np.save(")" + (f.dir / "want_logits.npy").string() + R"(", m(x).numpy())
)",
                      f.dir, testing::torch2_python());
  std::string out_npy = (f.dir / "got_logits.npy").string();
  auto r = testing::run_command(testing::bin("eval_resnet18") + " --weights " + (f.dir / "w.pth").string() +
                                " --data folder --data-dir " + data.string() +
                                " --image-size 32 --resize 36 --device cpu --batch-size 16 --workers 2 --logits " +
                                out_npy);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  REQUIRE(r.output.find("test accuracy: ") != std::string::npos);
  Tensor got = npy(out_npy), want = npy(f.dir / "want_logits.npy");
  REQUIRE(got.sizes() == want.sizes());
  std::vector<float> g = got.to_vector<float>(), w = want.to_vector<float>();
  double worst = 0, scale = 0;
  for (size_t k = 0; k < g.size(); ++k) {
    worst = std::max(worst, std::fabs(double(g[k]) - double(w[k])));
    scale = std::max(scale, std::fabs(double(w[k])));
  }
  INFO("worst logit difference " << worst << " (largest logit " << scale << ")");
  // The same input pixels (bit-exact above) through fp32 convolutions summed in another order.
  REQUIRE(worst <= 1e-4 * std::max(1.0, scale));
  // predict_resnet18 on two of the images: top-3 = all classes, probabilities = softmax of torchvision's logits.
  ImageFolder ds((data / "val").string());
  for (size_t i : {size_t(0), size_t(13)}) {
    const std::string& image = ds.samples()[i].first;
    auto p = testing::run_command(testing::bin("predict_resnet18") + " --weights " + (f.dir / "w.pth").string() +
                                  " --classes " + (data / "val").string() +
                                  " --image-size 32 --resize 36 --top 3 --device cpu --json " + image);
    INFO(p.output);
    REQUIRE(p.exit_code == 0);
    nlohmann::json j = nlohmann::json::parse(p.output);
    REQUIRE(j.size() == 1);
    REQUIRE(j[0]["image"] == image);
    REQUIRE(j[0]["top"].size() == 3);
    std::vector<double> e(3);
    double m = std::max({double(w[3 * i]), double(w[3 * i + 1]), double(w[3 * i + 2])}), z = 0;
    for (size_t c = 0; c < 3; ++c) z += e[c] = std::exp(double(w[3 * i + c]) - m);
    double last = 2;
    for (const auto& t : j[0]["top"]) {
      int64_t c = t["index"].get<int64_t>();
      REQUIRE(t["class"] == ds.classes()[size_t(c)]);
      REQUIRE(t["prob"].get<double>() <= last);
      last = t["prob"].get<double>();
      REQUIRE(std::fabs(last - e[size_t(c)] / z) < 1e-4);
    }
  }
  // A missing split names the path.
  auto missing = testing::run_command(testing::bin("eval_resnet18") + " --weights " + (f.dir / "w.pth").string() +
                                      " --data folder --data-dir " + data.string() + " --split train --device cpu");
  REQUIRE(missing.exit_code != 0);
  REQUIRE(missing.output.find((data / "train").string()) != std::string::npos);
}

TEST_CASE("train_resnet18 --data folder --pretrained fine-tunes a torchvision file; PyTorch gets the printed accuracy",
          "[vision][programs]") {
  const Fixture& f = fixture();
  if (!f.ok) return;
  fs::path data = f.dir / "train_data";
  fs::remove_all(data);
  fs::create_directories(data);
  fs::create_directory_symlink(f.root, data / "train");
  fs::create_directory_symlink(f.root, data / "val");
  std::string pre = (f.dir / "imagenet_layout.pth").string(), out = (f.dir / "model_fp16.pth").string();
  std::string py = testing::torch2_python();
  testing::run_python("import torch, torchvision\ntorch.manual_seed(1)\ntorch.save(torchvision.models.resnet18()"
                      ".state_dict(), '" + pre + "')\n",
                      f.dir, py);
  auto r = testing::run_command(testing::bin("train_resnet18") + " --data folder --data-dir " + data.string() +
                                " --image-size 32 --epochs 1 --batch-size 16 --device cpu --workers 2 --pretrained " +
                                pre + " --out " + out);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  REQUIRE(r.output.find("fc has 1000 outputs, the data 3 classes: fc replaced") != std::string::npos);
  auto at = r.output.rfind("test accuracy: ");
  REQUIRE(at != std::string::npos);
  double printed = std::stod(r.output.substr(at + 15));
  // PyTorch: torchvision's resnet18(num_classes=3).half() loads the file strictly; its fp32 evaluation through
  // torchvision's ImageFolder pipeline (Resize(37) = round(32 * 256 / 224), CenterCrop(32), ImageNet Normalize).
  // The layers other than fc moved from the pretrained values by training, not from a fresh initialisation.
  std::string got = testing::run_python(R"(
import torch, torchvision
from torchvision import datasets, transforms
m = torchvision.models.resnet18(num_classes=3).half()
sd = torch.load(")" + out + R"(", weights_only=True)
m.load_state_dict(sd)
pre = torch.load(")" + pre + R"(", weights_only=True)
moved = (sd['conv1.weight'].float() - pre['conv1.weight']).abs().max().item()
assert 0 < moved < 0.05, moved
t = transforms.Compose([transforms.Resize(37), transforms.CenterCrop(32), transforms.ToTensor(),
                        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
ds = datasets.ImageFolder(")" + (data / "val").string() + R"(", transform=t)
x = torch.stack([ds[i][0] for i in range(len(ds))]); y = torch.tensor([s[1] for s in ds.samples])
m = m.float().eval()
with torch.no_grad():
    print(len(ds), (m(x).argmax(1) == y).float().mean().item())
)",
                                        f.dir, py);
  std::istringstream in(got);
  double n, torch_acc;
  in >> n >> torch_acc;
  auto ev = testing::run_command(testing::bin("eval_resnet18") + " --weights " + out + " --data folder --data-dir " +
                                 data.string() + " --image-size 32 --device cpu --precision fp32");
  INFO(ev.output);
  REQUIRE(ev.exit_code == 0);
  REQUIRE(std::stod(ev.output.substr(ev.output.rfind("test accuracy: ") + 15)) == Approx(torch_acc).margin(5e-5));
  // The trainer evaluated in fp16: within one image of the fp32 evaluation.
  REQUIRE(std::fabs(printed - torch_acc) <= 1.0 / n + 1e-4);
}

TEST_CASE("train_resnet18 --data folder --augment is deterministic for any --workers; --skip-bad-images",
          "[vision][programs]") {
  const Fixture& f = fixture();
  if (!f.ok) return;
  fs::path data = f.dir / "augment_data";
  fs::remove_all(data);
  fs::create_directories(data);
  fs::copy(f.root, data / "train", fs::copy_options::recursive);
  fs::create_directory_symlink(f.root, data / "val");
  // A truncated JPEG among the training images.
  fs::path bad = data / "train" / "cat" / "zz_truncated.jpg";
  {
    std::ifstream a(f.root / "cat" / "q4_50.jpg", std::ios::binary);
    std::vector<char> jpeg((std::istreambuf_iterator<char>(a)), {});
    std::ofstream(bad, std::ios::binary).write(jpeg.data(), std::streamsize(jpeg.size() / 2));
  }
  auto train = [&](const std::string& flags, const std::string& out) {
    fs::remove(f.dir / out);
    return testing::run_command(testing::bin("train_resnet18") + " --data folder --data-dir " + data.string() +
                                " --image-size 32 --epochs 2 --batch-size 16 --device cpu --precision fp32 --out " +
                                (f.dir / out).string() + " " + flags);
  };
  auto bytes = [&](const std::string& name) {
    std::ifstream in(f.dir / name, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  };
  // Without --skip-bad-images: the error names the file, the exit is non-zero, no model is written.
  auto strict = train("--augment --workers 2", "strict.pth");
  INFO(strict.output);
  REQUIRE(strict.exit_code != 0);
  REQUIRE(strict.output.find(bad.string()) != std::string::npos);
  REQUIRE(strict.output.find("truncated") != std::string::npos);
  REQUIRE(!fs::exists(f.dir / "strict.pth"));
  // With it: one warning naming the file over two epochs, and the same model for 0 and 3 workers.
  auto serial = train("--augment --skip-bad-images --workers 0", "serial.pth");
  INFO(serial.output);
  REQUIRE(serial.exit_code == 0);
  const std::string warning = "warning: --skip-bad-images: skipped 1 image file(s) of " + (data / "train").string() +
                              " that could not be decoded: " + bad.string();
  auto first = serial.output.find(warning);
  REQUIRE(first != std::string::npos);
  REQUIRE(serial.output.find("--skip-bad-images", first + warning.size()) == std::string::npos);
  auto threaded = train("--augment --skip-bad-images --workers 3", "threaded.pth");
  INFO(threaded.output);
  REQUIRE(threaded.exit_code == 0);
  REQUIRE(bytes("serial.pth") == bytes("threaded.pth"));
  // The augmentations are drawn: without --augment (Resize + CenterCrop) the model differs.
  auto plain = train("--skip-bad-images --workers 2", "plain.pth");
  INFO(plain.output);
  REQUIRE(plain.exit_code == 0);
  REQUIRE(!bytes("serial.pth").empty());
  REQUIRE(bytes("serial.pth") != bytes("plain.pth"));
  // eval_resnet18 on the train split: stops naming the file and writes no logits, or with --skip-bad-images
  // warns and leaves the file's row out.
  auto eval = [&](const std::string& flags) {
    fs::remove(f.dir / "train_logits.npy");
    return testing::run_command(testing::bin("eval_resnet18") + " --weights " + (f.dir / "serial.pth").string() +
                                " --data folder --data-dir " + data.string() + " --split train --image-size 32" +
                                " --device cpu --logits " + (f.dir / "train_logits.npy").string() + " " + flags);
  };
  auto eval_strict = eval("");
  INFO(eval_strict.output);
  REQUIRE(eval_strict.exit_code != 0);
  REQUIRE(eval_strict.output.find(bad.string()) != std::string::npos);
  REQUIRE(!fs::exists(f.dir / "train_logits.npy"));
  auto eval_skip = eval("--skip-bad-images");
  INFO(eval_skip.output);
  REQUIRE(eval_skip.exit_code == 0);
  REQUIRE(eval_skip.output.find("skipped 1 image file(s)") != std::string::npos);
  REQUIRE(npy(f.dir / "train_logits.npy").sizes() == Shape{ImageFolder((data / "train").string()).size() - 1, 3});
}
