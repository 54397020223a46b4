// Storage: reference-counted bytes on one device. Memory comes from the allocator a backend registers per
// device type, so this base layer knows nothing of kernels.
#pragma once
#include <cstddef>
#include <functional>
#include <memory>

#include "core/device.h"

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

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  std::function<void(void*)> release_;  // empty: owned by the allocator
};

using StoragePtr = std::shared_ptr<Storage>;

}  // namespace ht
