// Built instead of the CUDA nn kernels when halftorch is configured without CUDA: every entry point throws.
#include "kernels/nn_backends.h"

namespace ht::kernels::cuda {
namespace {
[[noreturn]] void no_cuda() { fail("[cuda] halftorch was built without CUDA"); }
}  // namespace
void conv2d_forward(const Conv2dShape&, const RawView&, const RawView&, const RawView*, const RawView&) { no_cuda(); }
void conv2d_backward_data(const Conv2dShape&, const RawView&, const RawView&, const RawView&) { no_cuda(); }
void conv2d_backward_weight(const Conv2dShape&, const RawView&, const RawView&, const RawView&) { no_cuda(); }
void batch_norm_forward_train(const BatchNormShape&, const RawView&, const RawView*, const RawView*, const RawView*,
                              const RawView*, double, double, const RawView&, const RawView&, const RawView&) {
  no_cuda();
}
void batch_norm_apply(const BatchNormShape&, const RawView&, const RawView&, const RawView&, const RawView*,
                      const RawView*, const RawView&) {
  no_cuda();
}
void batch_norm_backward(const BatchNormShape&, const RawView&, const RawView&, const RawView&, const RawView&,
                         const RawView*, bool, const RawView*, const RawView*, const RawView*) {
  no_cuda();
}
void max_pool2d_forward(const Pool2dShape&, const RawView&, const RawView&, const RawView&) { no_cuda(); }
void max_pool2d_backward(const Pool2dShape&, const RawView&, const RawView&, const RawView&) { no_cuda(); }
void adaptive_avg_pool2d_forward(const Pool2dShape&, const RawView&, const RawView&) { no_cuda(); }
void adaptive_avg_pool2d_backward(const Pool2dShape&, const RawView&, const RawView&) { no_cuda(); }
}  // namespace ht::kernels::cuda
