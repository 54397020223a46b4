// avg_pool2d as a sum of strided window views (padding counted, as PyTorch's count_include_pad=True default).
#include "core/ops.h"
#include "nn/functional.h"

namespace ht::nn::functional {

Tensor avg_pool2d(const Tensor& x_in, Size2 k, Size2 stride, Size2 padding) {
  HT_CHECK(x_in.dim() == 4, "[avg_pool2d] expected an input (N, C, H, W), got ", shape_str(x_in.sizes()));
  if (stride.h == 0 && stride.w == 0) stride = k;
  HT_CHECK(k.h > 0 && k.w > 0 && stride.h > 0 && stride.w > 0, "[avg_pool2d] kernel and stride must be positive");
  HT_CHECK(padding.h * 2 <= k.h && padding.w * 2 <= k.w, "[avg_pool2d] pad should be at most half of effective ",
           "kernel size, but got pad=", padding.h, ", kernel_size=", k.h);
  Tensor x = x_in;
  int64_t n = x.size(0), c = x.size(1);
  // zero padding, which count_include_pad=True averages over
  if (padding.h) {
    Tensor z = zeros({n, c, padding.h, x.size(3)}, {.dtype = x.dtype(), .device = x.device()});
    x = cat({z, x, z}, 2);
  }
  if (padding.w) {
    Tensor z = zeros({n, c, x.size(2), padding.w}, {.dtype = x.dtype(), .device = x.device()});
    x = cat({z, x, z}, 3);
  }
  int64_t oh = (x.size(2) - k.h) / stride.h + 1, ow = (x.size(3) - k.w) / stride.w + 1;
  HT_CHECK(x.size(2) >= k.h && x.size(3) >= k.w && oh > 0 && ow > 0, "[avg_pool2d] Given input size: (", c, "x",
           x_in.size(2), "x", x_in.size(3), "). Calculated output size: (", c, "x", std::max<int64_t>(oh, 0), "x",
           std::max<int64_t>(ow, 0), "). Output size is too small");
  Tensor acc;
  for (int64_t i = 0; i < k.h; ++i)
    for (int64_t j = 0; j < k.w; ++j) {
      Tensor win = x.slice(2, i, i + (oh - 1) * stride.h + 1, stride.h).slice(3, j, j + (ow - 1) * stride.w + 1, stride.w);
      acc = acc.defined() ? add(acc, win) : win;
    }
  return div(acc, double(k.h * k.w));
}

}  // namespace ht::nn::functional
