// Device parsing and printing.
#include "core/device.h"

#include "core/error.h"

namespace ht {

Device::Device(const std::string& spec) {
  if (spec == "cpu") return;
  if (spec.rfind("cuda", 0) == 0) {
    type = DeviceType::CUDA;
    if (spec.size() == 4) return;
    HT_CHECK(spec[4] == ':' && spec.size() > 5, "[device] expected 'cpu', 'cuda' or 'cuda:N', got '", spec, "'");
    try {
      size_t used = 0;
      index = std::stoi(spec.substr(5), &used);
      HT_CHECK(used == spec.size() - 5 && index >= 0, "[device] bad device index in '", spec, "'");
    } catch (const std::logic_error&) {
      fail("[device] bad device index in '", spec, "'");
    }
    return;
  }
  fail("[device] expected 'cpu', 'cuda' or 'cuda:N', got '", spec, "'");
}

std::string Device::str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }

}  // namespace ht
