// JPEG through libjpeg-turbo's TurboJPEG API with its defaults, which are PIL's: the accurate integer DCT and
// fancy (smooth) chroma upsampling. Grayscale comes out replicated to RGB as PIL's convert("RGB") does.
#include <turbojpeg.h>

#include <memory>

#include "core/error.h"
#include "vision/image.h"

namespace ht::vision {

namespace {

struct TjHandle {
  tjhandle h = tjInitDecompress();
  TjHandle() = default;
  TjHandle(const TjHandle&) = delete;
  TjHandle& operator=(const TjHandle&) = delete;
  ~TjHandle() {
    if (h) tjDestroy(h);
  }
};

// The smallest of libjpeg-turbo's scales (1/8 .. 1) that keeps the image at least min_w x min_h.
tjscalingfactor pick_scale(int w, int h, int64_t min_w, int64_t min_h) {
  tjscalingfactor best{1, 1};
  if (min_w <= 0 && min_h <= 0) return best;
  for (int denom : {2, 4, 8}) {
    tjscalingfactor f{1, denom};
    if (TJSCALED(w, f) >= min_w && TJSCALED(h, f) >= min_h) best = f;
  }
  return best;
}

struct JpegHeader {
  int width = 0, height = 0, colorspace = 0;
};

JpegHeader read_header(const TjHandle& tj, const std::vector<uint8_t>& bytes, const std::string& path) {
  HT_CHECK(tj.h != nullptr, "[decode_jpeg] libjpeg-turbo could not start: ", tjGetErrorStr());
  JpegHeader hd;
  int subsamp = 0;
  if (tjDecompressHeader3(tj.h, bytes.data(), static_cast<unsigned long>(bytes.size()), &hd.width, &hd.height,
                          &subsamp, &hd.colorspace) != 0)
    fail_io("[decode_jpeg] ", path, " is not a readable JPEG: ", tjGetErrorStr2(tj.h));
  return hd;
}

}  // namespace

std::pair<int64_t, int64_t> jpeg_size(const std::vector<uint8_t>& bytes, const std::string& path) {
  JpegHeader hd = read_header(TjHandle{}, bytes, path);
  return {hd.width, hd.height};
}

Image decode_jpeg(const std::vector<uint8_t>& bytes, const std::string& path, int64_t min_width, int64_t min_height) {
  TjHandle tj;
  auto [w, h, colorspace] = read_header(tj, bytes, path);
  HT_CHECK_IO(colorspace != TJCS_CMYK && colorspace != TJCS_YCCK, "[decode_jpeg] ", path,
              " is a CMYK JPEG; halftorch decodes grayscale and YCbCr/RGB JPEGs only");
  tjscalingfactor f = pick_scale(w, h, min_width, min_height);
  Image img = Image::uninitialized(TJSCALED(w, f), TJSCALED(h, f));
  // Every warning is an error too: libjpeg-turbo reports a truncated file ("Premature end of JPEG file") as a
  // warning and fills the rest grey, where PIL raises "image file is truncated".
  if (tjDecompress2(tj.h, bytes.data(), static_cast<unsigned long>(bytes.size()), img.pixels.data(), int(img.width),
                    0, int(img.height), TJPF_RGB, TJFLAG_STOPONWARNING) != 0)
    fail_io("[decode_jpeg] ", path, " is a corrupt or truncated JPEG: ", tjGetErrorStr2(tj.h));
  return img;
}

}  // namespace ht::vision
