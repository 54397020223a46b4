// Every core op: forward against a float64 host reference in each floating dtype on every device, with a
// non-contiguous input; float64 finite-difference gradients; broadcasting; and error messages.
#include <algorithm>
#include <cmath>
#include <functional>

#include "core/autocast.h"
#include "nn/functional.h"
#include "tests/helpers.h"

using namespace ht;
using testing::check_close;
using testing::check_gradients;
using testing::tol_for;

namespace {
const DType kFloats[] = {kFloat32, kFloat64, kFloat16, kBFloat16};

// A [3, 5] float64 tensor with values in [lo, hi), and the same values as a non-contiguous [5, 3]^T view.
Tensor sample(double lo, double hi, uint64_t seed, Shape shape = {3, 5}) {
  Generator g(seed);
  return add(mul(rand(shape, g, {.dtype = kFloat64}), hi - lo), lo);
}
Tensor transposed_copy(const Tensor& x) { return x.t().contiguous().t(); }  // same values, strides (1, 3)

Tensor map_ref(const Tensor& x, const std::function<double(double)>& f) {
  std::vector<double> v = x.to_vector<double>();
  for (double& e : v) e = f(e);
  return from_vector(v, x.sizes());
}

struct UnaryCase {
  const char* name;
  std::function<Tensor(const Tensor&)> op;
  std::function<double(double)> ref;
  double lo, hi;
};

std::vector<UnaryCase> unary_cases() {
  return {
      {"neg", [](const Tensor& x) { return neg(x); }, [](double v) { return -v; }, -2, 2},
      {"exp", [](const Tensor& x) { return exp(x); }, [](double v) { return std::exp(v); }, -2, 2},
      {"log", [](const Tensor& x) { return log(x); }, [](double v) { return std::log(v); }, 0.1, 3},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, [](double v) { return std::sqrt(v); }, 0.1, 3},
      {"rsqrt", [](const Tensor& x) { return rsqrt(x); }, [](double v) { return 1 / std::sqrt(v); }, 0.2, 3},
      {"pow", [](const Tensor& x) { return pow(x, 2.5); }, [](double v) { return std::pow(v, 2.5); }, 0.1, 2},
      {"abs", [](const Tensor& x) { return abs(x); }, [](double v) { return std::fabs(v); }, -2, 2},
      {"relu", [](const Tensor& x) { return relu(x); }, [](double v) { return v > 0 ? v : 0; }, -2, 2},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, [](double v) { return 1 / (1 + std::exp(-v)); }, -4, 4},
      {"tanh", [](const Tensor& x) { return tanh(x); }, [](double v) { return std::tanh(v); }, -2, 2},
      {"square", [](const Tensor& x) { return square(x); }, [](double v) { return v * v; }, -2, 2},
      {"clamp", [](const Tensor& x) { return clamp(x, -0.5, 0.75); },
       [](double v) { return std::min(std::max(v, -0.5), 0.75); }, -2, 2},
      {"add_scalar", [](const Tensor& x) { return x + 1.5; }, [](double v) { return v + 1.5; }, -2, 2},
      {"mul_scalar", [](const Tensor& x) { return x * -3.0; }, [](double v) { return v * -3; }, -2, 2},
      {"rsub_scalar", [](const Tensor& x) { return 2.0 - x; }, [](double v) { return 2 - v; }, -2, 2},
      {"div_scalar", [](const Tensor& x) { return x / 3.0; }, [](double v) { return v / 3; }, -2, 2},
      {"rdiv_scalar", [](const Tensor& x) { return 2.0 / x; }, [](double v) { return 2 / v; }, 0.5, 2},
      {"softmax", [](const Tensor& x) { return softmax(x, 1); }, nullptr, -3, 3},
      {"log_softmax", [](const Tensor& x) { return log_softmax(x, 0); }, nullptr, -3, 3},
  };
}

