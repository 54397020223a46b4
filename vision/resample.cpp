#include "vision/resample.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace ht::vision {

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // Resample.c's PRECISION_BITS

double triangle(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

// Resample.c's precompute_coeffs + normalize_coeffs_8bpc: for each output position, the first input index,
// the tap count and the fixed-point weights.
struct Coeffs {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> weights;  // out_size * ksize
};

Coeffs precompute(int64_t in_size, int64_t out_size) {
  double scale = double(in_size) / double(out_size);
  double filterscale = std::max(scale, 1.0);
  double support = 1.0 * filterscale;
  Coeffs c;
  c.ksize = int(std::ceil(support)) * 2 + 1;
  c.first.resize(size_t(out_size));
  c.count.resize(size_t(out_size));
  c.weights.assign(size_t(out_size * c.ksize), 0);
  std::vector<double> k(size_t(c.ksize));
  for (int64_t xx = 0; xx < out_size; ++xx) {
    double center = (double(xx) + 0.5) * scale;
    double ss = 1.0 / filterscale;
    int xmin = std::max(int(center - support + 0.5), 0);  // (int) truncates, as in C
    int xmax = std::min(int(center + support + 0.5), int(in_size)) - xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      k[size_t(x)] = triangle((x + xmin - center + 0.5) * ss);
      ww += k[size_t(x)];
    }
    for (int x = 0; x < xmax; ++x) {
      double w = ww != 0.0 ? k[size_t(x)] / ww : k[size_t(x)];
      c.weights[size_t(xx * c.ksize + x)] =
          w < 0 ? int32_t(-0.5 + w * (1 << kPrecisionBits)) : int32_t(0.5 + w * (1 << kPrecisionBits));
    }
    c.first[size_t(xx)] = xmin;
    c.count[size_t(xx)] = xmax;
  }
  return c;
}

uint8_t clip8(int32_t v) {
  int32_t s = v >> kPrecisionBits;
  return uint8_t(s < 0 ? 0 : s > 255 ? 255 : s);
}

// Rows [y0, y0 + out.height) of `in`, resampled along x into `out`.
void horizontal(const Image& in, Image& out, int64_t y0, const Coeffs& c) {
  for (int64_t y = 0; y < out.height; ++y) {
    const uint8_t* src = in.row(y0 + y);
    uint8_t* dst = out.row(y);
    for (int64_t x = 0; x < out.width; ++x) {
      const int32_t* k = &c.weights[size_t(x * c.ksize)];
      const uint8_t* p = src + c.first[size_t(x)] * 3;
      int32_t r = 1 << (kPrecisionBits - 1), g = r, b = r;
      for (int i = 0; i < c.count[size_t(x)]; ++i) {
        r += p[3 * i] * k[i];
        g += p[3 * i + 1] * k[i];
        b += p[3 * i + 2] * k[i];
      }
      dst[3 * x] = clip8(r);
      dst[3 * x + 1] = clip8(g);
      dst[3 * x + 2] = clip8(b);
    }
  }
}

// Along y: output row y takes input rows first[y] - shift ...
void vertical(const Image& in, Image& out, int64_t shift, const Coeffs& c) {
  std::vector<int32_t> acc(size_t(out.width * 3));
  for (int64_t y = 0; y < out.height; ++y) {
    const int32_t* k = &c.weights[size_t(y * c.ksize)];
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    for (int i = 0; i < c.count[size_t(y)]; ++i) {
      const uint8_t* src = in.row(c.first[size_t(y)] - shift + i);
      for (size_t j = 0; j < acc.size(); ++j) acc[j] += src[j] * k[i];
    }
    uint8_t* dst = out.row(y);
    for (size_t j = 0; j < acc.size(); ++j) dst[j] = clip8(acc[j]);
  }
}

}  // namespace

Image resize_bilinear(const Image& src, int64_t width, int64_t height) {
  HT_CHECK(width > 0 && height > 0, "[resize] expected a positive output size, got ", width, "x", height);
  HT_CHECK(src.width > 0 && src.height > 0, "[resize] expected a non-empty image, got ", src.width, "x", src.height);
  if (width == src.width && height == src.height) return src;
  Coeffs ch = precompute(src.width, width), cv = precompute(src.height, height);
  // Pillow 13 runs the vertical pass first when the height shrinks by more than twice as many pixels as the width
  // (ImagingResampleInner, python-pillow/Pillow pull request 9549); the rounding between the passes makes the
  // order visible in the pixels, so it is followed here.
  if (src.height - height > 0 && src.height - height > (src.width - width) * 2) {
    Image temp(src.width, height);
    vertical(src, temp, 0, cv);
    if (width == src.width) return temp;
    Image out(width, height);
    horizontal(temp, out, 0, ch);
    return out;
  }
  // The horizontal pass covers only the rows the vertical pass reads (ImagingResampleInner's ybox).
  int64_t y_first = cv.first.front(), y_last = cv.first.back() + cv.count.back();
  const Image* rows = &src;
  Image temp;
  int64_t shift = 0;
  if (width != src.width) {
    temp = Image(width, y_last - y_first);
    horizontal(src, temp, y_first, ch);
    rows = &temp;
    shift = y_first;
  }
  if (height == src.height) return rows == &src ? src : temp;
  Image out(width, height);
  vertical(*rows, out, shift, cv);
  return out;
}

}  // namespace ht::vision
