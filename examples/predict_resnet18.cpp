// predict_resnet18: classifies image files with a ResNet-18 state_dict (PyTorch- or halftorch-written) the way
// torchvision's evaluation recipe does (Resize(R) + CenterCrop(S), ImageNet normalisation) and prints the top-K
// classes with their softmax probabilities; the class names are the sorted subfolder names of --classes DIR
// (the ImageFolder the model was trained on).
//   predict_resnet18 --weights W.pth --classes DIR [--top K] [--image-size S] [--resize R] [--json]
//                    [--device auto|cpu|cuda] IMAGE...
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <numeric>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "examples/common.h"
#include "examples/folder_data.h"
#include "vision/image.h"

namespace {

const char* kUsage =
    "usage: predict_resnet18 --weights W.pth --classes DIR [--top K] [--image-size S] [--resize R] [--json]\n"
    "                        [--device auto|cpu|cuda] IMAGE...\n";

int64_t positive(const std::string& flag, const std::string& v) { return examples::positive_integer("predict_resnet18", flag, v); }

}  // namespace

int main(int argc, char** argv) {
  try {
    std::string weights, classes_dir, device_name = "auto";
    int64_t top = 5, image_size = 224, resize = 0;
    bool json = false;
    std::vector<std::string> images;
    for (int i = 1; i < argc; ++i) {
      std::string f = argv[i];
      if (f == "-h" || f == "--help") {
        std::cout << kUsage;
        return 0;
      }
      if (f == "--json") {
        json = true;
        continue;
      }
      if (f.rfind("--", 0) != 0) {
        images.push_back(f);
        continue;
      }
      HT_CHECK(i + 1 < argc, "[predict_resnet18] expected a value after ", f);
      std::string v = argv[++i];
      if (f == "--weights") weights = v;
      else if (f == "--classes") classes_dir = v;
      else if (f == "--device") device_name = v;
      else if (f == "--top") top = positive(f, v);
      else if (f == "--image-size") image_size = positive(f, v);
      else if (f == "--resize") resize = positive(f, v);
      else {
        std::cerr << "error: unknown flag " << f << "\n" << kUsage;
        return 2;
      }
    }
    if (weights.empty() || classes_dir.empty() || images.empty()) {
      std::cerr << "error: expected --weights, --classes and at least one image\n" << kUsage;
      return 2;
    }
    if (!resize) resize = examples::default_resize(image_size);
    std::vector<std::string> classes = ht::vision::find_classes(classes_dir);
    ht::StateDict sd = ht::load_state_dict_file(weights);
    const ht::Tensor* fc = sd.find("fc.weight");
    HT_CHECK(fc && fc->dim() == 2, "[predict_resnet18] ", weights, " has no 2-d fc.weight; expected a ResNet-18 state_dict");
    HT_CHECK(fc->size(0) == int64_t(classes.size()), "[predict_resnet18] ", classes_dir, " has ", classes.size(),
             " class folders, but the weights' fc has ", fc->size(0), " outputs");
    ht::Device device = examples::pick_device(device_name);
    auto model = ht::nn::resnet18({.num_classes = fc->size(0), .in_channels = 3});
    model->load_state_dict(sd);
    model->to(device);
    model->eval();
    ht::NoGradGuard no_grad;
    ht::vision::Transform t = examples::eval_transform(image_size, resize);
    ht::vision::Rng rng(0);
    nlohmann::json all = nlohmann::json::array();
    for (const std::string& path : images) {
      ht::Tensor x = std::get<ht::Tensor>(t(ht::vision::decode_image(path), rng));
      ht::Tensor logits = (*model)(x.reshape({1, 3, image_size, image_size}).to(device)).to(ht::kCPU, ht::kFloat32);
      std::vector<float> p = ht::softmax(logits, 1).to_vector<float>();
      std::vector<int64_t> order(p.size());
      std::iota(order.begin(), order.end(), int64_t(0));
      int64_t k = std::min<int64_t>(top, int64_t(p.size()));
      std::partial_sort(order.begin(), order.begin() + k, order.end(),
                        [&](int64_t a, int64_t b) { return p[size_t(a)] > p[size_t(b)] || (p[size_t(a)] == p[size_t(b)] && a < b); });
      nlohmann::json entry{{"image", path}, {"top", nlohmann::json::array()}};
      if (!json) std::printf("%s\n", path.c_str());
      for (int64_t r = 0; r < k; ++r) {
        int64_t c = order[size_t(r)];
        entry["top"].push_back({{"class", classes[size_t(c)]}, {"index", c}, {"prob", p[size_t(c)]}});
        if (!json) std::printf("  %-24s %6.4f\n", classes[size_t(c)].c_str(), p[size_t(c)]);
      }
      all.push_back(entry);
    }
    if (json) std::printf("%s\n", all.dump().c_str());
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
