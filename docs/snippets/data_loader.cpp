// snippet: data_loader
#include <halftorch/halftorch.h>

#include <cstdio>
#include <vector>

int main() {
  // Any ht::data::Dataset: here 100 random 3x8x8 "images" with labels 0..9.
  ht::Generator gen(0);
  ht::Tensor images = ht::rand({100, 3, 8, 8}, gen);
  std::vector<int64_t> classes(100);
  for (int64_t i = 0; i < 100; ++i) classes[size_t(i)] = i % 10;
  ht::Tensor labels = ht::from_vector(classes, {100});
  auto dataset = std::make_shared<ht::data::TensorDataset>(images, labels);

  ht::data::DataLoader loader(dataset, {.batch_size = 32, .shuffle = true, .seed = 1, .num_workers = 2});
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    loader.set_epoch(epoch);  // a new order every epoch, the same order for the same seed and epoch
    for (ht::data::Batch& batch : loader)
      std::printf("epoch %lld: %lld images, first index %lld\n", (long long)epoch, (long long)batch.data.size(0),
                  (long long)batch.indices[0]);
  }
}
