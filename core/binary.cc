// Binary losses: bce and bce_with_logits.
#include <algorithm>
#include <cmath>

#include "core/internal.h"

namespace lossservice::internal {
namespace {

// Validates an optional tensor that broadcasts to the input and returns its
// reader (undefined when absent).
template <typename T>
absl::Status ReadBroadcast(const std::optional<TensorView>& t, absl::string_view field,
                           const TensorView& input, BroadcastReader<T>& reader) {
  if (!t) return absl::OkStatus();
  if (absl::Status s = CheckBroadcastsTo(*t, field, input.shape); !s.ok()) return s;
  reader = BroadcastReader<T>(*t, input.shape);
  return absl::OkStatus();
}

template <typename T>
T Sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

}  // namespace

// torch.nn.BCELoss: -w (y log x + (1 - y) log(1 - x)) with each log clamped
// at -100, PyTorch's quirk that keeps x = 0 or 1 finite. Gradient
// w (x - y) / max(x (1 - x), float(1e-12)), as in PyTorch. Input outside [0, 1]
// (NaN included, as PyTorch refuses it) and target outside [0, 1] are
// INVALID_ARGUMENT.
absl::Status Evaluate(const LossRequest& r, const BceOptions& o, OutputAllocator& out) {
  if (absl::Status s = CheckTargetLikeInput(r); !s.ok()) return s;
  return DispatchFloat(r.input.dtype, [&]<typename T>() -> absl::Status {
    const T* x = r.input.data_as<T>();
    std::vector<T> scratch;
    const T* y = AsFloat<T>(*r.target, scratch);
    const int64_t n = r.input.numel();
    for (int64_t i = 0; i < n; ++i) {
      if (!(x[i] >= T(0) && x[i] <= T(1))) {
        return absl::InvalidArgumentError(absl::StrCat(
            "input: bce needs probabilities in [0, 1]; input ", ShapeString(r.input.shape),
            " has ", static_cast<double>(x[i]), " at flat position ", i,
            " (pass logits to bce_with_logits instead)"));
      }
      if (y[i] < T(0) || y[i] > T(1)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "target: bce needs targets in [0, 1]; target ", ShapeString(r.target->shape),
            " has ", static_cast<double>(y[i]), " at flat position ", i));
      }
    }
    BroadcastReader<T> w;
    if (absl::Status s = ReadBroadcast(o.weight, "bce.weight", r.input, w); !s.ok()) return s;
    constexpr T kLogMin = -100;
    // PyTorch's EPSILON is a float, also for float64 inputs.
    constexpr T kEpsilon = static_cast<T>(1e-12f);
    return ReduceElementwise<T>(r, out, [&](int64_t i) {
      const T xi = x[i], yi = y[i];
      const T wi = w.defined() ? w[i] : T(1);
      const T loss = (yi - T(1)) * std::max(static_cast<T>(std::log1p(-xi)), kLogMin) -
                     yi * std::max(static_cast<T>(std::log(xi)), kLogMin);
      const T grad = (xi - yi) / std::max((T(1) - xi) * xi, kEpsilon);
      return LossAndGrad<T>{wi * loss, wi * grad};
    });
  });
}

// torch.nn.BCEWithLogitsLoss in PyTorch's stable form:
//   m = max(-x, 0)
//   loss = (1 - y) x + l (log(exp(-m) + exp(-x - m)) + m),  l = 1 + (pw - 1) y
// times weight. Gradient ((pw y + 1 - y) sigmoid(x) - pw y) w.
absl::Status Evaluate(const LossRequest& r, const BceWithLogitsOptions& o,
                               OutputAllocator& out) {
  if (absl::Status s = CheckTargetLikeInput(r); !s.ok()) return s;
  return DispatchFloat(r.input.dtype, [&]<typename T>() -> absl::Status {
    const T* x = r.input.data_as<T>();
    std::vector<T> scratch;
    const T* y = AsFloat<T>(*r.target, scratch);
    BroadcastReader<T> w, pw;
    if (absl::Status s = ReadBroadcast(o.weight, "bce_with_logits.weight", r.input, w); !s.ok()) {
      return s;
    }
    if (absl::Status s = ReadBroadcast(o.pos_weight, "bce_with_logits.pos_weight", r.input, pw);
        !s.ok()) {
      return s;
    }
    return ReduceElementwise<T>(r, out, [&](int64_t i) {
      const T xi = x[i], yi = y[i];
      const T m = std::max(-xi, T(0));
      const T log_sum = std::log(std::exp(-m) + std::exp(-xi - m));
      T loss, grad;
      // The additions in PyTorch's order: ((1 - y) x + m) + log_sum keeps
      // float32 digits that (1 - y) x + (log_sum + m) loses for x < -8.
      if (pw.defined()) {
        const T pwi = pw[i];
        loss = (T(1) - yi) * xi + ((pwi - T(1)) * yi + T(1)) * (log_sum + m);
        const T t = pwi * yi;
        grad = (t + T(1) - yi) * Sigmoid(xi) - t;
      } else {
        loss = ((T(1) - yi) * xi + m) + log_sum;
        grad = Sigmoid(xi) - yi;
      }
      if (w.defined()) {
        loss *= w[i];
        grad *= w[i];
      }
      return LossAndGrad<T>{loss, grad};
    });
  });
}

}  // namespace lossservice::internal
