#include "server/request_codec.h"

#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace lossservice {
namespace {

// Decodes an optional option tensor named "<loss>.<field>".
class OptionTensors {
 public:
  OptionTensors(TensorDecoder& decoder, absl::string_view loss) : decoder_(decoder), loss_(loss) {}

  template <typename Message>
  std::optional<TensorView> Get(bool present, const Message& t, absl::string_view field) {
    if (!present || !status_.ok()) return std::nullopt;
    absl::StatusOr<TensorView> v = decoder_.Decode(t, absl::StrCat(loss_, ".", field));
    if (!v.ok()) {
      status_ = v.status();
      return std::nullopt;
    }
    return *v;
  }
  const absl::Status& status() const { return status_; }

 private:
  TensorDecoder& decoder_;
  absl::string_view loss_;
  absl::Status status_;
};

absl::StatusOr<Reduction> ToCore(v1::Reduction r) {
  switch (r) {
    case v1::REDUCTION_UNSPECIFIED:
    case v1::REDUCTION_MEAN: return Reduction::kMean;
    case v1::REDUCTION_SUM: return Reduction::kSum;
    case v1::REDUCTION_NONE: return Reduction::kNone;
    case v1::REDUCTION_BATCHMEAN: return Reduction::kBatchMean;
    default:
      return absl::InvalidArgumentError(absl::StrCat("reduction: unknown value ",
                                                     static_cast<int>(r)));
  }
}

// The core options for the loss the oneof selects.
LossOptions ToCoreOptions(const v1::EvaluateRequest& q, OptionTensors& t) {
  switch (q.loss_case()) {
    case v1::EvaluateRequest::kMse: return MseOptions{};
    case v1::EvaluateRequest::kL1: return L1Options{};
    case v1::EvaluateRequest::kRmse: {
      RmseOptions o;
      if (q.rmse().has_eps()) o.eps = q.rmse().eps();
      return o;
    }
    case v1::EvaluateRequest::kHuber: {
      HuberOptions o;
      if (q.huber().has_delta()) o.delta = q.huber().delta();
      return o;
    }
    case v1::EvaluateRequest::kSmoothL1: {
      SmoothL1Options o;
      if (q.smooth_l1().has_beta()) o.beta = q.smooth_l1().beta();
      return o;
    }
    case v1::EvaluateRequest::kCrossEntropy: {
      const auto& p = q.cross_entropy();
      CrossEntropyOptions o;
      o.weight = t.Get(p.has_weight(), p.weight(), "weight");
      if (p.has_ignore_index()) o.ignore_index = p.ignore_index();
      o.label_smoothing = p.label_smoothing();
      return o;
    }
    case v1::EvaluateRequest::kNll: {
      const auto& p = q.nll();
      NllOptions o;
      o.weight = t.Get(p.has_weight(), p.weight(), "weight");
      if (p.has_ignore_index()) o.ignore_index = p.ignore_index();
      return o;
    }
    case v1::EvaluateRequest::kBce: {
      BceOptions o;
      o.weight = t.Get(q.bce().has_weight(), q.bce().weight(), "weight");
      return o;
    }
    case v1::EvaluateRequest::kBceWithLogits: {
      const auto& p = q.bce_with_logits();
      BceWithLogitsOptions o;
      o.weight = t.Get(p.has_weight(), p.weight(), "weight");
      o.pos_weight = t.Get(p.has_pos_weight(), p.pos_weight(), "pos_weight");
      return o;
    }
    case v1::EvaluateRequest::kKlDiv: return KlDivOptions{q.kl_div().log_target()};
    case v1::EvaluateRequest::kPoissonNll: {
      const auto& p = q.poisson_nll();
      PoissonNllOptions o;
      if (p.has_log_input()) o.log_input = p.log_input();
      o.full = p.full();
      if (p.has_eps()) o.eps = p.eps();
      return o;
    }
    case v1::EvaluateRequest::kGaussianNll: {
      const auto& p = q.gaussian_nll();
      GaussianNllOptions o;
      o.var = t.Get(p.has_var(), p.var(), "var");
      o.full = p.full();
      if (p.has_eps()) o.eps = p.eps();
      return o;
    }
    case v1::EvaluateRequest::kSoftMargin: return SoftMarginOptions{};
    case v1::EvaluateRequest::kMultilabelSoftMargin: {
      const auto& p = q.multilabel_soft_margin();
      return MultiLabelSoftMarginOptions{t.Get(p.has_weight(), p.weight(), "weight")};
    }
    case v1::EvaluateRequest::kMultiMargin: {
      const auto& p = q.multi_margin();
      MultiMarginOptions o;
      if (p.has_p()) o.p = p.p();
      if (p.has_margin()) o.margin = p.margin();
      o.weight = t.Get(p.has_weight(), p.weight(), "weight");
      return o;
    }
    case v1::EvaluateRequest::kMultilabelMargin: return MultiLabelMarginOptions{};
    case v1::EvaluateRequest::kHingeEmbedding: {
      HingeEmbeddingOptions o;
      if (q.hinge_embedding().has_margin()) o.margin = q.hinge_embedding().margin();
      return o;
    }
    case v1::EvaluateRequest::kMarginRanking: {
      const auto& p = q.margin_ranking();
      return MarginRankingOptions{t.Get(p.has_input2(), p.input2(), "input2"), p.margin()};
    }
    case v1::EvaluateRequest::kCosineEmbedding: {
      const auto& p = q.cosine_embedding();
      return CosineEmbeddingOptions{t.Get(p.has_input2(), p.input2(), "input2"), p.margin()};
    }
    case v1::EvaluateRequest::kTripletMargin: {
      const auto& p = q.triplet_margin();
      TripletMarginOptions o;
      o.positive = t.Get(p.has_positive(), p.positive(), "positive");
      o.negative = t.Get(p.has_negative(), p.negative(), "negative");
      if (p.has_margin()) o.margin = p.margin();
      if (p.has_p()) o.p = p.p();
      if (p.has_eps()) o.eps = p.eps();
      o.swap = p.swap();
      return o;
    }
    case v1::EvaluateRequest::kCtc: {
      const auto& p = q.ctc();
      CtcOptions o;
      o.input_lengths = t.Get(p.has_input_lengths(), p.input_lengths(), "input_lengths");
      o.target_lengths = t.Get(p.has_target_lengths(), p.target_lengths(), "target_lengths");
      o.blank = p.blank();
      o.zero_infinity = p.zero_infinity();
      return o;
    }
    case v1::EvaluateRequest::LOSS_NOT_SET: break;
  }
  return MseOptions{};  // unreachable: LOSS_NOT_SET is refused before.
}

}  // namespace

