// Fine-tunes a ResNet-18 that PyTorch saved (a bare state_dict, or a checkpoint dict holding it under "model"),
// then saves the result for PyTorch to read back. docs/interop.md shows both Python sides.
// Usage: finetune_from_pytorch --weights IN.pth --out OUT.pth [--steps N] [--lr X] [--precision fp16|fp32]
//                              [--device auto|cpu|cuda]
#include <cstdio>
#include <cstring>

#include "examples/common.h"

using namespace ht;

int main(int argc, char** argv) {
  std::string in, out, precision = "fp16", device_name = "auto";
  int64_t steps = 50;
  double lr = 1e-4;
  bool bad_usage = false;
  for (int i = 1; i < argc; ++i) {
    auto is = [&](const char* k) { return !std::strcmp(argv[i], k) && i + 1 < argc; };
    if (is("--weights")) in = argv[++i];
    else if (is("--out")) out = argv[++i];
    else if (is("--steps")) steps = std::atoll(argv[++i]);
    else if (is("--lr")) lr = std::atof(argv[++i]);
    else if (is("--precision")) precision = argv[++i];
    else if (is("--device")) device_name = argv[++i];
    else bad_usage = true;
  }
  if (bad_usage || in.empty() || out.empty() || (precision != "fp16" && precision != "fp32")) {
    std::fprintf(stderr, "usage: finetune_from_pytorch --weights IN.pth --out OUT.pth [--steps N] [--lr X] "
                         "[--precision fp16|fp32] [--device auto|cpu|cuda]\n");
    return 2;
  }
  try {
    Device device = examples::pick_device(device_name);
    DType dtype = precision == "fp16" ? kFloat16 : kFloat32;
    StateDict weights = examples::read_weights(in);
    const Tensor* fc = weights.find("fc.weight");
    const Tensor* conv1 = weights.find("conv1.weight");
    HT_CHECK(fc && conv1, in, ": not a ResNet-18 state_dict (no fc.weight or conv1.weight)");
    auto model = nn::resnet18({.num_classes = fc->size(0), .in_channels = conv1->size(1)});
    model->load_state_dict(weights);
    model->to(device).to(dtype);
    HT_CHECK(conv1->size(1) == 1 && fc->size(0) == 10, "this example fine-tunes on Fashion-MNIST (1 channel, 10 ",
             "classes); ", in, " has ", conv1->size(1), " input channels and ", fc->size(0), " classes");

    auto spec = examples::data_spec("fashion-mnist");
    examples::Split train = examples::load_split(spec, examples::kFashionMnistDir, true, steps * 64);
    examples::Split test = examples::load_split(spec, examples::kFashionMnistDir, false, 1000);
    std::printf("before fine-tuning: test accuracy %.4f\n", examples::evaluate(*model, test, {device, dtype}, 250));
    optim::Adam opt(model->parameters(), {.lr = lr});
    amp::GradScaler scaler({.enabled = dtype == kFloat16});
    model->train();
    for (int64_t s = 0; s * 64 < train.size(); ++s) {
      int64_t b = std::min<int64_t>(64, train.size() - s * 64);
      Tensor loss = nn::functional::cross_entropy((*model)(train.images.narrow(0, s * 64, b).to(device, dtype)),
                                                  train.labels.narrow(0, s * 64, b).to(device));
      opt.zero_grad();
      scaler.scale(loss).backward();
      scaler.step(opt);
      scaler.update();
    }
    std::printf("after fine-tuning:  test accuracy %.4f\n", examples::evaluate(*model, test, {device, dtype}, 250));
    save(model->state_dict(), out);
    std::printf("saved %s (%s)\n", out.c_str(), dtype_name(dtype));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
