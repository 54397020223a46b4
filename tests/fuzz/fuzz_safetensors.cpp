// libFuzzer target: the safetensors and .npy readers.
#include <cstdint>
#include <vector>

#include "fuzz_common.h"
#include "io/npy.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = ht::io::MappedFile::from_memory(std::vector<uint8_t>(data, data + size), "fuzz");
  try {
    touch_all(ht::io::load_safetensors(file));
  } catch (const ht::Error&) {
  }
  try {
    touch_all(ht::io::load_npy(file));
  } catch (const ht::Error&) {
  }
  return 0;
}
