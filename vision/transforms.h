// ht::vision transforms with torchvision.transforms' semantics and defaults, on PIL-like RGB images up to
// ToTensor and on float32 [C, H, W] tensors after it. Compose chains them; a random transform draws from the
// Rng it is handed (ImageFolder seeds one per (seed, epoch, sample)). An image transform handed a not yet decoded
// JPEG (ImageFolder's draft option) decodes it in full first, except RandomResizedCrop, which decodes only as
// much resolution as its box needs.
#pragma once
#include <cstdint>
#include <functional>
#include <random>
#include <utility>
#include <variant>
#include <vector>

#include "halftorch/core/tensor.h"
#include "halftorch/vision/image.h"

namespace ht::vision {

using Rng = std::mt19937_64;
// an image before ToTensor (decoded, or a JPEG still encoded), a float32 [C, H, W] tensor after
using Sample = std::variant<Image, Tensor, EncodedJpeg>;
using Transform = std::function<Sample(Sample, Rng&)>;

// torchvision's Resize(size) for an int: the shorter side becomes `size`, the longer int(size * long / short);
// PIL bilinear with antialias.
std::pair<int64_t, int64_t> resize_output_size(int64_t width, int64_t height, int64_t size);  // (width, height)
Image resize_shorter(const Image& img, int64_t size);
// Rows top..top+height, columns left..left+width; parts outside the image are black (PIL's crop).
Image crop(const Image& img, const Box& box);
// torchvision's CenterCrop(size): offsets int(round((dim - size) / 2.0)), rounding half to even as Python does;
// an image smaller than size is padded with black first, as torchvision pads.
Image center_crop(const Image& img, int64_t width, int64_t height);
// center_crop's box on an image_width x image_height image (negative offsets where it pads).
Box center_crop_box(int64_t image_width, int64_t image_height, int64_t width, int64_t height);
Image hflip(const Image& img);
void hflip_in_place(Image& img);
// torchvision's RandomResizedCrop.get_params(img, scale, ratio): 10 tries of an area fraction uniform in
// `scale` and a log-uniform aspect ratio in `ratio`, then the central fallback.
Box random_resized_crop_box(int64_t width, int64_t height, Rng& rng, std::pair<double, double> scale = {0.08, 1.0},
                            std::pair<double, double> ratio = {3.0 / 4.0, 4.0 / 3.0});
// RandomResizedCrop's output from an encoded JPEG: `box` is drawn on the full-size image; the JPEG is decoded at the
// smallest DCT scale (1, 1/2, 1/4, 1/8) at which the box keeps at least size x size pixels (PIL's draft rule:
// scale <= the box's side // size), the box is scaled with it, cropped and resized to size x size.
Image draft_resized_crop(const EncodedJpeg& jpeg, const Box& box, int64_t size);
// float32 [3, H, W] in [0, 1]: pixel / 255 (torchvision's ToTensor).
Tensor to_tensor(const Image& img);

// Transforms as Compose's steps.
Transform Resize(int64_t size);
Transform CenterCrop(int64_t size);
Transform RandomResizedCrop(int64_t size, std::pair<double, double> scale = {0.08, 1.0},
                            std::pair<double, double> ratio = {3.0 / 4.0, 4.0 / 3.0});
Transform RandomHorizontalFlip(double p = 0.5);
Transform ToTensor();
Transform Normalize(std::vector<float> mean, std::vector<float> std);
Transform Compose(std::vector<Transform> steps);

// ImageNet's mean and std (torchvision's reference recipes).
inline const std::vector<float> kImageNetMean{0.485f, 0.456f, 0.406f};
inline const std::vector<float> kImageNetStd{0.229f, 0.224f, 0.225f};

}  // namespace ht::vision
