// The loss functions of torch.nn (PyTorch 1.13 semantics), on plain tensor
// views. Entry point: EvaluateLoss().
#ifndef LOSSSERVICE_CORE_LOSS_H_
#define LOSSSERVICE_CORE_LOSS_H_

#include <cstdint>
#include <optional>
#include "absl/strings/string_view.h"
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "core/parallel.h"
#include "core/tensor.h"

namespace lossservice {

enum class Reduction : uint8_t { kMean, kSum, kNone, kBatchMean };
absl::string_view ReductionName(Reduction reduction);

// Options of each loss, with torch.nn's defaults. Optional tensors are
// std::nullopt when not given.
struct MseOptions {};
struct L1Options {};
struct RmseOptions { double eps = 1e-7; };
struct HuberOptions { double delta = 1.0; };
struct SmoothL1Options { double beta = 1.0; };
struct CrossEntropyOptions {
  std::optional<TensorView> weight;
  int64_t ignore_index = -100;
  double label_smoothing = 0.0;
};
struct NllOptions {
  std::optional<TensorView> weight;
  int64_t ignore_index = -100;
};
struct BceOptions { std::optional<TensorView> weight; };
struct BceWithLogitsOptions {
  std::optional<TensorView> weight;
  std::optional<TensorView> pos_weight;
};
struct KlDivOptions { bool log_target = false; };
struct PoissonNllOptions {
  bool log_input = true;
  bool full = false;
  double eps = 1e-8;
};
struct GaussianNllOptions {
  std::optional<TensorView> var;
  bool full = false;
  double eps = 1e-6;
};
struct SoftMarginOptions {};
struct MultiLabelSoftMarginOptions { std::optional<TensorView> weight; };
struct MultiMarginOptions {
  int64_t p = 1;
  double margin = 1.0;
  std::optional<TensorView> weight;
};
struct MultiLabelMarginOptions {};
struct HingeEmbeddingOptions { double margin = 1.0; };
struct MarginRankingOptions {
  std::optional<TensorView> input2;
  double margin = 0.0;
};
struct CosineEmbeddingOptions {
  std::optional<TensorView> input2;
  double margin = 0.0;
};
struct TripletMarginOptions {
  std::optional<TensorView> positive;
  std::optional<TensorView> negative;
  double margin = 1.0;
  double p = 2.0;
  double eps = 1e-6;
  bool swap = false;
};
struct CtcOptions {
  std::optional<TensorView> input_lengths;
  std::optional<TensorView> target_lengths;
  int64_t blank = 0;
  bool zero_infinity = false;
};

/// The options of one loss; the alternative selects the loss. The order
/// follows the EvaluateRequest oneof.
using LossOptions =
    std::variant<MseOptions, L1Options, RmseOptions, HuberOptions, SmoothL1Options,
                 CrossEntropyOptions, NllOptions, BceOptions, BceWithLogitsOptions,
                 KlDivOptions, PoissonNllOptions, GaussianNllOptions, SoftMarginOptions,
                 MultiLabelSoftMarginOptions, MultiMarginOptions, MultiLabelMarginOptions,
                 HingeEmbeddingOptions, MarginRankingOptions, CosineEmbeddingOptions,
                 TripletMarginOptions, CtcOptions>;

/// One loss evaluation.
struct LossRequest {
  TensorView input;                      ///< FLOAT32 or FLOAT64
  std::optional<TensorView> target;      ///< absent only for triplet_margin
  Reduction reduction = Reduction::kMean;
  bool compute_grad = false;
  std::optional<TensorView> grad_output;  ///< shaped like the loss; default 1
  LossOptions options;
};

/// Validates `request` (shapes, dtypes, options, domains) and, only if it is
/// valid, writes the loss (the input's dtype; shape [] unless the reduction
/// is kNone) and, when asked, the gradient with respect to the input into
/// `out`. Client mistakes are InvalidArgument naming the field and shapes.
/// Large inputs are split across `ctx.pool`; once `ctx.ShouldStop()` the
/// remaining work is skipped and the outputs are incomplete (the caller
/// checks ctx.ShouldStop() afterwards and discards them).
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
