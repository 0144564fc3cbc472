// Multi-class losses: cross_entropy and nll.
//
// Layout: input (C), (N, C) or (N, C, d1, ...) is seen as N blocks of C rows
// of S = d1 * ... elements; the class values of one sample are S apart.
#include <cmath>
#include <limits>

#include "core/internal.h"

namespace lossservice::internal {
namespace {

struct ClassLayout {
  int64_t n = 1;        // batch
  int64_t classes = 0;  // C
  int64_t spatial = 1;  // S = d1 * d2 * ...
  Shape sample_shape;   // (), (N) or (N, d1, ...): the target's and the unreduced loss's
  int64_t samples() const { return n * spatial; }
};

absl::StatusOr<ClassLayout> CheckClassInput(const TensorView& input) {
  ClassLayout l;
  if (input.dim() == 0) {
    return absl::InvalidArgumentError(
        "input must have shape (C), (N, C) or (N, C, d1, ...), got []");
  }
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

// Checks class-index targets and sums the weights of the ones not ignored,
// the denominator of the weighted mean.
absl::StatusOr<Acc> CheckTargetsAndWeigh(const int64_t* target, int64_t count, int64_t classes,
                                         int64_t ignore_index, const double* weight) {
  Acc total = 0;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t t = target[i];
    if (t == ignore_index) continue;
    if (t < 0 || t >= classes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "target: class index ", t, " at flat position ", i, " is out of range for ", classes,
          " classes (valid: 0 to ", classes - 1, ", or ignore_index ", ignore_index, ")"));
    }
    total += weight ? weight[t] : 1.0;
  }
  return total;
}

// Everything the class-index kernels share once validated.
struct IndexTargets {
  ClassLayout layout;
  std::vector<int64_t> scratch;
  const int64_t* target = nullptr;
  std::vector<double> weight64;  // per-class weight in double, empty when none
  Acc total_weight = 0;
};

absl::StatusOr<IndexTargets> CheckIndexTargets(const LossRequest& r,
                                               const std::optional<TensorView>& weight,
                                               absl::string_view weight_field,
                                               int64_t ignore_index) {
  IndexTargets it;
  absl::StatusOr<ClassLayout> layout = CheckClassInput(r.input);
  if (!layout.ok()) return layout.status();
  it.layout = *std::move(layout);
  if (!r.target) return absl::InvalidArgumentError("target is required");
  if (absl::Status s = CheckIndex(*r.target, "target"); !s.ok()) return s;
  if (absl::Status s = CheckShapeEquals(*r.target, "target", it.layout.sample_shape,
                                        absl::StrCat("input ", ShapeString(r.input.shape)));
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckClassWeight(weight, weight_field, it.layout.classes); !s.ok()) return s;
  if (weight) {
    std::vector<double> tmp;
    const double* w = AsFloat<double>(*weight, tmp);
    it.weight64.assign(w, w + it.layout.classes);
  }
  it.target = AsIndex(*r.target, it.scratch);
  absl::StatusOr<Acc> total =
      CheckTargetsAndWeigh(it.target, it.layout.samples(), it.layout.classes, ignore_index,
                           it.weight64.empty() ? nullptr : it.weight64.data());
  if (!total.ok()) return total.status();
  it.total_weight = *total;
  return it;
}

// Upstream gradient per sample: go[i] (none), go (sum) or go / denominator
// (mean).
template <typename T>
class SampleScale {
 public:
  SampleScale(const LossRequest& r, Acc mean_denominator, std::vector<T>& scratch) {
    const T* go = r.grad_output ? AsFloat<T>(*r.grad_output, scratch) : nullptr;
    if (r.reduction == Reduction::kNone) {
      per_sample_ = go;
    } else {
      uniform_ = go ? go[0] : T(1);
      if (r.reduction == Reduction::kMean) uniform_ /= static_cast<T>(mean_denominator);
    }
  }
  T operator()(int64_t i) const { return per_sample_ ? per_sample_[i] : uniform_; }

 private:
  const T* per_sample_ = nullptr;
  T uniform_ = 1;
};

// Writes the reduced loss from the per-sample sum: sum, or sum / denominator.
template <typename T>
void WriteReduced(const LossRequest& r, T* loss, Acc sum, Acc mean_denominator) {
  if (r.reduction == Reduction::kSum) loss[0] = static_cast<T>(sum);
  if (r.reduction == Reduction::kMean) loss[0] = static_cast<T>(sum / mean_denominator);
}

// log_softmax of one sample's classes is (x - max) - log_sum, computed in
// that order as PyTorch does (x - (max + log_sum) loses float32 digits for
// large logits).
template <typename T>
struct LogSoftmaxRow {
  LogSoftmaxRow(const T* x, int64_t classes, int64_t stride) {
    for (int64_t c = 0; c < classes; ++c) max = std::max(max, x[c * stride]);
    Acc sum = 0;
    for (int64_t c = 0; c < classes; ++c) sum += std::exp(x[c * stride] - max);
    log_sum = static_cast<T>(std::log(sum));
  }
  T operator()(T x) const { return (x - max) - log_sum; }
  T max = -std::numeric_limits<T>::infinity();
  T log_sum = 0;
};

