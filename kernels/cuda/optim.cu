// CUDA backend for the optimizer kernels: one multi-tensor launch per call. The host packs a table of
// per-tensor entries plus a list of fixed-size chunks (tensor, chunk index), copies it to the device in one
// transfer, and each block walks its chunks, switching on the tensor's dtype (uniform across the block) and
// calling the shared body (kernels/optim_bodies.h) per element. Like PyTorch's multi_tensor_apply, but the
// table lives in device memory, so any number of tensors fits one launch.
#include <cstring>
#include <mutex>
#include <vector>

#include "core/storage.h"
#include "kernels/cuda/check.h"
#include "kernels/optim_backends.h"
#include "kernels/optim_bodies.h"

namespace ht::kernels::cuda {

namespace {

constexpr int64_t kChunk = 16384;  // elements per chunk; ~720 chunks for ResNet-18's 11.7M parameters
constexpr int kThreads = 512;     // 32 elements per thread per chunk

struct ChunkRef {
  int32_t tensor;
  int32_t chunk;
};

template <class T, bool kA, bool kB, class Body, class Entry>
__device__ void apply_range(const Body& body, const Entry& e, int64_t begin, int64_t end, float inv_scale) {
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) body.template apply_as<T, kA, kB>(e, i, inv_scale);
}

template <class Body, class Entry>
__global__ void multi_tensor_step(const Entry* entries, const ChunkRef* chunks, int64_t nchunks, float inv_scale,
                                  const float* found_inf) {
  if (found_inf != nullptr && *found_inf != 0.f) return;  // a skipped step: nothing changes
  const Body body{};
  for (int64_t c = blockIdx.x; c < nchunks; c += gridDim.x) {
    // a register copy: the body's stores cannot alias it, so its fields are loaded once per chunk
    const Entry e = entries[chunks[c].tensor];
    int64_t begin = int64_t(chunks[c].chunk) * kChunk;
    int64_t end = begin + kChunk < e.numel ? begin + kChunk : e.numel;
    // the dtype and buffer layout are uniform across a chunk, so the branch costs nothing per element
    visit_step<Body>(e, [&](auto tag, auto a, auto b) {
      apply_range<typename decltype(tag)::type, decltype(a)::value, decltype(b)::value>(body, e, begin, end,
                                                                                       inv_scale);
    });
  }
}

template <class T>
__device__ bool unscale_range(const GradTensor& e, int64_t begin, int64_t end, float inv_scale) {
  const UnscaleBody body{};
  bool bad = false;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) bad = body.apply<T>(e, i, inv_scale) || bad;
  return bad;
}

__global__ void multi_tensor_unscale(const GradTensor* entries, const ChunkRef* chunks, int64_t nchunks,
                                     float inv_scale, float* found_inf) {
  bool bad = false;
  for (int64_t c = blockIdx.x; c < nchunks; c += gridDim.x) {
    const GradTensor e = entries[chunks[c].tensor];
    int64_t begin = int64_t(chunks[c].chunk) * kChunk;
    int64_t end = begin + kChunk < e.numel ? begin + kChunk : e.numel;
    switch (e.dtype) {
      case DType::Float32: bad = unscale_range<float>(e, begin, end, inv_scale) || bad; break;
      case DType::Float16: bad = unscale_range<Half>(e, begin, end, inv_scale) || bad; break;
      case DType::BFloat16: bad = unscale_range<BFloat16>(e, begin, end, inv_scale) || bad; break;
      case DType::Float64: bad = unscale_range<double>(e, begin, end, inv_scale) || bad; break;
      default: break;
    }
  }
  // every writer stores the same value, as PyTorch's kernel does; one store per block at most
  if (__syncthreads_or(bad) && threadIdx.x == 0) *found_inf = 1.f;
}

// A grow-only device buffer per device for the tensor/chunk tables. All work runs on the device's default
// stream, so the next call's upload is ordered after the kernel that read the previous table; the lock is held
// from the upload until that kernel is queued, so two host threads stepping on one device cannot put their
// uploads between each other's upload and launch.
struct TableBuffer {
  void* data = nullptr;
  size_t bytes = 0;
};

