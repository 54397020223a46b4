// CPU backend: the shared elementwise bodies run through the CPU executor, random fills, and the allocator.
// Contiguous maps over float16 / bfloat16 run block by block on float images (widen, compute, narrow).
#include <cstdlib>
#include <tuple>

#include "kernels/backends.h"
#include "kernels/cpu/convert.h"
#include "kernels/cpu/executor.h"
#include "kernels/elementwise.h"

namespace ht::kernels::cpu {

namespace {

// The per-element function of a map, restated on float images of its 16-bit operands: for every x,
// narrow(FloatImage(widen(x))) == Fn(x), since Fn itself widens to float, computes and rounds once.
// Only the functions that compute through opmath qualify (a cast to the same type, where and fill copy bits).
template <class Fn> struct FloatImage {
  static constexpr bool ok = false;
};
template <class T, class Op> struct FloatImage<UnaryFn<T, Op>> {
  static constexpr bool ok = is_16bit_float_v<T>;
  using type = UnaryFn<float, Op>;
  static type of(const UnaryFn<T, Op>& f) { return {f.op}; }
};
template <class T, class R, class Op> struct FloatImage<BinaryFn<T, R, Op>> {
  static constexpr bool ok = is_16bit_float_v<T>;
  using type = BinaryFn<float, float_image_t<R>, Op>;
  static type of(const BinaryFn<T, R, Op>& f) { return {f.op}; }
};
template <class D, class S> struct FloatImage<CastFn<D, S>> {
  static constexpr bool ok = !std::is_same_v<D, S> && (is_16bit_float_v<D> || is_16bit_float_v<S>);
  using type = CastFn<float_image_t<D>, float_image_t<S>>;
  static type of(const CastFn<D, S>&) { return {}; }
};

template <class Body> struct ContiguousMap {
  static constexpr bool ok = false;
};
template <class Out, class Fn, class... Ins> struct ContiguousMap<MapBody<true, Out, Fn, Ins...>> {
  static constexpr bool ok = FloatImage<Fn>::ok;
};

constexpr int64_t kBlock = 512;  // elements per block: every operand's float image stays in L1

// Elements [k0, k0 + len) of a contiguous map: 16-bit inputs widened into buffers, the float function run
// over them, a 16-bit output narrowed from its buffer.
template <class Out, class Fn, class... Ins, size_t... I>
void map_block(const MapBody<true, Out, Fn, Ins...>& b, const typename FloatImage<Fn>::type& fn, int64_t k0,
               int64_t len, std::index_sequence<I...>) {
  [[maybe_unused]] float bufs[sizeof...(Ins) > 0 ? sizeof...(Ins) : 1][kBlock];
  std::tuple<const float_image_t<Ins>*...> in{float_image(static_cast<const Ins*>(b.in[I]) + k0, bufs[I], len)...};
  [[maybe_unused]] float out_buf[kBlock];
  float_image_t<Out>* out;
  if constexpr (is_16bit_float_v<Out>) out = out_buf;
  else out = b.out + k0;
  for (int64_t j = 0; j < len; ++j) out[j] = fn(std::get<I>(in)[j]...);
  if constexpr (is_16bit_float_v<Out>) from_float(out_buf, b.out + k0, len);
}

// The CPU executor for elementwise maps: contiguous 16-bit maps by float blocks, everything else as is.
struct EwExecutor : Executor {
  template <class Body>
  static void run(int64_t n, const Body& body) {
    if constexpr (ContiguousMap<Body>::ok) {
      run_blocks(n, body);
    } else {
      Executor::run(n, body);
    }
  }
  template <class Out, class Fn, class... Ins>
  static void run_blocks(int64_t n, const MapBody<true, Out, Fn, Ins...>& body) {
    const auto fn = FloatImage<Fn>::of(body.fn);
    const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
    for (int64_t k = 0; k < blocks; ++k)
      map_block(body, fn, k * kBlock, std::min(kBlock, n - k * kBlock), std::index_sequence_for<Ins...>{});
  }
};

}  // namespace

using Ew = Elementwise<EwExecutor>;

void unary(UnaryOp op, const RawView& x, const RawView& y, double a, double b) { Ew::unary(op, x, y, a, b); }
void binary(BinaryOp op, const RawView& x1, const RawView& x2, const RawView& out, double a, double b) {
  Ew::binary(op, x1, x2, out, a, b);
}
void where(const RawView& cond, const RawView& x1, const RawView& x2, const RawView& out) { Ew::where(cond, x1, x2, out); }
void copy(const RawView& src, const RawView& dst) { Ew::copy(src, dst); }
void fill(const RawView& dst, double value) { Ew::fill(dst, value); }

void fill_uniform(const RawView& dst, uint64_t seed, uint64_t offset, double low, double high) {
  visit_floating(dst.dtype, "rand", [&](auto tag) {
    using T = typename decltype(tag)::type;
    Executor::run(dst.numel(), UniformBody<T>{static_cast<T*>(dst.data), seed, offset, low, high});
  });
}
void fill_normal(const RawView& dst, uint64_t seed, uint64_t offset, double mean, double std) {
  visit_floating(dst.dtype, "randn", [&](auto tag) {
    using T = typename decltype(tag)::type;
    Executor::run(dst.numel(), NormalBody<T>{static_cast<T*>(dst.data), seed, offset, mean, std});
  });
}

}  // namespace ht::kernels::cpu
