// The oneDNN engine, stream, primitive cache and staging buffers of kernels/cpu/onednn.h.
#include "kernels/cpu/onednn.h"

#include <cstring>
#include <mutex>

#include "core/storage.h"

namespace ht::kernels::cpu::onednn {

using dnnl::memory;

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}
dnnl::stream& stream() {
  static dnnl::stream s(engine());
  return s;
}

bool has_isa(dnnl::cpu_isa isa) {
  const int need = int(isa);
  return (int(dnnl::get_effective_cpu_isa()) & need) == need;
}

memory::data_type data_type(DType t) {
  switch (t) {
    case kFloat32: return memory::data_type::f32;
    case kBFloat16: return memory::data_type::bf16;
    default: fail("[onednn] no oneDNN data type for ", dtype_name(t));
  }
}

memory::desc desc_of(const RawView& v) {
  memory::dims dims(v.sizes, v.sizes + v.ndim), strides(v.strides, v.strides + v.ndim);
  return memory::desc(dims, data_type(v.dtype), strides);
}

memory::desc grouped_weight_desc(const RawView& w, int64_t groups) {
  if (groups == 1) return desc_of(w);
  int64_t per_group = w.sizes[0] / groups;
  memory::dims dims{groups, per_group, w.sizes[1], w.sizes[2], w.sizes[3]};
  memory::dims strides{per_group * w.strides[0], w.strides[0], w.strides[1], w.strides[2], w.strides[3]};
  return memory::desc(dims, data_type(w.dtype), strides);
}

memory::desc any_like(const memory::desc& d) { return memory::desc(d.dims(), d.data_type(), memory::format_tag::any); }

Key& Key::add(int64_t v) {
  text_ += ',';
  text_ += std::to_string(v);
  return *this;
}
Key& Key::add(const char* tag) {
  text_ += ',';
  text_ += tag;
  return *this;
}
Key& Key::add(const RawView& v) {
  add(dtype_name(v.dtype));
  for (int d = 0; d < v.ndim; ++d) add(v.sizes[d]).add(v.strides[d]);
  return *this;
}

std::shared_ptr<void> cached(const std::string& key, const std::function<std::shared_ptr<void>()>& make) {
  static std::mutex mu;
  static std::unordered_map<std::string, std::shared_ptr<void>> entries;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = entries.find(key);
    if (it != entries.end()) return it->second;
  }
  std::shared_ptr<void> made = make();  // outside the lock: creating a primitive takes milliseconds
  std::lock_guard<std::mutex> lock(mu);
  return entries.emplace(key, std::move(made)).first->second;
}

dnnl::primitive_attr default_attr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

memory wrap(const memory::desc& d, const void* data) { return memory(d, engine(), const_cast<void*>(data)); }

void* scratch(Buffer role, size_t nbytes) {
  struct Block {
    void* data = nullptr;
    size_t size = 0;
    ~Block() {
      if (data) allocator_for(DeviceType::CPU)->deallocate(data, size, 0);
    }
  };
  thread_local Block blocks[size_t(Buffer::kCount)];
  Block& b = blocks[size_t(role)];
  if (b.size < nbytes) {
    Allocator* a = allocator_for(DeviceType::CPU);
    if (b.data) a->deallocate(b.data, b.size, 0);
    b.data = nullptr;
    b.size = 0;
    b.data = a->allocate(nbytes, 0);
    b.size = nbytes;
  }
  return b.data;
}

namespace {
void reorder(const memory& from, const memory& to) {
  dnnl::reorder(from, to).execute(stream(), const_cast<memory&>(from), const_cast<memory&>(to));
  stream().wait();
}
}  // namespace

memory reordered(const memory& user, const memory::desc& want, Buffer role) {
  if (user.get_desc() == want) return user;
  memory inner(want, engine(), scratch(role, want.get_size()));
  reorder(user, inner);
  return inner;
}

void copy_into(const memory& from, const memory& to) {
  if (from.get_desc() == to.get_desc())
    std::memcpy(to.get_data_handle(), from.get_data_handle(), from.get_desc().get_size());
  else
    reorder(from, to);
}

Output output_in(const memory& user, const memory::desc& want, Buffer role) {
  if (user.get_desc() == want) return {user, user};
  return {user, memory(want, engine(), scratch(role, want.get_size()))};
}

void Output::copy_back() const {
  if (inner.get() != user.get()) reorder(inner, user);
}

void execute(const dnnl::primitive& p, const memory::desc& scratchpad, std::unordered_map<int, memory> args) {
  if (scratchpad.get_size() > 0)
    args.emplace(DNNL_ARG_SCRATCHPAD, memory(scratchpad, engine(), scratch(Buffer::Scratchpad, scratchpad.get_size())));
  p.execute(stream(), args);
  stream().wait();
}

}  // namespace ht::kernels::cpu::onednn
