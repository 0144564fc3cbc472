// The loss functions of torch.nn (PyTorch 1.13 semantics), on plain tensor
// views. Entry point: EvaluateLoss(), or its two steps PlanLoss() (the check)
// and ComputeLoss() (the computation, which cannot fail).
#ifndef LOSSSERVICE_CORE_LOSS_H_
#define LOSSSERVICE_CORE_LOSS_H_

#include <cstdint>
#include <optional>
#include <tuple>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/loss_list.h"
#include "core/parallel.h"
#include "core/tensor.h"

namespace lossservice {

enum class Reduction : uint8_t { kMean, kSum, kNone, kBatchMean };
absl::string_view ReductionName(Reduction reduction);

/// A set of reductions, one bit per Reduction.
constexpr uint8_t ReductionBit(Reduction r) { return uint8_t{1} << static_cast<int>(r); }
inline constexpr uint8_t kMeanSumNone =
    ReductionBit(Reduction::kMean) | ReductionBit(Reduction::kSum) | ReductionBit(Reduction::kNone);

/// What ListLosses says about a loss's tensors and which reductions it takes.
struct LossDoc {
  absl::string_view input;
  absl::string_view target;
  uint8_t reductions = kMeanSumNone;
};

/// One option of a loss: its name (the proto field's, the golden files'),
/// the member it sets, and how ListLosses describes it after "name = ".
/// Members are double, int64_t, bool or std::optional<TensorView>.
template <class Options, class Member>
struct OptionField {
  absl::string_view name;
  Member Options::*member;
  absl::string_view doc;
};
template <class Options, class Member>
OptionField(absl::string_view, Member Options::*, absl::string_view)
    -> OptionField<Options, Member>;

/// Calls fn(field) for every OptionField of `Options`, in order.
template <class Options, class F>
constexpr void ForEachOptionField(F&& fn) {
  std::apply([&](const auto&... field) { (fn(field), ...); }, Options::Fields());
}

namespace docs {
inline constexpr absl::string_view kAnyShape = "FLOAT32 or FLOAT64 predictions, any shape";
inline constexpr absl::string_view kSameShapeTarget =
    "FLOAT32 or FLOAT64, exactly the input's shape (never broadcast)";
}  // namespace docs

// Options of each loss, with torch.nn's defaults. Optional tensors are
// std::nullopt when not given. Each struct describes itself: kDoc (its
// tensors and reductions) and Fields() (its options).

struct MseOptions {
  static constexpr LossDoc kDoc{docs::kAnyShape, docs::kSameShapeTarget};
  static constexpr auto Fields() { return std::tuple<>(); }
};

struct L1Options {
  static constexpr LossDoc kDoc{docs::kAnyShape, docs::kSameShapeTarget};
  static constexpr auto Fields() { return std::tuple<>(); }
};

struct RmseOptions {
  double eps = 1e-7;
  static constexpr LossDoc kDoc{docs::kAnyShape, docs::kSameShapeTarget,
                                ReductionBit(Reduction::kMean)};
  static constexpr auto Fields() {
    return std::tuple{OptionField{"eps", &RmseOptions::eps, "1e-07"}};
  }
};

struct HuberOptions {
  double delta = 1.0;
  static constexpr LossDoc kDoc{docs::kAnyShape, docs::kSameShapeTarget};
  static constexpr auto Fields() {
    return std::tuple{OptionField{"delta", &HuberOptions::delta, "1.0 (> 0)"}};
  }
};

struct SmoothL1Options {
  double beta = 1.0;
  static constexpr LossDoc kDoc{docs::kAnyShape, docs::kSameShapeTarget};
  static constexpr auto Fields() {
    return std::tuple{OptionField{"beta", &SmoothL1Options::beta, "1.0 (>= 0; 0 is L1)"}};
  }
};

struct CrossEntropyOptions {
  std::optional<TensorView> weight;
  int64_t ignore_index = -100;
  double label_smoothing = 0.0;
  static constexpr LossDoc kDoc{
      "logits, FLOAT32 or FLOAT64 of shape (C), (N, C) or (N, C, d1, ...)",
      "class indices INT64 or INT32 of shape (), (N) or (N, d1, ...) in [0, C) or "
      "ignore_index; or class probabilities FLOAT32 or FLOAT64 of the input's shape"};
  static constexpr auto Fields() {
    return std::tuple{
        OptionField{"weight", &CrossEntropyOptions::weight,
                    "none (FLOAT32/FLOAT64, shape (C))"},
        OptionField{"ignore_index", &CrossEntropyOptions::ignore_index, "-100"},
        OptionField{"label_smoothing", &CrossEntropyOptions::label_smoothing,
                    "0.0 (in [0, 1])"}};
  }
};

struct NllOptions {
  std::optional<TensorView> weight;
  int64_t ignore_index = -100;
  static constexpr LossDoc kDoc{
      "log-probabilities, FLOAT32 or FLOAT64 of shape (C), (N, C) or (N, C, d1, ...)",
      "class indices INT64 or INT32 of shape (), (N) or (N, d1, ...) in [0, C) or "
      "ignore_index"};
  static constexpr auto Fields() {
    return std::tuple{
        OptionField{"weight", &NllOptions::weight, "none (FLOAT32/FLOAT64, shape (C))"},
        OptionField{"ignore_index", &NllOptions::ignore_index, "-100"}};
  }
};

struct BceOptions {
  std::optional<TensorView> weight;
  static constexpr LossDoc kDoc{"probabilities in [0, 1], FLOAT32 or FLOAT64, any shape",
                                "FLOAT32 or FLOAT64 in [0, 1], exactly the input's shape"};
  static constexpr auto Fields() {
    return std::tuple{
        OptionField{"weight", &BceOptions::weight, "none (broadcastable to the input)"}};
  }
};

struct BceWithLogitsOptions {
  std::optional<TensorView> weight;
  std::optional<TensorView> pos_weight;
  static constexpr LossDoc kDoc{"logits, FLOAT32 or FLOAT64, any shape",
                                "FLOAT32 or FLOAT64 probabilities, exactly the input's shape"};
  static constexpr auto Fields() {
    return std::tuple{
        OptionField{"weight", &BceWithLogitsOptions::weight,
                    "none (broadcastable to the input)"},
        OptionField{"pos_weight", &BceWithLogitsOptions::pos_weight,
                    "none (broadcastable to the input along the last dimension, e.g. (C))"}};
  }
};

struct KlDivOptions {
  bool log_target = false;
  static constexpr LossDoc kDoc{
      "log-probabilities, FLOAT32 or FLOAT64, any shape",
      "FLOAT32 or FLOAT64 probabilities (log-probabilities with log_target), exactly the "
      "input's shape",
      kMeanSumNone | ReductionBit(Reduction::kBatchMean)};
  static constexpr auto Fields() {
    return std::tuple{OptionField{"log_target", &KlDivOptions::log_target, "false"}};
  }
};

struct PoissonNllOptions {
  bool log_input = true;
  bool full = false;
  double eps = 1e-8;
  static constexpr LossDoc kDoc{"rates (log-rates with log_input), FLOAT32 or FLOAT64, any shape",
                                "FLOAT32 or FLOAT64 counts, exactly the input's shape"};
  static constexpr auto Fields() {
    return std::tuple{OptionField{"log_input", &PoissonNllOptions::log_input, "true"},
                      OptionField{"full", &PoissonNllOptions::full, "false"},
                      OptionField{"eps", &PoissonNllOptions::eps, "1e-08"}};
  }
};

struct GaussianNllOptions {
  std::optional<TensorView> var;
  bool full = false;
  double eps = 1e-6;
  static constexpr LossDoc kDoc{
      "means, FLOAT32 or FLOAT64, any shape",
      "FLOAT32 or FLOAT64 samples, the input's shape or that with a last dimension of 1 "
      "(broadcast along it, as torch.nn.GaussianNLLLoss documents)"};
  static constexpr auto Fields() {
    return std::tuple{
        OptionField{"var", &GaussianNllOptions::var,
                    "required (FLOAT32/FLOAT64 >= 0 of the input's shape, the input's shape "
                    "without its last dimension, or that with a last dimension of 1)"},
        OptionField{"full", &GaussianNllOptions::full, "false"},
        OptionField{"eps", &GaussianNllOptions::eps, "1e-06"}};
  }
};

struct SoftMarginOptions {
  static constexpr LossDoc kDoc{"FLOAT32 or FLOAT64, any shape",
                                "FLOAT32 or FLOAT64 of +1 / -1, exactly the input's shape"};
  static constexpr auto Fields() { return std::tuple<>(); }
};

struct MultiLabelSoftMarginOptions {
  std::optional<TensorView> weight;
  static constexpr LossDoc kDoc{
      "FLOAT32 or FLOAT64 scores of shape (N, C) or (C) (any rank >= 1: the last dimension "
      "holds the C classes)",
      "FLOAT32 or FLOAT64 labels, 0 / 1 (or soft, in [0, 1]), exactly the input's shape"};
  static constexpr auto Fields() {
    return std::tuple{OptionField{"weight", &MultiLabelSoftMarginOptions::weight,
                                  "none (FLOAT32/FLOAT64, shape (C))"}};
  }
};

struct MultiMarginOptions {
  int64_t p = 1;
  double margin = 1.0;
  std::optional<TensorView> weight;
  static constexpr LossDoc kDoc{
      "FLOAT32 or FLOAT64 scores of shape (N, C) or (C), C > 0 (() counts as one class)",
      "class indices INT64 or INT32 in [0, C), one per sample: shape (N), or () or (1) "
      "unbatched"};
  static constexpr auto Fields() {
    return std::tuple{OptionField{"p", &MultiMarginOptions::p, "1 (1 or 2)"},
                      OptionField{"margin", &MultiMarginOptions::margin, "1.0"},
                      OptionField{"weight", &MultiMarginOptions::weight,
                                  "none (FLOAT32/FLOAT64, shape (C))"}};
  }
};

struct MultiLabelMarginOptions {
  static constexpr LossDoc kDoc{
      "FLOAT32 or FLOAT64 scores of shape (N, C) or (C), C > 0 (() counts as one class)",
      "class indices INT64 or INT32 of the input's shape: each row's labels, ended by the "
      "first -1; every value in [-1, C), also after the -1"};
  static constexpr auto Fields() { return std::tuple<>(); }
};

struct HingeEmbeddingOptions {
  double margin = 1.0;
  static constexpr LossDoc kDoc{
      "FLOAT32 or FLOAT64 distances, any shape",
      "FLOAT32 or FLOAT64 of +1 / -1 (any other value adds both terms, as in PyTorch), "
      "exactly the input's shape"};
  static constexpr auto Fields() {
    return std::tuple{OptionField{"margin", &HingeEmbeddingOptions::margin, "1.0"}};
  }
};

struct MarginRankingOptions {
  std::optional<TensorView> input2;
  double margin = 0.0;
  static constexpr LossDoc kDoc{"FLOAT32 or FLOAT64 scores, any shape (e.g. (N))",
                                "FLOAT32 or FLOAT64 of +1 / -1, exactly the input's shape"};
  static constexpr auto Fields() {
    return std::tuple{OptionField{"input2", &MarginRankingOptions::input2,
                                  "required (FLOAT32/FLOAT64, the input's shape)"},
                      OptionField{"margin", &MarginRankingOptions::margin, "0.0"}};
  }
};

struct CosineEmbeddingOptions {
  std::optional<TensorView> input2;
  double margin = 0.0;
  static constexpr LossDoc kDoc{
      "FLOAT32 or FLOAT64 embeddings of shape (N, D) or (D)",
      "+1 / -1 (FLOAT32, FLOAT64, INT64 or INT32), shape (N) or (); other values give 0"};
  static constexpr auto Fields() {
    return std::tuple{OptionField{"input2", &CosineEmbeddingOptions::input2,
                                  "required (the input's shape)"},
                      OptionField{"margin", &CosineEmbeddingOptions::margin, "0.0"}};
  }
};

struct TripletMarginOptions {
  std::optional<TensorView> positive;
  std::optional<TensorView> negative;
  double margin = 1.0;
  double p = 2.0;
  double eps = 1e-6;
  bool swap = false;
  static constexpr LossDoc kDoc{
      "the anchor, FLOAT32 or FLOAT64 of shape (N, D) or (D) (any rank: the last dimension "
      "holds the D features)",
      "none: no target may be set"};
  static constexpr auto Fields() {
    return std::tuple{
        OptionField{"positive", &TripletMarginOptions::positive, "required (the input's shape)"},
        OptionField{"negative", &TripletMarginOptions::negative, "required (the input's shape)"},
        OptionField{"margin", &TripletMarginOptions::margin, "1.0"},
        OptionField{"p", &TripletMarginOptions::p, "2.0 (any value; 0 and +-inf included)"},
        OptionField{"eps", &TripletMarginOptions::eps, "1e-06"},
        OptionField{"swap", &TripletMarginOptions::swap, "false"}};
  }
};

struct CtcOptions {
  std::optional<TensorView> input_lengths;
  std::optional<TensorView> target_lengths;
  int64_t blank = 0;
  bool zero_infinity = false;
  static constexpr LossDoc kDoc{
      "log_probs, FLOAT32 or FLOAT64 of shape (T, N, C) or unbatched (T, C); not normalised "
      "here",
      "labels INT64 or INT32 in [0, C) other than blank: (N, S) padded (S >= every target "
      "length; padding not read) or (sum(target_lengths)) concatenated; unbatched (S) or "
      "(1, S)"};
  static constexpr auto Fields() {
    return std::tuple{
        OptionField{"input_lengths", &CtcOptions::input_lengths,
                    "required (INT64/INT32, shape (N), or () or (1) unbatched; each in [1, T])"},
        OptionField{"target_lengths", &CtcOptions::target_lengths,
                    "required (INT64/INT32, shape (N), or () or (1) unbatched; each >= 0)"},
        OptionField{"blank", &CtcOptions::blank, "0"},
        OptionField{"zero_infinity", &CtcOptions::zero_infinity, "false"}};
  }
};

namespace internal {
template <class First, class... Rest>
struct VariantOfRest {
  using type = std::variant<Rest...>;
};
}  // namespace internal

/// The options of one loss; the alternative selects the loss. In the order
/// of LOSSSERVICE_FOR_EACH_LOSS, the order of the EvaluateRequest oneof.
#define LOSSSERVICE_COMMA_OPTIONS_(name, Camel, number) , Camel##Options
using LossOptions = internal::VariantOfRest<
    void LOSSSERVICE_FOR_EACH_LOSS(LOSSSERVICE_COMMA_OPTIONS_)>::type;
#undef LOSSSERVICE_COMMA_OPTIONS_

/// One loss evaluation.
struct LossRequest {
  TensorView input;                      ///< FLOAT32 or FLOAT64
  std::optional<TensorView> target;      ///< absent only for triplet_margin
  Reduction reduction = Reduction::kMean;
  bool compute_grad = false;
  std::optional<TensorView> grad_output;  ///< shaped like the loss; default 1
  LossOptions options;
};

/// What the check step learns from a valid request: the shapes of the
/// outputs and what the compute step needs besides the request itself.
struct LossPlan {
  DType dtype = DType::kFloat32;  ///< the input's, the loss's and the gradient's
  Shape loss_shape;               ///< [] unless the reduction is kNone
  bool compute_grad = false;      ///< the gradient has the input's shape
  double divisor = 1;             ///< mean: the sum is divided by this
  int64_t group = 1;              ///< gaussian_nll: input elements per var element
};

/// The check step: validates `request` (shapes, dtypes, options, domains) and
/// returns its plan. Client mistakes are InvalidArgument naming the field and
/// the shapes; work limits (ctc, multilabel_margin) are ResourceExhausted.
/// Builds no string and allocates nothing for a valid request of ordinary
/// rank.
absl::StatusOr<LossPlan> PlanLoss(const LossRequest& request);

/// The compute step, which cannot fail: writes the loss (plan.loss_shape) to
/// `loss` and, when plan.compute_grad, the gradient with respect to the input
/// (the input's shape) to `grad`, both of plan.dtype. `request` must be the
/// one `plan` was made from. Inputs larger than a fixed chunk are split into
/// fixed-size chunks across `ctx.pool`, whose partial results are combined
/// in a fixed order: the bytes written do not depend on the number of
/// threads. Once `ctx.ShouldStop()` the chunks not yet started are skipped
/// and the outputs are incomplete (the caller checks ctx.ShouldStop()
/// afterwards and discards them).
void ComputeLoss(const LossRequest& request, const LossPlan& plan, void* loss, void* grad,
                 const ComputeContext& ctx = {});

/// PlanLoss, then the outputs from `out` (nothing is allocated on error),
/// then ComputeLoss.
absl::Status EvaluateLoss(const LossRequest& request, OutputAllocator& out,
                          const ComputeContext& ctx = {});

/// What a client needs to know to call one loss (ListLosses).
struct LossInfo {
  absl::string_view name;  ///< the EvaluateRequest oneof field name
  int field_number;       ///< its number in EvaluateRequest.loss
  absl::string_view input;
  absl::string_view target;
  std::vector<absl::string_view> options;  ///< "ignore_index = -100"
  std::vector<Reduction> reductions;
  bool has_grad;
};

/// Every loss of the contract, in field-number order.
absl::Span<const LossInfo> AllLosses();
/// The entry for the loss that `options` selects.
const LossInfo& InfoFor(const LossOptions& options);

}  // namespace lossservice

#endif  // LOSSSERVICE_CORE_LOSS_H_
