#include "client/client.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <future>
#include <limits>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>

#include "absl/random/random.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/status_macros.h"
#include "google/protobuf/io/coded_stream.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/channel_arguments.h"

namespace lossservice {

static_assert(std::endian::native == std::endian::little,
              "raw_data is little-endian; this client copies memory as it is");

const char kRetryServiceConfig[] = R"json({
  "methodConfig": [{
    "name": [{"service": "lossservice.v1.LossService"}],
    "retryPolicy": {
      "maxAttempts": 5,
      "initialBackoff": "0.1s",
      "maxBackoff": "2s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
})json";

namespace {

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

template <typename T>
constexpr DType DTypeOf() {
  if constexpr (std::is_same_v<T, float>) return DType::kFloat32;
  if constexpr (std::is_same_v<T, double>) return DType::kFloat64;
  if constexpr (std::is_same_v<T, int64_t>) return DType::kInt64;
  if constexpr (std::is_same_v<T, int32_t>) return DType::kInt32;
}

// The product of the dimensions; nullopt if one is negative or it overflows.
std::optional<int64_t> CheckedNumElements(absl::Span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || (d > 0 && n > std::numeric_limits<int64_t>::max() / d)) return std::nullopt;
    n *= d;
  }
  return n;
}

template <typename T>
TensorView MakeView(std::span<const T> values, Shape shape) {
  TensorView view{DTypeOf<T>(), std::move(shape), values.data()};
  // A shape that does not match is refused when the view is sent.
  if (CheckedNumElements(view.shape) != static_cast<int64_t>(values.size())) view.data = nullptr;
  return view;
}

// The proto values of the core's enums, indexed by the core value.
constexpr v1::DataType kProtoDType[] = {v1::DATA_TYPE_FLOAT32, v1::DATA_TYPE_FLOAT64,
                                        v1::DATA_TYPE_INT64, v1::DATA_TYPE_INT32};
constexpr v1::Reduction kProtoReduction[] = {v1::REDUCTION_MEAN, v1::REDUCTION_SUM,
                                             v1::REDUCTION_NONE, v1::REDUCTION_BATCHMEAN};
constexpr v1::Activation kProtoActivation[] = {v1::ACTIVATION_SIGMOID, v1::ACTIVATION_SOFTMAX,
                                               v1::ACTIVATION_LOG_SOFTMAX, v1::ACTIVATION_LOGIT};
static_assert(static_cast<int>(DType::kInt32) == 3 &&
              static_cast<int>(Reduction::kBatchMean) == 3 &&
              static_cast<int>(Activation::kLogit) == 3);

v1::DataType ProtoDType(DType d) { return kProtoDType[static_cast<int>(d)]; }
v1::Reduction ProtoReduction(Reduction r) { return kProtoReduction[static_cast<int>(r)]; }
v1::Activation ProtoActivation(Activation a) { return kProtoActivation[static_cast<int>(a)]; }

std::string NewRequestId() {
  thread_local absl::BitGen gen;
  return absl::StrFormat("%016x", absl::Uniform<uint64_t>(gen));
}

absl::Status WithRequestId(absl::Status status, const std::string& request_id) {
  if (!request_id.empty()) status.SetPayload(kRequestIdPayload, absl::Cord(request_id));
  return status;
}

absl::Status FromGrpc(const grpc::Status& status, const std::string& request_id = "") {
  return WithRequestId(
      absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message()),
      request_id);
}

// Sets an optional tensor field of a loss message; `mutable_field` is called
// only when the tensor is given, so that an absent one stays unset.
template <typename MutableField>
absl::Status SetTensor(const std::optional<TensorView>& view, absl::string_view field,
                       MutableField mutable_field) {
  if (!view) return absl::OkStatus();
  LOSS_CLIENT_ASSIGN_OR_RETURN(*mutable_field(), ToProto(*view, field));
  return absl::OkStatus();
}

