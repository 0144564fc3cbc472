// Margin and embedding losses: multilabel_soft_margin, multi_margin,
// multilabel_margin, cosine_embedding, triplet_margin.
//
// Layout: each of these losses works on rows, the input's last dimension (C
// classes or D features), contiguous in memory; one row is one sample of the
// unreduced loss. A row's arithmetic is done in double from the input's
// values, also for float32 inputs, so that float32 results equal PyTorch's
// float64 evaluation of the same values rounded once; sums are accumulated in
// double.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/elementwise.h"
#include "core/internal.h"
#include "core/simd/rows.h"

namespace lossservice::internal {
using Acc = double;
}

namespace lossservice::internal {
namespace {

// The samples of an input seen as rows of its last dimension.
struct Rows {
  int64_t count = 0;   // samples
  int64_t length = 0;  // C or D
  Shape loss_shape;    // the unreduced loss's shape
};

// Rows of the last dimension; a 0-d input is one row of one element.
Rows LastDimRows(const TensorView& input) {
  Rows rows;
  if (input.dim() == 0) {
    rows.count = 1;
    rows.length = 1;
    return rows;
  }
  rows.length = input.shape.back();
  rows.loss_shape.assign(input.shape.begin(), input.shape.end() - 1);
  rows.count = NumElements(rows.loss_shape);
  return rows;
}

// Writes the loss and, when asked, the gradient, sample by sample, in chunks
// of rows across ctx.pool. `row(i, g, grad_row)` returns the loss of sample
// i (in double) and, when `grad_row` is not null, writes g * d loss_i / d
// row_i into it; g is the upstream gradient of sample i (grad_output,
// divided by the sample count under mean). `make_row()` is called once per
// chunk and returns that callable, so that each chunk has its own scratch.
// Mean over zero samples is NaN (0 / 0), the sum 0.
template <typename T, typename MakeRow>
void ReduceRows(const LossRequest& r, const LossPlan& plan, const Rows& rows, void* loss_out,
                void* grad_out, const ComputeContext& ctx, MakeRow&& make_row) {
  T* loss = static_cast<T*>(loss_out);
  T* grad = static_cast<T*>(grad_out);
  const bool none = r.reduction == Reduction::kNone;
  const Upstream<T> up = UpstreamOf<T>(r, plan);
  const auto chunk = [&](int64_t begin, int64_t end) {
    auto row = make_row();
    Acc sum = 0;
    for (int64_t i = begin; i < end; ++i) {
      T g = 0;
      const T* go = up.per_element.Get(i, 1, &g);
      const Acc gi = go ? static_cast<Acc>(*go) : up.uniform;
      const Acc li = row(i, gi, grad ? grad + i * rows.length : nullptr);
      if (none) {
        loss[i] = static_cast<T>(li);
      } else {
        sum += li;
      }
    }
    return sum;
  };
  const int64_t per_chunk = UnitsPerChunk(rows.length);
  const double sum = RunChunks<double>(ctx, rows.count, per_chunk, none, chunk);
  if (!none) WriteReduced(r, plan, loss, sum);
}

// ReduceRows for kernels that take many rows at once: fn(begin, end, g,
// loss) gets rows [begin, end), g[i - begin] their upstream gradients (as in
// ReduceRows), and writes their losses (double) to loss[i - begin].
template <typename T, typename F>
void ReduceRowChunks(const LossRequest& r, const LossPlan& plan, const Rows& rows,
                     void* loss_out, const ComputeContext& ctx, F&& fn) {
  T* loss = static_cast<T*>(loss_out);
  const bool none = r.reduction == Reduction::kNone;
  const Upstream<T> up = UpstreamOf<T>(r, plan);
  const auto chunk = [&](int64_t begin, int64_t end) {
    const size_t n = static_cast<size_t>(end - begin);
    absl::InlinedVector<double, 256> g(n), row_loss(n);
    absl::InlinedVector<T, 256> go(n);
    const T* per = up.per_element.Get(begin, end - begin, go.data());
    for (size_t i = 0; i < n; ++i) g[i] = per ? static_cast<double>(per[i]) : up.uniform;
    fn(begin, end, g.data(), row_loss.data());
    Acc sum = 0;
    for (size_t i = 0; i < n; ++i) {
      if (none) {
        loss[begin + static_cast<int64_t>(i)] = static_cast<T>(row_loss[i]);
      } else {
        sum += row_loss[i];
      }
    }
    return sum;
  };
  const int64_t per_chunk = UnitsPerChunk(rows.length);
  const double sum = RunChunks<double>(ctx, rows.count, per_chunk, none, chunk);
  if (!none) WriteReduced(r, plan, loss, sum);
}

// PyTorch's sgn for real numbers: sgn(NaN) = 0.
inline double Sgn(double v) { return static_cast<double>((0.0 < v) - (v < 0.0)); }

// torch.nn.functional.logsigmoid and its derivative, in PyTorch's CPU form:
// min(x, 0) - log1p(exp(-|x|)); the derivative is sigmoid(-x), written so that
// it stays exact for large |x|.
inline double LogSigmoid(double x) { return std::min(0.0, x) - std::log1p(std::exp(-std::abs(x))); }
inline double LogSigmoidGrad(double x) {
  const double z = std::exp(-std::abs(x));
  return x < 0 ? 1.0 - z / (1.0 + z) : z / (1.0 + z);
}

// The class count and sample count of multi_margin / multilabel_margin's
// input: (N, C) or (C) with C > 0 (N may be 0), or () as one class.
absl::StatusOr<Rows> CheckMarginClassInput(const TensorView& input, absl::string_view loss) {
  const bool ok = input.dim() == 0 || (input.dim() == 1 && input.shape[0] > 0) ||
                  (input.dim() == 2 && input.shape[1] > 0);
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input: ", loss, " takes scores of shape (N, C) or (C) with C > 0, got ",
        ShapeString(input.shape)));
  }
  Rows rows;
  if (input.dim() == 2) {
    rows.count = input.shape[0];
    rows.length = input.shape[1];
    rows.loss_shape = {rows.count};
  } else {
    rows.count = 1;
    rows.length = input.dim() == 0 ? 1 : input.shape[0];
  }
  return rows;
}

