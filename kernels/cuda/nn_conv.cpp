// CUDA convolution through cuDNN's legacy API: forward, backward-data and backward-filter, on dense NCHW or
// channels_last tensors (each given to cuDNN in its own layout, CUDNN_TENSOR_NHWC for channels_last; the
// output is written in the layout of the output view). 16-bit tensors run on tensor cores with float
// accumulation; float32 uses FMA math only (no TF32) and no FFT or Winograd algorithm, so that it matches the
// CPU within the tests' float32 tolerances. The algorithm is picked once per shape from cuDNN's heuristics
// (no benchmarking, no host sync) and cached with the math type it runs under (set on the descriptor before
// each call) and the workspace re-queried under that math type (PyTorch's note on cudnnFind / cudnnGet). The
// workspace comes from the caching allocator, freed back to it when the call returns (all work is on one
// stream). cuDNN's descriptors take int sizes and tensors below 2^31 elements, so a larger batch runs as
// several calls.
#include <cudnn.h>

#include <algorithm>
#include <climits>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "core/storage.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/layout.h"
#include "kernels/cuda/thread_handles.h"
#include "kernels/nn_backends.h"

#define HT_CUDNN_CHECK(expr)                                                                        \
  do {                                                                                              \
    cudnnStatus_t ht_st_ = (expr);                                                                  \
    if (ht_st_ != CUDNN_STATUS_SUCCESS) ::ht::fail("[cudnn] ", #expr, " failed: ", cudnnGetErrorString(ht_st_)); \
  } while (0)

namespace ht::kernels::cuda {

namespace {

constexpr size_t kMaxWorkspace = size_t(1) << 30;

cudnnHandle_t cudnn_handle(int device) {
  return thread_handle<cudnnHandle_t>(device, [](int dev) {
    set_device(dev);
    cudnnHandle_t h;
    HT_CUDNN_CHECK(cudnnCreate(&h));
    return h;
  });
}

cudnnDataType_t cudnn_type(DType t) {
  switch (t) {
    case kFloat32: return CUDNN_DATA_FLOAT;
    case kFloat16: return CUDNN_DATA_HALF;
    case kBFloat16: return CUDNN_DATA_BFLOAT16;
    case kFloat64: return CUDNN_DATA_DOUBLE;
    default: fail("[conv2d] expected a floating dtype, got ", dtype_name(t));
  }
}

int as_int(int64_t v, const char* what) {
  HT_CHECK(v >= 0 && v <= INT_MAX, "[conv2d] ", what, " ", v, " is beyond cuDNN's int range");
  return int(v);
}

cudnnTensorFormat_t format(bool channels_last) { return channels_last ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW; }

// The descriptors of one convolution over a batch of n, destroyed with it.
struct Descs {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, b = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  Descs(const Conv2dShape& s, DType t, bool nhwc, int64_t n) {
    cudnnDataType_t dt = cudnn_type(t);
    HT_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x));
    HT_CUDNN_CHECK(cudnnCreateTensorDescriptor(&y));
    HT_CUDNN_CHECK(cudnnCreateTensorDescriptor(&b));
    HT_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w));
    HT_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
    const int c_in = as_int(s.c_in, "input channels"), c_out = as_int(s.c_out, "output channels");
    HT_CUDNN_CHECK(cudnnSetTensor4dDescriptor(x, format(nhwc), dt, as_int(n, "batch"), c_in, as_int(s.h, "height"),
                                              as_int(s.w, "width")));
    HT_CUDNN_CHECK(cudnnSetTensor4dDescriptor(y, format(nhwc), dt, as_int(n, "batch"), c_out,
                                              as_int(s.out_h, "output height"), as_int(s.out_w, "output width")));
    HT_CUDNN_CHECK(cudnnSetTensor4dDescriptor(b, format(nhwc), dt, 1, c_out, 1, 1));
    HT_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w, dt, format(nhwc), c_out, as_int(s.c_in / s.groups, "channels"),
                                              as_int(s.kh, "kernel height"), as_int(s.kw, "kernel width")));
    cudnnDataType_t compute = t == kFloat64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
    HT_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv, as_int(s.pad_h, "padding"), as_int(s.pad_w, "padding"),
                                                   as_int(s.stride_h, "stride"), as_int(s.stride_w, "stride"),
                                                   as_int(s.dil_h, "dilation"), as_int(s.dil_w, "dilation"),
                                                   CUDNN_CROSS_CORRELATION, compute));
    HT_CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv, as_int(s.groups, "groups")));
    // what the heuristics rank for; the chosen algorithm's own math type is set before the call
    bool tensor_ops = t == kFloat16 || t == kBFloat16;
    HT_CUDNN_CHECK(cudnnSetConvolutionMathType(conv, tensor_ops ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH));
  }
  ~Descs() {
    cudnnDestroyTensorDescriptor(x);
    cudnnDestroyTensorDescriptor(y);
    cudnnDestroyTensorDescriptor(b);
    cudnnDestroyFilterDescriptor(w);
    cudnnDestroyConvolutionDescriptor(conv);
  }
  Descs(const Descs&) = delete;
  Descs& operator=(const Descs&) = delete;
};

