// Host-device bodies of the ops that pick elements by index along one dim (gather, scatter, and through them
// index_select and its backward), sort along rows, and the cumulative sum. The CPU and CUDA executors run these
// same bodies over any dtype, so int64 values stay exact and 16-bit floats need no float64 image.
#pragma once
#include <cstdint>

#include "kernels/functors.h"
#include "kernels/kernels.h"

namespace ht::kernels {

// Positions of an index tensor's shape in three strided tensors along `dim`: the index itself, the tensor its
// values point into along dim ("indexed": gather's source, scatter's destination), and the tensor at the index's
// own positions ("paired": gather's output, scatter's source). The indexed tensor's offset leaves dim out: the
// index value supplies that coordinate.
struct AlongDim {
  int ndim = 0, dim = 0;
  int64_t sizes[kMaxDims] = {};
  int64_t index_strides[kMaxDims] = {}, indexed_strides[kMaxDims] = {}, paired_strides[kMaxDims] = {};

  // Offsets of linear position i, row-major over sizes; with `lines` the dim's coordinate is left out of i
  // (i numbers the lines along dim) and taken as 0.
  HT_HD void offsets(int64_t i, bool lines, int64_t& index, int64_t& indexed, int64_t& paired) const {
    index = indexed = paired = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      if (lines && d == dim) continue;
      int64_t c = i % sizes[d];
      i /= sizes[d];
      index += c * index_strides[d];
      paired += c * paired_strides[d];
      if (d != dim) indexed += c * indexed_strides[d];
    }
  }
  HT_HD int64_t lines() const {
    int64_t n = 1;
    for (int d = 0; d < ndim; ++d)
      if (d != dim) n *= sizes[d];
    return n;
  }
};

// out(p) = src(p with dim := index(p)), for every position p of the index.
template <class T, class I>
struct GatherBody {
  AlongDim at;
  const T* src; const I* index; T* out;
  HT_HD void operator()(int64_t p) const {
    int64_t oi, os, oo;
    at.offsets(p, false, oi, os, oo);
    out[oo] = src[os + int64_t(index[oi]) * at.indexed_strides[at.dim]];
  }
};

// dst(p with dim := index(p)) = src(p), or += with `accumulate`. One call walks one line along dim in order,
// and lines never write the same element (they differ outside dim): no atomics, and the same result on every
// device and thread count (the last of repeated indices wins; sums add in index order).
template <class T, class I>
struct ScatterLineBody {
  AlongDim at;
  T* dst; const I* index; const T* src;
  bool accumulate;
  HT_HD void operator()(int64_t line) const {
    using A = opmath_t<T>;
    int64_t oi, od, os;
    at.offsets(line, true, oi, od, os);
    int64_t n = at.sizes[at.dim];
    for (int64_t j = 0; j < n; ++j) {
      T& d = dst[od + int64_t(index[oi + j * at.index_strides[at.dim]]) * at.indexed_strides[at.dim]];
      T s = src[os + j * at.paired_strides[at.dim]];
      d = accumulate ? T(A(d) + A(s)) : s;
    }
  }
};

// The order torch.sort gives: NaN above every number; `descending` reverses it. Equal keys keep their order.
template <class A>
HT_HD inline bool sorts_before(A a, A b, bool descending) {
  if (descending) {
    A t = a;
    a = b;
    b = t;
  }
  if (m_isnan(b)) return !m_isnan(a);
  return !m_isnan(a) && a < b;
}

// Stable bottom-up merge sort of row r of contiguous [rows, cols] values, with the original positions as int64
// indices; scratch buffers of the same shape hold the other half of each merge pass.
template <class T>
struct SortRowBody {
  T* values; int64_t* indices; T* scratch_values; int64_t* scratch_indices;
  int64_t cols;
  bool descending;
  HT_HD void operator()(int64_t r) const {
    using A = opmath_t<T>;
    T* v = values + r * cols;
    int64_t* ix = indices + r * cols;
    T* sv = scratch_values + r * cols;
    int64_t* si = scratch_indices + r * cols;
    for (int64_t j = 0; j < cols; ++j) ix[j] = j;
    for (int64_t width = 1; width < cols; width *= 2) {
      for (int64_t lo = 0; lo < cols; lo += 2 * width) {
        int64_t mid = lo + width < cols ? lo + width : cols;
        int64_t hi = lo + 2 * width < cols ? lo + 2 * width : cols;
        int64_t a = lo, b = mid;
        for (int64_t k = lo; k < hi; ++k) {
          // the right run's element goes first only when strictly before: stable
          bool right = a >= mid || (b < hi && sorts_before(A(v[b]), A(v[a]), descending));
          int64_t from = right ? b++ : a++;
          sv[k] = v[from];
          si[k] = ix[from];
        }
      }
      T* tv = v; v = sv; sv = tv;
      int64_t* ti = ix; ix = si; si = ti;
    }
    if (v != values + r * cols)
      for (int64_t j = 0; j < cols; ++j) {
        sv[j] = v[j];
        si[j] = ix[j];
      }
  }
};

