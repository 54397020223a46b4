// The optimizer math, written once as host-device bodies: the CPU executor (kernels/cpu/optim.cpp) and the
// CUDA multi-tensor kernel (kernels/cuda/optim.cu) call these same functions per element. Everything is
// computed in fp32 (opmath) in the operation order of torch.optim's single-tensor CPU path, with a fused
// multiply-add exactly where PyTorch's AVX2 kernels fuse one (add_ with alpha, addcmul_) and nowhere else, so
// an fp32 run reproduces torch.optim bit for bit on such machines (tests/test_optim.cpp).
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "core/half.h"
#include "kernels/optim_kernels.h"

// The bodies are inlined into each executor loop, so that each loop (also each of the CPU's per-instruction-set
// clones) is compiled as one piece for its target.
#if defined(__CUDACC__)
#define HT_BODY_INLINE __forceinline__
#elif defined(__GNUC__)
#define HT_BODY_INLINE __attribute__((always_inline)) inline
#else
#define HT_BODY_INLINE inline
#endif

namespace ht::kernels {

// true for finite values; inf - inf and NaN - NaN are NaN, which compares unequal to zero.
template <class A> HT_HD HT_BODY_INLINE bool m_isfinite(A x) { return (x - x) == A(0); }
HT_HD HT_BODY_INLINE float m_sqrtf(float x) { return ::sqrtf(x); }
HT_HD HT_BODY_INLINE float m_fma(float a, float b, float c) { return ::fmaf(a, b, c); }
// A product that must stay rounded on its own (PyTorch rounds it in a separate kernel): compilers may
// otherwise fuse it into a later add. On the host, fma(a, b, -0) is exactly round(a * b) (x + -0 == x for
// every x, signed zeros included) and is not itself a multiply that could be contracted.
HT_HD HT_BODY_INLINE float m_mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return ::fmaf(a, b, -0.0f);
#endif
}
// torch.maximum: NaN wins.
HT_HD HT_BODY_INLINE float m_nan_max(float a, float b) { return a != a ? a : (b != b ? b : (a > b ? a : b)); }

// Element i of a T array in fp32, and back (round to nearest even). With GCC on x86-64 hosts, float16 goes
// through _Float16, which the CPU backend's x86-64-v3 clone compiles to the F16C conversion instructions; the
// results equal Half's own conversions for every value (a signalling NaN comes back quiet).
#if !defined(__CUDACC__) && defined(__GNUC__) && defined(__x86_64__) && defined(__FLT16_MAX__)
#define HT_HOST_FLOAT16 1
#endif
template <class T>
HT_HD HT_BODY_INLINE float load_f32(const void* p, int64_t i) {
#if defined(HT_HOST_FLOAT16)
  if constexpr (std::is_same_v<T, Half>) return float(std::bit_cast<_Float16>(static_cast<const Half*>(p)[i].bits));
#endif
  return float(static_cast<const T*>(p)[i]);
}
template <class T>
HT_HD HT_BODY_INLINE void store_f32(void* p, int64_t i, float v) {
#if defined(HT_HOST_FLOAT16)
  if constexpr (std::is_same_v<T, Half>) {
    static_cast<Half*>(p)[i].bits = std::bit_cast<uint16_t>(_Float16(v));
    return;
  }
#endif
  static_cast<T*>(p)[i] = T(v);
}

// Reads the gradient element in fp32, unscaled and negated as the step asks: x * 1 == x and
// x * -s == -(x * s) exactly, so one multiply does both without a branch in the loop.
template <class T>
HT_HD HT_BODY_INLINE float read_grad(const void* grad, int64_t i, float inv_scale, bool maximize) {
  return load_f32<T>(grad, i) * (maximize ? -inv_scale : inv_scale);
}

// The fp32 value being optimized (the master copy when there is one) and its write-back.
template <class T, bool kMaster>
HT_HD HT_BODY_INLINE float read_param(const void* param, const float* master, int64_t i) {
  if constexpr (kMaster) return master[i];
  return load_f32<T>(param, i);
}
template <class T, bool kMaster>
HT_HD HT_BODY_INLINE void write_param(void* param, float* master, int64_t i, float p) {
  if constexpr (kMaster) master[i] = p;
  store_f32<T>(param, i, p);
}

