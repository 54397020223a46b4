// ToTensor and Normalize (torchvision's semantics), and the two fused: the float of each pixel value goes through
// a 256-entry table per channel holding exactly what the separate steps compute for that value, v / 255.0f and
// then (x - mean) / std in float, so the fused pass gives the same bits without a division per value and without
// the intermediate tensor.
#include "core/error.h"
#include "vision/transform_steps.h"

namespace ht::vision {

namespace {

// img as a float32 [3, H, W] tensor of table[channel][pixel value].
Tensor planes_through(const Image& img, const ChannelTables& table) {
  Tensor out = empty({3, img.height, img.width}, {.dtype = kFloat32});
  const int64_t plane = img.height * img.width;
  float* r = out.data_ptr<float>();
  float* g = r + plane;
  float* b = g + plane;
  const uint8_t* src = img.pixels.data();
  for (int64_t i = 0; i < plane; ++i) {
    r[i] = table[0][src[3 * i]];
    g[i] = table[1][src[3 * i + 1]];
    b[i] = table[2][src[3 * i + 2]];
  }
  return out;
}

float unit(int v) { return float(v) / 255.0f; }  // ToTensor's value, as torchvision divides by 255

const ChannelTables& unit_tables() {
  static const ChannelTables tables = [] {
    ChannelTables t;
    for (int v = 0; v < 256; ++v) t[0][size_t(v)] = t[1][size_t(v)] = t[2][size_t(v)] = unit(v);
    return t;
  }();
  return tables;
}

}  // namespace

Tensor to_tensor(const Image& img) { return planes_through(img, unit_tables()); }

Sample ToTensorStep::operator()(Sample s, Rng&) const { return to_tensor(take_image(s, "ToTensor")); }

Sample NormalizeStep::operator()(Sample s, Rng&) const {
  HT_CHECK(std::holds_alternative<Tensor>(s), "[Normalize] expected a tensor (put it after ToTensor), got an image");
  Tensor t = std::get<Tensor>(s).to(kFloat32).contiguous();
  HT_CHECK(t.dim() == 3 && t.size(0) == int64_t(mean.size()), "[Normalize] expected a [", mean.size(),
           ", H, W] tensor, got ", shape_str(t.sizes()));
  Tensor out = empty(t.sizes(), {.dtype = kFloat32});
  int64_t plane = t.size(1) * t.size(2);
  const float* src = t.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  for (size_t c = 0; c < mean.size(); ++c)
    for (int64_t i = 0; i < plane; ++i) dst[int64_t(c) * plane + i] = (src[int64_t(c) * plane + i] - mean[c]) / std[c];
  return out;
}

ToNormalizedTensorStep::ToNormalizedTensorStep(const std::vector<float>& mean, const std::vector<float>& std) {
  for (size_t c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v) table[c][size_t(v)] = (unit(v) - mean[c]) / std[c];  // as NormalizeStep computes
}

Sample ToNormalizedTensorStep::operator()(Sample s, Rng&) const {
  return planes_through(take_image(s, "ToTensor"), table);
}

Transform ToTensor() { return ToTensorStep{}; }

Transform Normalize(std::vector<float> mean, std::vector<float> std) {
  HT_CHECK(mean.size() == std.size() && !mean.empty(), "[Normalize] expected mean and std of one length, got ",
           mean.size(), " and ", std.size());
  return NormalizeStep{std::move(mean), std::move(std)};
}

}  // namespace ht::vision
