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

}  // namespace examples
