// Contiguous CPU bytes of a tensor; storages over mapped files.
#include "io/tensor_bytes.h"

#include <cstring>

namespace ht::io {

const uint8_t* contiguous_bytes(const Tensor& t, Tensor& keep) {
  keep = t.cpu().contiguous();
  if (keep.numel() == 0) return nullptr;
  return static_cast<const uint8_t*>(keep.raw_data());
}

StoragePtr storage_from_file(const std::shared_ptr<MappedFile>& file, const uint8_t* p, size_t n, size_t alignment) {
  if (n > 0 && reinterpret_cast<uintptr_t>(p) % alignment == 0) {
    std::shared_ptr<MappedFile> keep = file;
    return std::make_shared<Storage>(const_cast<uint8_t*>(p), n, kCPU, [keep](void*) mutable { keep.reset(); });
  }
  auto s = std::make_shared<Storage>(n, kCPU);
  if (n) std::memcpy(s->data(), p, n);
  return s;
}

}  // namespace ht::io