// Checks an option tensor that must be present, floating and of the input's
// shape.
absl::Status CheckLikeInput(const std::optional<TensorView>& t, absl::string_view field,
                            absl::string_view what, const TensorView& input) {
  if (!t) return absl::InvalidArgumentError(absl::StrCat(field, " is required: ", what));
  LOSS_RETURN_IF_ERROR(CheckFloating(*t, field));
  return CheckShapeEquals(*t, field, input.shape, {"input", &input.shape});
}

// The p-norm of PyTorch's pairwise_distance, ||a - b + eps||_p over one row,
// and its derivative as PyTorch's autograd computes it (norm_backward).
class RowNorm {
 public:
  // torch.pairwise_distance computes the norm with p rounded to float but
  // its gradient (norm_backward) with p itself: 2.3 is 2.29999995 forward
  // and 2.3 backward.
  explicit RowNorm(double p) : p_(static_cast<float>(p)), grad_p_(p) {}

  // The norm of the row d(k) = a[k] - b[k] + eps, k < n. An empty row has
  // norm 0 for every p.
  template <typename T>
  double Forward(const T* a, const T* b, double eps, int64_t n) {
    const auto d = [&](int64_t k) {
      return static_cast<double>(a[k]) - static_cast<double>(b[k]) + eps;
    };
    norm_ = 0;
    max_count_ = 0;
    if (n == 0) return norm_;
    if (p_ == 0) {
      for (int64_t k = 0; k < n; ++k) norm_ += d(k) != 0 ? 1.0 : 0.0;  // NaN counts
    } else if (std::isinf(p_)) {
      // max |d| for +inf, min |d| for -inf; NaN propagates.
      norm_ = std::abs(d(0));
      for (int64_t k = 1; k < n && !std::isnan(norm_); ++k) {
        const double v = std::abs(d(k));
        if (std::isnan(v) || (p_ > 0 ? v > norm_ : v < norm_)) norm_ = v;
      }
      // The gradient is shared by the elements at the extremum (and NaNs).
      for (int64_t k = 0; k < n; ++k) {
        const double v = std::abs(d(k));
        max_count_ += v == norm_ || std::isnan(v) ? 1 : 0;
      }
    } else if (p_ == 1) {
      for (int64_t k = 0; k < n; ++k) norm_ += std::abs(d(k));
    } else if (p_ == 2) {
      for (int64_t k = 0; k < n; ++k) norm_ += d(k) * d(k);
      norm_ = std::sqrt(norm_);
    } else {
      for (int64_t k = 0; k < n; ++k) norm_ += std::pow(std::abs(d(k)), p_);
      norm_ = std::pow(norm_, 1.0 / p_);
    }
    return norm_;
  }

