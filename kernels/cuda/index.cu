// CUDA backend of the index kernels: the shared bodies (kernels/index_bodies.h) through the grid-stride
// executor (kernels/cuda/executor.cuh).
#include "kernels/backends.h"
#include "kernels/cuda/executor.cuh"
#include "kernels/index_bodies.h"

namespace ht::kernels::cuda {

using Ix = IndexKernels<Executor>;

void gather(const RawView& src, int64_t dim, const RawView& index, const RawView& out) {
  set_device(out.device.index);
  Ix::gather(src, dim, index, out);
}
void scatter(const RawView& dst, int64_t dim, const RawView& index, const RawView& src, bool accumulate) {
  set_device(dst.device.index);
  Ix::scatter(dst, dim, index, src, accumulate);
}
void sort_rows(const RawView& values, const RawView& indices, const RawView& scratch_values,
               const RawView& scratch_indices, int64_t rows, int64_t cols, bool descending) {
  set_device(values.device.index);
  Ix::sort_rows(values, indices, scratch_values, scratch_indices, rows, cols, descending);
}
void cumsum(const RawView& in, int64_t dim, const RawView& out, bool reverse) {
  set_device(out.device.index);
  Ix::cumsum(in, dim, out, reverse);
}

}  // namespace ht::kernels::cuda
