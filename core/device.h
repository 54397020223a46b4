// Device: where a tensor's bytes live (CPU, or a CUDA device with an index).
#pragma once
#include <cstdint>
#include <ostream>
#include <string>

namespace ht {

enum class DeviceType : uint8_t { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;
  constexpr Device() = default;
  constexpr Device(DeviceType t, int i = 0) : type(t), index(i) {}
  // "cpu", "cuda", "cuda:1"
  explicit Device(const std::string& spec);
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  std::string str() const;
  friend bool operator==(const Device&, const Device&) = default;
};

inline constexpr Device kCPU{DeviceType::CPU, 0};
inline constexpr Device kCUDA{DeviceType::CUDA, 0};

inline std::ostream& operator<<(std::ostream& os, const Device& d) { return os << d.str(); }

namespace cuda {
// True when halftorch was built with CUDA and a usable GPU and driver are present.
bool is_available();
int device_count();
// Returns every cached but unused block to the driver.
void empty_cache();
struct MemoryStats {
  size_t allocated = 0;      // bytes in live tensors
  size_t reserved = 0;       // bytes held from the driver, live or cached
  size_t peak_allocated = 0;
  size_t num_device_allocs = 0;  // cudaMalloc calls so far
};
MemoryStats memory_stats(int device = 0);
void synchronize();
}  // namespace cuda

}  // namespace ht
