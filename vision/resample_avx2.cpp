// The passes of vision/resample.cpp in AVX2, called only where the CPU has it (resample.cpp checks). Each weight
// (22 fractional bits, too wide for a 16-bit multiply) is split as hi * 2^15 + lo, two 16-bit multiply-adds
// (vpmaddwd) sum pixel * hi and pixel * lo exactly in int32, and hi_sum * 2^15 + lo_sum is the portable code's
// sum: the same integers, so the same rounding and the same bytes.
#include <immintrin.h>

#include <cstring>

#include "vision/resample_passes.h"

namespace ht::vision::resample {

namespace {

constexpr int32_t kHalf = 1 << (kPrecisionBits - 1);

// (hi_sum << 15) + lo_sum + 1/2, shifted and clamped to 0..255 as int32 lanes.
__attribute__((target("avx2"))) inline __m256i finish8(__m256i lo, __m256i hi) {
  __m256i sum = _mm256_add_epi32(_mm256_add_epi32(_mm256_slli_epi32(hi, 15), lo), _mm256_set1_epi32(kHalf));
  return _mm256_srai_epi32(sum, kPrecisionBits);
}

}  // namespace

// One output pixel at a time: 4 taps per step. A 16-byte load holds taps 0..3 (12 bytes); the shuffle puts taps
// (0, 1) in the low 128-bit lane and (2, 3) in the high one, as int16 pairs (R0 R1 G0 G1 B0 B1 0 0), so one
// vpmaddwd gives R, G, B partial sums of two taps per lane. Taps past the count have weight 0.
__attribute__((target("avx2"))) void horizontal_avx2(const PixelRows& in, Image& out, int64_t y0, const Coeffs& c) {
  const __m256i pairs = _mm256_setr_epi8(0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1,  //
                                         6, -1, 9, -1, 7, -1, 10, -1, 8, -1, 11, -1, -1, -1, -1, -1);
  for (int64_t y = 0; y < out.height; ++y) {
    const uint8_t* src = in.row(y0 + y);
    uint8_t* dst = out.row(y);
    for (int64_t x = 0; x < out.width; ++x) {
      const uint8_t* p = src + c.first[size_t(x)] * 3;
      int groups = (c.count[size_t(x)] + 3) / 4;
      if (p + 12 * groups + 4 > in.end) {  // the last loads would pass the buffer's end
        horizontal_pixel(src, dst, x, c);
        continue;
      }
      const int16_t* klo = &c.lo4[size_t(x * c.groups * 16)];
      const int16_t* khi = &c.hi4[size_t(x * c.groups * 16)];
      __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
      for (int g = 0; g < groups; ++g) {
        __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 12 * g));
        __m256i px = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(bytes), pairs);
        lo = _mm256_add_epi32(lo, _mm256_madd_epi16(px, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(klo + 16 * g))));
        hi = _mm256_add_epi32(hi, _mm256_madd_epi16(px, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(khi + 16 * g))));
      }
      __m128i lo4 = _mm_add_epi32(_mm256_castsi256_si128(lo), _mm256_extracti128_si256(lo, 1));
      __m128i hi4 = _mm_add_epi32(_mm256_castsi256_si128(hi), _mm256_extracti128_si256(hi, 1));
      __m128i v = _mm_add_epi32(_mm_add_epi32(_mm_slli_epi32(hi4, 15), lo4), _mm_set1_epi32(kHalf));
      v = _mm_srai_epi32(v, kPrecisionBits);
      v = _mm_packus_epi16(_mm_packs_epi32(v, v), v);  // clamps to 0..255 as clip8
      uint32_t rgb = uint32_t(_mm_cvtsi128_si32(v));
      std::memcpy(dst + 3 * x, &rgb, 3);
    }
  }
}

// 16 bytes of a row at a time, two input rows per step: their bytes interleaved and widened to int16 pairs
// (a0 b0 a1 b1 ...), one vpmaddwd per 8 columns and weight half. An odd last row pairs with weight 0.
__attribute__((target("avx2"))) void vertical_avx2(const PixelRows& in, Image& out, int64_t shift, const Coeffs& c) {
  const int64_t cols = out.width * 3;
  for (int64_t y = 0; y < out.height; ++y) {
    const int32_t* k = &c.weights[size_t(y * c.ksize)];
    const int n = c.count[size_t(y)];
    const int64_t first = c.first[size_t(y)] - shift;
    uint8_t* dst = out.row(y);
    int64_t j = 0;
    for (; j + 16 <= cols; j += 16) {
      __m256i lo0 = _mm256_setzero_si256(), hi0 = lo0, lo1 = lo0, hi1 = lo0;
      for (int i = 0; i < n; i += 2) {
        __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in.row(first + i) + j));
        __m128i b = a;
        int32_t kb = 0;
        if (i + 1 < n) {
          b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in.row(first + i + 1) + j));
          kb = k[i + 1];
        }
        __m256i wlo = _mm256_set1_epi32(int32_t(uint32_t(k[i] & 0x7fff) | uint32_t(kb & 0x7fff) << 16));
        __m256i whi = _mm256_set1_epi32(int32_t(uint32_t(uint16_t(k[i] >> 15)) | uint32_t(uint16_t(kb >> 15)) << 16));
        __m256i ab0 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(a, b));
        __m256i ab1 = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(a, b));
        lo0 = _mm256_add_epi32(lo0, _mm256_madd_epi16(ab0, wlo));
        hi0 = _mm256_add_epi32(hi0, _mm256_madd_epi16(ab0, whi));
        lo1 = _mm256_add_epi32(lo1, _mm256_madd_epi16(ab1, wlo));
        hi1 = _mm256_add_epi32(hi1, _mm256_madd_epi16(ab1, whi));
      }
      // packs works within 128-bit lanes: columns 0-3 8-11 | 4-7 12-15; the permute restores the order
      __m256i words = _mm256_permute4x64_epi64(_mm256_packs_epi32(finish8(lo0, hi0), finish8(lo1, hi1)), 0xd8);
      __m128i bytes = _mm_packus_epi16(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + j), bytes);
    }
    for (; j < cols; ++j) {
      int32_t acc = kHalf;
      for (int i = 0; i < n; ++i) acc += in.row(first + i)[j] * k[i];
      dst[j] = clip8(acc);
    }
  }
}

}  // namespace ht::vision::resample
