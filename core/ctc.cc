// Connectionist temporal classification: ctc.
//
// Layout: log_probs (T, N, C) is row-major, so frame t of sample b is the C
// values at (t * N + b) * C; the unbatched (T, C) form is N = 1. Sample b's
// labels are target_lengths[b] consecutive values of the target: from b * S
// for padded (N, S) targets, from the running sum of the target lengths for
// concatenated ones.
//
// The recursions run over the extended label sequence l' = (blank, l1, blank,
// l2, ..., blank) of 2 * target_length + 1 states, in double whatever the
// input's dtype, with the log-sum-exp written as PyTorch's CPU kernel writes
// it (relative to the largest term, a largest term of -inf taken as 0), so
// that NaN and Inf inputs propagate as they do in PyTorch.
#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "core/internal.h"
#include "core/simd/rows.h"

namespace lossservice::internal {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();
constexpr double kInf = std::numeric_limits<double>::infinity();

// The largest alpha table (input length * (2 * target length + 1) doubles,
// one sample at a time) a request may need: 512 MiB. A request that fits in a
// message can otherwise ask for terabytes (T and S both in the millions).
constexpr int64_t kMaxAlphaCells = int64_t{1} << 26;
// The work of a whole request: its samples' alignment tables together, each
// cell visited by the alpha and beta recursions. 2^30 cells take seconds,
// not hours (a batch of 1000 samples of T = 8000 and S = 4000 fits in a
// message and would be 6.4e10 cells).
constexpr int64_t kMaxRequestCells = int64_t{1} << 30;

// A CTC request's layout: views of its tensors and what follows from them.
struct CtcProblem {
  bool batched = true;
  int64_t time = 0;     // T
  int64_t batch = 1;    // N
  int64_t classes = 0;  // C
  int64_t blank = 0;
  const TensorView* input_lengths = nullptr;
  const TensorView* target_lengths = nullptr;
  const TensorView* labels = nullptr;
  bool padded = false;           // (N, S) labels, sample b's from b * width
  int64_t width = 0;             // S of padded labels
  int64_t max_target_length = 0;
  int64_t max_alpha_cells = 0;   // max over samples of input_length * (2 target_length + 1)
  Shape loss_shape;              // unreduced: (N), or () unbatched

  int64_t InputLength(int64_t b) const { return IndexAt(*input_lengths, b); }
  int64_t TargetLength(int64_t b) const { return IndexAt(*target_lengths, b); }
  int64_t Label(int64_t i) const { return IndexAt(*labels, i); }
};

// input_lengths / target_lengths: INT64 or INT32 of shape (N); () or (1) for
// the unbatched form.
absl::Status CheckLengthsTensor(const std::optional<TensorView>& t, absl::string_view field,
                                const CtcProblem& p, const TensorView& input) {
  if (!t) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " is required: one length per sample, INT64 or INT32 of shape ",
        p.batched ? absl::StrCat("[", p.batch, "]") : std::string("[]"), " for input ",
        ShapeString(input.shape)));
  }
  if (t->dtype != DType::kInt64 && t->dtype != DType::kInt32) {
    return absl::InvalidArgumentError(absl::StrCat(field, " must be INT64 or INT32, got ",
                                                   DTypeName(t->dtype), " ",
                                                   ShapeString(t->shape)));
  }
  if (p.batched) {
    return CheckShapeEquals(*t, field, {p.batch},
                            {"the batch of input (T, N, C)", &input.shape});
  }
  if (t->dim() == 0 || (t->dim() == 1 && t->shape[0] == 1)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "size mismatch: ", field, " has shape ", ShapeString(t->shape),
      " but must be [] (or [1]) for the unbatched input (T, C) ", ShapeString(input.shape)));
}

// The layout of a request whose input has rank 2 or 3 and whose tensors are
// present (checked by CheckCtc before it calls this).
CtcProblem Describe(const LossRequest& r, const CtcOptions& o) {
  CtcProblem p;
  const TensorView& input = r.input;
  p.batched = input.dim() == 3;
  p.time = input.shape[0];
  p.batch = p.batched ? input.shape[1] : 1;
  p.classes = input.shape.back();
  p.blank = o.blank;
  if (p.batched) p.loss_shape = {p.batch};
  if (r.target) {
    p.labels = &*r.target;
    p.padded = r.target->dim() == 2;
    p.width = p.padded ? r.target->shape[1] : 0;
  }
  p.input_lengths = o.input_lengths ? &*o.input_lengths : nullptr;
  p.target_lengths = o.target_lengths ? &*o.target_lengths : nullptr;
  return p;
}

