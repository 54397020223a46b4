// libFuzzer target: the zip reader and the whole .pth zip loader on arbitrary bytes.
#include <cstdint>
#include <vector>

#include "fuzz_common.h"
#include "io/pth.h"
#include "io/zip.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    ht::io::ZipReader zip(data, size, "fuzz");
    for (const auto& e : zip.entries()) {
      try {
        if (e.size < (1u << 20)) (void)zip.read(e);
      } catch (const ht::Error&) {
      }
    }
  } catch (const ht::Error&) {
  }
  try {
    auto file = ht::io::MappedFile::from_memory(std::vector<uint8_t>(data, data + size), "fuzz");
    touch_all(ht::io::load_pth_zip(file));
  } catch (const ht::Error&) {
  }
  return 0;
}
