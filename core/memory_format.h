// MemoryFormat: PyTorch's names for how a logical NCHW tensor lies in memory, and the stride rules behind them
// (c10/core/MemoryFormat.h, TensorImpl's contiguity flags, TensorIterator's output layout). Shape math only.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <vector>

namespace ht {

using Shape = std::vector<int64_t>;

// ChannelsLast: NHWC strides {H*W*C, 1, W*C, C} on a logical 4-D NCHW tensor. Preserve: keep the source's
// layout (clone, empty_like, to), as torch.preserve_format does.
enum class MemoryFormat : uint8_t { Contiguous, ChannelsLast, Preserve };

const char* memory_format_name(MemoryFormat format);  // "torch.contiguous_format", "torch.channels_last", ...
std::ostream& operator<<(std::ostream& os, MemoryFormat format);

// Row-major strides; a dim of size 0 counts as 1.
Shape contiguous_strides(const Shape& sizes);
// The strides of a new tensor in `format`: Contiguous, or ChannelsLast (4-D only; "[op] required rank 4 ...").
Shape strides_for(const Shape& sizes, MemoryFormat format, const char* op);
// Whether sizes/strides are contiguous in `format`; a dim of size 1 may have any stride. Preserve asks for
// row-major, as PyTorch's is_contiguous(torch.preserve_format) does.
bool is_contiguous_strides(const Shape& sizes, const Shape& strides, MemoryFormat format);
// c10's is_channels_last_strides_2d, behind suggest_memory_format: 4-D strides ordered C <= W <= H <= N, dense
// or not; the ambiguous N111 and permuted 1C1W cases count as NCHW.
bool is_channels_last_strides(const Shape& sizes, const Shape& strides);
// Every element at its own offset and the offsets filling [0, numel): a permutation of a contiguous tensor.
bool is_non_overlapping_and_dense(const Shape& sizes, const Shape& strides);
// The strides torch.preserve_format gives a copy: the same ones for a dense source, else dense strides in the
// source's stride order (PyTorch's infer_dense_strides), so a slice of a channels_last tensor copies to one.
Shape preserved_strides(const Shape& sizes, const Shape& strides);

// One input of an elementwise op, in argument order.
struct OperandLayout {
  const Shape& sizes;
  const Shape& strides;
};
// The strides of the output of an elementwise op over `inputs` broadcast to `shape`, by PyTorch's
// TensorIterator rule: inputs of one shape that are all contiguous, all channels_last or all dense with equal
// strides give that layout; otherwise the dims are sorted by the first input whose strides order them (0-strided,
// broadcast dims defer to the next input), and the output is dense in that order.
Shape elementwise_strides(const Shape& shape, std::initializer_list<OperandLayout> inputs);

// The dims from the largest stride to the smallest: a dense tensor permuted by it is row-major, which is what
// the elementwise kernels vectorise.
Shape stride_order(const Shape& strides);

}  // namespace ht
