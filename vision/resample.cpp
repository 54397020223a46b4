#include "vision/resample.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "vision/resample_passes.h"

namespace ht::vision {

namespace resample {

namespace {

double triangle(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

// The AVX2 pass's 16-bit halves of the weights (resample_passes.h).
void split_for_avx2(Coeffs& c, int64_t out_size) {
  c.groups = (c.ksize + 3) / 4;
  c.lo4.assign(size_t(out_size * c.groups * 16), 0);
  c.hi4.assign(c.lo4.size(), 0);
  for (int64_t xx = 0; xx < out_size; ++xx) {
    for (int i = 0; i < c.count[size_t(xx)]; ++i) {
      int32_t w = c.weights[size_t(xx * c.ksize + i)];
      // lane of tap i: group i / 4, half (i % 4) / 2, position i % 2 within each of the R, G, B pairs
      size_t base = size_t((xx * c.groups + i / 4) * 16 + (i % 4) / 2 * 8 + i % 2);
      for (int channel = 0; channel < 3; ++channel) {
        c.lo4[base + size_t(2 * channel)] = int16_t(w & 0x7fff);
        c.hi4[base + size_t(2 * channel)] = int16_t(w >> 15);
      }
    }
  }
}

}  // namespace

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
  split_for_avx2(c, out_size);
  return c;
}

void horizontal_portable(const PixelRows& in, Image& out, int64_t y0, const Coeffs& c) {
  for (int64_t y = 0; y < out.height; ++y) {
    const uint8_t* src = in.row(y0 + y);
    uint8_t* dst = out.row(y);
    for (int64_t x = 0; x < out.width; ++x) horizontal_pixel(src, dst, x, c);
  }
}

void vertical_portable(const PixelRows& in, Image& out, int64_t shift, const Coeffs& c) {
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

}  // namespace resample

namespace {

using resample::Coeffs;
using resample::PixelRows;

PixelRows rows_of(const Image& img) {
  return {img.pixels.data(), img.width * 3, img.width, img.height, img.pixels.data() + img.pixels.size()};
}

bool cpu_has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
}

struct Passes {
  void (*horizontal)(const PixelRows&, Image&, int64_t, const Coeffs&);
  void (*vertical)(const PixelRows&, Image&, int64_t, const Coeffs&);
};

Passes passes(ResampleCode code) {
  if (code == ResampleCode::kBest && cpu_has_avx2()) return {resample::horizontal_avx2, resample::vertical_avx2};
  return {resample::horizontal_portable, resample::vertical_portable};
}

// Pillow's ImagingResampleInner on `src` (already the crop box) to width x height, which differs from src's size.
Image resample_rows(const PixelRows& src, int64_t width, int64_t height, Passes pass) {
  // Pillow 13 runs the vertical pass first when the height shrinks by more than twice as many pixels as the width
  // (ImagingResampleInner, python-pillow/Pillow pull request 9549); the rounding between the passes makes the
  // order visible in the pixels, so it is followed here.
  if (src.height - height > 0 && src.height - height > (src.width - width) * 2) {
    Image temp(src.width, height);
    pass.vertical(src, temp, 0, resample::precompute(src.height, height));
    if (width == src.width) return temp;
    Image out(width, height);
    pass.horizontal(rows_of(temp), out, 0, resample::precompute(src.width, width));
    return out;
  }
  if (height == src.height) {
    Image out(width, height);
    pass.horizontal(src, out, 0, resample::precompute(src.width, width));
    return out;
  }
  Coeffs cv = resample::precompute(src.height, height);
  Image out(width, height);
  if (width == src.width) {
    pass.vertical(src, out, 0, cv);
    return out;
  }
  // The horizontal pass covers only the rows the vertical pass reads (ImagingResampleInner's ybox).
  int64_t y_first = cv.first.front(), y_last = cv.first.back() + cv.count.back();
  Image temp(width, y_last - y_first);
  pass.horizontal(src, temp, y_first, resample::precompute(src.width, width));
  pass.vertical(rows_of(temp), out, y_first, cv);
  return out;
}

}  // namespace

Image resize_bilinear(const Image& src, int64_t width, int64_t height, ResampleCode code) {
  HT_CHECK(width > 0 && height > 0, "[resize] expected a positive output size, got ", width, "x", height);
  HT_CHECK(src.width > 0 && src.height > 0, "[resize] expected a non-empty image, got ", src.width, "x", src.height);
  if (width == src.width && height == src.height) return src;
  return resample_rows(rows_of(src), width, height, passes(code));
}

Image resize_bilinear(const Image& src, const Box& box, int64_t width, int64_t height, ResampleCode code) {
  HT_CHECK(width > 0 && height > 0, "[resize] expected a positive output size, got ", width, "x", height);
  HT_CHECK(box.width > 0 && box.height > 0 && box.left >= 0 && box.top >= 0 && box.left + box.width <= src.width &&
               box.top + box.height <= src.height,
           "[resize] expected a non-empty box inside the ", src.width, "x", src.height, " image, got ", box.width, "x",
           box.height, " at (", box.left, ", ", box.top, ")");
  PixelRows rows = rows_of(src);
  rows.data = src.row(box.top) + box.left * 3;
  rows.width = box.width;
  rows.height = box.height;
  if (width == box.width && height == box.height) {  // a copy of the box
    Image out(width, height);
    for (int64_t y = 0; y < height; ++y) std::copy_n(rows.row(y), width * 3, out.row(y));
    return out;
  }
  return resample_rows(rows, width, height, passes(code));
}

bool resample_has_avx2() { return cpu_has_avx2(); }

}  // namespace ht::vision
