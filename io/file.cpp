// MappedFile, AtomicFileWriter and CRC-32.
#include "io/file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>

#ifdef HT_HAVE_LIBDEFLATE
#include <libdeflate.h>
#else
#include <zlib.h>
#endif

namespace ht::io {

namespace {
std::string errno_text() { return std::strerror(errno); }

// Large writes bypass the buffer; small ones (headers) are batched into few syscalls.
constexpr size_t kBufferSize = 1 << 20;
constexpr size_t kMmapThreshold = 16 << 20;
}  // namespace

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  HT_CHECK_IO(fd >= 0, "[io] cannot open '", path, "': ", errno_text());
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    std::string e = errno_text();
    ::close(fd);
    fail_io("[io] cannot stat '", path, "': ", e);
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    fail_io("[io] '", path, "' is a directory");
  }
  f->size_ = size_t(st.st_size);
  // Small files are simply read: a mapping would gain little, and a mapped file that another program later
  // truncates in place (torch.save over the same path) turns into SIGBUS for tensors still using it.
  if (S_ISREG(st.st_mode) && f->size_ >= kMmapThreshold) {
    void* p = ::mmap(nullptr, f->size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p != MAP_FAILED) {
      f->data_ = static_cast<uint8_t*>(p);
      f->mapped_ = true;
    }
  }
  if (!f->mapped_ && (f->size_ > 0 || !S_ISREG(st.st_mode))) {
    // One sequential read; pipes and special files have no size up front, so the buffer grows.
    std::vector<uint8_t>& buf = f->fallback_;
    buf.resize(S_ISREG(st.st_mode) ? f->size_ : 0);
    size_t used = 0;
    for (;;) {
      if (used == buf.size()) {
        if (S_ISREG(st.st_mode) && used == f->size_ && used > 0) break;
        buf.resize(std::max<size_t>(buf.size() * 2, 1 << 16));
      }
      ssize_t n = ::read(fd, buf.data() + used, buf.size() - used);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        std::string e = errno_text();
        ::close(fd);
        fail_io("[io] cannot read '", path, "': ", e);
      }
      if (n == 0) break;
      used += size_t(n);
    }
    buf.resize(used);
    f->data_ = buf.data();
    f->size_ = used;
  }
  ::close(fd);
  return f;
}

std::shared_ptr<MappedFile> MappedFile::from_memory(std::vector<uint8_t> bytes, std::string name) {
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = std::move(name);
  f->fallback_ = std::move(bytes);
  f->data_ = f->fallback_.data();
  f->size_ = f->fallback_.size();
  return f;
}

MappedFile::~MappedFile() {
  if (mapped_) ::munmap(data_, size_);
}

AtomicFileWriter::AtomicFileWriter(std::string path) : path_(std::move(path)) {
  HT_CHECK_IO(!path_.empty(), "[io] empty output path");
  std::string dir = ".", base = path_;
  if (auto slash = path_.rfind('/'); slash != std::string::npos) {
    dir = slash == 0 ? "/" : path_.substr(0, slash);
    base = path_.substr(slash + 1);
  }
  HT_CHECK_IO(!base.empty(), "[io] output path '", path_, "' names a directory");
  std::string tmpl = dir + "/." + base + ".tmp.XXXXXX";
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  fd_ = ::mkstemp(name.data());
  HT_CHECK_IO(fd_ >= 0, "[io] cannot create a temporary file next to '", path_, "': ", errno_text());
  temp_path_ = name.data();
  // mkstemp makes the file 0600; a checkpoint should get the usual umask-derived mode.
  mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(fd_, 0666 & ~mask);
  buffer_.reserve(kBufferSize);
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !temp_path_.empty()) ::unlink(temp_path_.c_str());
}

void AtomicFileWriter::flush() {
  const uint8_t* p = buffer_.data();
  size_t n = buffer_.size();
  while (n > 0) {
    ssize_t w = ::write(fd_, p, std::min(n, size_t(1) << 30));
    if (w < 0 && errno == EINTR) continue;
    HT_CHECK_IO(w > 0, "[io] cannot write '", path_, "': ", errno_text());
    p += w;
    n -= size_t(w);
  }
  buffer_.clear();
}

void AtomicFileWriter::write(const void* data, size_t n) {
  HT_CHECK_IO(!committed_ && fd_ >= 0, "[io] write to '", path_, "' after commit");
  const uint8_t* p = static_cast<const uint8_t*>(data);
  offset_ += n;
  if (buffer_.size() + n <= kBufferSize) {
    buffer_.insert(buffer_.end(), p, p + n);
    return;
  }
  flush();
  if (n < kBufferSize) {
    buffer_.insert(buffer_.end(), p, p + n);
    return;
  }
  while (n > 0) {
    ssize_t w = ::write(fd_, p, std::min(n, size_t(1) << 30));
    if (w < 0 && errno == EINTR) continue;
    HT_CHECK_IO(w > 0, "[io] cannot write '", path_, "': ", errno_text());
    p += w;
    n -= size_t(w);
  }
}

void AtomicFileWriter::commit() {
  HT_CHECK_IO(!committed_, "[io] '", path_, "' committed twice");
  flush();
  HT_CHECK_IO(::fsync(fd_) == 0, "[io] fsync of '", path_, "' failed: ", errno_text());
  int fd = fd_;
  fd_ = -1;
  HT_CHECK_IO(::close(fd) == 0, "[io] close of '", path_, "' failed: ", errno_text());
  HT_CHECK_IO(::rename(temp_path_.c_str(), path_.c_str()) == 0, "[io] cannot rename the temporary file onto '",
           path_, "': ", errno_text());
  committed_ = true;
  // Make the rename itself durable.
  std::string dir = ".";
  if (auto slash = path_.rfind('/'); slash != std::string::npos) dir = slash == 0 ? "/" : path_.substr(0, slash);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

uint32_t crc32(uint32_t crc, const void* data, size_t n) {
#ifdef HT_HAVE_LIBDEFLATE
  return libdeflate_crc32(crc, data, n);
#else
  const Bytef* p = static_cast<const Bytef*>(data);
  while (n > 0) {
    uInt chunk = uInt(std::min<size_t>(n, 1u << 30));
    crc = uint32_t(::crc32(crc, p, chunk));
    p += chunk;
    n -= chunk;
  }
  return crc;
#endif
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  HT_CHECK_IO(in.good(), "[io] cannot open '", path, "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string extension_of(const std::string& path) {
  auto slash = path.rfind('/');
  auto dot = path.rfind('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string ext = path.substr(dot);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return ext;
}

}  // namespace ht::io