// Per pass: cuDNN's heuristic ranking, the workspace of one algorithm, and the algorithms whose float32
// results are not within FMA rounding of a direct convolution (FFT and Winograd transforms).
template <class Perf> struct PassOps;
template <> struct PassOps<cudnnConvolutionFwdAlgoPerf_t> {
  static cudnnStatus_t rank(cudnnHandle_t h, const Descs& d, cudnnConvolutionFwdAlgoPerf_t* p, int n, int* r) {
    return cudnnGetConvolutionForwardAlgorithm_v7(h, d.x, d.w, d.conv, d.y, n, r, p);
  }
  static cudnnStatus_t workspace(cudnnHandle_t h, const Descs& d, int algo, size_t* bytes) {
    return cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.conv, d.y, cudnnConvolutionFwdAlgo_t(algo), bytes);
  }
  static bool transform(int a) {
    return a == CUDNN_CONVOLUTION_FWD_ALGO_FFT || a == CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING ||
           a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD || a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
  }
};
template <> struct PassOps<cudnnConvolutionBwdDataAlgoPerf_t> {
  static cudnnStatus_t rank(cudnnHandle_t h, const Descs& d, cudnnConvolutionBwdDataAlgoPerf_t* p, int n, int* r) {
    return cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d.w, d.y, d.conv, d.x, n, r, p);
  }
  static cudnnStatus_t workspace(cudnnHandle_t h, const Descs& d, int algo, size_t* bytes) {
    return cudnnGetConvolutionBackwardDataWorkspaceSize(h, d.w, d.y, d.conv, d.x, cudnnConvolutionBwdDataAlgo_t(algo),
                                                        bytes);
  }
  static bool transform(int a) {
    return a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING ||
           a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED;
  }
};
template <> struct PassOps<cudnnConvolutionBwdFilterAlgoPerf_t> {
  static cudnnStatus_t rank(cudnnHandle_t h, const Descs& d, cudnnConvolutionBwdFilterAlgoPerf_t* p, int n, int* r) {
    return cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.x, d.y, d.conv, d.w, n, r, p);
  }
  static cudnnStatus_t workspace(cudnnHandle_t h, const Descs& d, int algo, size_t* bytes) {
    return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, d.x, d.y, d.conv, d.w,
                                                          cudnnConvolutionBwdFilterAlgo_t(algo), bytes);
  }
  static bool transform(int a) {
    return a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT || a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING ||
           a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED;
  }
};

enum class Pass { Forward, BackwardData, BackwardFilter };

using Key = std::tuple<int, int, int, int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                       int64_t, int64_t, int64_t, int64_t, int64_t, int64_t>;
Key key_of(Pass p, const Conv2dShape& s, DType t, int device, bool nhwc, int64_t n) {
  return {int(p), int(t), device, int(nhwc), n, s.c_in, s.h, s.w, s.c_out, s.kh,
          s.kw, s.stride_h, s.stride_w, s.pad_h, s.pad_w, s.dil_h, s.dil_w, s.groups};
}

struct Choice {
  int algo = -1;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  size_t workspace = 0;
};

// The math type a ranked algorithm runs under. cuDNN may rank float32 algorithms under CUDNN_DEFAULT_MATH,
// which lets Ampere and later GPUs use TF32 tensor cores; float32 is pinned to FMA math instead (as PyTorch
// does with allow_tf32 off), so it keeps the CPU's float32 rounding. 16-bit and float64 keep the ranked one.
template <class Perf>
cudnnMathType_t math_for(const Perf& p, DType t) {
  return t == kFloat32 ? CUDNN_FMA_MATH : p.mathType;
}

