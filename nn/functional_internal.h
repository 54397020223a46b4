// Checks and helpers the functional ops share between their files (not part of the public API).
#pragma once
#include <initializer_list>
#include <utility>

#include "kernels/nn_kernels.h"
#include "nn/functional.h"

namespace ht::nn::functional::internal {

// conv2d's checks on a 4-d input, and the kernels' shape (inference left false).
kernels::Conv2dShape conv2d_shape(const Tensor& x, const Tensor& weight, const Tensor& bias, Size2 stride,
                                  Size2 padding, Size2 dilation, int64_t groups);
// The memory format a convolution runs in: channels_last when the input or the weight is (PyTorch's rule). Input,
// weight and output are all made dense in it (`contiguous(format)`), as PyTorch hands them to oneDNN and cuDNN:
// one layout for all of a convolution's tensors, the weight copied only when it lies otherwise (an NCHW model
// given channels_last inputs).
MemoryFormat conv2d_memory_format(const Tensor& x, const Tensor& weight);

// batch_norm's checks in either mode, and the kernels' shape of x.
kernels::BatchNormShape batch_norm_shape(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                                         const Tensor& weight, const Tensor& bias, bool training);
// The dtype of batch norm's mean / invstd for an input of dtype t: float64 for float64, else float32.
DType batch_norm_stats_dtype(DType t);
// Eval mode's mean and 1 / sqrt(var + eps) from the running statistics, in `stats_options`' dtype.
std::pair<Tensor, Tensor> eval_statistics(const Tensor& running_mean, const Tensor& running_var, double eps,
                                          const TensorOptions& stats_options);
// The checks an inference op makes: nothing requires grad while grad mode is on (`op` names it).
void check_no_history(std::initializer_list<const Tensor*> inputs, const char* op);

// `residual` checked to be like `like` (sizes, dtype, device; `like_name` names it in the error), as it lies
// in `format`.
Tensor residual_like(const Tensor& residual, const Tensor& like, const char* like_name, MemoryFormat format,
                     const char* op);

}  // namespace ht::nn::functional::internal
