// Half and BFloat16: exhaustive checks over all 65536 bit patterns against the compiler's own _Float16 and
// against exact bfloat16 arithmetic, plus round-to-nearest-even on ties, overflow, NaN and subnormals.
#include <cstring>
#include <limits>

#include "tests/helpers.h"

using namespace ht;

namespace {
uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint16_t ref_half_bits(float f) {  // GCC's _Float16 conversion is IEEE round-to-nearest-even
  _Float16 h = static_cast<_Float16>(f);
  uint16_t b;
  std::memcpy(&b, &h, 2);
  return b;
}
float ref_half_to_float(uint16_t b) {
  _Float16 h;
  std::memcpy(&h, &b, 2);
  return static_cast<float>(h);
}
}  // namespace

TEST_CASE("half -> float is exact for all 65536 patterns") {
  int mismatches = 0;
  for (uint32_t b = 0; b < 65536; ++b) {
    float got = float(Half::from_bits(uint16_t(b)));
    float want = ref_half_to_float(uint16_t(b));
    bool same = std::isnan(want) ? std::isnan(got) : bits_of(got) == bits_of(want);
    if (!same && ++mismatches < 5) FAIL_CHECK("pattern 0x" << std::hex << b << ": got " << got << ", want " << want);
  }
  REQUIRE(mismatches == 0);
}

TEST_CASE("float -> half round trips every half and rounds every midpoint to even") {
  int mismatches = 0;
  for (uint32_t b = 0; b < 65536; ++b) {
    float f = ref_half_to_float(uint16_t(b));
    if (std::isnan(f)) {
      REQUIRE(std::isnan(float(Half(f))));
      continue;
    }
    if (Half(f).bits != uint16_t(b)) ++mismatches;
    // the float exactly between this half and the next one up (same sign), and values just around it
    uint32_t next = (b & 0x7fff) == 0x7c00 ? b : b + 1;
    float g = ref_half_to_float(uint16_t(next));
    if (std::isinf(g) || std::isnan(g)) continue;
    double mid = (double(f) + double(g)) / 2;
    for (float probe : {float(mid), std::nextafter(float(mid), -INFINITY), std::nextafter(float(mid), INFINITY)}) {
      if (Half(probe).bits != ref_half_bits(probe) && ++mismatches < 5)
        FAIL_CHECK("float " << probe << " -> 0x" << std::hex << Half(probe).bits << ", want 0x" << ref_half_bits(probe));
    }
  }
  REQUIRE(mismatches == 0);
}

TEST_CASE("float -> half on a dense sweep of float bit patterns") {
  int mismatches = 0;
  for (uint64_t u = 0; u < (1ull << 32); u += 4099) {  // ~1M patterns across every exponent, both signs
    float f = float_of(uint32_t(u));
    if (std::isnan(f)) continue;
    if (Half(f).bits != ref_half_bits(f) && ++mismatches < 5)
      FAIL_CHECK("float bits 0x" << std::hex << u << " -> 0x" << Half(f).bits << ", want 0x" << ref_half_bits(f));
  }
  REQUIRE(mismatches == 0);
  REQUIRE(Half(65504.0f).bits == 0x7bff);
  REQUIRE(Half(65520.0f).bits == 0x7c00);  // the tie above the largest half rounds to inf
  REQUIRE(Half(-1e6f).bits == 0xfc00);
  REQUIRE(Half(5.9604644775390625e-8f).bits == 0x0001);  // smallest subnormal
  REQUIRE(Half(2.98023223876953125e-8f).bits == 0x0000);  // half of it: tie to even (zero)
}

TEST_CASE("bfloat16 conversions: exact widening, round-to-nearest-even narrowing, NaN kept quiet") {
  for (uint32_t b = 0; b < 65536; ++b) {
    float f = float(BFloat16::from_bits(uint16_t(b)));
    REQUIRE(bits_of(f) == (b << 16));
    if (!std::isnan(f)) REQUIRE(BFloat16(f).bits == b);
  }
  // ties: 1 + 2^-8 lies exactly between 1 and 1 + 2^-7 -> even (1); 1 + 3*2^-8 -> 1 + 2^-6
  REQUIRE(BFloat16(1.0f + 0.00390625f).bits == 0x3f80);
  REQUIRE(BFloat16(1.0f + 3 * 0.00390625f).bits == 0x3f82);
  REQUIRE(std::isnan(float(BFloat16(std::numeric_limits<float>::quiet_NaN()))));
  REQUIRE(std::isinf(float(BFloat16(3.4e38f))));
}

TEST_CASE("16-bit casts of tensors agree with the scalar conversions on every device", "[cuda]") {
  for (Device dev : testing::test_devices()) {
    std::vector<float> v;
    for (uint32_t b = 0; b < 65536; b += 7) {
      float f = ref_half_to_float(uint16_t(b));
      if (!std::isnan(f)) v.push_back(f * 1.0009765625f);  // off-grid values that need rounding
    }
    Tensor t = from_vector(v, {int64_t(v.size())}, dev);
    std::vector<Half> h = t.to(kFloat16).to_vector<Half>();
    std::vector<BFloat16> bf = t.to(kBFloat16).to_vector<BFloat16>();
    for (size_t i = 0; i < v.size(); ++i) {
      REQUIRE(h[i].bits == ref_half_bits(v[i]));
      REQUIRE(bf[i].bits == BFloat16(v[i]).bits);
    }
  }
}
