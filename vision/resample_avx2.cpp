// The passes of vision/resample.cpp in AVX2, called only where the CPU has it (resample.cpp checks). Each weight
// (22 fractional bits, too wide for a 16-bit multiply) is split as hi * 2^15 + lo, two 16-bit multiply-adds
// (vpmaddwd) sum pixel * hi and pixel * lo exactly in int32, and hi_sum * 2^15 + lo_sum is the portable code's
// sum: the same integers, so the same rounding and the same bytes.
#include <immintrin.h>

#include <algorithm>
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

// Output pixel x's R, G, B sums (and a 0) as int32, before rounding, in `rows` consecutive rows from src: 4 taps
// per step. A 16-byte load holds taps 0..3 (12 bytes); the shuffle puts taps (0, 1) in the low 128-bit lane and
// (2, 3) in the high one as int16 pairs (R0 R1 G0 G1 B0 B1 0 0), so one vpmaddwd gives R, G, B sums of two taps
// per lane. Taps past the count have weight 0. Two rows share the position and weight loads.
template <int rows>
__attribute__((target("avx2"))) inline void horizontal_sums(const uint8_t* src, int64_t stride, int64_t x,
                                                            const Coeffs& c, __m256i pairs, __m128i* sums) {
  const uint8_t* p = src + c.first[size_t(x)] * 3;
  const int groups = (c.count[size_t(x)] + 3) / 4;
  const __m256i* klo = reinterpret_cast<const __m256i*>(&c.lo4[size_t(x * c.groups * 16)]);
  const __m256i* khi = reinterpret_cast<const __m256i*>(&c.hi4[size_t(x * c.groups * 16)]);
  __m256i lo[rows], hi[rows];
  for (int r = 0; r < rows; ++r) lo[r] = hi[r] = _mm256_setzero_si256();
  for (int g = 0; g < groups; ++g) {
    const __m256i wlo = _mm256_loadu_si256(klo + g), whi = _mm256_loadu_si256(khi + g);
    for (int r = 0; r < rows; ++r) {
      __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + r * stride + 12 * g));
      __m256i px = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(bytes), pairs);
      lo[r] = _mm256_add_epi32(lo[r], _mm256_madd_epi16(px, wlo));
      hi[r] = _mm256_add_epi32(hi[r], _mm256_madd_epi16(px, whi));
    }
  }
  for (int r = 0; r < rows; ++r) {
    __m256i sum = _mm256_add_epi32(_mm256_slli_epi32(hi[r], 15), lo[r]);
    sums[r] = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
  }
}

// Four pixels' sums rounded, clamped (as clip8) and stored as 12 bytes at dst; 16 bytes where there is room
// before `end`: the 4 after the pixels are rewritten later (next pixels or next row).
__attribute__((target("avx2"))) inline void store4(const __m128i* sums, uint8_t* dst, const uint8_t* end) {
  // packus leaves the four pixels as R G B 0 in the order 0 2 1 3; this packs them to 12 bytes in order
  const __m128i pack12 = _mm_setr_epi8(0, 1, 2, 8, 9, 10, 4, 5, 6, 12, 13, 14, -1, -1, -1, -1);
  __m256i a = _mm256_set_m128i(sums[1], sums[0]), b = _mm256_set_m128i(sums[3], sums[2]);
  a = _mm256_srai_epi32(_mm256_add_epi32(a, _mm256_set1_epi32(kHalf)), kPrecisionBits);
  b = _mm256_srai_epi32(_mm256_add_epi32(b, _mm256_set1_epi32(kHalf)), kPrecisionBits);
  __m256i words = _mm256_packs_epi32(a, b);
  __m128i rgb =
      _mm_shuffle_epi8(_mm_packus_epi16(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1)), pack12);
  if (dst + 16 <= end) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), rgb);
  } else {
    alignas(16) uint8_t last[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(last), rgb);
    std::memcpy(dst, last, 12);
  }
}

}  // namespace

// Two rows at a time, four output pixels rounded and stored together. A row whose loads could pass the end of
// the input buffer (the last rows) runs the portable code.
__attribute__((target("avx2"))) void horizontal_avx2(const PixelRows& in, Image& out, int64_t y0, const Coeffs& c) {
  const __m256i pairs = _mm256_setr_epi8(0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1,  //
                                         6, -1, 9, -1, 7, -1, 10, -1, 8, -1, 11, -1, -1, -1, -1, -1);
  int64_t reach = 0;  // bytes past a row's start that the loads of some output pixel reach
  for (int64_t x = 0; x < out.width; ++x)
    reach = std::max<int64_t>(reach, c.first[size_t(x)] * 3 + 12 * ((c.count[size_t(x)] + 3) / 4) + 4);
  const uint8_t* const out_end = out.pixels.data() + out.pixels.size();
  const int64_t out_stride = out.width * 3;
  int64_t y = 0;
  for (; y + 2 <= out.height && in.row(y0 + y + 1) + reach <= in.end; y += 2) {
    const uint8_t* src = in.row(y0 + y);
    uint8_t* dst = out.row(y);
    int64_t x = 0;
    for (; x + 4 <= out.width; x += 4) {
      __m128i sums[2][4];
      for (int k = 0; k < 4; ++k) {
        __m128i both[2];
        horizontal_sums<2>(src, in.stride, x + k, c, pairs, both);
        sums[0][k] = both[0];
        sums[1][k] = both[1];
      }
      store4(sums[0], dst + 3 * x, dst + out_stride);  // the second row is written already: no spill into it
      store4(sums[1], dst + out_stride + 3 * x, out_end);
    }
    for (; x < out.width; ++x) {
      horizontal_pixel(src, dst, x, c);
      horizontal_pixel(src + in.stride, dst + out_stride, x, c);
    }
  }
  for (; y < out.height; ++y) {
    const uint8_t* src = in.row(y0 + y);
    uint8_t* dst = out.row(y);
    int64_t x = 0;
    if (src + reach <= in.end) {
      for (; x + 4 <= out.width; x += 4) {
        __m128i sums[4];
        for (int k = 0; k < 4; ++k) horizontal_sums<1>(src, in.stride, x + k, c, pairs, &sums[k]);
        store4(sums, dst + 3 * x, out_end);
      }
    }
    for (; x < out.width; ++x) horizontal_pixel(src, dst, x, c);
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
