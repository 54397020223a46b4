// ht::data::DataLoader: torch.utils.data.DataLoader's batching of a map-style Dataset. An epoch's batches come
// from a Sampler (sequential, or seeded random when shuffle: the same order for the same seed and epoch), are
// cut into batch_size groups (the short last one dropped with drop_last) and assembled by a collate function.
// With num_workers > 0, that many threads load whole batches ahead, at most num_workers * prefetch_factor
// batches in flight (PyTorch's bound), and the caller receives them in sampler order: the batches are the same
// for any worker count. An exception while loading a sample reaches the caller with the sample's index in the
// message. Leaving the loop early (or destroying the loader) stops and joins the workers. Examples without data
// (skipped samples, see Example) are left out of their batch, and a batch left empty is not yielded at all.
// With pin_memory, the loading thread copies each batch into pinned memory.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "halftorch/data/dataset.h"
#include "halftorch/data/samplers.h"

namespace ht::data {

struct Batch {
  Tensor data;                   // default collate: the examples' data stacked, [B, ...]
  Tensor target;                 // default collate: the targets stacked, [B, ...]
  std::vector<int64_t> indices;  // the dataset indices of the batch's samples, in order
};

// Builds a batch from its examples (examples[k] is sample indices[k] of the dataset).
using Collate = std::function<Batch(std::vector<Example>& examples, const std::vector<int64_t>& indices)>;
// Stacks data and targets along a new first dimension (torch.utils.data.default_collate); every example's data
// (and target) must have one shape and dtype.
Batch default_collate(std::vector<Example>& examples, const std::vector<int64_t>& indices);

struct DataLoaderOptions {
  int64_t batch_size = 1;
  bool shuffle = false;  // a RandomSampler(seed) instead of a SequentialSampler
  uint64_t seed = 0;
  bool drop_last = false;
  int num_workers = 0;      // 0: load in the caller's thread
  int prefetch_factor = 2;  // batches in flight per worker
  // Batches come in pinned host memory (data/pin_memory.h), ready for asynchronous copies to a GPU. Without a
  // GPU (or a CUDA build) it does nothing, after one warning, as PyTorch's DataLoader.
  bool pin_memory = false;
  Collate collate;          // default_collate when empty
};

class EpochRun;  // one epoch's loading, with its workers (dataloader.cpp)

class DataLoader {
 public:
  // `sampler` overrides shuffle/seed (a DistributedShardSampler under a launcher, say).
  DataLoader(std::shared_ptr<Dataset> dataset, DataLoaderOptions options = {},
             std::shared_ptr<Sampler> sampler = nullptr);

  void set_epoch(int64_t epoch) { epoch_ = epoch; }
  int64_t epoch() const { return epoch_; }
  int64_t num_batches() const;
  const Dataset& dataset() const { return *dataset_; }

  // for (ht::data::Batch& batch : loader) { ... }: each begin() starts the current epoch anew.
  class Iterator {
   public:
    Batch& operator*() { return *current_; }
    Batch* operator->() { return &*current_; }
    Iterator& operator++();
    bool operator==(std::default_sentinel_t) const { return !current_.has_value(); }

   private:
    friend class DataLoader;
    explicit Iterator(std::shared_ptr<EpochRun> run);
    std::shared_ptr<EpochRun> run_;
    std::optional<Batch> current_;
  };
  Iterator begin();
  std::default_sentinel_t end() const { return {}; }

 private:
  std::shared_ptr<Dataset> dataset_;
  DataLoaderOptions options_;
  std::shared_ptr<Sampler> sampler_;
  int64_t epoch_ = 0;
};

}  // namespace ht::data
