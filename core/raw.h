// Turns tensors into the raw strided views kernels/ works on (internal to core).
#pragma once
#include "core/tensor.h"
#include "kernels/kernels.h"

namespace ht::detail {

inline kernels::RawView raw(const Tensor& t, const char* op = "kernel") {
  HT_CHECK(t.dim() <= kernels::kMaxDims, "[", op, "] tensors of more than ", kernels::kMaxDims,
           " dims are not supported, got ", t.dim());
  kernels::RawView v;
  v.data = t.raw_data();
  v.dtype = t.dtype();
  v.device = t.device();
  v.ndim = int(t.dim());
  for (int d = 0; d < v.ndim; ++d) {
    v.sizes[d] = t.sizes()[d];
    v.strides[d] = t.strides()[d];
  }
  return v;
}

// `t` viewed with `shape` by broadcasting (stride 0 on expanded dims).
inline kernels::RawView raw_broadcast(const Tensor& t, const Shape& shape, const char* op) {
  return raw(t.dim() == int64_t(shape.size()) && t.sizes() == shape ? t : t.detach().expand(shape), op);
}

}  // namespace ht::detail
