// Core unit tests that do not need PyTorch's numbers: validation, shapes,
// dtype handling and the properties every loss must keep.
#include <cmath>
#include <limits>
#include <vector>

#include "core/activation.h"
#include "core/internal.h"
#include "core/loss.h"
#include "gtest/gtest.h"

namespace lossservice {
namespace {

Tensor F32(Shape shape, std::vector<double> v) {
  return Tensor::FromDoubles(DType::kFloat32, std::move(shape), v);
}
Tensor F64(Shape shape, std::vector<double> v) {
  return Tensor::FromDoubles(DType::kFloat64, std::move(shape), v);
}
Tensor I64(Shape shape, std::vector<double> v) {
  return Tensor::FromDoubles(DType::kInt64, std::move(shape), v);
}

TEST(TensorTest, ShapeHelpers) {
  EXPECT_EQ(ShapeString({3, 5}), "[3, 5]");
  EXPECT_EQ(ShapeString({}), "[]");
  EXPECT_EQ(NumElements({}), 1);
  EXPECT_EQ(NumElements({2, 0, 3}), 0);
  EXPECT_EQ(NumElements({2, 3, 4}), 24);
}

// Values of `op` at flat positions [begin, begin + n).
std::vector<double> Read(const internal::Operand<double>& op, int64_t begin, int64_t n) {
  std::vector<double> buf(static_cast<size_t>(n));
  const double* v = op.Get(begin, n, buf.data());
  return std::vector<double>(v, v + n);
}

TEST(OperandTest, EveryLayoutReadsTheBroadcastValues) {
  const Shape shape{2, 3};
  const Tensor same = F64({2, 3}, {1, 2, 3, 4, 5, 6});
  const internal::Operand<double> direct(same.view(), shape);
  EXPECT_TRUE(direct.direct());
  EXPECT_EQ(Read(direct, 1, 4), (std::vector<double>{2, 3, 4, 5}));
  const Tensor same32 = F32({2, 3}, {1, 2, 3, 4, 5, 6});
  const internal::Operand<double> convert(same32.view(), shape);
  EXPECT_FALSE(convert.direct());
  EXPECT_EQ(Read(convert, 2, 3), (std::vector<double>{3, 4, 5}));
  const Tensor row = F64({3}, {1, 2, 3});
  EXPECT_EQ(Read(internal::Operand<double>(row.view(), shape), 1, 5),
            (std::vector<double>{2, 3, 1, 2, 3}));
  const Tensor scalar = F32({1}, {7});
  EXPECT_EQ(Read(internal::Operand<double>(scalar.view(), shape), 0, 6),
            (std::vector<double>(6, 7.0)));
  const Tensor column = F64({2, 1}, {10, 20});
  EXPECT_EQ(Read(internal::Operand<double>(column.view(), shape), 0, 6),
            (std::vector<double>{10, 10, 10, 20, 20, 20}));
  EXPECT_EQ(Read(internal::Operand<double>(column.view(), shape), 2, 3),
            (std::vector<double>{10, 20, 20}));
  EXPECT_EQ(Read(internal::Operand<double>::Grouped(column.view(), 3), 1, 4),
            (std::vector<double>{10, 10, 20, 20}));
  EXPECT_FALSE(internal::Operand<double>().present());
}

LossRequest Request(const Tensor& input, const Tensor& target, LossOptions options,
                    Reduction reduction = Reduction::kMean, bool grad = false) {
  LossRequest r;
  r.input = input.view();
  r.target = target.view();
  r.options = std::move(options);
  r.reduction = reduction;
  r.compute_grad = grad;
  return r;
}

TEST(LossTest, MeanOverZeroElementsIsNanAndSumIsZero) {
  const Tensor empty = F32({0}, {});
  TensorAllocator mean;
  ASSERT_TRUE(EvaluateLoss(Request(empty, empty, MseOptions{}), mean).ok());
  EXPECT_TRUE(std::isnan(mean.loss->data_as<float>()[0]));
  TensorAllocator sum;
  ASSERT_TRUE(EvaluateLoss(Request(empty, empty, MseOptions{}, Reduction::kSum), sum).ok());
  EXPECT_EQ(sum.loss->data_as<float>()[0], 0.0f);
}

TEST(LossTest, OutputsFollowTheInputDtype) {
  const Tensor x = F64({2}, {1, 2});
  const Tensor y = F32({2}, {0, 0});
  TensorAllocator out;
  ASSERT_TRUE(EvaluateLoss(Request(x, y, MseOptions{}, Reduction::kSum, true), out).ok());
  EXPECT_EQ(out.loss->dtype, DType::kFloat64);
  EXPECT_EQ(out.loss->shape, Shape{});
  EXPECT_EQ(out.loss->data_as<double>()[0], 5.0);
  EXPECT_EQ(out.grad->dtype, DType::kFloat64);
  EXPECT_EQ(out.grad->shape, Shape{2});
  EXPECT_EQ(out.grad->data_as<double>()[1], 4.0);
}

TEST(LossTest, NothingIsWrittenForInvalidRequests) {
  const Tensor x = F32({2, 3}, {0, 0, 0, 0, 0, 0});
  const Tensor t = I64({2}, {0, 5});
  TensorAllocator out;
  const absl::Status s = EvaluateLoss(Request(x, t, NllOptions{}), out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(out.loss.has_value());
}

TEST(LossTest, IgnoredTargetsGetNoGradientAndNoLoss) {
  const Tensor x = F64({3, 2}, {1, 2, 3, 4, 5, 6});
  const Tensor t = I64({3}, {1, -100, 0});
  TensorAllocator out;
  ASSERT_TRUE(EvaluateLoss(Request(x, t, CrossEntropyOptions{}, Reduction::kNone, true), out).ok());
  EXPECT_EQ(out.loss->data_as<double>()[1], 0.0);
  EXPECT_EQ(out.grad->data_as<double>()[2], 0.0);
  EXPECT_EQ(out.grad->data_as<double>()[3], 0.0);
}

TEST(LossTest, LabelSmoothingOutOfRange) {
  const Tensor x = F64({1, 2}, {1, 2});
  const Tensor t = I64({1}, {1});
  CrossEntropyOptions o;
  o.label_smoothing = 1.5;
  TensorAllocator out;
  const absl::Status s = EvaluateLoss(Request(x, t, o), out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "cross_entropy.label_smoothing must be in [0, 1], got 1.5");
}

TEST(LossTest, FloatTargetShapedLikeClassIndicesSaysIndicesAreIntegers) {
  const Tensor x = F32({3, 5}, std::vector<double>(15, 0.5));
  const Tensor t = F32({3}, {1, 0, 2});
  TensorAllocator out;
  const absl::Status s = EvaluateLoss(Request(x, t, CrossEntropyOptions{}), out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "target: class indices must be INT64 or INT32, got float32 [3] for input [3, 5] (a "
            "floating target holds class probabilities and has the input's shape)");
  EXPECT_FALSE(out.loss.has_value());
  const absl::Status nll = EvaluateLoss(Request(x, t, NllOptions{}), out);
  EXPECT_EQ(nll.message(), "target must hold class indices (INT64 or INT32), got float32 [3]");
}

TEST(LossTest, GaussianTargetBroadcastsAlongItsLastDimensionOnly) {
  const Tensor x = F64({2, 3}, {1, 2, 3, 4, 5, 6});
  const Tensor t = F64({2, 1}, {2, 4});
  const Tensor var = F64({2, 3}, {1, 1, 1, 1, 1, 1});
  GaussianNllOptions o;
  o.var = var.view();
  TensorAllocator out;
  ASSERT_TRUE(EvaluateLoss(Request(x, t, o, Reduction::kNone, true), out).ok());
  // (log 1 + (x - t)^2 / 1) / 2 with t broadcast along the rows.
  EXPECT_EQ(out.loss->ToDoubles(), (std::vector<double>{0.5, 0, 0.5, 0, 0.5, 2}));
  EXPECT_EQ(out.grad->ToDoubles(), (std::vector<double>{-1, 0, 1, 0, 1, 2}));
  const Tensor t_first = F64({1, 3}, {1, 2, 3});
  TensorAllocator refused;
  EXPECT_EQ(EvaluateLoss(Request(x, t_first, o), refused).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(LossTest, BceWeightMustNotGrowTheInput) {
  const Tensor x = F32({2}, {0.5, 0.5});
  const Tensor w = F32({3, 2}, {1, 1, 1, 1, 1, 1});
  BceOptions o;
  o.weight = w.view();
  TensorAllocator out;
  const absl::Status s = EvaluateLoss(Request(x, x, o), out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "bce.weight of shape [3, 2] does not broadcast to the input's shape [2]");
}

TEST(LossTest, RegistryMatchesTheOptionsVariant) {
  const auto losses = AllLosses();
  ASSERT_EQ(losses.size(), std::variant_size_v<LossOptions>);
  for (size_t i = 0; i < losses.size(); ++i) {
    EXPECT_EQ(losses[i].field_number, static_cast<int>(10 + i)) << losses[i].name;
  }
  EXPECT_EQ(InfoFor(CrossEntropyOptions{}).name, "cross_entropy");
  EXPECT_EQ(InfoFor(CtcOptions{}).name, "ctc");
}

TEST(ActivationTest, SoftmaxRowsSumToOneAlongAnyDim) {
  const Tensor x = F64({2, 3}, {1, 2, 3, -1, 0, 4});
  for (int64_t dim : {0, 1, -1, -2}) {
    ActivationRequest r{Activation::kSoftmax, x.view(), dim, std::nullopt};
    TensorAllocator out;
    ASSERT_TRUE(Activate(r, out).ok());
    const double* y = out.output->data_as<double>();
    const bool rows = dim == 1 || dim == -1;
    for (int k = 0; k < (rows ? 2 : 3); ++k) {
      double sum = 0;
      for (int j = 0; j < (rows ? 3 : 2); ++j) sum += rows ? y[k * 3 + j] : y[j * 3 + k];
      EXPECT_NEAR(sum, 1.0, 1e-15) << "dim " << dim;
    }
  }
}

TEST(ActivationTest, ScalarSoftmaxIsOne) {
  const Tensor x = F32({}, {3});
  ActivationRequest r{Activation::kSoftmax, x.view(), -1, std::nullopt};
  TensorAllocator out;
  ASSERT_TRUE(Activate(r, out).ok());
  EXPECT_EQ(out.output->shape, Shape{});
  EXPECT_EQ(out.output->data_as<float>()[0], 1.0f);
}

TEST(ActivationTest, IntegerInputIsRefused) {
  const Tensor x = I64({2}, {1, 2});
  ActivationRequest r{Activation::kSigmoid, x.view(), -1, std::nullopt};
  TensorAllocator out;
  EXPECT_EQ(Activate(r, out).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace lossservice

// ---- PyTorch's surprising rules, pinned as relations between reductions ----

namespace lossservice {
namespace {

// Evaluates `r` under `reduction`; the loss values as doubles.
std::vector<double> LossUnder(LossRequest r, Reduction reduction) {
  r.reduction = reduction;
  TensorAllocator out;
  const absl::Status s = EvaluateLoss(r, out);
  EXPECT_TRUE(s.ok()) << s;
  return out.loss ? out.loss->ToDoubles() : std::vector<double>{};
}

double Sum(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s;
}

const Tensor kLogits = F64({3, 4}, {0.3, -1.2, 2.0, 0.5, 1.1, 0.0, -0.7, 0.25, -2.0, 0.9, 0.1, 1.6});
const Tensor kWeight = F64({4}, {0.5, 2.0, 1.5, 3.0});

// Class-probability targets: the weighted mean divides by the number of
// samples, not by the summed weights as the class-index rule does.
TEST(PyTorchQuirks, ProbabilityTargetWeightedMeanDividesBySampleCount) {
  const Tensor probs = F64({3, 4}, {0.1, 0.2, 0.3, 0.4, 0.25, 0.25, 0.25, 0.25, 0.7, 0.1, 0.1, 0.1});
  CrossEntropyOptions o;
  o.weight = kWeight.view();
  const LossRequest r = Request(kLogits, probs, o);
  const std::vector<double> none = LossUnder(r, Reduction::kNone);
  ASSERT_EQ(none.size(), 3u);
  EXPECT_DOUBLE_EQ(LossUnder(r, Reduction::kMean)[0], Sum(none) / 3.0);
}

// Class indices with label smoothing and a weight: both the NLL and the
// smoothing term are divided by the summed weights of the targets that are
// not ignored.
TEST(PyTorchQuirks, SmoothedWeightedMeanDividesByTargetWeights) {
  const Tensor t = I64({3}, {1, -100, 3});
  CrossEntropyOptions o;
  o.weight = kWeight.view();
  o.label_smoothing = 0.2;
  const LossRequest r = Request(kLogits, t, o);
  const std::vector<double> none = LossUnder(r, Reduction::kNone);
  EXPECT_EQ(none[1], 0.0);
  EXPECT_DOUBLE_EQ(LossUnder(r, Reduction::kMean)[0], Sum(none) / (2.0 + 3.0));
  // Without a weight, the divisor is the count of targets not ignored (2),
  // not the batch size (3).
  CrossEntropyOptions unweighted;
  unweighted.label_smoothing = 0.2;
  const LossRequest u = Request(kLogits, t, unweighted);
  EXPECT_DOUBLE_EQ(LossUnder(u, Reduction::kMean)[0], Sum(LossUnder(u, Reduction::kNone)) / 2.0);
}

// CTC's mean divides each sample's loss by its target length clamped to 1,
// then averages over the batch.
TEST(PyTorchQuirks, CtcMeanDividesByClampedTargetLengths) {
  // log_probs (T=4, N=2, C=3), uniform: every path has the same weight.
  std::vector<double> lp(4 * 2 * 3, std::log(1.0 / 3.0));
  const Tensor log_probs = F64({4, 2, 3}, lp);
  const Tensor targets = I64({2, 2}, {1, 2, 0, 0});
  const Tensor input_lengths = I64({2}, {4, 3});
  const Tensor target_lengths = I64({2}, {2, 0});
  CtcOptions o;
  o.input_lengths = input_lengths.view();
  o.target_lengths = target_lengths.view();
  const LossRequest r = Request(log_probs, targets, o);
  const std::vector<double> none = LossUnder(r, Reduction::kNone);
  ASSERT_EQ(none.size(), 2u);
  EXPECT_DOUBLE_EQ(LossUnder(r, Reduction::kMean)[0], (none[0] / 2.0 + none[1] / 1.0) / 2.0);
  EXPECT_DOUBLE_EQ(LossUnder(r, Reduction::kSum)[0], none[0] + none[1]);
}

// KL divergence: batchmean divides the sum by the batch size, mean by the
// element count.
TEST(PyTorchQuirks, KlDivBatchmeanDividesByBatchSize) {
  const Tensor target = F64({3, 4}, {0.1, 0.2, 0.3, 0.4, 0.25, 0.25, 0.25, 0.25, 0.7, 0.1, 0.1, 0.1});
  const LossRequest r = Request(kLogits, target, KlDivOptions{});
  const double sum = LossUnder(r, Reduction::kSum)[0];
  EXPECT_DOUBLE_EQ(LossUnder(r, Reduction::kBatchMean)[0], sum / 3.0);
  EXPECT_DOUBLE_EQ(LossUnder(r, Reduction::kMean)[0], sum / 12.0);
}

}  // namespace
}  // namespace lossservice
