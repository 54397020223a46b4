// The CPU executor: a plain loop over body(i), split across OpenMP threads when there is enough work.
#pragma once
#include <cstdint>

namespace ht::kernels::cpu {

inline constexpr int64_t kParallelGrain = 32768;

struct Executor {
  static constexpr int kVecBytes = 0;  // the compiler vectorises the contiguous loop itself
  template <class Body>
  static void run(int64_t n, const Body& body) {
    if (n >= kParallelGrain) {
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < n; ++i) body(i);
    } else {
      for (int64_t i = 0; i < n; ++i) body(i);
    }
  }
};

}  // namespace ht::kernels::cpu
