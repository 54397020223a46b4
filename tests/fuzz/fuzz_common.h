// Shared by the libFuzzer targets: touch every tensor element of a loaded value, so a view that escapes its
// storage shows up under AddressSanitizer.
#pragma once
#include "io/value.h"

inline void touch_all(const ht::Value& v) {
  ht::for_each_tensor(v, [](const std::string&, const ht::Tensor& t) {
    volatile double sink = 0;
    for (double x : t.to_vector<double>()) sink = sink + x;
  });
}