// Reference softmax in float64 over dim of a 2-d tensor.
Tensor softmax_ref(const Tensor& x, int64_t dim, bool log) {
  std::vector<double> v = x.to_vector<double>();
  int64_t r = x.size(0), c = x.size(1);
  std::vector<double> out(v.size());
  int64_t outer = dim == 1 ? r : c, inner = dim == 1 ? c : r;
  for (int64_t o = 0; o < outer; ++o) {
    auto at = [&](int64_t i) -> size_t { return size_t(dim == 1 ? o * c + i : i * c + o); };
    double mx = -INFINITY, s = 0;
    for (int64_t i = 0; i < inner; ++i) mx = std::max(mx, v[at(i)]);
    for (int64_t i = 0; i < inner; ++i) s += std::exp(v[at(i)] - mx);
    for (int64_t i = 0; i < inner; ++i) out[at(i)] = log ? v[at(i)] - mx - std::log(s) : std::exp(v[at(i)] - mx) / s;
  }
  return from_vector(out, x.sizes());
}
}  // namespace

TEST_CASE("unary ops match a float64 reference in every floating dtype, contiguous or not", "[cuda]") {
  for (const auto& c : unary_cases()) {
    Tensor x64 = sample(c.lo, c.hi, 11);
    for (Device dev : testing::test_devices()) {
      for (DType dt : kFloats) {
        Tensor x = x64.to(dev, dt);
        // the reference sees the same rounded inputs the op sees
        Tensor xr = x.to(kCPU, kFloat64);
        Tensor want;
        if (std::string(c.name) == "softmax") want = softmax_ref(xr, 1, false);
        else if (std::string(c.name) == "log_softmax") want = softmax_ref(xr, 0, true);
        else want = map_ref(xr, c.ref);
        double tol = tol_for(dt) * (dt == kFloat32 ? 4 : 2);
        std::string what = std::string(c.name) + " " + dtype_name(dt) + " on " + dev.str();
        Tensor got = c.op(x);
        REQUIRE(got.dtype() == dt);
        check_close(got, want, tol, tol, what);
        check_close(c.op(transposed_copy(x)), want, tol, tol, what + " (non-contiguous)");
      }
    }
  }
}

TEST_CASE("unary op gradients match finite differences") {
  for (const auto& c : unary_cases()) {
    INFO(c.name);
    Tensor x = sample(c.lo, c.hi, 5);
    if (std::string(c.name) == "abs" || std::string(c.name) == "relu" || std::string(c.name) == "clamp") {
      // keep away from the kinks, where the derivative is not defined
      x = where(lt(abs(x), full({}, 0.05, {.dtype = kFloat64})), add(x, 0.2), x);
      x = where(lt(abs(add(x, 0.5)), full({}, 0.05, {.dtype = kFloat64})), add(x, 0.2), x);
      x = where(lt(abs(add(x, -0.75)), full({}, 0.05, {.dtype = kFloat64})), add(x, 0.2), x);
    }
    check_gradients([&](const std::vector<Tensor>& in) { return c.op(in[0].t().contiguous().t()); }, {x});
  }
}