  // g * d norm / d d(k) for the element value v = d(k) of the row last given
  // to Forward, with PyTorch's masking: 0 where the norm is 0 (p >= 1), 0 at
  // v = 0 for p < 1; p = 0 has no gradient at all.
  double Backward(double v, double g) const {
    if (grad_p_ == 0) return 0;
    if (grad_p_ == 1) return Sgn(v) * g;
    if (grad_p_ == 2) return g * (norm_ == 0 ? 0.0 : v / norm_);
    if (std::isinf(grad_p_)) {
      const double a = std::abs(v);
      const bool at_extremum = a == norm_ || std::isnan(a);
      return Sgn(v) * ((g / static_cast<double>(max_count_)) * (at_extremum ? 1.0 : 0.0));
    }
    const double a = std::abs(v);
    if (grad_p_ < 1) {
      const double scaled = v == 0 ? 0.0 : Sgn(v) * std::pow(a, grad_p_ - 1);
      return scaled * g * std::pow(norm_, 1 - grad_p_);
    }
    const double scale = norm_ == 0 ? 0.0 : g / std::pow(norm_, grad_p_ - 1);
    if (grad_p_ < 2) return Sgn(v) * std::pow(a, grad_p_ - 1) * scale;
    return v * std::pow(a, grad_p_ - 2) * scale;
  }

 private:
  double p_;       // forward
  double grad_p_;  // backward
  double norm_ = 0;
  int64_t max_count_ = 0;
};

}  // namespace

// torch.nn.MultiLabelSoftMarginLoss: per sample
//   sum_c w_c * -(y_c logsigmoid(x_c) + (1 - y_c) logsigmoid(-x_c)) / C
// over the last dimension (PyTorch accepts any rank >= 1 and treats the last
// dimension as the classes; the loss has the input's shape without it).
// Targets may be any float (soft labels). Kept from PyTorch: the formula is
// evaluated as written, so x = +-inf with the matching label gives
// 0 * -inf = NaN; C = 0 gives 0 / 0 = NaN per sample.
absl::StatusOr<LossPlan> Check(const LossRequest& r, const MultiLabelSoftMarginOptions& o) {
  if (r.input.dim() == 0) {
    return absl::InvalidArgumentError(
        "input: multilabel_soft_margin takes scores of shape (N, C) or (C) (any rank >= 1, the "
        "classes last), got []");
  }
  LOSS_RETURN_IF_ERROR(CheckTargetLikeInput(r));
  const Rows rows = LastDimRows(r.input);
  LOSS_RETURN_IF_ERROR(CheckClassWeight(o.weight, "multilabel_soft_margin.weight", rows.length));
  return PlanFor(r, rows.loss_shape);
}

void Compute(const LossRequest& r, const MultiLabelSoftMarginOptions& o, const LossPlan& plan,
             void* loss_out, void* grad_out, const ComputeContext& ctx) {
  const Rows rows = LastDimRows(r.input);
  DispatchFloat(plan.dtype, [&]<typename T>() {
    // The element losses of simd::PointOp::kMultiLabelSoftMargin (the class
    // weights as a broadcast operand), summed per row and divided by C; the
    // gradient's upstream factor is g / C.
    const T* x = r.input.data_as<T>();
    T* loss = static_cast<T*>(loss_out);
    T* grad = static_cast<T*>(grad_out);
    const int64_t C = rows.length;
    const bool none = r.reduction == Reduction::kNone;
    internal::PointOperands<T> ops;
    ops.y = Operand<T>(*r.target, r.input.shape);
    if (o.weight) ops.w = Operand<T>(*o.weight, r.input.shape);
    const Upstream<T> up = UpstreamOf<T>(r, plan);
    const double per_class = 1.0 / static_cast<double>(C);
    const auto chunk = [&](int64_t row_begin, int64_t row_end) {
      T ybuf[kBlock], wbuf[kBlock], gobuf[kBlock], element_loss[kBlock];
      double sum = 0;      // of the chunk's row losses
      double row_sum = 0;  // of the current row's element losses
      const int64_t end = row_end * C;
      for (int64_t b = row_begin * C; b < end; b += kBlock) {
        const int64_t n = std::min(kBlock, end - b);
        simd::PointArgs<T> a;
        a.n = n;
        a.x = x + b;
        a.y = ops.y.Get(b, n, ybuf);
        a.w = ops.w.Get(b, n, wbuf);
        a.loss = element_loss;
        a.grad = grad ? grad + b : nullptr;
        // The block in row segments: [i, i + take) lies in row (b + i) / C,
        // and ends it when it reaches the row's last class.
        const auto for_each_segment = [&](auto&& fn) {
          for (int64_t i = 0; i < n;) {
            const int64_t in_row = (b + i) % C;
            const int64_t take = std::min(n - i, C - in_row);
            fn(i, take, (b + i) / C, in_row + take == C);
            i += take;
          }
        };
        if (up.per_element.present()) {
          for_each_segment([&](int64_t i, int64_t take, int64_t row, bool) {
            T go_buf = 0;
            const T go = *up.per_element.Get(row, 1, &go_buf);
            std::fill_n(gobuf + i, take, static_cast<T>(static_cast<double>(go) * per_class));
          });
          a.go = gobuf;
        } else {
          a.grad_scale = up.uniform * per_class;
        }
        simd::Point(simd::PointOp::kMultiLabelSoftMargin, {}, a);
        for_each_segment([&](int64_t i, int64_t take, int64_t row, bool row_ends) {
          // Four partial sums (one serial chain of double additions was
          // most of the loss's time), combined in a fixed order.
          double part[4] = {0, 0, 0, 0};
          int64_t k = 0;
          for (; k + 4 <= take; k += 4) {
            for (int j = 0; j < 4; ++j) part[j] += static_cast<double>(element_loss[i + k + j]);
          }
          for (; k < take; ++k) part[0] += static_cast<double>(element_loss[i + k]);
          row_sum += (part[0] + part[1]) + (part[2] + part[3]);
          if (!row_ends) return;
          if (none) {
            loss[row] = static_cast<T>(row_sum / static_cast<double>(C));
          } else {
            sum += row_sum / static_cast<double>(C);
          }
          row_sum = 0;
        });
      }
      if (C == 0) {  // rows without classes: 0 / 0, as in PyTorch
        for (int64_t row = row_begin; row < row_end; ++row) {
          if (none) {
            loss[row] = static_cast<T>(0.0 / static_cast<double>(C));
          } else {
            sum += 0.0 / static_cast<double>(C);
          }
        }
      }
      return sum;
    };
    const int64_t per_chunk = UnitsPerChunk(C);
    const double sum = RunChunks<double>(ctx, rows.count, per_chunk, none, chunk);
    if (!none) WriteReduced(r, plan, loss, sum);
  });
}

