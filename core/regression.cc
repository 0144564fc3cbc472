// Regression losses: mse, l1, rmse.
#include <cmath>

#include "core/elementwise.h"
#include "core/internal.h"

namespace lossservice::internal {

// torch.nn.MSELoss: (x - y)^2, gradient 2 (x - y).
absl::StatusOr<LossPlan> Check(const LossRequest& r, const MseOptions&) {
  LOSS_RETURN_IF_ERROR(CheckTargetLikeInput(r));
  return PlanFor(r, r.input.shape);
}

void Compute(const LossRequest& r, const MseOptions&, const LossPlan& plan, void* loss,
             void* grad, const ComputeContext& ctx) {
  DispatchFloat(plan.dtype, [&]<typename T>() {
    RunPointwise<T>(simd::PointOp::kMse, {}, r, plan, WithTarget<T>(r), loss, grad, ctx);
  });
}

// torch.nn.L1Loss: |x - y|, gradient sign(x - y). Keeps torch's sign(NaN) = 0
// in the gradient (the loss itself is NaN there).
absl::StatusOr<LossPlan> Check(const LossRequest& r, const L1Options&) {
  LOSS_RETURN_IF_ERROR(CheckTargetLikeInput(r));
  return PlanFor(r, r.input.shape);
}

void Compute(const LossRequest& r, const L1Options&, const LossPlan& plan, void* loss, void* grad,
             const ComputeContext& ctx) {
  DispatchFloat(plan.dtype, [&]<typename T>() {
    RunPointwise<T>(simd::PointOp::kL1, {}, r, plan, WithTarget<T>(r), loss, grad, ctx);
  });
}

// sqrt(mean((x - y)^2) + eps), the seed document's RMSELoss; mean only.
// Gradient (x - y) / (N * loss): a second pass, once the loss is known.
absl::StatusOr<LossPlan> Check(const LossRequest& r, const RmseOptions& o) {
  LOSS_RETURN_IF_ERROR(CheckTargetLikeInput(r));
  if (!(o.eps >= 0)) {
    return absl::InvalidArgumentError(absl::StrCat("rmse.eps must be >= 0, got ", o.eps));
  }
  return PlanFor(r, r.input.shape);
}

void Compute(const LossRequest& r, const RmseOptions& o, const LossPlan& plan, void* loss_out,
             void* grad_out, const ComputeContext& ctx) {
  DispatchFloat(plan.dtype, [&]<typename T>() {
    const PointOperands<T> ops = WithTarget<T>(r);
    const T* x = r.input.data_as<T>();
    const int64_t n = r.input.numel();
    const double sum = PointPass<T>(simd::PointOp::kMse, {}, x, n, ops, {}, nullptr, nullptr, ctx);
    // torch computes mse in T, adds eps in T, then takes the root.
    const T mse = static_cast<T>(sum / static_cast<double>(n));
    const T loss = std::sqrt(mse + static_cast<T>(o.eps));
    static_cast<T*>(loss_out)[0] = loss;
    if (grad_out == nullptr) return;
    // d sqrt(m + eps) = dm / (2 sqrt(m + eps)); dm/dx = 2 (x - y) / N.
    const T go = r.grad_output ? FloatAt<T>(*r.grad_output, 0) : T(1);
    Upstream<T> up;
    up.uniform = static_cast<double>(go / (static_cast<T>(n) * loss));
    PointPass<T>(simd::PointOp::kDiff, {}, x, n, ops, up, nullptr, static_cast<T*>(grad_out), ctx);
  });
}

}  // namespace lossservice::internal
