// ht::data::Dataset: the shape of torch.utils.data.Dataset (map-style) and libtorch's torch::data::Dataset: a
// size and a get(index) that returns one example. get is const and may be called from several DataLoader
// workers at once, so an implementation must be safe to call concurrently.
#pragma once
#include <cstdint>
#include <memory>

#include "halftorch/core/tensor.h"

namespace ht::data {

// One sample: its data (an image as float32 [C, H, W], say) and its target (an int64 scalar class index, say).
// An Example whose data is undefined says the sample is unusable and is to be skipped (ImageFolder with
// skip_bad_images returns one for a corrupt file): the DataLoader leaves it out of its batch.
struct Example {
  Tensor data;
  Tensor target;
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual Example get(int64_t index) const = 0;
  // The DataLoader announces each epoch before it starts: a dataset with random transforms derives the
  // randomness of sample i from (its seed, epoch, i), so results do not depend on which worker loads it.
  virtual void set_epoch(int64_t epoch) {}
};

// Rows of two tensors with the same first dimension: data[i] and target[i] (torch.utils.data.TensorDataset).
// The existing readers become Datasets through it: TensorDataset(load_fashion_mnist(dir)).
class TensorDataset : public Dataset {
 public:
  TensorDataset(Tensor data, Tensor target);
  int64_t size() const override { return data_.size(0); }
  Example get(int64_t index) const override;

 private:
  Tensor data_, target_;
};

}  // namespace ht::data
