// The elementwise machinery shared by the CPU and CUDA backends: n-ary "map" bodies (contiguous, vectorised,
// strided) and the dtype/op switches that pick them. A backend includes this file and instantiates
// Elementwise<Executor>, where Executor provides `run(n, body)` and kVecBytes (0: no vector path).
#pragma once
#include <cstdint>
#include <tuple>
#include <utility>

#include "kernels/functors.h"
#include "kernels/kernels.h"

#if defined(__CUDA_ARCH__)
#define HT_UNROLL _Pragma("unroll")
#else
#define HT_UNROLL
#endif

namespace ht::kernels {

// Division by a fixed 32-bit divisor as a multiply-high and a shift (Granlund and Montgomery; PyTorch's
// IntDivider): exact for dividends and divisors below 2^31, several times cheaper than a 64-bit division.
struct IntDivider {
  uint32_t divisor = 1, magic = 1, shift = 0;
  IntDivider() = default;
  explicit IntDivider(uint32_t d) : divisor(d) {
    while (shift < 32 && (uint64_t(1) << shift) < d) ++shift;
    magic = uint32_t(((uint64_t(1) << 32) * ((uint64_t(1) << shift) - d)) / d + 1);
  }
  HT_HD uint32_t div(uint32_t n) const {
#if defined(__CUDA_ARCH__)
    uint32_t t = __umulhi(n, magic);
#else
    uint32_t t = uint32_t((uint64_t(n) * magic) >> 32);
#endif
    return (t + n) >> shift;
  }
};

// Element offsets of operand k for linear index i over a (collapsed) shape, row-major. Below 2^31 elements
// the index splits with 32-bit multiply-high divisions; the offsets themselves are always 64-bit.
template <int N>
struct OffsetCalc {
  int ndim = 0;
  bool narrow = false;  // every index fits 31 bits: use the dividers
  int64_t sizes[kMaxDims] = {};
  IntDivider dividers[kMaxDims] = {};
  int64_t strides[N][kMaxDims] = {};
  HT_HD void get(int64_t i, int64_t* off) const {
    for (int k = 0; k < N; ++k) off[k] = 0;
    if (narrow) {
      uint32_t r = uint32_t(i);
      for (int d = ndim - 1; d >= 0; --d) {
        uint32_t q = dividers[d].div(r);
        int64_t idx = int64_t(r - q * dividers[d].divisor);
        r = q;
        for (int k = 0; k < N; ++k) off[k] += idx * strides[k][d];
      }
      return;
    }
    for (int d = ndim - 1; d >= 0; --d) {
      int64_t idx = i % sizes[d];
      i /= sizes[d];
      for (int k = 0; k < N; ++k) off[k] += idx * strides[k][d];
    }
  }
};

// The iteration space of a map over views[0] (the output) and its inputs: the output's dims in memory order
// (largest stride first), size-1 dims dropped, and neighbouring dims merged wherever every operand steps
// through them as through one. A dense output of any dim order whose inputs share its strides (channels_last
// tensors, say) becomes one contiguous dim; a transposed operand keeps the dims it needs.
template <int N>
OffsetCalc<N> collapse_dims(const RawView* const* views) {
  const RawView& out = *views[0];
  int order[kMaxDims];
  int nd = 0;
  for (int d = 0; d < out.ndim; ++d)
    if (out.sizes[d] != 1) order[nd++] = d;
  for (int a = 1; a < nd; ++a)  // stable: equal strides keep their row-major order
    for (int b = a; b > 0 && out.strides[order[b - 1]] < out.strides[order[b]]; --b) std::swap(order[b - 1], order[b]);
  OffsetCalc<N> oc;
  for (int j = 0; j < nd; ++j) {
    int d = order[j];
    bool merge = oc.ndim > 0;
    for (int k = 0; k < N && merge; ++k)
      merge = oc.strides[k][oc.ndim - 1] == views[k]->strides[d] * views[k]->sizes[d];
    if (merge) {
      oc.sizes[oc.ndim - 1] *= out.sizes[d];
      for (int k = 0; k < N; ++k) oc.strides[k][oc.ndim - 1] = views[k]->strides[d];
    } else {
      oc.sizes[oc.ndim] = out.sizes[d];
      for (int k = 0; k < N; ++k) oc.strides[k][oc.ndim] = views[k]->strides[d];
      ++oc.ndim;
    }
  }
  oc.narrow = out.numel() <= INT32_MAX;
  for (int d = 0; d < oc.ndim && oc.narrow; ++d) oc.dividers[d] = IntDivider(uint32_t(oc.sizes[d]));
  return oc;
}

// True when the collapsed space is one run of consecutive elements in every operand.
template <int N>
bool is_flat(const OffsetCalc<N>& oc) {
  if (oc.ndim == 0) return true;
  for (int k = 0; k < N; ++k)
    if (oc.ndim != 1 || oc.strides[k][0] != 1) return false;
  return true;
}

template <class T, int V>
struct alignas(sizeof(T) * V) Vec {
  T v[V];
};

template <bool Contig, class Out, class Fn, class... Ins>
struct MapBody {
  static constexpr int N = sizeof...(Ins);
  Out* out;
  const void* in[N > 0 ? N : 1];
  Fn fn;
  OffsetCalc<N + 1> oc;
  HT_HD void operator()(int64_t i) const { call(i, std::index_sequence_for<Ins...>{}); }
  template <size_t... I>
  HT_HD void call(int64_t i, std::index_sequence<I...>) const {
    if constexpr (Contig) {
      out[i] = fn(static_cast<const Ins*>(in[I])[i]...);
    } else {
      int64_t o[N + 1];
      oc.get(i, o);
      out[o[0]] = fn(static_cast<const Ins*>(in[I])[o[I + 1]]...);
    }
  }
};

// V consecutive elements per call with one aligned vector load per operand (16 bytes on CUDA).
template <int V, class Out, class Fn, class In, int N>
struct MapVecBody {
  Out* out;
  const void* in[N > 0 ? N : 1];
  Fn fn;
  HT_HD void operator()(int64_t j) const { call(j, std::make_index_sequence<N>{}); }
  template <size_t... I>
  HT_HD void call(int64_t j, std::index_sequence<I...>) const {
    Vec<In, V> a[N > 0 ? N : 1];
    for (int k = 0; k < N; ++k) a[k] = static_cast<const Vec<In, V>*>(in[k])[j];
    Vec<Out, V> r;
HT_UNROLL
    for (int e = 0; e < V; ++e) r.v[e] = fn(a[I].v[e]...);
    reinterpret_cast<Vec<Out, V>*>(out)[j] = r;
  }
};

// ---- the per-element functions the map bodies call (storage types in, storage type out)
template <class T, class Op> struct UnaryFn {
  Op op;
  HT_HD T operator()(T x) const { return T(op(opmath_t<T>(x))); }
};
template <class T, class R, class Op> struct BinaryFn {
  Op op;
  HT_HD R operator()(T x, T y) const { return R(op(opmath_t<T>(x), opmath_t<T>(y))); }
};
template <class D, class S> struct CastFn {
  HT_HD D operator()(S x) const { return convert<D>(x); }
};
template <class T> struct WhereFn {
  HT_HD T operator()(bool c, T x, T y) const { return c ? x : y; }
};
template <class T> struct ConstFn {
  T v;
  HT_HD T operator()() const { return v; }
};

template <class... Ts> struct AllSame : std::true_type {};
template <class A, class... Rest> struct AllSame<A, Rest...> : std::bool_constant<(std::is_same_v<A, Rest> && ...)> {};


template <class E>
struct Elementwise {
  // Runs out = fn(ins...) over out's shape; inputs are already broadcast to it.
  template <class Out, class... Ins, class Fn>
  static void map(Fn fn, const RawView& out, std::initializer_list<const RawView*> ins) {
    constexpr int N = sizeof...(Ins);
    int64_t n = out.numel();
    if (n == 0) return;
    const void* ptrs[N > 0 ? N : 1] = {};
    const RawView* views[N + 1] = {&out};
    if constexpr (N > 0) {
      int k = 0;
      for (const RawView* v : ins) {
        ptrs[k] = v->data;
        views[++k] = v;
      }
    }
    OffsetCalc<N + 1> oc = collapse_dims<N + 1>(views);
    if (is_flat(oc)) {
      if constexpr (E::kVecBytes > 0 && AllSame<Ins...>::value) {
        using In = std::tuple_element_t<0, std::tuple<Ins..., Out>>;
        constexpr size_t big = sizeof(In) > sizeof(Out) ? sizeof(In) : sizeof(Out);
        constexpr int V = E::kVecBytes > 0 ? int(E::kVecBytes / big) : 1;
        if constexpr (V > 1) {
          bool aligned = reinterpret_cast<uintptr_t>(out.data) % (sizeof(Out) * V) == 0;
          for (int i = 0; i < N; ++i) aligned = aligned && reinterpret_cast<uintptr_t>(ptrs[i]) % (sizeof(In) * V) == 0;
          if (aligned && n >= V) {
            MapVecBody<V, Out, Fn, In, N> vb{static_cast<Out*>(out.data), {}, fn};
            for (int i = 0; i < N; ++i) vb.in[i] = ptrs[i];
            int64_t nv = n / V;
            E::run(nv, vb);
            int64_t done = nv * V;
            if (done == n) return;
            MapBody<true, Out, Fn, Ins...> tail{static_cast<Out*>(out.data) + done, {}, fn, {}};
            for (int i = 0; i < N; ++i) tail.in[i] = static_cast<const char*>(ptrs[i]) + done * sizeof(In);
            E::run(n - done, tail);
            return;
          }
        }
      }
      MapBody<true, Out, Fn, Ins...> b{static_cast<Out*>(out.data), {}, fn, {}};
      for (int i = 0; i < N; ++i) b.in[i] = ptrs[i];
      E::run(n, b);
      return;
    }
    MapBody<false, Out, Fn, Ins...> b{static_cast<Out*>(out.data), {}, fn, oc};
    for (int i = 0; i < N; ++i) b.in[i] = ptrs[i];
    E::run(n, b);
  }

