#include "server/request_codec.h"

#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

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

// The options of one loss from its message in the oneof: every OptionField
// of `Options` reads the loss message's field of the same name. A field with
// presence (optional, or a message) sets the option only when present;
// others always do (their proto defaults are the options' defaults).
template <class Options>
LossOptions ToOptions(const google::protobuf::Message& m, OptionTensors& t) {
  Options o;
  const google::protobuf::Descriptor* d = m.GetDescriptor();
  const google::protobuf::Reflection* refl = m.GetReflection();
  ForEachOptionField<Options>([&](const auto& option) {
    const google::protobuf::FieldDescriptor* f = d->FindFieldByName(std::string(option.name));
    if (f == nullptr) return;  // tests/options_proto_test pins that none is missing
    auto& dst = o.*option.member;
    using Member = std::decay_t<decltype(dst)>;
    if constexpr (std::is_same_v<Member, std::optional<TensorView>>) {
      const bool present = refl->HasField(m, f);
      dst = t.Get(present, static_cast<const v1::Tensor&>(refl->GetMessage(m, f)), option.name);
    } else {
      if (f->has_presence() && !refl->HasField(m, f)) return;
      if constexpr (std::is_same_v<Member, bool>) {
        dst = refl->GetBool(m, f);
      } else if constexpr (std::is_same_v<Member, int64_t>) {
        dst = refl->GetInt64(m, f);
      } else {
        dst = refl->GetDouble(m, f);
      }
    }
  });
  return o;
}

// The core options for the loss the oneof selects (LOSSSERVICE_FOR_EACH_LOSS).
LossOptions ToCoreOptions(const v1::EvaluateRequest& q, OptionTensors& t) {
  const google::protobuf::FieldDescriptor* field =
      q.GetDescriptor()->FindFieldByNumber(static_cast<int>(q.loss_case()));
  if (field == nullptr) return MseOptions{};  // unreachable: LOSS_NOT_SET is refused before.
  const google::protobuf::Message& m = q.GetReflection()->GetMessage(q, field);
  switch (static_cast<int>(q.loss_case())) {
#define LOSSSERVICE_TO_OPTIONS_(name, Camel, number) \
  case number:                                      \
    return ToOptions<Camel##Options>(m, t);
    LOSSSERVICE_FOR_EACH_LOSS(LOSSSERVICE_TO_OPTIONS_)
#undef LOSSSERVICE_TO_OPTIONS_
  }
  return MseOptions{};
}

}  // namespace

std::string LossName(const v1::EvaluateRequest& request) {
  switch (static_cast<int>(request.loss_case())) {
    case v1::EvaluateRequest::LOSS_NOT_SET: return "none";
#define LOSSSERVICE_LOSS_NAME_(name, Camel, number) \
  case number:                                     \
    return #name;
    LOSSSERVICE_FOR_EACH_LOSS(LOSSSERVICE_LOSS_NAME_)
#undef LOSSSERVICE_LOSS_NAME_
  }
  return "unknown";
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