template <typename T>
absl::Status CrossEntropyIndex(const LossRequest& r, const CrossEntropyOptions& o,
                               const IndexTargets& it, OutputAllocator& out) {
  const ClassLayout& l = it.layout;
  const int64_t C = l.classes, S = l.spatial;
  const T* x = r.input.data_as<T>();
  const double* w = it.weight64.empty() ? nullptr : it.weight64.data();
  Acc w_all = 0;  // sum of all class weights, the smoothing term's gradient
  for (int64_t c = 0; c < C; ++c) w_all += w ? w[c] : 1.0;
  const T ls = static_cast<T>(o.label_smoothing);
  const T smooth_scale = C > 0 ? ls / static_cast<T>(C) : T(0);
  const bool none = r.reduction == Reduction::kNone;
  const auto [loss, grad] = AllocateLossOutputs<T>(r, l.sample_shape, out);
  std::vector<T> go_scratch;
  const SampleScale<T> scale(r, it.total_weight, go_scratch);
  Acc nll_sum = 0, smooth_sum = 0;
  for (int64_t b = 0; b < l.n; ++b) {
    for (int64_t s = 0; s < S; ++s) {
      const int64_t i = b * S + s;
      const T* row = x + b * C * S + s;
      T* grow = grad ? grad + b * C * S + s : nullptr;
      const int64_t t = it.target[i];
      if (t == o.ignore_index) {
        if (none) loss[i] = 0;
        if (grow) {
          // log_softmax's backward with a zero upstream gradient:
          // 0 - exp(log_p) * 0, which is NaN where log_p is (a NaN or +inf
          // logit in the row), as in PyTorch.
          const LogSoftmaxRow<T> log_p(row, C, S);
          for (int64_t c = 0; c < C; ++c) {
            grow[c * S] = T(0) - std::exp(log_p(row[c * S])) * T(0);
          }
        }
        continue;
      }
      const T wt = w ? static_cast<T>(w[t]) : T(1);
      const LogSoftmaxRow<T> log_p(row, C, S);
      const T nll = -wt * log_p(row[t * S]);
      T smooth = 0;
      if (ls > 0) {
        Acc acc = 0;
        for (int64_t c = 0; c < C; ++c) {
          acc -= (w ? w[c] : 1.0) * static_cast<Acc>(log_p(row[c * S]));
        }
        smooth = static_cast<T>(acc);
      }
      if (none) {
        loss[i] = (T(1) - ls) * nll + smooth_scale * smooth;
      } else {
        nll_sum += nll;
        smooth_sum += smooth;
      }
      if (grow) {
        // d/dx_c of (1-ls) nll + (ls/C) smooth, with p = softmax(x):
        //   nll:    w_t (p_c - [c == t]);   smooth: p_c sum(w) - w_c
        const T g = scale(i);
        const T a = (T(1) - ls) * wt * g;
        const T bsm = smooth_scale * g;
        const T wsum = static_cast<T>(w_all);
        for (int64_t c = 0; c < C; ++c) {
          const T p = std::exp(log_p(row[c * S]));
          const T wc = w ? static_cast<T>(w[c]) : T(1);
          grow[c * S] = a * (p - (c == t ? T(1) : T(0))) + (ls > 0 ? bsm * (p * wsum - wc) : T(0));
        }
      }
    }
  }
  if (!none) {
    // torch: (1 - ls) * nll.mean + ls / C * smooth.sum / total_weight; the
    // smoothing term is divided by the same total weight as the NLL term,
    // also without a weight (the count of targets not ignored).
    const Acc total = static_cast<Acc>(1 - ls) * nll_sum + static_cast<Acc>(smooth_scale) * smooth_sum;
    WriteReduced(r, loss, total, it.total_weight);
  }
  return absl::OkStatus();
}

