// The entry points each backend implements (kernels/cpu/, kernels/cuda/), declared from the list in
// kernels/kernels.h; kernels/dispatch.cpp picks one by device.
#pragma once
#include "kernels/kernels.h"

namespace ht::kernels::cpu {
HT_CORE_KERNELS(HT_DECLARE_KERNEL)
}
namespace ht::kernels::cuda {
HT_CORE_KERNELS(HT_DECLARE_KERNEL)
// dst = src across host and device (either side may be CUDA), nbytes contiguous.
void copy_bytes(const void* src, Device src_dev, void* dst, Device dst_dev, size_t nbytes);
}
