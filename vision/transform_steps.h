// Internals of vision/transforms.cpp and vision/to_tensor.cpp: the sample-as-image helper, and the transforms as
// named step types, so that Compose can see a Resize directly followed by a CenterCrop, or a ToTensor directly
// followed by a Normalize, and run each pair as one step that gives the same values with less work.
#pragma once
#include <array>
#include <vector>

#include "vision/transforms.h"

namespace ht::vision {

// The sample as a decoded image (moved out of it): an encoded JPEG is decoded in full, as PIL opens it; a tensor
// is an error naming `op`.
Image take_image(Sample& s, const char* op);

struct ResizeStep {
  int64_t size;
  Sample operator()(Sample s, Rng&) const;
};

struct CenterCropStep {
  int64_t size;
  Sample operator()(Sample s, Rng&) const;
};

// Resize then CenterCrop, resampling only the pixels the crop keeps (resize_bilinear_window).
struct ResizeCenterCropStep {
  int64_t resize, crop;
  Sample operator()(Sample s, Rng&) const;
};

struct ToTensorStep {
  Sample operator()(Sample s, Rng&) const;
};

struct NormalizeStep {
  std::vector<float> mean, std;
  Sample operator()(Sample s, Rng&) const;
};

// Per channel, the float each pixel value 0..255 becomes.
using ChannelTables = std::array<std::array<float, 256>, 3>;

// ToTensor then Normalize on a 3-channel image in one pass.
struct ToNormalizedTensorStep {
  ChannelTables table;
  ToNormalizedTensorStep(const std::vector<float>& mean, const std::vector<float>& std);
  Sample operator()(Sample s, Rng&) const;
};

// Compose's steps with each Resize directly followed by a CenterCrop made one ResizeCenterCropStep, and each
// ToTensor directly followed by a 3-channel Normalize one ToNormalizedTensorStep.
void fuse_steps(std::vector<Transform>& steps);

}  // namespace ht::vision
