// The shape check of an unpickled result: no reference cycles, bounded depth, and a bounded number of values
// (shared subtrees counted once per reference), so later recursive walks (saving, printing, comparing) are safe.
#include <unordered_map>

#include "io/pickle.h"

namespace ht::io {

void check_value_graph(const Value& root, const PickleLimits& limits, const std::string& what) {
  auto bad = [&](const std::string& msg) { fail_io("[io] ", what, ": pickle ", msg); };
  enum State : uint8_t { kOpen, kDone };
  std::unordered_map<const void*, std::pair<State, uint64_t>> seen;  // container -> state, subtree size
  struct Frame {
    Value v;
    size_t next = 0;
    uint64_t total = 1;
  };
  std::vector<Frame> frames;
  auto children = [](const Value& v, size_t i, Value& out) -> bool {
    if (v.is_dict()) {
      const Dict& d = v.to_dict();
      if (i < d.size()) return out = d.items()[i].second, true;
      if (i == d.size() && d.attrs) return out = Value(d.attrs), true;
      return false;
    }
    const ValueList& xs = v.items();
    if (i < xs.size()) return out = xs[i], true;
    return false;
  };
  auto enter = [&](const Value& v) -> uint64_t {  // returns the size now if no frame was pushed
    if (!v.is_container()) return 1;
    auto it = seen.find(v.container_id());
    if (it != seen.end()) {
      if (it->second.first == kOpen) bad("result contains a reference cycle");
      return it->second.second;
    }
    if (frames.size() >= limits.max_depth) bad("result nests deeper than " + std::to_string(limits.max_depth));
    seen[v.container_id()] = {kOpen, 0};
    frames.push_back({v});
    return 0;
  };
  enter(root);
  while (!frames.empty()) {
    Frame& f = frames.back();
    Value child;
    if (children(f.v, f.next++, child)) {
      uint64_t n = enter(child);
      if (n) frames.back().total += n;  // `f` may dangle after enter()
      if (frames.back().total > limits.max_values) bad("result has too many values");
      continue;
    }
    uint64_t total = f.total;
    seen[f.v.container_id()] = {kDone, total};
    frames.pop_back();
    if (!frames.empty()) {
      frames.back().total += total;
      if (frames.back().total > limits.max_values) bad("result has too many values");
    }
  }
}

}  // namespace ht::io