// Where sample b's labels start, for every b (the running sum of the target
// lengths for concatenated labels).
absl::InlinedVector<int64_t, 16> LabelOffsets(const CtcProblem& p) {
  absl::InlinedVector<int64_t, 16> offsets(static_cast<size_t>(p.batch));
  int64_t total = 0;
  for (int64_t b = 0; b < p.batch; ++b) {
    offsets[b] = p.padded ? b * p.width : total;
    total += p.TargetLength(b);
  }
  return offsets;
}

// Validates everything before any output is sized.
absl::StatusOr<CtcProblem> CheckCtc(const LossRequest& r, const CtcOptions& o) {
  const TensorView& input = r.input;
  if (input.dim() != 2 && input.dim() != 3) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input (log_probs) must have shape (T, N, C) or, unbatched, (T, C); got ",
        ShapeString(input.shape)));
  }
  CtcProblem p = Describe(r, o);
  if (o.blank < 0 || o.blank >= p.classes) {
    return absl::InvalidArgumentError(absl::StrCat("ctc.blank = ", o.blank,
                                                   " is out of range for ", p.classes,
                                                   " classes (valid: 0 to ", p.classes - 1,
                                                   ") of input ", ShapeString(input.shape)));
  }

  // Target: labels, padded (N, S) or concatenated (sum(target_lengths)).
  if (!r.target) return absl::InvalidArgumentError("target is required");
  const TensorView& target = *r.target;
  LOSS_RETURN_IF_ERROR(CheckIndex(target, "target"));
  if (target.dim() != 1 && !(p.padded && target.shape[0] == p.batch)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "target must be padded labels (N, S) = [", p.batch,
        ", S] or concatenated labels (sum(target_lengths)) for input ", ShapeString(input.shape),
        "; got ", ShapeString(target.shape)));
  }

  // Lengths.
  LOSS_RETURN_IF_ERROR(CheckLengthsTensor(o.input_lengths, "ctc.input_lengths", p, input));
  LOSS_RETURN_IF_ERROR(CheckLengthsTensor(o.target_lengths, "ctc.target_lengths", p, input));
  for (int64_t b = 0; b < p.batch; ++b) {
    const int64_t il = p.InputLength(b);
    if (il < 1 || il > p.time) {
      // PyTorch refuses il > T; it accepts 0 and returns garbage (it reads
      // alpha at frame -1), so 0 is refused here as well.
      return absl::InvalidArgumentError(absl::StrCat(
          "ctc.input_lengths[", b, "] = ", il, " is out of range: each input length must be in [1, ",
          p.time, "] (T of input ", ShapeString(input.shape), ")"));
    }
    const int64_t tl = p.TargetLength(b);
    if (tl < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("ctc.target_lengths[", b, "] = ", tl, " is negative"));
    }
  }
  if (p.padded) {
    for (int64_t b = 0; b < p.batch; ++b) {
      if (p.TargetLength(b) > p.width) {
        return absl::InvalidArgumentError(absl::StrCat(
            "ctc.target_lengths[", b, "] = ", p.TargetLength(b), " exceeds S = ", p.width,
            ", the length of the padded target ", ShapeString(target.shape)));
      }
    }
  } else {
    const int64_t labels = target.numel();
    int64_t total = 0;
    bool overflow = false;
    for (int64_t b = 0; b < p.batch; ++b) {
      overflow = overflow || __builtin_add_overflow(total, p.TargetLength(b), &total);
    }
    if (overflow || total != labels) {
      return absl::InvalidArgumentError(absl::StrCat(
          "size mismatch: concatenated target ", ShapeString(target.shape), " holds ", labels,
          " labels but sum(ctc.target_lengths) = ",
          overflow ? std::string("more than 2^63 - 1") : absl::StrCat(total),
          " (padded targets must have shape (N, S))"));
    }
  }

  // Labels in use (padding is not read) and the size of the alpha tables.
  int64_t total_cells = 0, offset = 0;
  for (int64_t b = 0; b < p.batch; ++b) {
    const int64_t tl = p.TargetLength(b);
    const int64_t start = p.padded ? b * p.width : offset;
    offset += tl;
    for (int64_t i = 0; i < tl; ++i) {
      const int64_t l = p.Label(start + i);
      if (l < 0 || l >= p.classes || l == p.blank) {
        return absl::InvalidArgumentError(absl::StrCat(
            "target: label ", l, " of sample ", b, " at position ", i,
            l == p.blank ? absl::StrCat(" is the blank (ctc.blank = ", p.blank, ")")
                         : absl::StrCat(" is out of range for ", p.classes, " classes"),
            "; labels must be in [0, ", p.classes, ") and differ from the blank"));
      }
    }
    const int64_t il = p.InputLength(b);
    const int64_t states_allowed = kMaxAlphaCells / il;  // il * (2 tl + 1) <= limit
    if (states_allowed == 0 || tl > (states_allowed - 1) / 2) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "ctc: sample ", b, " (input length ", il, ", target length ", tl,
          ") needs an alignment table of input_length * (2 * target_length + 1) cells, over the "
          "limit of ", kMaxAlphaCells, " cells"));
    }
    p.max_target_length = std::max(p.max_target_length, tl);
    p.max_alpha_cells = std::max(p.max_alpha_cells, il * (2 * tl + 1));
    total_cells += il * (2 * tl + 1);
    if (total_cells > kMaxRequestCells) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "ctc: the alignment tables of samples 0 to ", b, " already need ", total_cells,
          " cells (input_length * (2 * target_length + 1) summed over the batch), over the "
          "limit of ", kMaxRequestCells, " per request; split the batch"));
    }
  }
  return p;
}

