// CUDA convolution through cuDNN's legacy API: forward, backward-data and backward-filter. 16-bit tensors run
// on tensor cores with float accumulation; float32 uses FMA math (no TF32) to match the CPU. The algorithm is
// picked once per shape from cuDNN's heuristics (no benchmarking, no host sync) and cached; the workspace
// comes from the caching allocator, freed back to it when the call returns (all work is on one stream).
#include <cudnn.h>

#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "core/storage.h"
#include "kernels/cuda/check.h"
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
  static std::mutex mu;
  static std::map<int, cudnnHandle_t> handles;
  std::lock_guard<std::mutex> lock(mu);
  auto it = handles.find(device);
  if (it != handles.end()) return it->second;
  set_device(device);
  cudnnHandle_t h;
  HT_CUDNN_CHECK(cudnnCreate(&h));
  handles[device] = h;
  return h;
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

// The descriptors of one convolution, destroyed with it.
struct Descs {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, b = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  Descs(const Conv2dShape& s, DType t) {
    cudnnDataType_t dt = cudnn_type(t);
    HT_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x));
    HT_CUDNN_CHECK(cudnnCreateTensorDescriptor(&y));
    HT_CUDNN_CHECK(cudnnCreateTensorDescriptor(&b));
    HT_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w));
    HT_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
    HT_CUDNN_CHECK(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, dt, int(s.n), int(s.c_in), int(s.h), int(s.w)));
    HT_CUDNN_CHECK(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, dt, int(s.n), int(s.c_out), int(s.out_h),
                                              int(s.out_w)));
    HT_CUDNN_CHECK(cudnnSetTensor4dDescriptor(b, CUDNN_TENSOR_NCHW, dt, 1, int(s.c_out), 1, 1));
    HT_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w, dt, CUDNN_TENSOR_NCHW, int(s.c_out), int(s.c_in / s.groups),
                                              int(s.kh), int(s.kw)));
    cudnnDataType_t compute = t == kFloat64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
    HT_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv, int(s.pad_h), int(s.pad_w), int(s.stride_h),
                                                   int(s.stride_w), int(s.dil_h), int(s.dil_w),
                                                   CUDNN_CROSS_CORRELATION, compute));
    HT_CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv, int(s.groups)));
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

enum class Pass { Forward, BackwardData, BackwardFilter };

using Key = std::tuple<int, int, int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                       int64_t, int64_t, int64_t, int64_t, int64_t, int64_t>;
Key key_of(Pass p, const Conv2dShape& s, DType t, int device) {
  return {int(p), int(t), device, s.n, s.c_in, s.h, s.w, s.c_out, s.kh, s.kw, s.stride_h, s.stride_w, s.pad_h,
          s.pad_w, s.dil_h, s.dil_w, s.groups};
}

struct Choice {
  int algo = 0;
  size_t workspace = 0;
};

// cuDNN's heuristic ranking, first algorithm that is supported and fits the workspace limit; cached per shape.
template <class Perf, class Query>
Choice choose(Pass pass, const Conv2dShape& s, DType t, int device, Query query) {
  static std::mutex mu;
  static std::map<Key, Choice> cache;
  Key k = key_of(pass, s, t, device);
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(k);
    if (it != cache.end()) return it->second;
  }
  Perf perf[16];
  int returned = 0;
  HT_CUDNN_CHECK(query(perf, 16, &returned));
  Choice c{-1, 0};
  for (int i = 0; i < returned; ++i)
    if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= kMaxWorkspace) {
      c = {int(perf[i].algo), perf[i].memory};
      break;
    }
  HT_CHECK(c.algo >= 0, "[conv2d] cuDNN found no algorithm for input [", s.n, ", ", s.c_in, ", ", s.h, ", ", s.w,
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

// One cuDNN pass: descriptors, the cached algorithm, a workspace, then `call(handle, descs, algo, ws, ws_size, alpha_beta)`.
template <class Perf, class Query, class Call>
void conv_pass(Pass pass, const Conv2dShape& s, DType t, Device dev, Query query, Call call) {
  set_device(dev.index);
  cudnnHandle_t h = cudnn_handle(dev.index);
  Descs d(s, t);
  Choice c = choose<Perf>(pass, s, t, dev.index, [&](Perf* p, int n, int* r) { return query(h, d, p, n, r); });
  std::unique_ptr<Storage> ws(c.workspace ? new Storage(c.workspace, dev) : nullptr);
  call(h, d, c.algo, ws ? ws->data() : nullptr, c.workspace, Scalars(t));
}

}  // namespace

void conv2d_forward(const Conv2dShape& s, const RawView& x, const RawView& w, const RawView* bias, const RawView& y) {
  conv_pass<cudnnConvolutionFwdAlgoPerf_t>(
      Pass::Forward, s, x.dtype, x.device,
      [](cudnnHandle_t h, const Descs& d, auto* p, int n, int* r) {
        return cudnnGetConvolutionForwardAlgorithm_v7(h, d.x, d.w, d.conv, d.y, n, r, p);
      },
      [&](cudnnHandle_t h, const Descs& d, int algo, void* ws, size_t ws_size, const Scalars& a) {
        HT_CUDNN_CHECK(cudnnConvolutionForward(h, a.one(), d.x, x.data, d.w, w.data, d.conv,
                                               cudnnConvolutionFwdAlgo_t(algo), ws, ws_size, a.zero(), d.y, y.data));
        if (bias) HT_CUDNN_CHECK(cudnnAddTensor(h, a.one(), d.b, bias->data, a.one(), d.y, y.data));
      });
}

void conv2d_backward_data(const Conv2dShape& s, const RawView& gy, const RawView& w, const RawView& gx) {
  conv_pass<cudnnConvolutionBwdDataAlgoPerf_t>(
      Pass::BackwardData, s, gy.dtype, gy.device,
      [](cudnnHandle_t h, const Descs& d, auto* p, int n, int* r) {
        return cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d.w, d.y, d.conv, d.x, n, r, p);
      },
      [&](cudnnHandle_t h, const Descs& d, int algo, void* ws, size_t ws_size, const Scalars& a) {
        HT_CUDNN_CHECK(cudnnConvolutionBackwardData(h, a.one(), d.w, w.data, d.y, gy.data, d.conv,
                                                    cudnnConvolutionBwdDataAlgo_t(algo), ws, ws_size, a.zero(), d.x,
                                                    gx.data));
      });
}

void conv2d_backward_weight(const Conv2dShape& s, const RawView& x, const RawView& gy, const RawView& gw) {
  conv_pass<cudnnConvolutionBwdFilterAlgoPerf_t>(
      Pass::BackwardFilter, s, x.dtype, x.device,
      [](cudnnHandle_t h, const Descs& d, auto* p, int n, int* r) {
        return cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.x, d.y, d.conv, d.w, n, r, p);
      },
      [&](cudnnHandle_t h, const Descs& d, int algo, void* ws, size_t ws_size, const Scalars& a) {
        HT_CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, a.one(), d.x, x.data, d.y, gy.data, d.conv,
                                                      cudnnConvolutionBwdFilterAlgo_t(algo), ws, ws_size, a.zero(),
                                                      d.w, gw.data));
      });
}

}  // namespace ht::kernels::cuda
