// Samplers: which dataset indices an epoch visits, in which order (torch.utils.data.SequentialSampler,
// RandomSampler and DistributedSampler). An epoch's order is a pure function of (seed, epoch), so the same seed
// and epoch give the same order in every run, with any number of loader workers.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "halftorch/distributed/sampler.h"

namespace ht::data {

class Sampler {
 public:
  virtual ~Sampler() = default;
  virtual std::vector<int64_t> indices(int64_t epoch) const = 0;
  virtual int64_t size() const = 0;  // indices per epoch
};

// 0, 1, ..., n-1 every epoch.
class SequentialSampler : public Sampler {
 public:
  explicit SequentialSampler(int64_t n) : n_(n) {}
  std::vector<int64_t> indices(int64_t epoch) const override;
  int64_t size() const override { return n_; }

 private:
  int64_t n_;
};

// A permutation of [0, n) per epoch, from ht::distributed::epoch_permutation(n, seed, epoch).
class RandomSampler : public Sampler {
 public:
  RandomSampler(int64_t n, uint64_t seed) : n_(n), seed_(seed) {}
  std::vector<int64_t> indices(int64_t epoch) const override;
  int64_t size() const override { return n_; }

 private:
  int64_t n_;
  uint64_t seed_;
};

// The given indices in the given order, every epoch (PyTorch accepts any sequence of indices as a sampler): an
// epoch's order computed elsewhere, or a range of a dataset.
class ListSampler : public Sampler {
 public:
  explicit ListSampler(std::vector<int64_t> indices) : indices_(std::move(indices)) {}
  std::vector<int64_t> indices(int64_t) const override { return indices_; }
  int64_t size() const override { return int64_t(indices_.size()); }

 private:
  std::vector<int64_t> indices_;
};

// This rank's shard under a launcher (torchrun, Slurm, mpirun): ht::distributed::DistributedSampler's indices.
class DistributedShardSampler : public Sampler {
 public:
  explicit DistributedShardSampler(distributed::DistributedSampler sampler) : sampler_(sampler) {}
  std::vector<int64_t> indices(int64_t epoch) const override;
  int64_t size() const override { return sampler_.num_samples(); }

 private:
  distributed::DistributedSampler sampler_;
};

}  // namespace ht::data