// exp(v - m) for a term v of a log-sum-exp whose largest term is m: 1 for
// the largest term itself (exp(0), the same bits, one exp fewer) and 0 for
// -inf terms (exp(-inf - m) is 0 for every m, NaN included: a NaN m comes from
// a NaN term, which makes the sum NaN anyway).
inline double ExpRelative(double v, double m) {
  if (v == m) return 1.0;
  if (v == kNegInf) return 0.0;
  return std::exp(v - m);
}

// log(exp(a) + exp(b) + exp(c)), with PyTorch's CPU kernel's rounding:
// log(exp(a - m) + exp(b - m) + exp(c - m)) + m for the largest term m, m = 0
// when every term is -inf (-inf - -inf would be NaN). NaN and +inf propagate
// as there (a +inf term gives NaN).
inline double LogSumExp3(double a, double b, double c) {
  double m = a;
  if (b > m) m = b;
  if (c > m) m = c;
  if (m == kNegInf) {
    if (a == kNegInf && b == kNegInf && c == kNegInf) return kNegInf;  // log(0) + 0
    m = 0;
  } else if (m == kInf) {
    return std::numeric_limits<double>::quiet_NaN();  // exp(inf - inf)
  }
  return std::log(ExpRelative(a, m) + ExpRelative(b, m) + ExpRelative(c, m)) + m;
}

// log(exp(a) + exp(b)), the same way (m = std::max(a, b) as in PyTorch).
inline double LogSumExp2(double a, double b) {
  double m = std::max(a, b);
  if (m == kNegInf) {
    if (a == kNegInf && b == kNegInf) return kNegInf;
    m = 0;
  } else if (m == kInf) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  return std::log(ExpRelative(a, m) + ExpRelative(b, m)) + m;
}

// One sample's recursions; Frame(t)[c] is its log-probability of class c at t.
// The per-frame steps over the states run in double vector lanes
// (simd::CtcLogSumExp3), with the scalar code's log-sum-exp rules.
template <typename F>
class CtcSample {
 public:
  // `work` holds 4 * (S + 2) doubles for S = 2 * target_length + 1.
  CtcSample(const F* x, int64_t b, const CtcProblem& p, int64_t label_offset, int64_t* ext,
            double* alpha, double* work)
      : x_(x + b * p.classes),
        row_stride_(p.batch * p.classes),
        classes_(p.classes),
        frames_(p.InputLength(b)),
        states_(2 * p.TargetLength(b) + 1),
        ext_(ext),
        alpha_(alpha) {
    const int64_t S = states_;
    for (int64_t s = 0; s < S; ++s) {
      ext_[s] = (s & 1) ? p.Label(label_offset + (s >> 1)) : p.blank;
    }
    padded_ = work;           // a row with two -inf before (alpha) or after (beta) it
    lpx_ = work + (S + 2);    // lp[ext[s]] of the current frame
    skip_ = work + 2 * (S + 2);       // alpha: s may come from s - 2
    skip_back_ = work + 3 * (S + 2);  // beta: s may go to s + 2
    for (int64_t s = 0; s < S; ++s) {
      skip_[s] = s > 1 && ext_[s - 2] != ext_[s] ? 1.0 : 0.0;
      skip_back_[s] = s < S - 2 && ext_[s + 2] != ext_[s] ? 1.0 : 0.0;
    }
  }

