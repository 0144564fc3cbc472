// Multi-class losses: cross_entropy and nll.
//
// Layout: input (C), (N, C) or (N, C, d1, ...) is seen as N blocks of C rows
// of S = d1 * ... elements; the class values of one sample are S apart. The
// samples (the target's and the unreduced loss's elements) are numbered
// b * S + s.
#include <cmath>
#include <cstring>
#include <limits>

#include "core/internal.h"
#include "core/simd/class_index.h"
#include "core/simd/softmax.h"

namespace lossservice::internal {
namespace {

struct ClassLayout {
  int64_t n = 1;        // batch
  int64_t classes = 0;  // C
  int64_t spatial = 1;  // S = d1 * d2 * ...
  Shape sample_shape;   // (), (N) or (N, d1, ...): the target's and the unreduced loss's
  int64_t samples() const { return n * spatial; }
};

// The layout of an input of rank >= 1.
ClassLayout LayoutOf(const TensorView& input) {
  ClassLayout l;
  if (input.dim() == 1) {
    l.classes = input.shape[0];
    return l;
  }
  l.n = input.shape[0];
  l.classes = input.shape[1];
  l.sample_shape.push_back(l.n);
  for (int64_t i = 2; i < input.dim(); ++i) {
    l.spatial *= input.shape[i];
    l.sample_shape.push_back(input.shape[i]);
  }
  return l;
}

absl::Status CheckClassInput(const TensorView& input) {
  if (input.dim() > 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      "input must have shape (C), (N, C) or (N, C, d1, ...), got []");
}

// Checks class-index targets (shape, range) and sums the weights of the ones
// not ignored, the denominator of the weighted mean.
absl::StatusOr<double> CheckIndexTargets(const LossRequest& r, const ClassLayout& l,
                                         const std::optional<TensorView>& weight,
                                         absl::string_view weight_field, int64_t ignore_index) {
  if (!r.target) return absl::InvalidArgumentError("target is required");
  LOSS_RETURN_IF_ERROR(CheckIndex(*r.target, "target"));
  LOSS_RETURN_IF_ERROR(
      CheckShapeEquals(*r.target, "target", l.sample_shape, {"input", &r.input.shape}));
  LOSS_RETURN_IF_ERROR(CheckClassWeight(weight, weight_field, l.classes));
  const TensorView& target = *r.target;
  // The first target that is neither ignore_index nor in [0, C) (or count),
  // and how many of the others there are (vector lanes); with weights, the
  // total is their weights summed in order instead.
  const int64_t count = l.samples();
  const simd::IndexScan scan =
      target.dtype == DType::kInt64
          ? simd::ScanClassIndices(target.data_as<int64_t>(), count, l.classes, ignore_index)
          : simd::ScanClassIndices(target.data_as<int32_t>(), count, l.classes, ignore_index);
  const int64_t bad = scan.first_bad;
  double total = static_cast<double>(scan.kept);
  if (weight && bad == count) {
    const auto weigh = [&]<typename I, typename W>(const I* t, const W* w) {
      total = 0;
      for (int64_t i = 0; i < count; ++i) {
        if (t[i] != ignore_index) total += static_cast<double>(w[t[i]]);
      }
    };
    const auto with_weight = [&]<typename I>(const I* t) {
      if (weight->dtype == DType::kFloat32) {
        weigh(t, weight->data_as<float>());
      } else {
        weigh(t, weight->data_as<double>());
      }
    };
    if (target.dtype == DType::kInt64) {
      with_weight(target.data_as<int64_t>());
    } else {
      with_weight(target.data_as<int32_t>());
    }
  }
  if (bad < count) {
    const int64_t t = IndexAt(target, bad);
    return absl::InvalidArgumentError(absl::StrCat(
        "target: class index ", t, " at flat position ", bad, " is out of range for ", l.classes,
        " classes (valid: 0 to ", l.classes - 1, ", or ignore_index ", ignore_index, ")"));
  }
  return total;
}

// Runs fn(begin, count, b, s) over the samples [begin, end) cut into pieces
// of at most kBlock samples that the kernels take in one call: consecutive
// rows when S == 1, else samples of one block b (from spatial position s).
template <class F>
void ForEachPiece(const ClassLayout& l, int64_t begin, int64_t end, F&& fn) {
  for (int64_t i = begin; i < end;) {
    const int64_t b = i / l.spatial, s = i % l.spatial;
    const int64_t count = std::min({end - i, l.spatial == 1 ? kBlock : l.spatial - s, kBlock});
    fn(i, count, b, s);
    i += count;
  }
}

// The class indices of samples [begin, begin + count) as int64.
inline const int64_t* Targets(const TensorView& t, int64_t begin, int64_t count, int64_t* buf) {
  if (t.dtype == DType::kInt64) return t.data_as<int64_t>() + begin;
  for (int64_t i = 0; i < count; ++i) buf[i] = IndexAt(t, begin + i);
  return buf;
}

// Where sample (b, s)'s class 0 is in the input.
inline int64_t SampleOffset(const ClassLayout& l, int64_t b, int64_t s) {
  return b * l.classes * l.spatial + s;
}

template <typename T>
void CrossEntropyIndex(const LossRequest& r, const CrossEntropyOptions& o, const LossPlan& plan,
                       T* loss, T* grad, const ComputeContext& ctx) {
  const ClassLayout l = LayoutOf(r.input);
  const T* x = r.input.data_as<T>();
  Scratch<T> w_scratch;
  const T* w = o.weight ? AsFloat<T>(*o.weight, w_scratch) : nullptr;
  double w_all = 0;  // sum of all class weights, the smoothing term's gradient
  for (int64_t c = 0; c < l.classes; ++c) w_all += w ? static_cast<double>(w[c]) : 1.0;
  const bool none = r.reduction == Reduction::kNone;
  const Upstream<T> up = UpstreamOf<T>(r, plan);
  const auto chunk = [&](int64_t begin, int64_t end) {
    simd::ClassSums sums;
    int64_t tbuf[kBlock];
    T gobuf[kBlock];
    ForEachPiece(l, begin, end, [&](int64_t i, int64_t count, int64_t b, int64_t s) {
      simd::ClassIndexArgs<T> a;
      a.count = count;
      a.classes = l.classes;
      a.stride = l.spatial;
      a.x = x + SampleOffset(l, b, s);
      a.grad = grad ? grad + SampleOffset(l, b, s) : nullptr;
      a.target = Targets(*r.target, i, count, tbuf);
      a.ignore_index = o.ignore_index;
      a.weight = w;
      a.weight_total = w_all;
      a.label_smoothing = o.label_smoothing;
      a.go = up.per_element.Get(i, count, gobuf);
      a.grad_scale = up.uniform;
      a.loss = none ? loss + i : nullptr;
      sums += simd::CrossEntropyIndex(a);
    });
    return sums;
  };
  const int64_t per_chunk = UnitsPerChunk(l.classes);
  const simd::ClassSums sums =
      RunChunks<simd::ClassSums>(ctx, l.samples(), per_chunk, none, chunk);
  if (none) return;
  // torch: (1 - ls) * nll.mean + ls / C * smooth.sum / total_weight; the
  // smoothing term is divided by the same total weight as the NLL term,
  // also without a weight (the count of targets not ignored).
  const T ls = static_cast<T>(o.label_smoothing);
  const T smooth_scale = ls / static_cast<T>(l.classes);
  WriteReduced(r, plan, loss,
               static_cast<double>(T(1) - ls) * sums.nll +
                   static_cast<double>(smooth_scale) * sums.smooth);
}

template <typename T>
void CrossEntropyProb(const LossRequest& r, const CrossEntropyOptions& o, const LossPlan& plan,
                      T* loss, T* grad, const ComputeContext& ctx) {
  const ClassLayout l = LayoutOf(r.input);
  const T* x = r.input.data_as<T>();
  Scratch<T> w_scratch;
  const T* w = o.weight ? AsFloat<T>(*o.weight, w_scratch) : nullptr;
  // Targets of another dtype are converted per chunk.
  const bool convert = r.target->dtype != FloatDType<T>();
  const bool none = r.reduction == Reduction::kNone;
  const Upstream<T> up = UpstreamOf<T>(r, plan);
  const auto chunk = [&](int64_t begin, int64_t end) {
    double sum = 0;
    T gobuf[kBlock];
    Scratch<T> converted;
    ForEachPiece(l, begin, end, [&](int64_t i, int64_t count, int64_t b, int64_t s) {
      simd::ClassProbArgs<T> a;
      a.count = count;
      a.classes = l.classes;
      a.stride = l.spatial;
      const int64_t offset = SampleOffset(l, b, s);
      a.x = x + offset;
      a.grad = grad ? grad + offset : nullptr;
      if (convert) {
        // The piece's class values: C rows of `count` (strided) or C * count.
        const int64_t span = l.spatial == 1 ? count * l.classes : (l.classes - 1) * l.spatial + count;
        converted.resize(static_cast<size_t>(span));
        for (int64_t k = 0; k < span; ++k) converted[k] = FloatAt<T>(*r.target, offset + k);
        a.target = converted.data();
      } else {
        a.target = r.target->data_as<T>() + offset;
      }
      a.weight = w;
      a.label_smoothing = o.label_smoothing;
      a.go = up.per_element.Get(i, count, gobuf);
      a.grad_scale = up.uniform;
      a.loss = none ? loss + i : nullptr;
      sum += simd::CrossEntropyProb(a);
    });
    return sum;
  };
  const int64_t per_chunk = UnitsPerChunk(l.classes);
  const double sum = RunChunks<double>(ctx, l.samples(), per_chunk, none, chunk);
  if (!none) WriteReduced(r, plan, loss, sum);
}

}  // namespace

// torch.nn.CrossEntropyLoss (PyTorch 1.13), log_softmax fused into the NLL.
//  * Class indices: the mean divides by the summed weights of the targets
//    not ignored; every target ignored gives NaN under mean (0 / 0) and a zero
//    gradient. With label_smoothing, the smoothing term
//    -sum_c w_c log p_c is divided by that same total weight under mean, as
//    PyTorch does (so an unweighted mean divides by the count of targets not
//    ignored, not by N).
//  * Class probabilities (a float target of the input's shape): the mean
//    divides by the number of samples N * d1 * ..., even with a weight (unlike
//    the class-index rule); smoothing mixes the target with 1/C.
//  * A float target shaped like the class indices would be (e.g. (N) for
//    (N, C)) is refused with a message saying that indices are INT64 or INT32.
absl::StatusOr<LossPlan> Check(const LossRequest& r, const CrossEntropyOptions& o) {
  if (!(o.label_smoothing >= 0.0 && o.label_smoothing <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cross_entropy.label_smoothing must be in [0, 1], got ", o.label_smoothing));
  }
  LOSS_RETURN_IF_ERROR(CheckClassInput(r.input));
  const ClassLayout l = LayoutOf(r.input);
  if (r.target && IsFloating(r.target->dtype)) {
    if (r.target->shape != r.input.shape && r.target->shape == l.sample_shape) {
      return absl::InvalidArgumentError(absl::StrCat(
          "target: class indices must be INT64 or INT32, got ", DTypeName(r.target->dtype), " ",
          ShapeString(r.target->shape), " for input ", ShapeString(r.input.shape),
          " (a floating target holds class probabilities and has the input's shape)"));
    }
    if (o.ignore_index >= 0) {  // PyTorch's own check
      return absl::InvalidArgumentError(absl::StrCat(
          "cross_entropy.ignore_index (", o.ignore_index,
          ") is not supported with class-probability (floating point) targets"));
    }
    LOSS_RETURN_IF_ERROR(CheckShapeEquals(*r.target, "target", r.input.shape,
                                          {"class probabilities for input", &r.input.shape}));
    LOSS_RETURN_IF_ERROR(CheckClassWeight(o.weight, "cross_entropy.weight", l.classes));
    return PlanFor(r, l.sample_shape);
  }
  LOSS_ASSIGN_OR_RETURN(const double total,
                        CheckIndexTargets(r, l, o.weight, "cross_entropy.weight", o.ignore_index));
  LossPlan plan = PlanFor(r, l.sample_shape);
  plan.divisor = total;
  return plan;
}

void Compute(const LossRequest& r, const CrossEntropyOptions& o, const LossPlan& plan,
             void* loss, void* grad, const ComputeContext& ctx) {
  DispatchFloat(plan.dtype, [&]<typename T>() {
    if (IsFloating(r.target->dtype)) {
      CrossEntropyProb<T>(r, o, plan, static_cast<T*>(loss), static_cast<T*>(grad), ctx);
    } else {
      CrossEntropyIndex<T>(r, o, plan, static_cast<T*>(loss), static_cast<T*>(grad), ctx);
    }
  });
}

// torch.nn.NLLLoss: -w[t] * input[t] per sample. The mean divides by the
// summed weights of the targets not ignored (NaN when every target is
// ignored). The gradient is -w[t] times the upstream gradient at the target
// class, 0 elsewhere.
absl::StatusOr<LossPlan> Check(const LossRequest& r, const NllOptions& o) {
  LOSS_RETURN_IF_ERROR(CheckClassInput(r.input));
  const ClassLayout l = LayoutOf(r.input);
  LOSS_ASSIGN_OR_RETURN(const double total,
                        CheckIndexTargets(r, l, o.weight, "nll.weight", o.ignore_index));
  LossPlan plan = PlanFor(r, l.sample_shape);
  plan.divisor = total;
  return plan;
}

namespace {

// nll over samples [i0, i0 + count) of one piece (see ForEachPiece), per
// index type I: the per-sample loss (none) or its sum, and -w[t] g at the
// target class of the gradient (which the caller zeroed).
template <typename T, typename I>
double NllPiece(const ClassLayout& l, const T* x, const I* target, const T* w,
                int64_t ignore_index, int64_t offset, int64_t count, T* loss, T* grad,
                const T* go, T uniform) {
  const int64_t C = l.classes, S = l.spatial;
  double sum = 0;
  for (int64_t k = 0; k < count; ++k) {
    const int64_t t = target[k];
    if (t == ignore_index) {
      if (loss) loss[k] = 0;
      continue;
    }
    const T wt = w ? w[t] : T(1);
    const int64_t at = S == 1 ? offset + k * C + t : offset + t * S + k;
    const T li = -wt * x[at];
    if (loss) {
      loss[k] = li;
    } else {
      sum += li;
    }
    if (grad) grad[at] = -wt * (go ? go[k] : uniform);
  }
  return sum;
}

}  // namespace

void Compute(const LossRequest& r, const NllOptions& o, const LossPlan& plan, void* loss_out,
             void* grad_out, const ComputeContext& ctx) {
  DispatchFloat(plan.dtype, [&]<typename T>() {
    const ClassLayout l = LayoutOf(r.input);
    const int64_t C = l.classes, S = l.spatial;
    const T* x = r.input.data_as<T>();
    T* loss = static_cast<T*>(loss_out);
    T* grad = static_cast<T*>(grad_out);
    const bool none = r.reduction == Reduction::kNone;
    const Upstream<T> up = UpstreamOf<T>(r, plan);
    Scratch<T> w_scratch;
    const T* w = o.weight ? AsFloat<T>(*o.weight, w_scratch) : nullptr;
    const T uniform = static_cast<T>(up.uniform);
    const auto chunk = [&](int64_t begin, int64_t end) {
      double sum = 0;
      T gobuf[kBlock];
      ForEachPiece(l, begin, end, [&](int64_t i0, int64_t count, int64_t b, int64_t s0) {
        const int64_t offset = SampleOffset(l, b, s0);
        if (grad && S == 1) {
          std::memset(grad + offset, 0, static_cast<size_t>(count * C) * sizeof(T));
        } else if (grad) {
          for (int64_t c = 0; c < C; ++c) {
            std::memset(grad + offset + c * S, 0, static_cast<size_t>(count) * sizeof(T));
          }
        }
        if (!grad && !none) {
          // The forward sum alone: a gather in vector lanes.
          int64_t tbuf[kBlock];
          sum += simd::NllSum(simd::NllArgs<T>{count, C, S, x + offset,
                                               Targets(*r.target, i0, count, tbuf),
                                               o.ignore_index, w});
          return;
        }
        const T* go = up.per_element.Get(i0, count, gobuf);
        T* piece_loss = none ? loss + i0 : nullptr;
        sum += r.target->dtype == DType::kInt64
                   ? NllPiece<T>(l, x, r.target->data_as<int64_t>() + i0, w, o.ignore_index,
                                 offset, count, piece_loss, grad, go, uniform)
                   : NllPiece<T>(l, x, r.target->data_as<int32_t>() + i0, w, o.ignore_index,
                                 offset, count, piece_loss, grad, go, uniform);
      });
      return sum;
    };
    // A sample costs one gather forward, C values of gradient.
    const int64_t per_chunk = grad ? UnitsPerChunk(C) : kGrain;
    const double sum = RunChunks<double>(ctx, l.samples(), per_chunk, none, chunk);
    if (!none) WriteReduced(r, plan, loss, sum);
  });
}

}  // namespace lossservice::internal
