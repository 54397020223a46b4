// The loss modules' one-argument forward, which they refuse (nn/losses.h).
#include "nn/losses.h"

namespace ht::nn {

Tensor LossModule::forward(const Tensor&) {
  fail("[", type_name(), "] a loss module takes (input, target)");
}

}  // namespace ht::nn
