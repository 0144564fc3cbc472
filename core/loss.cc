#include "core/loss.h"

#include <variant>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/internal.h"

namespace lossservice {

absl::string_view ReductionName(Reduction reduction) {
  switch (reduction) {
    case Reduction::kMean: return "mean";
    case Reduction::kSum: return "sum";
    case Reduction::kNone: return "none";
    case Reduction::kBatchMean: return "batchmean";
  }
  return "unknown";
}

namespace internal {

std::string Against::str() const {
  if (shape == nullptr) return absl::StrCat(prefix, suffix);
  return absl::StrCat(prefix, " ", ShapeString(*shape), suffix);
}

absl::Status CheckFloating(const TensorView& t, absl::string_view field) {
  if (IsFloating(t.dtype)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      field, " must be FLOAT32 or FLOAT64, got ", DTypeName(t.dtype), " ", ShapeString(t.shape)));
}

absl::Status CheckIndex(const TensorView& t, absl::string_view field) {
  if (t.dtype == DType::kInt64 || t.dtype == DType::kInt32) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      field, " must hold class indices (INT64 or INT32), got ", DTypeName(t.dtype), " ",
      ShapeString(t.shape)));
}

namespace {
Shape WithoutOnes(absl::Span<const int64_t> shape) {
  Shape s;
  for (int64_t d : shape) {
    if (d != 1) s.push_back(d);
  }
  return s;
}
}  // namespace

absl::Status CheckShapeEquals(const TensorView& t, absl::string_view field,
                              absl::Span<const int64_t> expected, const Against& against) {
  if (absl::Span<const int64_t>(t.shape) == expected) return absl::OkStatus();
  std::string message = absl::StrCat("size mismatch: ", field, " has shape ", ShapeString(t.shape),
                                     " but must be ", ShapeString(expected), " to match ",
                                     against.str());
  if (WithoutOnes(t.shape) == WithoutOnes(expected)) {
    absl::StrAppend(&message,
                    "; the shapes differ only by dimensions of size 1: squeeze the one with the "
                    "extra dimension (e.g. .squeeze(-1)) or reshape so that they match exactly "
                    "(shapes are never broadcast silently)");
  }
  return absl::InvalidArgumentError(message);
}

absl::Status CheckTargetLikeInput(const LossRequest& r) {
  if (!r.target) return absl::InvalidArgumentError("target is required");
  LOSS_RETURN_IF_ERROR(CheckFloating(*r.target, "target"));
  return CheckShapeEquals(*r.target, "target", r.input.shape, {"input", &r.input.shape});
}

absl::Status CheckClassWeight(const std::optional<TensorView>& weight, absl::string_view field,
                              int64_t classes) {
  if (!weight) return absl::OkStatus();
  LOSS_RETURN_IF_ERROR(CheckFloating(*weight, field));
  if (weight->dim() == 1 && weight->shape[0] == classes) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(field, " must have one value per class: shape [",
                                                 classes, "], got ",
                                                 ShapeString(weight->shape)));
}

absl::Status CheckBroadcastsTo(const TensorView& t, absl::string_view field,
                               absl::Span<const int64_t> shape) {
  LOSS_RETURN_IF_ERROR(CheckFloating(t, field));
  bool ok = t.shape.size() <= shape.size();
  for (size_t i = 0; ok && i < t.shape.size(); ++i) {
    const int64_t d = t.shape[t.shape.size() - 1 - i];
    ok = d == 1 || d == shape[shape.size() - 1 - i];
  }
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(field, " of shape ", ShapeString(t.shape),
                                                 " does not broadcast to the input's shape ",
                                                 ShapeString(shape)));
}

Shape ReducedShape(Reduction reduction, absl::Span<const int64_t> unreduced) {
  if (reduction == Reduction::kNone) return Shape(unreduced.begin(), unreduced.end());
  return Shape{};
}

LossPlan PlanFor(const LossRequest& r, absl::Span<const int64_t> unreduced) {
  LossPlan plan;
  plan.dtype = r.input.dtype;
  plan.loss_shape = ReducedShape(r.reduction, unreduced);
  plan.compute_grad = r.compute_grad;
  plan.divisor = static_cast<double>(NumElements(unreduced));
  return plan;
}

namespace {

// The grad_output, when given, must be floating and shaped like the loss.
absl::Status CheckGradOutput(const LossRequest& r, const LossPlan& plan) {
  if (!r.grad_output) return absl::OkStatus();
  LOSS_RETURN_IF_ERROR(CheckFloating(*r.grad_output, "grad_output"));
  return CheckShapeEquals(*r.grad_output, "grad_output", plan.loss_shape, {"the loss"});
}

absl::Status ReductionNotAllowed(const LossRequest& r) {
  const LossInfo& info = InfoFor(r.options);
  std::vector<absl::string_view> names;
  for (Reduction a : info.reductions) names.push_back(ReductionName(a));
  return absl::InvalidArgumentError(absl::StrCat("reduction ", ReductionName(r.reduction),
                                                 " is not allowed for ", info.name,
                                                 "; allowed: ", absl::StrJoin(names, ", ")));
}

}  // namespace
}  // namespace internal

absl::StatusOr<LossPlan> PlanLoss(const LossRequest& request) {
  LOSS_RETURN_IF_ERROR(internal::CheckFloating(request.input, "input"));
  const uint8_t allowed = std::visit(
      [](const auto& options) { return std::decay_t<decltype(options)>::kDoc.reductions; },
      request.options);
  if (!(allowed & ReductionBit(request.reduction))) return internal::ReductionNotAllowed(request);
  LOSS_ASSIGN_OR_RETURN(
      LossPlan plan,
      std::visit([&](const auto& options) { return internal::Check(request, options); },
                 request.options));
  LOSS_RETURN_IF_ERROR(internal::CheckGradOutput(request, plan));
  return plan;
}

void ComputeLoss(const LossRequest& request, const LossPlan& plan, void* loss, void* grad,
                 const ComputeContext& ctx) {
  std::visit(
      [&](const auto& options) { internal::Compute(request, options, plan, loss, grad, ctx); },
      request.options);
}

absl::Status EvaluateLoss(const LossRequest& request, OutputAllocator& out,
                          const ComputeContext& ctx) {
  LOSS_ASSIGN_OR_RETURN(const LossPlan plan, PlanLoss(request));
  void* loss = out.Allocate(OutputAllocator::Slot::kLoss, plan.dtype, plan.loss_shape);
  void* grad = plan.compute_grad
                   ? out.Allocate(OutputAllocator::Slot::kGrad, plan.dtype, request.input.shape)
                   : nullptr;
  ComputeLoss(request, plan, loss, grad, ctx);
  return absl::OkStatus();
}

}  // namespace lossservice
