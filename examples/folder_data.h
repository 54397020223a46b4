// Folder datasets for the example programs (--data folder --data-dir DIR): torchvision's ImageFolder under
// DIR/<split>/<class>/*, the transforms of torchvision's ImageNet reference recipe (evaluation: Resize(R) +
// CenterCrop(S), R = round(S * 256 / 224) unless given; training with --augment: RandomResizedCrop(S) +
// RandomHorizontalFlip; both then ToTensor + ImageNet Normalize), batched by ht::data's DataLoader, whose workers
// decode batch by batch, so a folder larger than memory works; and ResNet-18 weights read from a
// torchvision-layout state_dict. Header-only, as common.h.
#pragma once
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <numeric>
#include <optional>
#include <set>
#include <string>

#include <halftorch/halftorch.h>

#include "data/dataloader.h"
#include "data/pin_memory.h"
#include "examples/common.h"
#include "examples/eval_metrics.h"
#include "vision/image_folder.h"
#include "vision/transforms.h"

namespace examples {

// --resize's default for --image-size S: torchvision's reference recipe resizes to 256 for a 224 crop.
inline int64_t default_resize(int64_t image_size) { return int64_t(std::lround(double(image_size) * 256.0 / 224.0)); }

inline ht::vision::Transform eval_transform(int64_t image_size, int64_t resize) {
  using namespace ht::vision;
  return Compose({Resize(resize), CenterCrop(image_size), ToTensor(), Normalize(kImageNetMean, kImageNetStd)});
}

inline ht::vision::Transform augment_transform(int64_t image_size) {
  using namespace ht::vision;
  return Compose({RandomResizedCrop(image_size), RandomHorizontalFlip(), ToTensor(),
                  Normalize(kImageNetMean, kImageNetStd)});
}

// DIR/<split> as an ImageFolder; a missing split folder names the path.
inline std::shared_ptr<ht::vision::ImageFolder> open_folder(const std::string& dir, const std::string& split,
                                                             ht::vision::ImageFolderOptions options) {
  std::filesystem::path root = std::filesystem::path(dir) / split;
  HT_CHECK(std::filesystem::is_directory(root), "--data folder: ", root.string(), " is not a folder (expected ",
           dir, "/", split, "/<class>/<image>)");
  return std::make_shared<ht::vision::ImageFolder>(root.string(), std::move(options));
}

// DIR/<split> with the evaluation transform.
inline std::shared_ptr<ht::vision::ImageFolder> folder_split(const std::string& dir, const std::string& split,
                                                              int64_t image_size, int64_t resize,
                                                              bool skip_bad_images = false) {
  return open_folder(dir, split, {.transform = eval_transform(image_size, resize), .skip_bad_images = skip_bad_images});
}

// One split as the trainer reads it: Fashion-MNIST or CIFAR-10 decoded in memory, or the first `count` samples of
// an ImageFolder that `workers` DataLoader threads decode batch by batch (2 batches ahead per worker).
struct SplitData {
  Split memory;
  std::shared_ptr<ht::vision::ImageFolder> folder;
  int64_t count = 0;
  int workers = 0;
  std::set<std::string> reported_bad;  // files already named in a --skip-bad-images warning
  int64_t size() const { return folder ? count : memory.size(); }
};

struct FolderSplitOptions {
  int64_t image_size = 224, resize = 256;
  bool augment = false;  // RandomResizedCrop + RandomHorizontalFlip with draft JPEG decoding, else Resize + CenterCrop
  uint64_t seed = 0;     // the augmentations' seed (with the epoch and the sample index)
  bool skip_bad_images = false;
  int workers = 0;
  int64_t limit = 0;  // > 0: the first `limit` samples in ImageFolder's order
};

inline SplitData folder_split_data(const std::string& dir, const std::string& split, const FolderSplitOptions& o) {
  ht::vision::ImageFolderOptions options{.seed = o.seed, .draft = o.augment, .skip_bad_images = o.skip_bad_images};
  options.transform = o.augment ? augment_transform(o.image_size) : eval_transform(o.image_size, o.resize);
  SplitData d;
  d.folder = open_folder(dir, split, std::move(options));
  d.count = o.limit > 0 ? std::min(o.limit, d.folder->size()) : d.folder->size();
  d.workers = o.workers;
  return d;
}

// A batch of images (float32 [B, C, H, W] on the CPU) and their int64 labels.
struct Rows {
  ht::Tensor images, labels;
};

// One epoch's batches of `data`: rows order[first_batch * batch_size ...] in batch_size groups, gathered from
// memory or loaded by the folder's DataLoader workers ahead of the caller (the augmentations of epoch `epoch`).
// For a CUDA `device`, a folder's batches come in pinned memory and each is copied to the GPU asynchronously while
// the previous one computes (handed out one batch ahead); in-memory batches stay on the CPU.
class EpochBatches {
 public:
  EpochBatches(const SplitData& data, std::vector<int64_t> order, int64_t first_batch, int64_t batch_size,
               int64_t epoch, ht::Device device = ht::kCPU)
      : data_(data), order_(std::move(order)), at_(std::min(int64_t(order_.size()), first_batch * batch_size)),
        batch_size_(batch_size), device_(device) {
    if (!data.folder) return;
    auto rest = std::make_shared<ht::data::ListSampler>(
        std::vector<int64_t>(order_.begin() + std::ptrdiff_t(at_), order_.end()));
    loader_.emplace(data.folder,
                    ht::data::DataLoaderOptions{.batch_size = batch_size, .num_workers = data.workers,
                                                .pin_memory = device.is_cuda()},
                    rest);
    loader_->set_epoch(epoch);
  }