absl::Status SetLoss(const LossOptions& options, v1::EvaluateRequest& q) {
  return std::visit(
      Overloaded{
          [&](const MseOptions&) {
            q.mutable_mse();
            return absl::OkStatus();
          },
          [&](const L1Options&) {
            q.mutable_l1();
            return absl::OkStatus();
          },
          [&](const RmseOptions& o) {
            q.mutable_rmse()->set_eps(o.eps);
            return absl::OkStatus();
          },
          [&](const HuberOptions& o) {
            q.mutable_huber()->set_delta(o.delta);
            return absl::OkStatus();
          },
          [&](const SmoothL1Options& o) {
            q.mutable_smooth_l1()->set_beta(o.beta);
            return absl::OkStatus();
          },
          [&](const CrossEntropyOptions& o) {
            v1::CrossEntropyLoss* m = q.mutable_cross_entropy();
            m->set_ignore_index(o.ignore_index);
            m->set_label_smoothing(o.label_smoothing);
            return SetTensor(o.weight, "cross_entropy.weight", [&] { return m->mutable_weight(); });
          },
          [&](const NllOptions& o) {
            v1::NllLoss* m = q.mutable_nll();
            m->set_ignore_index(o.ignore_index);
            return SetTensor(o.weight, "nll.weight", [&] { return m->mutable_weight(); });
          },
          [&](const BceOptions& o) {
            v1::BceLoss* m = q.mutable_bce();
            return SetTensor(o.weight, "bce.weight", [&] { return m->mutable_weight(); });
          },
          [&](const BceWithLogitsOptions& o) {
            v1::BceWithLogitsLoss* m = q.mutable_bce_with_logits();
            LOSS_CLIENT_RETURN_IF_ERROR(
                SetTensor(o.weight, "bce_with_logits.weight", [&] { return m->mutable_weight(); }));
            return SetTensor(o.pos_weight, "bce_with_logits.pos_weight",
                             [&] { return m->mutable_pos_weight(); });
          },
          [&](const KlDivOptions& o) {
            q.mutable_kl_div()->set_log_target(o.log_target);
            return absl::OkStatus();
          },
          [&](const PoissonNllOptions& o) {
            v1::PoissonNllLoss* m = q.mutable_poisson_nll();
            m->set_log_input(o.log_input);
            m->set_full(o.full);
            m->set_eps(o.eps);
            return absl::OkStatus();
          },
          [&](const GaussianNllOptions& o) {
            v1::GaussianNllLoss* m = q.mutable_gaussian_nll();
            m->set_full(o.full);
            m->set_eps(o.eps);
            return SetTensor(o.var, "gaussian_nll.var", [&] { return m->mutable_var(); });
          },
          [&](const SoftMarginOptions&) {
            q.mutable_soft_margin();
            return absl::OkStatus();
          },
          [&](const MultiLabelSoftMarginOptions& o) {
            v1::MultiLabelSoftMarginLoss* m = q.mutable_multilabel_soft_margin();
            return SetTensor(o.weight, "multilabel_soft_margin.weight",
                             [&] { return m->mutable_weight(); });
          },
          [&](const MultiMarginOptions& o) {
            v1::MultiMarginLoss* m = q.mutable_multi_margin();
            m->set_p(o.p);
            m->set_margin(o.margin);
            return SetTensor(o.weight, "multi_margin.weight", [&] { return m->mutable_weight(); });
          },
          [&](const MultiLabelMarginOptions&) {
            q.mutable_multilabel_margin();
            return absl::OkStatus();
          },
          [&](const HingeEmbeddingOptions& o) {
            q.mutable_hinge_embedding()->set_margin(o.margin);
            return absl::OkStatus();
          },
          [&](const MarginRankingOptions& o) {
            v1::MarginRankingLoss* m = q.mutable_margin_ranking();
            m->set_margin(o.margin);
            return SetTensor(o.input2, "margin_ranking.input2",
                             [&] { return m->mutable_input2(); });
          },
          [&](const CosineEmbeddingOptions& o) {
            v1::CosineEmbeddingLoss* m = q.mutable_cosine_embedding();
            m->set_margin(o.margin);
            return SetTensor(o.input2, "cosine_embedding.input2",
                             [&] { return m->mutable_input2(); });
          },
          [&](const TripletMarginOptions& o) {
            v1::TripletMarginLoss* m = q.mutable_triplet_margin();
            m->set_margin(o.margin);
            m->set_p(o.p);
            m->set_eps(o.eps);
            m->set_swap(o.swap);
            LOSS_CLIENT_RETURN_IF_ERROR(SetTensor(o.positive, "triplet_margin.positive",
                                                  [&] { return m->mutable_positive(); }));
            return SetTensor(o.negative, "triplet_margin.negative",
                             [&] { return m->mutable_negative(); });
          },
          [&](const CtcOptions& o) {
            v1::CtcLoss* m = q.mutable_ctc();
            m->set_blank(o.blank);
            m->set_zero_infinity(o.zero_infinity);
            LOSS_CLIENT_RETURN_IF_ERROR(SetTensor(o.input_lengths, "ctc.input_lengths",
                                                  [&] { return m->mutable_input_lengths(); }));
            return SetTensor(o.target_lengths, "ctc.target_lengths",
                             [&] { return m->mutable_target_lengths(); });
          },
      },
      options);
}

