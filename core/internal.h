// Shared pieces of the losses: validation helpers, operands read in the
// input's dtype, the chunked (and threaded) drivers, and the check / compute
// pair of every loss. Internal to loss_core.
#ifndef LOSSSERVICE_CORE_INTERNAL_H_
#define LOSSSERVICE_CORE_INTERNAL_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/loss.h"
#include "core/parallel.h"
#include "core/status_macros.h"
#include "core/tensor.h"

namespace lossservice::internal {

// ---- validation ------------------------------------------------------------

/// What a shape is compared against, rendered only when the check fails:
/// "<prefix> [d0, d1]<suffix>" (without the shape when `shape` is null).
struct Against {
  absl::string_view prefix;
  const Shape* shape = nullptr;
  absl::string_view suffix = {};
  std::string str() const;
};

/// `field` must be FLOAT32 or FLOAT64.
absl::Status CheckFloating(const TensorView& t, absl::string_view field);
/// `field` must hold class indices: INT64 or INT32.
absl::Status CheckIndex(const TensorView& t, absl::string_view field);
/// `field` must have exactly `expected` as its shape. The message names
/// both shapes, and suggests squeezing when they differ only by 1s.
absl::Status CheckShapeEquals(const TensorView& t, absl::string_view field,
                              absl::Span<const int64_t> expected, const Against& against);
/// The target must be present, floating and shaped exactly like the input.
absl::Status CheckTargetLikeInput(const LossRequest& r);
/// A per-class weight: floating, shape (C).
absl::Status CheckClassWeight(const std::optional<TensorView>& weight,
                              absl::string_view field, int64_t classes);
/// `field` (an option tensor) must be floating and broadcast to `shape`
/// without growing it.
absl::Status CheckBroadcastsTo(const TensorView& t, absl::string_view field,
                               absl::Span<const int64_t> shape);
/// Shape of the loss for `reduction` given the unreduced shape.
Shape ReducedShape(Reduction reduction, absl::Span<const int64_t> unreduced);

/// A plan for `r` whose unreduced loss has shape `unreduced`; the mean
/// divides by its element count.
LossPlan PlanFor(const LossRequest& r, absl::Span<const int64_t> unreduced);

// ---- reading tensors ---------------------------------------------------------

/// The DType of float or double.
template <typename T>
constexpr DType FloatDType() {
  return std::is_same_v<T, float> ? DType::kFloat32 : DType::kFloat64;
}

/// Element `i` of floating data of `dtype`, as T.
template <typename T>
T FloatAt(DType dtype, const void* data, int64_t i) {
  return dtype == DType::kFloat32 ? static_cast<T>(static_cast<const float*>(data)[i])
                                  : static_cast<T>(static_cast<const double*>(data)[i]);
}
/// Element `i` of a floating tensor, as T.
template <typename T>
T FloatAt(const TensorView& t, int64_t i) {
  return FloatAt<T>(t.dtype, t.data, i);
}

/// Element `i` of a class-index tensor (INT64 or INT32).
inline int64_t IndexAt(const TensorView& t, int64_t i) {
  return t.dtype == DType::kInt64 ? t.data_as<int64_t>()[i]
                                  : static_cast<int64_t>(t.data_as<int32_t>()[i]);
}

/// A floating tensor read as T at the flat positions of the input (a shape
/// it broadcasts to), which keeps the tensor's data pointer (not the view).
/// Get() returns the tensor's own memory when its dtype is
/// T and it is laid out like the input, else fills the caller's buffer:
/// converted, repeated (a trailing-aligned or scalar broadcast), grouped
/// (gaussian_nll's var, one value per `group` elements) or gathered through
/// strides (any other broadcast). Allocates nothing.
template <typename T>
class Operand {
 public:
  Operand() = default;
  /// `t` must broadcast to `shape` (CheckBroadcastsTo).
  Operand(const TensorView& t, absl::Span<const int64_t> shape)
      : present_(true), data_(t.data), dtype_(t.dtype) {
    const int64_t n = t.numel();
    const int64_t total = NumElements(shape);
    size_t skip = 0;  // leading 1s do not change the layout
    while (skip < t.shape.size() && t.shape[skip] == 1) ++skip;
    const size_t rank = t.shape.size() - skip;
    bool trailing = rank <= shape.size();
    for (size_t i = 0; trailing && i < rank; ++i) {
      trailing = t.shape[skip + i] == shape[shape.size() - rank + i];
    }
    if (trailing) {
      kind_ = n == total ? (t.dtype == FloatDType<T>() ? Kind::kDirect : Kind::kConvert)
                         : Kind::kPeriodic;
      period_ = std::max<int64_t>(n, 1);
      return;
    }
    kind_ = Kind::kStrided;
    out_shape_.assign(shape.begin(), shape.end());
    stride_.assign(shape.size(), 0);
    int64_t s = 1;
    for (size_t i = 0; i < t.shape.size(); ++i) {
      const size_t src = t.shape.size() - 1 - i, dst = shape.size() - 1 - i;
      stride_[dst] = t.shape[src] == 1 ? 0 : s;
      s *= t.shape[src];
    }
  }
  /// Element i of the input reads element i / group of `t`.
  static Operand Grouped(const TensorView& t, int64_t group) {
    Operand o;
    o.present_ = true;
    o.data_ = t.data;
    o.dtype_ = t.dtype;
    o.kind_ = group == 1 ? (t.dtype == FloatDType<T>() ? Kind::kDirect : Kind::kConvert)
                         : Kind::kGrouped;
    o.period_ = group;
    return o;
  }

