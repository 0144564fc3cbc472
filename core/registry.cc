// The table of losses: what ListLosses reports and what EvaluateLoss checks
// reductions against.
#include <type_traits>

#include "core/loss.h"

namespace lossservice {
namespace {

constexpr Reduction kMean = Reduction::kMean;
constexpr Reduction kSum = Reduction::kSum;
constexpr Reduction kNone = Reduction::kNone;
constexpr Reduction kBatchMean = Reduction::kBatchMean;

constexpr absl::string_view kSameShapeTarget =
    "FLOAT32 or FLOAT64, exactly the input's shape (never broadcast)";

// Indexed by LossOptions::index(); the order of the EvaluateRequest oneof.
const std::vector<LossInfo>& Table() {
  static const auto* table = new std::vector<LossInfo>{
      {"mse", 10, "FLOAT32 or FLOAT64 predictions, any shape", kSameShapeTarget, {},
       {kMean, kSum, kNone}, true},
      {"l1", 11, "FLOAT32 or FLOAT64 predictions, any shape", kSameShapeTarget, {},
       {kMean, kSum, kNone}, true},
      {"rmse", 12, "FLOAT32 or FLOAT64 predictions, any shape", kSameShapeTarget,
       {"eps = 1e-07"}, {kMean}, true},
      {"huber", 13, "FLOAT32 or FLOAT64 predictions, any shape", kSameShapeTarget,
       {"delta = 1.0 (> 0)"}, {kMean, kSum, kNone}, true},
      {"smooth_l1", 14, "FLOAT32 or FLOAT64 predictions, any shape", kSameShapeTarget,
       {"beta = 1.0 (>= 0; 0 is L1)"}, {kMean, kSum, kNone}, true},
      {"cross_entropy", 15, "logits, " "FLOAT32 or FLOAT64 of shape (C), (N, C) or (N, C, d1, ...)",
       "class indices INT64 or INT32 of shape (), (N) or (N, d1, ...) in [0, C) or "
       "ignore_index; or class probabilities FLOAT32 or FLOAT64 of the input's shape",
       {"weight = none (FLOAT32/FLOAT64, shape (C))", "ignore_index = -100",
        "label_smoothing = 0.0 (in [0, 1])"},
       {kMean, kSum, kNone}, true},
      {"nll", 16, "log-probabilities, FLOAT32 or FLOAT64 of shape (C), (N, C) or (N, C, d1, ...)",
       "class indices INT64 or INT32 of shape (), (N) or (N, d1, ...) in [0, C) or ignore_index",
       {"weight = none (FLOAT32/FLOAT64, shape (C))", "ignore_index = -100"},
       {kMean, kSum, kNone}, true},
      {"bce", 17, "probabilities in [0, 1], FLOAT32 or FLOAT64, any shape",
       "FLOAT32 or FLOAT64 in [0, 1], exactly the input's shape",
       {"weight = none (broadcastable to the input)"}, {kMean, kSum, kNone}, true},
      {"bce_with_logits", 18, "logits, FLOAT32 or FLOAT64, any shape",
       "FLOAT32 or FLOAT64 probabilities, exactly the input's shape",
       {"weight = none (broadcastable to the input)",
        "pos_weight = none (broadcastable to the input along the last dimension, e.g. (C))"},
       {kMean, kSum, kNone}, true},
      {"kl_div", 19, "log-probabilities, FLOAT32 or FLOAT64, any shape",
       "FLOAT32 or FLOAT64 probabilities (log-probabilities with log_target), exactly the "
       "input's shape",
       {"log_target = false"}, {kMean, kSum, kNone, kBatchMean}, true},
      {"poisson_nll", 20, "rates (log-rates with log_input), FLOAT32 or FLOAT64, any shape",
       "FLOAT32 or FLOAT64 counts, exactly the input's shape",
       {"log_input = true", "full = false", "eps = 1e-08"}, {kMean, kSum, kNone}, true},
      {"gaussian_nll", 21, "means, FLOAT32 or FLOAT64, any shape",
       "FLOAT32 or FLOAT64 samples, exactly the input's shape",
       {"var = required (FLOAT32/FLOAT64 >= 0 of the input's shape, the input's shape without "
        "its last dimension, or that with a last dimension of 1)",
        "full = false", "eps = 1e-06"},
       {kMean, kSum, kNone}, true},
      {"soft_margin", 22, "FLOAT32 or FLOAT64, any shape",
       "FLOAT32 or FLOAT64 of +1 / -1, exactly the input's shape", {}, {kMean, kSum, kNone},
       true},
      {"multilabel_soft_margin", 23,
       "FLOAT32 or FLOAT64 scores of shape (N, C) or (C) (any rank >= 1: the last dimension "
       "holds the C classes)",
       "FLOAT32 or FLOAT64 labels, 0 / 1 (or soft, in [0, 1]), exactly the input's shape",
       {"weight = none (FLOAT32/FLOAT64, shape (C))"}, {kMean, kSum, kNone}, true},
      {"multi_margin", 24,
       "FLOAT32 or FLOAT64 scores of shape (N, C) or (C), C > 0 (() counts as one class)",
       "class indices INT64 or INT32 in [0, C), one per sample: shape (N), or () or (1) "
       "unbatched",
       {"p = 1 (1 or 2)", "margin = 1.0", "weight = none (FLOAT32/FLOAT64, shape (C))"},
       {kMean, kSum, kNone}, true},
      {"multilabel_margin", 25,
       "FLOAT32 or FLOAT64 scores of shape (N, C) or (C), C > 0 (() counts as one class)",
       "class indices INT64 or INT32 of the input's shape: each row's labels, ended by the "
       "first -1; every value in [-1, C), also after the -1",
       {}, {kMean, kSum, kNone}, true},
      {"hinge_embedding", 26, "FLOAT32 or FLOAT64 distances, any shape",
       "FLOAT32 or FLOAT64 of +1 / -1 (any other value adds both terms, as in PyTorch), "
       "exactly the input's shape",
       {"margin = 1.0"}, {kMean, kSum, kNone}, true},
      {"margin_ranking", 27, "FLOAT32 or FLOAT64 scores of shape (N) or ()",
       "FLOAT32 or FLOAT64 of +1 / -1, exactly the input's shape",
       {"input2 = required (FLOAT32/FLOAT64, the input's shape)", "margin = 0.0"},
       {kMean, kSum, kNone}, true},
      {"cosine_embedding", 28, "FLOAT32 or FLOAT64 embeddings of shape (N, D) or (D)",
       "+1 / -1 (FLOAT32, FLOAT64, INT64 or INT32), shape (N) or (); other values give 0",
       {"input2 = required (the input's shape)", "margin = 0.0"}, {kMean, kSum, kNone}, true},
      {"triplet_margin", 29,
       "the anchor, FLOAT32 or FLOAT64 of shape (N, D) or (D) (any rank: the last dimension "
       "holds the D features)",
       "none: no target may be set",
       {"positive = required (the input's shape)", "negative = required (the input's shape)",
        "margin = 1.0", "p = 2.0 (any value; 0 and +-inf included)", "eps = 1e-06",
        "swap = false"},
       {kMean, kSum, kNone}, true},
      {"ctc", 30,
       "log_probs, FLOAT32 or FLOAT64 of shape (T, N, C) or unbatched (T, C); not normalised "
       "here",
       "labels INT64 or INT32 in [0, C) other than blank: (N, S) padded (S >= every target "
       "length; padding not read) or (sum(target_lengths)) concatenated; unbatched (S) or (1, S)",
       {"input_lengths = required (INT64/INT32, shape (N), or () or (1) unbatched; each in "
        "[1, T])",
        "target_lengths = required (INT64/INT32, shape (N), or () or (1) unbatched; each >= 0)",
        "blank = 0", "zero_infinity = false"},
       {kMean, kSum, kNone}, true},
  };
  return *table;
}

}  // namespace

absl::Span<const LossInfo> AllLosses() { return Table(); }

const LossInfo& InfoFor(const LossOptions& options) { return Table()[options.index()]; }

static_assert(std::variant_size_v<LossOptions> == 21, "one table row per loss");

}  // namespace lossservice
