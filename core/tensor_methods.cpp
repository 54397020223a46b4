// libtorch's method spellings (x.sum(1), x.exp(), x.lt(0)) and comparison operators, each forwarding to the
// free function in core/ops.h that holds the op and its backward rule.
#include "core/ops.h"

namespace ht {

namespace {
// A number as PyTorch wraps it for a binary op: a 0-dim tensor of the default dtype of its kind, which ranks
// below a dimensioned tensor in result_type.
Tensor wrapped(const Tensor& like, Scalar s, const char* op) {
  HT_CHECK(like.defined(), "[", op, "] expected a defined tensor, got an undefined one");
  return scalar_tensor(s.to_double(), {.dtype = s.wrapped_dtype(), .device = like.device()});
}
}  // namespace

Tensor Tensor::sum() const { return ht::sum(*this); }
Tensor Tensor::sum(Shape dims, bool keepdim) const { return ht::sum(*this, std::move(dims), keepdim); }
Tensor Tensor::sum(int64_t dim, bool keepdim) const { return ht::sum(*this, Shape{dim}, keepdim); }
Tensor Tensor::mean() const { return ht::mean(*this); }
Tensor Tensor::mean(Shape dims, bool keepdim) const { return ht::mean(*this, std::move(dims), keepdim); }
Tensor Tensor::mean(int64_t dim, bool keepdim) const { return ht::mean(*this, Shape{dim}, keepdim); }
Tensor Tensor::max() const { return ht::max(*this); }
std::tuple<Tensor, Tensor> Tensor::max(int64_t dim, bool keepdim) const {
  auto [values, indices] = ht::max(*this, dim, keepdim);
  return {values, indices};
}
Tensor Tensor::min() const { return ht::min(*this); }
std::tuple<Tensor, Tensor> Tensor::min(int64_t dim, bool keepdim) const {
  auto [values, indices] = ht::min(*this, dim, keepdim);
  return {values, indices};
}
Tensor Tensor::argmax() const { return ht::argmax(reshape({-1}), 0); }
Tensor Tensor::argmax(int64_t dim, bool keepdim) const { return ht::argmax(*this, dim, keepdim); }
Tensor Tensor::argmin() const { return ht::argmin(reshape({-1}), 0); }
Tensor Tensor::argmin(int64_t dim, bool keepdim) const { return ht::argmin(*this, dim, keepdim); }
Tensor Tensor::abs() const { return ht::abs(*this); }
Tensor Tensor::neg() const { return ht::neg(*this); }
Tensor Tensor::exp() const { return ht::exp(*this); }
Tensor Tensor::log() const { return ht::log(*this); }
Tensor Tensor::sqrt() const { return ht::sqrt(*this); }
Tensor Tensor::rsqrt() const { return ht::rsqrt(*this); }
Tensor Tensor::square() const { return ht::square(*this); }
Tensor Tensor::pow(double exponent) const { return ht::pow(*this, exponent); }
Tensor Tensor::relu() const { return ht::relu(*this); }
Tensor Tensor::sigmoid() const { return ht::sigmoid(*this); }
Tensor Tensor::tanh() const { return ht::tanh(*this); }
Tensor Tensor::clamp(double min, double max) const { return ht::clamp(*this, min, max); }
Tensor Tensor::matmul(const Tensor& other) const { return ht::matmul(*this, other); }
Tensor Tensor::softmax(int64_t dim) const { return ht::softmax(*this, dim); }
Tensor Tensor::log_softmax(int64_t dim) const { return ht::log_softmax(*this, dim); }
Tensor Tensor::operator-() const { return ht::neg(*this); }
Tensor Tensor::var(bool unbiased) const { return ht::var(*this, unbiased); }
Tensor Tensor::var(Shape dims, bool unbiased, bool keepdim) const { return ht::var(*this, std::move(dims), unbiased, keepdim); }
Tensor Tensor::var(int64_t dim, bool unbiased, bool keepdim) const { return ht::var(*this, Shape{dim}, unbiased, keepdim); }
Tensor Tensor::std(bool unbiased) const { return ht::std(*this, unbiased); }
Tensor Tensor::std(Shape dims, bool unbiased, bool keepdim) const { return ht::std(*this, std::move(dims), unbiased, keepdim); }
Tensor Tensor::std(int64_t dim, bool unbiased, bool keepdim) const { return ht::std(*this, Shape{dim}, unbiased, keepdim); }
Tensor Tensor::norm(double p) const { return ht::norm(*this, p); }
Tensor Tensor::norm(double p, Shape dims, bool keepdim) const { return ht::norm(*this, p, std::move(dims), keepdim); }
Tensor Tensor::norm(double p, int64_t dim, bool keepdim) const { return ht::norm(*this, p, Shape{dim}, keepdim); }
Tensor Tensor::cumsum(int64_t dim) const { return ht::cumsum(*this, dim); }
Tensor Tensor::masked_fill(const Tensor& mask, Scalar value) const { return ht::masked_fill(*this, mask, value); }
Tensor Tensor::index_select(int64_t dim, const Tensor& index) const { return ht::index_select(*this, dim, index); }
Tensor Tensor::gather(int64_t dim, const Tensor& index) const { return ht::gather(*this, dim, index); }
std::tuple<Tensor, Tensor> Tensor::sort(int64_t dim, bool descending) const { return ht::sort(*this, dim, descending); }
Tensor Tensor::argsort(int64_t dim, bool descending) const { return ht::argsort(*this, dim, descending); }
std::tuple<Tensor, Tensor> Tensor::topk(int64_t k, int64_t dim, bool largest, bool sorted) const {
  return ht::topk(*this, k, dim, largest, sorted);
}
std::vector<Tensor> Tensor::chunk(int64_t chunks, int64_t dim) const { return ht::chunk(*this, chunks, dim); }
std::vector<Tensor> Tensor::split(int64_t split_size, int64_t dim) const { return ht::split(*this, split_size, dim); }
Tensor Tensor::isnan() const { return ht::isnan(*this); }
Tensor Tensor::isinf() const { return ht::isinf(*this); }
Tensor Tensor::isfinite() const { return ht::isfinite(*this); }
Tensor Tensor::mm(const Tensor& other) const { return ht::mm(*this, other); }
Tensor Tensor::bmm(const Tensor& other) const { return ht::bmm(*this, other); }
Tensor Tensor::mv(const Tensor& vec) const { return ht::mv(*this, vec); }

#define HT_COMPARE(fn, op)                                                                  \
  Tensor fn(const Tensor& a, Scalar s) { return fn(a, wrapped(a, s, #fn)); }                \
  Tensor Tensor::fn(const Tensor& other) const { return ht::fn(*this, other); }             \
  Tensor Tensor::fn(Scalar other) const { return ht::fn(*this, other); }                    \
  Tensor operator op(const Tensor& a, const Tensor& b) { return fn(a, b); }                 \
  Tensor operator op(const Tensor& a, Scalar s) { return fn(a, s); }
HT_COMPARE(eq, ==)
HT_COMPARE(ne, !=)
HT_COMPARE(lt, <)
HT_COMPARE(le, <=)
HT_COMPARE(gt, >)
HT_COMPARE(ge, >=)
#undef HT_COMPARE

// a number on the left compares the other way round: 2 < x is x > 2
Tensor operator==(Scalar s, const Tensor& a) { return eq(a, s); }
Tensor operator!=(Scalar s, const Tensor& a) { return ne(a, s); }
Tensor operator<(Scalar s, const Tensor& a) { return gt(a, s); }
Tensor operator<=(Scalar s, const Tensor& a) { return ge(a, s); }
Tensor operator>(Scalar s, const Tensor& a) { return lt(a, s); }
Tensor operator>=(Scalar s, const Tensor& a) { return le(a, s); }

}  // namespace ht
