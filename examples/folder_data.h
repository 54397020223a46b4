// Folder datasets for the example programs (--data folder --data-dir DIR): torchvision's ImageFolder under
// DIR/<split>/<class>/*, the evaluation transform of torchvision's ImageNet reference recipe (Resize(R) +
// CenterCrop(S) + ToTensor + ImageNet Normalize, R = round(S * 256 / 224) unless given), batched by ht::data's
// DataLoader; and ResNet-18 weights read from a torchvision-layout state_dict. Header-only, as common.h.
#pragma once
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>

#include <halftorch/halftorch.h>

#include "data/dataloader.h"
#include "examples/common.h"
#include "vision/image_folder.h"
#include "vision/transforms.h"

namespace examples {

// --resize's default for --image-size S: torchvision's reference recipe resizes to 256 for a 224 crop.
inline int64_t default_resize(int64_t image_size) { return int64_t(std::lround(double(image_size) * 256.0 / 224.0)); }

inline ht::vision::Transform eval_transform(int64_t image_size, int64_t resize) {
  using namespace ht::vision;
  return Compose({Resize(resize), CenterCrop(image_size), ToTensor(), Normalize(kImageNetMean, kImageNetStd)});
}

// DIR/<split> as an ImageFolder with the evaluation transform; a missing split folder names the path.
inline std::shared_ptr<ht::vision::ImageFolder> folder_split(const std::string& dir, const std::string& split,
                                                              int64_t image_size, int64_t resize) {
  std::filesystem::path root = std::filesystem::path(dir) / split;
  HT_CHECK(std::filesystem::is_directory(root), "--data folder: ", root.string(), " is not a folder (expected ",
           dir, "/", split, "/<class>/<image>)");
  return std::make_shared<ht::vision::ImageFolder>(root.string(),
                                                    ht::vision::ImageFolderOptions{.transform = eval_transform(image_size, resize)});
}

// DIR/<split> decoded and transformed once into memory (the in-memory Split the trainer's loop walks), loaded by
// `workers` threads; the first `limit` samples of ImageFolder's order when limit > 0.
inline Split load_folder_split(const std::string& dir, const std::string& split, int64_t image_size, int64_t resize,
                               int workers, int64_t limit, std::vector<std::string>* classes = nullptr) {
  auto ds = folder_split(dir, split, image_size, resize);
  if (classes) *classes = ds->classes();
  int64_t n = limit > 0 ? std::min(limit, ds->size()) : ds->size();
  ht::Tensor images = ht::empty({n, 3, image_size, image_size}, {.dtype = ht::kFloat32});
  ht::Tensor labels = ht::empty({n}, {.dtype = ht::kInt64});
  ht::data::DataLoader loader(ds, {.batch_size = 64, .num_workers = workers},
                              std::make_shared<ht::data::SequentialSampler>(n));
  int64_t at = 0;
  for (ht::data::Batch& b : loader) {
    int64_t k = b.data.size(0);
    images.narrow(0, at, k).copy_(b.data);
    labels.narrow(0, at, k).copy_(b.target);
    at += k;
  }
  return {images, labels};
}

// Loads a torchvision-layout ResNet-18 state_dict (e.g. torch.save(resnet18(weights=...).state_dict(), FILE)) into
// `model`. When its fc has another class count than the model, the model keeps its own fresh fc (initialised as
// torchvision's nn.Linear) and every other tensor is loaded: the standard fine-tuning recipe.
inline void load_pretrained(ht::nn::Module& model, const std::string& path, int64_t num_classes) {
  ht::StateDict sd = ht::load_state_dict_file(path);
  const ht::Tensor* fc = sd.find("fc.weight");
  HT_CHECK(fc != nullptr && fc->dim() == 2, "--pretrained ", path, ": no 2-d fc.weight; expected a ResNet-18 state_dict");
  const int64_t outputs = fc->size(0);
  if (outputs != num_classes) {
    std::erase_if(sd.tensors, [](const auto& kv) { return kv.first == "fc.weight" || kv.first == "fc.bias"; });
    std::cerr << "--pretrained " << path << ": fc has " << outputs << " outputs, the data " << num_classes
              << " classes: fc replaced by a freshly initialised layer\n";
    model.load_state_dict(sd, /*strict=*/false);
  } else {
    model.load_state_dict(sd);
  }
}

}  // namespace examples
