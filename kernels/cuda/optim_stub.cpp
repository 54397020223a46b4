// Built instead of kernels/cuda/optim.cu when halftorch is configured without CUDA: every entry point throws.
#include "kernels/optim_backends.h"

namespace ht::kernels::cuda {

namespace {
[[noreturn]] void no_cuda() { fail("[cuda] halftorch was built without CUDA"); }
}  // namespace

void adam_step(int, const AdamTensor*, int64_t, float, const float*) { no_cuda(); }
void sgd_step(int, const SgdTensor*, int64_t, float, const float*) { no_cuda(); }
void unscale_and_check(int, const GradTensor*, int64_t, float, float*) { no_cuda(); }

}  // namespace ht::kernels::cuda
