// Compares lists of numbers that a test computed and that a torch script printed as JSON: integers exactly (int64
// values beyond 2^53 included), floating values within a tolerance; a null (no gradient) only with a null.
#pragma once
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

namespace ht::testing {

inline void require_close(const nlohmann::json& got, const nlohmann::json& want, double tol) {
  if (want.is_null()) {
    REQUIRE(got.is_null());
    return;
  }
  REQUIRE_FALSE(got.is_null());
  REQUIRE(got.size() == want.size());
  for (size_t k = 0; k < got.size(); ++k) {
    INFO("element " << k << ": got " << got[k] << ", want " << want[k]);
    if (want[k].is_number_integer() && got[k].is_number_integer())
      REQUIRE(got[k].get<int64_t>() == want[k].get<int64_t>());
    else
      REQUIRE(got[k].get<double>() == Approx(want[k].get<double>()).epsilon(tol).margin(tol));
  }
}

}  // namespace ht::testing