TEST_CASE("binary ops broadcast, promote, and match the reference", "[cuda]") {
  struct BinCase {
    const char* name;
    std::function<Tensor(const Tensor&, const Tensor&)> op;
    std::function<double(double, double)> ref;
  };
  std::vector<BinCase> cases = {
      {"add", [](const Tensor& a, const Tensor& b) { return a + b; }, [](double a, double b) { return a + b; }},
      {"add_alpha", [](const Tensor& a, const Tensor& b) { return add(a, b, 0.5); },
       [](double a, double b) { return a + 0.5 * b; }},
      {"sub", [](const Tensor& a, const Tensor& b) { return a - b; }, [](double a, double b) { return a - b; }},
      {"mul", [](const Tensor& a, const Tensor& b) { return a * b; }, [](double a, double b) { return a * b; }},
      {"div", [](const Tensor& a, const Tensor& b) { return a / b; }, [](double a, double b) { return a / b; }},
      {"maximum", [](const Tensor& a, const Tensor& b) { return maximum(a, b); },
       [](double a, double b) { return std::max(a, b); }},
      {"minimum", [](const Tensor& a, const Tensor& b) { return minimum(a, b); },
       [](double a, double b) { return std::min(a, b); }},
  };
  Tensor a64 = sample(0.5, 2, 21, {3, 1, 4}), b64 = sample(0.5, 2, 22, {2, 4});
  for (const auto& c : cases) {
    for (Device dev : testing::test_devices()) {
      for (DType dt : kFloats) {
        Tensor a = a64.to(dev, dt), b = b64.to(dev, dt);
        std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>(), want;
        for (int i = 0; i < 3; ++i)
          for (int j = 0; j < 2; ++j)
            for (int k = 0; k < 4; ++k) want.push_back(c.ref(av[size_t(i * 4 + k)], bv[size_t(j * 4 + k)]));
        Tensor got = c.op(a, b);
        REQUIRE(got.sizes() == Shape{3, 2, 4});
        double tol = tol_for(dt) * 2;
        check_close(got, from_vector(want, {3, 2, 4}), tol, tol,
                    std::string(c.name) + " " + dtype_name(dt) + " on " + dev.str());
      }
    }
    INFO(c.name);
    check_gradients([&](const std::vector<Tensor>& in) { return c.op(in[0], in[1].t().contiguous().t()); },
                    {a64, transposed_copy(sample(0.5, 2, 23, {4, 2})).t().contiguous()});
  }
  // promotion: int + float -> float; half + float -> float; int / int -> float
  REQUIRE((ones({2}, {.dtype = kInt64}) + ones({2})).dtype() == kFloat32);
  REQUIRE((ones({2}, {.dtype = kFloat16}) + ones({2})).dtype() == kFloat32);
  REQUIRE((ones({2}, {.dtype = kInt32}) / ones({2}, {.dtype = kInt32})).dtype() == kFloat32);
  REQUIRE((ones({2}, {.dtype = kInt32}) * 2).dtype() == kInt32);     // an integer scalar keeps the dtype
  REQUIRE((ones({2}, {.dtype = kInt32}) * 2.0).dtype() == kFloat32);  // a floating one, whatever its value
  REQUIRE((ones({2}, {.dtype = kInt32}) * 0.5).dtype() == kFloat32);
  REQUIRE((full({2}, 7.0, {.dtype = kInt64}) + full({2}, 5.0, {.dtype = kInt64})).to_vector<int64_t>() ==
          std::vector<int64_t>{12, 12});
  REQUIRE_THROWS_WITH(ones({2, 3}) + ones({4}), Catch::Contains("[add] shapes [2, 3] and [4] cannot be broadcast"));
}

TEST_CASE("comparisons and where", "[cuda]") {
  for (Device dev : testing::test_devices()) {
    Tensor a = tensor<float>({1, 2, 3, 4}).to(dev), b = tensor<float>({4, 2, 2, 5}).to(dev);
    REQUIRE(lt(a, b).to_vector<bool>() == std::vector<bool>{true, false, false, true});
    REQUIRE(le(a, b).to_vector<bool>() == std::vector<bool>{true, true, false, true});
    REQUIRE(gt(a, b).to_vector<bool>() == std::vector<bool>{false, false, true, false});
    REQUIRE(ge(a, b).to_vector<bool>() == std::vector<bool>{false, true, true, false});
    REQUIRE(eq(a, b).to_vector<bool>() == std::vector<bool>{false, true, false, false});
    REQUIRE(ne(a, b).to_vector<bool>() == std::vector<bool>{true, false, true, true});
    REQUIRE(eq(a, b).dtype() == kBool);
    REQUIRE(where(lt(a, b), a, b).to_vector<float>() == std::vector<float>{1, 2, 2, 4});
  }
  Tensor c = from_vector(std::vector<bool>{true, false, true}, {3});
  check_gradients([&](const std::vector<Tensor>& in) { return where(c, in[0], in[1]); },
                  {sample(0, 1, 1, {3}), sample(0, 1, 2, {2, 3})});
}

