// What the device switch (kernels/dispatch.cpp) evaluates for each entry point of the kernel lists: the one
// device all its operands share.
#pragma once
#include <initializer_list>

#include "kernels/kernels.h"

namespace ht::kernels {

// The device all non-null views share; "[op] expected all tensors on one device, got ..." otherwise.
inline Device common_device(const char* op, std::initializer_list<const RawView*> views) {
  const RawView* first = nullptr;
  for (const RawView* v : views) {
    if (!v) continue;
    if (!first) first = v;
    HT_CHECK(v->device == first->device, "[", op, "] expected all tensors on one device, got ", first->device.str(),
             " and ", v->device.str());
  }
  HT_CHECK(first != nullptr, "[", op, "] no tensor to take the device from");
  return first->device;
}

}  // namespace ht::kernels
