// The one place devices are told apart: every entry point of the kernel lists (kernels/kernels.h,
// nn_kernels.h, optim_kernels.h) is defined here as a switch on its device, to the cpu:: or the cuda:: backend.
// Built without CUDA, the CUDA branch is the error saying so, and no cuda:: kernel is needed at link time.
#include <cstring>

#include "kernels/backends.h"
#include "kernels/dispatch.h"
#include "kernels/nn_backends.h"
#include "kernels/optim_backends.h"

namespace ht::kernels {

namespace {
#if HT_WITH_CUDA
#define HT_CUDA_BRANCH(call) return call
#else
[[noreturn]] void no_cuda() { fail("[cuda] halftorch was built without CUDA"); }
#define HT_CUDA_BRANCH(call) no_cuda()
#endif
}  // namespace

#define HT_DEFINE_DISPATCH(name, params, args, device) \
  void name params {                                   \
    const Device dev = device;                         \
    if (dev.is_cpu()) return cpu::name args;           \
    HT_CUDA_BRANCH(cuda::name args);                   \
  }

HT_CORE_KERNELS(HT_DEFINE_DISPATCH)
HT_NN_KERNELS(HT_DEFINE_DISPATCH)
HT_OPTIM_KERNELS(HT_DEFINE_DISPATCH)

void copy_bytes_across(const void* src, Device src_dev, void* dst, Device dst_dev, size_t nbytes) {
  if (src_dev.is_cpu() && dst_dev.is_cpu()) {
    std::memcpy(dst, src, nbytes);
    return;
  }
  HT_CUDA_BRANCH(cuda::copy_bytes(src, src_dev, dst, dst_dev, nbytes));
}

}  // namespace ht::kernels
