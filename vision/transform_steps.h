// Internals of vision/transforms.cpp and vision/to_tensor.cpp: the sample-as-image helper, and ToTensor and
// Normalize as named step types so that Compose can see a ToTensor directly followed by a Normalize and run the
// two as one pass (to_tensor.cpp), with the same float operations and so the same values.
#pragma once
#include <array>
#include <vector>

#include "vision/transforms.h"

namespace ht::vision {

// The sample as a decoded image (moved out of it): an encoded JPEG is decoded in full, as PIL opens it; a tensor
// is an error naming `op`.
Image take_image(Sample& s, const char* op);

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

// Replaces each ToTensor directly followed by a 3-channel Normalize in `steps` with one ToNormalizedTensorStep.
void fuse_to_tensor_and_normalize(std::vector<Transform>& steps);

}  // namespace ht::vision