template <typename T>
absl::Status CrossEntropyProb(const LossRequest& r, const CrossEntropyOptions& o,
                              const ClassLayout& l, OutputAllocator& out) {
  const int64_t C = l.classes, S = l.spatial;
  const T* x = r.input.data_as<T>();
  std::vector<T> tscratch, wscratch, go_scratch;
  const T* target = AsFloat<T>(*r.target, tscratch);
  const T* w = o.weight ? AsFloat<T>(*o.weight, wscratch) : nullptr;
  const T ls = static_cast<T>(o.label_smoothing);
  const T uniform = C > 0 ? ls / static_cast<T>(C) : T(0);
  const bool none = r.reduction == Reduction::kNone;
  const auto [loss, grad] = AllocateLossOutputs<T>(r, l.sample_shape, out);
  const Acc count = static_cast<Acc>(l.samples());
  const SampleScale<T> scale(r, count, go_scratch);
  Acc sum = 0;
  for (int64_t b = 0; b < l.n; ++b) {
    for (int64_t s = 0; s < S; ++s) {
      const int64_t i = b * S + s;
      const int64_t base = b * C * S + s;
      const T* row = x + base;
      const T* trow = target + base;
      const LogSoftmaxRow<T> log_p(row, C, S);
      Acc li = 0, wt_sum = 0;
      for (int64_t c = 0; c < C; ++c) {
        const T tc = ls > 0 ? trow[c * S] * (T(1) - ls) + uniform : trow[c * S];
        const T wtc = w ? w[c] * tc : tc;
        li -= static_cast<Acc>(wtc * log_p(row[c * S]));
        wt_sum += wtc;
      }
      if (none) {
        loss[i] = static_cast<T>(li);
      } else {
        sum += li;
      }
      if (grad) {
        const T g = scale(i);
        const T wts = static_cast<T>(wt_sum);
        for (int64_t c = 0; c < C; ++c) {
          const T tc = ls > 0 ? trow[c * S] * (T(1) - ls) + uniform : trow[c * S];
          const T wtc = w ? w[c] * tc : tc;
          grad[base + c * S] = g * (std::exp(log_p(row[c * S])) * wts - wtc);
        }
      }
    }
  }
  if (!none) WriteReduced(r, loss, sum, count);
  return absl::OkStatus();
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
absl::Status Evaluate(const LossRequest& r, const CrossEntropyOptions& o,
                              OutputAllocator& out) {
  if (!(o.label_smoothing >= 0.0 && o.label_smoothing <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cross_entropy.label_smoothing must be in [0, 1], got ", o.label_smoothing));
  }
  if (r.target && IsFloating(r.target->dtype)) {
    if (o.ignore_index >= 0) {  // PyTorch's own check
      return absl::InvalidArgumentError(absl::StrCat(
          "cross_entropy.ignore_index (", o.ignore_index,
          ") is not supported with class-probability (floating point) targets"));
    }
    absl::StatusOr<ClassLayout> layout = CheckClassInput(r.input);
    if (!layout.ok()) return layout.status();
    if (absl::Status s = CheckShapeEquals(
            *r.target, "target", r.input.shape,
            absl::StrCat("class probabilities for input ", ShapeString(r.input.shape)));
        !s.ok()) {
      return s;
    }
    if (absl::Status s = CheckClassWeight(o.weight, "cross_entropy.weight", layout->classes);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = CheckGradOutput(r, ReducedShape(r.reduction, layout->sample_shape));
        !s.ok()) {
      return s;
    }
    return DispatchFloat(r.input.dtype,
                         [&]<typename T>() { return CrossEntropyProb<T>(r, o, *layout, out); });
  }
  absl::StatusOr<IndexTargets> it =
      CheckIndexTargets(r, o.weight, "cross_entropy.weight", o.ignore_index);
  if (!it.ok()) return it.status();
  if (absl::Status s = CheckGradOutput(r, ReducedShape(r.reduction, it->layout.sample_shape));
      !s.ok()) {
    return s;
  }
  return DispatchFloat(r.input.dtype,
                       [&]<typename T>() { return CrossEntropyIndex<T>(r, o, *it, out); });
}

// torch.nn.NLLLoss: -w[t] * input[t] per sample. The mean divides by the
// summed weights of the targets not ignored (NaN when every target is
// ignored).
absl::Status Evaluate(const LossRequest& r, const NllOptions& o, OutputAllocator& out) {
  absl::StatusOr<IndexTargets> it = CheckIndexTargets(r, o.weight, "nll.weight", o.ignore_index);
  if (!it.ok()) return it.status();
  const ClassLayout& l = it->layout;
  if (absl::Status s = CheckGradOutput(r, ReducedShape(r.reduction, l.sample_shape)); !s.ok()) {
    return s;
  }
  return DispatchFloat(r.input.dtype, [&]<typename T>() {
    const int64_t C = l.classes, S = l.spatial;
    const T* x = r.input.data_as<T>();
    const double* w = it->weight64.empty() ? nullptr : it->weight64.data();
    const bool none = r.reduction == Reduction::kNone;
    const auto [loss, grad] = AllocateLossOutputs<T>(r, l.sample_shape, out);
    if (grad) std::fill(grad, grad + r.input.numel(), T(0));
    std::vector<T> go_scratch;
    const SampleScale<T> scale(r, it->total_weight, go_scratch);
    Acc sum = 0;
    for (int64_t b = 0; b < l.n; ++b) {
      for (int64_t s = 0; s < S; ++s) {
        const int64_t i = b * S + s;
        const int64_t t = it->target[i];
        if (t == o.ignore_index) {
          if (none) loss[i] = 0;
          continue;
        }
        const T wt = w ? static_cast<T>(w[t]) : T(1);
        const int64_t at = b * C * S + t * S + s;
        const T li = -wt * x[at];
        if (none) {
          loss[i] = li;
        } else {
          sum += li;
        }
        if (grad) grad[at] = -wt * scale(i);
      }
    }
    if (!none) WriteReduced(r, loss, sum, it->total_weight);
    return absl::OkStatus();
  });
}

}  // namespace lossservice::internal
