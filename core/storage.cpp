// Storage and the per-device allocator registry.
#include "core/storage.h"

#include "core/error.h"

namespace ht {

namespace {
// Constant-initialised, so backends may register from their static initialisers in any order.
Allocator* g_allocators[2] = {nullptr, nullptr};
}

void register_allocator(DeviceType type, Allocator* allocator) { g_allocators[int(type)] = allocator; }

Allocator* allocator_for(DeviceType type) {
  Allocator* a = g_allocators[int(type)];
  HT_CHECK(a != nullptr, "[storage] no allocator registered for ", Device(type).str());
  return a;
}

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  data_ = nbytes ? allocator_for(device.type)->allocate(nbytes, device.index) : nullptr;
}

Storage::Storage(void* data, size_t nbytes, Device device, std::function<void(void*)> release)
    : data_(data), nbytes_(nbytes), device_(device), release_(std::move(release)) {
  if (!release_) release_ = [](void*) {};
}

Storage::~Storage() {
  if (release_) {
    release_(data_);
  } else if (data_) {
    g_allocators[int(device_.type)]->deallocate(data_, nbytes_, device_.index);
  }
}

}  // namespace ht