std::string LossName(const v1::EvaluateRequest& request) {
  if (request.loss_case() == v1::EvaluateRequest::LOSS_NOT_SET) return "none";
  const auto* field =
      v1::EvaluateRequest::descriptor()->FindFieldByNumber(static_cast<int>(request.loss_case()));
  return field ? field->name() : "unknown";
}

absl::StatusOr<LossRequest> ToCoreRequest(const v1::EvaluateRequest& q, TensorDecoder& decoder) {
  if (q.loss_case() == v1::EvaluateRequest::LOSS_NOT_SET) {
    std::vector<absl::string_view> names;
    for (const LossInfo& info : AllLosses()) names.push_back(info.name);
    return absl::InvalidArgumentError(absl::StrCat(
        "loss: no loss set; set one of ", absl::StrJoin(names, ", "), " (see ListLosses)"));
  }
  LossRequest r;
  absl::StatusOr<Reduction> reduction = ToCore(q.reduction());
  if (!reduction.ok()) return reduction.status();
  r.reduction = *reduction;
  r.compute_grad = q.compute_grad();
  if (!q.has_input()) return absl::InvalidArgumentError("input is required");
  absl::StatusOr<TensorView> input = decoder.Decode(q.input(), "input");
  if (!input.ok()) return input.status();
  r.input = *std::move(input);
  if (q.has_target()) {
    absl::StatusOr<TensorView> target = decoder.Decode(q.target(), "target");
    if (!target.ok()) return target.status();
    r.target = *std::move(target);
  }
  if (q.has_grad_output()) {
    absl::StatusOr<TensorView> go = decoder.Decode(q.grad_output(), "grad_output");
    if (!go.ok()) return go.status();
    r.grad_output = *std::move(go);
  }
  const std::string loss_name = LossName(q);
  OptionTensors tensors(decoder, loss_name);
  r.options = ToCoreOptions(q, tensors);
  if (!tensors.status().ok()) return tensors.status();
  return r;
}

absl::StatusOr<ActivationRequest> ToCoreRequest(const v1::ActivateRequest& q,
                                                TensorDecoder& decoder) {
  ActivationRequest r;
  switch (q.activation()) {
    case v1::ACTIVATION_SIGMOID: r.activation = Activation::kSigmoid; break;
    case v1::ACTIVATION_SOFTMAX: r.activation = Activation::kSoftmax; break;
    case v1::ACTIVATION_LOG_SOFTMAX: r.activation = Activation::kLogSoftmax; break;
    case v1::ACTIVATION_LOGIT: r.activation = Activation::kLogit; break;
    case v1::ACTIVATION_UNSPECIFIED:
      return absl::InvalidArgumentError(
          "activation: not set; choose SIGMOID, SOFTMAX, LOG_SOFTMAX or LOGIT");
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("activation: unknown value ", static_cast<int>(q.activation())));
  }
  if (!q.has_input()) return absl::InvalidArgumentError("input is required");
  absl::StatusOr<TensorView> input = decoder.Decode(q.input(), "input");
  if (!input.ok()) return input.status();
  r.input = *std::move(input);
  if (q.has_dim()) r.dim = q.dim();
  if (q.has_eps()) r.eps = q.eps();
  return r;
}

}  // namespace lossservice