TEST_CASE("reductions over dims with keepdim, accumulating wide for 16-bit inputs", "[cuda]") {
  Tensor x64 = sample(-1, 1, 31, {2, 3, 4});
  std::vector<double> v = x64.to_vector<double>();
  auto at = [&](int i, int j, int k) { return v[size_t(i * 12 + j * 4 + k)]; };
  std::vector<double> s_1(8), s_02(3), mx_2(6);
  std::vector<int64_t> amx_2(6);
  double total = 0;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) {
        s_1[size_t(i * 4 + k)] += at(i, j, k);
        s_02[size_t(j)] += at(i, j, k);
        total += at(i, j, k);
        size_t r = size_t(i * 3 + j);
        if (k == 0 || at(i, j, k) > mx_2[r]) {
          mx_2[r] = at(i, j, k);
          amx_2[r] = k;
        }
      }
  for (Device dev : testing::test_devices()) {
    for (DType dt : kFloats) {
      Tensor x = x64.to(dev, dt);
      double tol = tol_for(dt) * 8;
      std::string what = std::string(dtype_name(dt)) + " on " + dev.str();
      if (dt == kFloat64) {
        check_close(sum(x, {1}), from_vector(s_1, {2, 4}), tol, tol, "sum dim 1 " + what);
        check_close(sum(x, {0, 2}, true), from_vector(s_02, {1, 3, 1}), tol, tol, "sum dims 0,2 " + what);
        check_close(sum(x), full({}, total, {.dtype = kFloat64}), tol, tol, "sum " + what);
        auto [vals, idx] = max(x, 2);
        check_close(vals, from_vector(mx_2, {2, 3}), 0, 0, "max " + what);
        REQUIRE(idx.to_vector<int64_t>() == amx_2);
        REQUIRE(argmax(x, -1).to_vector<int64_t>() == amx_2);
      }
      // non-contiguous input and lower precision: compare with float64 of the same rounded values
      Tensor xr = x.to(kCPU, kFloat64);
      check_close(mean(x.transpose(0, 2), {0, 2}), mean(xr.transpose(0, 2), {0, 2}), tol, tol, "mean " + what);
      check_close(std::get<0>(min(x, 1, true)), std::get<0>(min(xr, 1, true)), 0, 0, "min " + what);
      check_close(max(x), max(xr), 0, 0, "max all " + what);
    }
  }
  // a long fp16 sum would lose everything in fp16 accumulation: 4096 * 1.0 is exact only with a wide accumulator
  REQUIRE(sum(ones({4097}, {.dtype = kFloat16})).item<float>() == 4096.f);  // 4097 rounds to 4096 in fp16
  REQUIRE(sum(ones({3}, {.dtype = kInt32})).dtype() == kInt64);
  check_gradients([](const std::vector<Tensor>& in) { return sum(in[0], {1}); }, {sample(-1, 1, 3, {2, 3, 4})});
  check_gradients([](const std::vector<Tensor>& in) { return mean(in[0], {0, 2}, true); }, {sample(-1, 1, 3, {2, 3, 4})});
  check_gradients([](const std::vector<Tensor>& in) { return std::get<0>(max(in[0], 1)); }, {sample(-1, 1, 4, {3, 4})});
  check_gradients([](const std::vector<Tensor>& in) { return max(in[0]); }, {sample(-1, 1, 5, {3, 4})});
  REQUIRE_THROWS_WITH(sum(ones({2, 3}), {3}), Catch::Contains("[sum] dim 3 out of range for a 2-d tensor"));
}

namespace {
// f over the elements each output value reduces (dims last, row-major), in float64 on the host
Tensor reduce_ref(const Tensor& x, const Shape& dims, bool keepdim, const std::function<double(std::vector<double>)>& f) {
  Tensor x64 = x.to(kCPU, kFloat64);
  Shape perm, out_shape;
  int64_t inner = 1;
  auto reduced = [&](int64_t d) { return dims.empty() || std::find(dims.begin(), dims.end(), d) != dims.end(); };
  for (int64_t d = 0; d < x.dim(); ++d)
    if (!reduced(d)) perm.push_back(d);
  for (int64_t d = 0; d < x.dim(); ++d)
    if (reduced(d)) {
      perm.push_back(d);
      inner *= x.size(d);
    }
  for (int64_t d = 0; d < x.dim(); ++d)
    if (!reduced(d) || keepdim) out_shape.push_back(reduced(d) ? 1 : x.size(d));
  std::vector<double> v = x64.permute(perm).contiguous().to_vector<double>(), out;
  for (size_t at = 0; at < v.size(); at += size_t(inner))
    out.push_back(f(std::vector<double>(v.begin() + long(at), v.begin() + long(at) + inner)));
  return from_vector(out, out_shape);
}
double var_ref(const std::vector<double>& v, double correction) {
  double m = 0, ss = 0;
  for (double e : v) m += e / double(v.size());
  for (double e : v) ss += (e - m) * (e - m);
  return ss / (double(v.size()) - correction);
}
double norm_ref(const std::vector<double>& v, double p) {
  double acc = 0;
  for (double e : v) acc = std::isinf(p) ? std::max(acc, std::fabs(e)) : acc + std::pow(std::fabs(e), p);
  return std::isinf(p) ? acc : std::pow(acc, 1 / p);
}
}  // namespace

