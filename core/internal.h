// Shared pieces of the loss kernels: validation helpers, dtype conversion,
// the reduction/gradient driver. Internal to loss_core.
#ifndef LOSSSERVICE_CORE_INTERNAL_H_
#define LOSSSERVICE_CORE_INTERNAL_H_

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include "absl/strings/string_view.h"
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "core/loss.h"
#include "core/tensor.h"

namespace lossservice::internal {

// ---- validation ------------------------------------------------------------

/// `field` must be FLOAT32 or FLOAT64.
absl::Status CheckFloating(const TensorView& t, absl::string_view field);
/// `field` must hold class indices: INT64 or INT32.
absl::Status CheckIndex(const TensorView& t, absl::string_view field);
/// `field` must have exactly `expected` as its shape. The message names
/// both shapes, and suggests squeezing when they differ only by 1s.
absl::Status CheckShapeEquals(const TensorView& t, absl::string_view field,
                              absl::Span<const int64_t> expected,
                              absl::string_view expected_what);
/// The target must be present and shaped exactly like the input.
absl::Status CheckTargetLikeInput(const LossRequest& r);
/// A per-class weight: floating, shape (C).
absl::Status CheckClassWeight(const std::optional<TensorView>& weight,
                              absl::string_view field, int64_t classes);
/// `field` (an option tensor) must broadcast to `shape` without growing it.
absl::Status CheckBroadcastsTo(const TensorView& t, absl::string_view field,
                               absl::Span<const int64_t> shape);
/// Shape of the loss for `reduction` given the unreduced shape.
Shape ReducedShape(Reduction reduction, absl::Span<const int64_t> unreduced);
/// The grad_output, when given, must be floating and shaped like the loss.
absl::Status CheckGradOutput(const LossRequest& r, absl::Span<const int64_t> loss_shape);

// ---- dtype conversion --------------------------------------------------------

/// A floating tensor's values as T: the data itself when the dtype is T,
/// else converted into `scratch`.
template <typename T>
const T* AsFloat(const TensorView& t, std::vector<T>& scratch) {
  if (t.dtype == (std::is_same_v<T, float> ? DType::kFloat32 : DType::kFloat64)) {
    return t.data_as<T>();
  }
  const int64_t n = t.numel();
  scratch.resize(static_cast<size_t>(n));
  if (t.dtype == DType::kFloat32) {
    const float* in = t.data_as<float>();
    for (int64_t i = 0; i < n; ++i) scratch[i] = static_cast<T>(in[i]);
  } else {
    const double* in = t.data_as<double>();
    for (int64_t i = 0; i < n; ++i) scratch[i] = static_cast<T>(in[i]);
  }
  return scratch.data();
}

/// Class indices as int64: the data itself for INT64, else widened into
/// `scratch`.
const int64_t* AsIndex(const TensorView& t, std::vector<int64_t>& scratch);

/// A tensor that broadcasts to a larger shape, read by the flat index of the
/// larger shape. Trailing-aligned and scalar options cost a modulo; other
/// broadcasts are expanded once.
template <typename T>
class BroadcastReader {
 public:
  BroadcastReader() = default;
  /// `t` must satisfy CheckBroadcastsTo(t, ..., shape).
  BroadcastReader(const TensorView& t, absl::Span<const int64_t> shape) {
    const T* src = AsFloat<T>(t, converted_);
    const int64_t n = t.numel();
    // Leading 1s of `t` do not change the layout.
    size_t skip = 0;
    while (skip < t.shape.size() && t.shape[skip] == 1) ++skip;
    const size_t rank = t.shape.size() - skip;
    bool trailing = rank <= shape.size();
    for (size_t i = 0; trailing && i < rank; ++i) {
      trailing = t.shape[skip + i] == shape[shape.size() - rank + i];
    }
    if (trailing) {
      data_ = src;
      period_ = n;
      return;
    }
    // General case: expand to the full shape once.
    const int64_t total = NumElements(shape);
    expanded_.resize(static_cast<size_t>(total));
    const size_t out_rank = shape.size();
    std::vector<int64_t> stride(out_rank, 0);
    int64_t s = 1;
    for (size_t i = 0; i < t.shape.size(); ++i) {
      const size_t src_dim = t.shape.size() - 1 - i;
      const size_t dst_dim = out_rank - 1 - i;
      stride[dst_dim] = t.shape[src_dim] == 1 ? 0 : s;
      s *= t.shape[src_dim];
    }
    std::vector<int64_t> index(out_rank, 0);
    int64_t offset = 0;
    for (int64_t i = 0; i < total; ++i) {
      expanded_[i] = src[offset];
      for (size_t d = out_rank; d-- > 0;) {
        offset += stride[d];
        if (++index[d] < shape[d]) break;
        offset -= stride[d] * shape[d];
        index[d] = 0;
      }
    }
    data_ = expanded_.data();
    period_ = total;
  }
  T operator[](int64_t i) const { return period_ == 1 ? data_[0] : data_[i % period_]; }
  bool defined() const { return data_ != nullptr; }

