// ResNet construction and forward, following torchvision/models/resnet.py.
#include "nn/resnet.h"

#include "nn/init.h"

namespace ht::nn {

namespace {
std::shared_ptr<Conv2d> conv3x3(int64_t in, int64_t out, int64_t stride) {
  return std::make_shared<Conv2d>(in, out, 3, Conv2dOptions{.stride = stride, .padding = 1, .bias = false});
}
std::shared_ptr<Conv2d> conv1x1(int64_t in, int64_t out, int64_t stride) {
  return std::make_shared<Conv2d>(in, out, 1, Conv2dOptions{.stride = stride, .bias = false});
}
}  // namespace

BasicBlock::BasicBlock(int64_t inplanes, int64_t planes, int64_t stride, ModulePtr ds) {
  conv1 = register_module("conv1", conv3x3(inplanes, planes, stride));
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(planes));
  relu = register_module("relu", std::make_shared<ReLU>());
  conv2 = register_module("conv2", conv3x3(planes, planes, 1));
  bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(planes));
  if (ds) downsample = register_module("downsample", ds);
}

namespace {
// The downsample branch: torchvision's Sequential(conv1x1, BatchNorm2d) through conv_batch_norm; any other
// module as it is.
Tensor downsample_forward(Module& downsample, const Tensor& x) {
  auto* seq = dynamic_cast<Sequential*>(&downsample);
  if (seq && seq->size() == 2) {
    auto* conv = dynamic_cast<Conv2d*>((*seq)[0].get());
    auto* bn = dynamic_cast<BatchNorm2d*>((*seq)[1].get());
    if (conv && bn) return conv_batch_norm(*conv, *bn, x, Tensor(), /*relu=*/false);
  }
  return downsample.forward(x);
}
}  // namespace

// Each convolution with its batch norm (and the residual add and ReLU) goes through conv_batch_norm: one pass
// per convolution at inference.
Tensor BasicBlock::forward(const Tensor& x) {
  Tensor out = conv_batch_norm(*conv1, *bn1, x, Tensor(), /*relu=*/true);
  Tensor identity = downsample ? downsample_forward(*downsample, x) : x;
  return conv_batch_norm(*conv2, *bn2, out, identity, /*relu=*/true);
}

ResNet::ResNet(const std::vector<int64_t>& layers, ResNetOptions options) : options(options) {
  HT_CHECK(layers.size() == 4, "[ResNet] expected 4 stage sizes, got ", layers.size());
  HT_CHECK(options.in_channels > 0 && options.num_classes > 0, "[ResNet] expected positive in_channels and ",
           "num_classes, got ", options.in_channels, " and ", options.num_classes);
  conv1 = register_module("conv1", std::make_shared<Conv2d>(options.in_channels, 64, 7,
                                                            Conv2dOptions{.stride = 2, .padding = 3, .bias = false}));
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(64));
  relu = register_module("relu", std::make_shared<ReLU>());
  maxpool = register_module("maxpool", std::make_shared<MaxPool2d>(3, 2, 1));
  layer1 = register_module("layer1", make_layer(64, layers[0], 1));
  layer2 = register_module("layer2", make_layer(128, layers[1], 2));
  layer3 = register_module("layer3", make_layer(256, layers[2], 2));
  layer4 = register_module("layer4", make_layer(512, layers[3], 2));
  avgpool = register_module("avgpool", std::make_shared<AdaptiveAvgPool2d>(Size2(1, 1)));
  fc = register_module("fc", std::make_shared<Linear>(512, options.num_classes));
  // torchvision re-initialises convolutions and norms; fc keeps Linear's default
  for (auto& [name, m] : named_modules()) {
    if (auto* c = dynamic_cast<Conv2d*>(m.get())) {
      init::kaiming_normal_(c->weight, 0.0, init::FanMode::FanOut, init::Nonlinearity::Relu);
    } else if (auto* b = dynamic_cast<BatchNorm2d*>(m.get())) {
      init::ones_(b->weight);
      init::zeros_(b->bias);
    }
  }
  if (options.zero_init_residual)
    for (auto& [name, m] : named_modules())
      if (auto* blk = dynamic_cast<BasicBlock*>(m.get())) init::zeros_(blk->bn2->weight);
}

std::shared_ptr<Sequential> ResNet::make_layer(int64_t planes, int64_t blocks, int64_t stride) {
  ModulePtr ds;
  if (stride != 1 || inplanes_ != planes) {
    auto seq = std::make_shared<Sequential>();
    seq->push_back(conv1x1(inplanes_, planes, stride));
    seq->push_back(std::make_shared<BatchNorm2d>(planes));
    ds = seq;
  }
  auto layer = std::make_shared<Sequential>();
  layer->push_back(std::make_shared<BasicBlock>(inplanes_, planes, stride, ds));
  inplanes_ = planes;
  for (int64_t i = 1; i < blocks; ++i) layer->push_back(std::make_shared<BasicBlock>(inplanes_, planes));
  return layer;
}

Tensor ResNet::forward(const Tensor& x) {
  Tensor y = maxpool->forward(conv_batch_norm(*conv1, *bn1, x, Tensor(), /*relu=*/true));
  y = layer4->forward(layer3->forward(layer2->forward(layer1->forward(y))));
  return fc->forward(avgpool->forward(y).flatten(1));
}

std::shared_ptr<ResNet> resnet18(ResNetOptions options) {
  return std::make_shared<ResNet>(std::vector<int64_t>{2, 2, 2, 2}, options);
}

}  // namespace ht::nn
