// float16 <-> float32 conversion loops of kernels/cpu/convert.h.
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

bool has_f16c() {
  static const bool yes = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx2");
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

void convert_dense(const RawView& src, const RawView& dst) {
  int64_t n = src.numel();
  if (has_f16c() && src.dtype == kFloat16 && dst.dtype == kFloat32) {
    const auto* s = static_cast<const uint16_t*>(src.data);
    auto* d = static_cast<float*>(dst.data);
    return blocks(n, [&](int64_t at, int64_t len) { half_to_float_f16c(s + at, d + at, len); });
  }
  if (has_f16c() && src.dtype == kFloat32 && dst.dtype == kFloat16) {
    const auto* s = static_cast<const float*>(src.data);
    auto* d = static_cast<uint16_t*>(dst.data);
    return blocks(n, [&](int64_t at, int64_t len) { float_to_half_f16c(s + at, d + at, len); });
  }
  cpu::copy(flat(src), flat(dst));
}

}  // namespace ht::kernels::cpu