TEST_CASE("var, std and norm match a float64 reference in every floating dtype, contiguous or not", "[cuda]") {
  Tensor x64 = sample(-1, 1, 37, {2, 3, 4});
  for (Device dev : testing::test_devices()) {
    for (DType dt : kFloats) {
      Tensor x = x64.to(dev, dt);
      Tensor xt = x.transpose(0, 2);  // [4, 3, 2], not contiguous
      double tol = tol_for(dt) * 8;
      std::string what = std::string(dtype_name(dt)) + " on " + dev.str();
      auto var_of = [](double c) { return [c](std::vector<double> v) { return var_ref(v, c); }; };
      auto std_of = [](double c) { return [c](std::vector<double> v) { return std::sqrt(var_ref(v, c)); }; };
      auto norm_of = [](double p) { return [p](std::vector<double> v) { return norm_ref(v, p); }; };
      check_close(var(x), reduce_ref(x, {}, false, var_of(1)), tol, tol, "var " + what);
      check_close(var(xt, {1}), reduce_ref(xt, {1}, false, var_of(1)), tol, tol, "var dim 1 " + what);
      check_close(var(xt, {0, 2}, false, true), reduce_ref(xt, {0, 2}, true, var_of(0)), tol, tol, "var biased keepdim " + what);
      check_close(ht::std(xt, false), reduce_ref(xt, {}, false, std_of(0)), tol, tol, "std biased " + what);
      check_close(xt.std(-1, true, true), reduce_ref(xt, {2}, true, std_of(1)), tol, tol, "std dim -1 keepdim " + what);
      check_close(norm(xt), reduce_ref(xt, {}, false, norm_of(2)), tol, tol, "norm " + what);
      check_close(xt.norm(1, 0), reduce_ref(xt, {0}, false, norm_of(1)), tol, tol, "norm 1 dim 0 " + what);
      check_close(xt.norm(INFINITY, {0, 1}, true), reduce_ref(xt, {0, 1}, true, norm_of(INFINITY)), tol, tol,
                  "norm inf dims 0,1 keepdim " + what);
      check_close(norm(xt, 3, {2}), reduce_ref(xt, {2}, false, norm_of(3)), tol, tol, "norm 3 dim 2 " + what);
      check_close(norm(xt, 0.5, {1}, true), reduce_ref(xt, {1}, true, norm_of(0.5)), tol, tol, "norm 0.5 " + what);
      REQUIRE(var(x).dtype() == dt);
      REQUIRE(ht::std(x, 1).sizes() == Shape{2, 4});  // one dim, not `unbiased`
      REQUIRE(x.norm(1.5, 1).dtype() == dt);
    }
  }
  // 16-bit inputs are reduced in float and rounded once: 4097 ones have the norm sqrt(4097), 64 in float16 (a
  // float16 running sum of squares stops at 2048: 45.25); the variance of 4096 zeros and one 64 needs the small
  // squared deviations that a float16 sum near 4096 (spacing 4) would drop
  REQUIRE(norm(ones({4097}, {.dtype = kFloat16})).item<float>() == 64.0f);
  Tensor spread = cat({zeros({4096}, {.dtype = kFloat16}), full({1}, 64.0, {.dtype = kFloat16})});
  REQUIRE(std::fabs(var(spread, false).item<float>() - float(64.0 * 64.0 * 4096 / (4097.0 * 4097.0))) < 1e-3f);

  check_gradients([](const std::vector<Tensor>& in) { return var(in[0]); }, {sample(-1, 1, 3, {3, 4})});
  check_gradients([](const std::vector<Tensor>& in) { return var(in[0].t(), {0}, false, true); }, {sample(-1, 1, 4, {3, 4})});
  check_gradients([](const std::vector<Tensor>& in) { return ht::std(in[0], {0, 2}); }, {sample(-1, 1, 5, {2, 3, 4})});
  check_gradients([](const std::vector<Tensor>& in) { return ht::std(in[0], false); }, {sample(-1, 1, 6, {3, 4})});
  for (double p : {1.0, 2.0, 3.0, 1.5, 0.5, double(INFINITY)}) {
    INFO("p = " << p);
    check_gradients([p](const std::vector<Tensor>& in) { return norm(in[0], p); }, {sample(0.1, 1, 7, {3, 4})});
    check_gradients([p](const std::vector<Tensor>& in) { return norm(in[0].t(), p, {1}, true); }, {sample(-1, 1, 8, {3, 4})});
  }
  // torch defines the gradient of a zero norm (and of a zero std) as 0, for every p
  for (double p : {1.0, 2.0, 3.0, 1.5, 0.5, double(INFINITY)}) {
    INFO("p = " << p);
    Tensor z = zeros({2, 3}, {.dtype = kFloat64}).requires_grad_();
    sum(norm(z, p, {1})).backward();
    testing::check_equal(z.grad(), zeros({2, 3}, {.dtype = kFloat64}), "zero norm gradient");
  }
  // a NaN element: torch's rules give the NaN element no gradient for p = 1 and INFINITY (its sign is taken as
  // 0), and NaN everywhere for the p that divide by the NaN norm (checked against torch 2.15)
  for (double p : {1.0, 2.0, 3.0, 1.5, 0.5, double(INFINITY)}) {
    INFO("p = " << p);
    Tensor x = tensor<double>({NAN, 1.0, -2.0, 0.0}).requires_grad_();
    Tensor n = norm(x, p);
    REQUIRE(std::isnan(n.item<double>()));
    n.backward();
    std::vector<double> g = x.grad().to_vector<double>();
    if (p == 1) REQUIRE(g == std::vector<double>{0, 1, -1, 0});
    else if (std::isinf(p)) REQUIRE(g == std::vector<double>{0, 0, 0, 0});
    else for (double e : g) REQUIRE(std::isnan(e));
  }
  Tensor c = full({4}, 2.0, {.dtype = kFloat64}).requires_grad_();
  ht::std(c).backward();
  testing::check_equal(c.grad(), zeros({4}, {.dtype = kFloat64}), "zero std gradient");
  // one element and Bessel's correction: no degrees of freedom, NaN value and gradient as in torch
  Tensor one = full({1}, 2.0, {.dtype = kFloat64}).requires_grad_();
  Tensor v1 = var(one);
  REQUIRE(std::isnan(v1.item<double>()));
  v1.backward();
  REQUIRE(std::isnan(one.grad().item<double>()));
  REQUIRE_THROWS_WITH(var(ones({2, 3}), {1, -1}), Catch::Contains("[var] dim -1 appears more than once"));
  REQUIRE_THROWS_WITH(norm(ones({2}), -1), Catch::Contains("[norm] p must be positive"));
  REQUIRE_THROWS_WITH(ht::std(ones({2}, {.dtype = kInt64})), Catch::Contains("[std] expected a floating-point input"));
}

