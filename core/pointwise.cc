// Point-wise losses: huber, smooth_l1, kl_div, poisson_nll, gaussian_nll,
// soft_margin, hinge_embedding, margin_ranking.
//
// Every element is evaluated in double, also for float32 inputs, with
// PyTorch's own formula (no rewriting into a "more stable" form, which would
// change where PyTorch overflows): float32 results then equal PyTorch's
// float64 evaluation of the same values rounded once, instead of overflowing
// early (soft_margin's exp(-y x) at |x| > 88) or losing digits to
// cancellation.
#include <cmath>
#include <numbers>
#include <vector>

#include "core/internal.h"

namespace lossservice::internal {
namespace {

template <typename T>
LossAndGrad<T> Out(double loss, double grad) {
  return LossAndGrad<T>{static_cast<T>(loss), static_cast<T>(grad)};
}

// Forwards to `base`, except that the gradient is sized `grad_shape` (which
// holds as many elements as the shape asked for).
class GradShapeAllocator final : public OutputAllocator {
 public:
  GradShapeAllocator(OutputAllocator& base, absl::Span<const int64_t> grad_shape)
      : base_(base), grad_shape_(grad_shape) {}
  void* Allocate(Slot slot, DType dtype, absl::Span<const int64_t> shape) override {
    return base_.Allocate(slot, dtype, slot == Slot::kGrad ? grad_shape_ : shape);
  }