  template <class T, class Op>
  static void unary_as(Op op, const RawView& x, const RawView& y) {
    map<T, T>(UnaryFn<T, Op>{op}, y, {&x});
  }

  static void unary(UnaryOp op, const RawView& x, const RawView& y, double a, double b) {
    visit_dtype(y.dtype, [&](auto tag) {
      using T = typename decltype(tag)::type;
      if constexpr (std::is_same_v<T, bool>) {
        fail("[", op_name(op), "] is not defined for bool tensors");
      } else {
        switch (op) {
          case UnaryOp::Neg: return unary_as<T>(Neg{}, x, y);
          case UnaryOp::Abs: return unary_as<T>(Abs{}, x, y);
          case UnaryOp::Relu: return unary_as<T>(Relu{}, x, y);
          case UnaryOp::Square: return unary_as<T>(Square{}, x, y);
          case UnaryOp::Clamp: return unary_as<T>(Clamp{a, b}, x, y);
          case UnaryOp::AddScalar: return unary_as<T>(AddScalar{a}, x, y);
          case UnaryOp::MulScalar: return unary_as<T>(MulScalar{a}, x, y);
          case UnaryOp::RSubScalar: return unary_as<T>(RSubScalar{a}, x, y);
          default: break;
        }
        if constexpr (is_float_v<T>) {
          switch (op) {
            case UnaryOp::Exp: return unary_as<T>(Exp{}, x, y);
            case UnaryOp::Log: return unary_as<T>(Log{}, x, y);
            case UnaryOp::Sqrt: return unary_as<T>(Sqrt{}, x, y);
            case UnaryOp::Rsqrt: return unary_as<T>(Rsqrt{}, x, y);
            case UnaryOp::Sigmoid: return unary_as<T>(Sigmoid{}, x, y);
            case UnaryOp::Tanh: return unary_as<T>(Tanh{}, x, y);
            case UnaryOp::Erf: return unary_as<T>(Erf{}, x, y);
            case UnaryOp::PowScalar: return unary_as<T>(PowScalar{a}, x, y);
            case UnaryOp::RDivScalar: return unary_as<T>(RDivScalar{a}, x, y);
            case UnaryOp::DivScalar: return unary_as<T>(DivScalar{a}, x, y);
            default: break;
          }
        }
        fail("[", op_name(op), "] is not defined for ", dtype_name(y.dtype), " tensors");
      }
    });
  }

