#include "vision/image_folder.h"

#include <algorithm>
#include <filesystem>

#include "core/error.h"

namespace ht::vision {

namespace fs = std::filesystem;

namespace {

bool has_image_extension(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  for (const std::string& ext : kImageExtensions)
    if (lower.size() >= ext.size() && lower.compare(lower.size() - ext.size(), ext.size(), ext) == 0) return true;
  return false;
}

// A per-sample seed from (seed, epoch, index): splitmix64 steps, so neighbouring samples get unrelated streams.
uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

std::vector<std::string> find_classes(const std::string& root) {
  std::error_code ec;
  HT_CHECK(fs::is_directory(root, ec), "[ImageFolder] ", root, " is not a folder (expected root/<class>/<image>)");
  std::vector<std::string> classes;
  for (const fs::directory_entry& e : fs::directory_iterator(root))
    if (e.is_directory()) classes.push_back(e.path().filename().string());
  std::sort(classes.begin(), classes.end());
  HT_CHECK(!classes.empty(), "[ImageFolder] couldn't find any class folder in ", root);
  return classes;
}

ImageFolder::ImageFolder(std::string root, ImageFolderOptions options)
    : root_(std::move(root)), options_(std::move(options)) {
  if (!options_.transform) options_.transform = ToTensor();
  classes_ = find_classes(root_);
  for (size_t c = 0; c < classes_.size(); ++c) {
    // (folder, file name) pairs sorted as Python sorts os.walk's (root, dirs, files) triples and each fnames.
    std::vector<std::pair<std::string, std::string>> files;
    fs::path dir = fs::path(root_) / classes_[c];
    for (const fs::directory_entry& e :
         fs::recursive_directory_iterator(dir, fs::directory_options::follow_directory_symlink)) {
      if (e.is_directory()) continue;
      std::string name = e.path().filename().string();
      if (has_image_extension(name)) files.emplace_back(e.path().parent_path().string(), name);
    }
    HT_CHECK(!files.empty(), "[ImageFolder] found no valid file for the class ", classes_[c], " (", dir.string(),
             "); supported extensions are .jpg, .jpeg, .png, .ppm, .bmp, .pgm, .tif, .tiff, .webp");
    std::sort(files.begin(), files.end());
    for (auto& [folder, name] : files) samples_.emplace_back((fs::path(folder) / name).string(), int64_t(c));
  }
}

data::Example ImageFolder::get(int64_t index) const {
  HT_CHECK(index >= 0 && index < size(), "[ImageFolder] index ", index, " out of range for ", size(), " samples");
  const auto& [path, target] = samples_[size_t(index)];
  Tensor label = scalar_tensor(double(target), {.dtype = kInt64});
  Rng rng(mix(mix(mix(options_.seed) ^ uint64_t(epoch_.load())) ^ uint64_t(index)));
  Sample s;
  try {
    std::vector<uint8_t> bytes = read_image_file(path);
    if (options_.draft && is_jpeg(bytes)) {
      auto [w, h] = jpeg_size(bytes, path);
      s = options_.transform(EncodedJpeg{path, std::move(bytes), w, h}, rng);
    } else {
      s = options_.transform(decode_image_bytes(bytes, path), rng);
    }
  } catch (const IOError&) {  // the file's fault (decoding); a transform's own errors always propagate
    if (!options_.skip_bad_images) throw;
    std::lock_guard<std::mutex> lock(bad_mutex_);
    bad_.insert(index);
    return {Tensor(), label};
  }
  HT_CHECK(std::holds_alternative<Tensor>(s), "[ImageFolder] the transform of ", root_,
           " must end in a tensor (add ToTensor()), got an image");
  return {std::get<Tensor>(s), label};
}

std::vector<std::string> ImageFolder::bad_files() const {
  std::lock_guard<std::mutex> lock(bad_mutex_);
  std::vector<std::string> paths;
  for (int64_t i : bad_) paths.push_back(samples_[size_t(i)].first);
  return paths;
}

}  // namespace ht::vision
