// ht::nn::functional: the differentiable building blocks of networks (convolution, batch norm, pooling,
// dropout, cross-entropy), named and defaulted as torch.nn.functional's are.
#pragma once
#include <cstdint>
#include <utility>

#include "halftorch/core/ops.h"
#include "halftorch/core/random.h"
#include "halftorch/core/tensor.h"

namespace ht::nn {

// A (height, width) pair that a single number also converts to, like PyTorch's int-or-tuple arguments.
struct Size2 {
  int64_t h = 0, w = 0;
  Size2(int64_t v) : h(v), w(v) {}  // NOLINT: implicit, as PyTorch accepts an int for a pair
  Size2(int64_t h_, int64_t w_) : h(h_), w(w_) {}
  friend bool operator==(const Size2&, const Size2&) = default;
};

namespace functional {

// x [N, C_in, H, W] (or unbatched [C_in, H, W]), weight [C_out, C_in / groups, kH, kW], bias [C_out] or undefined.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), Size2 stride = 1,
              Size2 padding = 0, Size2 dilation = 1, int64_t groups = 1);

// x [N, C, *]. Training normalises with the batch's statistics and updates running_mean / running_var in place
// (when defined) with `momentum` and the unbiased variance; eval uses the running statistics.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight = Tensor(), const Tensor& bias = Tensor(), bool training = false,
                  double momentum = 0.1, double eps = 1e-5);
// Inference only: relu(batch_norm(x, running stats, eval) + residual) in one pass over x, the tail of
// torchvision's BasicBlock (residual may be undefined, relu false). For float32 the values equal those ops run
// one after another, bit for bit. It records no autograd history: it refuses inputs that require grad while
// grad mode is on.
Tensor batch_norm_inference(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                            const Tensor& weight, const Tensor& bias, double eps, const Tensor& residual = Tensor(),
                            bool relu = false);
// Inference only: batch_norm_inference(conv2d(x, conv_weight, no bias, ...), ..., residual, relu) as one
// convolution whose output is normalised, added to and rectified before it is stored (oneDNN post-ops on the
// CPU; two passes on CUDA). The values differ from those ops run one after another by the one rounding of the
// convolution's output they skip (float32: within 1e-6 of the output's scale). No autograd history, as
// batch_norm_inference.
Tensor conv2d_batch_norm_inference(const Tensor& x, const Tensor& conv_weight, Size2 stride, Size2 padding,
                                   Size2 dilation, int64_t groups, const Tensor& running_mean,
                                   const Tensor& running_var, const Tensor& bn_weight, const Tensor& bn_bias,
                                   double eps, const Tensor& residual = Tensor(), bool relu = false);

// stride 0 means stride = kernel_size (PyTorch's stride=None). Where no backward follows (grad mode off, or x
// not requiring grad) it computes the values alone, without indices.
Tensor max_pool2d(const Tensor& x, Size2 kernel_size, Size2 stride = 0, Size2 padding = 0, Size2 dilation = 1,
                  bool ceil_mode = false);
// Also returns the int64 indices of the maxima (flat positions within each input plane).
std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& x, Size2 kernel_size, Size2 stride = 0,
                                                  Size2 padding = 0, Size2 dilation = 1, bool ceil_mode = false);
Tensor adaptive_avg_pool2d(const Tensor& x, Size2 output_size);

inline Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor()) {
  return ht::linear(x, weight, bias);
}
inline Tensor relu(const Tensor& x) { return ht::relu(x); }

// Zeroes each element with probability p and scales the rest by 1 / (1 - p); identity when !training.
Tensor dropout(const Tensor& x, double p = 0.5, bool training = true, Generator* gen = nullptr);

struct CrossEntropyOptions {
  int64_t ignore_index = -100;
  double label_smoothing = 0.0;
};
// Mean cross-entropy of logits [N, C] against int64 class indices [N] (entries equal to ignore_index are left
// out of the sum and of the count) or against class probabilities [N, C]. 16-bit logits are computed in
// float32; the loss has the logits' dtype.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, CrossEntropyOptions options = {});

// --- more losses (nn/functional_loss.cpp), composed from core ops. The reduction is an enum argument, where
// libtorch passes an options object (F::MSELossFuncOptions().reduction(torch::kSum)).
enum class Reduction { None, Mean, Sum };
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean,
                      double beta = 1.0);
// log-probabilities [N, C] against int64 classes [N]; entries equal to ignore_index count for nothing
Tensor nll_loss(const Tensor& log_probs, const Tensor& target, Reduction reduction = Reduction::Mean,
                int64_t ignore_index = -100);
// probabilities in [0, 1]; log terms are clamped at -100 as PyTorch does
Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
// the numerically stable form on logits: max(x, 0) - x * t + log(1 + exp(-|x|))
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                        Reduction reduction = Reduction::Mean);
// --- activations (nn/functional_activation.cpp)
Tensor silu(const Tensor& x);
// torch.nn.functional.gelu: approximate "none" is x * Phi(x) with the exact erf, "tanh" the tanh approximation.
Tensor gelu(const Tensor& x, const std::string& approximate = "none");
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
// --- per-sample normalisation (nn/functional_layer_norm.cpp)
Tensor layer_norm(const Tensor& x, Shape normalized_shape, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);
Tensor group_norm(const Tensor& x, int64_t num_groups, const Tensor& weight = Tensor(), const Tensor& bias = Tensor(),
                  double eps = 1e-5);
// rows of weight [num_embeddings, dim] picked by int64 indices (nn/functional_embedding.cpp)
Tensor embedding(const Tensor& indices, const Tensor& weight);
// padding counts in the average (count_include_pad=True, PyTorch's default); ceil_mode is not supported
// (nn/functional_avg_pool.cpp)
Tensor avg_pool2d(const Tensor& x, Size2 kernel_size, Size2 stride = 0, Size2 padding = 0);
// zeroes whole channels of [N, C, ...] with probability p, scaling the rest by 1 / (1 - p)
// (nn/functional_dropout.cpp, with dropout)
Tensor dropout2d(const Tensor& x, double p = 0.5, bool training = true);

}  // namespace functional
}  // namespace ht::nn
