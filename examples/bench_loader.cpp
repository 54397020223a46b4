// bench_loader: images/s of ht::data's DataLoader over an ImageFolder (decode + transforms + batching), the
// augmenting training pipeline (RandomResizedCrop + RandomHorizontalFlip, JPEGs decoded at a reduced DCT scale
// where the crop box is much larger than the output) or the evaluation one (Resize + CenterCrop, full decode).
// tests/py/bench_loader_torch.py measures torchvision's DataLoader with PIL the same way.
//   bench_loader --data-dir DIR [--image-size 224] [--workers N] [--batch-size 64] [--augment] [--epochs 2]
#include <chrono>
#include <cstdio>
#include <iostream>

#include "examples/common.h"
#include "examples/folder_data.h"

int main(int argc, char** argv) {
  const char* usage =
      "usage: bench_loader --data-dir DIR [--image-size 224] [--workers N] [--batch-size 64] [--augment] "
      "[--epochs 2]\n";
  std::string dir;
  int64_t image_size = 224, workers = 0, batch_size = 64, epochs = 2;
  bool augment = false;
  try {
    auto count = [](const std::string& f, const std::string& v) {
      int64_t n = std::stoll(v);
      HT_CHECK(n >= 0, "[bench_loader] expected a count for ", f, ", got ", v);
      return n;
    };
    if (auto rc = examples::parse_flags(argc, argv, usage, {"--augment"}, [&](const std::string& f, const std::string& v) {
          if (f == "--data-dir") dir = v;
          else if (f == "--image-size") image_size = count(f, v);
          else if (f == "--workers") workers = count(f, v);
          else if (f == "--batch-size") batch_size = count(f, v);
          else if (f == "--epochs") epochs = count(f, v);
          else if (f == "--augment") augment = true;
          else return false;
          return true;
        }))
      return *rc;
    HT_CHECK(!dir.empty(), "[bench_loader] expected --data-dir DIR");
    using namespace ht::vision;
    ImageFolderOptions opt;
    if (augment) {
      opt.transform = examples::augment_transform(image_size);
      opt.draft = true;
    } else {
      opt.transform = examples::eval_transform(image_size, examples::default_resize(image_size));
    }
    auto ds = std::make_shared<ImageFolder>(dir, opt);
    ht::data::DataLoader loader(ds, {.batch_size = batch_size, .shuffle = true, .num_workers = int(workers)});
    double best = 0;
    for (int64_t e = 0; e < epochs; ++e) {
      loader.set_epoch(e);
      auto start = std::chrono::steady_clock::now();
      int64_t n = 0;
      for (ht::data::Batch& b : loader) n += b.data.size(0);
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      best = std::max(best, double(n) / s);
    }
    std::printf("halftorch loader: %s %lldx%lld, %lld images, %lld workers: %.1f images/s\n",
                augment ? "augment" : "eval", (long long)image_size, (long long)image_size, (long long)ds->size(),
                (long long)workers, best);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
