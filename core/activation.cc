#include "core/activation.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/internal.h"

namespace lossservice {
namespace {

// softmax / log_softmax along one dimension: `outer` blocks of `size` rows of
// `inner` elements.
template <typename T, bool kLog>
void SoftmaxAlong(const T* x, T* y, int64_t outer, int64_t size, int64_t inner) {
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const T* row = x + o * size * inner + i;
      T* out = y + o * size * inner + i;
      T m = -std::numeric_limits<T>::infinity();
      for (int64_t k = 0; k < size; ++k) m = std::max(m, row[k * inner]);
      internal::Acc sum = 0;
      for (int64_t k = 0; k < size; ++k) sum += std::exp(row[k * inner] - m);
      if constexpr (kLog) {
        // (x - max) - log_sum, in PyTorch's order: exact for large logits.
        const T log_sum = static_cast<T>(std::log(sum));
        for (int64_t k = 0; k < size; ++k) out[k * inner] = (row[k * inner] - m) - log_sum;
      } else {
        const T inv = static_cast<T>(1.0 / sum);
        for (int64_t k = 0; k < size; ++k) out[k * inner] = std::exp(row[k * inner] - m) * inv;
      }
    }
  }
}

}  // namespace

absl::Status Activate(const ActivationRequest& r, OutputAllocator& out,
                      const ComputeContext& /*ctx*/) {
  if (absl::Status s = internal::CheckFloating(r.input, "input"); !s.ok()) return s;
  int64_t outer = 1, size = 1, inner = 1;
  if (r.activation == Activation::kSoftmax || r.activation == Activation::kLogSoftmax) {
    // A 0-d tensor has one valid dim (0 or -1), as in torch.
    const int64_t rank = std::max<int64_t>(r.input.dim(), 1);
    if (r.dim < -rank || r.dim >= rank) {
      return absl::InvalidArgumentError(absl::StrCat("dim ", r.dim, " is out of range for input ",
                                                     ShapeString(r.input.shape), " (valid: ",
                                                     -rank, " to ", rank - 1, ")"));
    }
    if (r.input.dim() > 0) {
      const int64_t d = r.dim < 0 ? r.dim + rank : r.dim;
      for (int64_t i = 0; i < d; ++i) outer *= r.input.shape[i];
      size = r.input.shape[d];
      for (int64_t i = d + 1; i < rank; ++i) inner *= r.input.shape[i];
    }
  }
  if (r.activation == Activation::kLogit && r.eps && !(*r.eps >= 0.0 && *r.eps <= 0.5)) {
    return absl::InvalidArgumentError(
        absl::StrCat("eps must be in [0, 0.5] for logit, got ", *r.eps));
  }
  return internal::DispatchFloat(r.input.dtype, [&]<typename T>() {
    const T* x = r.input.data_as<T>();
    T* y = static_cast<T*>(out.Allocate(OutputAllocator::Slot::kOutput, internal::FloatDType<T>(), r.input.shape));
    const int64_t n = r.input.numel();
    switch (r.activation) {
      case Activation::kSigmoid:
        for (int64_t i = 0; i < n; ++i) y[i] = T(1) / (T(1) + std::exp(-x[i]));
        break;
      case Activation::kSoftmax:
        SoftmaxAlong<T, false>(x, y, outer, size, inner);
        break;
      case Activation::kLogSoftmax:
        SoftmaxAlong<T, true>(x, y, outer, size, inner);
        break;
      case Activation::kLogit:
        // torch.logit: log(p / (1 - p)), p clamped to [eps, 1 - eps] when eps
        // is given.
        if (r.eps) {
          const T lo = static_cast<T>(*r.eps), hi = T(1) - lo;
          for (int64_t i = 0; i < n; ++i) {
            const T p = x[i] < lo ? lo : (x[i] > hi ? hi : x[i]);
            y[i] = std::log(p / (T(1) - p));
          }
        } else {
          for (int64_t i = 0; i < n; ++i) y[i] = std::log(x[i] / (T(1) - x[i]));
        }
        break;
    }
    return absl::OkStatus();
  });
}

}  // namespace lossservice
