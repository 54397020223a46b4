// The nn entry points each backend implements, declared from the list in kernels/nn_kernels.h;
// kernels/dispatch.cpp picks one by device.
#pragma once
#include "kernels/nn_kernels.h"

namespace ht::kernels::cpu {
HT_NN_KERNELS(HT_DECLARE_KERNEL)
}
namespace ht::kernels::cuda {
HT_NN_KERNELS(HT_DECLARE_KERNEL)
}
