// IDX (MNIST-style) and CIFAR-10 binary readers. gzip is read through zlib, which passes plain files through.
#include "io/datasets.h"

#include <zlib.h>

#include <cstring>
#include <filesystem>

namespace ht::io {

namespace {

// The whole (possibly gzip-compressed) file.
std::vector<uint8_t> read_maybe_gzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  HT_CHECK_IO(f != nullptr, "[datasets] cannot open ", path);
  std::vector<uint8_t> out;
  uint8_t buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + n);
  int err = 0;
  const char* msg = n < 0 ? gzerror(f, &err) : nullptr;
  std::string what = msg ? msg : "";
  gzclose(f);
  HT_CHECK_IO(n == 0, "[datasets] ", path, ": read error: ", what);
  return out;
}

uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

// An IDX file of unsigned bytes: returns the dims, data in `bytes` after the header.
Shape read_idx(const std::string& path, std::vector<uint8_t>& bytes, size_t& header) {
  bytes = read_maybe_gzip(path);
  HT_CHECK_IO(bytes.size() >= 4 && bytes[0] == 0 && bytes[1] == 0, "[datasets] ", path, ": expected an IDX file");
  HT_CHECK_IO(bytes[2] == 0x08, "[datasets] ", path, ": expected unsigned byte IDX data (type 0x08), got type 0x",
           std::hex, int(bytes[2]));
  size_t ndim = bytes[3];
  header = 4 + 4 * ndim;
  HT_CHECK_IO(bytes.size() >= header, "[datasets] ", path, ": truncated IDX header");
  Shape dims;
  size_t total = 1;
  for (size_t d = 0; d < ndim; ++d) {
    dims.push_back(int64_t(be32(bytes.data() + 4 + 4 * d)));
    total *= size_t(dims.back());
  }
  HT_CHECK_IO(bytes.size() - header == total, "[datasets] ", path, ": expected ", total, " data bytes for dims ",
           shape_str(dims), ", got ", bytes.size() - header);
  return dims;
}

// `hint` says where the files come from, for the error when they are missing.
std::string find_file(const std::string& dir, const std::string& name, const char* hint) {
  namespace fs = std::filesystem;
  for (const std::string& cand : {name + ".gz", name})
    if (fs::exists(fs::path(dir) / cand)) return (fs::path(dir) / cand).string();
  fail_io("[datasets] expected ", name, "[.gz] in ", dir, hint);
}

constexpr const char* kFashionMnistHint =
    " (Debian's package dataset-fashion-mnist installs them in /usr/share/datasets/fashion-mnist: "
    "apt-get install dataset-fashion-mnist)";

}  // namespace

ImageDataset load_fashion_mnist(const std::string& dir, bool train) {
  std::string split = train ? "train" : "t10k";
  std::vector<uint8_t> ib, lb;
  size_t ih, lh;
  std::string ipath = find_file(dir, split + "-images-idx3-ubyte", kFashionMnistHint);
  std::string lpath = find_file(dir, split + "-labels-idx1-ubyte", kFashionMnistHint);
  Shape idims = read_idx(ipath, ib, ih), ldims = read_idx(lpath, lb, lh);
  HT_CHECK_IO(idims.size() == 3, "[datasets] ", ipath, ": expected images [N, H, W], got dims ", shape_str(idims));
  HT_CHECK_IO(ldims.size() == 1 && ldims[0] == idims[0], "[datasets] ", lpath, ": expected ", idims[0],
           " labels, got dims ", shape_str(ldims));
  ImageDataset d;
  d.images = empty({idims[0], 1, idims[1], idims[2]}, {.dtype = kUInt8});
  std::memcpy(d.images.raw_data(), ib.data() + ih, ib.size() - ih);
  std::vector<int64_t> labels(lb.begin() + long(lh), lb.end());
  d.labels = from_vector(labels, {ldims[0]});
  return d;
}

ImageDataset load_cifar10(const std::string& dir, bool train) {
  namespace fs = std::filesystem;
  std::string root = fs::exists(fs::path(dir) / "cifar-10-batches-bin") ? (fs::path(dir) / "cifar-10-batches-bin").string() : dir;
  std::vector<std::string> files;
  if (train)
    for (int i = 1; i <= 5; ++i) files.push_back("data_batch_" + std::to_string(i) + ".bin");
  else
    files.push_back("test_batch.bin");
  constexpr size_t kRecord = 1 + 3 * 32 * 32;
  std::vector<uint8_t> all;
  for (const auto& f : files) {
    std::string path = (fs::path(root) / f).string();
    HT_CHECK_IO(fs::exists(path), "[datasets] expected CIFAR-10 binary file ", f, " in ", root);
    std::vector<uint8_t> b = read_maybe_gzip(path);
    HT_CHECK_IO(b.size() % kRecord == 0, "[datasets] ", path, ": expected a multiple of ", kRecord, " bytes, got ",
             b.size());
    all.insert(all.end(), b.begin(), b.end());
  }
  int64_t n = int64_t(all.size() / kRecord);
  ImageDataset d;
  d.images = empty({n, 3, 32, 32}, {.dtype = kUInt8});
  std::vector<int64_t> labels(static_cast<size_t>(n), 0);
  auto* img = static_cast<uint8_t*>(d.images.raw_data());
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* r = all.data() + size_t(i) * kRecord;
    HT_CHECK_IO(r[0] < 10, "[datasets] CIFAR-10 record ", i, " has label ", int(r[0]), ", expected 0..9");
    labels[size_t(i)] = r[0];
    std::memcpy(img + size_t(i) * (kRecord - 1), r + 1, kRecord - 1);
  }
  d.labels = from_vector(labels, {n});
  return d;
}

Tensor normalize_images(const Tensor& images, const std::vector<double>& mean, const std::vector<double>& std) {
  HT_CHECK_IO(images.dim() == 4 && images.dtype() == kUInt8, "[datasets] expected uint8 images [N, C, H, W], got ",
           dtype_name(images.dtype()), " ", shape_str(images.sizes()));
  int64_t c = images.size(1), plane = images.size(2) * images.size(3);
  HT_CHECK_IO(int64_t(mean.size()) == c && int64_t(std.size()) == c, "[datasets] expected ", c,
           " channel means and stds, got ", mean.size(), " and ", std.size());
  Tensor src = images.cpu().contiguous();
  Tensor out = empty(images.sizes(), {.dtype = kFloat32});
  const auto* p = static_cast<const uint8_t*>(src.raw_data());
  auto* q = static_cast<float*>(out.raw_data());
  for (int64_t i = 0; i < src.numel(); ++i) {
    int64_t ch = (i / plane) % c;
    q[i] = float((double(p[i]) / 255.0 - mean[size_t(ch)]) / std[size_t(ch)]);
  }
  return out;
}

}  // namespace ht::io
