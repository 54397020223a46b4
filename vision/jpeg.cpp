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

}  // namespace

Image decode_jpeg(const std::vector<uint8_t>& bytes, const std::string& path, int64_t min_width, int64_t min_height) {
  TjHandle tj;
  HT_CHECK(tj.h != nullptr, "[decode_jpeg] libjpeg-turbo could not start: ", tjGetErrorStr());
  int w = 0, h = 0, subsamp = 0, colorspace = 0;
  if (tjDecompressHeader3(tj.h, bytes.data(), static_cast<unsigned long>(bytes.size()), &w, &h, &subsamp, &colorspace) != 0)
    fail("[decode_jpeg] ", path, " is not a readable JPEG: ", tjGetErrorStr2(tj.h));
  HT_CHECK(colorspace != TJCS_CMYK && colorspace != TJCS_YCCK, "[decode_jpeg] ", path,
           " is a CMYK JPEG; halftorch decodes grayscale and YCbCr/RGB JPEGs only");
  tjscalingfactor f = pick_scale(w, h, min_width, min_height);
  Image img(TJSCALED(w, f), TJSCALED(h, f));
  // Every warning is an error too: libjpeg-turbo reports a truncated file ("Premature end of JPEG file") as a
  // warning and fills the rest grey, where PIL raises "image file is truncated".
  if (tjDecompress2(tj.h, bytes.data(), static_cast<unsigned long>(bytes.size()), img.pixels.data(), int(img.width),
                    0, int(img.height), TJPF_RGB, TJFLAG_STOPONWARNING) != 0)
    fail("[decode_jpeg] ", path, " is a corrupt or truncated JPEG: ", tjGetErrorStr2(tj.h));
  return img;
}

}  // namespace ht::vision
