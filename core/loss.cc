#include "core/loss.h"

#include <algorithm>

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
                              absl::Span<const int64_t> expected, absl::string_view expected_what) {
  if (absl::Span<const int64_t>(t.shape) == expected) return absl::OkStatus();
  std::string message = absl::StrCat("size mismatch: ", field, " has shape ", ShapeString(t.shape),
                                     " but must be ", ShapeString(expected), " to match ",
                                     expected_what);
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
  if (absl::Status s = CheckFloating(*r.target, "target"); !s.ok()) return s;
  return CheckShapeEquals(*r.target, "target", r.input.shape,
                          absl::StrCat("input ", ShapeString(r.input.shape)));
}

absl::Status CheckClassWeight(const std::optional<TensorView>& weight, absl::string_view field,
                              int64_t classes) {
  if (!weight) return absl::OkStatus();
  if (absl::Status s = CheckFloating(*weight, field); !s.ok()) return s;
  if (weight->dim() == 1 && weight->shape[0] == classes) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(field, " must have one value per class: shape [",
                                                 classes, "], got ",
                                                 ShapeString(weight->shape)));
}

absl::Status CheckBroadcastsTo(const TensorView& t, absl::string_view field,
                               absl::Span<const int64_t> shape) {
  if (absl::Status s = CheckFloating(t, field); !s.ok()) return s;
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

absl::Status CheckGradOutput(const LossRequest& r, absl::Span<const int64_t> loss_shape) {
  if (!r.grad_output) return absl::OkStatus();
  if (absl::Status s = CheckFloating(*r.grad_output, "grad_output"); !s.ok()) return s;
  return CheckShapeEquals(*r.grad_output, "grad_output", loss_shape, "the loss");
}

const int64_t* AsIndex(const TensorView& t, std::vector<int64_t>& scratch) {
  if (t.dtype == DType::kInt64) return t.data_as<int64_t>();
  const int64_t n = t.numel();
  scratch.resize(static_cast<size_t>(n));
  const int32_t* in = t.data_as<int32_t>();
  for (int64_t i = 0; i < n; ++i) scratch[i] = in[i];
  return scratch.data();
}

}  // namespace internal

absl::Status EvaluateLoss(const LossRequest& request, OutputAllocator& out,
                          const ComputeContext& /*ctx*/) {
  if (absl::Status s = internal::CheckFloating(request.input, "input"); !s.ok()) return s;
  const LossInfo& info = InfoFor(request.options);
  // The registry's list of reductions is the one ListLosses reports.
  if (std::find(info.reductions.begin(), info.reductions.end(), request.reduction) ==
      info.reductions.end()) {
    std::vector<absl::string_view> names;
    for (Reduction a : info.reductions) names.push_back(ReductionName(a));
    return absl::InvalidArgumentError(absl::StrCat("reduction ", ReductionName(request.reduction),
                                                   " is not allowed for ", info.name,
                                                   "; allowed: ", absl::StrJoin(names, ", ")));
  }
  return std::visit(
      [&](const auto& options) { return internal::Evaluate(request, options, out); },
      request.options);
}

}  // namespace lossservice
