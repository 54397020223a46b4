// The two passes of PIL's bilinear resampling (vision/resample.cpp), shared by the portable code and the AVX2
// code (resample_avx2.cpp). Both compute the same int32 sums of pixel * fixed-point weight: integer addition is
// exact and order-free, so every path gives the same bytes (tests/test_vision.cpp compares them).
#pragma once
#include <cstdint>
#include <vector>

#include "halftorch/vision/image.h"

namespace ht::vision::resample {

constexpr int kPrecisionBits = 32 - 8 - 2;  // Pillow's Resample.c PRECISION_BITS

// Resample.c's precompute_coeffs + normalize_coeffs_8bpc for one axis: for each output position the first input
// index, the tap count and the fixed-point weights (ksize per position, zero past the count). precompute keeps
// the output positions first_out .. first_out + n_out - 1 of the in_size -> out_size resize.
struct Coeffs {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> weights;  // out_size * ksize
  // The weights split for 16-bit multiply-adds, weight = hi * 2^15 + lo with 0 <= lo < 2^15 (bilinear weights are
  // >= 0 and <= 2^22, so hi <= 128): per output position, groups of 4 taps as 16 int16 in the AVX2 horizontal
  // pass's lane order [w0 w1 w0 w1 w0 w1 0 0 | w2 w3 w2 w3 w2 w3 0 0].
  int groups = 0;  // ceil(ksize / 4)
  std::vector<int16_t> lo4, hi4;  // out_size * groups * 16
};

Coeffs precompute(int64_t in_size, int64_t out_size, int64_t first_out, int64_t n_out);

// Rows of RGB pixels inside a larger buffer (a crop box without a copy). `end` bounds what vector loads may read.
struct PixelRows {
  const uint8_t* data = nullptr;  // the first row's first pixel
  int64_t stride = 0;             // bytes from one row to the next
  int64_t width = 0, height = 0;
  const uint8_t* end = nullptr;  // one past the buffer's last byte
  const uint8_t* row(int64_t y) const { return data + y * stride; }
};

inline uint8_t clip8(int32_t v) {
  int32_t s = v >> kPrecisionBits;
  return uint8_t(s < 0 ? 0 : s > 255 ? 255 : s);
}

// Horizontal: output row y (of out.height) from input row y0 + y. Vertical: output row y from input rows
// c.first[y] - shift ...
void horizontal_portable(const PixelRows& in, Image& out, int64_t y0, const Coeffs& c);
void vertical_portable(const PixelRows& in, Image& out, int64_t shift, const Coeffs& c);
void horizontal_avx2(const PixelRows& in, Image& out, int64_t y0, const Coeffs& c);
void vertical_avx2(const PixelRows& in, Image& out, int64_t shift, const Coeffs& c);

// One output pixel of the horizontal pass (the portable code, also the AVX2 pass's edge case).
inline void horizontal_pixel(const uint8_t* src_row, uint8_t* dst, int64_t x, const Coeffs& c) {
  const int32_t* k = &c.weights[size_t(x * c.ksize)];
  const uint8_t* p = src_row + c.first[size_t(x)] * 3;
  int32_t r = 1 << (kPrecisionBits - 1), g = r, b = r;
  for (int i = 0; i < c.count[size_t(x)]; ++i) {
    r += p[3 * i] * k[i];
    g += p[3 * i + 1] * k[i];
    b += p[3 * i + 2] * k[i];
  }
  dst[3 * x] = clip8(r);
  dst[3 * x + 1] = clip8(g);
  dst[3 * x + 2] = clip8(b);
}

}  // namespace ht::vision::resample
