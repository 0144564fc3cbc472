// The fuzz targets' checks (fuzz/fuzz_checks.h) on every seed and on every
// input a fuzzer found (fuzz/regressions.cc), in the ordinary build: what
// the fuzzers start from and what they found holds in every `./dev test`.
#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "fuzz/fuzz_checks.h"
#include "fuzz/seeds.h"

namespace lossservice::fuzz {
namespace {

class FuzzRegressionTest : public ::testing::TestWithParam<Target> {
 protected:
  static void SetUpTestSuite() { QuietLogs(); }
};

TEST_P(FuzzRegressionTest, EverySeedHoldsItsChecks) {
  Harness harness;
  const std::vector<std::string> seeds = Seeds(GetParam());
  ASSERT_GE(seeds.size(), 40u);
  ASSERT_LE(seeds.size(), 1000u);
  for (size_t i = 0; i < seeds.size(); ++i) {
    EXPECT_EQ(harness.Check(GetParam(), seeds[i]), "")
        << "seed " << i << ": \"" << absl::CHexEscape(seeds[i].substr(0, 400)) << "\"";
  }
}

TEST_P(FuzzRegressionTest, EveryFindingHoldsItsChecks) {
  Harness harness;
  for (const Regression& r : Regressions()) {
    if (r.target != GetParam()) continue;
    EXPECT_EQ(harness.Check(r.target, r.bytes), "")
        << r.what << ": \"" << absl::CHexEscape(r.bytes) << "\"";
  }
}

// A stream of seeds with a cancelled item, the same stream cut in the
// middle of an item (the last item is then cut short), and no items.
TEST(FuzzChecksTest, StreamItemsAreCheckedOneByOne) {
  QuietLogs();
  Harness harness;
  const std::vector<std::string> seeds = Seeds(Target::kEvaluate);
  std::string stream;
  for (size_t i = 0; i < 8 && i < seeds.size(); ++i) stream += EncodeStreamItem(seeds[i], i == 3);
  EXPECT_EQ(harness.Check(Target::kStream, stream), "");
  EXPECT_EQ(harness.Check(Target::kStream, stream.substr(0, stream.size() / 2)), "");
  EXPECT_EQ(harness.Check(Target::kStream, ""), "");
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzRegressionTest,
                         ::testing::Values(Target::kEvaluate, Target::kActivate, Target::kStream),
                         [](const auto& info) { return std::string(TargetName(info.param)); });

}  // namespace
}  // namespace lossservice::fuzz
