// The loss core against PyTorch: every case of tests/golden/core_cases.json
// (written by tools/gen_golden.py) through EvaluateLoss() or Activate().
#include <cmath>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/activation.h"
#include "core/loss.h"
#include "core/tensor.h"
#include "gtest/gtest.h"
#include "tests/golden.h"

namespace lossservice::golden {
namespace {

struct LoadedCases {
  absl::Status status;
  GoldenFile file;
  std::vector<std::string> test_names;  // sanitized, unique, by case index
};

const LoadedCases& Loaded() {
  static const LoadedCases* const loaded = [] {
    auto* out = new LoadedCases;
    absl::StatusOr<GoldenFile> file = LoadCoreCases();
    if (!file.ok()) {
      out->status = file.status();
      return out;
    }
    out->file = *std::move(file);
    std::map<std::string, int> seen;
    for (const GoldenCase& c : out->file.cases) {
      std::string name = SanitizeName(c.name);
      const int n = seen[name]++;
      if (n > 0) name = absl::StrCat(name, "_", n);
      out->test_names.push_back(name);
    }
    return out;
  }();
  return *loaded;
}

const std::vector<GoldenCase>& AllCases() { return Loaded().file.cases; }

::testing::AssertionResult MatchesReference(const char* what,
                                            const std::optional<Tensor>& actual,
                                            const std::optional<Tensor>& expected, DType dtype) {
  if (!expected) return ::testing::AssertionFailure() << what << ": the case has no reference";
  if (!actual) return ::testing::AssertionFailure() << what << ": not written";
  if (std::optional<std::string> diff = CompareToReference(*actual, *expected, dtype)) {
    return ::testing::AssertionFailure()
           << what << ": " << *diff << "\n  got  " << DescribeTensor(*actual)
           << "\n  want " << DescribeTensor(*expected);
  }
  return ::testing::AssertionSuccess();
}

std::string DescribeCase(const GoldenCase& c) {
  std::string s = "case " + c.name + "\n  input  " + DescribeTensor(*c.input);
  if (c.target) s += "\n  target " + DescribeTensor(*c.target);
  for (const auto& [name, t] : c.options.tensors) s += "\n  " + name + " " + DescribeTensor(t);
  if (c.grad_output) s += "\n  grad_output " + DescribeTensor(*c.grad_output);
  return s;
}

class CoreGoldenTest : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(CoreGoldenTest, MatchesPyTorch) {
  const GoldenCase& c = GetParam();
  SCOPED_TRACE(DescribeCase(c));
  const DType dtype = c.input->dtype;
  TensorAllocator out;

  absl::Status status;
  if (c.is_loss()) {
    absl::StatusOr<LossRequest> request = BuildLossRequest(c);
    ASSERT_TRUE(request.ok()) << request.status();
    status = EvaluateLoss(*request, out);
  } else {
    absl::StatusOr<ActivationRequest> request = BuildActivationRequest(c);
    ASSERT_TRUE(request.ok()) << request.status();
    status = Activate(*request, out);
  }

