// TorchGenerator against torch.randn values recorded from PyTorch 1.13
// (tests/golden/torch_randn.json): equal bit for bit.
#include "client/torch_random.h"

#include <bit>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "tests/golden.h"

namespace lossservice {
namespace {

TEST(TorchGeneratorTest, MatchesTorchRandnGoldensBitForBit) {
  absl::StatusOr<std::vector<golden::RandnCase>> cases = golden::LoadTorchRandn();
  ASSERT_TRUE(cases.ok()) << cases.status();
  ASSERT_FALSE(cases->empty());
  int compared = 0;
  for (const golden::RandnCase& c : *cases) {
    TorchGenerator gen(c.seed);
    for (size_t call = 0; call < c.calls.size(); ++call) {
      const golden::RandnCall& expected = c.calls[call];
      SCOPED_TRACE(testing::Message() << "seed " << c.seed << ", call " << call);
      absl::StatusOr<std::vector<float>> values = gen.Randn(expected.shape);
      ASSERT_TRUE(values.ok()) << values.status();
      ASSERT_EQ(values->size(), expected.values.size());
      for (size_t i = 0; i < values->size(); ++i) {
        EXPECT_EQ(std::bit_cast<uint32_t>((*values)[i]),
                  std::bit_cast<uint32_t>(expected.values[i]))
            << "element " << i << ": got " << (*values)[i] << ", torch "
            << expected.values[i];
        ++compared;
      }
    }
  }
  EXPECT_GT(compared, 0);
}

// The seed document's first tensor: torch.manual_seed(42); torch.randn(3, 5)
// prints [[0.3367, 0.1288, 0.2345, 0.2303, -1.1229], ...].
TEST(TorchGeneratorTest, SeedDocumentFirstValues) {
  TorchGenerator gen(42);
  absl::StatusOr<std::vector<float>> values = gen.Randn({3, 5});
  ASSERT_TRUE(values.ok()) << values.status();
  ASSERT_EQ(values->size(), 15u);
  EXPECT_NEAR((*values)[0], 0.3367, 5e-5);
  EXPECT_NEAR((*values)[1], 0.1288, 5e-5);
  EXPECT_NEAR((*values)[2], 0.2345, 5e-5);
  EXPECT_NEAR((*values)[4], -1.1229, 5e-5);
}

// Box-Muller makes two samples; the second is cached in the generator and
// survives across randn calls.
TEST(TorchGeneratorTest, NormalCachePersistsAcrossCalls) {
  TorchGenerator one_call(7);
  absl::StatusOr<std::vector<float>> together = one_call.Randn({3});
  ASSERT_TRUE(together.ok());

  TorchGenerator three_calls(7);
  std::vector<float> apart;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<std::vector<float>> v = three_calls.Randn({1});
    ASSERT_TRUE(v.ok());
    apart.push_back((*v)[0]);
  }
  EXPECT_EQ(*together, apart);
}

TEST(TorchGeneratorTest, SeedKeepsLow32Bits) {
  TorchGenerator low(42);
  TorchGenerator high(42 + (uint64_t{1} << 32));
  EXPECT_EQ(*low.Randn({2, 3}), *high.Randn({2, 3}));
}

TEST(TorchGeneratorTest, EmptyTensorDrawsNothing) {
  TorchGenerator gen(42);
  absl::StatusOr<std::vector<float>> empty = gen.Randn({0, 5});
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  TorchGenerator fresh(42);
  EXPECT_EQ(*gen.Randn({4}), *fresh.Randn({4}));
}

TEST(TorchGeneratorTest, ScalarShapeIsOneElement) {
  TorchGenerator gen(42);
  absl::StatusOr<std::vector<float>> scalar = gen.Randn({});
  ASSERT_TRUE(scalar.ok());
  EXPECT_EQ(scalar->size(), 1u);
}

TEST(TorchGeneratorTest, RefusesSixteenOrMoreElements) {
  TorchGenerator gen(42);
  EXPECT_EQ(gen.Randn({16}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(gen.Randn({4, 4}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(gen.Randn({int64_t{1} << 62, int64_t{1} << 62}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(gen.Randn({15}).ok());
  EXPECT_TRUE(gen.Randn({0, int64_t{1} << 62}).ok());
}

TEST(TorchGeneratorTest, RefusesNegativeDimensions) {
  TorchGenerator gen(42);
  EXPECT_EQ(gen.Randn({-1}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(gen.Randn({0, -1}).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace lossservice
