// Seeded, counter-based random numbers: element i of a draw depends only on (seed, offset + i), so CPU and
// CUDA produce the same values and a generator's state is two integers (easy to checkpoint).
#pragma once
#include <cstdint>

#include "halftorch/core/tensor.h"

namespace ht {

struct Generator {
  uint64_t seed = 0;
  uint64_t offset = 0;  // advanced by every draw
  explicit Generator(uint64_t s = 0) : seed(s) {}
};

Generator& default_generator();

// SplitMix64's finaliser: a well-mixed 64-bit hash of a counter, the same function the tensor draws use. For
// programs that derive their own per-sample random choices (augmentation) from (seed, step, index).
uint64_t splitmix64(uint64_t counter);

Tensor rand(Shape sizes, Generator& gen, TensorOptions opt = {});
Tensor randn(Shape sizes, Generator& gen, TensorOptions opt = {});
// In-place fills used by nn::init; they draw from `gen` (the default generator when null).
void uniform_(Tensor& t, double low, double high, Generator* gen = nullptr);
void normal_(Tensor& t, double mean, double std, Generator* gen = nullptr);

}  // namespace ht