TEST_CASE("matmul: 2-d, batched with broadcasting, transposed operands, 1-d, 16-bit", "[cuda]") {
  auto ref = [](const Tensor& a, const Tensor& b) {  // [.., m, k] @ [k, n] reference in double
    std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>();
    int64_t k = a.size(-1), n = b.size(-1), rows = a.numel() / k;
    std::vector<double> c(size_t(rows * n));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < n; ++j)
        for (int64_t t = 0; t < k; ++t) c[size_t(r * n + j)] += av[size_t(r * k + t)] * bv[size_t(t * n + j)];
    Shape s = a.sizes();
    s.back() = n;
    return from_vector(c, s);
  };
  Tensor a64 = sample(-1, 1, 41, {2, 5, 7}), b64 = sample(-1, 1, 42, {7, 3});
  for (Device dev : testing::test_devices()) {
    for (DType dt : kFloats) {
      Tensor a = a64.to(dev, dt), b = b64.to(dev, dt);
      Tensor want = ref(a.to(kCPU, kFloat64), b.to(kCPU, kFloat64));
      double tol = tol_for(dt) * 8;
      std::string what = std::string(dtype_name(dt)) + " on " + dev.str();
      check_close(matmul(a, b), want, tol, tol, "batched x 2-d " + what);
      check_close(matmul(transposed_copy(a.select(0, 1)), b), want.select(0, 1), tol, tol, "transposed a " + what);
      check_close(matmul(a.select(0, 0), b.t().contiguous().t()), want.select(0, 0), tol, tol, "transposed b " + what);
      check_close(matmul(a.select(0, 0), b.select(1, 0)), want.select(0, 0).select(1, 0), tol, tol, "matrix-vector " + what);
    }
  }
  check_gradients([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); },
                  {sample(-1, 1, 1, {2, 3, 4}), sample(-1, 1, 2, {4, 5})});
  check_gradients([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); },
                  {sample(-1, 1, 1, {3, 4}), sample(-1, 1, 2, {5, 4}), sample(-1, 1, 3, {5})});
  REQUIRE_THROWS_WITH(matmul(ones({2, 3}), ones({2, 3})), Catch::Contains("[matmul] shapes [2, 3] and [2, 3] cannot be multiplied"));
  REQUIRE_THROWS_WITH(matmul(ones({2, 3}), ones({3, 2}, {.dtype = kFloat64})), Catch::Contains("one dtype"));
}

