// Storage: reference-counted bytes on one device. Memory comes from the allocator a backend registers per
// device type, so this base layer knows nothing of kernels.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "halftorch/core/device.h"

namespace ht {

struct Allocator {
  virtual ~Allocator() = default;
  virtual void* allocate(size_t nbytes, int device_index) = 0;
  virtual void deallocate(void* p, size_t nbytes, int device_index) = 0;
};

void register_allocator(DeviceType type, Allocator* allocator);
Allocator* allocator_for(DeviceType type);  // throws when no backend registered one

class Storage {
 public:
  // Owned memory from the device's allocator.
  Storage(size_t nbytes, Device device);
  // Borrowed memory (a user buffer, a memory-mapped file): `release` runs when the last reference goes.
  Storage(void* data, size_t nbytes, Device device, std::function<void(void*)> release);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  // Bumped by every in-place write through a tensor on this storage (PyTorch's version counter, which views
  // share); autograd compares it with the version a backward rule saved.
  uint64_t version() const { return version_.load(std::memory_order_relaxed); }
  void bump_version() { version_.fetch_add(1, std::memory_order_relaxed); }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  std::function<void(void*)> release_;  // empty: owned by the allocator
  std::atomic<uint64_t> version_{0};
};

using StoragePtr = std::shared_ptr<Storage>;

}  // namespace ht
