// Direct float64 convolution loops: oneDNN has no float64, and float64 is what the tests' gradient checks
// and references compute in. Views may have any strides. Not a fast path: nothing trains in float64.
#pragma once
#include "kernels/nn_kernels.h"

namespace ht::kernels::cpu::reference {

void conv2d_forward(const Conv2dShape& s, const RawView& x, const RawView& w, const RawView* bias, const RawView& y);
void conv2d_backward_data(const Conv2dShape& s, const RawView& gy, const RawView& w, const RawView& gx);
void conv2d_backward_weight(const Conv2dShape& s, const RawView& x, const RawView& gy, const RawView& gw);

}  // namespace ht::kernels::cpu::reference
