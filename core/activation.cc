#include "core/activation.h"

#include <algorithm>

#include "core/internal.h"
#include "core/simd/elementwise.h"
#include "core/simd/softmax.h"

namespace lossservice {
namespace {

// softmax / log_softmax along one dimension: `outer` blocks of `size` rows of
// `inner` elements.
struct Along {
  int64_t outer = 1, size = 1, inner = 1;
};

absl::StatusOr<Along> CheckActivation(const ActivationRequest& r) {
  LOSS_RETURN_IF_ERROR(internal::CheckFloating(r.input, "input"));
  Along a;
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
      for (int64_t i = 0; i < d; ++i) a.outer *= r.input.shape[i];
      a.size = r.input.shape[d];
      for (int64_t i = d + 1; i < rank; ++i) a.inner *= r.input.shape[i];
    }
  }
  if (r.activation == Activation::kLogit && r.eps && !(*r.eps >= 0.0 && *r.eps <= 0.5)) {
    return absl::InvalidArgumentError(
        absl::StrCat("eps must be in [0, 0.5] for logit, got ", *r.eps));
  }
  return a;
}

template <typename T>
void ComputeActivation(const ActivationRequest& r, const Along& along, T* y,
                       const ComputeContext& ctx) {
  const T* x = r.input.data_as<T>();
  if (r.activation == Activation::kSoftmax || r.activation == Activation::kLogSoftmax) {
    const bool log = r.activation == Activation::kLogSoftmax;
    // Samples b * inner + s, each of `size` values `inner` apart.
    const int64_t samples = along.outer * along.inner;
    internal::ForEachChunk(
        ctx, samples, internal::UnitsPerChunk(along.size),
        [&](int64_t, int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end;) {
            const int64_t b = i / along.inner, s = i % along.inner;
            const int64_t count = along.inner == 1 ? end - i : std::min(end - i, along.inner - s);
            const int64_t offset = b * along.size * along.inner + s;
            simd::Softmax(log, count, along.size, along.inner, x + offset, y + offset);
            i += count;
          }
        });
    return;
  }
  const simd::UnaryOp op = r.activation == Activation::kSigmoid ? simd::UnaryOp::kSigmoid
                           : r.eps                              ? simd::UnaryOp::kLogitClamp
                                                                : simd::UnaryOp::kLogit;
  const double eps = r.eps.value_or(0.0);
  internal::ForEachChunk(ctx, r.input.numel(), internal::kGrain,
                         [&](int64_t, int64_t begin, int64_t end) {
                           simd::Unary(op, eps, x + begin, y + begin, end - begin);
                         });
}

}  // namespace

// torch.sigmoid (1 / (1 + exp(-x))), torch.softmax and torch.log_softmax
// ((x - max) - log(sum exp(x - max)), PyTorch's order) along `dim`, and
// torch.logit (log(p / (1 - p)), p clamped to [eps, 1 - eps] when eps is
// given).
absl::Status Activate(const ActivationRequest& r, OutputAllocator& out,
                      const ComputeContext& ctx) {
  LOSS_ASSIGN_OR_RETURN(const Along along, CheckActivation(r));
  internal::DispatchFloat(r.input.dtype, [&]<typename T>() {
    T* y = static_cast<T*>(out.Allocate(OutputAllocator::Slot::kOutput,
                                        internal::FloatDType<T>(), r.input.shape));
    // An empty input has nothing to compute, however many rows its other
    // dimensions count ([2^26, 16, 0] along its last dim: 2^30 rows of 0).
    if (r.input.numel() > 0) ComputeActivation<T>(r, along, y, ctx);
  });
  return absl::OkStatus();
}

}  // namespace lossservice
