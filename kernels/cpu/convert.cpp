// float16 and bfloat16 <-> float32 conversion loops of kernels/cpu/convert.h.
#include "kernels/cpu/convert.h"

#include <immintrin.h>

#include "core/half.h"
#include "kernels/backends.h"
#include "kernels/cpu/executor.h"

namespace ht::kernels::cpu {

namespace {

constexpr int64_t kBlock = 4096;  // elements per parallel task

__attribute__((target("avx2,f16c"))) void half_to_float_f16c(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
  for (; i < n; ++i) dst[i] = half_bits_to_float(src[i]);
}
__attribute__((target("avx2,f16c"))) void float_to_half_f16c(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  for (; i < n; ++i) dst[i] = float_to_half_bits(src[i]);
}

// bfloat16 is the top half of a float: widening shifts, narrowing adds 0x7fff plus the kept lowest bit (round to
// nearest even) and keeps NaNs NaN by setting the quiet bit instead, as float_to_bf16_bits does.
__attribute__((target("avx2"))) void bf16_to_float_avx2(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), _mm256_slli_epi32(w, 16));
  }
  for (; i < n; ++i) dst[i] = bf16_bits_to_float(src[i]);
}
// Eight floats to bfloat16 bits, one per 32-bit lane.
__attribute__((target("avx2"))) inline __m256i float_to_bf16_lanes(__m256i x) {
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
  const __m256i bias = _mm256_set1_epi32(0x7fff), one = _mm256_set1_epi32(1), quiet = _mm256_set1_epi32(0x40);
  __m256i is_nan = _mm256_cmpgt_epi32(_mm256_and_si256(x, abs_mask), inf);
  __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), one);
  __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(x, _mm256_add_epi32(bias, lsb)), 16);
  __m256i nan = _mm256_or_si256(_mm256_srli_epi32(x, 16), quiet);
  return _mm256_blendv_epi8(rounded, nan, is_nan);
}
__attribute__((target("avx2"))) void float_to_bf16_avx2(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256i lo = float_to_bf16_lanes(_mm256_castps_si256(_mm256_loadu_ps(src + i)));
    __m256i hi = float_to_bf16_lanes(_mm256_castps_si256(_mm256_loadu_ps(src + i + 8)));
    // packus works per 128-bit lane (values fit 16 bits, so nothing saturates); the permute restores order
    __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(lo, hi), 0xd8);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), packed);
  }
  for (; i < n; ++i) dst[i] = float_to_bf16_bits(src[i]);
}

// One image of a channels_last float16 map ([hw][c]) to or from float32 nChw16c ([c/16][hw][16]), pixel by
// pixel: each pixel's channels are read (or written) in one sequential sweep, its 16-channel groups spread over
// the c/16 planes. (Plane by plane instead, every task strides through the whole image for 32 bytes a pixel:
// twice as slow on 64 channels, six times on 256 channels of 2x2.)
__attribute__((target("avx2,f16c"))) void widen_image_f16c(const uint16_t* src, float* dst, int64_t c, int64_t hw) {
  for (int64_t p = 0; p < hw; ++p, src += c)
    for (int64_t b = 0; b < c / 16; ++b) {
      float* out = dst + (b * hw + p) * 16;
      _mm256_storeu_ps(out, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + b * 16))));
      _mm256_storeu_ps(out + 8, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + b * 16 + 8))));
    }
}
__attribute__((target("avx2,f16c"))) void narrow_image_f16c(const float* src, uint16_t* dst, int64_t c, int64_t hw) {
  constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  for (int64_t p = 0; p < hw; ++p, dst += c)
    for (int64_t b = 0; b < c / 16; ++b) {
      const float* in = src + (b * hw + p) * 16;
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + b * 16), _mm256_cvtps_ph(_mm256_loadu_ps(in), kRound));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + b * 16 + 8), _mm256_cvtps_ph(_mm256_loadu_ps(in + 8), kRound));
    }
}

// The 8x8 transpose of eight rows of eight floats: r[k] becomes column k.
__attribute__((target("avx2"))) inline void transpose8x8(__m256* r) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i) {
    u[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}
// One 16-channel group of an NCHW float16 map (16 planes of hw values) to or from nChw16c float32 (hw rows of
// 16): eight pixels at a time, 16 plane segments widened and transposed as two 8x8 tiles.
__attribute__((target("avx2,f16c"))) void widen_planes16_f16c(const uint16_t* src, int64_t hw, float* dst) {
  int64_t p = 0;
  for (; p + 8 <= hw; p += 8) {
    __m256 lo[8], hi[8];  // channels 0-7 and 8-15
    for (int j = 0; j < 8; ++j) {
      lo[j] = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + j * hw + p)));
      hi[j] = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + (j + 8) * hw + p)));
    }
    transpose8x8(lo);
    transpose8x8(hi);
    for (int q = 0; q < 8; ++q) {
      _mm256_storeu_ps(dst + (p + q) * 16, lo[q]);
      _mm256_storeu_ps(dst + (p + q) * 16 + 8, hi[q]);
    }
  }
  for (; p < hw; ++p)
    for (int j = 0; j < 16; ++j) dst[p * 16 + j] = half_bits_to_float(src[j * hw + p]);
}
__attribute__((target("avx2,f16c"))) void narrow_planes16_f16c(const float* src, uint16_t* dst, int64_t hw) {
  constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  int64_t p = 0;
  for (; p + 8 <= hw; p += 8) {
    __m256 lo[8], hi[8];  // pixels p..p+7, channels 0-7 and 8-15
    for (int q = 0; q < 8; ++q) {
      lo[q] = _mm256_loadu_ps(src + (p + q) * 16);
      hi[q] = _mm256_loadu_ps(src + (p + q) * 16 + 8);
    }
    transpose8x8(lo);
    transpose8x8(hi);
    for (int j = 0; j < 8; ++j) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + j * hw + p), _mm256_cvtps_ph(lo[j], kRound));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + (j + 8) * hw + p), _mm256_cvtps_ph(hi[j], kRound));
    }
  }
  for (; p < hw; ++p)
    for (int j = 0; j < 16; ++j) dst[j * hw + p] = float_to_half_bits(src[p * 16 + j]);
}