  template <class T, class R, class Op>
  static void binary_as(Op op, const RawView& x1, const RawView& x2, const RawView& out) {
    map<R, T, T>(BinaryFn<T, R, Op>{op}, out, {&x1, &x2});
  }

  static void binary(BinaryOp op, const RawView& x1, const RawView& x2, const RawView& out, double a, double b) {
    visit_dtype(x1.dtype, [&](auto tag) {
      using T = typename decltype(tag)::type;
      switch (op) {
        case BinaryOp::Eq: return binary_as<T, bool>(Eq{}, x1, x2, out);
        case BinaryOp::Ne: return binary_as<T, bool>(Ne{}, x1, x2, out);
        case BinaryOp::Lt: return binary_as<T, bool>(Lt{}, x1, x2, out);
        case BinaryOp::Le: return binary_as<T, bool>(Le{}, x1, x2, out);
        case BinaryOp::Gt: return binary_as<T, bool>(Gt{}, x1, x2, out);
        case BinaryOp::Ge: return binary_as<T, bool>(Ge{}, x1, x2, out);
        default: break;
      }
      if constexpr (!std::is_same_v<T, bool>) {
        switch (op) {
          case BinaryOp::Add: return binary_as<T, T>(Add{a}, x1, x2, out);
          case BinaryOp::Sub: return binary_as<T, T>(Sub{a}, x1, x2, out);
          case BinaryOp::Mul: return binary_as<T, T>(Mul{}, x1, x2, out);
          case BinaryOp::Maximum: return binary_as<T, T>(Maximum{}, x1, x2, out);
          case BinaryOp::Minimum: return binary_as<T, T>(Minimum{}, x1, x2, out);
          default: break;
        }
      }
      if constexpr (is_float_v<T>) {
        switch (op) {
          case BinaryOp::Div: return binary_as<T, T>(Div{}, x1, x2, out);
          case BinaryOp::ReluBwd: return binary_as<T, T>(ReluBwd{}, x1, x2, out);
          case BinaryOp::SigmoidBwd: return binary_as<T, T>(SigmoidBwd{}, x1, x2, out);
          case BinaryOp::TanhBwd: return binary_as<T, T>(TanhBwd{}, x1, x2, out);
          case BinaryOp::ClampBwd: return binary_as<T, T>(ClampBwd{a, b}, x1, x2, out);
          case BinaryOp::PowScalarBwd: return binary_as<T, T>(PowScalarBwd{a}, x1, x2, out);
          default: break;
        }
      }
      fail("[", op_name(op), "] is not defined for ", dtype_name(x1.dtype), " tensors");
    });
  }

