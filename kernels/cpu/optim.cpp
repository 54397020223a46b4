// CPU backend for the optimizer kernels: the shared bodies (kernels/optim_bodies.h) run over chunks of each
// tensor on OpenMP threads, and the inf check is an OR-reduction over the same unscale body. The loops are
// compiled twice (target_clones): with FMA/AVX2 where the CPU has them, and a portable version whose fmaf calls
// give the same correctly rounded results, more slowly.
#include "kernels/cpu/executor.h"
#include "kernels/optim_backends.h"
#include "kernels/optim_bodies.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define HT_FMA_CLONES __attribute__((target_clones("arch=haswell", "default")))
#else
#define HT_FMA_CLONES
#endif

namespace ht::kernels::cpu {

namespace {

template <class Body, class T, class Entry>
inline void run_range(const Entry& e, int64_t begin, int64_t end, float inv_scale) {
  const Body body{};
  for (int64_t i = begin; i < end; ++i) body.template apply<T>(e, i, inv_scale);
}

// One non-template function per body and dtype, so that each can be cloned per instruction set.
#define HT_RANGE_FN(name, Body, T, Entry) \
  HT_FMA_CLONES void name(const Entry& e, int64_t b, int64_t n, float s) { run_range<Body, T>(e, b, n, s); }
HT_RANGE_FN(adam_f32, AdamBody, float, AdamTensor)
HT_RANGE_FN(adam_f16, AdamBody, Half, AdamTensor)
HT_RANGE_FN(adam_bf16, AdamBody, BFloat16, AdamTensor)
HT_RANGE_FN(sgd_f32, SgdBody, float, SgdTensor)
HT_RANGE_FN(sgd_f16, SgdBody, Half, SgdTensor)
HT_RANGE_FN(sgd_bf16, SgdBody, BFloat16, SgdTensor)
#undef HT_RANGE_FN

template <class Entry>
using RangeFn = void (*)(const Entry&, int64_t, int64_t, float);

template <class Entry>
void run_all(const char* op, const Entry* tensors, int64_t count, float inv_scale, const float* found_inf,
             RangeFn<Entry> f32, RangeFn<Entry> f16, RangeFn<Entry> bf16) {
  if (found_inf && *found_inf != 0.f) return;
  for (int64_t k = 0; k < count; ++k) {
    const Entry& e = tensors[k];
    RangeFn<Entry> fn = e.dtype == kFloat32 ? f32 : e.dtype == kFloat16 ? f16 : e.dtype == kBFloat16 ? bf16 : nullptr;
    HT_CHECK(fn, "[", op, "] expected float32, float16 or bfloat16 parameters, got ", dtype_name(e.dtype));
    const int64_t chunks = (e.numel + kParallelGrain - 1) / kParallelGrain;
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (int64_t c = 0; c < chunks; ++c)
      fn(e, c * kParallelGrain, std::min(e.numel, (c + 1) * kParallelGrain), inv_scale);
  }
}

}  // namespace

void adam_step(const AdamTensor* tensors, int64_t count, float inv_scale, const float* found_inf) {
  run_all<AdamTensor>("adam_step", tensors, count, inv_scale, found_inf, adam_f32, adam_f16, adam_bf16);
}

void sgd_step(const SgdTensor* tensors, int64_t count, float inv_scale, const float* found_inf) {
  run_all<SgdTensor>("sgd_step", tensors, count, inv_scale, found_inf, sgd_f32, sgd_f16, sgd_bf16);
}

void unscale_and_check(const GradTensor* tensors, int64_t count, float inv_scale, float* found_inf) {
  bool found = false;
  for (int64_t k = 0; k < count; ++k) {
    const GradTensor& e = tensors[k];
    visit_floating(e.dtype, "unscale_and_check", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const UnscaleBody body;
      const int64_t n = e.numel;
      bool bad = false;
#pragma omp parallel for schedule(static) reduction(|| : bad) if (n >= kParallelGrain)
      for (int64_t i = 0; i < n; ++i) bad = body.apply<T>(e, i, inv_scale) || bad;
      found = found || bad;
    });
  }
  if (found) *found_inf = 1.f;
}

}  // namespace ht::kernels::cpu