absl::StatusOr<LossResult> ToResult(v1::EvaluateResponse& response, bool grad) {
  LossResult result;
  LOSS_CLIENT_ASSIGN_OR_RETURN(result.loss, FromProto(response.loss(), "loss"));
  if (grad) {
    LOSS_CLIENT_ASSIGN_OR_RETURN(result.grad, FromProto(response.grad(), "grad"));
  }
  result.request_id = std::move(*response.mutable_request_id());
  return result;
}

// grpc 1.51 installs no C++ stub for grpc.health.v1, so its two messages are
// encoded by hand:
//   message HealthCheckRequest { string service = 1; }
//   message HealthCheckResponse { ServingStatus status = 1; }
std::string EncodeHealthCheckRequest(absl::string_view service) {
  std::string out;
  if (service.empty()) return out;                 // proto3 omits the default
  out.push_back(static_cast<char>((1 << 3) | 2));  // field 1, length-delimited
  uint64_t n = service.size();
  while (n >= 0x80) {
    out.push_back(static_cast<char>((n & 0x7f) | 0x80));
    n >>= 7;
  }
  out.push_back(static_cast<char>(n));
  out.append(service.data(), service.size());
  return out;
}

// The `status` field of a HealthCheckResponse, or -1 if the bytes do not parse.
int64_t DecodeHealthCheckStatus(const std::string& bytes) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  int64_t status = 0;  // UNKNOWN when absent
  while (uint32_t tag = in.ReadTag()) {
    const uint32_t field = tag >> 3;
    uint64_t varint = 0;
    uint32_t length = 0;
    switch (tag & 7) {
      case 0:
        if (!in.ReadVarint64(&varint)) return -1;
        if (field == 1) status = static_cast<int64_t>(varint);
        break;
      case 1:
        if (!in.Skip(8)) return -1;
        break;
      case 2:
        if (!in.ReadVarint32(&length) || !in.Skip(static_cast<int>(length))) return -1;
        break;
      case 5:
        if (!in.Skip(4)) return -1;
        break;
      default:
        return -1;
    }
  }
  return in.ConsumedEntireMessage() ? status : -1;
}

std::string ServingStatusName(int64_t status) {
  switch (status) {
    case 0:
      return "UNKNOWN";
    case 1:
      return "SERVING";
    case 2:
      return "NOT_SERVING";
    case 3:
      return "SERVICE_UNKNOWN";
    default:
      return absl::StrCat("status ", status);
  }
}

}  // namespace

// --- views, results, statuses ---

