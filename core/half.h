// Host/device 16-bit float storage types, bit-compatible with __half and __nv_bfloat16.
// Conversions round to nearest even and handle inf, NaN and subnormals. Math happens in float (opmath_t).
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define HT_HD __host__ __device__
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#else
#define HT_HD
#endif

namespace ht {

HT_HD inline uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}
HT_HD inline float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}

// IEEE binary16 <-> binary32, round-to-nearest-even, exact for every one of the 65536 half bit patterns.
HT_HD inline float half_bits_to_float(uint16_t h) {
  // Branch-free (selects only), so loops over half arrays vectorise: shift exponent and mantissa into place,
  // rebias; inf/NaN get the float's all-ones exponent; subnormals are renormalised by one float subtraction.
  const uint32_t shifted_exp = 0x7c00u << 13;
  uint32_t o = uint32_t(h & 0x7fff) << 13;
  uint32_t exp = shifted_exp & o;
  o += (127 - 15) << 23;
  o = exp == shifted_exp ? o + ((128 - 16) << 23) : o;
  float sub = bits_float(o + (1u << 23)) - bits_float(113u << 23);
  o = exp == 0 ? float_bits(sub) : o;
  return bits_float(o | (uint32_t(h & 0x8000) << 16));
}

HT_HD inline uint16_t float_to_half_bits(float f) {
  uint32_t x = float_bits(f);
  uint16_t sign = uint16_t((x >> 16) & 0x8000);
  uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) {  // inf or NaN
    return uint16_t(sign | 0x7c00 | (ax > 0x7f800000u ? (0x200 | ((ax >> 13) & 0x3ff)) : 0));
  }
  if (ax >= 0x477ff000u) return uint16_t(sign | 0x7c00);  // rounds to >= 65520 -> inf
  if (ax < 0x38800000u) {                                 // below the smallest normal half (2^-14)
    // add a magic value so the FPU's own round-to-nearest-even places the bits: result in [0.5, 1)
    float v = bits_float(ax) + 0.5f;
    return uint16_t(sign | uint16_t(float_bits(v) - 0x3f000000u));
  }
  uint32_t mant_odd = (ax >> 13) & 1;
  ax += 0xc8000fffu + mant_odd;  // rebias exponent (-112 << 23) and round to nearest even
  return uint16_t(sign | uint16_t(ax >> 13));
}

HT_HD inline float bf16_bits_to_float(uint16_t b) { return bits_float(uint32_t(b) << 16); }
HT_HD inline uint16_t float_to_bf16_bits(float f) {
  uint32_t x = float_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return uint16_t((x >> 16) | 0x40);  // quiet NaN, keep sign
  x += 0x7fffu + ((x >> 16) & 1);
  return uint16_t(x >> 16);
}

struct alignas(2) Half {
  uint16_t bits = 0;
  Half() = default;
  HT_HD Half(float f) : bits(float_to_half_bits(f)) {}
  HT_HD Half(double d) : Half(float(d)) {}
  HT_HD operator float() const {
#if defined(__CUDA_ARCH__)
    return __half2float(__ushort_as_half(bits));
#else
    return half_bits_to_float(bits);
#endif
  }
  HT_HD static Half from_bits(uint16_t b) {
    Half h;
    h.bits = b;
    return h;
  }
};

struct alignas(2) BFloat16 {
  uint16_t bits = 0;
  BFloat16() = default;
  HT_HD BFloat16(float f) : bits(float_to_bf16_bits(f)) {}
  HT_HD BFloat16(double d) : BFloat16(float(d)) {}
  HT_HD operator float() const { return bf16_bits_to_float(bits); }
  HT_HD static BFloat16 from_bits(uint16_t b) {
    BFloat16 h;
    h.bits = b;
    return h;
  }
};

static_assert(sizeof(Half) == 2 && sizeof(BFloat16) == 2);

}  // namespace ht
