// The nn entry points each backend implements; kernels/nn_dispatch.cpp picks one by device. Signatures mirror
// kernels/nn_kernels.h.
#pragma once
#include "kernels/nn_kernels.h"

#define HT_NN_BACKEND_DECLS                                                                                     \
  void conv2d_forward(const Conv2dShape& s, const RawView& x, const RawView& w, const RawView* bias,            \
                      const RawView& y);                                                                        \
  void conv2d_backward_data(const Conv2dShape& s, const RawView& gy, const RawView& w, const RawView& gx);     \
  void conv2d_backward_weight(const Conv2dShape& s, const RawView& x, const RawView& gy, const RawView& gw);   \
  void batch_norm_forward_train(const BatchNormShape& s, const RawView& x, const RawView* weight,               \
                                const RawView* bias, const RawView* running_mean, const RawView* running_var,   \
                                double momentum, double eps, const RawView& y, const RawView& mean,             \
                                const RawView& invstd);                                                         \
  void batch_norm_apply(const BatchNormShape& s, const RawView& x, const RawView& mean, const RawView& invstd,  \
                        const RawView* weight, const RawView* bias, const RawView& y);                          \
  void batch_norm_backward(const BatchNormShape& s, const RawView& x, const RawView& gy, const RawView& mean,   \
                           const RawView& invstd, const RawView* weight, bool train, const RawView* gx,         \
                           const RawView* gweight, const RawView* gbias);                                       \
  void max_pool2d_forward(const Pool2dShape& s, const RawView& x, const RawView& y, const RawView& indices);    \
  void max_pool2d_backward(const Pool2dShape& s, const RawView& gy, const RawView& indices, const RawView& gx); \
  void adaptive_avg_pool2d_forward(const Pool2dShape& s, const RawView& x, const RawView& y);                  \
  void adaptive_avg_pool2d_backward(const Pool2dShape& s, const RawView& gy, const RawView& gx);

namespace ht::kernels::cpu {
HT_NN_BACKEND_DECLS
}
namespace ht::kernels::cuda {
HT_NN_BACKEND_DECLS
}
