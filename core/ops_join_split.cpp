// Joining and splitting along a dim: stack, split (equal parts or given sizes), chunk, narrow. Splits are views
// (SplitBackward0 as in PyTorch); stack is one node over its inputs (StackBackward0).
#include "core/autograd.h"
#include "core/ops.h"

namespace ht {

namespace {
int64_t dim_size(const Tensor& x, int64_t dim, const char* op) {
  HT_CHECK(x.dim() > 0, "[", op, "] expected a tensor with at least one dimension");
  return x.size(wrap_dim(dim, x.dim(), op));
}
}  // namespace

Tensor stack(const std::vector<Tensor>& xs, int64_t dim) {
  HT_CHECK(!xs.empty(), "[stack] expects a non-empty list of tensors");
  int64_t d = wrap_dim(dim, xs[0].dim() + 1, "stack");
  std::vector<Tensor> parts;
  for (size_t i = 0; i < xs.size(); ++i) {
    HT_CHECK(xs[i].sizes() == xs[0].sizes(), "[stack] expects each tensor to be equal size, but got ",
             shape_str(xs[0].sizes()), " at entry 0 and ", shape_str(xs[i].sizes()), " at entry ", i);
    parts.push_back(xs[i].detach().unsqueeze(d));
  }
  Tensor out;
  {
    NoGradGuard no_grad;
    out = cat(parts, d);
  }
  return autograd::record("stack", out, xs, [d](const autograd::Inputs& in, const Tensor&, const Tensor& g) {
    autograd::Grads gs;
    for (size_t i = 0; i < in.size(); ++i) gs.push_back(g.select(d, int64_t(i)).to(in[i].dtype()));
    return gs;
  });
}

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim) {
  int64_t n = dim_size(x, dim, "split");
  HT_CHECK(split_size > 0 || (split_size == 0 && n == 0), "[split] split_size must be positive, got ", split_size);
  std::vector<Tensor> out;
  for (int64_t start = 0; start < n; start += split_size)
    out.push_back(detail::slice_as(x, dim, start, std::min(start + split_size, n), 1, "split"));
  if (out.empty()) out.push_back(x);
  return out;
}
std::vector<Tensor> split(const Tensor& x, Shape split_sizes, int64_t dim) {
  int64_t n = dim_size(x, dim, "split"), total = 0;
  for (int64_t s : split_sizes) total += s;
  HT_CHECK(total == n, "[split] split_with_sizes expects split_sizes to sum exactly to ", n,
           " (input tensor's size at dimension ", dim, "), but got split_sizes=", shape_str(split_sizes));
  std::vector<Tensor> out;
  int64_t start = 0;
  for (int64_t s : split_sizes) {
    HT_CHECK(s >= 0, "[split] split_with_sizes expects non-negative sizes, got ", shape_str(split_sizes));
    out.push_back(detail::slice_as(x, dim, start, start + s, 1, "split_with_sizes"));
    start += s;
  }
  return out;
}
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  HT_CHECK(chunks > 0, "[chunk] number of chunks must be positive, got ", chunks);
  int64_t n = dim_size(x, dim, "chunk");
  return split(x, (n + chunks - 1) / chunks, dim);
}
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) { return x.narrow(dim, start, length); }

}  // namespace ht