TEST_CASE("bfloat16 matmul rounds once from a float32 sum, in every operand layout") {
  // On a CPU with AVX512_BF16 oneDNN's bf16 matmul runs these (elsewhere: float32 sgemm on widened inputs). Either
  // way each output is one rounding of a float32 sum: within half a bfloat16 ulp (2^-8 relative) of the exact
  // product of the bf16 inputs, plus float32 accumulation error (k * 2^-24 of the sum of |terms|). Rounding
  // partial sums to bf16 would miss this bound at k = 300. Shapes large enough for oneDNN's blocking.
  const int64_t m = 65, k = 300, n = 130;
  Tensor a = sample(-1, 1, 51, {3, m, k}).to(kBFloat16), b = sample(-1, 1, 52, {k, n}).to(kBFloat16);
  auto misses = [&](const Tensor& got, const Tensor& a3, const Tensor& b3) {
    Tensor exact = matmul(a3.to(kFloat64), b3.to(kFloat64));
    Tensor magnitude = matmul(abs(a3.to(kFloat64)), abs(b3.to(kFloat64)));
    std::vector<double> g = got.to_vector<double>(), e = exact.to_vector<double>(), mag = magnitude.to_vector<double>();
    REQUIRE(g.size() == e.size());
    size_t bad = 0;
    for (size_t i = 0; i < g.size(); ++i)
      if (std::fabs(g[i] - e[i]) > std::ldexp(std::fabs(e[i]), -8) + 2.0 * double(k) * std::ldexp(mag[i], -24)) ++bad;
    return bad;
  };
  auto check = [&](const Tensor& got, const Tensor& a3, const Tensor& b3, const std::string& what) {
    INFO(what);
    REQUIRE(got.dtype() == kBFloat16);
    CHECK(misses(got, a3, b3) == 0);
    REQUIRE(matmul(a3, b3).to_vector<double>() == got.to_vector<double>());  // the same bits again
  };
  {  // the bound has teeth: three partial sums over k rounded to bf16 and added in bf16 miss it
    Tensor a2 = a.select(0, 0), partial = matmul(a2.narrow(1, 0, 100), b.narrow(0, 0, 100));
    for (int64_t at = 100; at < k; at += 100) partial = add(partial, matmul(a2.narrow(1, at, 100), b.narrow(0, at, 100)));
    REQUIRE(misses(partial, a2, b) > 0);
  }
  check(matmul(a, b), a, b, "batched [3, m, k] @ [k, n]");
  Tensor at = a.transpose(1, 2).contiguous().transpose(1, 2), bt = b.t().contiguous().t();
  check(matmul(at, bt), at, bt, "both transposed in memory");
  Tensor b3 = b.unsqueeze(0).expand({3, k, n});
  check(matmul(a, b3), a, b3, "batch of one broadcast b (stride 0)");
  Tensor bb = sample(-1, 1, 53, {3, k, n}).to(kBFloat16);
  check(matmul(at, bb), at, bb, "batched, a transposed");
  check(matmul(a.select(0, 1).select(0, 2), b), a.select(0, 1).select(0, 2), b, "vector @ matrix");
  check(matmul(a.select(0, 0), b.select(1, 7)), a.select(0, 0), b.select(1, 7), "matrix @ strided vector");
}

