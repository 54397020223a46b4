// Dense dtype conversion on the CPU: float16 <-> float32 with the CPU's F16C instructions where it has them
// (round to nearest even, as halftorch's Half does), any other pair through the shared copy kernel.
#pragma once
#include "kernels/kernels.h"

namespace ht::kernels::cpu {

// dst = src converted, for two views of one shape that lie densely in memory with the same strides (NCHW or
// channels_last alike): numel() elements from data.
void convert_dense(const RawView& src, const RawView& dst);

}  // namespace ht::kernels::cpu