 private:
  OutputAllocator& base_;
  absl::Span<const int64_t> grad_shape_;
};

// PyTorch's clamp_min as used by hinge_embedding and margin_ranking: NaN
// stays NaN, and the gradient passes where v >= min (so also at v == min).
inline double ClampMin0(double v) { return v < 0 ? 0.0 : v; }

}  // namespace

// torch.nn.HuberLoss, delta > 0: |d| < delta ? d^2 / 2 : delta (|d| - delta / 2)
// with d = x - y. Gradient clamp(d, -delta, delta); NaN stays NaN.
absl::Status Evaluate(const LossRequest& r, const HuberOptions& o, OutputAllocator& out) {
  if (absl::Status s = CheckTargetLikeInput(r); !s.ok()) return s;
  if (!(o.delta > 0)) {
    return absl::InvalidArgumentError(absl::StrCat("huber.delta must be > 0, got ", o.delta));
  }
  const double delta = o.delta;
  return ElementwiseWithTarget(r, out, [&](auto xt, auto yt) {
    using T = decltype(xt);
    const double d = static_cast<double>(xt) - static_cast<double>(yt);
    const double z = std::abs(d);
    const double loss = z < delta ? 0.5 * z * z : delta * (z - 0.5 * delta);
    const double grad = d < -delta ? -delta : d > delta ? delta : d;
    return Out<T>(loss, grad);
  });
}

// torch.nn.SmoothL1Loss, beta >= 0: |d| < beta ? d^2 / (2 beta) : |d| - beta / 2;
// beta = 0 is L1. The gradient is PyTorch's smooth_l1_loss_backward, also at
// beta = 0: -1 for d <= -beta, 1 for d >= beta, else d / beta. So at beta = 0
// it is NOT L1's sign(d): d = 0 gives -1 and a NaN d gives NaN (0 / 0).
absl::Status Evaluate(const LossRequest& r, const SmoothL1Options& o, OutputAllocator& out) {
  if (absl::Status s = CheckTargetLikeInput(r); !s.ok()) return s;
  if (!(o.beta >= 0)) {
    return absl::InvalidArgumentError(absl::StrCat("smooth_l1.beta must be >= 0, got ", o.beta));
  }
  const double beta = o.beta;
  return ElementwiseWithTarget(r, out, [&](auto xt, auto yt) {
    using T = decltype(xt);
    const double d = static_cast<double>(xt) - static_cast<double>(yt);
    const double z = std::abs(d);
    const double loss = beta == 0 ? z : z < beta ? 0.5 * z * z / beta : z - 0.5 * beta;
    const double grad = d <= -beta ? -1.0 : d >= beta ? 1.0 : d / beta;
    return Out<T>(loss, grad);
  });
}

// torch.nn.KLDivLoss, input log-probabilities. PyTorch 1.13's composite form:
//   log_target = false: xlogy(y, y) - y x, gradient -y
//   log_target = true:  exp(y) (y - x),     gradient -exp(y)
// xlogy(0, 0) = 0, so a zero target adds 0 (but 0 * x is still NaN for an
// infinite x, and PyTorch keeps that NaN); a negative target gives NaN.
// Reductions: mean divides by the element count, batchmean by input.size(0)
// (nothing for a 0-d input).
absl::Status Evaluate(const LossRequest& r, const KlDivOptions& o, OutputAllocator& out) {
  if (absl::Status s = CheckTargetLikeInput(r); !s.ok()) return s;
  return ElementwiseWithTarget(r, out, [&](auto xt, auto yt) {
    using T = decltype(xt);
    const double xi = xt, yi = yt;
    if (o.log_target) {
      const double e = std::exp(yi);
      return Out<T>(e * (yi - xi), -e);
    }
    const double xlogy = std::isnan(yi) ? yi : yi == 0 ? 0.0 : yi * std::log(yi);
    return Out<T>(xlogy - yi * xi, -yi);
  });
}

// torch.nn.PoissonNLLLoss:
//   log_input: exp(x) - y x,            gradient exp(x) - y
//   else:      x - y log(x + eps),      gradient 1 - y / (x + eps)
// full adds Stirling's y log(y) - y + log(2 pi y) / 2 where y > 1 (PyTorch
// masks y <= 1, so a NaN target still makes the loss NaN). eps is used as
// given, as PyTorch does not restrict it.
absl::Status Evaluate(const LossRequest& r, const PoissonNllOptions& o, OutputAllocator& out) {
  if (absl::Status s = CheckTargetLikeInput(r); !s.ok()) return s;
  const double eps = o.eps;
  return ElementwiseWithTarget(r, out, [&](auto xt, auto yt) {
    using T = decltype(xt);
    const double xi = xt, yi = yt;
    double loss, grad;
    if (o.log_input) {
      const double e = std::exp(xi);
      loss = e - yi * xi;
      grad = e - yi;
    } else {
      loss = xi - yi * std::log(xi + eps);
      grad = 1.0 - yi / (xi + eps);
    }
    if (o.full && !(yi <= 1)) {
      loss += yi * std::log(yi) - yi + 0.5 * std::log(2 * std::numbers::pi * yi);
    }
    return Out<T>(loss, grad);
  });
}

// torch.nn.GaussianNLLLoss: (log(v) + (x - y)^2 / v) / 2 with v = max(var, eps)
// (NaN var stays NaN), plus log(2 pi) / 2 when full. Gradient (x - y) / v; none
// for var. var follows torch.nn.functional.gaussian_nll_loss's shape rules:
//  - the input's shape;
//  - the input's shape without its LAST dimension: input (N, D), var (N)
//    is one variance per row (PyTorch unsqueezes it to (N, 1)); a (D) var is
//    refused (unless D == N, when it is still read per row), and so is any
//    other broadcastable shape such as (1, D), (1) or ();
//  - the input's shape with the last dimension 1, e.g. (N, 1).
// So a () var goes only with a (k) or () input. The one case where the loss outgrows the input: a 0-d
// input with a (1) var gives a loss of shape (1) for reduction none, as in
// PyTorch. Any negative var is INVALID_ARGUMENT (PyTorch's ValueError).
absl::Status Evaluate(const LossRequest& r, const GaussianNllOptions& o, OutputAllocator& out) {
  if (absl::Status s = CheckTargetLikeInput(r); !s.ok()) return s;
  if (!o.var) {
    return absl::InvalidArgumentError(
        "gaussian_nll.var is required: the variances, of the input's shape, the input's shape "
        "without its last dimension, or with its last dimension 1");
  }
  const TensorView& var = *o.var;
  if (absl::Status s = CheckFloating(var, "gaussian_nll.var"); !s.ok()) return s;
  const Shape& in = r.input.shape;
  const Shape& vs = var.shape;
  const Shape in_lead(in.begin(), in.end() - (in.empty() ? 0 : 1));
  const bool same = vs == in;
  const bool short_one = !same && vs == in_lead;
  const bool last_one = !same && !short_one && !vs.empty() && vs.back() == 1 &&
                        Shape(vs.begin(), vs.end() - 1) == in_lead;
  if (!same && !short_one && !last_one) {
    return absl::InvalidArgumentError(absl::StrCat(
        "gaussian_nll.var has shape ", ShapeString(vs), " but must be the input's shape ",
        ShapeString(in), ", the input's shape without its last dimension ",
        ShapeString(in_lead), ", or that with a last dimension of 1 (as in PyTorch, var is never "
        "broadcast otherwise)"));
  }
  // A 0-d input with a (1) var: PyTorch's loss has shape (1).
  const bool grows = in.empty() && !vs.empty();
  return DispatchFloat(r.input.dtype, [&]<typename T>() -> absl::Status {
    std::vector<T> var_scratch;
    const T* v = AsFloat<T>(var, var_scratch);
    const int64_t nv = var.numel();
    for (int64_t i = 0; i < nv; ++i) {
      if (v[i] < T(0)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "gaussian_nll.var must be >= 0 everywhere; var ", ShapeString(vs), " has ",
            static_cast<double>(v[i]), " at flat position ", i));
      }
    }
    const T* x = r.input.data_as<T>();
    std::vector<T> scratch;
    const T* y = AsFloat<T>(*r.target, scratch);
    // Elements of the input per var element.
    const int64_t per_var = same || in.empty() ? 1 : in.back();
    const double eps = o.eps;
    const double constant = o.full ? 0.5 * std::log(2 * std::numbers::pi) : 0.0;
    const auto element = [&](int64_t i) {
      double vi = v[per_var == 1 ? i : i / per_var];
      if (vi < eps) vi = eps;
      const double d = static_cast<double>(x[i]) - static_cast<double>(y[i]);
      double loss = 0.5 * (std::log(vi) + d * d / vi);
      if (o.full) loss += constant;
      return Out<T>(loss, d / vi);
    };
    if (!grows) return ReduceElementwise<T>(r, out, element);
    LossRequest grown = r;
    grown.input.shape = {1};
    GradShapeAllocator grad_shape(out, in);
    return ReduceElementwise<T>(grown, grad_shape, element);
  });
}

