#include "vision/transforms.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "vision/resample.h"
#include "vision/transform_steps.h"

namespace ht::vision {

namespace {

// Python's round(): half to even (std::nearbyint in the default rounding mode).
int64_t py_round(double v) { return int64_t(std::nearbyint(v)); }

double uniform(Rng& rng, double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); }

}  // namespace

Image take_image(Sample& s, const char* op) {
  HT_CHECK(!std::holds_alternative<Tensor>(s), "[", op, "] expected an image (put it before ToTensor), got a tensor");
  if (auto* jpeg = std::get_if<EncodedJpeg>(&s)) return decode_jpeg(jpeg->bytes, jpeg->path);
  return std::move(std::get<Image>(s));
}

std::pair<int64_t, int64_t> resize_output_size(int64_t width, int64_t height, int64_t size) {
  HT_CHECK(size > 0, "[Resize] expected a positive size, got ", size);
  if (width <= height) return {size, int64_t(double(size) * double(height) / double(width))};
  return {int64_t(double(size) * double(width) / double(height)), size};
}

Image resize_shorter(const Image& img, int64_t size) {
  auto [w, h] = resize_output_size(img.width, img.height, size);
  return resize_bilinear(img, w, h);
}

Image crop(const Image& img, const Box& box) {
  HT_CHECK(box.width > 0 && box.height > 0, "[crop] expected a positive crop size, got ", box.width, "x", box.height);
  Image out(box.width, box.height);  // zero-filled: black where the box leaves the image
  int64_t x0 = std::max<int64_t>(box.left, 0), x1 = std::min(box.left + box.width, img.width);
  for (int64_t y = std::max<int64_t>(box.top, 0); y < std::min(box.top + box.height, img.height); ++y) {
    if (x1 > x0) std::memcpy(out.row(y - box.top) + (x0 - box.left) * 3, img.row(y) + x0 * 3, size_t(x1 - x0) * 3);
  }
  return out;
}

Box center_crop_box(int64_t image_width, int64_t image_height, int64_t width, int64_t height) {
  // torchvision pads a too-small image by ((size - dim) // 2) before and the rest after, then crops at
  // round((dim - size) / 2.0) of the padded image, which lands on the same pixels as this negative offset.
  int64_t top = image_height < height ? -((height - image_height) / 2) : py_round(double(image_height - height) / 2.0);
  int64_t left = image_width < width ? -((width - image_width) / 2) : py_round(double(image_width - width) / 2.0);
  return {top, left, height, width};
}

Image center_crop(const Image& img, int64_t width, int64_t height) {
  return crop(img, center_crop_box(img.width, img.height, width, height));
}

Image hflip(const Image& img) {
  Image out = img;
  hflip_in_place(out);
  return out;
}

void hflip_in_place(Image& img) {
  for (int64_t y = 0; y < img.height; ++y) {
    uint8_t* row = img.row(y);
    for (int64_t x = 0, mirror = img.width - 1; x < mirror; ++x, --mirror)
      std::swap_ranges(row + 3 * x, row + 3 * x + 3, row + 3 * mirror);
  }
}

Box random_resized_crop_box(int64_t width, int64_t height, Rng& rng, std::pair<double, double> scale,
                            std::pair<double, double> ratio) {
  double area = double(height) * double(width);
  double log_lo = std::log(ratio.first), log_hi = std::log(ratio.second);
  for (int attempt = 0; attempt < 10; ++attempt) {
    double target_area = area * uniform(rng, scale.first, scale.second);
    double aspect = std::exp(uniform(rng, log_lo, log_hi));
    int64_t w = py_round(std::sqrt(target_area * aspect));
    int64_t h = py_round(std::sqrt(target_area / aspect));
    if (0 < w && w <= width && 0 < h && h <= height) {
      int64_t top = std::uniform_int_distribution<int64_t>(0, height - h)(rng);
      int64_t left = std::uniform_int_distribution<int64_t>(0, width - w)(rng);
      return {top, left, h, w};
    }
  }
  double in_ratio = double(width) / double(height);
  int64_t w = width, h = height;
  if (in_ratio < std::min(ratio.first, ratio.second)) {
    h = py_round(double(w) / std::min(ratio.first, ratio.second));
  } else if (in_ratio > std::max(ratio.first, ratio.second)) {
    w = py_round(double(h) * std::max(ratio.first, ratio.second));
  }
  return {(height - h) / 2, (width - w) / 2, h, w};
}

