// Binary losses: bce and bce_with_logits.
#include "core/elementwise.h"
#include "core/internal.h"

namespace lossservice::internal {
namespace {

// An optional tensor that must broadcast to the input.
absl::Status CheckOptionalBroadcast(const std::optional<TensorView>& t, absl::string_view field,
                                    const TensorView& input) {
  if (!t) return absl::OkStatus();
  return CheckBroadcastsTo(*t, field, input.shape);
}

template <typename T>
Operand<T> OptionalOperand(const std::optional<TensorView>& t, const TensorView& input) {
  return t ? Operand<T>(*t, input.shape) : Operand<T>();
}

// The first element of `t` (floating, n elements) outside [0, 1]; a NaN is
// outside unless `nan_inside`.
int64_t FirstOutsideUnit(const TensorView& t, bool nan_inside) {
  const int64_t n = t.numel();
  if (t.dtype == DType::kFloat32) return simd::FindOutside(t.data_as<float>(), n, 0, 1, nan_inside);
  return simd::FindOutside(t.data_as<double>(), n, 0, 1, nan_inside);
}

}  // namespace

// torch.nn.BCELoss: -w (y log x + (1 - y) log(1 - x)) with each log clamped
// at -100, PyTorch's quirk that keeps x = 0 or 1 finite. Gradient
// w (x - y) / max(x (1 - x), float(1e-12)), as in PyTorch. Input outside
// [0, 1] (NaN included, as PyTorch refuses it) and target outside [0, 1] are
// INVALID_ARGUMENT.
absl::StatusOr<LossPlan> Check(const LossRequest& r, const BceOptions& o) {
  LOSS_RETURN_IF_ERROR(CheckTargetLikeInput(r));
  if (const int64_t i = FirstOutsideUnit(r.input, /*nan_inside=*/false); i < r.input.numel()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input: bce needs probabilities in [0, 1]; input ", ShapeString(r.input.shape), " has ",
        FloatAt<double>(r.input, i), " at flat position ", i,
        " (pass logits to bce_with_logits instead)"));
  }
  if (const int64_t i = FirstOutsideUnit(*r.target, /*nan_inside=*/true); i < r.target->numel()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "target: bce needs targets in [0, 1]; target ", ShapeString(r.target->shape), " has ",
        FloatAt<double>(*r.target, i), " at flat position ", i));
  }
  LOSS_RETURN_IF_ERROR(CheckOptionalBroadcast(o.weight, "bce.weight", r.input));
  return PlanFor(r, r.input.shape);
}

void Compute(const LossRequest& r, const BceOptions& o, const LossPlan& plan, void* loss,
             void* grad, const ComputeContext& ctx) {
  DispatchFloat(plan.dtype, [&]<typename T>() {
    PointOperands<T> ops = WithTarget<T>(r);
    ops.w = OptionalOperand<T>(o.weight, r.input);
    RunPointwise<T>(simd::PointOp::kBce, {}, r, plan, ops, loss, grad, ctx);
  });
}

// torch.nn.BCEWithLogitsLoss in PyTorch's stable form:
//   m = max(-x, 0)
//   loss = (1 - y) x + l (log(exp(-m) + exp(-x - m)) + m),  l = 1 + (pw - 1) y
// times weight, where log(exp(-m) + exp(-x - m)) = log1p(exp(-|x|)) (NaN at
// x = -inf, as PyTorch's sum is there). Without pos_weight the additions in
// PyTorch's order, ((1 - y) x + m) + log(...), which keeps float32 digits
// that (1 - y) x + (log(...) + m) loses for x < -8. Gradient
// ((pw y + 1 - y) sigmoid(x) - pw y) w. With pos_weight both are evaluated
// as (x >= 0 ? (1 - y) x : -x pw y) + l log1p(exp(-|x|)) and
// (1 - y) sigmoid(x) - pw y sigmoid(-x), the same values without PyTorch's
// cancellation of terms of size pw y.
absl::StatusOr<LossPlan> Check(const LossRequest& r, const BceWithLogitsOptions& o) {
  LOSS_RETURN_IF_ERROR(CheckTargetLikeInput(r));
  LOSS_RETURN_IF_ERROR(CheckOptionalBroadcast(o.weight, "bce_with_logits.weight", r.input));
  LOSS_RETURN_IF_ERROR(
      CheckOptionalBroadcast(o.pos_weight, "bce_with_logits.pos_weight", r.input));
  return PlanFor(r, r.input.shape);
}

void Compute(const LossRequest& r, const BceWithLogitsOptions& o, const LossPlan& plan,
             void* loss, void* grad, const ComputeContext& ctx) {
  DispatchFloat(plan.dtype, [&]<typename T>() {
    PointOperands<T> ops = WithTarget<T>(r);
    ops.w = OptionalOperand<T>(o.weight, r.input);
    ops.pw = OptionalOperand<T>(o.pos_weight, r.input);
    RunPointwise<T>(simd::PointOp::kBceWithLogits, {}, r, plan, ops, loss, grad, ctx);
  });
}

}  // namespace lossservice::internal
