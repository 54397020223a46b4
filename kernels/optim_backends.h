// The optimizer entry points each backend implements (kernels/cpu/optim.cpp, kernels/cuda/optim.cu), declared
// from the list in kernels/optim_kernels.h; kernels/dispatch.cpp picks one by device.
#pragma once
#include "kernels/optim_kernels.h"

namespace ht::kernels::cpu {
HT_OPTIM_KERNELS(HT_DECLARE_KERNEL)
}
namespace ht::kernels::cuda {
HT_OPTIM_KERNELS(HT_DECLARE_KERNEL)
}