// torch.nn.MultiMarginLoss: per sample, with y its class,
//   sum_{i != y} w_y max(0, margin - x_y + x_i)^p / C,   p in {1, 2}.
// Shapes as PyTorch checks them: input (N, C) or (C) with C > 0, or () as one
// class; the target holds one index per sample (N of them, or 1 for an
// unbatched input) with at most one dimension, and the unreduced loss has the
// target's shape (so (C) with target (1) gives (1), (1, C) with target ()
// gives ()). Kept from PyTorch: only z > 0 counts, so a NaN z (a NaN score or
// margin) adds nothing, and a tie z = 0 has no gradient. The mean divides by
// N, also with a weight. Not kept: PyTorch 1.13 returns uninitialized memory
// for mean / sum over an empty batch; here they are NaN and 0.
absl::StatusOr<LossPlan> Check(const LossRequest& r, const MultiMarginOptions& o) {
  if (o.p != 1 && o.p != 2) {
    return absl::InvalidArgumentError(absl::StrCat("multi_margin.p must be 1 or 2, got ", o.p));
  }
  LOSS_ASSIGN_OR_RETURN(const Rows rows, CheckMarginClassInput(r.input, "multi_margin"));
  if (!r.target) return absl::InvalidArgumentError("target is required");
  LOSS_RETURN_IF_ERROR(CheckIndex(*r.target, "target"));
  // PyTorch asks only for one index per sample in at most one dimension.
  if (!(r.target->dim() <= 1 && r.target->numel() == rows.count)) {
    LOSS_RETURN_IF_ERROR(CheckShapeEquals(*r.target, "target", rows.loss_shape,
                                          {"input", &r.input.shape}));
  }
  const int64_t C = rows.length;
  LOSS_RETURN_IF_ERROR(CheckClassWeight(o.weight, "multi_margin.weight", C));
  for (int64_t i = 0; i < rows.count; ++i) {
    const int64_t t = IndexAt(*r.target, i);
    if (t < 0 || t >= C) {
      return absl::InvalidArgumentError(absl::StrCat(
          "target: class index ", t, " at flat position ", i, " is out of range for ", C,
          " classes (valid: 0 to ", C - 1, ")"));
    }
  }
  return PlanFor(r, r.target->shape);
}