  bool present() const { return present_; }
  /// True when Get() never writes `buf`.
  bool direct() const { return kind_ == Kind::kDirect; }

  /// The values at flat positions [begin, begin + n); nullptr when absent.
  const T* Get(int64_t begin, int64_t n, T* buf) const {
    if (!present_) return nullptr;
    const auto at = [&](int64_t i) { return FloatAt<T>(dtype_, data_, i); };
    switch (kind_) {
      case Kind::kDirect:
        return static_cast<const T*>(data_) + begin;
      case Kind::kConvert:
        for (int64_t i = 0; i < n; ++i) buf[i] = at(begin + i);
        break;
      case Kind::kPeriodic:
        for (int64_t i = 0, k = begin % period_; i < n; ++i) {
          buf[i] = at(k);
          if (++k == period_) k = 0;
        }
        break;
      case Kind::kGrouped:
        for (int64_t i = 0; i < n; ++i) buf[i] = at((begin + i) / period_);
        break;
      case Kind::kStrided: {
        const size_t rank = out_shape_.size();
        absl::InlinedVector<int64_t, 6> index(rank, 0);
        int64_t offset = 0;
        for (size_t d = rank, rest = static_cast<size_t>(begin); d-- > 0;) {
          index[d] = static_cast<int64_t>(rest) % out_shape_[d];
          rest /= static_cast<size_t>(out_shape_[d]);
          offset += index[d] * stride_[d];
        }
        for (int64_t i = 0; i < n; ++i) {
          buf[i] = at(offset);
          for (size_t d = rank; d-- > 0;) {
            offset += stride_[d];
            if (++index[d] < out_shape_[d]) break;
            offset -= stride_[d] * out_shape_[d];
            index[d] = 0;
          }
        }
        break;
      }
    }
    return buf;
  }

