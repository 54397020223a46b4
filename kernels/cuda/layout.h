// Memory layouts of 4-d activation views on the CUDA side: dense NCHW, or dense channels_last (PyTorch's NHWC
// strides {H*W*C, 1, W*C, C} on the logical NCHW shape). Size-1 dims may carry any stride, as in PyTorch.
#pragma once
#include "core/error.h"
#include "kernels/kernels.h"

namespace ht::kernels::cuda {

// True when the 4-d view v is dense in the given layout.
inline bool dense_in(const RawView& v, bool channels_last) {
  if (v.ndim != 4) return !channels_last && v.is_contiguous();
  if (!channels_last) return v.is_contiguous();
  const int64_t c = v.sizes[1], h = v.sizes[2], w = v.sizes[3];
  const int64_t want[4] = {h * w * c, 1, w * c, c};
  for (int d = 0; d < 4; ++d)
    if (v.sizes[d] != 1 && v.strides[d] != want[d]) return false;
  return true;
}

// The layout of a 4-d view: false for NCHW (also when both describe the memory, as with C == 1), true for
// channels_last; anything else is an error naming the op and the strides.
inline bool channels_last_of(const RawView& v, const char* op, const char* what) {
  if (dense_in(v, false)) return false;
  HT_CHECK(v.ndim == 4 && dense_in(v, true), "[", op, "] expected ", what, " to be dense NCHW or channels_last (",
           v.ndim, "-d view, strides [", v.strides[0], ", ", v.strides[1], ", ", v.strides[2], ", ", v.strides[3],
           "])");
  return true;
}

}  // namespace ht::kernels::cuda
