// Regression losses: mse, l1, rmse.
#include <cmath>

#include "core/internal.h"

namespace lossservice::internal {

// torch.nn.MSELoss: (x - y)^2, gradient 2 (x - y).
absl::Status Evaluate(const LossRequest& r, const MseOptions&, OutputAllocator& out) {
  if (absl::Status s = CheckTargetLikeInput(r); !s.ok()) return s;
  return ElementwiseWithTarget(r, out, [](auto x, auto y) {
    using T = decltype(x);
    const T d = x - y;
    return LossAndGrad<T>{d * d, T(2) * d};
  });
}

// torch.nn.L1Loss: |x - y|, gradient sign(x - y). Keeps torch's sign(NaN) = 0
// in the gradient (the loss itself is NaN there).
absl::Status Evaluate(const LossRequest& r, const L1Options&, OutputAllocator& out) {
  if (absl::Status s = CheckTargetLikeInput(r); !s.ok()) return s;
  return ElementwiseWithTarget(r, out, [](auto x, auto y) {
    using T = decltype(x);
    const T d = x - y;
    return LossAndGrad<T>{std::abs(d), static_cast<T>((T(0) < d) - (d < T(0)))};
  });
}

// sqrt(mean((x - y)^2) + eps), the seed document's RMSELoss; mean only.
// Gradient (x - y) / (N * loss).
absl::Status Evaluate(const LossRequest& r, const RmseOptions& o, OutputAllocator& out) {
  if (absl::Status s = CheckTargetLikeInput(r); !s.ok()) return s;
  if (!(o.eps >= 0)) {
    return absl::InvalidArgumentError(absl::StrCat("rmse.eps must be >= 0, got ", o.eps));
  }
  if (absl::Status s = CheckGradOutput(r, {}); !s.ok()) return s;
  return DispatchFloat(r.input.dtype, [&]<typename T>() {
    const T* x = r.input.data_as<T>();
    std::vector<T> scratch;
    const T* y = AsFloat<T>(*r.target, scratch);
    const int64_t n = r.input.numel();
    Acc sum = 0;
    for (int64_t i = 0; i < n; ++i) {
      const T d = x[i] - y[i];
      sum += d * d;
    }
    // torch computes mse in T, adds eps in T, then takes the root.
    const T mse = static_cast<T>(sum / static_cast<Acc>(n));
    const T loss = std::sqrt(mse + static_cast<T>(o.eps));
    const LossOutputs<T> o = AllocateLossOutputs<T>(r, r.input.shape, out);
    o.loss[0] = loss;
    if (o.grad) {
      std::vector<T> go_scratch;
      const T go = r.grad_output ? AsFloat<T>(*r.grad_output, go_scratch)[0] : T(1);
      // d sqrt(m + eps) = dm / (2 sqrt(m + eps)); dm/dx = 2 (x - y) / N.
      const T scale = go / (static_cast<T>(n) * loss);
      T* grad = o.grad;
      for (int64_t i = 0; i < n; ++i) grad[i] = (x[i] - y[i]) * scale;
    }
    return absl::OkStatus();
  });
}

}  // namespace lossservice::internal
