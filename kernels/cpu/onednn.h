// oneDNN, the CPU counterpart of cuDNN: one engine and one stream for the process, primitives cached by what
// defines them (op, shapes, strides, dtypes, attributes), scratchpads from halftorch's CPU allocator, and
// memory descriptors made from halftorch's strided views. oneDNN runs on the same OpenMP threads as the rest.
#pragma once
#include <functional>
#include <initializer_list>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <unordered_map>

#include "kernels/kernels.h"

namespace ht::kernels::cpu::onednn {

dnnl::engine& engine();
dnnl::stream& stream();

// Whether oneDNN runs `isa`'s kernels on this CPU (the effective ISA includes it).
bool has_isa(dnnl::cpu_isa isa);

// f32 and bf16 (the types oneDNN computes in on this CPU); anything else is a caller's bug.
dnnl::memory::data_type data_type(DType t);

// The descriptor of a view as it lies in memory (its own strides), seen with `dims` (which may split a dim,
// as grouped weights do).
dnnl::memory::desc desc_of(const RawView& v);
dnnl::memory::desc grouped_weight_desc(const RawView& w, int64_t groups);
// The same logical tensor in a layout oneDNN picks (format `any`).
dnnl::memory::desc any_like(const dnnl::memory::desc& d);

// A key that names a primitive: append every number and tag that defines it.
class Key {
 public:
  explicit Key(const char* op) : text_(op) {}
  Key& add(int64_t v);
  Key& add(const RawView& v);  // dtype, sizes and strides
  Key& add(const char* tag);
  const std::string& str() const { return text_; }

 private:
  std::string text_;
};

// The primitive of `key`, made by `make` on first use. Thread-safe; entries live for the process.
std::shared_ptr<void> cached(const std::string& key, const std::function<std::shared_ptr<void>()>& make);
template <class T, class Make>
std::shared_ptr<T> cached(const Key& key, Make&& make) {
  return std::static_pointer_cast<T>(
      cached(key.str(), [&]() -> std::shared_ptr<void> { return std::make_shared<T>(make()); }));
}

// Primitive attributes every halftorch primitive uses: a scratchpad the caller provides (from halftorch's
// allocator), and the fp32 math of the dtype (no implicit down-conversion).
dnnl::primitive_attr default_attr();

// A view's memory object (no copy).
dnnl::memory wrap(const dnnl::memory::desc& d, const void* data);

// The per-thread staging buffers one primitive call may need at once, by role.
// (Source, Weights, Destination name the primitive's argument, inputs and outputs alike: a backward-data call
// stages its diff_src in Source; the ...32 buffers hold float32 stand-ins of float16 tensors.)
enum class Buffer {
  Scratchpad, Source, Weights, Destination, Source32, Weights32, Destination32, Bias32, Residual32, kCount
};
// Per-thread, grow-only, 64-byte aligned memory from halftorch's CPU allocator, reused across calls so that a
// training step does not page-fault fresh memory; contents are not kept.
void* scratch(Buffer role, size_t nbytes);

// Memory in `want`'s layout holding `user`'s values: `user` itself when the layouts agree, else a reordered
// copy in the staging buffer `role`.
dnnl::memory reordered(const dnnl::memory& user, const dnnl::memory::desc& want, Buffer role);
// Copies `from`'s values into `to` (a plain copy when the two lie alike, else a reorder).
void copy_into(const dnnl::memory& from, const dnnl::memory& to);
// Memory in `want`'s layout for an output; copy_back() then moves it into `user` when the two differ.
struct Output {
  dnnl::memory user, inner;
  void copy_back() const;
};
Output output_in(const dnnl::memory& user, const dnnl::memory::desc& want, Buffer role);

// Runs `p` with `args` plus its scratchpad, and waits.
void execute(const dnnl::primitive& p, const dnnl::memory::desc& scratchpad,
             std::unordered_map<int, dnnl::memory> args);

}  // namespace ht::kernels::cpu::onednn
