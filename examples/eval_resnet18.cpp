// eval_resnet18: evaluates a PyTorch- or halftorch-written ResNet-18 state_dict on the Fashion-MNIST or
// CIFAR-10 test split, or on a folder of images (torchvision's ImageFolder layout, DIR/<split>/<class>/*, with
// Resize(R) + CenterCrop(S) and ImageNet normalisation), and prints `test accuracy: 0.XXXX` as its last line.
//   eval_resnet18 --weights W.pth [--data fashion-mnist|cifar10|folder] [--data-dir DIR] [--split val|train]
//                 [--image-size S] [--resize R] [--workers N] [--device auto|cpu|cuda]
//                 [--precision fp16|bf16|fp32] [--limit N] [--batch-size B] [--logits OUT.npy] [--skip-bad-images]
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "examples/common.h"
#include "examples/folder_data.h"
#include "io/npy.h"

namespace {

struct Args {
  std::string weights, data = "fashion-mnist", data_dir, device = "auto", precision = "fp32", logits, split = "val";
  int64_t limit = -1, batch_size = 256, image_size = 224, resize = 0, workers = 2;
  bool skip_bad_images = false;
};

const char* kUsage =
    "usage: eval_resnet18 --weights W.pth [--data fashion-mnist|cifar10|folder] [--data-dir DIR]\n"
    "                     [--split val|train] [--image-size S] [--resize R] [--workers N] [--skip-bad-images]\n"
    "                     (folder data)\n"
    "                     [--device auto|cpu|cuda] [--precision fp16|bf16|fp32] [--limit N] [--batch-size B]\n"
    "                     [--logits OUT.npy]\n";

int64_t to_count(const std::string& flag, const std::string& v) { return examples::positive_integer("eval_resnet18", flag, v); }

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string f = argv[i];
    if (f == "-h" || f == "--help") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (f == "--skip-bad-images") {
      a.skip_bad_images = true;
      continue;
    }
    HT_CHECK(i + 1 < argc, "[eval_resnet18] expected a value after ", f);
    std::string v = argv[++i];
    if (f == "--weights") a.weights = v;
    else if (f == "--data") a.data = v;
    else if (f == "--data-dir") a.data_dir = v;
    else if (f == "--device") a.device = v;
    else if (f == "--precision") a.precision = v;
    else if (f == "--limit") a.limit = to_count(f, v);
    else if (f == "--batch-size") a.batch_size = to_count(f, v);
    else if (f == "--logits") a.logits = v;
    else if (f == "--split") a.split = v;
    else if (f == "--image-size") a.image_size = to_count(f, v);
    else if (f == "--resize") a.resize = to_count(f, v);
    else if (f == "--workers") a.workers = v == "0" ? 0 : to_count(f, v);
    else ht::fail("[eval_resnet18] unknown flag ", f);
  }
  HT_CHECK(!a.weights.empty(), "[eval_resnet18] expected --weights W.pth");
  HT_CHECK(a.data == "fashion-mnist" || a.data == "cifar10" || a.data == "folder",
           "[eval_resnet18] expected --data fashion-mnist, cifar10 or folder, got ", a.data);
  HT_CHECK(a.data != "folder" || !a.data_dir.empty(), "[eval_resnet18] --data folder needs --data-dir DIR");
  HT_CHECK(a.split == "val" || a.split == "train", "[eval_resnet18] expected --split val or train, got ", a.split);
  HT_CHECK(a.device == "auto" || a.device == "cpu" || a.device == "cuda", "[eval_resnet18] expected --device auto, ",
           "cpu or cuda, got ", a.device);
  HT_CHECK(a.precision == "fp32" || a.precision == "fp16" || a.precision == "bf16",
           "[eval_resnet18] expected --precision fp16, bf16 or fp32, got ", a.precision);
  return a;
}

const ht::Tensor& require_tensor(const ht::StateDict& sd, const std::string& name, int64_t dims,
                                 const std::string& path) {
  const ht::Tensor* t = sd.find(name);
  HT_CHECK(t != nullptr, "[eval_resnet18] ", path, " has no tensor ", name, "; expected a ResNet-18 state_dict");
  HT_CHECK(t->dim() == dims, "[eval_resnet18] ", name, " in ", path, " has shape ", ht::shape_str(t->sizes()),
           ", expected a ", dims, "-d tensor");
  return *t;
}