  // Fills alpha (eq. 6-7 of Graves et al.) and returns -log p(l | x).
  double Forward() {
    const int64_t S = states_;
    double* a0 = alpha_;
    std::fill(a0, a0 + S, kNegInf);
    a0[0] = Lp(0, ext_[0]);
    if (S > 1) a0[1] = Lp(0, ext_[1]);
    double* pp = padded_;  // pp[s + 2] = prev[s]
    pp[0] = pp[1] = kNegInf;
    for (int64_t t = 1; t < frames_; ++t) {
      const double* prev = alpha_ + (t - 1) * S;
      std::copy(prev, prev + S, pp + 2);
      Gather(t);
      simd::CtcLogSumExp3(pp + 2, pp + 1, pp, skip_, lpx_, S, alpha_ + t * S);
    }
    const double* last = alpha_ + (frames_ - 1) * S;
    // An empty target has no label state to end in.
    return S == 1 ? -last[0] : -LogSumExp2(last[S - 1], last[S - 2]);
  }

  // Writes d loss / d log_probs for the sample's frames t < input_length,
  // each times `scale`: exp(lp) - exp(log(sum_s alpha beta) + nll - lp), the
  // sum over the states s whose label is c. Beta (eq. 10-11) is kept for two
  // frames only; `row` collects the sum of one frame (C values); `beta` and
  // `beta_next` hold S + 2 values each, `ab` S.
  void Backward(double nll, double scale, F* grad, double* beta, double* beta_next, double* row,
                double* ab) {
    const int64_t S = states_;
    const int64_t last = frames_ - 1;
    double* next = beta_next;
    double* cur = beta;
    double* acc = row;
    // Two -inf after each row: beta at s + 1 and s + 2 past the end.
    next[S] = next[S + 1] = cur[S] = cur[S + 1] = kNegInf;
    // The last frame: beta starts in the final blank and the last label.
    std::fill(next, next + S, kNegInf);
    std::fill(acc, acc + classes_, kNegInf);
    const double* a = alpha_ + last * S;
    next[S - 1] = Lp(last, ext_[S - 1]);
    acc[ext_[S - 1]] = a[S - 1] + next[S - 1];
    if (S > 1) {
      next[S - 2] = Lp(last, ext_[S - 2]);
      acc[ext_[S - 2]] = a[S - 2] + next[S - 2];
    }
    WriteGradRow(last, nll, scale, acc, grad);
    // Labels that occur once in the target take their one state's term.
    for (int64_t t = last - 1; t >= 0; --t) {
      a = alpha_ + t * S;
      Gather(t);
      simd::CtcLogSumExp3(next, next + 1, next + 2, skip_back_, lpx_, S, cur);
      for (int64_t s = 0; s < S; ++s) ab[s] = a[s] + cur[s];
      std::fill(acc, acc + classes_, kNegInf);
      acc[ext_[0]] = BlankSum(ab);
      // PyTorch sums a class's states from the last one down: the first term
      // is assigned, later ones log-added.
      for (int64_t s = S - 2; s >= 1; s -= 2) {
        double& sum = acc[ext_[s]];
        sum = sum == kNegInf ? ab[s] : LogSumExp2(sum, ab[s]);
      }
      WriteGradRow(t, nll, scale, acc, grad);
      std::swap(cur, next);
    }
  }

 private:
  // lp[ext[s]] of frame t into lpx_.
  void Gather(int64_t t) {
    const F* lp = Frame(t);
    for (int64_t s = 0; s < states_; ++s) lpx_[s] = static_cast<double>(lp[ext_[s]]);
  }

