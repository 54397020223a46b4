// Dense dtype conversion on the CPU: float16 <-> float32 with the CPU's F16C instructions and bfloat16 <->
// float32 with AVX2 where it has them, portable loops otherwise; all round to nearest even, exactly as
// halftorch's Half and BFloat16 do (a signalling NaN comes back quiet). CPU kernels on 16-bit data widen a block
// to float, compute in float and narrow the result: the same values as converting element by element.
#pragma once
#include <type_traits>

#include "kernels/kernels.h"

namespace ht::kernels::cpu {

// dst = src converted, for two views of one shape that lie densely in memory with the same strides (NCHW or
// channels_last alike): numel() elements from data.
void convert_dense(const RawView& src, const RawView& dst);

// dst[i] = float(src[i]) and dst[i] = T(src[i]) for i < n (single-threaded: callers split the work).
void to_float(const Half* src, float* dst, int64_t n);
void to_float(const BFloat16* src, float* dst, int64_t n);
void from_float(const float* src, Half* dst, int64_t n);
void from_float(const float* src, BFloat16* dst, int64_t n);

// Between a dense float16 map, NCHW ([n][c][hw]) or channels_last ([n][hw][c]), c a multiple of 16, and float32
// in oneDNN's blocked layout nChw16c ([n][c/16][hw][16]): the conversion and the reorder in one pass. false
// (nothing written) where the CPU lacks F16C; the caller then converts and reorders separately.
enum class MapLayout { NCHW, ChannelsLast };
bool widen_to_blocked16(const Half* src, MapLayout layout, float* dst, int64_t n, int64_t c, int64_t hw);
bool narrow_from_blocked16(const float* src, Half* dst, MapLayout layout, int64_t n, int64_t c, int64_t hw);

template <class T> inline constexpr bool is_16bit_float_v = std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;
// What a CPU kernel computes a T as: float for the 16-bit floats, T itself otherwise.
template <class T> using float_image_t = std::conditional_t<is_16bit_float_v<T>, float, T>;

// n elements from src as float_image_t<T>: src itself, or (16-bit T) widened into buf.
template <class T>
const float_image_t<T>* float_image(const T* src, float* buf, int64_t n) {
  if constexpr (is_16bit_float_v<T>) {
    to_float(src, buf, n);
    return buf;
  } else {
    return src;
  }
}

}  // namespace ht::kernels::cpu
