// torchvision's ResNet-18: BasicBlock and resnet18(), with the same module names (so the same 122 state_dict
// keys), the same forward and the same weight initialisation.
#pragma once
#include <memory>

#include "halftorch/nn/layers.h"

namespace ht::nn {

// conv3x3 - bn - relu - conv3x3 - bn, plus the identity (or downsample(x)), then relu. The stride is on conv1.
class BasicBlock : public Module {
 public:
  BasicBlock(int64_t inplanes, int64_t planes, int64_t stride = 1, ModulePtr downsample = nullptr);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "BasicBlock"; }
  std::shared_ptr<Conv2d> conv1, conv2;
  std::shared_ptr<BatchNorm2d> bn1, bn2;
  std::shared_ptr<ReLU> relu;
  ModulePtr downsample;  // null when the shape does not change
};

struct ResNetOptions {
  int64_t num_classes = 1000;
  int64_t in_channels = 3;
  bool zero_init_residual = false;  // bn2.weight = 0 in every block
};

class ResNet : public Module {
 public:
  // layers: blocks per stage ({2, 2, 2, 2} for ResNet-18).
  ResNet(const std::vector<int64_t>& layers, ResNetOptions options = {});
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "ResNet"; }
  ResNetOptions options;
  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<BatchNorm2d> bn1;
  std::shared_ptr<ReLU> relu;
  std::shared_ptr<MaxPool2d> maxpool;
  std::shared_ptr<Sequential> layer1, layer2, layer3, layer4;
  std::shared_ptr<AdaptiveAvgPool2d> avgpool;
  std::shared_ptr<Linear> fc;

 private:
  std::shared_ptr<Sequential> make_layer(int64_t planes, int64_t blocks, int64_t stride);
  int64_t inplanes_ = 64;
};

std::shared_ptr<ResNet> resnet18(ResNetOptions options = {});

}  // namespace ht::nn
