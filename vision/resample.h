// PIL's bilinear resampling (Pillow's src/libImaging/Resample.c, ImagingResample with BILINEAR), the resize
// torchvision runs on PIL images: separable, horizontal pass first, then vertical (vertical first where Pillow 13
// does that: resample.cpp); a triangle filter whose support
// grows with the downscale factor (so downscaling averages, the "antialias"); coefficients normalised to sum 1,
// then fixed point with 22 fractional bits; each pass rounds to uint8. The passes run as AVX2 code where the CPU
// has it (resample_avx2.cpp), else as portable code; both give the same bytes.
#pragma once
#include "halftorch/vision/image.h"

namespace ht::vision {

// kBest: the AVX2 passes where the CPU has AVX2; kPortable: the plain C++ passes (the tests compare the two).
enum class ResampleCode { kBest, kPortable };

Image resize_bilinear(const Image& src, int64_t width, int64_t height, ResampleCode code = ResampleCode::kBest);
// resize_bilinear(crop(src, box), width, height) for a box inside src, without copying the box first.
Image resize_bilinear(const Image& src, const Box& box, int64_t width, int64_t height,
                      ResampleCode code = ResampleCode::kBest);
// crop(resize_bilinear(src, width, height), window) for a window inside width x height, computing only the window.
Image resize_bilinear_window(const Image& src, int64_t width, int64_t height, const Box& window,
                             ResampleCode code = ResampleCode::kBest);
bool resample_has_avx2();

}  // namespace ht::vision
