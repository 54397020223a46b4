// Elementwise math, written once as host-device functors: the CPU and CUDA executors run these same bodies.
// A functor computes in opmath (float for 16-bit types); the bodies in elementwise.h widen and narrow.
#pragma once
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "core/dtype.h"

namespace ht::kernels {

template <class T> inline constexpr bool is_float_v = std::is_floating_point_v<T> ||
    std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;

HT_HD inline float m_exp(float x) { return ::expf(x); }
HT_HD inline double m_exp(double x) { return ::exp(x); }
HT_HD inline float m_log(float x) { return ::logf(x); }
HT_HD inline double m_log(double x) { return ::log(x); }
HT_HD inline float m_sqrt(float x) { return ::sqrtf(x); }
HT_HD inline double m_sqrt(double x) { return ::sqrt(x); }
HT_HD inline float m_tanh(float x) { return ::tanhf(x); }
HT_HD inline double m_tanh(double x) { return ::tanh(x); }
HT_HD inline float m_erf(float x) { return ::erff(x); }
HT_HD inline double m_erf(double x) { return ::erf(x); }
HT_HD inline float m_pow(float x, float y) { return ::powf(x, y); }
HT_HD inline double m_pow(double x, double y) { return ::pow(x, y); }
template <class A> HT_HD inline bool m_isnan(A x) { return x != x; }

// Converts between any two storage types through opmath, as PyTorch's casts do (bool: x != 0).
template <class D, class S>
HT_HD inline D convert(S x) {
  if constexpr (std::is_same_v<D, S>) {
    return x;
  } else if constexpr (std::is_same_v<D, bool>) {
    return opmath_t<S>(x) != opmath_t<S>(0);
  } else if constexpr (std::is_same_v<D, Half> || std::is_same_v<D, BFloat16>) {
    return D(float(opmath_t<S>(x)));
  } else {
    return static_cast<D>(opmath_t<S>(x));
  }
}

// ---- unary: A op(A x)
struct Neg { template <class A> HT_HD A operator()(A x) const { return -x; } };
struct Exp { template <class A> HT_HD A operator()(A x) const { return m_exp(x); } };
struct Log { template <class A> HT_HD A operator()(A x) const { return m_log(x); } };
struct Sqrt { template <class A> HT_HD A operator()(A x) const { return m_sqrt(x); } };
struct Rsqrt { template <class A> HT_HD A operator()(A x) const { return A(1) / m_sqrt(x); } };
struct Abs { template <class A> HT_HD A operator()(A x) const { return x < A(0) ? -x : x; } };
struct Relu { template <class A> HT_HD A operator()(A x) const { return x > A(0) ? x : (m_isnan(x) ? x : A(0)); } };
struct Sigmoid { template <class A> HT_HD A operator()(A x) const { return A(1) / (A(1) + m_exp(-x)); } };
struct Tanh { template <class A> HT_HD A operator()(A x) const { return m_tanh(x); } };
struct Erf { template <class A> HT_HD A operator()(A x) const { return m_erf(x); } };
struct Square { template <class A> HT_HD A operator()(A x) const { return x * x; } };
struct PowScalar { double a; template <class A> HT_HD A operator()(A x) const { return m_pow(x, A(a)); } };
struct Clamp {
  double a, b;
  template <class A> HT_HD A operator()(A x) const {
    if (m_isnan(x)) return x;
    return x < A(a) ? A(a) : (x > A(b) ? A(b) : x);
  }
};
struct AddScalar { double a; template <class A> HT_HD A operator()(A x) const { return x + A(a); } };
struct MulScalar { double a; template <class A> HT_HD A operator()(A x) const { return x * A(a); } };
struct RSubScalar { double a; template <class A> HT_HD A operator()(A x) const { return A(a) - x; } };
struct DivScalar { double a; template <class A> HT_HD A operator()(A x) const { return x / A(a); } };
struct RDivScalar { double a; template <class A> HT_HD A operator()(A x) const { return A(a) / x; } };

// ---- binary: R op(A x, A y)
struct Add { double alpha; template <class A> HT_HD A operator()(A x, A y) const { return alpha == 1 ? x + y : x + A(alpha) * y; } };
struct Sub { double alpha; template <class A> HT_HD A operator()(A x, A y) const { return alpha == 1 ? x - y : x - A(alpha) * y; } };
struct Mul { template <class A> HT_HD A operator()(A x, A y) const { return x * y; } };
struct Div { template <class A> HT_HD A operator()(A x, A y) const { return x / y; } };
// maximum/minimum propagate NaN, as PyTorch's do
struct Maximum { template <class A> HT_HD A operator()(A x, A y) const { return m_isnan(x) ? x : m_isnan(y) ? y : (x > y ? x : y); } };
struct Minimum { template <class A> HT_HD A operator()(A x, A y) const { return m_isnan(x) ? x : m_isnan(y) ? y : (x < y ? x : y); } };
struct Eq { template <class A> HT_HD bool operator()(A x, A y) const { return x == y; } };
struct Ne { template <class A> HT_HD bool operator()(A x, A y) const { return x != y; } };
struct Lt { template <class A> HT_HD bool operator()(A x, A y) const { return x < y; } };
struct Le { template <class A> HT_HD bool operator()(A x, A y) const { return x <= y; } };
struct Gt { template <class A> HT_HD bool operator()(A x, A y) const { return x > y; } };
struct Ge { template <class A> HT_HD bool operator()(A x, A y) const { return x >= y; } };
struct ReluBwd { template <class A> HT_HD A operator()(A gy, A y) const { return y > A(0) ? gy : A(0); } };
struct SigmoidBwd { template <class A> HT_HD A operator()(A gy, A y) const { return gy * y * (A(1) - y); } };
struct TanhBwd { template <class A> HT_HD A operator()(A gy, A y) const { return gy * (A(1) - y * y); } };
struct ClampBwd {
  double a, b;
  template <class A> HT_HD A operator()(A gy, A x) const { return x >= A(a) && x <= A(b) ? gy : A(0); }
};
struct PowScalarBwd {
  double a;
  template <class A> HT_HD A operator()(A gy, A x) const { return a == 0 ? A(0) : gy * A(a) * m_pow(x, A(a - 1)); }
};

// ---- counter-based random bits: the same (seed, index) gives the same value on every device
HT_HD inline uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
// Uniform in [0, 1) with 53 random bits.
HT_HD inline double uniform01(uint64_t seed, uint64_t index, uint64_t stream = 0) {
  uint64_t r = mix64(mix64(seed ^ (stream * 0xd1b54a32d192ed03ull)) ^ index);
  return double(r >> 11) * (1.0 / 9007199254740992.0);
}

}  // namespace ht::kernels
