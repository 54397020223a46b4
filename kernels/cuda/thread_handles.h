// Library handles (cuBLAS, cuDNN) one per thread and device. A handle may not be used by two threads at once, so
// each thread takes its own from a pool per device on its first call and gives it back when it ends, as PyTorch's
// DeviceThreadHandlePool does; a new thread reuses a returned handle before a new one is created. Handles are
// never destroyed: at exit the CUDA context may already be gone.
#pragma once
#include <map>
#include <mutex>
#include <vector>

namespace ht::kernels::cuda {

// The calling thread's handle for `device`, made by create(device) when the pool has none to give.
template <class Handle>
Handle thread_handle(int device, Handle (*create)(int)) {
  struct Pool {
    std::mutex mu;
    std::map<int, std::vector<Handle>> returned;
  };
  static Pool* pool = new Pool;  // never destroyed: threads may end after static destructors ran
  struct Held {
    std::map<int, Handle> handles;
    ~Held() {
      std::lock_guard<std::mutex> lock(pool->mu);
      for (auto& [dev, h] : handles) pool->returned[dev].push_back(h);
    }
  };
  thread_local Held held;
  auto it = held.handles.find(device);
  if (it != held.handles.end()) return it->second;
  Handle h{};
  {
    std::lock_guard<std::mutex> lock(pool->mu);
    std::vector<Handle>& spare = pool->returned[device];
    if (!spare.empty()) {
      h = spare.back();
      spare.pop_back();
    }
  }
  if (!h) h = create(device);
  held.handles[device] = h;
  return h;
}

}  // namespace ht::kernels::cuda
