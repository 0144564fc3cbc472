// Point-wise losses: huber, smooth_l1, kl_div, poisson_nll, gaussian_nll,
// soft_margin, hinge_embedding, margin_ranking.
//
// kl_div, poisson_nll, gaussian_nll, hinge_embedding and margin_ranking
// evaluate elements in double lanes, also for float32 inputs, with PyTorch's
// own formula: float32 results then equal PyTorch's float64 evaluation of
// the same values rounded once, instead of overflowing early (poisson's
// exp(x) at x > 88) or losing digits to cancellation (kl_div's y log y - y x,
// poisson's exp(x) - y x), and their comparisons (margin_ranking's clamp)
// decide as the float64 reference does. huber and smooth_l1 have neither (no
// transcendental, no cancellation: |d| - delta / 2 >= delta / 2): they run in
// the input's type, like mse and l1, unless delta (beta) is so large that the
// quadratic branch d^2 / 2 could overflow float32. soft_margin runs in the
// input's type as softplus, finite where PyTorch's float32 overflows, with
// the float64 reference's overflow kept explicitly. The kernels are
// simd::PointOp's.
#include <cmath>

#include "core/elementwise.h"
#include "core/internal.h"

namespace lossservice::internal {
namespace {

// huber's delta and smooth_l1's beta up to which their quadratic branch
// (|d| below it) cannot overflow float32: (1e18)^2 / 2 < FLT_MAX.
constexpr double kSquareSafe = 1e18;

template <typename T>
void RunWithTarget(simd::PointOp op, const simd::PointParams& params, const LossRequest& r,
                   const LossPlan& plan, void* loss, void* grad, const ComputeContext& ctx) {
  RunPointwise<T>(op, params, r, plan, WithTarget<T>(r), loss, grad, ctx);
}

}  // namespace

// torch.nn.HuberLoss, delta > 0: |d| < delta ? d^2 / 2 : delta (|d| - delta / 2)
// with d = x - y. Gradient clamp(d, -delta, delta); NaN stays NaN.
absl::StatusOr<LossPlan> Check(const LossRequest& r, const HuberOptions& o) {
  LOSS_RETURN_IF_ERROR(CheckTargetLikeInput(r));
  if (!(o.delta > 0)) {
    return absl::InvalidArgumentError(absl::StrCat("huber.delta must be > 0, got ", o.delta));
  }
  return PlanFor(r, r.input.shape);
}

void Compute(const LossRequest& r, const HuberOptions& o, const LossPlan& plan, void* loss,
             void* grad, const ComputeContext& ctx) {
  DispatchFloat(plan.dtype, [&]<typename T>() {
    RunWithTarget<T>(o.delta <= kSquareSafe ? simd::PointOp::kHuber : simd::PointOp::kHuberWide,
                     {o.delta}, r, plan, loss, grad, ctx);
  });
}

// torch.nn.SmoothL1Loss, beta >= 0: |d| < beta ? d^2 / (2 beta) : |d| - beta / 2;
// beta = 0 is L1. The gradient is PyTorch's smooth_l1_loss_backward, also at
// beta = 0: -1 for d <= -beta, 1 for d >= beta, else d / beta. So at beta = 0
// it is NOT L1's sign(d): d = 0 gives -1 and a NaN d gives NaN (0 / 0).
absl::StatusOr<LossPlan> Check(const LossRequest& r, const SmoothL1Options& o) {
  LOSS_RETURN_IF_ERROR(CheckTargetLikeInput(r));
  if (!(o.beta >= 0)) {
    return absl::InvalidArgumentError(absl::StrCat("smooth_l1.beta must be >= 0, got ", o.beta));
  }
  return PlanFor(r, r.input.shape);
}

void Compute(const LossRequest& r, const SmoothL1Options& o, const LossPlan& plan, void* loss,
             void* grad, const ComputeContext& ctx) {
  DispatchFloat(plan.dtype, [&]<typename T>() {
    RunWithTarget<T>(o.beta <= kSquareSafe ? simd::PointOp::kSmoothL1 : simd::PointOp::kSmoothL1Wide,
                     {o.beta}, r, plan, loss, grad, ctx);
  });
}

// torch.nn.KLDivLoss, input log-probabilities. PyTorch 1.13's composite form:
//   log_target = false: xlogy(y, y) - y x, gradient -y
//   log_target = true:  exp(y) (y - x),     gradient -exp(y)
// xlogy(0, 0) = 0, so a zero target adds 0 (but 0 * x is still NaN for an
// infinite x, and PyTorch keeps that NaN); a negative target gives NaN.
// Reductions: mean divides by the element count, batchmean by input.size(0)
// (nothing for a 0-d input).
absl::StatusOr<LossPlan> Check(const LossRequest& r, const KlDivOptions&) {
  LOSS_RETURN_IF_ERROR(CheckTargetLikeInput(r));
  LossPlan plan = PlanFor(r, r.input.shape);
  if (r.reduction == Reduction::kBatchMean) {
    plan.divisor = r.input.dim() > 0 ? static_cast<double>(r.input.shape[0]) : 1.0;
  }
  return plan;
}

void Compute(const LossRequest& r, const KlDivOptions& o, const LossPlan& plan, void* loss,
             void* grad, const ComputeContext& ctx) {
  DispatchFloat(plan.dtype, [&]<typename T>() {
    RunWithTarget<T>(o.log_target ? simd::PointOp::kKlDivLogTarget : simd::PointOp::kKlDiv, {},
                     r, plan, loss, grad, ctx);
  });
}

// torch.nn.PoissonNLLLoss:
//   log_input: exp(x) - y x,            gradient exp(x) - y
//   else:      x - y log(x + eps),      gradient 1 - y / (x + eps)
// full adds Stirling's y log(y) - y + log(2 pi y) / 2 where y > 1 (PyTorch
// masks y <= 1, so a NaN target still makes the loss NaN). eps is used as
// given, as PyTorch does not restrict it.
absl::StatusOr<LossPlan> Check(const LossRequest& r, const PoissonNllOptions&) {
  LOSS_RETURN_IF_ERROR(CheckTargetLikeInput(r));
  return PlanFor(r, r.input.shape);
}

void Compute(const LossRequest& r, const PoissonNllOptions& o, const LossPlan& plan, void* loss,
             void* grad, const ComputeContext& ctx) {
  DispatchFloat(plan.dtype, [&]<typename T>() {
    RunWithTarget<T>(o.log_input ? simd::PointOp::kPoissonLog : simd::PointOp::kPoisson,
                     {o.eps, o.full}, r, plan, loss, grad, ctx);
  });
}

// torch.nn.GaussianNLLLoss: (log(v) + (x - y)^2 / v) / 2 with v = max(var, eps)
// (NaN var stays NaN), plus log(2 pi) / 2 when full. Gradient (x - y) / v; none
// for var. The target has the input's shape or, as torch.nn.GaussianNLLLoss
// documents, that shape with a last dimension of 1 (broadcast along it). var
// follows torch.nn.functional.gaussian_nll_loss's shape rules:
//  - the input's shape;
//  - the input's shape without its LAST dimension: input (N, D), var (N)
//    is one variance per row (PyTorch unsqueezes it to (N, 1)); a (D) var is
//    refused (unless D == N, when it is still read per row), and so is any
//    other broadcastable shape such as (1, D), (1) or ();
//  - the input's shape with the last dimension 1, e.g. (N, 1).
// So a () var goes only with a (k) or () input. The one case where the loss
// outgrows the input: a 0-d input with a (1) var gives a loss of shape (1)
// for reduction none, as in PyTorch. Any negative var is INVALID_ARGUMENT
// (PyTorch's ValueError).
namespace {

// Shapes `a` and `b` agree except that the last dimension of `b` is 1 (and
// `a` has at least one dimension).
bool LastDimOne(absl::Span<const int64_t> a, absl::Span<const int64_t> b) {
  return !a.empty() && a.size() == b.size() && b.back() == 1 &&
         a.subspan(0, a.size() - 1) == b.subspan(0, b.size() - 1);
}

// Input elements per element of a var (or target) that passed the checks.
int64_t GroupOf(absl::Span<const int64_t> input, absl::Span<const int64_t> other) {
  return input == other || input.empty() ? 1 : input.back();
}

}  // namespace

absl::StatusOr<LossPlan> Check(const LossRequest& r, const GaussianNllOptions& o) {
  if (!r.target) return absl::InvalidArgumentError("target is required");
  LOSS_RETURN_IF_ERROR(CheckFloating(*r.target, "target"));
  const Shape& in = r.input.shape;
  if (r.target->shape != in && !LastDimOne(in, r.target->shape)) {
    Shape last_one = in;
    if (!last_one.empty()) last_one.back() = 1;
    return absl::InvalidArgumentError(absl::StrCat(
        "size mismatch: target has shape ", ShapeString(r.target->shape),
        " but must be the input's shape ", ShapeString(in),
        in.empty() ? "" : absl::StrCat(" or that with a last dimension of 1, ",
                                       ShapeString(last_one)),
        " (gaussian_nll broadcasts the target along nothing else)"));
  }
  if (!o.var) {
    return absl::InvalidArgumentError(
        "gaussian_nll.var is required: the variances, of the input's shape, the input's shape "
        "without its last dimension, or with its last dimension 1");
  }
  const TensorView& var = *o.var;
  LOSS_RETURN_IF_ERROR(CheckFloating(var, "gaussian_nll.var"));
  const Shape& vs = var.shape;
  const absl::Span<const int64_t> in_lead =
      absl::Span<const int64_t>(in).subspan(0, in.empty() ? 0 : in.size() - 1);
  const bool same = vs == in;
  const bool short_one = !same && absl::Span<const int64_t>(vs) == in_lead;
  const bool last_one = !same && !short_one && !vs.empty() && vs.back() == 1 &&
                        absl::Span<const int64_t>(vs).subspan(0, vs.size() - 1) == in_lead;
  if (!same && !short_one && !last_one) {
    return absl::InvalidArgumentError(absl::StrCat(
        "gaussian_nll.var has shape ", ShapeString(vs), " but must be the input's shape ",
        ShapeString(in), ", the input's shape without its last dimension ",
        ShapeString(in_lead), ", or that with a last dimension of 1 (as in PyTorch, var is never "
        "broadcast otherwise)"));
  }
  const int64_t nv = var.numel();
  const int64_t bad = var.dtype == DType::kFloat32
                          ? simd::FindOutside(var.data_as<float>(), nv, 0, HUGE_VAL, true)
                          : simd::FindOutside(var.data_as<double>(), nv, 0, HUGE_VAL, true);
  if (bad < nv) {
    return absl::InvalidArgumentError(absl::StrCat(
        "gaussian_nll.var must be >= 0 everywhere; var ", ShapeString(vs), " has ",
        FloatAt<double>(var, bad), " at flat position ", bad));
  }
  // A 0-d input with a (1) var: PyTorch's loss has shape (1).
  const bool grows = in.empty() && !vs.empty();
  LossPlan plan = PlanFor(r, grows ? Shape{1} : in);
  plan.group = same || in.empty() ? 1 : in.back();
  return plan;
}

void Compute(const LossRequest& r, const GaussianNllOptions& o, const LossPlan& plan, void* loss,
             void* grad, const ComputeContext& ctx) {
  DispatchFloat(plan.dtype, [&]<typename T>() {
    PointOperands<T> ops;
    ops.y = Operand<T>::Grouped(*r.target, GroupOf(r.input.shape, r.target->shape));
    ops.z = Operand<T>::Grouped(*o.var, plan.group);
    RunPointwise<T>(simd::PointOp::kGaussian, {o.eps, o.full}, r, plan, ops, loss, grad, ctx);
  });
}

// torch.nn.SoftMarginLoss: log(1 + exp(-y x)), gradient -y z / (1 + z) with
// z = exp(-y x), evaluated as softplus(v) = max(v, 0) + log1p(exp(-|v|)) and
// -y sigmoid(v) for v = -y x (the same values, without overflow); past
// v = 709.78, where PyTorch's float64 exp overflows, the loss is inf and the
// gradient NaN, as there.
absl::StatusOr<LossPlan> Check(const LossRequest& r, const SoftMarginOptions&) {
  LOSS_RETURN_IF_ERROR(CheckTargetLikeInput(r));
  return PlanFor(r, r.input.shape);
}

void Compute(const LossRequest& r, const SoftMarginOptions&, const LossPlan& plan, void* loss,
             void* grad, const ComputeContext& ctx) {
  DispatchFloat(plan.dtype, [&]<typename T>() {
    RunWithTarget<T>(simd::PointOp::kSoftMargin, {}, r, plan, loss, grad, ctx);
  });
}

// torch.nn.HingeEmbeddingLoss with PyTorch's exact composition
//   where(y != 1, max(0, margin - x), 0) + where(y != -1, x, 0)
// so y = 1 gives x, y = -1 gives max(0, margin - x), and any other target
// (0, 0.5, 2, NaN) gives the SUM max(0, margin - x) + x. Gradient likewise;
// the clamp passes gradient where margin - x >= 0 (also at equality).
absl::StatusOr<LossPlan> Check(const LossRequest& r, const HingeEmbeddingOptions&) {
  LOSS_RETURN_IF_ERROR(CheckTargetLikeInput(r));
  return PlanFor(r, r.input.shape);
}

void Compute(const LossRequest& r, const HingeEmbeddingOptions& o, const LossPlan& plan,
             void* loss, void* grad, const ComputeContext& ctx) {
  DispatchFloat(plan.dtype, [&]<typename T>() {
    RunWithTarget<T>(simd::PointOp::kHingeEmbedding, {o.margin}, r, plan, loss, grad, ctx);
  });
}

// torch.nn.MarginRankingLoss: max(0, -y (x1 - x2) + margin) with x1 the input
// and x2 = input2, element-wise: all three of the same shape, of any rank
// (PyTorch asks for the same rank and then broadcasts; we never broadcast).
// Gradient with respect to x1 only: -y where -y (x1 - x2) + margin >= 0 (also
// at equality), else 0; a NaN gives 0.
absl::StatusOr<LossPlan> Check(const LossRequest& r, const MarginRankingOptions& o) {
  LOSS_RETURN_IF_ERROR(CheckTargetLikeInput(r));
  if (!o.input2) {
    return absl::InvalidArgumentError(
        "margin_ranking.input2 is required: the second scores, of the input's shape");
  }
  LOSS_RETURN_IF_ERROR(CheckFloating(*o.input2, "margin_ranking.input2"));
  LOSS_RETURN_IF_ERROR(CheckShapeEquals(*o.input2, "margin_ranking.input2", r.input.shape,
                                        {"input", &r.input.shape}));
  return PlanFor(r, r.input.shape);
}

void Compute(const LossRequest& r, const MarginRankingOptions& o, const LossPlan& plan,
             void* loss, void* grad, const ComputeContext& ctx) {
  DispatchFloat(plan.dtype, [&]<typename T>() {
    PointOperands<T> ops = WithTarget<T>(r);
    ops.z = Operand<T>(*o.input2, r.input.shape);
    RunPointwise<T>(simd::PointOp::kMarginRanking, {o.margin}, r, plan, ops, loss, grad, ctx);
  });
}

}  // namespace lossservice::internal
