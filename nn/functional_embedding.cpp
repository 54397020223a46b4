// embedding: rows of the weight picked by index (index_select, whose backward sums repeated rows' gradients).
#include "core/ops.h"
#include "nn/functional.h"

namespace ht::nn::functional {

Tensor embedding(const Tensor& indices, const Tensor& weight) {
  HT_CHECK(weight.dim() == 2, "[embedding] expected a 2-d weight, got ", shape_str(weight.sizes()));
  HT_CHECK(indices.dtype() == kInt64 || indices.dtype() == kInt32, "[embedding] expected int64 indices, got ",
           dtype_name(indices.dtype()));
  Shape out = indices.sizes();
  out.push_back(weight.size(1));
  return index_select(weight, 0, indices.reshape({-1})).reshape(out);
}

}  // namespace ht::nn::functional
