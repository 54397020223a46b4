// libFuzzer target: the restricted unpickler, with persistent ids resolved to small real storages, and the
// legacy .pth loader.
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "fuzz_common.h"
#include "io/pickle.h"
#include "io/pth.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ht::io::PersistentLoad load = [](const ht::Value& pid) -> ht::Value {
    // Any storage id becomes a 16-byte float32 storage, so tensor rebuilds run their bounds checks.
    if (!pid.is_tuple() || pid.items().size() < 2) ht::fail("[fuzz] not a storage id");
    auto storage = std::make_shared<ht::Storage>(16, ht::kCPU);
    std::memset(storage->data(), 0, 16);
    return ht::Tensor(storage, ht::kFloat32, {4}, {1}, 0);
  };
  try {
    touch_all(ht::io::unpickle(data, size, load, "fuzz"));
  } catch (const ht::Error&) {
  }
  try {
    auto file = ht::io::MappedFile::from_memory(std::vector<uint8_t>(data, data + size), "fuzz");
    touch_all(ht::io::load_pth_legacy(file));
  } catch (const ht::Error&) {
  }
  return 0;
}
