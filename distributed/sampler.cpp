// DistributedSampler: PyTorch's padding and striding over halftorch's counter-based epoch permutation.
#include "distributed/sampler.h"

#include <utility>

#include "core/error.h"
#include "kernels/functors.h"

namespace ht::distributed {

std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch, bool shuffle) {
  HT_CHECK(n >= 0, "[epoch_permutation] dataset size must be >= 0, got ", n);
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[size_t(i)] = i;
  if (!shuffle) return order;
  uint64_t key = kernels::mix64(seed ^ kernels::mix64(uint64_t(epoch) + 0x5eed));
  for (int64_t i = n - 1; i > 0; --i) {
    uint64_t r = kernels::mix64(key + uint64_t(i));
    std::swap(order[size_t(i)], order[size_t(r % uint64_t(i + 1))]);
  }
  return order;
}

DistributedSampler::DistributedSampler(int64_t dataset_size, int world_size, int rank, bool shuffle, uint64_t seed,
                                       bool drop_last)
    : n_(dataset_size), world_size_(world_size), rank_(rank), shuffle_(shuffle), drop_last_(drop_last), seed_(seed) {
  HT_CHECK(world_size >= 1, "[DistributedSampler] world_size must be >= 1, got ", world_size);
  HT_CHECK(rank >= 0 && rank < world_size, "[DistributedSampler] Invalid rank ", rank,
           ", rank should be in the interval [0, ", world_size - 1, "]");
  HT_CHECK(dataset_size >= 0, "[DistributedSampler] dataset size must be >= 0, got ", dataset_size);
  num_samples_ = drop_last && n_ % world_size != 0 ? n_ / world_size : (n_ + world_size - 1) / world_size;
}

std::vector<int64_t> DistributedSampler::indices() const {
  std::vector<int64_t> order = epoch_permutation(n_, seed_, epoch_, shuffle_);
  size_t total = size_t(total_size());
  if (order.size() < total) {
    // pad with the order's own head, repeated if the dataset is smaller than the padding
    size_t have = order.size();
    HT_CHECK(have > 0, "[DistributedSampler] cannot shard an empty dataset over ", world_size_, " ranks");
    for (size_t i = 0; order.size() < total; ++i) order.push_back(order[i % have]);
  }
  order.resize(total);
  std::vector<int64_t> mine;
  mine.reserve(size_t(num_samples_));
  for (size_t i = size_t(rank_); i < total; i += size_t(world_size_)) mine.push_back(order[i]);
  return mine;
}

}  // namespace ht::distributed