// out = running sum of in along dim (from the end with `reverse`), accumulated in opmath; one call per line.
template <class T>
struct CumsumLineBody {
  AlongDim at;  // index_strides: in's, paired_strides: out's
  const T* in; T* out;
  bool reverse;
  HT_HD void operator()(int64_t line) const {
    using A = opmath_t<T>;
    int64_t oi, unused, oo;
    at.offsets(line, true, oi, unused, oo);
    int64_t n = at.sizes[at.dim];
    A acc = A(0);
    for (int64_t jj = 0; jj < n; ++jj) {
      int64_t j = reverse ? n - 1 - jj : jj;
      acc = acc + A(in[oi + j * at.index_strides[at.dim]]);
      out[oo + j * at.paired_strides[at.dim]] = T(acc);
    }
  }
};

// The shared launches: Executor provides run(n, body) (kernels/cpu/executor.h, kernels/cuda/executor.cuh).
template <class Executor>
struct IndexKernels {
  static AlongDim along(const RawView& index, int64_t dim, const RawView& indexed, const RawView& paired) {
    AlongDim at;
    at.ndim = index.ndim;
    at.dim = int(dim);
    for (int d = 0; d < index.ndim; ++d) {
      at.sizes[d] = index.sizes[d];
      at.index_strides[d] = index.strides[d];
      at.indexed_strides[d] = indexed.strides[d];
      at.paired_strides[d] = paired.strides[d];
    }
    return at;
  }
  template <class F>
  static void visit_index(const RawView& index, const char* op, F&& f) {
    if (index.dtype == kInt64) return f(TypeTag<int64_t>{});
    if (index.dtype == kInt32) return f(TypeTag<int32_t>{});
    fail("[", op, "] expected an int64 or int32 index, got ", dtype_name(index.dtype));
  }
  static void gather(const RawView& src, int64_t dim, const RawView& index, const RawView& out) {
    AlongDim at = along(index, dim, src, out);
    visit_dtype(src.dtype, [&](auto tag) {
      using T = typename decltype(tag)::type;
      visit_index(index, "gather", [&](auto itag) {
        using I = typename decltype(itag)::type;
        Executor::run(index.numel(), GatherBody<T, I>{at, static_cast<const T*>(src.data),
                                                      static_cast<const I*>(index.data), static_cast<T*>(out.data)});
      });
    });
  }
  static void scatter(const RawView& dst, int64_t dim, const RawView& index, const RawView& src, bool accumulate) {
    AlongDim at = along(index, dim, dst, src);
    if (index.numel() == 0) return;
    visit_dtype(dst.dtype, [&](auto tag) {
      using T = typename decltype(tag)::type;
      visit_index(index, "scatter", [&](auto itag) {
        using I = typename decltype(itag)::type;
        Executor::run(at.lines(), ScatterLineBody<T, I>{at, static_cast<T*>(dst.data), static_cast<const I*>(index.data),
                                                        static_cast<const T*>(src.data), accumulate});
      });
    });
  }
  static void sort_rows(const RawView& values, const RawView& indices, const RawView& scratch_values,
                        const RawView& scratch_indices, int64_t rows, int64_t cols, bool descending) {
    visit_dtype(values.dtype, [&](auto tag) {
      using T = typename decltype(tag)::type;
      Executor::run(rows, SortRowBody<T>{static_cast<T*>(values.data), static_cast<int64_t*>(indices.data),
                                         static_cast<T*>(scratch_values.data),
                                         static_cast<int64_t*>(scratch_indices.data), cols, descending});
    });
  }
  static void cumsum(const RawView& in, int64_t dim, const RawView& out, bool reverse) {
    AlongDim at = along(in, dim, out, out);
    if (in.numel() == 0) return;
    visit_dtype(in.dtype, [&](auto tag) {
      using T = typename decltype(tag)::type;
      Executor::run(at.lines(), CumsumLineBody<T>{at, static_cast<const T*>(in.data), static_cast<T*>(out.data), reverse});
    });
  }
};

}  // namespace ht::kernels
