// Memory formats: the stride rules of c10's MemoryFormat.h / TensorImpl and of ATen's TensorIterator, kept
// exact (down to the strides of size-1 dims) so that layouts match PyTorch's and survive a torch.save round trip.
#include "core/memory_format.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"

namespace ht {

const char* memory_format_name(MemoryFormat format) {
  switch (format) {
    case MemoryFormat::Contiguous: return "torch.contiguous_format";
    case MemoryFormat::ChannelsLast: return "torch.channels_last";
    case MemoryFormat::Preserve: return "torch.preserve_format";
  }
  return "unknown";
}

std::ostream& operator<<(std::ostream& os, MemoryFormat format) { return os << memory_format_name(format); }

Shape contiguous_strides(const Shape& sizes) {
  Shape st(sizes.size());
  int64_t acc = 1;
  for (int64_t d = int64_t(sizes.size()) - 1; d >= 0; --d) {
    st[d] = acc;
    acc *= std::max<int64_t>(sizes[d], 1);
  }
  return st;
}

Shape strides_for(const Shape& sizes, MemoryFormat format, const char* op) {
  HT_CHECK(format != MemoryFormat::Preserve, "[", op, "] unsupported memory format ", format,
           " (it needs a tensor to preserve the layout of)");
  if (format == MemoryFormat::Contiguous) return contiguous_strides(sizes);
  HT_CHECK(sizes.size() == 4, "[", op, "] required rank 4 tensor to use channels_last format, got ", sizes.size(),
           " dims");
  // NHWC: C fastest, then W, H, N (c10's get_channels_last_strides_2d, sizes of 0 counting as 1)
  auto at_least_1 = [](int64_t s) { return std::max<int64_t>(s, 1); };
  Shape st(4);
  st[1] = 1;
  st[3] = at_least_1(sizes[1]);
  st[2] = st[3] * at_least_1(sizes[3]);
  st[0] = st[2] * at_least_1(sizes[2]);
  return st;
}

bool is_contiguous_strides(const Shape& sizes, const Shape& strides, MemoryFormat format) {
  if (format == MemoryFormat::ChannelsLast) {
    if (sizes.size() != 4) return false;
    int64_t expected = 1;
    for (int d : {1, 3, 2, 0}) {
      if (sizes[d] == 1) continue;
      if (strides[d] != expected) return false;
      expected *= sizes[d];
    }
    return true;
  }
  // PyTorch: an empty tensor is contiguous, whatever its strides
  if (std::find(sizes.begin(), sizes.end(), 0) != sizes.end()) return true;
  int64_t expected = 1;
  for (int64_t d = int64_t(sizes.size()) - 1; d >= 0; --d) {
    if (sizes[d] == 1) continue;
    if (strides[d] != expected) return false;
    expected *= sizes[d];
  }
  return true;
}

bool is_channels_last_strides(const Shape& sizes, const Shape& strides) {
  if (sizes.size() != 4 || strides[1] == 0) return false;  // a 0-strided C defaults to NCHW
  int64_t min = 0;
  for (int d : {1, 3, 2, 0}) {
    if (sizes[d] == 0 || strides[d] < min) return false;
    // N111 with equal strides (a contiguous N111, or an N11W sliced on W) stays NCHW: the flaw of inferring a
    // format from strides, resolved toward the default
    if (d == 0 && min == strides[1]) return false;
    // multiplying by the size tells N1H1 apart ([H,1,1,1] channels_last, [H,H,1,1] contiguous) and keeps a
    // permuted 1C1W from reading as channels_last
    min = strides[d];
    if (sizes[d] > 1) min *= sizes[d];
  }
  return true;
}

bool is_non_overlapping_and_dense(const Shape& sizes, const Shape& strides) {
  // PyTorch's flag is contiguous || channels_last || computed, and an empty tensor is contiguous
  if (is_contiguous_strides(sizes, strides, MemoryFormat::Contiguous)) return true;
  if (is_contiguous_strides(sizes, strides, MemoryFormat::ChannelsLast)) return true;
  const size_t n = sizes.size();
  if (n == 1) return sizes[0] < 2 || strides[0] == 1;
  std::vector<size_t> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  // by stride, the dims of size 0 and 1 last: they place no element
  std::sort(perm.begin(), perm.end(), [&](size_t a, size_t b) {
    if (sizes[a] < 2) return false;
    if (sizes[b] < 2) return true;
    return strides[a] < strides[b];
  });
  int64_t required = 1;
  for (size_t d : perm) {
    if (sizes[d] < 2) return true;
    if (strides[d] != required) return false;
    required *= sizes[d];
  }
  return true;
}

namespace {

// TensorIterator's reorder_dimensions: dims from the fastest to the slowest, decided by each pair's first
// operand with a strict stride order; equal strides are broken by size, 0 strides defer to the next operand.
// A stable insertion sort, so undecided pairs keep the row-major order.
std::vector<size_t> fastest_first(const Shape& shape, const std::vector<Shape>& operand_strides) {
  const size_t n = shape.size();
  std::vector<size_t> perm(n);
  for (size_t i = 0; i < n; ++i) perm[i] = n - 1 - i;
  auto should_swap = [&](size_t d0, size_t d1) {
    for (const Shape& st : operand_strides) {
      int64_t s0 = st[d0], s1 = st[d1];
      if (s0 == 0 || s1 == 0) continue;
      if (s0 < s1) return -1;
      if (s0 > s1) return 1;
      if (shape[d0] > shape[d1]) return 1;
    }
    return 0;
  };
  for (size_t i = 1; i < n; ++i) {
    size_t d1 = i;
    for (size_t d0 = i; d0-- > 0;) {
      int c = should_swap(perm[d0], perm[d1]);
      if (c > 0) {
        std::swap(perm[d0], perm[d1]);
        d1 = d0;
      } else if (c < 0) {
        break;
      }
    }
  }
  return perm;
}

bool is_row_major_order(const std::vector<size_t>& perm) {
  for (size_t i = 0; i < perm.size(); ++i)
    if (perm[i] != perm.size() - 1 - i) return false;
  return true;
}

}  // namespace

Shape preserved_strides(const Shape& sizes, const Shape& strides) {
  if (is_non_overlapping_and_dense(sizes, strides)) return strides;
  // infer_dense_strides: the one-operand order, sizes 0 and 1 not advancing the stride
  std::vector<size_t> perm = fastest_first(sizes, {strides});
  Shape out(sizes.size());
  int64_t next = 1;
  for (size_t d : perm) {
    out[d] = next;
    if (sizes[d] > 1) next *= sizes[d];
  }
  return out;
}

Shape elementwise_strides(const Shape& shape, std::initializer_list<OperandLayout> inputs) {
  // fast setup: every input of the output's shape (a 0-dim input among tensors rules it out, as in PyTorch)
  bool same_shape = true, contiguous = true, channels_last = true, dense = true;
  for (const OperandLayout& in : inputs) {
    same_shape = same_shape && in.sizes == shape;
    contiguous = contiguous && is_contiguous_strides(in.sizes, in.strides, MemoryFormat::Contiguous);
    channels_last = channels_last && is_contiguous_strides(in.sizes, in.strides, MemoryFormat::ChannelsLast);
    dense = dense && is_non_overlapping_and_dense(in.sizes, in.strides) && in.strides == inputs.begin()->strides;
  }
  if (same_shape && inputs.size() > 0) {
    if (contiguous) return contiguous_strides(shape);
    if (channels_last) return strides_for(shape, MemoryFormat::ChannelsLast, "elementwise");
    if (dense) return inputs.begin()->strides;
  }
  // broadcast dims (size 1 against a larger size, or missing in front) get stride 0 and defer the choice
  const size_t n = shape.size();
  std::vector<Shape> broadcast;
  for (const OperandLayout& in : inputs) {
    Shape st(n, 0);
    size_t lead = n - in.sizes.size();
    for (size_t i = 0; i < in.sizes.size(); ++i)
      st[lead + i] = in.sizes[i] == 1 && shape[lead + i] != 1 ? 0 : in.strides[i];
    broadcast.push_back(std::move(st));
  }
  std::vector<size_t> perm = fastest_first(shape, broadcast);
  if (is_row_major_order(perm)) return contiguous_strides(shape);
  Shape out(n);
  int64_t next = 1;
  for (size_t d : perm) {
    out[d] = next;
    next *= shape[d];
  }
  return out;
}

Shape stride_order(const Shape& strides) {
  Shape order(strides.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return strides[a] > strides[b]; });
  return order;
}

}  // namespace ht