 private:
  enum class Kind : uint8_t { kDirect, kConvert, kPeriodic, kGrouped, kStrided };
  bool present_ = false;
  const void* data_ = nullptr;
  DType dtype_ = DType::kFloat32;
  Kind kind_ = Kind::kDirect;
  int64_t period_ = 1;
  Shape out_shape_, stride_;
};

/// A floating tensor of the input's layout as T: a pointer to its data when
/// its dtype is T, else converted into `scratch` (which holds 64 values
/// without allocating).
template <typename T>
using Scratch = absl::InlinedVector<T, 64>;
template <typename T>
const T* AsFloat(const TensorView& t, Scratch<T>& scratch) {
  if (t.dtype == FloatDType<T>()) return t.data_as<T>();
  scratch.resize(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) scratch[i] = FloatAt<T>(t, i);
  return scratch.data();
}

// ---- chunks and threads ----------------------------------------------------------

/// Elements per chunk: inputs up to this size run on the calling thread in
/// one piece; larger ones are cut into chunks of this size (whole rows for
/// row-wise losses), which is what makes results independent of the number
/// of threads.
inline constexpr int64_t kGrain = int64_t{1} << 15;
/// Elements per call of a vector kernel within a chunk (the size of the
/// stack buffers that converted or broadcast operands are gathered into).
inline constexpr int64_t kBlock = 1024;

/// Units (elements, rows, samples) per chunk when a unit holds `unit_size`
/// elements: about kGrain elements, at least one unit.
inline int64_t UnitsPerChunk(int64_t unit_size) {
  return std::max<int64_t>(1, kGrain / std::max<int64_t>(unit_size, 1));
}

/// Calls fn(chunk, begin, end) for the chunks [k * per_chunk, ...) of
/// [0, count). One chunk runs on the calling thread and never looks at
/// `ctx`; more run across ctx.pool (when it has more than one thread), each
/// only if !ctx.ShouldStop() when it starts.
template <class F>
void ForEachChunk(const ComputeContext& ctx, int64_t count, int64_t per_chunk, F&& fn) {
  const int64_t chunks = count <= per_chunk ? 1 : (count + per_chunk - 1) / per_chunk;
  if (chunks == 1) {
    fn(int64_t{0}, int64_t{0}, count);
    return;
  }
  const auto run = [&](int64_t k) {
    if (ctx.ShouldStop()) return;
    fn(k, k * per_chunk, std::min(count, (k + 1) * per_chunk));
  };
  if (ctx.pool != nullptr && ctx.pool->threads() > 1) {
    ctx.pool->ParallelFor(chunks, run);
  } else {
    for (int64_t k = 0; k < chunks; ++k) run(k);
  }
}

/// ForEachChunk where fn(begin, end) returns the chunk's partial result P
/// (default-constructible, with +=); returns the partials combined in chunk
/// order, the same for any number of threads.
template <class P, class F>
P SumChunks(const ComputeContext& ctx, int64_t count, int64_t per_chunk, F&& fn) {
  if (count <= per_chunk) return fn(int64_t{0}, count);
  const int64_t chunks = (count + per_chunk - 1) / per_chunk;
  absl::InlinedVector<P, 16> partials(static_cast<size_t>(chunks));
  ForEachChunk(ctx, count, per_chunk, [&](int64_t k, int64_t begin, int64_t end) {
    partials[static_cast<size_t>(k)] = fn(begin, end);
  });
  P total{};
  for (const P& p : partials) total += p;
  return total;
}

/// The chunks of a loss: under reduction none (`only_writes`) each chunk
/// just writes its elements; otherwise chunk(begin, end) returns its partial
/// sum, and the partials come back combined in chunk order.
template <class P, class F>
P RunChunks(const ComputeContext& ctx, int64_t count, int64_t per_chunk, bool only_writes,
            F&& chunk) {
  if (only_writes) {
    ForEachChunk(ctx, count, per_chunk, [&](int64_t, int64_t b, int64_t e) { chunk(b, e); });
    return P{};
  }
  return SumChunks<P>(ctx, count, per_chunk, chunk);
}

// ---- reductions --------------------------------------------------------------------

/// The upstream gradient: per loss element (reduction none with a
/// grad_output), or one value for all (grad_output[0] or 1, divided by the
/// plan's divisor under mean and batchmean).
template <typename T>
struct Upstream {
  Operand<T> per_element;
  double uniform = 1;
};
template <typename T>
Upstream<T> UpstreamOf(const LossRequest& r, const LossPlan& plan) {
  Upstream<T> u;
  if (r.reduction == Reduction::kNone) {
    if (r.grad_output) u.per_element = Operand<T>(*r.grad_output, r.grad_output->shape);
    return u;
  }
  if (r.grad_output) u.uniform = FloatAt<double>(*r.grad_output, 0);
  if (r.reduction != Reduction::kSum) u.uniform /= plan.divisor;
  return u;
}

/// Writes a reduced loss from its sum: sum (kSum) or sum / divisor.
template <typename T>
void WriteReduced(const LossRequest& r, const LossPlan& plan, T* loss, double sum) {
  loss[0] = static_cast<T>(r.reduction == Reduction::kSum ? sum : sum / plan.divisor);
}

/// Calls `fn.template operator()<T>()` with T the input's float type.
template <class F>
decltype(auto) DispatchFloat(DType dtype, F&& fn) {
  if (dtype == DType::kFloat32) return fn.template operator()<float>();
  return fn.template operator()<double>();
}

// ---- the losses ----------------------------------------------------------------------

// One Check / Compute pair per loss, chosen by the options type; defined in
// the family's .cc file. Check validates everything (PlanLoss then checks the
// grad_output against plan.loss_shape); Compute cannot fail.
#define LOSSSERVICE_DECLARE_LOSS_(name, Camel, number)                                   \
  absl::StatusOr<LossPlan> Check(const LossRequest& r, const Camel##Options& o);         \
  void Compute(const LossRequest& r, const Camel##Options& o, const LossPlan& plan,      \
               void* loss, void* grad, const ComputeContext& ctx);
LOSSSERVICE_FOR_EACH_LOSS(LOSSSERVICE_DECLARE_LOSS_)
#undef LOSSSERVICE_DECLARE_LOSS_

}  // namespace lossservice::internal

#endif  // LOSSSERVICE_CORE_INTERNAL_H_
