// Recording in-place ops: the written tensor takes the op's history, and PyTorch's node names.
#include <cctype>
#include <map>

#include "core/autograd.h"

namespace ht::autograd {

namespace {
// Nodes whose output shares its input's storage: an in-place write through one would have to rewrite the
// base's history too.
bool is_view_node(const std::string& name) {
  static const char* const kViews[] = {"view", "reshape", "squeeze", "unsqueeze", "permute", "slice", "expand",
                                       "as_strided", "select", "transpose"};
  for (const char* v : kViews)
    if (name == v) return true;
  return false;
}
}  // namespace

void check_in_place_allowed(const Tensor& t, const char* op) {
  HT_CHECK(t.defined(), "[", op, "] expected a defined tensor, got an undefined one");
  if (!grad_enabled() || !t.requires_grad()) return;
  HT_CHECK(!t.is_leaf(), "[", op,
           "] a leaf Variable that requires grad is being used in an in-place operation; wrap it in NoGradGuard");
  HT_CHECK(!is_view_node(t.grad_fn()->name), "[", op, "] the tensor is a view (", t.grad_fn()->name,
           ") of a tensor that requires grad; halftorch does not record in-place writes through views: clone() it "
           "or write the base tensor");
}

void check_not_partial_view(const Tensor& t, const char* op) {
  if (!grad_enabled() || t.requires_grad()) return;
  bool whole = t.storage_offset() == 0 && t.nbytes() == t.storage()->nbytes();
  HT_CHECK(whole, "[", op, "] writing a tensor that requires grad into a view of part of another tensor is not ",
           "recorded by halftorch (the viewed tensor would not see the history); build the result with cat instead");
}

Tensor history_of(const Tensor& t) { return Tensor(std::make_shared<TensorImpl>(*t.impl())); }

void take_history(const Tensor& t, const Tensor& result) {
  if (!result.grad_fn()) return;
  t.impl()->grad_fn = result.grad_fn();
  t.impl()->requires_grad = true;
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
      {"fill_", "FillBackward2"}, {"zero_", "ZeroBackward0"}, {"as_strided", "AsStridedBackward0"},
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