TensorView View(std::span<const float> values) {
  return MakeView(values, {static_cast<int64_t>(values.size())});
}
TensorView View(std::span<const double> values) {
  return MakeView(values, {static_cast<int64_t>(values.size())});
}
TensorView View(std::span<const int64_t> values) {
  return MakeView(values, {static_cast<int64_t>(values.size())});
}
TensorView View(std::span<const int32_t> values) {
  return MakeView(values, {static_cast<int64_t>(values.size())});
}
TensorView View(std::span<const float> values, Shape shape) {
  return MakeView(values, std::move(shape));
}
TensorView View(std::span<const double> values, Shape shape) {
  return MakeView(values, std::move(shape));
}
TensorView View(std::span<const int64_t> values, Shape shape) {
  return MakeView(values, std::move(shape));
}
TensorView View(std::span<const int32_t> values, Shape shape) {
  return MakeView(values, std::move(shape));
}

double LossResult::item() const {
  if (loss.numel() != 1) return std::numeric_limits<double>::quiet_NaN();
  return loss.dtype == DType::kFloat32 ? static_cast<double>(*loss.data_as<float>())
                                       : *loss.data_as<double>();
}

std::string RequestIdOf(const absl::Status& status) {
  absl::optional<absl::Cord> id = status.GetPayload(kRequestIdPayload);
  return id ? std::string(*id) : std::string();
}

// --- conversions ---

absl::StatusOr<v1::Tensor> ToProto(const TensorView& view, absl::string_view field) {
  const std::optional<int64_t> count = CheckedNumElements(view.shape);
  if (!count) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": invalid shape ", ShapeString(view.shape)));
  }
  const int64_t n = *count;
  if (n > 0 && view.data == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": no values for shape ", ShapeString(view.shape),
                     " (a View whose number of values differs from its shape holds none)"));
  }
  v1::Tensor t;
  t.mutable_shape()->Add(view.shape.begin(), view.shape.end());
  t.set_dtype(ProtoDType(view.dtype));
  const size_t bytes = static_cast<size_t>(n) * DTypeSize(view.dtype);
  if (bytes > 0) t.set_raw_data(static_cast<const char*>(view.data), bytes);
  return t;
}

absl::StatusOr<Tensor> FromProto(const v1::Tensor& t, absl::string_view field) {
  Tensor out;
  out.shape.assign(t.shape().begin(), t.shape().end());
  const std::optional<int64_t> count = CheckedNumElements(out.shape);
  if (!count) {
    return absl::InternalError(
        absl::StrCat("response ", field, " has an invalid shape ", ShapeString(out.shape)));
  }
  const int64_t n = *count;
  auto fill = [&](DType dtype, const void* data, size_t count) -> absl::Status {
    if (count != static_cast<size_t>(n)) {
      return absl::InternalError(absl::StrCat("response ", field, " holds ", count,
                                              " values for shape ", ShapeString(out.shape)));
    }
    out.dtype = dtype;
    out.bytes.resize(count * DTypeSize(dtype));
    if (count > 0) std::memcpy(out.bytes.data(), data, out.bytes.size());
    return absl::OkStatus();
  };
  absl::Status s;
  if (!t.raw_data().empty() || (n == 0 && t.dtype() != v1::DATA_TYPE_UNSPECIFIED)) {
    DType dtype;
    switch (t.dtype()) {
      case v1::DATA_TYPE_FLOAT32:
        dtype = DType::kFloat32;
        break;
      case v1::DATA_TYPE_FLOAT64:
        dtype = DType::kFloat64;
        break;
      case v1::DATA_TYPE_INT64:
        dtype = DType::kInt64;
        break;
      case v1::DATA_TYPE_INT32:
        dtype = DType::kInt32;
        break;
      default:
        return absl::InternalError(absl::StrCat("response ", field, " has raw_data of dtype ",
                                                v1::DataType_Name(t.dtype())));
    }
    const size_t size = DTypeSize(dtype);
    if (t.raw_data().size() % size != 0) {
      return absl::InternalError(absl::StrCat("response ", field, " has ", t.raw_data().size(),
                                              " raw bytes, not a multiple of ", size));
    }
    s = fill(dtype, t.raw_data().data(), t.raw_data().size() / size);
  } else if (t.float_values_size() > 0) {
    s = fill(DType::kFloat32, t.float_values().data(), t.float_values_size());
  } else if (t.double_values_size() > 0) {
    s = fill(DType::kFloat64, t.double_values().data(), t.double_values_size());
  } else if (t.int64_values_size() > 0) {
    s = fill(DType::kInt64, t.int64_values().data(), t.int64_values_size());
  } else if (t.int32_values_size() > 0) {
    s = fill(DType::kInt32, t.int32_values().data(), t.int32_values_size());
  } else {
    s = fill(DType::kFloat32, nullptr, 0);
  }
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<v1::EvaluateRequest> ToProto(const LossRequest& request) {
  v1::EvaluateRequest q;
  LOSS_CLIENT_ASSIGN_OR_RETURN(*q.mutable_input(), ToProto(request.input, "input"));
  if (request.target) {
    LOSS_CLIENT_ASSIGN_OR_RETURN(*q.mutable_target(), ToProto(*request.target, "target"));
  }
  q.set_reduction(ProtoReduction(request.reduction));
  q.set_compute_grad(request.compute_grad);
  if (request.grad_output) {
    LOSS_CLIENT_ASSIGN_OR_RETURN(*q.mutable_grad_output(),
                                 ToProto(*request.grad_output, "grad_output"));
  }
  LOSS_CLIENT_RETURN_IF_ERROR(SetLoss(request.options, q));
  return q;
}

// --- the channel ---

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address,
                                           const ClientOptions& options) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetMaxSendMessageSize(options.max_message_bytes);
  if (!options.service_config.empty()) {
    args.SetInt(GRPC_ARG_ENABLE_RETRIES, 1);
    args.SetServiceConfigJSON(options.service_config);
  } else if (options.retry_unavailable) {
    args.SetInt(GRPC_ARG_ENABLE_RETRIES, 1);
    args.SetServiceConfigJSON(kRetryServiceConfig);
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (options.tls) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options.root_certificates;
    ssl.pem_private_key = options.private_key;
    ssl.pem_cert_chain = options.certificate_chain;
    credentials = grpc::SslCredentials(ssl);
    if (!options.tls_server_name.empty()) {
      args.SetSslTargetNameOverride(options.tls_server_name);
    }
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  return grpc::CreateCustomChannel(address, credentials, args);
}