bool has_f16c() {
  static const bool yes = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx2");
  return yes;
}
bool has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
}

template <class F>
void blocks(int64_t n, F&& f) {
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
  for (int64_t b = 0; b < (n + kBlock - 1) / kBlock; ++b) f(b * kBlock, std::min(kBlock, n - b * kBlock));
}

RawView flat(const RawView& v) {
  RawView f = v;
  f.ndim = 1;
  f.sizes[0] = v.numel();
  f.strides[0] = 1;
  return f;
}

}  // namespace

void to_float(const Half* src, float* dst, int64_t n) {
  const auto* s = reinterpret_cast<const uint16_t*>(src);
  if (has_f16c()) return half_to_float_f16c(s, dst, n);
  for (int64_t i = 0; i < n; ++i) dst[i] = half_bits_to_float(s[i]);
}
void to_float(const BFloat16* src, float* dst, int64_t n) {
  const auto* s = reinterpret_cast<const uint16_t*>(src);
  if (has_avx2()) return bf16_to_float_avx2(s, dst, n);
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_bits_to_float(s[i]);
}
void from_float(const float* src, Half* dst, int64_t n) {
  auto* d = reinterpret_cast<uint16_t*>(dst);
  if (has_f16c()) return float_to_half_f16c(src, d, n);
  for (int64_t i = 0; i < n; ++i) d[i] = float_to_half_bits(src[i]);
}
void from_float(const float* src, BFloat16* dst, int64_t n) {
  auto* d = reinterpret_cast<uint16_t*>(dst);
  if (has_avx2()) return float_to_bf16_avx2(src, d, n);
  for (int64_t i = 0; i < n; ++i) d[i] = float_to_bf16_bits(src[i]);
}

bool widen_to_blocked16(const Half* src, MapLayout layout, float* dst, int64_t n, int64_t c, int64_t hw) {
  if (!has_f16c() || c % 16 != 0) return false;
  const auto* s = reinterpret_cast<const uint16_t*>(src);
  if (layout == MapLayout::ChannelsLast) {
#pragma omp parallel for schedule(static) if (n * c * hw >= kParallelGrain)
    for (int64_t i = 0; i < n; ++i) widen_image_f16c(s + i * hw * c, dst + i * hw * c, c, hw);
  } else {
#pragma omp parallel for schedule(static) if (n * c * hw >= kParallelGrain)
    for (int64_t g = 0; g < n * c / 16; ++g) widen_planes16_f16c(s + g * 16 * hw, hw, dst + g * 16 * hw);
  }
  return true;
}
bool narrow_from_blocked16(const float* src, Half* dst, MapLayout layout, int64_t n, int64_t c, int64_t hw) {
  if (!has_f16c() || c % 16 != 0) return false;
  auto* d = reinterpret_cast<uint16_t*>(dst);
  if (layout == MapLayout::ChannelsLast) {
#pragma omp parallel for schedule(static) if (n * c * hw >= kParallelGrain)
    for (int64_t i = 0; i < n; ++i) narrow_image_f16c(src + i * hw * c, d + i * hw * c, c, hw);
  } else {
#pragma omp parallel for schedule(static) if (n * c * hw >= kParallelGrain)
    for (int64_t g = 0; g < n * c / 16; ++g) narrow_planes16_f16c(src + g * 16 * hw, d + g * 16 * hw, hw);
  }
  return true;
}

void convert_dense(const RawView& src, const RawView& dst) {
  int64_t n = src.numel();
  auto widen = [&](auto* s) {
    auto* d = static_cast<float*>(dst.data);
    blocks(n, [&](int64_t at, int64_t len) { to_float(s + at, d + at, len); });
  };
  auto narrow = [&](auto* d) {
    const auto* s = static_cast<const float*>(src.data);
    blocks(n, [&](int64_t at, int64_t len) { from_float(s + at, d + at, len); });
  };
  if (dst.dtype == kFloat32 && src.dtype == kFloat16) return widen(static_cast<const Half*>(src.data));
  if (dst.dtype == kFloat32 && src.dtype == kBFloat16) return widen(static_cast<const BFloat16*>(src.data));
  if (src.dtype == kFloat32 && dst.dtype == kFloat16) return narrow(static_cast<Half*>(dst.data));
  if (src.dtype == kFloat32 && dst.dtype == kBFloat16) return narrow(static_cast<BFloat16*>(dst.data));
  cpu::copy(flat(src), flat(dst));
}

}  // namespace ht::kernels::cpu