// The first algorithm of cuDNN's ranking that is supported, fits the workspace limit and (for float32) is no
// transform; its workspace re-queried under the math type it will run with. Cached per shape and layout.
template <class Perf>
Choice choose(Pass pass, const Conv2dShape& s, DType t, int device, bool nhwc, int64_t n, cudnnHandle_t h,
              const Descs& d) {
  static std::mutex mu;
  static std::map<Key, Choice> cache;
  Key k = key_of(pass, s, t, device, nhwc, n);
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(k);
    if (it != cache.end()) return it->second;
  }
  Perf perf[32];
  int returned = 0;
  HT_CUDNN_CHECK(PassOps<Perf>::rank(h, d, perf, 32, &returned));
  Choice c;
  // float32 never takes a transform; it first passes over entries ranked for tensor cores (TF32), whose kernels
  // FMA math may not have, and takes one of them only when nothing else is left
  for (bool tensor_op_too : {false, true}) {
    for (int i = 0; i < returned && c.algo < 0; ++i) {
      const Perf& p = perf[i];
      if (p.status != CUDNN_STATUS_SUCCESS) continue;
      const bool tensor_op = p.mathType == CUDNN_TENSOR_OP_MATH || p.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
      if (t == kFloat32 && (PassOps<Perf>::transform(int(p.algo)) || (tensor_op && !tensor_op_too))) continue;
      const cudnnMathType_t math = math_for(p, t);
      HT_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv, math));
      size_t bytes = 0;
      cudnnStatus_t st = PassOps<Perf>::workspace(h, d, int(p.algo), &bytes);
      if (st != CUDNN_STATUS_SUCCESS || bytes > kMaxWorkspace) continue;
      c = {int(p.algo), math, bytes};
    }
    if (c.algo >= 0 || t != kFloat32) break;
  }
  HT_CHECK(c.algo >= 0, "[conv2d] cuDNN found no algorithm for input [", n, ", ", s.c_in, ", ", s.h, ", ", s.w,
           "], weight [", s.c_out, ", ", s.c_in / s.groups, ", ", s.kh, ", ", s.kw, "] (", dtype_name(t), ")");
  std::lock_guard<std::mutex> lock(mu);
  cache[k] = c;
  return c;
}

// alpha = 1, beta = 0 (or 1) in the type cuDNN wants for the data type.
struct Scalars {
  float f1 = 1, f0 = 0;
  double d1 = 1, d0 = 0;
  bool dbl;
  explicit Scalars(DType t) : dbl(t == kFloat64) {}
  const void* one() const { return dbl ? static_cast<const void*>(&d1) : &f1; }
  const void* zero() const { return dbl ? static_cast<const void*>(&d0) : &f0; }
};

// Where batch entries [n0, n0 + n) of a convolution's tensors start, for a call over that slice.
struct Slice {
  int64_t n0 = 0, n = 0;
  const void* at(const RawView& v, int64_t per_image) const {
    return static_cast<const char*>(v.data) + n0 * per_image * int64_t(element_size(v.dtype));
  }
  void* at_mut(const RawView& v, int64_t per_image) const { return const_cast<void*>(at(v, per_image)); }
};

// One cuDNN pass, per slice of the batch small enough for int descriptors: descriptors, the cached algorithm
// with its math type, a workspace, then call(handle, descs, algo, ws, ws_size, scalars, slice).
template <class Perf, class Call>
void conv_pass(Pass pass, const Conv2dShape& s, DType t, Device dev, bool nhwc, Call call) {
  if (s.n == 0) return;
  set_device(dev.index);
  cudnnHandle_t h = cudnn_handle(dev.index);
  const int64_t per_image = std::max(s.c_in * s.h * s.w, s.c_out * s.out_h * s.out_w);
  HT_CHECK(per_image <= INT_MAX, "[conv2d] one image of ", per_image, " elements is beyond cuDNN's 2^31 limit");
  const int64_t step = std::max<int64_t>(1, INT_MAX / std::max<int64_t>(per_image, 1));
  for (int64_t n0 = 0; n0 < s.n; n0 += step) {
    Slice sl{n0, std::min(step, s.n - n0)};
    Descs d(s, t, nhwc, sl.n);
    Choice c = choose<Perf>(pass, s, t, dev.index, nhwc, sl.n, h, d);
    HT_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv, c.math));
    std::unique_ptr<Storage> ws(c.workspace ? new Storage(c.workspace, dev) : nullptr);
    call(h, d, c.algo, ws ? ws->data() : nullptr, c.workspace, Scalars(t), sl);
  }
}

