// ht::Error, its typed subclasses and the HT_CHECK macros: every failure on user input is an exception with an
// "[op] ..." message. As c10/util/Exception.h's TORCH_CHECK variants do, the macros throw a subclass a caller
// can branch on (HT_CHECK_VALUE -> ValueError, _INDEX -> IndexError, _TYPE -> TypeError, _IO -> IOError,
// _NOT_IMPLEMENTED -> NotImplementedError; plain HT_CHECK -> Error) and record where the check stands.
// what() is the message alone; file(), line() and function() tell the source location of the check.
#pragma once
#include <source_location>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ht {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
  Error(const std::string& message, const std::source_location& where)
      : std::runtime_error(message), file_(where.file_name()), line_(int(where.line())),
        function_(where.function_name()) {}
  // Where the check or fail() that threw stands in halftorch's sources ("" and 0 when constructed directly).
  const char* file() const { return file_; }
  int line() const { return line_; }
  const char* function() const { return function_; }

 private:
  const char* file_ = "";
  int line_ = 0;
  const char* function_ = "";
};
// A value out of its allowed range or set (Python's ValueError).
class ValueError : public Error {
 public:
  using Error::Error;
};
// An index or dimension out of range (IndexError).
class IndexError : public Error {
 public:
  using Error::Error;
};
// A dtype or kind that the operation does not take (TypeError).
class TypeError : public Error {
 public:
  using Error::Error;
};
// A file that cannot be read, written or parsed (OSError and the unpickling errors of torch.load).
class IOError : public Error {
 public:
  using Error::Error;
};
// Valid input that halftorch does not handle (yet) (NotImplementedError).
class NotImplementedError : public Error {
 public:
  using Error::Error;
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

// fail(args...) and fail_io(args...) throw Error and IOError with the caller's source location: each is a
// class whose constructor throws, since a function cannot take a defaulted std::source_location after a pack
// (class template argument deduction fills it in at the call).
template <class... Args>
struct fail {
  [[noreturn]] fail(const Args&... args, const std::source_location& where = std::source_location::current()) {
    throw Error(escape_bytes(detail::concat(args...)), where);
  }
};
template <class... Args>
fail(const Args&...) -> fail<Args...>;
// fail() for the io layer: a file that cannot be read, written or parsed.
template <class... Args>
struct fail_io {
  [[noreturn]] fail_io(const Args&... args, const std::source_location& where = std::source_location::current()) {
    throw IOError(escape_bytes(detail::concat(args...)), where);
  }
};
template <class... Args>
fail_io(const Args&...) -> fail_io<Args...>;

namespace detail {
template <class E, class... Args>
[[noreturn]] void throw_at(const std::source_location& where, const Args&... args) {
  throw E(escape_bytes(concat(args...)), where);
}
}  // namespace detail

}  // namespace ht

#define HT_CHECK_AS(ErrorType, cond, ...)                                                          \
  do {                                                                                             \
    if (!(cond)) ::ht::detail::throw_at<ErrorType>(std::source_location::current(), __VA_ARGS__); \
  } while (0)
#define HT_CHECK(cond, ...) HT_CHECK_AS(::ht::Error, cond, __VA_ARGS__)
#define HT_CHECK_VALUE(cond, ...) HT_CHECK_AS(::ht::ValueError, cond, __VA_ARGS__)
#define HT_CHECK_INDEX(cond, ...) HT_CHECK_AS(::ht::IndexError, cond, __VA_ARGS__)
#define HT_CHECK_TYPE(cond, ...) HT_CHECK_AS(::ht::TypeError, cond, __VA_ARGS__)
#define HT_CHECK_IO(cond, ...) HT_CHECK_AS(::ht::IOError, cond, __VA_ARGS__)
#define HT_CHECK_NOT_IMPLEMENTED(cond, ...) HT_CHECK_AS(::ht::NotImplementedError, cond, __VA_ARGS__)