void Compute(const LossRequest& r, const MultiMarginOptions& o, const LossPlan& plan, void* loss,
             void* grad_out, const ComputeContext& ctx) {
  const Rows rows = *CheckMarginClassInput(r.input, "multi_margin");
  DispatchFloat(plan.dtype, [&]<typename T>() {
    const int64_t C = rows.length;
    Scratch<T> w_scratch;
    const T* w = o.weight ? AsFloat<T>(*o.weight, w_scratch) : nullptr;
    T* grad = static_cast<T*>(grad_out);
    ReduceRowChunks<T>(r, plan, rows, loss, ctx,
                       [&](int64_t begin, int64_t end, const double* g, double* row_loss) {
      const size_t n = static_cast<size_t>(end - begin);
      absl::InlinedVector<int64_t, 256> target(n);
      absl::InlinedVector<double, 256> gc(n);
      for (size_t i = 0; i < n; ++i) {
        target[i] = IndexAt(*r.target, begin + static_cast<int64_t>(i));
        const double wy = w ? static_cast<double>(w[target[i]]) : 1.0;
        gc[i] = g[i] * wy / static_cast<double>(C);
      }
      simd::MultiMarginArgs<T> a;
      a.count = static_cast<int64_t>(n);
      a.classes = C;
      a.x = r.input.data_as<T>() + begin * C;
      a.target = target.data();
      a.weight = w;
      a.margin = o.margin;
      a.square = o.p == 2;
      a.g = gc.data();
      a.loss = row_loss;
      a.grad = grad ? grad + begin * C : nullptr;
      simd::MultiMargin(a);
      for (size_t i = 0; i < n; ++i) row_loss[i] /= static_cast<Acc>(C);
    });
  });
}

// multilabel_margin compares every label of a sample with every class; a
// request that fits in a message could ask for 10^13 comparisons. 2^31 take
// seconds.
constexpr int64_t kMaxMultiLabelPairs = int64_t{1} << 31;

// torch.nn.MultiLabelMarginLoss: per sample, with J its labels (the target
// row up to the first -1) and I the other classes,
//   sum_{j in J} sum_{i in I} max(0, 1 - (x_j - x_i)) / C.
// Input (N, C) or (C) with C > 0, or () as one class; the target has the
// input's shape (for an unbatched input, any shape of at most one dimension
// holding C labels). Kept from PyTorch: every target value must be in
// [-1, C), also after the first -1 (those are otherwise ignored); a label
// given twice counts twice in the sum over J; only terms > 0 count (a NaN
// adds nothing; a tie has no gradient). The mean divides by N. Not kept:
// PyTorch 1.13 returns uninitialized memory for mean / sum over an empty
// batch; here they are NaN and 0.
absl::StatusOr<LossPlan> Check(const LossRequest& r, const MultiLabelMarginOptions&) {
  LOSS_ASSIGN_OR_RETURN(const Rows rows, CheckMarginClassInput(r.input, "multilabel_margin"));
  const int64_t C = rows.length;
  if (!r.target) return absl::InvalidArgumentError("target is required");
  LOSS_RETURN_IF_ERROR(CheckIndex(*r.target, "target"));
  if (r.input.dim() == 2 || !(r.target->dim() <= 1 && r.target->numel() == C)) {
    const Shape expected = r.input.dim() == 0 ? Shape{} : r.input.shape;
    LOSS_RETURN_IF_ERROR(
        CheckShapeEquals(*r.target, "target", expected, {"input", &r.input.shape}));
  }
  const int64_t n = r.target->numel();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t t = IndexAt(*r.target, i);
    if (t < -1 || t >= C) {
      return absl::InvalidArgumentError(absl::StrCat(
          "target: label ", t, " at flat position ", i, " is out of range for ", C,
          " classes (valid: 0 to ", C - 1,
          ", and -1 to end a sample's labels; values after the -1 are checked too)"));
    }
  }
  // The work is labels x C per sample, quadratic in C: bound the request's.
  int64_t pairs = 0;
  for (int64_t i = 0; i < rows.count; ++i) {
    int64_t labels = 0;
    while (labels < C && IndexAt(*r.target, i * C + labels) >= 0) ++labels;
    pairs += labels * C;
    if (pairs > kMaxMultiLabelPairs) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "multilabel_margin: samples 0 to ", i, " already compare ", pairs,
          " (label, class) pairs, over the limit of ", kMaxMultiLabelPairs,
          " per request; split the batch"));
    }
  }
  return PlanFor(r, rows.loss_shape);
}