// torch.optim.Adam / AdamW (_single_tensor_adam[w]): L2 coupled into g (Adam) or decoupled decay on p (AdamW);
// moments as mul_ then add_/addcmul_; eps added after dividing sqrt(v) by sqrt(1 - beta2^t); amsgrad maxes the
// raw v; p += (-step_size * m) / denom (addcdiv_). The two flags that decide which buffers exist are template
// parameters (executors pick the instantiation per tensor), so a loop has no conditional loads or stores.
struct AdamBody {
  template <class T, bool kMaster, bool kAmsgrad>
  HT_HD HT_BODY_INLINE void apply_as(const AdamTensor& t, int64_t i, float inv_scale) const {
    float g = read_grad<T>(t.grad, i, inv_scale, t.maximize);
    // decay_factor is exactly 1 for Adam, so the multiply changes nothing there; selects, not branches,
    // keep the loop free of control flow
    float p = m_mul_rn(read_param<T, kMaster>(t.param, t.master, i), t.decay_factor);
    const float with_l2 = m_fma(p, t.weight_decay, g);
    g = !t.decoupled && t.weight_decay != 0.f ? with_l2 : g;
    float m = m_fma(g, t.one_minus_beta1, t.exp_avg[i] * t.beta1);
    float v = m_fma(t.one_minus_beta2 * g, g, t.exp_avg_sq[i] * t.beta2);
    t.exp_avg[i] = m;
    t.exp_avg_sq[i] = v;
    if constexpr (kAmsgrad) {
      v = m_nan_max(t.max_exp_avg_sq[i], v);
      t.max_exp_avg_sq[i] = v;
    }
    float denom = m_sqrtf(v) / t.bias_correction2_sqrt + t.eps;
    p = p + t.neg_step_size * m / denom;
    write_param<T, kMaster>(t.param, t.master, i, p);
  }
  // The template flags an entry needs: (has a master copy, amsgrad).
  HT_HD static bool flag_a(const AdamTensor& t) { return t.master != nullptr; }
  HT_HD static bool flag_b(const AdamTensor& t) { return t.amsgrad; }
};

// torch.optim.SGD (_single_tensor_sgd): weight decay into g, momentum buffer (cloned from g on its first step,
// then buf*momentum + (1-dampening)*g), nesterov g + momentum*buf, p += -lr * g.
struct SgdBody {
  template <class T, bool kMaster, bool kMomentum>
  HT_HD HT_BODY_INLINE void apply_as(const SgdTensor& t, int64_t i, float inv_scale) const {
    float g = read_grad<T>(t.grad, i, inv_scale, t.maximize);
    float p = read_param<T, kMaster>(t.param, t.master, i);
    const float with_decay = m_fma(p, t.weight_decay, g);
    g = t.weight_decay != 0.f ? with_decay : g;
    if constexpr (kMomentum) {
      float old = t.momentum_buffer[i];
      float buf = t.init_buffer ? g : m_fma(g, t.one_minus_dampening, old * t.momentum);
      t.momentum_buffer[i] = buf;
      g = t.nesterov ? m_fma(buf, t.momentum, g) : buf;
    }
    p = m_fma(g, t.neg_lr, p);
    write_param<T, kMaster>(t.param, t.master, i, p);
  }
  // The template flags an entry needs: (has a master copy, has a momentum buffer).
  HT_HD static bool flag_a(const SgdTensor& t) { return t.master != nullptr; }
  HT_HD static bool flag_b(const SgdTensor& t) { return t.momentum_buffer != nullptr; }
};

// The instantiation switch both executors share: f(TypeTag<T>, std::bool_constant<kA>, std::bool_constant<kB>)
// for an entry's parameter dtype T (float32, float16, bfloat16) and Body's two template flags, so that each
// (dtype, flags) loop is compiled once and picked per entry at run time. Returns false (calling nothing) for
// any other dtype: the caller reports it.
template <class Body, class Entry, class F>
HT_HD HT_BODY_INLINE bool visit_step(const Entry& e, F&& f) {
  const bool a = Body::flag_a(e), b = Body::flag_b(e);
  auto flags = [&](auto tag) {
    if (a) {
      if (b) f(tag, std::true_type{}, std::true_type{});
      else f(tag, std::true_type{}, std::false_type{});
    } else {
      if (b) f(tag, std::false_type{}, std::true_type{});
      else f(tag, std::false_type{}, std::false_type{});
    }
  };
  switch (e.dtype) {
    case DType::Float32: flags(TypeTag<float>{}); return true;
    case DType::Float16: flags(TypeTag<Half>{}); return true;
    case DType::BFloat16: flags(TypeTag<BFloat16>{}); return true;
    default: return false;
  }
}

// PyTorch's _amp_foreach_non_finite_check_and_unscale_ for one element: reports a non-finite value and
// multiplies in opmath (written back only when inv_scale != 1). Returns true when the element is inf or NaN.
struct UnscaleBody {
  template <class T>
  HT_HD HT_BODY_INLINE bool apply(const GradTensor& t, int64_t i, float inv_scale) const {
    T* g = static_cast<T*>(t.grad);
    using A = opmath_t<T>;
    A v = A(g[i]);
    bool bad = !m_isfinite(v);
    if (inv_scale != 1.f) g[i] = T(v * A(inv_scale));
    return bad;
  }
};

}  // namespace ht::kernels