TEST_CASE("softmax and log_softmax are stable and differentiable") {
  Tensor big = tensor<float>({1000.f, 1001.f, 1002.f});
  std::vector<float> s = softmax(big, 0).to_vector<float>();
  REQUIRE(std::fabs(s[2] - 0.66524096f) < 1e-6f);
  REQUIRE(std::isfinite(log_softmax(big, 0).to_vector<float>()[0]));
  check_gradients([](const std::vector<Tensor>& in) { return softmax(in[0], 1); }, {sample(-2, 2, 7, {3, 5})});
  check_gradients([](const std::vector<Tensor>& in) { return log_softmax(in[0], 0); }, {sample(-2, 2, 8, {3, 5})});
}

TEST_CASE("cat joins along a dim and splits the gradient") {
  Tensor a = sample(0, 1, 1, {2, 3}), b = sample(0, 1, 2, {2, 2});
  Tensor c = cat({a, b}, 1);
  REQUIRE(c.sizes() == Shape{2, 5});
  check_close(c.narrow(1, 3, 2), b, 0, 0);
  check_gradients([](const std::vector<Tensor>& in) { return cat({in[0], in[1]}, 1); }, {a, b});
  REQUIRE_THROWS_WITH(cat({a, ones({3, 1}, {.dtype = kFloat64})}, 1), Catch::Contains("sizes of tensors must match"));
}

TEST_CASE("view ops are differentiable") {
  check_gradients([](const std::vector<Tensor>& in) { return in[0].permute({2, 0, 1}).reshape({4, 6}).slice(0, 1, 4, 2); },
                  {sample(-1, 1, 9, {2, 3, 4})});
  check_gradients([](const std::vector<Tensor>& in) { return in[0].unsqueeze(0).expand({3, 2, 4}) * in[0].select(1, 1).unsqueeze(0).unsqueeze(-1); },
                  {sample(-1, 1, 9, {2, 4})});
}

TEST_CASE("autocast runs matmul, linear and conv in 16-bit and softmax in float32; gradients keep the params' dtype") {
  Tensor a = sample(-1, 1, 1, {4, 8}).to(kFloat32).requires_grad_();
  Tensor w = sample(-1, 1, 2, {3, 8}).to(kFloat32).requires_grad_();
  Tensor b = sample(-1, 1, 3, {3}).to(kFloat32).requires_grad_();
  {
    amp::AutocastGuard guard(DeviceType::CPU, kFloat16);
    Tensor y = linear(a, w, b);
    REQUIRE(y.dtype() == kFloat16);
    check_close(y, linear(a.detach(), w.detach(), b.detach()), 1e-2, 1e-2, "autocast linear");
    Tensor s = softmax(y, 1);
    REQUIRE(s.dtype() == kFloat32);
    sum(s * s).backward();
  }
  REQUIRE(a.grad().dtype() == kFloat32);
  REQUIRE(w.grad().dtype() == kFloat32);
  REQUIRE(b.grad().dtype() == kFloat32);
  {
    amp::AutocastGuard guard(DeviceType::CPU, kBFloat16);
    REQUIRE(matmul(a, w.t()).dtype() == kBFloat16);
    amp::AutocastGuard off(DeviceType::CPU, kFloat16, false);
    REQUIRE(matmul(a, w.t()).dtype() == kFloat32);
  }
  {
    amp::AutocastGuard other_device(DeviceType::CUDA, kFloat16);  // CPU tensors are left alone
    REQUIRE(matmul(a, w.t()).dtype() == kFloat32);
  }
  Tensor img = sample(-1, 1, 4, {2, 3, 5, 5}).to(kFloat32);
  Tensor k = sample(-1, 1, 5, {4, 3, 3, 3}).to(kFloat32).requires_grad_();
  {
    amp::AutocastGuard guard(DeviceType::CPU, kFloat16);
    Tensor y = nn::functional::conv2d(img, k, Tensor(), 1, 1);
    REQUIRE(y.dtype() == kFloat16);
    Tensor loss = nn::functional::cross_entropy(y.flatten(1), tensor<int64_t>({0, 1}));
    REQUIRE(loss.dtype() == kFloat32);
    loss.backward();
  }
  REQUIRE(k.grad().dtype() == kFloat32);
}
