// Threads, deterministically: for every loss, inputs of several chunks give
// the same bytes with no pool and with pools of 1, 2, 3 and 8 threads (the
// chunks are fixed-size and their partial results are combined in order);
// inputs of one chunk never reach the pool and never ask ShouldStop(); a
// stopped context skips the chunks of a large input.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "core/activation.h"
#include "core/internal.h"
#include "core/loss.h"
#include "core/parallel.h"
#include "gtest/gtest.h"
#include "tests/random_cases.h"

namespace lossservice {
namespace {

// Several chunks: 4 grains and a ragged rest.
constexpr int64_t kLarge = 4 * internal::kGrain + 123;

std::vector<std::string> LossNames() {
  std::vector<std::string> names;
  for (const LossInfo& info : AllLosses()) names.emplace_back(info.name);
  return names;
}

struct Outputs {
  std::optional<Tensor> loss, grad;
  bool operator==(const Outputs& o) const {
    const auto same = [](const std::optional<Tensor>& a, const std::optional<Tensor>& b) {
      return a.has_value() == b.has_value() &&
             (!a || (a->shape == b->shape && a->bytes == b->bytes));
    };
    return same(loss, o.loss) && same(grad, o.grad);
  }
};

Outputs Evaluate(const LossRequest& r, ThreadPool* pool) {
  TensorAllocator out;
  const absl::Status s = EvaluateLoss(r, out, ComputeContext{.pool = pool});
  EXPECT_TRUE(s.ok()) << s;
  return {out.loss, out.grad};
}

class DeterminismTest : public ::testing::TestWithParam<std::string> {};

TEST_P(DeterminismTest, SameBytesForOneTwoThreeAndEightThreads) {
  for (DType dtype : {DType::kFloat32, DType::kFloat64}) {
    std::unique_ptr<testing::OwnedRequest> c = testing::RandomRequest(GetParam(), kLarge, 7, dtype);
    ASSERT_NE(c, nullptr);
    LossRequest r = c->request;
    r.compute_grad = true;
    const uint8_t reductions = std::visit(
        [](const auto& o) { return std::decay_t<decltype(o)>::kDoc.reductions; }, r.options);
    for (Reduction red : {Reduction::kMean, Reduction::kSum, Reduction::kNone}) {
      if (!(reductions & ReductionBit(red))) continue;
      r.reduction = red;
      SCOPED_TRACE(::testing::Message() << DTypeName(dtype) << " " << ReductionName(red));
      const Outputs alone = Evaluate(r, nullptr);
      for (int threads : {1, 2, 3, 8}) {
        ThreadPool pool(threads);
        const Outputs split = Evaluate(r, &pool);
        EXPECT_TRUE(split == alone) << threads << " threads";
        // The work was cut into chunks and handed to the pool.
        EXPECT_GE(pool.parallel_for_calls(), threads > 1 ? 1 : 0) << threads << " threads";
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(EveryLoss, DeterminismTest, ::testing::ValuesIn(LossNames()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

TEST(DeterminismTest, ActivationsGiveTheSameBytesForAnyThreadCount) {
  std::unique_ptr<testing::OwnedRequest> c = testing::RandomRequest("mse", kLarge, 3);
  std::vector<double> values = c->input.ToDoubles();
  values.resize(kLarge / 100 * 100);
  const Tensor matrix = Tensor::FromDoubles(DType::kFloat32, {kLarge / 100, 100}, values);
  for (Activation a : {Activation::kSigmoid, Activation::kSoftmax, Activation::kLogSoftmax}) {
    for (int64_t dim : {0, 1}) {
      const ActivationRequest r{a, a == Activation::kSigmoid ? c->input.view() : matrix.view(),
                                dim, std::nullopt};
      TensorAllocator alone;
      ASSERT_TRUE(Activate(r, alone).ok());
      for (int threads : {2, 3, 8}) {
        ThreadPool pool(threads);
        TensorAllocator split;
        ASSERT_TRUE(Activate(r, split, ComputeContext{.pool = &pool}).ok());
        EXPECT_EQ(split.output->bytes, alone.output->bytes) << threads << " threads, dim " << dim;
        EXPECT_GE(pool.parallel_for_calls(), 1);
      }
    }
  }
}

// One chunk: the calling thread computes it, whatever the context says.
TEST(DeterminismTest, SmallInputsNeverTouchThePoolNorAskShouldStop) {
  ThreadPool pool(4);
  std::atomic<bool> cancelled{true};
  const ComputeContext stopped{.pool = &pool, .cancelled = &cancelled};
  for (const std::string& loss : LossNames()) {
    SCOPED_TRACE(loss);
    std::unique_ptr<testing::OwnedRequest> c = testing::RandomRequest(loss, 1000, 5);
    LossRequest r = c->request;
    r.compute_grad = true;
    const Outputs alone = Evaluate(r, nullptr);
    TensorAllocator out;
    ASSERT_TRUE(EvaluateLoss(r, out, stopped).ok());
    // A cancelled context that was asked would have skipped the chunk.
    EXPECT_TRUE((Outputs{out.loss, out.grad} == alone));
  }
  EXPECT_EQ(pool.parallel_for_calls(), 0);
}

// Several chunks and a stopped context (cancelled, or past its deadline):
// no chunk starts, so the gradient is never written.
TEST(DeterminismTest, AStoppedContextSkipsTheChunksOfALargeInput) {
  std::atomic<bool> cancelled{true};
  ThreadPool pool(2);
  for (const ComputeContext& ctx :
       {ComputeContext{.cancelled = &cancelled}, ComputeContext{.pool = &pool, .cancelled = &cancelled},
        ComputeContext{.deadline = absl::Now() - absl::Seconds(1)}}) {
    for (const char* loss : {"mse", "cross_entropy", "multi_margin", "ctc"}) {
      SCOPED_TRACE(loss);
      std::unique_ptr<testing::OwnedRequest> c = testing::RandomRequest(loss, kLarge, 5);
      LossRequest r = c->request;
      r.compute_grad = true;
      absl::StatusOr<LossPlan> plan = PlanLoss(r);
      ASSERT_TRUE(plan.ok()) << plan.status();
      std::vector<std::byte> loss_out(64), grad(c->input.bytes.size(), std::byte{0x5a});
      ComputeLoss(r, *plan, loss_out.data(), grad.data(), ctx);
      EXPECT_TRUE(std::all_of(grad.begin(), grad.end(), [](std::byte b) { return b == std::byte{0x5a}; }));
    }
  }
}

}  // namespace
}  // namespace lossservice