void Compute(const LossRequest& r, const MultiLabelMarginOptions&, const LossPlan& plan,
             void* loss, void* grad_out, const ComputeContext& ctx) {
  const Rows rows = *CheckMarginClassInput(r.input, "multilabel_margin");
  DispatchFloat(plan.dtype, [&]<typename T>() {
    const T* x = r.input.data_as<T>();
    T* grad = static_cast<T*>(grad_out);
    const int64_t C = rows.length;
    ReduceRowChunks<T>(r, plan, rows, loss, ctx,
                       [&](int64_t begin, int64_t end, const double* g, double* row_loss) {
      // Per class of the current sample: whether it is a label (1.0), and
      // how often it enters an active term.
      absl::InlinedVector<double, 64> is_label(static_cast<size_t>(C)), hits(static_cast<size_t>(C));
      absl::InlinedVector<int64_t, 64> labels;
      for (int64_t i = begin; i < end; ++i) {
        std::fill(is_label.begin(), is_label.end(), 0.0);
        labels.clear();
        while (static_cast<int64_t>(labels.size()) < C) {
          const int64_t l = IndexAt(*r.target, i * C + static_cast<int64_t>(labels.size()));
          if (l < 0) break;
          labels.push_back(l);
          is_label[l] = 1.0;
        }
        double sum = 0;
        simd::MultiLabelMarginRow(x + i * C, C, labels.data(), static_cast<int64_t>(labels.size()),
                                  is_label.data(), g[i - begin] / static_cast<double>(C),
                                  hits.data(), grad ? grad + i * C : nullptr, &sum);
        row_loss[i - begin] = sum / static_cast<Acc>(C);
      }
    });
  });
}

// torch.nn.CosineEmbeddingLoss with x1 the input and x2 = input2, (N, D) with
// target (N), or (D) with target (): with PyTorch's EPSILON = float(1e-12)
// (a float constant, 9.9999999600419720e-13, also for float64) inside the
// norms,
//   cos = sum(x1 x2) / sqrt((sum(x1^2) + EPS) (sum(x2^2) + EPS))
//   loss = 1 - cos where y == 1, max(0, cos - margin) where y == -1,
//          0 for any other target value (PyTorch's where(), so 0 even when cos
//          is NaN).
// The target may be floating or integer, as PyTorch accepts both. The clamp
// passes gradient where cos - margin >= 0 (also at equality). Gradient with
// respect to x1 only: g (x2 / denom - cos x1 / (sum(x1^2) + EPS)).
absl::StatusOr<LossPlan> Check(const LossRequest& r, const CosineEmbeddingOptions& o) {
  if (r.input.dim() != 1 && r.input.dim() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input: cosine_embedding takes embeddings of shape (N, D) or (D), got ",
        ShapeString(r.input.shape)));
  }
  LOSS_RETURN_IF_ERROR(CheckLikeInput(o.input2, "cosine_embedding.input2",
                                      "the second embeddings, of the input's shape", r.input));
  const Rows rows = LastDimRows(r.input);
  if (!r.target) return absl::InvalidArgumentError("target is required");
  LOSS_RETURN_IF_ERROR(CheckShapeEquals(*r.target, "target", rows.loss_shape,
                                        {"input", &r.input.shape, " (one +1 / -1 per row)"}));
  return PlanFor(r, rows.loss_shape);
}

namespace {
// The target as +1, -1 or 0 (anything else).
int TargetSign(const TensorView& t, int64_t i) {
  const double v = IsFloating(t.dtype) ? FloatAt<double>(t, i) : static_cast<double>(IndexAt(t, i));
  return v == 1 ? 1 : v == -1 ? -1 : 0;
}
}  // namespace