 private:
  const T* data_ = nullptr;
  int64_t period_ = 1;
  std::vector<T> converted_;
  std::vector<T> expanded_;
};

// ---- outputs -------------------------------------------------------------------

/// The DType of float or double.
template <typename T>
constexpr DType FloatDType() {
  return std::is_same_v<T, float> ? DType::kFloat32 : DType::kFloat64;
}

template <typename T>
struct LossOutputs {
  T* loss;  ///< ReducedShape(r.reduction, unreduced)
  T* grad;  ///< the input's shape; nullptr unless r.compute_grad
};

/// Allocates a loss's outputs. Call only once the request is validated.
template <typename T>
LossOutputs<T> AllocateLossOutputs(const LossRequest& r, absl::Span<const int64_t> unreduced,
                                   OutputAllocator& out) {
  LossOutputs<T> o;
  o.loss = static_cast<T*>(out.Allocate(OutputAllocator::Slot::kLoss, FloatDType<T>(),
                                        ReducedShape(r.reduction, unreduced)));
  o.grad = r.compute_grad ? static_cast<T*>(out.Allocate(OutputAllocator::Slot::kGrad,
                                                         FloatDType<T>(), r.input.shape))
                          : nullptr;
  return o;
}

// ---- reduction and gradient ----------------------------------------------------

/// Sums in double: float32 losses come out at least as accurate as PyTorch's
/// cascade sum.
using Acc = double;

/// Writes an element-wise loss and its gradient in one pass.
/// `f(i)` returns {loss_i, d loss_i / d input_i}. Mean over zero elements is
/// NaN, as in PyTorch.
template <typename T>
struct LossAndGrad {
  T loss;
  T grad;
};

template <typename T, typename F>
absl::Status ReduceElementwise(const LossRequest& r, OutputAllocator& out, F&& f) {
  const int64_t n = r.input.numel();
  const Shape loss_shape = ReducedShape(r.reduction, r.input.shape);
  if (absl::Status s = CheckGradOutput(r, loss_shape); !s.ok()) return s;
  std::vector<T> go_scratch;
  const T* go = r.grad_output ? AsFloat<T>(*r.grad_output, go_scratch) : nullptr;
  const auto [loss, grad] = AllocateLossOutputs<T>(r, r.input.shape, out);
  if (r.reduction == Reduction::kNone) {
    for (int64_t i = 0; i < n; ++i) {
      const LossAndGrad<T> lg = f(i);
      loss[i] = lg.loss;
      if (grad) grad[i] = go ? lg.grad * go[i] : lg.grad;
    }
    return absl::OkStatus();
  }
  // mean divides by the element count; batchmean (kl_div) by the batch size,
  // input.size(0), or not at all for a 0-d input as torch's kl_div. Zero
  // elements give 0 / 0 = NaN, as in PyTorch.
  Acc divisor = 1;
  if (r.reduction == Reduction::kMean) divisor = static_cast<Acc>(n);
  if (r.reduction == Reduction::kBatchMean && r.input.dim() > 0) {
    divisor = static_cast<Acc>(r.input.shape[0]);
  }
  const T scale = (go ? go[0] : T(1)) / static_cast<T>(divisor);
  Acc sum = 0;
  if (grad) {
    for (int64_t i = 0; i < n; ++i) {
      const LossAndGrad<T> lg = f(i);
      sum += lg.loss;
      grad[i] = lg.grad * scale;
    }
  } else {
    for (int64_t i = 0; i < n; ++i) sum += f(i).loss;
  }
  loss[0] = static_cast<T>(sum / divisor);
  return absl::OkStatus();
}

/// Calls `fn.template operator()<T>()` with T the input's float type.
template <typename F>
absl::Status DispatchFloat(DType dtype, F&& fn) {
  if (dtype == DType::kFloat32) return fn.template operator()<float>();
  return fn.template operator()<double>();
}

/// An element-wise loss of the input and a target of its shape (validated):
/// `f(x_i, y_i)`, generic over the float type, returns {loss_i, d/dx_i}.
template <typename F>
absl::Status ElementwiseWithTarget(const LossRequest& r, OutputAllocator& out, F&& f) {
  return DispatchFloat(r.input.dtype, [&]<typename T>() {
    const T* x = r.input.data_as<T>();
    std::vector<T> scratch;
    const T* y = AsFloat<T>(*r.target, scratch);
    return ReduceElementwise<T>(r, out, [&](int64_t i) { return f(x[i], y[i]); });
  });
}

// ---- the losses ------------------------------------------------------------------

// One overload per loss, chosen by the options type; each validates fully
// before it allocates an output. Defined in the family's .cc file.
// regression.cc
absl::Status Evaluate(const LossRequest& r, const MseOptions& o, OutputAllocator& out);
absl::Status Evaluate(const LossRequest& r, const L1Options& o, OutputAllocator& out);
absl::Status Evaluate(const LossRequest& r, const RmseOptions& o, OutputAllocator& out);
// classification.cc
absl::Status Evaluate(const LossRequest& r, const CrossEntropyOptions& o, OutputAllocator& out);
absl::Status Evaluate(const LossRequest& r, const NllOptions& o, OutputAllocator& out);
// binary.cc
absl::Status Evaluate(const LossRequest& r, const BceOptions& o, OutputAllocator& out);
absl::Status Evaluate(const LossRequest& r, const BceWithLogitsOptions& o, OutputAllocator& out);
// pointwise.cc
absl::Status Evaluate(const LossRequest& r, const HuberOptions& o, OutputAllocator& out);
absl::Status Evaluate(const LossRequest& r, const SmoothL1Options& o, OutputAllocator& out);
absl::Status Evaluate(const LossRequest& r, const KlDivOptions& o, OutputAllocator& out);
absl::Status Evaluate(const LossRequest& r, const PoissonNllOptions& o, OutputAllocator& out);
absl::Status Evaluate(const LossRequest& r, const GaussianNllOptions& o, OutputAllocator& out);
absl::Status Evaluate(const LossRequest& r, const SoftMarginOptions& o, OutputAllocator& out);
absl::Status Evaluate(const LossRequest& r, const HingeEmbeddingOptions& o, OutputAllocator& out);
absl::Status Evaluate(const LossRequest& r, const MarginRankingOptions& o, OutputAllocator& out);
// margin.cc
absl::Status Evaluate(const LossRequest& r, const MultiLabelSoftMarginOptions& o,
                      OutputAllocator& out);
absl::Status Evaluate(const LossRequest& r, const MultiMarginOptions& o, OutputAllocator& out);
absl::Status Evaluate(const LossRequest& r, const MultiLabelMarginOptions& o,
                      OutputAllocator& out);
absl::Status Evaluate(const LossRequest& r, const CosineEmbeddingOptions& o, OutputAllocator& out);
absl::Status Evaluate(const LossRequest& r, const TripletMarginOptions& o, OutputAllocator& out);
// ctc.cc
absl::Status Evaluate(const LossRequest& r, const CtcOptions& o, OutputAllocator& out);

}  // namespace lossservice::internal

#endif  // LOSSSERVICE_CORE_INTERNAL_H_
