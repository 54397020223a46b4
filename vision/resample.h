// PIL's bilinear resampling (Pillow's src/libImaging/Resample.c, ImagingResample with BILINEAR), the resize
// torchvision runs on PIL images: separable, horizontal pass first, then vertical (vertical first where Pillow 13
// does that: resample.cpp); a triangle filter whose support
// grows with the downscale factor (so downscaling averages, the "antialias"); coefficients normalised to sum 1,
// then fixed point with 22 fractional bits; each pass rounds to uint8.
#pragma once
#include "halftorch/vision/image.h"

namespace ht::vision {

Image resize_bilinear(const Image& src, int64_t width, int64_t height);

}  // namespace ht::vision
