// Built instead of distributed/nccl.cpp when halftorch is configured without CUDA.
#include "distributed/backend.h"

namespace ht::distributed::detail {
std::unique_ptr<Backend> make_nccl(const BackendContext&, int) {
  fail("[distributed] NCCL needs CUDA, and halftorch was built without CUDA");
}
}  // namespace ht::distributed::detail
