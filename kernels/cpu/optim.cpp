// CPU backend for the optimizer kernels: the shared bodies (kernels/optim_bodies.h) run over chunks of all
// tensors on OpenMP threads, and the inf check is an OR-reduction over the same unscale body. The loops are
// compiled twice (target_clones): for x86-64-v3 (AVX2, FMA, F16C) where the CPU has it, and a portable version
// whose fmaf calls give the same correctly rounded results, more slowly. 16-bit parameters run the float loop
// block by block on widened gradients (and parameters), then narrow the parameters: the same values.
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "kernels/cpu/convert.h"
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

constexpr int64_t kBlock = 512;  // elements per block of a 16-bit range

// Entry e's elements [k0, ...) as a float32 entry over the given gradient and parameter blocks.
AdamTensor float_block(const AdamTensor& e, int64_t k0, const float* grad, float* param) {
  AdamTensor b = e;
  b.grad = grad;
  b.param = param;
  b.dtype = kFloat32;
  if (b.master) b.master += k0;
  b.exp_avg += k0;
  b.exp_avg_sq += k0;
  if (b.max_exp_avg_sq) b.max_exp_avg_sq += k0;
  return b;
}
SgdTensor float_block(const SgdTensor& e, int64_t k0, const float* grad, float* param) {
  SgdTensor b = e;
  b.grad = grad;
  b.param = param;
  b.dtype = kFloat32;
  if (b.master) b.master += k0;
  if (b.momentum_buffer) b.momentum_buffer += k0;
  return b;
}

// A range of a 16-bit entry, block by block: the gradient widened, then the float loop without a master copy,
// over the master itself when there is one (it reads and writes the same values as the master loop, and
// vectorises), else over the widened parameter; the parameter narrowed from the result.
template <class Body, class T, bool kB, class Entry>
void run_range_16bit(const Entry& entry, int64_t begin, int64_t end, float inv_scale) {
  const T* grad = static_cast<const T*>(entry.grad);
  T* param = static_cast<T*>(entry.param);
  for (int64_t k0 = begin; k0 < end; k0 += kBlock) {
    const int64_t len = std::min(kBlock, end - k0);
    float g[kBlock], p_buf[kBlock];
    to_float(grad + k0, g, len);
    float* p = entry.master ? entry.master + k0 : p_buf;
    if (!entry.master) to_float(param + k0, p, len);
    Entry block = float_block(entry, k0, g, p);
    block.master = nullptr;
    run_range<Body, float, false, kB>(block, 0, len, inv_scale);
    from_float(p, param + k0, len);
  }
}

template <class Entry>
using RangeFn = void (*)(const Entry&, int64_t, int64_t, float);

// The loop for an entry's dtype and buffer layout (null for a dtype the optimizers do not take).
template <class Body, class Entry>
RangeFn<Entry> pick_range(const Entry& e) {
  RangeFn<Entry> fn = nullptr;
  visit_step<Body>(e, [&](auto tag, auto a, auto b) {
    using T = typename decltype(tag)::type;
    if constexpr (is_16bit_float_v<T>) {
      fn = run_range_16bit<Body, T, decltype(b)::value, Entry>;
    } else {
      fn = run_range<Body, T, decltype(a)::value, decltype(b)::value, Entry>;
    }
  });
  return fn;
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
    RangeFn<Entry> fn = pick_range<Body>(e);
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

void adam_step(Device, const AdamTensor* tensors, int64_t count, float inv_scale, const float* found_inf) {
  run_all<AdamBody>("adam_step", tensors, count, inv_scale, found_inf);
}

void sgd_step(Device, const SgdTensor* tensors, int64_t count, float inv_scale, const float* found_inf) {
  run_all<SgdBody>("sgd_step", tensors, count, inv_scale, found_inf);
}

namespace {
// Whether any of n 16-bit floats is inf or NaN (all exponent bits set, `exponent` being the dtype's mask),
// read as integers: no widening, and a loop the compiler vectorises.
bool any_non_finite_bits(const uint16_t* bits, int64_t n, uint16_t exponent) {
  uint32_t found = 0;
#pragma omp parallel for schedule(static) reduction(| : found) if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) found |= uint32_t((bits[i] & exponent) == exponent);
  return found != 0;
}
}  // namespace

void unscale_and_check(Device, const GradTensor* tensors, int64_t count, float inv_scale, float* found_inf) {
  bool found = false;
  for (int64_t k = 0; k < count; ++k) {
    const GradTensor& e = tensors[k];
    visit_floating(e.dtype, "unscale_and_check", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const UnscaleBody body;
      const int64_t n = e.numel;
      bool bad = false;
      if constexpr (is_16bit_float_v<T>) {
        if (inv_scale == 1.f) {  // the check alone (GradScaler::step unscales inside the optimizer's kernel)
          bad = any_non_finite_bits(static_cast<const uint16_t*>(e.grad), n,
                                    std::is_same_v<T, Half> ? uint16_t(0x7C00) : uint16_t(0x7F80));
          found = found || bad;
          return;
        }
        // per block: widen, the float body on the widened copy, narrow back only when it changed
        T* grad = static_cast<T*>(e.grad);
#pragma omp parallel for schedule(static) reduction(|| : bad) if (n >= kParallelGrain)
        for (int64_t k0 = 0; k0 < n; k0 += kBlock) {
          const int64_t len = std::min(kBlock, n - k0);
          float g[kBlock];
          to_float(grad + k0, g, len);
          const GradTensor block{g, len, kFloat32};
          bool block_bad = false;
          for (int64_t i = 0; i < len; ++i) block_bad = body.apply<float>(block, i, inv_scale) || block_bad;
          if (inv_scale != 1.f) from_float(g, grad + k0, len);
          bad = bad || block_bad;
        }
      } else {
#pragma omp parallel for schedule(static) reduction(|| : bad) if (n >= kParallelGrain)
        for (int64_t i = 0; i < n; ++i) bad = body.apply<T>(e, i, inv_scale) || bad;
      }
      found = found || bad;
    });
  }
  if (found) *found_inf = 1.f;
}

}  // namespace ht::kernels::cpu
