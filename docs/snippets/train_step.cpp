// snippet: train_step
#include <halftorch/halftorch.h>

int main() {
  namespace F = ht::nn::functional;
  ht::Device dev = ht::cuda::is_available() ? ht::kCUDA : ht::kCPU;
  auto model = ht::nn::resnet18({.num_classes = 10, .in_channels = 1});
  model->to(dev).half();                                    // fp16 parameters and buffers
  ht::optim::Adam opt(model->parameters(), {.lr = 1e-3});  // keeps fp32 master weights
  ht::amp::GradScaler scaler;

  ht::Tensor x = ht::randn({8, 1, 28, 28}, {.dtype = ht::kFloat16, .device = dev});
  ht::Tensor y = ht::arange(8, {.dtype = ht::kInt64, .device = dev});
  ht::Tensor loss = F::cross_entropy(model->forward(x), y);
  opt.zero_grad();
  scaler.scale(loss).backward();
  scaler.step(opt);  // skipped when a gradient is inf/NaN
  scaler.update();

  ht::save(model->state_dict(), "model_fp16.pth");               // torch.load reads it
  model->load_state_dict(ht::load_state_dict_file("model_fp16.pth"));
}
