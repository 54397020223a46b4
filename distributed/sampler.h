// ht::distributed::DistributedSampler: torch.utils.data.DistributedSampler's split of a dataset's indices into
// one disjoint shard per rank, reshuffled every epoch from a seed all ranks share. The epoch's order is a pure
// function of (seed, epoch), so a resumed run, at any world size, needs no saved generator state.
#pragma once
#include <cstdint>
#include <vector>

namespace ht::distributed {

// A permutation of [0, n) that depends only on (seed, epoch) (the identity when !shuffle): Fisher-Yates over
// a counter-based stream. Single-process training uses it directly; the sampler shards it.
std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch, bool shuffle = true);

class DistributedSampler {
 public:
  // As PyTorch's: without drop_last the order is padded with its own first indices to a multiple of
  // world_size (every rank gets the same count, a few samples are seen twice); with drop_last the tail is cut.
  // Rank r takes positions r, r + world_size, r + 2 * world_size, ... of the epoch's order.
  DistributedSampler(int64_t dataset_size, int world_size, int rank, bool shuffle = true, uint64_t seed = 0,
                     bool drop_last = false);
  void set_epoch(int64_t epoch) { epoch_ = epoch; }
  int64_t epoch() const { return epoch_; }
  // This rank's indices for the current epoch, in the order to visit them.
  std::vector<int64_t> indices() const;
  int64_t num_samples() const { return num_samples_; }  // per rank
  int64_t total_size() const { return num_samples_ * world_size_; }

 private:
  int64_t n_;
  int world_size_, rank_;
  bool shuffle_, drop_last_;
  uint64_t seed_;
  int64_t epoch_ = 0, num_samples_;
};

}  // namespace ht::distributed
