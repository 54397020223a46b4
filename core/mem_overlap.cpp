// PyTorch's memory-overlap checks (aten/src/ATen/MemoryOverlap.cpp): has_internal_overlap, get_overlap_status
// and the assertions in-place ops make with them.
#include "core/mem_overlap.h"

namespace ht::detail {

MemOverlap has_internal_overlap(const Tensor& t) {
  if (t.is_non_overlapping_and_dense()) return MemOverlap::No;
  for (int64_t d = 0; d < t.dim(); ++d)
    if (t.stride(d) == 0 && t.size(d) > 1) return MemOverlap::Yes;
  return MemOverlap::TooHard;
}

MemOverlapStatus overlap_status(const Tensor& a, const Tensor& b) {
  if (a.same(b)) return MemOverlapStatus::Full;
  if (a.numel() == 0 || b.numel() == 0) return MemOverlapStatus::No;
  if (!a.is_non_overlapping_and_dense() || !b.is_non_overlapping_and_dense()) return MemOverlapStatus::TooHard;
  if (a.storage() != b.storage()) return MemOverlapStatus::No;
  // dense: each covers the bytes from its first element to its last, and nothing else
  const char* a_begin = static_cast<const char*>(a.raw_data());
  const char* b_begin = static_cast<const char*>(b.raw_data());
  const char* a_end = a_begin + a.nbytes();
  const char* b_end = b_begin + b.nbytes();
  if (a_begin == b_begin && a_end == b_end)
    return a.strides() == b.strides() ? MemOverlapStatus::Full : MemOverlapStatus::Partial;
  if (a_begin < b_end && b_begin < a_end) return MemOverlapStatus::Partial;
  return MemOverlapStatus::No;
}

void check_write_overlap(const Tensor& self, const char* op, const WriteOverlap& rules) {
  const Tensor& written = rules.written.defined() ? rules.written : self;
  HT_CHECK(rules.allow_internal_overlap || has_internal_overlap(written) != MemOverlap::Yes, "[", op,
           "] unsupported operation: more than one element of the written-to tensor refers to a single memory "
           "location. Please clone() the tensor before performing the operation.");
  auto fail_shared = [op] {
    fail("[", op, "] unsupported operation: some elements of the input tensor and the written-to tensor refer to a "
         "single memory location. Please clone() the tensor before performing the operation.");
  };
  for (const Tensor& in : rules.no_partial_overlap)
    if (in.defined() && overlap_status(written, in) == MemOverlapStatus::Partial) fail_shared();
  for (const Tensor& in : rules.no_overlap) {
    if (!in.defined()) continue;
    MemOverlapStatus s = overlap_status(written, in);
    if (s == MemOverlapStatus::Partial || s == MemOverlapStatus::Full) fail_shared();
  }
}

}  // namespace ht::detail
