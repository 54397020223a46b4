// snippet: checkpoint
#include <halftorch/halftorch.h>

#include <iostream>

int main() {
  auto model = ht::nn::resnet18({.num_classes = 10, .in_channels = 1});
  ht::optim::Adam opt(model->parameters());
  ht::amp::GradScaler scaler;

  ht::Value ck = ht::Value::dict();
  ck.to_dict().set("model", ht::to_value(model->state_dict()));
  ck.to_dict().set("optimizer", opt.state_dict());   // torch.optim.Adam's layout
  ck.to_dict().set("scaler", scaler.state_dict());   // GradScaler's keys
  ck.to_dict().set("epoch", int64_t(3));
  ht::save(ck, "checkpoint.pth");

  ht::Value back = ht::load("checkpoint.pth");
  model->load_state_dict(ht::to_state_dict(back["model"]));
  opt.load_state_dict(back["optimizer"]);
  std::cout << "epoch " << back["epoch"].to_int() << "\n";
  ht::for_each_tensor(back, [](const std::string& path, const ht::Tensor& t) {
    if (path.rfind("model/fc", 0) == 0) std::cout << path << " " << ht::shape_str(t.sizes()) << "\n";
  });
}
