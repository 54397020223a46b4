// Device switch for the nn kernels: every operand must be on one device, then the backend runs.
#include "kernels/nn_backends.h"

namespace ht::kernels {

namespace {
Device one_device(const char* op, std::initializer_list<const RawView*> views) {
  const RawView* first = nullptr;
  for (const RawView* v : views) {
    if (!v) continue;
    if (!first) first = v;
    HT_CHECK(v->device == first->device, "[", op, "] expected all tensors on one device, got ", first->device.str(),
             " and ", v->device.str());
  }
  return first->device;
}
}  // namespace

#define HT_NN_DISPATCH(op, dev, ...) \
  return (dev).is_cpu() ? cpu::op(__VA_ARGS__) : cuda::op(__VA_ARGS__)

void conv2d_forward(const Conv2dShape& s, const RawView& x, const RawView& w, const RawView* bias, const RawView& y) {
  HT_NN_DISPATCH(conv2d_forward, one_device("conv2d", {&x, &w, bias, &y}), s, x, w, bias, y);
}
void conv2d_backward_data(const Conv2dShape& s, const RawView& gy, const RawView& w, const RawView& gx) {
  HT_NN_DISPATCH(conv2d_backward_data, one_device("conv2d_backward", {&gy, &w, &gx}), s, gy, w, gx);
}
void conv2d_backward_weight(const Conv2dShape& s, const RawView& x, const RawView& gy, const RawView& gw) {
  HT_NN_DISPATCH(conv2d_backward_weight, one_device("conv2d_backward", {&x, &gy, &gw}), s, x, gy, gw);
}
void batch_norm_forward_train(const BatchNormShape& s, const RawView& x, const RawView* weight, const RawView* bias,
                              const RawView* running_mean, const RawView* running_var, double momentum, double eps,
                              const RawView& y, const RawView& mean, const RawView& invstd) {
  HT_NN_DISPATCH(batch_norm_forward_train,
                 one_device("batch_norm", {&x, weight, bias, running_mean, running_var, &y, &mean, &invstd}), s, x,
                 weight, bias, running_mean, running_var, momentum, eps, y, mean, invstd);
}
void batch_norm_apply(const BatchNormShape& s, const RawView& x, const RawView& mean, const RawView& invstd,
                      const RawView* weight, const RawView* bias, const RawView& y) {
  HT_NN_DISPATCH(batch_norm_apply, one_device("batch_norm", {&x, &mean, &invstd, weight, bias, &y}), s, x, mean,
                 invstd, weight, bias, y);
}
void batch_norm_backward(const BatchNormShape& s, const RawView& x, const RawView& gy, const RawView& mean,
                         const RawView& invstd, const RawView* weight, bool train, const RawView* gx,
                         const RawView* gweight, const RawView* gbias) {
  HT_NN_DISPATCH(batch_norm_backward,
                 one_device("batch_norm_backward", {&x, &gy, &mean, &invstd, weight, gx, gweight, gbias}), s, x, gy,
                 mean, invstd, weight, train, gx, gweight, gbias);
}
void max_pool2d_forward(const Pool2dShape& s, const RawView& x, const RawView& y, const RawView& indices) {
  HT_NN_DISPATCH(max_pool2d_forward, one_device("max_pool2d", {&x, &y, &indices}), s, x, y, indices);
}
void max_pool2d_backward(const Pool2dShape& s, const RawView& gy, const RawView& indices, const RawView& gx) {
  HT_NN_DISPATCH(max_pool2d_backward, one_device("max_pool2d_backward", {&gy, &indices, &gx}), s, gy, indices, gx);
}
void adaptive_avg_pool2d_forward(const Pool2dShape& s, const RawView& x, const RawView& y) {
  HT_NN_DISPATCH(adaptive_avg_pool2d_forward, one_device("adaptive_avg_pool2d", {&x, &y}), s, x, y);
}
void adaptive_avg_pool2d_backward(const Pool2dShape& s, const RawView& gy, const RawView& gx) {
  HT_NN_DISPATCH(adaptive_avg_pool2d_backward, one_device("adaptive_avg_pool2d_backward", {&gy, &gx}), s, gy, gx);
}

}  // namespace ht::kernels
