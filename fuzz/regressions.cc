// Every input a fuzzer found that broke a check, as bytes: the regression
// test (fuzz/fuzz_regression_test.cc) runs each through its target's checks.
// A new finding: `./dev fuzz` prints the input as a C string; add it here
// with what it exposed, and fix what it exposed.
#include "fuzz/seeds.h"

namespace lossservice::fuzz {

const std::vector<Regression>& Regressions() {
  static const auto* regressions = new std::vector<Regression>{};
  return *regressions;
}

}  // namespace lossservice::fuzz