Image draft_resized_crop(const EncodedJpeg& jpeg, const Box& box, int64_t size) {
  int64_t denom = 1;
  for (int64_t d : {2, 4, 8})
    if (box.width >= size * d && box.height >= size * d) denom = d;
  // libjpeg-turbo's 1/d output is ceil(side / d) pixels: asking for at least that picks exactly scale 1/d.
  Image img = decode_jpeg(jpeg.bytes, jpeg.path, (jpeg.width + denom - 1) / denom, (jpeg.height + denom - 1) / denom);
  if (img.width == jpeg.width && img.height == jpeg.height) return resize_bilinear(img, box, size, size);
  // The box in the reduced image's pixels, widened outwards to whole pixels.
  auto scaled = [](int64_t begin, int64_t length, int64_t reduced, int64_t full) {
    int64_t first = begin * reduced / full;
    int64_t last = std::min(reduced, ((begin + length) * reduced + full - 1) / full);
    return std::pair{first, std::max<int64_t>(last - first, 1)};
  };
  auto [left, width] = scaled(box.left, box.width, img.width, jpeg.width);
  auto [top, height] = scaled(box.top, box.height, img.height, jpeg.height);
  return resize_bilinear(img, {top, left, height, width}, size, size);
}

Sample ResizeStep::operator()(Sample s, Rng&) const { return resize_shorter(take_image(s, "Resize"), size); }

Sample CenterCropStep::operator()(Sample s, Rng&) const {
  return center_crop(take_image(s, "CenterCrop"), size, size);
}

Sample ResizeCenterCropStep::operator()(Sample s, Rng&) const {
  Image img = take_image(s, "Resize");
  auto [w, h] = resize_output_size(img.width, img.height, resize);
  Box window = center_crop_box(w, h, crop, crop);
  if (window.top < 0 || window.left < 0) return center_crop(resize_bilinear(img, w, h), crop, crop);  // padded
  return resize_bilinear_window(img, w, h, window);
}

Transform Resize(int64_t size) {
  HT_CHECK(size > 0, "[Resize] expected a positive size, got ", size);
  return ResizeStep{size};
}

Transform CenterCrop(int64_t size) {
  HT_CHECK(size > 0, "[CenterCrop] expected a positive size, got ", size);
  return CenterCropStep{size};
}

Transform RandomResizedCrop(int64_t size, std::pair<double, double> scale, std::pair<double, double> ratio) {
  HT_CHECK(size > 0, "[RandomResizedCrop] expected a positive size, got ", size);
  return [=](Sample s, Rng& rng) -> Sample {
    if (auto* jpeg = std::get_if<EncodedJpeg>(&s))
      return draft_resized_crop(*jpeg, random_resized_crop_box(jpeg->width, jpeg->height, rng, scale, ratio), size);
    Image img = take_image(s, "RandomResizedCrop");
    Box box = random_resized_crop_box(img.width, img.height, rng, scale, ratio);
    return resize_bilinear(img, box, size, size);
  };
}

Transform RandomHorizontalFlip(double p) {
  return [p](Sample s, Rng& rng) -> Sample {
    Image img = take_image(s, "RandomHorizontalFlip");
    if (uniform(rng, 0.0, 1.0) < p) hflip_in_place(img);
    return img;
  };
}

void fuse_steps(std::vector<Transform>& steps) {
  for (size_t i = 0; i + 1 < steps.size(); ++i) {
    if (const ResizeStep* resize = steps[i].target<ResizeStep>()) {
      if (const CenterCropStep* crop = steps[i + 1].target<CenterCropStep>()) {
        steps[i] = ResizeCenterCropStep{resize->size, crop->size};
        steps.erase(steps.begin() + std::ptrdiff_t(i + 1));
      }
    } else if (steps[i].target<ToTensorStep>()) {
      const NormalizeStep* norm = steps[i + 1].target<NormalizeStep>();
      if (norm && norm->mean.size() == 3) {
        steps[i] = ToNormalizedTensorStep{norm->mean, norm->std};
        steps.erase(steps.begin() + std::ptrdiff_t(i + 1));
      }
    }
  }
}

Transform Compose(std::vector<Transform> steps) {
  fuse_steps(steps);
  return [steps = std::move(steps)](Sample s, Rng& rng) -> Sample {
    for (const Transform& t : steps) s = t(std::move(s), rng);
    return s;
  };
}

}  // namespace ht::vision
