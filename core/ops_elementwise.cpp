// Elementwise ops with broadcasting and dtype promotion, each with its backward rule beside it.
#include "core/autograd.h"
#include "core/ops.h"
#include "core/raw.h"

namespace ht {

using autograd::Grads;
using autograd::Inputs;
using kernels::BinaryOp;
using kernels::UnaryOp;

namespace {
// PyTorch's combine_categories (aten/src/ATen/native/TypeProperties.cpp): a higher-priority operand (a
// dimensioned tensor over a 0-dim one, a 0-dim tensor over a wrapped number) decides the dtype unless the
// lower one is of a higher category (floating over integral over bool).
DType combine_categories(DType higher, DType lower) {
  if (is_floating(higher)) return higher;
  if (higher == kBool || is_floating(lower)) return promote_types(higher, lower);
  return higher;
}

void check_defined(const Tensor& t, const char* op, const char* which) {
  HT_CHECK(t.defined(), "[", op, "] expected a defined tensor as ", which, ", got an undefined one ",
           "(default-constructed, or the grad() of a tensor before any backward)");
}
}  // namespace

DType result_type(const Tensor& a, const Tensor& b) {
  check_defined(a, "result_type", "the first operand");
  check_defined(b, "result_type", "the second operand");
  bool a_zero = a.dim() == 0, b_zero = b.dim() == 0;
  if (a_zero == b_zero) return promote_types(a.dtype(), b.dtype());
  return a_zero ? combine_categories(b.dtype(), a.dtype()) : combine_categories(a.dtype(), b.dtype());
}

DType result_type(const Tensor& a, Scalar s) {
  check_defined(a, "result_type", "the tensor operand");
  return combine_categories(a.dtype(), s.wrapped_dtype());
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    HT_CHECK(da == db || da == 1 || db == 1, "[", op, "] shapes ", shape_str(a), " and ", shape_str(b),
             " cannot be broadcast together (dimension ", i, ": ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

namespace {

void check_same_device(const Tensor& a, const Tensor& b, const char* op) {
  check_defined(a, op, "the first operand");
  check_defined(b, op, "the second operand");
  HT_CHECK(a.device() == b.device(), "[", op, "] expected both tensors on the same device, got ", a.device().str(),
           " and ", b.device().str());
}

// The gradient of a broadcast, promoted input: summed back to its shape and cast to its dtype.
Tensor grad_for(const Tensor& g, const Tensor& input) {
  if (!input.requires_grad()) return Tensor();  // nobody asked for it
  return sum_to(g, input.sizes()).to(input.dtype());
}

OperandLayout layout(const Tensor& t) { return {t.sizes(), t.strides()}; }

// A 0-dim operand: what PyTorch wraps a Python scalar in, which changes TensorIterator's output layout (no fast
// setup) only in the strides of size-1 dims.
const Shape kScalarShape{};
const OperandLayout kScalarLayout{kScalarShape, kScalarShape};

// The output of an elementwise op, laid out by TensorIterator's rule over the inputs (see elementwise_strides).
Tensor empty_output(const Shape& shape, std::initializer_list<OperandLayout> inputs, DType dtype, Device device) {
  return empty_strided(shape, elementwise_strides(shape, inputs), {.dtype = dtype, .device = device});
}

// An operand broadcast to the output's shape, in the output's memory order (detail::kernel_order).
kernels::RawView operand_view(const Tensor& t, const Shape& shape, const Shape& order, const char* name) {
  Tensor full = t.sizes() == shape ? t : t.detach().expand(shape);
  return detail::raw(detail::in_order(full, order), name);
}

// Runs a binary kernel on detached operands: both cast to `compute`, result in `out_dtype`.
Tensor run_binary(BinaryOp op, const Tensor& a, const Tensor& b, DType compute, DType out_dtype, const char* name,
                  double p1 = 0, double p2 = 0) {
  check_same_device(a, b, name);
  Shape shape = broadcast_shapes(a.sizes(), b.sizes(), name);
  Tensor ac = a.detach().to(compute), bc = b.detach().to(compute);
  Tensor out = empty_output(shape, {layout(a), layout(b)}, out_dtype, a.device());
  Shape order = detail::kernel_order(out);
  kernels::binary(op, operand_view(ac, shape, order, name), operand_view(bc, shape, order, name),
                  operand_view(out, shape, order, name), p1, p2);
  return out;
}

// Runs a unary kernel from x into out (x's shape and dtype).
Tensor run_unary_into(UnaryOp op, const Tensor& x, Tensor out, const char* name, double a, double b) {
  Shape order = detail::kernel_order(out);
  kernels::unary(op, operand_view(x, x.sizes(), order, name), operand_view(out, x.sizes(), order, name), a, b);
  return out;
}

// `with_scalar`: the op is PyTorch's tensor-scalar form (x + 2), laid out as over (x, a 0-dim tensor).
Tensor run_unary(UnaryOp op, const Tensor& x, const char* name, bool with_scalar, double a = 0, double b = 0) {
  Tensor out = with_scalar ? empty_output(x.sizes(), {layout(x), kScalarLayout}, x.dtype(), x.device())
                           : empty_output(x.sizes(), {layout(x)}, x.dtype(), x.device());
  return run_unary_into(op, x, out, name, a, b);
}

// Integers (and bool) go to float32 for ops that only make sense on reals, as PyTorch does.
Tensor as_real(const Tensor& x, const char* op) {
  check_defined(x, op, "input");
  return x.is_floating_point() ? x : x.to(kFloat32);
}

DType arith_type(const Tensor& a, const Tensor& b, const char* op) {
  check_same_device(a, b, op);
  DType t = result_type(a, b);
  HT_CHECK(t != kBool, "[", op, "] arithmetic on two bool tensors is not supported; convert them first");
  return t;
}

// The tensor operand of a tensor-scalar op, cast to the result dtype (result_type(x, s)).
Tensor scalar_operand(const Tensor& x, Scalar s, const char* op) {
  check_defined(x, op, "the tensor operand");
  DType t = result_type(x, s);
  HT_CHECK(t != kBool, "[", op, "] arithmetic on a bool tensor and a bool scalar is not supported; convert first");
  return x.to(t);
}

// `saves`: what the backward rule reads, {.inputs = {0}} (x) and/or {.output = true} (y).
Tensor unary_record(const char* name, UnaryOp op, const Tensor& x, autograd::Saves saves, autograd::BackwardFn bw,
                    double a = 0, double b = 0) {
  check_defined(x, name, "input");
  return autograd::record(name, run_unary(op, x.detach(), name, false, a, b), {x}, std::move(bw), std::move(saves));
}
Tensor scalar_record(const char* name, UnaryOp op, const Tensor& x, autograd::BackwardFn bw, double s) {
  return autograd::record(name, run_unary(op, x.detach(), name, true, s), {x}, std::move(bw));
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b, double alpha) {
  DType t = arith_type(a, b, "add");
  return autograd::record("add", run_binary(BinaryOp::Add, a, b, t, t, "add", alpha), {a, b},
                          [alpha](const Inputs& in, const Tensor&, const Tensor& g) {
                            return Grads{grad_for(g, in[0]),
                                         in[1].requires_grad() ? grad_for(alpha == 1 ? g : mul(g, alpha), in[1])
                                                               : Tensor()};
                          });
}

Tensor sub(const Tensor& a, const Tensor& b, double alpha) {
  DType t = arith_type(a, b, "sub");
  return autograd::record("sub", run_binary(BinaryOp::Sub, a, b, t, t, "sub", alpha), {a, b},
                          [alpha](const Inputs& in, const Tensor&, const Tensor& g) {
                            return Grads{grad_for(g, in[0]),
                                         in[1].requires_grad() ? grad_for(mul(g, -alpha), in[1]) : Tensor()};
                          });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  DType t = arith_type(a, b, "mul");
  return autograd::record("mul", run_binary(BinaryOp::Mul, a, b, t, t, "mul"), {a, b},
                          [](const Inputs& in, const Tensor&, const Tensor& g) {
                            return Grads{in[0].requires_grad() ? grad_for(mul(g, in[1]), in[0]) : Tensor(),
                                         in[1].requires_grad() ? grad_for(mul(g, in[0]), in[1]) : Tensor()};
                          },
                          {.inputs = {0, 1}});
}

Tensor div(const Tensor& a, const Tensor& b) {
  check_same_device(a, b, "div");
  DType t = result_type(a, b);
  if (!is_floating(t)) t = kFloat32;  // true division, as torch.div
  return autograd::record("div", run_binary(BinaryOp::Div, a, b, t, t, "div"), {a, b},
                          [](const Inputs& in, const Tensor& y, const Tensor& g) {
                            return Grads{in[0].requires_grad() ? grad_for(div(g, in[1]), in[0]) : Tensor(),
                                         in[1].requires_grad() ? grad_for(neg(div(mul(g, y), in[1])), in[1])
                                                               : Tensor()};
                          },
                          {.inputs = {1}, .output = true});
}

namespace {
// maximum/minimum: the gradient goes to the chosen side; ties split it evenly, as PyTorch does.
Tensor extremum(BinaryOp op, const char* name, const Tensor& a, const Tensor& b) {
  DType t = arith_type(a, b, name);
  bool is_max = op == BinaryOp::Maximum;
  return autograd::record(name, run_binary(op, a, b, t, t, name), {a, b},
                          [is_max](const Inputs& in, const Tensor&, const Tensor& g) {
                            Tensor wins_a = is_max ? gt(in[0], in[1]) : lt(in[0], in[1]);
                            Tensor tie = eq(in[0], in[1]);
                            Tensor half = mul(g, 0.5), zero = zeros_like(g);
                            Tensor ga = where(wins_a, g, where(tie, half, zero));
                            Tensor gb = where(wins_a, zero, where(tie, half, g));
                            return Grads{grad_for(ga, in[0]), grad_for(gb, in[1])};
                          },
                          {.inputs = {0, 1}});
}
}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b) { return extremum(BinaryOp::Maximum, "maximum", a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return extremum(BinaryOp::Minimum, "minimum", a, b); }

Tensor add(const Tensor& a, Scalar scalar) {
  double s = scalar.to_double();
  return scalar_record("add", UnaryOp::AddScalar, scalar_operand(a, scalar, "add"),
                      [](const Inputs& in, const Tensor&, const Tensor& g) { return Grads{g.to(in[0].dtype())}; }, s);
}
Tensor sub(const Tensor& a, Scalar scalar) {
  // x - s is x + (-s), recorded under sub's name (PyTorch's SubBackward0)
  double s = scalar.to_double();
  return scalar_record("sub", UnaryOp::AddScalar, scalar_operand(a, scalar, "sub"),
                      [](const Inputs& in, const Tensor&, const Tensor& g) { return Grads{g.to(in[0].dtype())}; }, -s);
}
Tensor mul(const Tensor& a, Scalar scalar) {
  double s = scalar.to_double();
  return scalar_record("mul", UnaryOp::MulScalar, scalar_operand(a, scalar, "mul"),
                      [s](const Inputs&, const Tensor&, const Tensor& g) { return Grads{mul(g, s)}; }, s);
}
Tensor div(const Tensor& a, Scalar scalar) {
  double s = scalar.to_double();
  check_defined(a, "div", "the tensor operand");
  DType t = result_type(a, scalar);  // true division: integral and bool results go to float32
  return scalar_record("div", UnaryOp::DivScalar, a.to(is_floating(t) ? t : kFloat32),
                      [s](const Inputs&, const Tensor&, const Tensor& g) { return Grads{div(g, s)}; }, s);
}
Tensor rsub(const Tensor& a, Scalar scalar) {
  double s = scalar.to_double();
  return scalar_record("rsub", UnaryOp::RSubScalar, scalar_operand(a, scalar, "rsub"),
                      [](const Inputs&, const Tensor&, const Tensor& g) { return Grads{neg(g)}; }, s);
}
Tensor rdiv(const Tensor& a_in, Scalar scalar) {
  double s = scalar.to_double();
  // PyTorch computes s / x as x.reciprocal() * s (torch/_tensor.py, __rdiv__): the result is laid out as that
  // product is, over the reciprocal's output and a 0-dim tensor.
  Tensor a = as_real(a_in, "rdiv");
  Shape reciprocal_strides = elementwise_strides(a.sizes(), {layout(a)});
  Tensor out = empty_output(a.sizes(), {OperandLayout{a.sizes(), reciprocal_strides}, kScalarLayout}, a.dtype(),
                            a.device());
  return autograd::record("rdiv", run_unary_into(UnaryOp::RDivScalar, a.detach(), out, "rdiv", s, 0), {a},
                      [](const Inputs& in, const Tensor& y, const Tensor& g) {
                        return Grads{neg(div(mul(g, y), in[0]))};
                      },
                      {.inputs = {0}, .output = true});
}

Tensor neg(const Tensor& x) {
  HT_CHECK(x.dtype() != kBool, "[neg] negation of a bool tensor is not supported");
  return unary_record("neg", UnaryOp::Neg, x, {},
                      [](const Inputs&, const Tensor&, const Tensor& g) { return Grads{neg(g)}; });
}
Tensor exp(const Tensor& x) {
  return unary_record("exp", UnaryOp::Exp, as_real(x, "exp"), {.output = true},
                      [](const Inputs&, const Tensor& y, const Tensor& g) { return Grads{mul(g, y)}; });
}
Tensor log(const Tensor& x) {
  return unary_record("log", UnaryOp::Log, as_real(x, "log"), {.inputs = {0}},
                      [](const Inputs& in, const Tensor&, const Tensor& g) { return Grads{div(g, in[0])}; });
}
Tensor sqrt(const Tensor& x) {
  return unary_record("sqrt", UnaryOp::Sqrt, as_real(x, "sqrt"), {.output = true},
                      [](const Inputs&, const Tensor& y, const Tensor& g) { return Grads{div(mul(g, 0.5), y)}; });
}
Tensor rsqrt(const Tensor& x) {
  return unary_record("rsqrt", UnaryOp::Rsqrt, as_real(x, "rsqrt"), {.output = true},
                      [](const Inputs&, const Tensor& y, const Tensor& g) {
    return Grads{mul(mul(g, pow(y, 3.0)), -0.5)};
  });
}
Tensor pow(const Tensor& x, double p) {
  return unary_record("pow", UnaryOp::PowScalar, as_real(x, "pow"), {.inputs = {0}},
                      [p](const Inputs& in, const Tensor&, const Tensor& g) {
    return Grads{run_binary(BinaryOp::PowScalarBwd, g, in[0], g.dtype(), g.dtype(), "pow_backward", p)};
  }, p);
}
Tensor abs(const Tensor& x) {
  return unary_record("abs", UnaryOp::Abs, x, {.inputs = {0}}, [](const Inputs& in, const Tensor&, const Tensor& g) {
    Tensor zero = zeros_like(g);
    return Grads{where(gt(in[0], zero), g, where(lt(in[0], zero), neg(g), zero))};
  });
}
Tensor relu(const Tensor& x) {
  return unary_record("relu", UnaryOp::Relu, x, {.output = true}, [](const Inputs&, const Tensor& y, const Tensor& g) {
    return Grads{run_binary(BinaryOp::ReluBwd, g, y, g.dtype(), g.dtype(), "relu_backward")};
  });
}
Tensor sigmoid(const Tensor& x) {
  return unary_record("sigmoid", UnaryOp::Sigmoid, as_real(x, "sigmoid"), {.output = true},
                      [](const Inputs&, const Tensor& y, const Tensor& g) {
    return Grads{run_binary(BinaryOp::SigmoidBwd, g, y, g.dtype(), g.dtype(), "sigmoid_backward")};
  });
}
Tensor tanh(const Tensor& x) {
  return unary_record("tanh", UnaryOp::Tanh, as_real(x, "tanh"), {.output = true},
                      [](const Inputs&, const Tensor& y, const Tensor& g) {
    return Grads{run_binary(BinaryOp::TanhBwd, g, y, g.dtype(), g.dtype(), "tanh_backward")};
  });
}
Tensor erf(const Tensor& x) {
  return unary_record("erf", UnaryOp::Erf, as_real(x, "erf"), {.inputs = {0}},
                      [](const Inputs& in, const Tensor&, const Tensor& g) {
    // d/dx erf(x) = 2/sqrt(pi) * exp(-x^2)
    return Grads{mul(g, mul(exp(neg(square(in[0]))), 1.1283791670955126))};
  });
}
Tensor square(const Tensor& x) {
  return unary_record("square", UnaryOp::Square, x, {.inputs = {0}},
                      [](const Inputs& in, const Tensor&, const Tensor& g) {
    return Grads{mul(mul(g, in[0]), 2.0)};
  });
}
Tensor clamp(const Tensor& x, double lo, double hi) {
  HT_CHECK(lo <= hi, "[clamp] min ", lo, " must not exceed max ", hi);
  return unary_record("clamp", UnaryOp::Clamp, x, {.inputs = {0}},
                      [lo, hi](const Inputs& in, const Tensor&, const Tensor& g) {
    return Grads{run_binary(BinaryOp::ClampBwd, g, in[0], g.dtype(), g.dtype(), "clamp_backward", lo, hi)};
  }, lo, hi);
}

#define HT_COMPARISON(fn, OP)                                                    \
  Tensor fn(const Tensor& a, const Tensor& b) {                                  \
    return run_binary(BinaryOp::OP, a, b, result_type(a, b), kBool, #fn);                 \
  }
HT_COMPARISON(eq, Eq)
HT_COMPARISON(ne, Ne)
HT_COMPARISON(lt, Lt)
HT_COMPARISON(le, Le)
HT_COMPARISON(gt, Gt)
HT_COMPARISON(ge, Ge)
#undef HT_COMPARISON

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_defined(cond, "where", "the condition");
  HT_CHECK(cond.dtype() == kBool, "[where] expected a bool condition, got ", dtype_name(cond.dtype()));
  check_same_device(cond, a, "where");
  check_same_device(a, b, "where");
  DType t = result_type(a, b);
  Shape shape = broadcast_shapes(broadcast_shapes(cond.sizes(), a.sizes(), "where"), b.sizes(), "where");
  Tensor ac = a.detach().to(t), bc = b.detach().to(t);
  // the condition comes first among TensorIterator's inputs in PyTorch's where, so it leads the layout
  Tensor out = empty_output(shape, {layout(cond), layout(a), layout(b)}, t, a.device());
  Shape order = detail::kernel_order(out);
  kernels::where(operand_view(cond, shape, order, "where"), operand_view(ac, shape, order, "where"),
                 operand_view(bc, shape, order, "where"), operand_view(out, shape, order, "where"));
  return autograd::record("where", out, {a, b, cond}, [](const Inputs& in, const Tensor&, const Tensor& g) {
    Tensor zero = zeros({}, {.dtype = g.dtype(), .device = g.device()});
    return Grads{in[0].requires_grad() ? grad_for(where(in[2], g, zero), in[0]) : Tensor(),
                 in[1].requires_grad() ? grad_for(where(in[2], zero, g), in[1]) : Tensor(), Tensor()};
  }, {.inputs = {2}});
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, Scalar s) { return add(a, s); }
Tensor operator-(const Tensor& a, Scalar s) { return sub(a, s); }
Tensor operator*(const Tensor& a, Scalar s) { return mul(a, s); }
Tensor operator/(const Tensor& a, Scalar s) { return div(a, s); }
Tensor operator+(Scalar s, const Tensor& a) { return add(a, s); }
Tensor operator-(Scalar s, const Tensor& a) { return rsub(a, s); }
Tensor operator*(Scalar s, const Tensor& a) { return mul(a, s); }
Tensor operator/(Scalar s, const Tensor& a) { return rdiv(a, s); }

}  // namespace ht
