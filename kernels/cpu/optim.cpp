// CPU backend for the optimizer kernels: the shared bodies (kernels/optim_bodies.h) run over chunks of all
// tensors on OpenMP threads, and the inf check is an OR-reduction over the same unscale body. The loops are
// compiled twice (target_clones): for x86-64-v3 (AVX2, FMA, F16C) where the CPU has it, and a portable version
// whose fmaf calls give the same correctly rounded results, more slowly.
#include <algorithm>
#include <vector>

#include "kernels/cpu/executor.h"
#include "kernels/optim_backends.h"
#include "kernels/optim_bodies.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define HT_FMA_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define HT_FMA_CLONES
#endif

namespace ht::kernels::cpu {

namespace {

// One loop per body, dtype and buffer layout (kA, kB: the body's flag_a/flag_b), compiled once per instruction
// set.
template <class Body, class T, bool kA, bool kB, class Entry>
HT_FMA_CLONES void run_range(const Entry& entry, int64_t begin, int64_t end, float inv_scale) {
  // a local copy: its fields cannot alias the buffers the loop stores to, so they stay in registers
  const Entry e = entry;
  const Body body{};
  for (int64_t i = begin; i < end; ++i) body.template apply_as<T, kA, kB>(e, i, inv_scale);
}

template <class Entry>
using RangeFn = void (*)(const Entry&, int64_t, int64_t, float);

template <class Body, class T, class Entry>
RangeFn<Entry> pick_range(const Entry& e) {
  const bool a = Body::flag_a(e), b = Body::flag_b(e);
  if (a) return b ? run_range<Body, T, true, true, Entry> : run_range<Body, T, true, false, Entry>;
  return b ? run_range<Body, T, false, true, Entry> : run_range<Body, T, false, false, Entry>;
}

// All tensors' chunks in one parallel loop: one fork/join per optimizer step, however many tensors.
template <class Body, class Entry>
void run_all(const char* op, const Entry* tensors, int64_t count, float inv_scale, const float* found_inf) {
  if (found_inf && *found_inf != 0.f) return;
  struct Chunk {
    RangeFn<Entry> fn;
    const Entry* entry;
    int64_t begin, end;
  };
  std::vector<Chunk> chunks;
  for (int64_t k = 0; k < count; ++k) {
    const Entry& e = tensors[k];
    RangeFn<Entry> fn = e.dtype == kFloat32    ? pick_range<Body, float>(e)
                        : e.dtype == kFloat16  ? pick_range<Body, Half>(e)
                        : e.dtype == kBFloat16 ? pick_range<Body, BFloat16>(e)
                                               : nullptr;
    HT_CHECK(fn, "[", op, "] expected float32, float16 or bfloat16 parameters, got ", dtype_name(e.dtype));
    for (int64_t b = 0; b < e.numel; b += kParallelGrain)
      chunks.push_back({fn, &e, b, std::min(e.numel, b + kParallelGrain)});
  }
  const int64_t n = int64_t(chunks.size());
#pragma omp parallel for schedule(dynamic, 1) if (n > 1)
  for (int64_t c = 0; c < n; ++c) {
    const Chunk& ch = chunks[size_t(c)];
    ch.fn(*ch.entry, ch.begin, ch.end, inv_scale);
  }
}

}  // namespace

void adam_step(const AdamTensor* tensors, int64_t count, float inv_scale, const float* found_inf) {
  run_all<AdamBody>("adam_step", tensors, count, inv_scale, found_inf);
}

void sgd_step(const SgdTensor* tensors, int64_t count, float inv_scale, const float* found_inf) {
  run_all<SgdBody>("sgd_step", tensors, count, inv_scale, found_inf);
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