  // The next batch; none when the epoch is over (early, when --skip-bad-images emptied whole batches).
  std::optional<Rows> next() {
    if (!loader_ || !device_.is_cuda()) return next_on_host();
    if (!started_) ahead_ = to_device(next_on_host());
    started_ = true;
    std::optional<Rows> out = std::move(ahead_);
    ahead_ = to_device(next_on_host());  // its copy overlaps the caller's work on `out`
    return out;
  }

 private:
  std::optional<Rows> next_on_host() {
    if (!loader_) {
      if (at_ >= int64_t(order_.size())) return std::nullopt;
      int64_t end = std::min(int64_t(order_.size()), at_ + batch_size_);
      Rows r{gather_rows(data_.memory.images, order_, at_, end), gather_rows(data_.memory.labels, order_, at_, end)};
      at_ = end;
      return r;
    }
    if (!it_) it_.emplace(loader_->begin());
    else if (*it_ != std::default_sentinel) ++*it_;
    if (*it_ == std::default_sentinel) return std::nullopt;
    return Rows{(*it_)->data, (*it_)->target};
  }

  std::optional<Rows> to_device(std::optional<Rows> r) const {
    if (!r) return r;
    return Rows{ht::data::to_device(r->images, device_, true), ht::data::to_device(r->labels, device_, true)};
  }

  const SplitData& data_;
  std::vector<int64_t> order_;
  int64_t at_, batch_size_;
  ht::Device device_;
  std::optional<ht::data::DataLoader> loader_;
  std::optional<ht::data::DataLoader::Iterator> it_;
  bool started_ = false;
  std::optional<Rows> ahead_;
};

// Top-1, top-5 and loss (eval_metrics.h) of images [begin, end) of `data`; a folder's are decoded as they go.
inline EvalSums evaluate_sums(ht::nn::Module& model, const SplitData& data, int64_t begin, int64_t end,
                              const Feed& feed, int64_t batch_size) {
  if (!data.folder) return evaluate_sums(model, data.memory, begin, end, feed, batch_size);
  std::vector<int64_t> range(size_t(std::max<int64_t>(end - begin, 0)));
  std::iota(range.begin(), range.end(), begin);
  ht::data::DataLoader loader(data.folder, {.batch_size = batch_size, .num_workers = data.workers},
                              std::make_shared<ht::data::ListSampler>(std::move(range)));
  bool was_training = model.is_training();
  model.eval();
  ht::NoGradGuard no_grad;
  EvalSums s;
  for (ht::data::Batch& b : loader) {
    ht::Tensor logits;
    {
      ht::amp::AutocastGuard autocast = feed.autocast_scope();
      logits = model(feed.input(b.data));
    }
    logits = logits.to(ht::kCPU, ht::kFloat32);
    std::vector<int64_t> pred = ht::argmax(logits, 1).to_vector<int64_t>();
    std::vector<int64_t> want = b.target.to_vector<int64_t>();
    for (size_t i = 0; i < pred.size(); ++i) s.top1 += pred[i] == want[i];
    add_top5_and_loss(s, logits.to_vector<float>(), want);
  }
  model.train(was_training);
  return s;
}

// --skip-bad-images: one warning naming the files of `data` skipped since the last warning (the first 5 of them).
inline void warn_skipped_images(SplitData& data) {
  if (!data.folder) return;
  std::vector<std::string> fresh;
  for (std::string& path : data.folder->bad_files())
    if (data.reported_bad.insert(path).second) fresh.push_back(std::move(path));
  if (fresh.empty()) return;
  std::fprintf(stderr, "warning: --skip-bad-images: skipped %zu image file(s) of %s that could not be decoded:",
               fresh.size(), data.folder->root().c_str());
  for (size_t i = 0; i < std::min<size_t>(fresh.size(), 5); ++i) std::fprintf(stderr, " %s", fresh[i].c_str());
  if (fresh.size() > 5) std::fprintf(stderr, " (and %zu more)", fresh.size() - 5);
  std::fprintf(stderr, "\n");
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
