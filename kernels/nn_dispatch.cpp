// Device switch for the nn kernels: every operand must be on one device, then the backend runs.
#include "kernels/dispatch.h"
#include "kernels/nn_backends.h"

namespace ht::kernels {

void conv2d_forward(const Conv2dShape& s, const RawView& x, const RawView& w, const RawView* bias, const RawView& y) {
  HT_DISPATCH(conv2d_forward, common_device("conv2d", {&x, &w, bias, &y}), s, x, w, bias, y);
}
void conv2d_backward_data(const Conv2dShape& s, const RawView& gy, const RawView& w, const RawView& gx) {
  HT_DISPATCH(conv2d_backward_data, common_device("conv2d_backward", {&gy, &w, &gx}), s, gy, w, gx);
}
void conv2d_backward_weight(const Conv2dShape& s, const RawView& x, const RawView& gy, const RawView& gw) {
  HT_DISPATCH(conv2d_backward_weight, common_device("conv2d_backward", {&x, &gy, &gw}), s, x, gy, gw);
}
void batch_norm_forward_train(const BatchNormShape& s, const RawView& x, const RawView* weight, const RawView* bias,
                              const RawView* running_mean, const RawView* running_var, double momentum, double eps,
                              const RawView& y, const RawView& mean, const RawView& invstd) {
  HT_DISPATCH(batch_norm_forward_train,
                 common_device("batch_norm", {&x, weight, bias, running_mean, running_var, &y, &mean, &invstd}), s, x,
                 weight, bias, running_mean, running_var, momentum, eps, y, mean, invstd);
}
void batch_norm_apply(const BatchNormShape& s, const RawView& x, const RawView& mean, const RawView& invstd,
                      const RawView* weight, const RawView* bias, const RawView& y) {
  HT_DISPATCH(batch_norm_apply, common_device("batch_norm", {&x, &mean, &invstd, weight, bias, &y}), s, x, mean,
                 invstd, weight, bias, y);
}
void batch_norm_backward(const BatchNormShape& s, const RawView& x, const RawView& gy, const RawView& mean,
                         const RawView& invstd, const RawView* weight, bool train, const RawView* gx,
                         const RawView* gweight, const RawView* gbias) {
  HT_DISPATCH(batch_norm_backward,
                 common_device("batch_norm_backward", {&x, &gy, &mean, &invstd, weight, gx, gweight, gbias}), s, x, gy,
                 mean, invstd, weight, train, gx, gweight, gbias);
}
void max_pool2d_forward(const Pool2dShape& s, const RawView& x, const RawView& y, const RawView& indices) {
  HT_DISPATCH(max_pool2d_forward, common_device("max_pool2d", {&x, &y, &indices}), s, x, y, indices);
}
void max_pool2d_backward(const Pool2dShape& s, const RawView& gy, const RawView& indices, const RawView& gx) {
  HT_DISPATCH(max_pool2d_backward, common_device("max_pool2d_backward", {&gy, &indices, &gx}), s, gy, indices, gx);
}
void adaptive_avg_pool2d_forward(const Pool2dShape& s, const RawView& x, const RawView& y) {
  HT_DISPATCH(adaptive_avg_pool2d_forward, common_device("adaptive_avg_pool2d", {&x, &y}), s, x, y);
}
void adaptive_avg_pool2d_backward(const Pool2dShape& s, const RawView& gy, const RawView& gx) {
  HT_DISPATCH(adaptive_avg_pool2d_backward, common_device("adaptive_avg_pool2d_backward", {&gy, &gx}), s, gy, gx);
}

}  // namespace ht::kernels