// One dtype (checked) and one layout for all of a convolution's tensors, as PyTorch gives cuDNN (mixed NCHW and
// NHWC descriptors may find no algorithm): channels_last when any of them lies channels_last and not also as
// NCHW. A tensor dense in both (C == 1, a 1x1 map, a 1x1 kernel) lies the same in memory either way, so it is
// described in the chosen layout.
bool conv_nhwc(const char* op, const RawView& x, const RawView& w, const RawView& y) {
  // cuDNN reads every tensor in the one dtype its descriptors name
  HT_CHECK(w.dtype == x.dtype && y.dtype == x.dtype, "[", op, "] expected input, weight and output of one dtype, got ",
           dtype_name(x.dtype), ", ", dtype_name(w.dtype), " and ", dtype_name(y.dtype));
  const std::pair<const RawView*, const char*> tensors[] = {{&x, "the input"}, {&w, "the weight"}, {&y, "the output"}};
  bool nhwc = false;
  for (auto [v, what] : tensors) nhwc = nhwc || channels_last_of(*v, op, what);
  for (auto [v, what] : tensors)
    HT_CHECK(dense_in(*v, nhwc), "[", op, "] expected ", what, " dense in the convolution's layout (",
             nhwc ? "channels_last" : "NCHW", ") like its other tensors, got strides [", v->strides[0], ", ",
             v->strides[1], ", ", v->strides[2], ", ", v->strides[3], "]");
  return nhwc;
}

}  // namespace

void conv2d_forward(const Conv2dShape& s, const RawView& x, const RawView& w, const RawView* bias, const RawView& y) {
  const int64_t px = s.c_in * s.h * s.w, py = s.c_out * s.out_h * s.out_w;
  conv_pass<cudnnConvolutionFwdAlgoPerf_t>(
      Pass::Forward, s, x.dtype, x.device, conv_nhwc("conv2d", x, w, y),
      [&](cudnnHandle_t h, const Descs& d, int algo, void* ws, size_t ws_size, const Scalars& a, const Slice& sl) {
        void* out = sl.at_mut(y, py);
        HT_CUDNN_CHECK(cudnnConvolutionForward(h, a.one(), d.x, sl.at(x, px), d.w, w.data, d.conv,
                                               cudnnConvolutionFwdAlgo_t(algo), ws, ws_size, a.zero(), d.y, out));
        if (bias) HT_CUDNN_CHECK(cudnnAddTensor(h, a.one(), d.b, bias->data, a.one(), d.y, out));
      });
}

// cuDNN's convolution, then batch_norm_apply in place with the epilogue (two passes; the values of the
// unfused ops).
void conv2d_batch_norm_forward(const Conv2dShape& s, const RawView& x, const RawView& w, const BnInference& bn,
                               const BnEpilogue& epilogue, const RawView& y) {
  cuda::conv2d_forward(s, x, w, nullptr, y);
  cuda::batch_norm_apply(conv2d_output_bn_shape(s, y), y, bn.mean, bn.invstd, bn.weight, bn.bias, epilogue, y);
}

namespace {
void backward_data(const Conv2dShape& s, const RawView& gy, const RawView& w, const RawView& gx) {
  const int64_t px = s.c_in * s.h * s.w, py = s.c_out * s.out_h * s.out_w;
  conv_pass<cudnnConvolutionBwdDataAlgoPerf_t>(
      Pass::BackwardData, s, gy.dtype, gy.device, conv_nhwc("conv2d_backward", gx, w, gy),
      [&](cudnnHandle_t h, const Descs& d, int algo, void* ws, size_t ws_size, const Scalars& a, const Slice& sl) {
        HT_CUDNN_CHECK(cudnnConvolutionBackwardData(h, a.one(), d.w, w.data, d.y, sl.at(gy, py), d.conv,
                                                    cudnnConvolutionBwdDataAlgo_t(algo), ws, ws_size, a.zero(), d.x,
                                                    sl.at_mut(gx, px)));
      });
}

void backward_weight(const Conv2dShape& s, const RawView& x, const RawView& gy, const RawView& gw) {
  const int64_t px = s.c_in * s.h * s.w, py = s.c_out * s.out_h * s.out_w;
  conv_pass<cudnnConvolutionBwdFilterAlgoPerf_t>(
      Pass::BackwardFilter, s, x.dtype, x.device, conv_nhwc("conv2d_backward", x, gw, gy),
      [&](cudnnHandle_t h, const Descs& d, int algo, void* ws, size_t ws_size, const Scalars& a, const Slice& sl) {
        // slices after the first add their part to the weight gradient
        HT_CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, a.one(), d.x, sl.at(x, px), d.y, sl.at(gy, py), d.conv,
                                                      cudnnConvolutionBwdFilterAlgo_t(algo), ws, ws_size,
                                                      sl.n0 == 0 ? a.zero() : a.one(), d.w, gw.data));
      });
}

}  // namespace

void conv2d_backward(const Conv2dShape& s, const RawView& x, const RawView& w, const RawView& gy, const RawView* gx,
                     const RawView* gw) {
  if (gx) backward_data(s, gy, w, *gx);
  if (gw) backward_weight(s, x, gy, *gw);
}

}  // namespace ht::kernels::cuda