  if (c.is_error()) {
    ASSERT_EQ(c.expect_error, "INVALID_ARGUMENT");
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_FALSE(status.message().empty());
    // Validation comes before any output is sized.
    EXPECT_FALSE(out.loss.has_value());
    EXPECT_FALSE(out.grad.has_value());
    EXPECT_FALSE(out.output.has_value());
    return;
  }
  ASSERT_TRUE(status.ok()) << status;
  if (c.is_loss()) {
    EXPECT_TRUE(MatchesReference("loss", out.loss, c.expected_loss, dtype));
    if (c.compute_grad) {
      EXPECT_TRUE(MatchesReference("grad", out.grad, c.expected_grad, dtype));
    } else {
      EXPECT_FALSE(out.grad.has_value()) << "a gradient was written without compute_grad";
    }
  } else {
    EXPECT_TRUE(MatchesReference("output", out.output, c.expected_output, dtype));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Golden, CoreGoldenTest, ::testing::ValuesIn(AllCases()),
    [](const ::testing::TestParamInfo<GoldenCase>& info) {
      return Loaded().test_names[info.index];
    });

TEST(CoreGoldenFile, LoadsAndIsComplete) {
  ASSERT_TRUE(Loaded().status.ok()) << Loaded().status;
  const GoldenFile& file = Loaded().file;
  EXPECT_EQ(file.generator, "tools/gen_golden.py");
  EXPECT_FALSE(file.torch_version.empty());

  std::map<std::string, int> cases, errors;
  for (const GoldenCase& c : file.cases) {
    const std::string& key = c.is_loss() ? c.loss : c.activation;
    (c.is_error() ? errors : cases)[key]++;
  }
  // Lower bounds a little under what gen_golden.py writes, so that a
  // truncated or partly regenerated file fails here.
  const std::map<std::string, int> min_cases = {
      {"mse", 60},          {"l1", 60},       {"rmse", 18},
      {"cross_entropy", 250}, {"nll", 120},     {"bce", 80},
      {"bce_with_logits", 100}, {"sigmoid", 10}, {"softmax", 30},
      {"log_softmax", 30},  {"logit", 15},
      {"huber", 35}, {"smooth_l1", 35}, {"kl_div", 45}, {"poisson_nll", 40},
      {"gaussian_nll", 55}, {"soft_margin", 22}, {"hinge_embedding", 26},
      {"margin_ranking", 32}, {"multilabel_soft_margin", 40}, {"multi_margin", 60},
      {"multilabel_margin", 45}, {"cosine_embedding", 50}, {"triplet_margin", 70},
      {"ctc", 80},
  };
  for (const auto& [name, min] : min_cases) {
    EXPECT_GE(cases[name], min) << name;
  }
  const std::map<std::string, int> min_errors = {
      {"mse", 4}, {"l1", 2},   {"rmse", 6},  {"cross_entropy", 20},
      {"nll", 15}, {"bce", 12}, {"bce_with_logits", 6},
      {"huber", 4}, {"smooth_l1", 4}, {"kl_div", 3}, {"poisson_nll", 3},
      {"gaussian_nll", 12}, {"soft_margin", 3}, {"hinge_embedding", 4},
      {"margin_ranking", 5}, {"multilabel_soft_margin", 5}, {"multi_margin", 12},
      {"multilabel_margin", 8}, {"cosine_embedding", 7}, {"triplet_margin", 7},
      {"ctc", 35},
  };
  for (const auto& [name, min] : min_errors) {
    EXPECT_GE(errors[name], min) << name << " error cases";
  }
}

// The golden file itself against the numbers printed in the seed document
// (/work/shared/seed/loss-functions.txt), to 4 decimals.
TEST(CoreGoldenFile, AgreesWithSeedDocument) {
  ASSERT_TRUE(Loaded().status.ok()) << Loaded().status;
  const std::map<std::string, double> printed = {
      {"mse/seed_example/float32/mean", 1.0192},
      {"l1/seed_example/float32/mean", 0.8502},
      {"rmse/seed_example/float32/mean", 1.0096},
      {"cross_entropy/seed_example/float32/mean", 2.6812},
      {"bce/seed_right_order/float32/mean", 0.1643},
      {"bce/seed_wrong_order/float32/mean", 15.0000},
      {"bce/seed_example_4x1/float32/mean", 0.6741},
      {"bce_with_logits/seed_example/float64/mean", 0.1643},
      {"nll/seed_example/float32/mean", 1.6553},
      {"nll/seed_example_weight/float32/mean", 1.7188},
  };
  int found = 0;
  for (const GoldenCase& c : AllCases()) {
    auto it = printed.find(c.name);
    if (it == printed.end()) continue;
    ++found;
    ASSERT_TRUE(c.expected_loss.has_value()) << c.name;
    ASSERT_EQ(c.expected_loss->numel(), 1) << c.name;
    EXPECT_NEAR(c.expected_loss->ToDoubles()[0], it->second, 5e-5) << c.name;
  }
  EXPECT_EQ(found, static_cast<int>(printed.size()));
}

TEST(CoreGoldenFile, TorchRandnLoads) {
  absl::StatusOr<std::vector<RandnCase>> cases = LoadTorchRandn();
  ASSERT_TRUE(cases.ok()) << cases.status();
  ASSERT_FALSE(cases->empty());
  const RandnCase& first = cases->front();
  EXPECT_EQ(first.seed, 42u);
  ASSERT_EQ(first.calls.size(), 2u);
  EXPECT_EQ(first.calls[0].shape, Shape({3, 5}));
  // tensor([[ 0.3367,  0.1288, ...  as printed in the seed document.
  EXPECT_NEAR(first.calls[0].values[0], 0.3367, 5e-5);
  EXPECT_NEAR(first.calls[1].values[0], 0.9580, 5e-5);
}

}  // namespace
}  // namespace lossservice::golden
