// Core differentiable ops. Each is one function: checks, the kernel call, and its backward rule beside it.
#pragma once
#include <utility>

#include "core/scalar.h"
#include "core/tensor.h"

namespace ht {

// The dtype of a binary op's result by PyTorch's rules (torch.result_type): tensors of one kind (both
// dimensioned, or both 0-dim) promote; a 0-dim tensor or a scalar changes a dimensioned tensor's dtype only
// when it is of a higher category (floating > integral > bool): uint8 + 2 is uint8, uint8 + 2.0 float32,
// float16 + float32 0-dim tensor float16.
DType result_type(const Tensor& a, const Tensor& b);
DType result_type(const Tensor& a, Scalar s);

// --- elementwise, broadcasting (binary ops promote dtypes as result_type says)
Tensor add(const Tensor& a, const Tensor& b, double alpha = 1);  // a + alpha * b
Tensor sub(const Tensor& a, const Tensor& b, double alpha = 1);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, Scalar s);
Tensor mul(const Tensor& a, Scalar s);
Tensor div(const Tensor& a, Scalar s);
Tensor rsub(const Tensor& a, Scalar s);  // s - a
Tensor rdiv(const Tensor& a, Scalar s);  // s / a
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor pow(const Tensor& x, double exponent);
Tensor abs(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor square(const Tensor& x);
Tensor clamp(const Tensor& x, double lo, double hi);
// comparisons: bool results, no gradient
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, Scalar s);
Tensor operator-(const Tensor& a, Scalar s);
Tensor operator*(const Tensor& a, Scalar s);
Tensor operator/(const Tensor& a, Scalar s);
Tensor operator+(Scalar s, const Tensor& a);
Tensor operator-(Scalar s, const Tensor& a);
Tensor operator*(Scalar s, const Tensor& a);
Tensor operator/(Scalar s, const Tensor& a);

// --- reductions (fp16/bf16 accumulate in float; the result keeps the input dtype, as in PyTorch)
Tensor sum(const Tensor& x);
Tensor sum(const Tensor& x, Shape dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, Shape dims, bool keepdim = false);
std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim = false);  // values, int64 indices
std::pair<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor max(const Tensor& x);
Tensor min(const Tensor& x);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);
// Sums a broadcast gradient back to `shape` (the inverse of expand).
Tensor sum_to(const Tensor& x, const Shape& shape);

// --- linear algebra: 2-D, batched (3-D and more, broadcasting batch dims) and 1-D operands as torch.matmul
Tensor matmul(const Tensor& a, const Tensor& b);
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());  // x @ w^T + b

// --- softmax family, computed in float for 16-bit inputs
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

// --- joining
Tensor cat(const std::vector<Tensor>& xs, int64_t dim = 0);

// Broadcast shape of two shapes, or an "[op] ..." error naming both.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace ht