// Packs entries and their chunk list into the device's table and, with the table locked, queues
// launch(entries, chunks, chunk count) on the device pointers (not called when there is no chunk).
template <class Entry, class Launch>
void with_table(int device, const Entry* tensors, int64_t count, Launch launch) {
  std::vector<ChunkRef> chunks;
  for (int64_t k = 0; k < count; ++k) {
    HT_CHECK(tensors[k].numel / kChunk < INT32_MAX, "[cuda] tensor of ", tensors[k].numel,
             " elements is too large for the multi-tensor kernel");
    for (int64_t c = 0; c * kChunk < tensors[k].numel; ++c) chunks.push_back({int32_t(k), int32_t(c)});
  }
  if (chunks.empty()) return;
  size_t entry_bytes = size_t(count) * sizeof(Entry);
  size_t chunk_offset = (entry_bytes + 15) / 16 * 16;
  std::vector<char> host(chunk_offset + chunks.size() * sizeof(ChunkRef));
  std::memcpy(host.data(), tensors, entry_bytes);
  std::memcpy(host.data() + chunk_offset, chunks.data(), chunks.size() * sizeof(ChunkRef));

  static std::mutex mu;
  static std::vector<TableBuffer> buffers;
  std::lock_guard<std::mutex> lock(mu);
  set_device(device);
  if (size_t(device) >= buffers.size()) buffers.resize(size_t(device) + 1);
  TableBuffer& b = buffers[size_t(device)];
  if (b.bytes < host.size()) {
    Allocator* alloc = allocator_for(DeviceType::CUDA);
    if (b.data) alloc->deallocate(b.data, b.bytes, device);
    b.data = nullptr;
    b.bytes = 0;
    b.data = alloc->allocate(host.size() * 2, device);
    b.bytes = host.size() * 2;
  }
  // from pageable memory the runtime stages the bytes before returning, so `host` may go right after
  HT_CUDA_CHECK(cudaMemcpyAsync(b.data, host.data(), host.size(), cudaMemcpyHostToDevice, 0));
  char* base = static_cast<char*>(b.data);
  launch(reinterpret_cast<const Entry*>(base), reinterpret_cast<const ChunkRef*>(base + chunk_offset),
         int64_t(chunks.size()));
  HT_CUDA_CHECK(cudaGetLastError());
}

template <class Body, class Entry>
void launch_step(int device, const Entry* tensors, int64_t count, float inv_scale, const float* found_inf) {
  with_table(device, tensors, count, [&](const Entry* entries, const ChunkRef* chunks, int64_t n) {
    multi_tensor_step<Body, Entry><<<grid_for(n * kThreads, kThreads), kThreads>>>(entries, chunks, n, inv_scale,
                                                                                     found_inf);
  });
}

void check_dtypes(const char* op, DType t) {
  HT_CHECK(t == kFloat32 || t == kFloat16 || t == kBFloat16, "[", op,
           "] expected float32, float16 or bfloat16 parameters, got ", dtype_name(t));
}

}  // namespace

void adam_step(Device device, const AdamTensor* tensors, int64_t count, float inv_scale, const float* found_inf) {
  for (int64_t k = 0; k < count; ++k) check_dtypes("adam_step", tensors[k].dtype);
  launch_step<AdamBody>(device.index, tensors, count, inv_scale, found_inf);
}

void sgd_step(Device device, const SgdTensor* tensors, int64_t count, float inv_scale, const float* found_inf) {
  for (int64_t k = 0; k < count; ++k) check_dtypes("sgd_step", tensors[k].dtype);
  launch_step<SgdBody>(device.index, tensors, count, inv_scale, found_inf);
}

void unscale_and_check(Device device, const GradTensor* tensors, int64_t count, float inv_scale, float* found_inf) {
  for (int64_t k = 0; k < count; ++k)
    HT_CHECK(is_floating(tensors[k].dtype), "[unscale_and_check] expected floating-point gradients, got ",
             dtype_name(tensors[k].dtype));
  with_table(device.index, tensors, count, [&](const GradTensor* entries, const ChunkRef* chunks, int64_t n) {
    multi_tensor_unscale<<<grid_for(n * kThreads, kThreads), kThreads>>>(entries, chunks, n, inv_scale, found_inf);
  });
}

}  // namespace ht::kernels::cuda
