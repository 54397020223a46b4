// Recording in-place ops: what PyTorch refuses, the history an op keeps of its inputs, and PyTorch's node names.
#include <cctype>
#include <map>

#include "core/autograd.h"

namespace ht::autograd {

void check_in_place_allowed(const Tensor& t, const char* op) {
  HT_CHECK(t.defined(), "[", op, "] expected a defined tensor, got an undefined one");
  if (!grad_enabled()) return;
  HT_CHECK(!(t.is_leaf() && t.requires_grad()), "[", op,
           "] a leaf Variable that requires grad is being used in an in-place operation; wrap it in NoGradGuard");
  const auto& base = t.impl()->view_base;
  HT_CHECK(!(base && base->requires_grad && !base->grad_fn), "[", op,
           "] a view of a leaf Variable that requires grad is being used in an in-place operation; wrap it in "
           "NoGradGuard");
}

void check_not_partial_view(const Tensor& t, const char* op) {
  if (!grad_enabled() || t.requires_grad() || t.impl()->view_base) return;
  bool whole = t.storage_offset() == 0 && t.nbytes() == t.storage()->nbytes();
  HT_CHECK(whole, "[", op, "] writing a tensor that requires grad into part of a storage that is not a view made ",
           "by a tensor op is not recorded (the rest of the storage would not see the history); build the result "
           "with cat instead");
}

Tensor without_values(const Tensor& t) {
  Tensor h = history_of(t);
  h.impl()->storage = std::make_shared<Storage>(size_t(0), t.device());
  return h;
}

Tensor history_of(const Tensor& t) {
  auto h = std::make_shared<TensorImpl>();
  h->storage = t.storage();
  h->offset = t.storage_offset();
  h->sizes = t.sizes();
  h->strides = t.strides();
  h->dtype = t.dtype();
  h->requires_grad = t.requires_grad();
  h->grad_fn = t.grad_fn();
  return Tensor(h);
}

std::string pytorch_node_name(const std::string& name) {
  // the names torch 2.x gives the same ops (grad_fn.name()); the rest follow its pattern, Name + "Backward0"
  static const std::map<std::string, std::string> kNames = {
      {"rsub", "RsubBackward1"}, {"rdiv", "MulBackward0"}, {"square", "PowBackward0"},
      {"clamp", "ClampBackward1"}, {"sum_dim", "SumBackward1"}, {"mean_dim", "MeanBackward1"},
      {"max", "MaxBackward1"}, {"min", "MinBackward1"}, {"max_dim", "MaxBackward0"},
      {"min_dim", "MinBackward0"}, {"matmul", "MmBackward0"}, {"log_softmax", "LogSoftmaxBackward0"},
      {"reshape", "ViewBackward0"}, {"squeeze", "SqueezeBackward1"}, {"to_dtype", "ToCopyBackward0"},
      {"to_device", "ToCopyBackward0"}, {"conv2d", "ConvolutionBackward0"},
      {"max_pool2d", "MaxPool2DWithIndicesBackward0"}, {"adaptive_avg_pool2d", "AdaptiveAvgPool2DBackward0"},
      {"batch_norm", "NativeBatchNormBackward0"}, {"copy_", "torch::autograd::CopyBackwards"},
      {"fill_", "FillBackward2"}, {"copy_slices", "torch::autograd::CopySlices"}, {"squeeze_all", "SqueezeBackward0"}, {"t", "TBackward0"},
      {"split", "SplitBackward0"}, {"split_with_sizes", "SplitWithSizesBackward0"}, {"linear", "AddmmBackward0"}, {"index_put", "IndexPutBackward0"}, {"zero_", "ZeroBackward0"}, {"as_strided", "AsStridedBackward0"},
  };
  if (auto it = kNames.find(name); it != kNames.end()) return it->second;
  std::string out;
  bool upper = true;
  for (char c : name) {
    if (c == '_') {
      upper = true;
      continue;
    }
    out += upper ? char(std::toupper(static_cast<unsigned char>(c))) : c;
    upper = false;
  }
  return out + "Backward0";
}

}  // namespace ht::autograd
