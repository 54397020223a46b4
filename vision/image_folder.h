// ht::vision::ImageFolder: torchvision.datasets.ImageFolder's layout and rules. root/<class>/**/<file>: the
// classes are the sorted names of root's subfolders (index = position), the samples every file below a class
// folder whose name ends, case-insensitively, in one of torchvision's IMG_EXTENSIONS, sorted by folder then name
// (as sorted(os.walk(...)) and sorted(fnames) order them); other files are ignored, and a class folder without
// any image is an error, as in torchvision. get(i) decodes sample i and runs the transform (torchvision's
// default loader: PIL open + convert("RGB")).
#pragma once
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "halftorch/data/dataset.h"
#include "halftorch/vision/image.h"
#include "halftorch/vision/transforms.h"

namespace ht::vision {

// torchvision.datasets.folder.IMG_EXTENSIONS
inline const std::vector<std::string> kImageExtensions{".jpg", ".jpeg", ".png", ".ppm", ".bmp",
                                                        ".pgm", ".tif", ".tiff", ".webp"};

struct ImageFolderOptions {
  Transform transform;  // ToTensor() when empty
  uint64_t seed = 0;    // random transforms draw from a generator seeded with (seed, epoch, index)
  // > 0: JPEGs may be decoded at a reduced DCT scale (1/2 .. 1/8) that keeps both sides >= this (PIL's draft mode);
  // for augmenting training pipelines only, since the pixels then differ from a full decode.
  int64_t draft_min_size = 0;
};

class ImageFolder : public data::Dataset {
 public:
  explicit ImageFolder(std::string root, ImageFolderOptions options = {});

  int64_t size() const override { return int64_t(samples_.size()); }
  data::Example get(int64_t index) const override;  // data: the transform's tensor; target: int64 scalar class
  void set_epoch(int64_t epoch) override { epoch_ = epoch; }

  const std::vector<std::string>& classes() const { return classes_; }
  // (path, class index) in sample order: torchvision's dataset.samples.
  const std::vector<std::pair<std::string, int64_t>>& samples() const { return samples_; }
  const std::string& root() const { return root_; }

 private:
  std::string root_;
  ImageFolderOptions options_;
  std::vector<std::string> classes_;
  std::vector<std::pair<std::string, int64_t>> samples_;
  std::atomic<int64_t> epoch_{0};
};

// The sorted class folder names of `root` (torchvision's find_classes); an error when there are none.
std::vector<std::string> find_classes(const std::string& root);

}  // namespace ht::vision