// --- Client ---

Client::Client(std::string address, ClientOptions options)
    : address_(std::move(address)),
      options_(std::move(options)),
      channel_(MakeChannel(address_, options_)),
      stub_(v1::LossService::NewStub(channel_)) {}

Client::~Client() = default;

void Client::Prepare(grpc::ClientContext& context,
                     std::optional<std::chrono::milliseconds> timeout) const {
  const std::chrono::milliseconds t = timeout.value_or(options_.timeout);
  if (t.count() > 0) context.set_deadline(std::chrono::system_clock::now() + t);
  if (!options_.token.empty()) {
    context.AddMetadata("authorization", absl::StrCat("Bearer ", options_.token));
  }
}

absl::StatusOr<LossResult> Client::Evaluate(const LossRequest& request,
                                            const EvaluateOptions& call) {
  const std::string request_id = call.request_id.empty() ? NewRequestId() : call.request_id;
  absl::StatusOr<v1::EvaluateRequest> q = ToProto(request);
  if (!q.ok()) return WithRequestId(q.status(), request_id);
  q->set_request_id(request_id);
  grpc::ClientContext context;
  Prepare(context, call.timeout);
  v1::EvaluateResponse response;
  const grpc::Status status = stub_->Evaluate(&context, *q, &response);
  if (!status.ok()) return FromGrpc(status, request_id);
  absl::StatusOr<LossResult> result = ToResult(response, request.compute_grad);
  if (!result.ok()) return WithRequestId(result.status(), request_id);
  return result;
}

absl::StatusOr<Tensor> Client::Activate(const ActivationRequest& request) {
  v1::ActivateRequest q;
  q.set_activation(ProtoActivation(request.activation));
  LOSS_CLIENT_ASSIGN_OR_RETURN(*q.mutable_input(), ToProto(request.input, "input"));
  if (request.activation == Activation::kSoftmax || request.activation == Activation::kLogSoftmax) {
    q.set_dim(request.dim);
  }
  if (request.eps) q.set_eps(*request.eps);
  LOSS_CLIENT_ASSIGN_OR_RETURN(v1::ActivateResponse response, Activate(q));
  return FromProto(response.output(), "output");
}