void Compute(const LossRequest& r, const CosineEmbeddingOptions& o, const LossPlan& plan,
             void* loss_out, void* grad_out, const ComputeContext& ctx) {
  const Rows rows = LastDimRows(r.input);
  DispatchFloat(plan.dtype, [&]<typename T>() {
    // PyTorch's EPSILON is a float, also for float64 inputs.
    constexpr double kEpsilon = 1e-12f;
    const T* x1 = r.input.data_as<T>();
    const int64_t D = rows.length;
    const double margin = o.margin;
    if (o.input2->dtype == FloatDType<T>()) {
      // The three dot products per row, then the gradient
      // x2 (g_cos / denom) - x1 (g_cos cos / mag1), in double lanes.
      const T* x2 = o.input2->data_as<T>();
      T* grad = static_cast<T*>(grad_out);
      ReduceRowChunks<T>(r, plan, rows, loss_out, ctx,
                         [&](int64_t begin, int64_t end, const double* g, double* row_loss) {
        const size_t n = static_cast<size_t>(end - begin);
        absl::InlinedVector<double, 256> ab(n), aa(n), bb(n), ca(n), cb(n);
        simd::RowDots(x1 + begin * D, x2 + begin * D, D, static_cast<int64_t>(n), ab.data(),
                      aa.data(), bb.data());
        for (size_t i = 0; i < n; ++i) {
          const double mag1 = aa[i] + kEpsilon, mag2 = bb[i] + kEpsilon;
          const double denom = std::sqrt(mag1 * mag2);
          const double cos = ab[i] / denom;
          const int sign = TargetSign(*r.target, begin + static_cast<int64_t>(i));
          double li = 0, g_cos = 0;
          if (sign == 1) {
            li = 1 - cos;
            g_cos = -g[i];
          } else if (sign == -1) {
            const double v = cos - margin;
            li = v < 0 ? 0.0 : v;  // NaN stays NaN
            g_cos = v >= 0 ? g[i] : 0.0;
          }
          row_loss[i] = li;
          ca[i] = g_cos * cos / mag1;
          cb[i] = g_cos / denom;
        }
        if (grad) {
          simd::RowCombine(x1 + begin * D, x2 + begin * D, D, static_cast<int64_t>(n), ca.data(),
                           cb.data(), grad + begin * D);
        }
      });
      return;
    }
    ReduceRows<T>(r, plan, rows, loss_out, grad_out, ctx, [&] {
      return [&](int64_t i, Acc g, T* grad_row) {
        const T* a = x1 + i * D;
        Acc prod = 0, mag1 = 0, mag2 = 0;
        for (int64_t k = 0; k < D; ++k) {
          const double ak = a[k], bk = FloatAt<double>(*o.input2, i * D + k);
          prod += ak * bk;
          mag1 += ak * ak;
          mag2 += bk * bk;
        }
        mag1 += kEpsilon;
        mag2 += kEpsilon;
        const double denom = std::sqrt(mag1 * mag2);
        const double cos = prod / denom;
        const int sign = TargetSign(*r.target, i);
        double li = 0, g_cos = 0;
        if (sign == 1) {
          li = 1 - cos;
          g_cos = -g;
        } else if (sign == -1) {
          const double v = cos - margin;
          li = v < 0 ? 0.0 : v;  // NaN stays NaN
          g_cos = v >= 0 ? g : 0.0;
        }
        if (grad_row) {
          for (int64_t k = 0; k < D; ++k) {
            const double ak = a[k], bk = FloatAt<double>(*o.input2, i * D + k);
            grad_row[k] = static_cast<T>(g_cos * (bk / denom - cos * ak / mag1));
          }
        }
        return li;
      };
    });
  });
}

// torch.nn.TripletMarginLoss, the input being the anchor a:
//   max(0, margin + d(a, positive) - d(a, negative)),
// with PyTorch's pairwise_distance d(u, v) = ||u - v + eps||_p over the last
// dimension; with swap, d(a, negative) is replaced by
// min(d(a, negative), d(positive, negative)). Shapes as PyTorch accepts them
// (any rank; the last dimension holds the features, and the loss has the
// input's shape without it; () is one feature), except that positive and
// negative must have exactly the anchor's shape. Any p is accepted, as in
// PyTorch: 0 (count of non-zeros, no gradient), fractional, negative, and
// +-inf (max / min |d|); an empty row has distance 0. Gradient with respect to
// the anchor only, as PyTorch's autograd gives it: the clamp passes gradient
// where the argument is >= 0 (also at equality); with swap, a tie
// d(a, negative) == d(positive, negative) sends half the gradient to
// d(a, negative) (torch.minimum's rule); the norm's gradient is masked to 0
// where the norm is 0 (p >= 1) and at zero elements (p < 1).
absl::StatusOr<LossPlan> Check(const LossRequest& r, const TripletMarginOptions& o) {
  if (r.target) {
    return absl::InvalidArgumentError(absl::StrCat(
        "triplet_margin takes no target (got one of shape ", ShapeString(r.target->shape),
        "): the input is the anchor, and positive and negative are options"));
  }
  LOSS_RETURN_IF_ERROR(CheckLikeInput(o.positive, "triplet_margin.positive",
                                      "the positive examples, of the anchor's (input's) shape",
                                      r.input));
  LOSS_RETURN_IF_ERROR(CheckLikeInput(o.negative, "triplet_margin.negative",
                                      "the negative examples, of the anchor's (input's) shape",
                                      r.input));
  return PlanFor(r, LastDimRows(r.input).loss_shape);
}

