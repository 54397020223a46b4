// Typed errors: a caller can branch on the kind of failure (as on c10's ValueError, IndexError, ...), and the
// checks that threw say where they stand.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include <halftorch/halftorch.h>

TEST_CASE("errors: an out-of-range dimension is an IndexError with the check's source location", "[errors]") {
  ht::Tensor x = ht::ones({2, 3});
  try {
    (void)x.size(5);
    FAIL("size(5) of a 2-d tensor did not throw");
  } catch (const ht::IndexError& e) {
    CHECK(std::string(e.what()) == "[size] dim 5 out of range for a 2-d tensor");
    CHECK_THAT(e.file(), Catch::EndsWith("core/tensor.cpp"));
    CHECK(e.line() > 0);
    CHECK_THAT(e.function(), Catch::Contains("wrap_dim"));
  }
  // still an ht::Error and a std::exception for callers that do not branch
  CHECK_THROWS_AS(x.size(-3), ht::Error);
  CHECK_THROWS_AS(x.size(-3), std::runtime_error);
}

TEST_CASE("errors: a file that is not a checkpoint is an IOError naming it", "[errors]") {
  auto path = std::filesystem::temp_directory_path() / "halftorch-test-errors-not-a-checkpoint.pth";
  std::ofstream(path) << "plain text, not a torch.save file";
  try {
    (void)ht::load(path.string());
    FAIL("loading a text file did not throw");
  } catch (const ht::IOError& e) {
    CHECK_THAT(e.what(), Catch::Contains(path.string()) && Catch::StartsWith("[io]"));
    CHECK(e.line() > 0);
  }
  CHECK_THROWS_AS(ht::load((path.string() + ".missing")), ht::IOError);
  std::filesystem::remove(path);
}

TEST_CASE("errors: the typed checks throw their own type", "[errors]") {
  auto value = [] { HT_CHECK_VALUE(false, "[op] a value"); };
  auto type = [] { HT_CHECK_TYPE(false, "[op] a dtype"); };
  auto unimplemented = [] { HT_CHECK_NOT_IMPLEMENTED(false, "[op] not yet"); };
  CHECK_THROWS_AS(value(), ht::ValueError);
  CHECK_THROWS_AS(type(), ht::TypeError);
  CHECK_THROWS_AS(unimplemented(), ht::NotImplementedError);
  CHECK_THROWS_WITH(value(), "[op] a value");
  CHECK_NOTHROW([] { HT_CHECK_INDEX(true, "unused"); }());
}