absl::StatusOr<v1::EvaluateResponse> Client::Evaluate(const v1::EvaluateRequest& request) {
  grpc::ClientContext context;
  Prepare(context, std::nullopt);
  v1::EvaluateResponse response;
  const grpc::Status status = stub_->Evaluate(&context, request, &response);
  if (!status.ok()) return FromGrpc(status, request.request_id());
  return response;
}

absl::StatusOr<v1::ActivateResponse> Client::Activate(const v1::ActivateRequest& request) {
  grpc::ClientContext context;
  Prepare(context, std::nullopt);
  v1::ActivateResponse response;
  const grpc::Status status = stub_->Activate(&context, request, &response);
  if (!status.ok()) return FromGrpc(status);
  return response;
}

absl::StatusOr<v1::ListLossesResponse> Client::ListLosses() {
  grpc::ClientContext context;
  Prepare(context, std::nullopt);
  v1::ListLossesResponse response;
  const grpc::Status status = stub_->ListLosses(&context, v1::ListLossesRequest(), &response);
  if (!status.ok()) return FromGrpc(status);
  return response;
}

absl::StatusOr<std::string> Client::Health(absl::string_view service) {
  grpc::GenericStub stub(channel_);
  grpc::ClientContext context;
  Prepare(context, std::nullopt);
  const std::string request_bytes = EncodeHealthCheckRequest(service);
  grpc::Slice request_slice(request_bytes);
  grpc::ByteBuffer request(&request_slice, 1);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status status) { done.set_value(std::move(status)); });
  const grpc::Status status = done.get_future().get();
  if (!status.ok()) return FromGrpc(status);
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (response.Valid() && response.Dump(&slices).ok()) {
    for (const grpc::Slice& s : slices) {
      bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
  }
  const int64_t serving = DecodeHealthCheckStatus(bytes);
  if (serving < 0) {
    return absl::InternalError("the Health/Check response does not parse as HealthCheckResponse");
  }
  return ServingStatusName(serving);
}

absl::StatusOr<std::vector<absl::StatusOr<LossResult>>> Client::EvaluateMany(
    std::span<const LossRequest> requests, std::optional<std::chrono::milliseconds> timeout) {
  std::vector<absl::StatusOr<LossResult>> results(requests.size(),
                                                  absl::UnknownError("not answered"));
  // Requests that cannot be encoded fail here and are not sent.
  std::vector<v1::EvaluateRequest> sent;
  std::vector<size_t> position;  // of each sent request in `requests`
  for (size_t i = 0; i < requests.size(); ++i) {
    const std::string request_id = NewRequestId();
    absl::StatusOr<v1::EvaluateRequest> q = ToProto(requests[i]);
    if (!q.ok()) {
      results[i] = WithRequestId(q.status(), request_id);
      continue;
    }
    q->set_request_id(request_id);
    sent.push_back(*std::move(q));
    position.push_back(i);
  }
  if (sent.empty()) return results;

  grpc::ClientContext context;
  Prepare(context, timeout);
  std::unique_ptr<grpc::ClientReaderWriter<v1::EvaluateRequest, v1::EvaluateStreamResponse>>
      stream = stub_->EvaluateStream(&context);
  // Write from another thread so that a long stream never waits on responses
  // nobody reads.
  std::thread writer([&] {
    for (const v1::EvaluateRequest& q : sent) {
      if (!stream->Write(q)) return;
    }
    stream->WritesDone();
  });
  size_t answered = 0;
  v1::EvaluateStreamResponse response;
  while (stream->Read(&response)) {
    if (answered == sent.size()) {
      context.TryCancel();
      break;
    }
    const size_t i = position[answered];
    const std::string& request_id = sent[answered].request_id();
    if (response.has_error()) {
      results[i] =
          WithRequestId(absl::Status(static_cast<absl::StatusCode>(response.error().code()),
                                     response.error().message()),
                        request_id);
    } else {
      absl::StatusOr<LossResult> r =
          ToResult(*response.mutable_response(), requests[i].compute_grad);
      results[i] = r.ok() ? std::move(r) : WithRequestId(r.status(), request_id);
    }
    ++answered;
  }
  writer.join();
  const grpc::Status status = stream->Finish();
  if (answered > sent.size()) {
    return absl::InternalError("EvaluateStream answered more responses than requests");
  }
  if (!status.ok()) return FromGrpc(status);
  if (answered != sent.size()) {
    return absl::InternalError(
        absl::StrCat("EvaluateStream answered ", answered, " of ", sent.size(), " requests"));
  }
  return results;
}

