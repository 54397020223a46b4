// ht::Error and the HT_CHECK macro: every failure on user input is an exception with an "[op] ..." message.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace ht {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
template <class T>
void stream_one(std::ostringstream& os, const T& v) {
  if constexpr (requires { v.begin(); v.end(); } && !std::is_convertible_v<T, std::string>) {
    os << '[';
    bool first = true;
    for (const auto& e : v) {
      if (!first) os << ", ";
      first = false;
      stream_one(os, e);
    }
    os << ']';
  } else {
    os << v;
  }
}
template <class... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (stream_one(os, args), ...);
  return os.str();
}
}  // namespace detail

template <class... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(detail::concat(args...));
}

}  // namespace ht

#define HT_CHECK(cond, ...)                     \
  do {                                          \
    if (!(cond)) ::ht::fail(__VA_ARGS__);       \
  } while (0)
