// Parameter initialisers, following torch/nn/init.py.
#include "nn/init.h"

#include <cmath>

#include "core/autograd.h"

namespace ht::nn::init {

double calculate_gain(Nonlinearity nonlinearity, double param) {
  switch (nonlinearity) {
    case Nonlinearity::Linear: case Nonlinearity::Conv2d: case Nonlinearity::Sigmoid: return 1.0;
    case Nonlinearity::Tanh: return 5.0 / 3.0;
    case Nonlinearity::Relu: return std::sqrt(2.0);
    case Nonlinearity::LeakyRelu: return std::sqrt(2.0 / (1.0 + param * param));
  }
  fail("[init] unknown nonlinearity ", int(nonlinearity));
}

std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t) {
  HT_CHECK(t.dim() >= 2, "[init] fan in and fan out can not be computed for a tensor with fewer than 2 dimensions, "
           "got shape ", shape_str(t.sizes()));
  int64_t receptive = 1;
  for (int64_t d = 2; d < t.dim(); ++d) receptive *= t.size(d);
  return {t.size(1) * receptive, t.size(0) * receptive};
}

void uniform_(Tensor& t, double a, double b, Generator* gen) { ht::uniform_(t, a, b, gen); }
void normal_(Tensor& t, double mean, double std, Generator* gen) { ht::normal_(t, mean, std, gen); }

void constant_(Tensor& t, double value) {
  NoGradGuard ng;
  t.fill_(value);
}
void zeros_(Tensor& t) { constant_(t, 0.0); }
void ones_(Tensor& t) { constant_(t, 1.0); }

namespace {
double kaiming_std(const Tensor& t, double a, FanMode mode, Nonlinearity nonlinearity) {
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
  int64_t fan = mode == FanMode::FanIn ? fan_in : fan_out;
  HT_CHECK(fan > 0, "[init] initializing a zero-element tensor of shape ", shape_str(t.sizes()));
  return calculate_gain(nonlinearity, a) / std::sqrt(double(fan));
}
}  // namespace

void kaiming_uniform_(Tensor& t, double a, FanMode mode, Nonlinearity nonlinearity, Generator* gen) {
  double bound = std::sqrt(3.0) * kaiming_std(t, a, mode, nonlinearity);
  init::uniform_(t, -bound, bound, gen);
}

void kaiming_normal_(Tensor& t, double a, FanMode mode, Nonlinearity nonlinearity, Generator* gen) {
  init::normal_(t, 0.0, kaiming_std(t, a, mode, nonlinearity), gen);
}

}  // namespace ht::nn::init
