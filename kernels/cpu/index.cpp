// CPU backend of the index kernels: the shared bodies (kernels/index_bodies.h) through the CPU executor.
#include "kernels/backends.h"
#include "kernels/cpu/executor.h"
#include "kernels/index_bodies.h"

namespace ht::kernels::cpu {

using Ix = IndexKernels<Executor>;

void gather(const RawView& src, int64_t dim, const RawView& index, const RawView& out) {
  Ix::gather(src, dim, index, out);
}
void scatter(const RawView& dst, int64_t dim, const RawView& index, const RawView& src, bool accumulate) {
  Ix::scatter(dst, dim, index, src, accumulate);
}
void sort_rows(const RawView& values, const RawView& indices, const RawView& scratch_values,
               const RawView& scratch_indices, int64_t rows, int64_t cols, bool descending) {
  Ix::sort_rows(values, indices, scratch_values, scratch_indices, rows, cols, descending);
}
void cumsum(const RawView& in, int64_t dim, const RawView& out, bool reverse) { Ix::cumsum(in, dim, out, reverse); }

}  // namespace ht::kernels::cpu