  // log(sum over the blank states (even s) of exp(ab[s])) with the rules of
  // PyTorch's fold of LogSumExp2 over them, in which -inf terms change
  // nothing: no other term gives -inf, one gives itself (+inf and NaN
  // included), several give NaN if one is NaN or +inf. Several finite
  // terms are summed relative to the largest in one pass (the fold's
  // rounding differs by ULPs).
  double BlankSum(const double* ab) {
    const int64_t S = states_;
    double m = kNegInf, only = kNegInf;
    int64_t k = 0, finite_or_special = 0;
    bool bad = false;
    for (int64_t s = 0; s < S; s += 2) {
      const double v = ab[s];
      if (v == kNegInf) continue;
      ++finite_or_special;
      only = v;
      if (std::isnan(v) || v == kInf) {
        bad = true;
        continue;
      }
      m = std::max(m, v);
      padded_[k++] = v;
    }
    if (finite_or_special == 0) return kNegInf;
    if (finite_or_special == 1) return only;
    if (bad) return std::numeric_limits<double>::quiet_NaN();
    return std::log(simd::SumExpRelative(padded_, k, m)) + m;
  }

 private:
  const F* Frame(int64_t t) const { return x_ + t * row_stride_; }
  double Lp(int64_t t, int64_t c) const { return static_cast<double>(Frame(t)[c]); }

  void WriteGradRow(int64_t t, double nll, double scale, const double* acc, F* grad) const {
    simd::CtcGradRow(Frame(t), acc, classes_, nll, scale, grad + t * row_stride_);
  }

  const F* x_;
  int64_t row_stride_;
  int64_t classes_;
  int64_t frames_;  // input length
  int64_t states_;  // 2 * target length + 1
  int64_t* ext_;    // the extended label sequence
  double* alpha_;   // frames_ x states_
  double* padded_ = nullptr;
  double* lpx_ = nullptr;
  double* skip_ = nullptr;
  double* skip_back_ = nullptr;
};

template <typename F>
void CtcKernel(const LossRequest& r, const CtcOptions& o, const LossPlan& plan, F* loss, F* grad,
               const ComputeContext& ctx) {
  const CtcProblem p = *CheckCtc(r, o);
  const F* x = r.input.data_as<F>();
  const bool none = r.reduction == Reduction::kNone;
  const bool mean = r.reduction == Reduction::kMean;
  const Upstream<F> up = UpstreamOf<F>(r, plan);
  const absl::InlinedVector<int64_t, 16> offsets = LabelOffsets(p);
  const size_t states = static_cast<size_t>(2 * p.max_target_length + 1);
  const int64_t row_stride = p.batch * p.classes;
  // Samples [begin, end), each with its own alignment table.
  const auto chunk = [&](int64_t begin, int64_t end) {
    absl::InlinedVector<int64_t, 64> ext(states);
    // Tables of up to 4096 cells (32 KiB) live on the stack.
    absl::InlinedVector<double, 4096> alpha(static_cast<size_t>(p.max_alpha_cells));
    absl::InlinedVector<double, 256> work(4 * (states + 2));
    absl::InlinedVector<double, 64> beta, beta_next, row, ab;
    if (grad) {
      beta.resize(states + 2);
      beta_next.resize(states + 2);
      ab.resize(states);
      row.resize(static_cast<size_t>(p.classes));
    }
    double sum = 0;
    for (int64_t b = begin; b < end; ++b) {
      const int64_t tl = p.TargetLength(b);
      // PyTorch's mean divides each loss by its target length clamped at 1.
      const double mean_divisor = static_cast<double>(std::max<int64_t>(tl, 1));
      CtcSample<F> sample(x, b, p, offsets[b], ext.data(), alpha.data(), work.data());
      const double nll = sample.Forward();
      const bool zeroed = o.zero_infinity && nll == kInf;
      const double lb = zeroed ? 0.0 : nll;
      if (none) {
        loss[b] = static_cast<F>(lb);
      } else {
        sum += mean ? lb / mean_divisor : lb;
      }
      if (!grad) continue;
      F* g = grad + b * p.classes;
      if (!zeroed) {
        F go = 0;
        const F* per = up.per_element.Get(b, 1, &go);
        double scale = per ? static_cast<double>(*per)
                           : (r.grad_output ? FloatAt<double>(*r.grad_output, 0) : 1.0);
        if (mean) scale = scale / static_cast<double>(p.batch) / mean_divisor;
        sample.Backward(nll, scale, g, beta.data(), beta_next.data(), row.data(), ab.data());
      }
      // Frames past the input length, or every frame of a zeroed infinite loss.
      for (int64_t t = zeroed ? 0 : p.InputLength(b); t < p.time; ++t) {
        std::fill(g + t * row_stride, g + t * row_stride + p.classes, F(0));
      }
    }
    return sum;
  };
  // A chunk is whole samples, about kGrain alignment cells' worth.
  const int64_t per_chunk = UnitsPerChunk(std::max<int64_t>(p.max_alpha_cells, p.classes));
  const double sum = RunChunks<double>(ctx, p.batch, per_chunk, none, chunk);
  if (none) return;
  loss[0] = static_cast<F>(mean ? sum / static_cast<double>(p.batch) : sum);
}

}  // namespace

