// The elementwise machinery shared by the CPU and CUDA backends: n-ary "map" bodies (contiguous, vectorised,
// strided) and the dtype/op switches that pick them. A backend includes this file and instantiates
// Elementwise<Executor>, where Executor provides `run(n, body)` and kVecBytes (0: no vector path).
#pragma once
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

// Element offsets of operand k for linear index i over the output's shape (row-major).
template <int N>
struct OffsetCalc {
  int ndim = 0;
  int64_t sizes[kMaxDims] = {};
  int64_t strides[N][kMaxDims] = {};
  HT_HD void get(int64_t i, int64_t* off) const {
    for (int k = 0; k < N; ++k) off[k] = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      int64_t idx = i % sizes[d];
      i /= sizes[d];
      for (int k = 0; k < N; ++k) off[k] += idx * strides[k][d];
    }
  }
};

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
    bool contig = out.is_contiguous();
    int k = 0;
    for (const RawView* v : ins) {
      ptrs[k++] = v->data;
      contig = contig && v->is_contiguous();
    }
    if (contig) {
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
    MapBody<false, Out, Fn, Ins...> b{static_cast<Out*>(out.data), {}, fn, {}};
    for (int i = 0; i < N; ++i) b.in[i] = ptrs[i];
    b.oc.ndim = out.ndim;
    for (int d = 0; d < out.ndim; ++d) {
      b.oc.sizes[d] = out.sizes[d];
      b.oc.strides[0][d] = out.strides[d];
      if constexpr (N > 0) {
        int j = 1;
        for (const RawView* v : ins) b.oc.strides[j++][d] = v->strides[d];
      }
    }
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
        fail("[unary] op ", int(op), " is not defined for bool tensors");
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
            case UnaryOp::Reciprocal: return unary_as<T>(Reciprocal{}, x, y);
            case UnaryOp::PowScalar: return unary_as<T>(PowScalar{a}, x, y);
            case UnaryOp::RDivScalar: return unary_as<T>(RDivScalar{a}, x, y);
            case UnaryOp::DivScalar: return unary_as<T>(DivScalar{a}, x, y);
            default: break;
          }
        }
        fail("[unary] op ", int(op), " is not defined for ", dtype_name(y.dtype));
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
          case BinaryOp::Pow: return binary_as<T, T>(Pow{}, x1, x2, out);
          case BinaryOp::ReluBwd: return binary_as<T, T>(ReluBwd{}, x1, x2, out);
          case BinaryOp::SigmoidBwd: return binary_as<T, T>(SigmoidBwd{}, x1, x2, out);
          case BinaryOp::TanhBwd: return binary_as<T, T>(TanhBwd{}, x1, x2, out);
          case BinaryOp::ClampBwd: return binary_as<T, T>(ClampBwd{a, b}, x1, x2, out);
          case BinaryOp::PowScalarBwd: return binary_as<T, T>(PowScalarBwd{a}, x1, x2, out);
          default: break;
        }
      }
      fail("[binary] op ", int(op), " is not defined for ", dtype_name(x1.dtype));
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

// Random fills: element i gets a draw from counter (offset + i), identical on every backend.
template <class T> struct UniformBody {
  T* out; uint64_t seed, offset; double low, high;
  HT_HD void operator()(int64_t i) const { out[i] = T(low + (high - low) * uniform01(seed, offset + uint64_t(i))); }
};
template <class T> struct NormalBody {
  T* out; uint64_t seed, offset; double mean, std;
  HT_HD void operator()(int64_t i) const {  // Box-Muller on two independent streams
    double u1 = uniform01(seed, offset + uint64_t(i), 1), u2 = uniform01(seed, offset + uint64_t(i), 2);
    double r = ::sqrt(-2.0 * ::log(1.0 - u1));
    out[i] = T(mean + std * r * ::cos(6.283185307179586 * u2));
  }
};

}  // namespace ht::kernels
