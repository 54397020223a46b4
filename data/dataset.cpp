#include "data/dataset.h"

#include "core/error.h"

namespace ht::data {

TensorDataset::TensorDataset(Tensor data, Tensor target) : data_(data.contiguous()), target_(target.contiguous()) {
  HT_CHECK(data_.dim() >= 1 && target_.dim() >= 1 && data_.size(0) == target_.size(0),
           "[TensorDataset] expected data and target with the same first dimension, got ", shape_str(data_.sizes()),
           " and ", shape_str(target_.sizes()));
  HT_CHECK(data_.device().is_cpu() && target_.device().is_cpu(),
           "[TensorDataset] expected CPU tensors");
}

Example TensorDataset::get(int64_t index) const {
  HT_CHECK(index >= 0 && index < size(), "[TensorDataset] index ", index, " out of range for size ", size());
  return {data_.select(0, index), target_.select(0, index)};
}

}  // namespace ht::data