// --- the typed calls ---

namespace {

LossRequest Request(TensorView input, std::optional<TensorView> target, LossOptions options,
                    const EvaluateOptions& call) {
  LossRequest r;
  r.input = std::move(input);
  r.target = std::move(target);
  r.reduction = call.reduction;
  r.compute_grad = call.grad;
  r.grad_output = call.grad_output;
  r.options = std::move(options);
  return r;
}

}  // namespace

absl::StatusOr<LossResult> Client::MseLoss(TensorView input, TensorView target,
                                           const EvaluateOptions& call) {
  return Evaluate(Request(input, target, MseOptions{}, call), call);
}
absl::StatusOr<LossResult> Client::L1Loss(TensorView input, TensorView target,
                                          const EvaluateOptions& call) {
  return Evaluate(Request(input, target, L1Options{}, call), call);
}
absl::StatusOr<LossResult> Client::RmseLoss(TensorView input, TensorView target,
                                            const RmseOptions& options,
                                            const EvaluateOptions& call) {
  return Evaluate(Request(input, target, options, call), call);
}
absl::StatusOr<LossResult> Client::HuberLoss(TensorView input, TensorView target,
                                             const HuberOptions& options,
                                             const EvaluateOptions& call) {
  return Evaluate(Request(input, target, options, call), call);
}
absl::StatusOr<LossResult> Client::SmoothL1Loss(TensorView input, TensorView target,
                                                const SmoothL1Options& options,
                                                const EvaluateOptions& call) {
  return Evaluate(Request(input, target, options, call), call);
}
absl::StatusOr<LossResult> Client::CrossEntropy(TensorView input, TensorView target,
                                                const CrossEntropyOptions& options,
                                                const EvaluateOptions& call) {
  return Evaluate(Request(input, target, options, call), call);
}
absl::StatusOr<LossResult> Client::NllLoss(TensorView input, TensorView target,
                                           const NllOptions& options, const EvaluateOptions& call) {
  return Evaluate(Request(input, target, options, call), call);
}
absl::StatusOr<LossResult> Client::BinaryCrossEntropy(TensorView input, TensorView target,
                                                      const BceOptions& options,
                                                      const EvaluateOptions& call) {
  return Evaluate(Request(input, target, options, call), call);
}
absl::StatusOr<LossResult> Client::BinaryCrossEntropyWithLogits(TensorView input, TensorView target,
                                                                const BceWithLogitsOptions& options,
                                                                const EvaluateOptions& call) {
  return Evaluate(Request(input, target, options, call), call);
}
absl::StatusOr<LossResult> Client::KlDiv(TensorView input, TensorView target,
                                         const KlDivOptions& options, const EvaluateOptions& call) {
  return Evaluate(Request(input, target, options, call), call);
}
absl::StatusOr<LossResult> Client::PoissonNllLoss(TensorView input, TensorView target,
                                                  const PoissonNllOptions& options,
                                                  const EvaluateOptions& call) {
  return Evaluate(Request(input, target, options, call), call);
}
absl::StatusOr<LossResult> Client::GaussianNllLoss(TensorView input, TensorView target,
                                                   TensorView var,
                                                   const GaussianNllOptions& options,
                                                   const EvaluateOptions& call) {
  GaussianNllOptions o = options;
  o.var = std::move(var);
  return Evaluate(Request(input, target, o, call), call);
}
absl::StatusOr<LossResult> Client::SoftMarginLoss(TensorView input, TensorView target,
                                                  const EvaluateOptions& call) {
  return Evaluate(Request(input, target, SoftMarginOptions{}, call), call);
}
absl::StatusOr<LossResult> Client::MultilabelSoftMarginLoss(
    TensorView input, TensorView target, const MultiLabelSoftMarginOptions& options,
    const EvaluateOptions& call) {
  return Evaluate(Request(input, target, options, call), call);
}
absl::StatusOr<LossResult> Client::MultiMarginLoss(TensorView input, TensorView target,
                                                   const MultiMarginOptions& options,
                                                   const EvaluateOptions& call) {
  return Evaluate(Request(input, target, options, call), call);
}
absl::StatusOr<LossResult> Client::MultilabelMarginLoss(TensorView input, TensorView target,
                                                        const EvaluateOptions& call) {
  return Evaluate(Request(input, target, MultiLabelMarginOptions{}, call), call);
}
absl::StatusOr<LossResult> Client::HingeEmbeddingLoss(TensorView input, TensorView target,
                                                      const HingeEmbeddingOptions& options,
                                                      const EvaluateOptions& call) {
  return Evaluate(Request(input, target, options, call), call);
}
absl::StatusOr<LossResult> Client::MarginRankingLoss(TensorView input1, TensorView input2,
                                                     TensorView target,
                                                     const MarginRankingOptions& options,
                                                     const EvaluateOptions& call) {
  MarginRankingOptions o = options;
  o.input2 = std::move(input2);
  return Evaluate(Request(input1, target, o, call), call);
}
absl::StatusOr<LossResult> Client::CosineEmbeddingLoss(TensorView input1, TensorView input2,
                                                       TensorView target,
                                                       const CosineEmbeddingOptions& options,
                                                       const EvaluateOptions& call) {
  CosineEmbeddingOptions o = options;
  o.input2 = std::move(input2);
  return Evaluate(Request(input1, target, o, call), call);
}
absl::StatusOr<LossResult> Client::TripletMarginLoss(TensorView anchor, TensorView positive,
                                                     TensorView negative,
                                                     const TripletMarginOptions& options,
                                                     const EvaluateOptions& call) {
  TripletMarginOptions o = options;
  o.positive = std::move(positive);
  o.negative = std::move(negative);
  return Evaluate(Request(anchor, std::nullopt, o, call), call);
}
absl::StatusOr<LossResult> Client::CtcLoss(TensorView log_probs, TensorView targets,
                                           TensorView input_lengths, TensorView target_lengths,
                                           const CtcOptions& options, const EvaluateOptions& call) {
  CtcOptions o = options;
  o.input_lengths = std::move(input_lengths);
  o.target_lengths = std::move(target_lengths);
  return Evaluate(Request(log_probs, targets, o, call), call);
}

namespace {

ActivationRequest MakeActivation(Activation activation, TensorView input, int64_t dim = -1,
                                 std::optional<double> eps = std::nullopt) {
  ActivationRequest r;
  r.activation = activation;
  r.input = std::move(input);
  r.dim = dim;
  r.eps = eps;
  return r;
}

}  // namespace

absl::StatusOr<Tensor> Client::Sigmoid(TensorView input) {
  return Activate(MakeActivation(Activation::kSigmoid, input));
}
absl::StatusOr<Tensor> Client::Softmax(TensorView input, int64_t dim) {
  return Activate(MakeActivation(Activation::kSoftmax, input, dim));
}
absl::StatusOr<Tensor> Client::LogSoftmax(TensorView input, int64_t dim) {
  return Activate(MakeActivation(Activation::kLogSoftmax, input, dim));
}
absl::StatusOr<Tensor> Client::Logit(TensorView input, std::optional<double> eps) {
  return Activate(MakeActivation(Activation::kLogit, input, -1, eps));
}

}  // namespace lossservice
