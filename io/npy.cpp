// .npy reader and writer (NEP 1 format versions 1.0, 2.0, 3.0).
#include "io/npy.h"

#include <cstring>
#include <regex>

#include "io/tensor_bytes.h"

namespace ht::io {

namespace {
const char kMagic[] = "\x93NUMPY";

struct Descr {
  const char* code;
  DType dtype;
};
// numpy writes '|' for one-byte types and '<' for little-endian ones.
constexpr Descr kDescrs[] = {{"<f2", kFloat16}, {"<f4", kFloat32}, {"<f8", kFloat64}, {"<i8", kInt64},
                             {"<i4", kInt32},   {"<i2", kInt16},   {"|i1", kInt8},    {"|u1", kUInt8},
                             {"|b1", kBool}};

DType dtype_from_descr(std::string d, const std::string& what) {
  if (d.size() == 3 && (d[0] == '<' || d[0] == '=') && d[2] == '1') d[0] = '|';  // '<u1' is also valid
  if (d.size() == 3 && d[0] == '=') d[0] = '<';                                   // native = little here
  for (const auto& x : kDescrs)
    if (d == x.code) return x.dtype;
  fail_io("[io] ", what, ": .npy dtype '", d, "' is not supported (little-endian f2/f4/f8/i1-i8/u1/b1 are)");
}

const char* descr_of(DType t) {
  for (const auto& x : kDescrs)
    if (x.dtype == t) return x.code;
  fail_io("[io] .npy cannot hold ", dtype_name(t), " (NumPy has no such dtype); convert to float32 first");
}
}  // namespace

bool looks_like_npy(const uint8_t* data, size_t size) { return size >= 6 && std::memcmp(data, kMagic, 6) == 0; }

Value load_npy(const std::shared_ptr<MappedFile>& file) {
  const std::string& what = file->path();
  const uint8_t* data = file->data();
  const size_t size = file->size();
  HT_CHECK_IO(size >= 10 && looks_like_npy(data, size), "[io] ", what, ": not a .npy file");
  const int major = data[6];
  HT_CHECK_IO(major >= 1 && major <= 3, "[io] ", what, ": .npy format version ", major, " is not supported");
  const size_t len_bytes = major == 1 ? 2 : 4;
  HT_CHECK_IO(size >= 8 + len_bytes, "[io] ", what, ": truncated .npy header");
  const uint64_t header_len = get_le(data + 8, int(len_bytes));
  const uint64_t start = 8 + len_bytes;
  HT_CHECK_IO(in_bounds(start, header_len, size), "[io] ", what, ": .npy header runs past the end of the file");
  const std::string header(reinterpret_cast<const char*>(data + start), header_len);

  std::smatch m;
  static const std::regex descr_re(R"('descr'\s*:\s*'([^']*)')");
  static const std::regex fortran_re(R"('fortran_order'\s*:\s*(True|False))");
  static const std::regex shape_re(R"('shape'\s*:\s*\(([^)]*)\))");
  HT_CHECK_IO(std::regex_search(header, m, descr_re), "[io] ", what, ": .npy header has no 'descr'");
  const DType dtype = dtype_from_descr(m[1], what);
  HT_CHECK_IO(std::regex_search(header, m, fortran_re), "[io] ", what, ": .npy header has no 'fortran_order'");
  const bool fortran = m[1] == "True";
  HT_CHECK_IO(std::regex_search(header, m, shape_re), "[io] ", what, ": .npy header has no 'shape'");
  Shape shape;
  unsigned __int128 numel = 1;
  const std::string dims = m[1];
  for (size_t i = 0; i < dims.size();) {
    while (i < dims.size() && (dims[i] == ' ' || dims[i] == ',')) ++i;
    if (i >= dims.size()) break;
    size_t j = i;
    while (j < dims.size() && std::isdigit(static_cast<unsigned char>(dims[j]))) ++j;
    HT_CHECK_IO(j > i && j - i <= 18, "[io] ", what, ": .npy shape '(", dims, ")' is invalid");
    shape.push_back(std::stoll(dims.substr(i, j - i)));
    numel *= uint64_t(shape.back());
    HT_CHECK_IO(numel <= size, "[io] ", what, ": .npy shape (", dims, ") is larger than the file");
    i = j;
  }
  const uint64_t nbytes = uint64_t(numel) * element_size(dtype);
  const uint64_t data_start = start + header_len;
  HT_CHECK_IO(size - data_start == nbytes, "[io] ", what, ": .npy data has ", size - data_start,
           " bytes, shape ", shape_str(shape), " of ", dtype_name(dtype), " needs ", nbytes);
  StoragePtr s = storage_from_file(file, data + data_start, nbytes, element_size(dtype));
  Shape strides = contiguous_strides(shape);
  if (fortran) {  // column-major: a view with reversed strides
    int64_t st = 1;
    for (size_t i = 0; i < shape.size(); ++i) {
      strides[i] = st;
      st *= std::max<int64_t>(shape[i], 1);
    }
  }
  return Tensor(s, dtype, shape, strides, 0);
}

void save_npy(const Tensor& t, const std::string& path) {
  std::string dict = std::string("{'descr': '") + descr_of(t.dtype()) + "', 'fortran_order': False, 'shape': (";
  for (int64_t d : t.sizes()) dict += std::to_string(d) + ", ";
  if (t.dim() >= 1) dict.erase(dict.size() - (t.dim() == 1 ? 1 : 2));
  dict += "), }";
  // Pad with spaces so the data starts 64-byte aligned, as numpy does; the header ends with '\n'.
  size_t total = 10 + dict.size() + 1;
  bool v2 = false;
  if (total % 64) dict.append(64 - total % 64, ' ');
  if (dict.size() + 1 > 65535) {
    v2 = true;
    dict.erase(dict.find_last_not_of(' ') + 1);
    total = 12 + dict.size() + 1;
    if (total % 64) dict.append(64 - total % 64, ' ');
  }
  dict += '\n';
  std::string head(kMagic, 6);
  head.push_back(char(v2 ? 2 : 1));
  head.push_back(0);
  if (v2)
    put_u32(head, uint32_t(dict.size()));
  else
    put_u16(head, uint16_t(dict.size()));
  AtomicFileWriter out(path);
  out.write(head);
  out.write(dict);
  Tensor keep;
  const uint8_t* p = contiguous_bytes(t, keep);
  out.write(p, t.nbytes());
  out.commit();
}

}  // namespace ht::io