// torch.nn.SoftMarginLoss: log(1 + exp(-y x)), gradient -y z / (1 + z) with
// z = exp(-y x), PyTorch's formulas: exp overflows (to an infinite loss and a
// NaN gradient) where PyTorch's float64 does, for -y x > ~709.
absl::Status Evaluate(const LossRequest& r, const SoftMarginOptions&, OutputAllocator& out) {
  if (absl::Status s = CheckTargetLikeInput(r); !s.ok()) return s;
  return ElementwiseWithTarget(r, out, [&](auto xt, auto yt) {
    using T = decltype(xt);
    const double xi = xt, yi = yt;
    const double z = std::exp(-yi * xi);
    return Out<T>(std::log1p(z), -yi * z / (1.0 + z));
  });
}

// torch.nn.HingeEmbeddingLoss with PyTorch's exact composition
//   where(y != 1, max(0, margin - x), 0) + where(y != -1, x, 0)
// so y = 1 gives x, y = -1 gives max(0, margin - x), and any other target
// (0, 0.5, 2, NaN) gives the SUM max(0, margin - x) + x. Gradient likewise;
// the clamp passes gradient where margin - x >= 0 (also at equality).
absl::Status Evaluate(const LossRequest& r, const HingeEmbeddingOptions& o,
                      OutputAllocator& out) {
  if (absl::Status s = CheckTargetLikeInput(r); !s.ok()) return s;
  const double margin = o.margin;
  return ElementwiseWithTarget(r, out, [&](auto xt, auto yt) {
    using T = decltype(xt);
    const double xi = xt, yi = yt;
    double loss = 0, grad = 0;
    if (yi != 1) {
      const double c = margin - xi;
      loss = ClampMin0(c);
      grad = c >= 0 ? -1.0 : 0.0;
    }
    if (yi != -1) {
      loss += xi;
      grad += 1.0;
    }
    return Out<T>(loss, grad);
  });
}

// torch.nn.MarginRankingLoss: max(0, -y (x1 - x2) + margin) with x1 the input
// and x2 = input2, shapes (N) or () and all three alike (PyTorch would
// broadcast; we never do). Gradient with respect to x1 only: -y where
// -y (x1 - x2) + margin >= 0 (also at equality), else 0; a NaN gives 0.
absl::Status Evaluate(const LossRequest& r, const MarginRankingOptions& o, OutputAllocator& out) {
  if (r.input.dim() > 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input: margin_ranking takes scores of shape (N) or (), got ",
        ShapeString(r.input.shape)));
  }
  if (absl::Status s = CheckTargetLikeInput(r); !s.ok()) return s;
  if (!o.input2) {
    return absl::InvalidArgumentError(
        "margin_ranking.input2 is required: the second scores, of the input's shape");
  }
  if (absl::Status s = CheckFloating(*o.input2, "margin_ranking.input2"); !s.ok()) return s;
  if (absl::Status s = CheckShapeEquals(*o.input2, "margin_ranking.input2", r.input.shape,
                                        absl::StrCat("input ", ShapeString(r.input.shape)));
      !s.ok()) {
    return s;
  }
  return DispatchFloat(r.input.dtype, [&]<typename T>() {
    const T* x1 = r.input.data_as<T>();
    std::vector<T> scratch, scratch2;
    const T* y = AsFloat<T>(*r.target, scratch);
    const T* x2 = AsFloat<T>(*o.input2, scratch2);
    const double margin = o.margin;
    return ReduceElementwise<T>(r, out, [&](int64_t i) {
      const double yi = y[i];
      const double v = -yi * (static_cast<double>(x1[i]) - static_cast<double>(x2[i])) + margin;
      return Out<T>(ClampMin0(v), v >= 0 ? -yi : 0.0);
    });
  });
}

}  // namespace lossservice::internal