// torch.nn.CTCLoss (PyTorch 1.13, CPU kernel): -log p(target | log_probs),
// summed over every alignment, per sample.
//  * input is log_probs (T, N, C) or unbatched (T, C); it is not normalised
//    here, and the gradient is PyTorch's log_probs.grad,
//    grad_out * (exp(lp) - exp(log(sum alpha beta) + nll - lp)), which treats
//    log_probs as free inputs (no log_softmax Jacobian). Frames past a
//    sample's input length get 0.
//  * target: labels (N, S) padded (only the first target_lengths[b] of row b
//    are read, the padding may hold anything) or 1-D concatenated, whose
//    length must equal sum(target_lengths). Unbatched: (S) concatenated
//    (S == target_length) or (1, S) padded, as PyTorch reads them.
//  * input_lengths / target_lengths: INT64 or INT32 of shape (N); () or (1)
//    unbatched. Input lengths must be in [1, T]: PyTorch accepts 0 but reads
//    outside its alpha table (a garbage loss), so 0 is INVALID_ARGUMENT here.
//    Labels in use must be in [0, C) and differ from the blank, and target
//    lengths must be >= 0; PyTorch checks neither (it computes a meaningless
//    loss), nor does it refuse floating targets or lengths (it casts them);
//    all of these are INVALID_ARGUMENT here.
//  * Quirk kept: mean is mean_b(loss_b / max(target_length_b, 1)), PyTorch
//    clamps target lengths at 1, so an empty target counts its full loss.
//    sum is the plain sum; none is (N), or () unbatched. N = 0: mean is NaN.
//  * An impossible alignment (target too long for the input, counting a blank
//    between repeated labels) gives loss +inf and, as in PyTorch, a NaN
//    gradient on the sample's frames t < input_length (-inf + inf in the
//    formula above). With zero_infinity the loss and every gradient of that
//    sample are 0 (only +inf is zeroed; a NaN loss stays NaN). A -inf
//    log-probability of a class gets a NaN gradient the same way
//    (exp(-inf + nll + inf)), as in PyTorch.
//  * Computed in double for float32 too (PyTorch's float32 kernel runs in
//    float and drifts by more than 1e-5 relative over ~50 frames; this
//    matches the float64 result of the same inputs); the alpha table of one sample at a
//    time (input_length * (2 target_length + 1) doubles, at most 2^26 cells,
//    and 2^30 summed over the batch, else RESOURCE_EXHAUSTED) and two frames
//    of beta.
absl::StatusOr<LossPlan> Check(const LossRequest& r, const CtcOptions& o) {
  LOSS_ASSIGN_OR_RETURN(const CtcProblem p, CheckCtc(r, o));
  LossPlan plan = PlanFor(r, p.loss_shape);
  plan.divisor = static_cast<double>(p.batch);
  return plan;
}

void Compute(const LossRequest& r, const CtcOptions& o, const LossPlan& plan, void* loss,
             void* grad, const ComputeContext& ctx) {
  DispatchFloat(plan.dtype, [&]<typename F>() {
    CtcKernel<F>(r, o, plan, static_cast<F*>(loss), static_cast<F*>(grad), ctx);
  });
}

}  // namespace lossservice::internal
