// Names of the elementwise ops for error messages: "[exp] is not defined for int64 tensors", not an enum number.
#include "kernels/kernels.h"

namespace ht::kernels {

const char* op_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::Neg: return "neg";
    case UnaryOp::Exp: return "exp";
    case UnaryOp::Log: return "log";
    case UnaryOp::Sqrt: return "sqrt";
    case UnaryOp::Rsqrt: return "rsqrt";
    case UnaryOp::Abs: return "abs";
    case UnaryOp::Relu: return "relu";
    case UnaryOp::Sigmoid: return "sigmoid";
    case UnaryOp::Tanh: return "tanh";
    case UnaryOp::Erf: return "erf";
    case UnaryOp::Square: return "square";
    case UnaryOp::PowScalar: return "pow";
    case UnaryOp::Clamp: return "clamp";
    case UnaryOp::AddScalar: return "add";
    case UnaryOp::MulScalar: return "mul";
    case UnaryOp::RSubScalar: return "rsub";
    case UnaryOp::RDivScalar: return "rdiv";
    case UnaryOp::DivScalar: return "div";
  }
  return "unary op";
}

const char* op_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add: return "add";
    case BinaryOp::Sub: return "sub";
    case BinaryOp::Mul: return "mul";
    case BinaryOp::Div: return "div";
    case BinaryOp::Maximum: return "maximum";
    case BinaryOp::Minimum: return "minimum";
    case BinaryOp::Eq: return "eq";
    case BinaryOp::Ne: return "ne";
    case BinaryOp::Lt: return "lt";
    case BinaryOp::Le: return "le";
    case BinaryOp::Gt: return "gt";
    case BinaryOp::Ge: return "ge";
    case BinaryOp::ReluBwd: return "relu_backward";
    case BinaryOp::SigmoidBwd: return "sigmoid_backward";
    case BinaryOp::TanhBwd: return "tanh_backward";
    case BinaryOp::ClampBwd: return "clamp_backward";
    case BinaryOp::PowScalarBwd: return "pow_backward";
  }
  return "binary op";
}

}  // namespace ht::kernels
