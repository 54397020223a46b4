// ht::nn::init: in-place parameter initialisers with torch.nn.init's formulas (gains, fans, kaiming bounds).
// Each draws from `gen`, or from the default generator (ht::manual_seed) when it is null; none is recorded
// by autograd.
#pragma once
#include <cstdint>
#include <utility>

#include "halftorch/core/random.h"
#include "halftorch/core/tensor.h"

namespace ht::nn::init {

enum class FanMode { FanIn, FanOut };
enum class Nonlinearity { Linear, Conv2d, Sigmoid, Tanh, Relu, LeakyRelu };

// torch.nn.init.calculate_gain; `param` is leaky_relu's negative slope.
double calculate_gain(Nonlinearity nonlinearity, double param = 0.01);
// (fan_in, fan_out) = (size(1), size(0)) times the receptive field (the product of the dims after the first two).
std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t);

void uniform_(Tensor& t, double a = 0.0, double b = 1.0, Generator* gen = nullptr);
void normal_(Tensor& t, double mean = 0.0, double std = 1.0, Generator* gen = nullptr);
void constant_(Tensor& t, double value);
void zeros_(Tensor& t);
void ones_(Tensor& t);
// U(-bound, bound) with bound = gain * sqrt(3 / fan), gain = calculate_gain(nonlinearity, a).
void kaiming_uniform_(Tensor& t, double a = 0.0, FanMode mode = FanMode::FanIn,
                      Nonlinearity nonlinearity = Nonlinearity::LeakyRelu, Generator* gen = nullptr);
// N(0, std^2) with std = gain / sqrt(fan).
void kaiming_normal_(Tensor& t, double a = 0.0, FanMode mode = FanMode::FanIn,
                     Nonlinearity nonlinearity = Nonlinearity::LeakyRelu, Generator* gen = nullptr);

}  // namespace ht::nn::init
