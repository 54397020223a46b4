// ht::Error and the HT_CHECK macro: every failure on user input is an exception with an "[op] ..." message.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
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

// `text` with every byte that is not printable UTF-8 written as \xNN (newlines and tabs kept): messages echo
// keys, global names and strings read from files, which must not put raw bytes or terminal escapes on a screen.
inline std::string escape_bytes(std::string_view text) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  auto escape = [&](unsigned char b) {
    out += "\\x";
    out += hex[b >> 4];
    out += hex[b & 15];
  };
  for (size_t i = 0; i < text.size();) {
    auto b = static_cast<unsigned char>(text[i]);
    if (b < 0x80) {
      if ((b < 0x20 && b != '\n' && b != '\t') || b == 0x7f) escape(b);
      else out += char(b);
      ++i;
      continue;
    }
    // a well-formed multi-byte sequence (lead C2..F4, then continuation bytes) passes through whole
    size_t len = b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    bool ok = len > 0 && i + len <= text.size();
    for (size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(text[i + k]) & 0xc0) == 0x80;
    if (ok) {
      out.append(text.substr(i, len));
      i += len;
    } else {
      escape(b);
      ++i;
    }
  }
  return out;
}

template <class... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(escape_bytes(detail::concat(args...)));
}

}  // namespace ht

#define HT_CHECK(cond, ...)                     \
  do {                                          \
    if (!(cond)) ::ht::fail(__VA_ARGS__);       \
  } while (0)