void Compute(const LossRequest& r, const TripletMarginOptions& o, const LossPlan& plan,
             void* loss, void* grad, const ComputeContext& ctx) {
  const Rows rows = LastDimRows(r.input);
  DispatchFloat(plan.dtype, [&]<typename T>() {
    const T* anchor = r.input.data_as<T>();
    const int64_t D = rows.length;
    const double eps = o.eps;
    const double p = o.p;
    if ((p == 1 || p == 2) && o.positive->dtype == FloatDType<T>() &&
        o.negative->dtype == FloatDType<T>()) {
      // 1- and 2-norms in double lanes; RowNorm's rules for the rest.
      const int pi = static_cast<int>(p);
      const T* pos = o.positive->data_as<T>();
      const T* neg = o.negative->data_as<T>();
      T* grad_out = static_cast<T*>(grad);
      ReduceRowChunks<T>(r, plan, rows, loss, ctx,
                         [&](int64_t begin, int64_t end, const double* g, double* row_loss) {
        const size_t n = static_cast<size_t>(end - begin);
        const int64_t m = static_cast<int64_t>(n);
        absl::InlinedVector<double, 256> n_pos(n), n_neg(n), n_swap(o.swap ? n : 0), c1(n), c2(n);
        simd::TripletNorms(pi, anchor + begin * D, pos + begin * D, neg + begin * D, eps, D, m,
                           n_pos.data(), n_neg.data(), o.swap ? n_swap.data() : nullptr);
        const auto norm = [&](double v) { return pi == 2 ? std::sqrt(v) : v; };
        for (size_t i = 0; i < n; ++i) {
          const double d_pos = norm(n_pos[i]);
          const double d_a_neg = norm(n_neg[i]);
          double d_neg = d_a_neg, neg_share = 1;
          if (o.swap) {
            const double d_swap = norm(n_swap[i]);
            neg_share = d_a_neg > d_swap ? 0.0 : d_a_neg == d_swap ? 0.5 : 1.0;
            if (std::isnan(d_swap) || d_swap < d_neg) d_neg = d_swap;  // torch.minimum
          }
          const double v = o.margin + d_pos - d_neg;
          row_loss[i] = v < 0 ? 0.0 : v;  // NaN stays NaN
          const double g_v = v >= 0 ? g[i] : 0.0;
          const double g_neg = -g_v * neg_share;
          // norm_backward: g / norm (0 where the norm is 0) for p = 2, g for p = 1.
          c1[i] = pi == 1 ? g_v : (d_pos == 0 ? 0.0 : g_v / d_pos);
          c2[i] = pi == 1 ? g_neg : (d_a_neg == 0 ? 0.0 : g_neg / d_a_neg);
        }
        if (grad_out) {
          simd::TripletGrad(pi, anchor + begin * D, pos + begin * D, neg + begin * D, eps, D, m,
                            c1.data(), c2.data(), grad_out + begin * D);
        }
      });
      return;
    }
    ReduceRows<T>(r, plan, rows, loss, grad, ctx, [&] {
      // The row's positive and negative examples in the input's dtype.
      struct Row {
        Scratch<T> pos_buf, neg_buf;
        const T* anchor;
        const TripletMarginOptions* o;
        int64_t D;
        double eps, p;
        Acc operator()(int64_t i, Acc g, T* grad_row) {
          const T* a = anchor + i * D;
          pos_buf.resize(static_cast<size_t>(D));
          neg_buf.resize(static_cast<size_t>(D));
          for (int64_t k = 0; k < D; ++k) {
            pos_buf[k] = FloatAt<T>(*o->positive, i * D + k);
            neg_buf[k] = FloatAt<T>(*o->negative, i * D + k);
          }
          const T* pos = pos_buf.data();
          const T* neg = neg_buf.data();
          RowNorm to_pos(p), to_neg(p);
          const double d_pos = to_pos.Forward(a, pos, eps, D);
          double d_neg = to_neg.Forward(a, neg, eps, D);
          // Share of the d_neg term's gradient that reaches d(a, negative).
          double neg_share = 1;
          if (o->swap) {
            RowNorm pos_to_neg(p);
            const double d_swap = pos_to_neg.Forward(pos, neg, eps, D);
            neg_share = d_neg > d_swap ? 0.0 : d_neg == d_swap ? 0.5 : 1.0;
            if (std::isnan(d_swap) || d_swap < d_neg) d_neg = d_swap;  // torch.minimum
          }
          const double v = o->margin + d_pos - d_neg;
          if (grad_row) {
            const double g_v = v >= 0 ? g : 0.0;
            const double g_neg = -g_v * neg_share;
            for (int64_t k = 0; k < D; ++k) {
              const double ak = a[k];
              grad_row[k] = static_cast<T>(
                  to_pos.Backward(ak - static_cast<double>(pos[k]) + eps, g_v) +
                  to_neg.Backward(ak - static_cast<double>(neg[k]) + eps, g_neg));
            }
          }
          return v < 0 ? 0.0 : v;  // NaN stays NaN
        }
      };
      return Row{{}, {}, anchor, &o, D, eps, p};
    });
  });
}

}  // namespace lossservice::internal
