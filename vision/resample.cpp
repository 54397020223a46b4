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

Coeffs precompute(int64_t in_size, int64_t out_size, int64_t first_out, int64_t n_out) {
  double scale = double(in_size) / double(out_size);
  double filterscale = std::max(scale, 1.0);
  double support = 1.0 * filterscale;
  Coeffs c;
  c.ksize = int(std::ceil(support)) * 2 + 1;
  c.first.resize(size_t(n_out));
  c.count.resize(size_t(n_out));
  c.weights.assign(size_t(n_out * c.ksize), 0);
  std::vector<double> k(size_t(c.ksize));
  for (int64_t xx = first_out; xx < first_out + n_out; ++xx) {
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
      c.weights[size_t((xx - first_out) * c.ksize + x)] =
          w < 0 ? int32_t(-0.5 + w * (1 << kPrecisionBits)) : int32_t(0.5 + w * (1 << kPrecisionBits));
    }
    c.first[size_t(xx - first_out)] = xmin;
    c.count[size_t(xx - first_out)] = xmax;
  }
  split_for_avx2(c, n_out);
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

// Pillow's ImagingResampleInner from `src` (already the crop box) to width x height, of which only `window`
// (inside width x height) is computed. Each output pixel depends only on its own coefficients, so the window
// holds the same bytes as that part of the full result.
Image resample_window(PixelRows src, int64_t width, int64_t height, const Box& window, Passes pass) {
  const bool resize_x = width != src.width, resize_y = height != src.height;
  // Pillow 13 runs the vertical pass first when the height shrinks by more than twice as many pixels as the width
  // (ImagingResampleInner, python-pillow/Pillow pull request 9549); the rounding between the passes makes the
  // order visible in the pixels, so it is followed here.
  const bool vertical_first = src.height - height > 0 && src.height - height > (src.width - width) * 2;
  // An axis that keeps its size passes the window's columns or rows straight through.
  if (!resize_x) {
    src.data += window.left * 3;
    src.width = window.width;
  }
  if (!resize_y) {
    src.data += window.top * src.stride;
    src.height = window.height;
  }
  Image out = Image::uninitialized(window.width, window.height);
  if (!resize_x && !resize_y) {
    for (int64_t y = 0; y < window.height; ++y) std::copy_n(src.row(y), window.width * 3, out.row(y));
    return out;
  }
  if (!resize_y) {
    pass.horizontal(src, out, 0, resample::precompute(src.width, width, window.left, window.width));
    return out;
  }
  Coeffs cv = resample::precompute(src.height, height, window.top, window.height);
  if (!resize_x) {
    pass.vertical(src, out, 0, cv);
    return out;
  }
  Coeffs ch = resample::precompute(src.width, width, window.left, window.width);
  if (vertical_first) {
    Image temp = Image::uninitialized(src.width, window.height);
    pass.vertical(src, temp, 0, cv);
    pass.horizontal(rows_of(temp), out, 0, ch);
    return out;
  }
  // The horizontal pass covers only the rows the vertical pass reads (ImagingResampleInner's ybox).
  int64_t y_first = cv.first.front(), y_last = cv.first.back() + cv.count.back();
  Image temp = Image::uninitialized(window.width, y_last - y_first);
  pass.horizontal(src, temp, y_first, ch);
  pass.vertical(rows_of(temp), out, y_first, cv);
  return out;
}

void check_sizes(const Image& src, int64_t width, int64_t height) {
  HT_CHECK(width > 0 && height > 0, "[resize] expected a positive output size, got ", width, "x", height);
  HT_CHECK(src.width > 0 && src.height > 0, "[resize] expected a non-empty image, got ", src.width, "x", src.height);
}

bool inside(const Box& box, int64_t width, int64_t height) {
  return box.width > 0 && box.height > 0 && box.left >= 0 && box.top >= 0 && box.left + box.width <= width &&
         box.top + box.height <= height;
}

}  // namespace

Image resize_bilinear(const Image& src, int64_t width, int64_t height, ResampleCode code) {
  check_sizes(src, width, height);
  if (width == src.width && height == src.height) return src;
  return resample_window(rows_of(src), width, height, {0, 0, height, width}, passes(code));
}

Image resize_bilinear(const Image& src, const Box& box, int64_t width, int64_t height, ResampleCode code) {
  check_sizes(src, width, height);
  HT_CHECK(inside(box, src.width, src.height), "[resize] expected a non-empty box inside the ", src.width, "x",
           src.height, " image, got ", box.width, "x", box.height, " at (", box.left, ", ", box.top, ")");
  PixelRows rows = rows_of(src);
  rows.data = src.row(box.top) + box.left * 3;
  rows.width = box.width;
  rows.height = box.height;
  return resample_window(rows, width, height, {0, 0, height, width}, passes(code));
}

Image resize_bilinear_window(const Image& src, int64_t width, int64_t height, const Box& window, ResampleCode code) {
  check_sizes(src, width, height);
  HT_CHECK(inside(window, width, height), "[resize] expected a non-empty window inside the ", width, "x", height,
           " output, got ", window.width, "x", window.height, " at (", window.left, ", ", window.top, ")");
  return resample_window(rows_of(src), width, height, window, passes(code));
}

bool resample_has_avx2() { return cpu_has_avx2(); }

}  // namespace ht::vision
