// The seed's three steps in C++: train briefly with mixed precision, model.half() and save the state_dict to
// model_fp16.pth; then a fresh model, .half(), load_state_dict, eval(), evaluate. docs/save-load-fp16.md shows
// the same program in Python, step by step, and the Python that reads the file.
// Usage: save_load_fp16 [--steps N] [--out model_fp16.pth] [--device auto|cpu|cuda]
#include <cstdio>
#include <cstring>

#include "examples/common.h"

using namespace ht;

int main(int argc, char** argv) {
  int64_t steps = 20;
  std::string out = "model_fp16.pth", device_name = "auto";
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--steps") && i + 1 < argc) steps = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
    else if (!std::strcmp(argv[i], "--device") && i + 1 < argc) device_name = argv[++i];
    else {
      std::fprintf(stderr, "usage: save_load_fp16 [--steps N] [--out model_fp16.pth] [--device auto|cpu|cuda]\n");
      return 2;
    }
  }
  try {
    Device device = examples::pick_device(device_name);
    auto spec = examples::data_spec("fashion-mnist");
    examples::Split train = examples::load_split(spec, examples::kFashionMnistDir, true, steps * 64);
    examples::Split test = examples::load_split(spec, examples::kFashionMnistDir, false, 1000);

    // 1. Train with mixed precision: a half model, fp32 master weights in Adam, dynamic loss scaling.
    manual_seed(0);
    auto model = nn::resnet18({.num_classes = 10, .in_channels = 1});
    model->to(device).half();
    optim::Adam opt(model->parameters(), {.lr = 1e-3});
    amp::GradScaler scaler;
    model->train();
    for (int64_t s = 0; s < steps; ++s) {
      Tensor x = train.images.narrow(0, s * 64, 64).to(device, kFloat16);
      Tensor y = train.labels.narrow(0, s * 64, 64).to(device);
      Tensor loss = nn::functional::cross_entropy((*model)(x), y);
      opt.zero_grad();
      scaler.scale(loss).backward();
      scaler.step(opt);
      scaler.update();
    }

    // 2. model.half(); torch.save(model.state_dict(), "model_fp16.pth")
    model->half();
    save(model->state_dict(), out);
    std::printf("saved %s\n", out.c_str());

    // 3. A fresh model, .half(), load_state_dict, eval(), evaluate.
    auto fresh = nn::resnet18({.num_classes = 10, .in_channels = 1});
    fresh->to(device).half();
    fresh->load_state_dict(load_state_dict_file(out));
    fresh->eval();
    double before = examples::evaluate(*model, test, {device, kFloat16}, 250);
    double after = examples::evaluate(*fresh, test, {device, kFloat16}, 250);
    std::printf("accuracy of the trained model: %.4f, of the reloaded one: %.4f\n", before, after);
    return before == after ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