  static void where(const RawView& cond, const RawView& x1, const RawView& x2, const RawView& out) {
    visit_dtype(out.dtype, [&](auto tag) {
      using T = typename decltype(tag)::type;
      map<T, bool, T, T>(WhereFn<T>{}, out, {&cond, &x1, &x2});
    });
  }

  static void copy(const RawView& src, const RawView& dst) {
    visit_dtype(dst.dtype, [&](auto dtag) {
      using D = typename decltype(dtag)::type;
      visit_dtype(src.dtype, [&](auto stag) {
        using S = typename decltype(stag)::type;
        map<D, S>(CastFn<D, S>{}, dst, {&src});
      });
    });
  }

  static void fill(const RawView& dst, double value) {
    visit_dtype(dst.dtype, [&](auto tag) {
      using T = typename decltype(tag)::type;
      map<T>(ConstFn<T>{convert<T>(value)}, dst, {});
    });
  }
};

// ---- double arithmetic that is the same on every device: each operation rounds on its own (no compiler fuses
// a product into a later add), and log / cos are our own polynomials in those operations, so that randn draws
// the same bits on the CPU (glibc) and on CUDA (libdevice), whose log and cos differ in the last place.
namespace exact {
#if defined(__CUDA_ARCH__)
HT_HD inline double mul(double a, double b) { return __dmul_rn(a, b); }
HT_HD inline double add(double a, double b) { return __dadd_rn(a, b); }
HT_HD inline double div(double a, double b) { return __ddiv_rn(a, b); }
HT_HD inline double sqrt(double a) { return __dsqrt_rn(a); }
#else
// The empty asm makes the rounded product a value the compiler cannot look through, so no contraction.
HT_HD inline double opaque(double v) {
#if defined(__GNUC__) && defined(__x86_64__)
  __asm__("" : "+x"(v));
#elif defined(__GNUC__) && defined(__aarch64__)
  __asm__("" : "+w"(v));
#else
  volatile double t = v;
  v = t;
#endif
  return v;
}
HT_HD inline double mul(double a, double b) { return opaque(a * b); }
HT_HD inline double add(double a, double b) { return opaque(a + b); }
HT_HD inline double div(double a, double b) { return opaque(a / b); }
HT_HD inline double sqrt(double a) { return ::sqrt(a); }
#endif
HT_HD inline double fmadd(double a, double b, double c) { return add(mul(a, b), c); }

// log(x) for finite x > 0: x = m 2^e with m in [sqrt(1/2), sqrt(2)), log(m) = 2 atanh(s), s = (m-1)/(m+1),
// |s| < 0.172, whose odd series to s^23 is below 1e-18. Within 2 ulp of a correctly rounded log.
HT_HD inline double log(double x) {
  int e = 0;
  double m = ::frexp(x, &e);  // exact
  if (m < 0.70710678118654752440) {
    m = m * 2;  // exact
    --e;
  }
  double s = div(m - 1.0, m + 1.0), z = mul(s, s);
  double p = 1.0 / 23;
  p = fmadd(p, z, 1.0 / 21);
  p = fmadd(p, z, 1.0 / 19);
  p = fmadd(p, z, 1.0 / 17);
  p = fmadd(p, z, 1.0 / 15);
  p = fmadd(p, z, 1.0 / 13);
  p = fmadd(p, z, 1.0 / 11);
  p = fmadd(p, z, 1.0 / 9);
  p = fmadd(p, z, 1.0 / 7);
  p = fmadd(p, z, 1.0 / 5);
  p = fmadd(p, z, 1.0 / 3);
  double log_m = mul(2.0, fmadd(mul(s, z), p, s));
  constexpr double kLn2Hi = 6.93147180369123816490e-01, kLn2Lo = 1.90821492927058770002e-10;  // hi has 21 zero bits
  return add(mul(double(e), kLn2Hi), add(mul(double(e), kLn2Lo), log_m));
}

// cos(2 pi u) for u in [0, 1): u = k/4 + r exactly, |r| <= 1/8, then the Taylor series of cos or sin of 2 pi r
// (|2 pi r| <= pi/4; to the 18th power, below 1e-18).
HT_HD inline double cos_2pi(double u) {
  int k = int(::floor(u * 4 + 0.5));
  double t = mul(6.283185307179586476925, u - 0.25 * k), z = mul(t, t);
  double c = -1.0 / 6402373705728000;  // -1/18!
  c = fmadd(c, z, 1.0 / 20922789888000);
  c = fmadd(c, z, -1.0 / 87178291200);
  c = fmadd(c, z, 1.0 / 479001600);
  c = fmadd(c, z, -1.0 / 3628800);
  c = fmadd(c, z, 1.0 / 40320);
  c = fmadd(c, z, -1.0 / 720);
  c = fmadd(c, z, 1.0 / 24);
  c = fmadd(c, z, -0.5);
  c = fmadd(c, z, 1.0);
  double s = 1.0 / 355687428096000;  // 1/17!
  s = fmadd(s, z, -1.0 / 1307674368000);
  s = fmadd(s, z, 1.0 / 6227020800);
  s = fmadd(s, z, -1.0 / 39916800);
  s = fmadd(s, z, 1.0 / 362880);
  s = fmadd(s, z, -1.0 / 5040);
  s = fmadd(s, z, 1.0 / 120);
  s = fmadd(s, z, -1.0 / 6);
  s = fmadd(mul(s, z), t, t);
  switch (k & 3) {
    case 0: return c;
    case 1: return -s;
    case 2: return -c;
    default: return s;
  }
}
}  // namespace exact

// Random fills: element i gets a draw from counter (offset + i), identical on every backend.
template <class T> struct UniformBody {
  T* out; uint64_t seed, offset; double low, high;
  HT_HD void operator()(int64_t i) const {
    out[i] = T(exact::fmadd(high - low, uniform01(seed, offset + uint64_t(i)), low));
  }
};
template <class T> struct NormalBody {
  T* out; uint64_t seed, offset; double mean, std;
  HT_HD void operator()(int64_t i) const {  // Box-Muller on two independent streams
    double u1 = uniform01(seed, offset + uint64_t(i), 1), u2 = uniform01(seed, offset + uint64_t(i), 2);
    double r = exact::sqrt(exact::mul(-2.0, exact::log(1.0 - u1)));
    out[i] = T(exact::fmadd(exact::mul(std, r), exact::cos_2pi(u2), mean));
  }
};

}  // namespace ht::kernels
