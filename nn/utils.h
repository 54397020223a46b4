// ht::nn::utils: gradient clipping with torch.nn.utils.clip_grad_norm_ / clip_grad_value_'s semantics. Call it
// between backward() and the optimizer's step; under a GradScaler, unscale_ the optimizer first (PyTorch's AMP
// recipe), or the threshold applies to scaled gradients.
#pragma once
#include <limits>
#include <vector>

#include "halftorch/core/tensor.h"

namespace ht::nn::utils {

// Scales every defined gradient by min(1, max_norm / (total_norm + 1e-6)), where total_norm is the norm_type norm
// of all gradients together (as if concatenated; norm_type = infinity: the largest magnitude). Returns
// total_norm as a float32 0-dim tensor on the gradients' device. Norms are accumulated in float32 whatever the
// gradients' dtype. error_if_nonfinite: throw when the total norm is inf or NaN instead of scaling by it.
Tensor clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);
// Clamps every defined gradient to [-clip_value, clip_value].
void clip_grad_value_(const std::vector<Tensor>& params, double clip_value);

}  // namespace ht::nn::utils
