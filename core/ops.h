// Core differentiable ops. Each is one function: checks, the kernel call, and its backward rule beside it.
#pragma once
#include <tuple>
#include <utility>
#include <vector>

#include "halftorch/core/scalar.h"
#include "halftorch/core/tensor.h"

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
Tensor sub(const Tensor& a, Scalar s);
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
Tensor erf(const Tensor& x);
Tensor square(const Tensor& x);
Tensor clamp(const Tensor& x, double lo, double hi);
// comparisons: bool results, no gradient
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
// against a number, compared in result_type(a, s) as PyTorch does (x < 0.5 on an int tensor compares as float)
Tensor eq(const Tensor& a, Scalar s);
Tensor ne(const Tensor& a, Scalar s);
Tensor lt(const Tensor& a, Scalar s);
Tensor le(const Tensor& a, Scalar s);
Tensor gt(const Tensor& a, Scalar s);
Tensor ge(const Tensor& a, Scalar s);
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
// comparison operators give bool tensors, as in libtorch (core/tensor_methods.cpp)
Tensor operator==(const Tensor& a, const Tensor& b);
Tensor operator!=(const Tensor& a, const Tensor& b);
Tensor operator<(const Tensor& a, const Tensor& b);
Tensor operator<=(const Tensor& a, const Tensor& b);
Tensor operator>(const Tensor& a, const Tensor& b);
Tensor operator>=(const Tensor& a, const Tensor& b);
Tensor operator==(const Tensor& a, Scalar s);
Tensor operator!=(const Tensor& a, Scalar s);
Tensor operator<(const Tensor& a, Scalar s);
Tensor operator<=(const Tensor& a, Scalar s);
Tensor operator>(const Tensor& a, Scalar s);
Tensor operator>=(const Tensor& a, Scalar s);
Tensor operator==(Scalar s, const Tensor& a);
Tensor operator!=(Scalar s, const Tensor& a);
Tensor operator<(Scalar s, const Tensor& a);
Tensor operator<=(Scalar s, const Tensor& a);
Tensor operator>(Scalar s, const Tensor& a);
Tensor operator>=(Scalar s, const Tensor& a);

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

// --- joining and splitting (core/ops_join_split.cpp); chunk and split return views
Tensor stack(const std::vector<Tensor>& xs, int64_t dim = 0);
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim = 0);
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim = 0);
std::vector<Tensor> split(const Tensor& x, Shape split_sizes, int64_t dim = 0);
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);

// --- by index along a dim (core/ops_index.cpp): dtype-generic kernels on the input's device; index values must lie
// in [0, size) (advanced indexing, x.index(...), also takes negative ones)
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
Tensor scatter(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
Tensor scatter(const Tensor& x, int64_t dim, const Tensor& index, Scalar value);
// x with src's values added at index along dim (torch.scatter_add: repeated indices accumulate)
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
std::tuple<Tensor, Tensor> sort(const Tensor& x, int64_t dim = -1, bool descending = false);  // stable
Tensor argsort(const Tensor& x, int64_t dim = -1, bool descending = false);
std::tuple<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t dim = -1, bool largest = true, bool sorted = true);
Tensor cumsum(const Tensor& x, int64_t dim);

// --- masks and tests (core/ops_masks.cpp)
Tensor masked_fill(const Tensor& x, const Tensor& mask, Scalar value);
Tensor where(const Tensor& cond, const Tensor& a, Scalar b);
Tensor where(const Tensor& cond, Scalar a, const Tensor& b);
Tensor where(const Tensor& cond, Scalar a, Scalar b);
Tensor clamp(const Tensor& x, const Tensor& min, const Tensor& max);
Tensor isnan(const Tensor& x);
Tensor isinf(const Tensor& x);
Tensor isfinite(const Tensor& x);
bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8, bool equal_nan = false);
// --- statistics (core/ops_statistics.cpp): unbiased (Bessel's correction) by default, as torch.var/std
Tensor var(const Tensor& x, bool unbiased = true);
Tensor var(const Tensor& x, Shape dims, bool unbiased = true, bool keepdim = false);
Tensor std(const Tensor& x, bool unbiased = true);
Tensor std(const Tensor& x, Shape dims, bool unbiased = true, bool keepdim = false);
// one dim: without these, var(x, 1) and var(x, {1}) would convert the dim to `unbiased`
inline Tensor var(const Tensor& x, int64_t dim, bool unbiased = true, bool keepdim = false) {
  return var(x, Shape{dim}, unbiased, keepdim);
}
inline Tensor var(const Tensor& x, int dim, bool unbiased = true, bool keepdim = false) {
  return var(x, Shape{dim}, unbiased, keepdim);
}
inline Tensor std(const Tensor& x, int64_t dim, bool unbiased = true, bool keepdim = false) {
  return std(x, Shape{dim}, unbiased, keepdim);
}
inline Tensor std(const Tensor& x, int dim, bool unbiased = true, bool keepdim = false) {
  return std(x, Shape{dim}, unbiased, keepdim);
}
// the p-norm of all elements, or over dims (p = INFINITY: the largest magnitude)
Tensor norm(const Tensor& x, double p = 2);
Tensor norm(const Tensor& x, double p, Shape dims, bool keepdim = false);
// matmul's fixed-rank forms, which check their operands' ranks (core/ops_linalg.cpp)
Tensor mm(const Tensor& a, const Tensor& b);
Tensor bmm(const Tensor& a, const Tensor& b);
Tensor mv(const Tensor& a, const Tensor& v);

// Broadcast shape of two shapes, or an "[op] ..." error naming both.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace ht
