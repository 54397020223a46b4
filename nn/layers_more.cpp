// Constructors of nn/layers_more.h: parameters registered under PyTorch's names with its initial values.
#include "nn/layers_more.h"

#include "nn/init.h"

namespace ht::nn {

LayerNorm::LayerNorm(Shape shape, double eps, bool affine) : normalized_shape(std::move(shape)), eps(eps) {
  HT_CHECK(!normalized_shape.empty(), "[LayerNorm] expected a non-empty normalized_shape");
  if (affine) {
    weight = register_parameter("weight", ones(normalized_shape));
    bias = register_parameter("bias", zeros(normalized_shape));
  }
}

GroupNorm::GroupNorm(int64_t groups, int64_t channels, double eps, bool affine)
    : num_groups(groups), num_channels(channels), eps(eps) {
  HT_CHECK(groups > 0 && channels % groups == 0, "[GroupNorm] num_channels must be divisible by num_groups, got ",
           channels, " and ", groups);
  if (affine) {
    weight = register_parameter("weight", ones({channels}));
    bias = register_parameter("bias", zeros({channels}));
  }
}

Embedding::Embedding(int64_t n, int64_t dim) : num_embeddings(n), embedding_dim(dim) {
  HT_CHECK(n >= 0 && dim >= 0, "[Embedding] expected non-negative sizes, got ", n, " and ", dim);
  Tensor w = empty({n, dim});
  init::normal_(w);
  weight = register_parameter("weight", w);
}

Dropout2d::Dropout2d(double p) : p(p) {
  HT_CHECK(p >= 0.0 && p <= 1.0, "[Dropout2d] dropout probability has to be between 0 and 1, but got ", p);
}

Tensor LossModule::forward(const Tensor&) {
  fail("[", type_name(), "] a loss module takes (input, target)");
}

}  // namespace ht::nn
