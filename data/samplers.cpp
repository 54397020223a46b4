#include "data/samplers.h"

#include <cstddef>
#include <numeric>

namespace ht::data {

std::vector<int64_t> SequentialSampler::indices(int64_t) const {
  std::vector<int64_t> order(static_cast<size_t>(n_));
  std::iota(order.begin(), order.end(), int64_t(0));
  return order;
}

std::vector<int64_t> RandomSampler::indices(int64_t epoch) const {
  return distributed::epoch_permutation(n_, seed_, epoch, true);
}

std::vector<int64_t> DistributedShardSampler::indices(int64_t epoch) const {
  distributed::DistributedSampler s = sampler_;
  s.set_epoch(epoch);
  return s.indices();
}

}  // namespace ht::data