// --data folder: DIR/<split> through ImageFolder + DataLoader; logits rows in ImageFolder's sample order (less
// the images --skip-bad-images skipped).
int run_folder(const Args& a) {
  ht::StateDict sd = ht::load_state_dict_file(a.weights);
  const ht::Tensor& conv1 = require_tensor(sd, "conv1.weight", 4, a.weights);
  const ht::Tensor& fc = require_tensor(sd, "fc.weight", 2, a.weights);
  HT_CHECK(conv1.size(1) == 3, "[eval_resnet18] weights do not fit folder images: tensor conv1.weight has shape ",
           ht::shape_str(conv1.sizes()), ", but RGB images need 3 input channels");
  int64_t num_classes = fc.size(0);
  int64_t resize = a.resize ? a.resize : examples::default_resize(a.image_size);
  auto ds = examples::folder_split(a.data_dir, a.split, a.image_size, resize, a.skip_bad_images);
  HT_CHECK(int64_t(ds->classes().size()) <= num_classes, "[eval_resnet18] ", ds->root(), " has ",
           ds->classes().size(), " classes, but the weights' fc has ", num_classes, " outputs");
  ht::Device device = examples::pick_device(a.device);
  ht::DType dtype = examples::precision_dtype(a.precision);
  auto model = ht::nn::resnet18({.num_classes = num_classes, .in_channels = 3});
  model->load_state_dict(sd);
  model->to(device).to(dtype);
  model->eval();
  int64_t n = a.limit > 0 ? std::min(a.limit, ds->size()) : ds->size();
  std::cerr << "resnet18 (3 -> " << num_classes << " classes) on " << device.str() << " in " << a.precision << ", "
            << n << " images of " << ds->root() << " at " << a.image_size << "x" << a.image_size << " (resize "
            << resize << ")\n";
  auto first_n = std::make_shared<ht::data::SequentialSampler>(n);
  ht::data::DataLoader loader(ds, {.batch_size = a.batch_size, .num_workers = int(a.workers)}, first_n);
  ht::NoGradGuard no_grad;
  std::vector<float> logits;
  int64_t correct = 0;
  for (ht::data::Batch& b : loader) {
    ht::Tensor out = (*model)(b.data.to(device, dtype)).to(ht::kCPU, ht::kFloat32);
    std::vector<int64_t> pred = ht::argmax(out, 1).to_vector<int64_t>();
    std::vector<int64_t> want = b.target.to_vector<int64_t>();
    for (size_t i = 0; i < pred.size(); ++i) correct += pred[i] == want[i];
    std::vector<float> l = out.to_vector<float>();
    logits.insert(logits.end(), l.begin(), l.end());
  }
  // --skip-bad-images: the skipped images have no row and do not count
  examples::SplitData named{.folder = ds};
  examples::warn_skipped_images(named);
  const int64_t rows = int64_t(logits.size()) / num_classes;
  if (!a.logits.empty()) ht::io::save_npy(ht::from_vector(logits, {rows, num_classes}), a.logits);
  std::printf("test accuracy: %.4f\n", rows ? double(correct) / double(rows) : 0.0);
  return 0;
}

int run(const Args& a) {
  if (a.data == "folder") return run_folder(a);
  examples::DataSpec spec = examples::data_spec(a.data);
  int64_t channels = spec.channels;
  ht::StateDict sd = ht::load_state_dict_file(a.weights);
  const ht::Tensor& conv1 = require_tensor(sd, "conv1.weight", 4, a.weights);
  const ht::Tensor& fc = require_tensor(sd, "fc.weight", 2, a.weights);
  ht::Shape want{64, channels, 7, 7};
  HT_CHECK(conv1.sizes() == want, "[eval_resnet18] weights do not fit ", a.data, ": tensor conv1.weight has shape ",
           ht::shape_str(conv1.sizes()), ", but ", a.data, " images (", channels, " channel", channels > 1 ? "s" : "",
           ") need shape ", ht::shape_str(want));
  int64_t num_classes = fc.size(0);

  ht::Device device = examples::pick_device(a.device);
  ht::DType dtype = examples::precision_dtype(a.precision);
  auto model = ht::nn::resnet18({.num_classes = num_classes, .in_channels = channels});
  model->load_state_dict(sd);
  model->to(device).to(dtype);

  std::string dir = a.data_dir.empty() ? examples::default_data_dir(spec) : a.data_dir;
  examples::Split test = examples::load_split(spec, dir, false, a.limit);
  int64_t n = test.size();
  std::cerr << "resnet18 (" << channels << " -> " << num_classes << " classes) on " << device.str() << " in "
            << a.precision << ", " << n << " " << a.data << " test images\n";
  std::vector<float> logits;
  double accuracy = examples::evaluate(*model, test, {device, dtype}, a.batch_size, a.logits.empty() ? nullptr : &logits);
  if (!a.logits.empty()) ht::io::save_npy(ht::from_vector(logits, {n, num_classes}), a.logits);
  std::printf("test accuracy: %.4f\n", accuracy);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
