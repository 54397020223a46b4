// ht::vision::ImageFolder: torchvision.datasets.ImageFolder's layout and rules. root/<class>/**/<file>: the
// classes are the sorted names of root's subfolders (index = position), the samples every file below a class
// folder whose name ends, case-insensitively, in one of torchvision's IMG_EXTENSIONS, sorted by folder then name
// (as sorted(os.walk(...)) and sorted(fnames) order them); other files are ignored, and a class folder without
// any image is an error, as in torchvision. get(i) decodes sample i and runs the transform (torchvision's
// default loader: PIL open + convert("RGB")). With skip_bad_images, a file that cannot be decoded comes back as
// an Example without data, which the DataLoader leaves out of its batch, and is listed in bad_files().
#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>
#include <set>
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
  // JPEGs reach the transforms still encoded, so RandomResizedCrop decodes them at the reduced DCT scale its box
  // allows (PIL's draft mode; vision/transforms.h). For augmenting training pipelines only: the pixels then
  // differ from torchvision's full decode.
  bool draft = false;
  // A file that is corrupt, truncated, empty or not an image is skipped (get returns no data) instead of raising.
  bool skip_bad_images = false;
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
  // The paths of the samples skipped so far (skip_bad_images), in sample order.
  std::vector<std::string> bad_files() const;

 private:
  std::string root_;
  ImageFolderOptions options_;
  std::vector<std::string> classes_;
  std::vector<std::pair<std::string, int64_t>> samples_;
  std::atomic<int64_t> epoch_{0};
  mutable std::mutex bad_mutex_;
  mutable std::set<int64_t> bad_;
};

// The sorted class folder names of `root` (torchvision's find_classes); an error when there are none.
std::vector<std::string> find_classes(const std::string& root);

}  // namespace ht::vision
