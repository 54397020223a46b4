// The float64 convolution of kernels/cpu/conv_reference.h: each output (or gradient) element is one sum over
// the taps that reach it, in a fixed order, so results do not depend on the thread count.
#include "kernels/cpu/conv_reference.h"

namespace ht::kernels::cpu::reference {

namespace {

// Element (a, b, c, d) of a 4-d float64 view.
struct Grid {
  double* data;
  int64_t s0, s1, s2, s3;
  explicit Grid(const RawView& v)
      : data(static_cast<double*>(v.data)), s0(v.strides[0]), s1(v.strides[1]), s2(v.strides[2]), s3(v.strides[3]) {
    HT_CHECK(v.dtype == kFloat64 && v.ndim == 4, "[conv2d] reference path expects 4-d float64 views");
  }
  double& operator()(int64_t a, int64_t b, int64_t c, int64_t d) const {
    return data[a * s0 + b * s1 + c * s2 + d * s3];
  }
};

// The input row (or column) tap k of output position o reads, or -1 when it falls in the padding.
int64_t source(int64_t o, int64_t k, int64_t stride, int64_t pad, int64_t dil, int64_t size) {
  int64_t i = o * stride - pad + k * dil;
  return i >= 0 && i < size ? i : -1;
}

}  // namespace

void conv2d_forward(const Conv2dShape& s, const RawView& xv, const RawView& wv, const RawView* bias,
                    const RawView& yv) {
  Grid x(xv), w(wv), y(yv);
  const double* b = bias ? static_cast<const double*>(bias->data) : nullptr;
  int64_t cg = s.c_in / s.groups, og = s.c_out / s.groups;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t o = 0; o < s.c_out; ++o)
      for (int64_t oy = 0; oy < s.out_h; ++oy)
        for (int64_t ox = 0; ox < s.out_w; ++ox) {
          double acc = b ? b[o * bias->strides[0]] : 0.0;
          for (int64_t c = 0; c < cg; ++c)
            for (int64_t ky = 0; ky < s.kh; ++ky) {
              int64_t iy = source(oy, ky, s.stride_h, s.pad_h, s.dil_h, s.h);
              if (iy < 0) continue;
              for (int64_t kx = 0; kx < s.kw; ++kx) {
                int64_t ix = source(ox, kx, s.stride_w, s.pad_w, s.dil_w, s.w);
                if (ix >= 0) acc += x(n, (o / og) * cg + c, iy, ix) * w(o, c, ky, kx);
              }
            }
          y(n, o, oy, ox) = acc;
        }
}

void conv2d_backward_data(const Conv2dShape& s, const RawView& gyv, const RawView& wv, const RawView& gxv) {
  Grid gy(gyv), w(wv), gx(gxv);
  int64_t cg = s.c_in / s.groups, og = s.c_out / s.groups;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t ci = 0; ci < s.c_in; ++ci) {
      for (int64_t iy = 0; iy < s.h; ++iy)
        for (int64_t ix = 0; ix < s.w; ++ix) gx(n, ci, iy, ix) = 0;
      int64_t g = ci / cg, c = ci % cg;
      for (int64_t o = g * og; o < (g + 1) * og; ++o)
        for (int64_t oy = 0; oy < s.out_h; ++oy)
          for (int64_t ky = 0; ky < s.kh; ++ky) {
            int64_t iy = source(oy, ky, s.stride_h, s.pad_h, s.dil_h, s.h);
            if (iy < 0) continue;
            for (int64_t ox = 0; ox < s.out_w; ++ox)
              for (int64_t kx = 0; kx < s.kw; ++kx) {
                int64_t ix = source(ox, kx, s.stride_w, s.pad_w, s.dil_w, s.w);
                if (ix >= 0) gx(n, ci, iy, ix) += gy(n, o, oy, ox) * w(o, c, ky, kx);
              }
          }
    }
}

void conv2d_backward_weight(const Conv2dShape& s, const RawView& xv, const RawView& gyv, const RawView& gwv) {
  Grid x(xv), gy(gyv), gw(gwv);
  int64_t cg = s.c_in / s.groups, og = s.c_out / s.groups;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t o = 0; o < s.c_out; ++o)
    for (int64_t c = 0; c < cg; ++c)
      for (int64_t ky = 0; ky < s.kh; ++ky)
        for (int64_t kx = 0; kx < s.kw; ++kx) {
          double acc = 0;
          for (int64_t n = 0; n < s.n; ++n)
            for (int64_t oy = 0; oy < s.out_h; ++oy) {
              int64_t iy = source(oy, ky, s.stride_h, s.pad_h, s.dil_h, s.h);
              if (iy < 0) continue;
              for (int64_t ox = 0; ox < s.out_w; ++ox) {
                int64_t ix = source(ox, kx, s.stride_w, s.pad_w, s.dil_w, s.w);
                if (ix >= 0) acc += gy(n, o, oy, ox) * x(n, (o / og) * cg + c, iy, ix);
              }
            }
          gw(o, c, ky, kx) = acc;
        }
}

}  // namespace ht::kernels::cpu::reference
