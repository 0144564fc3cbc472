// lossservice::Client: PyTorch's loss functions called over gRPC from C++.
//
//   lossservice::Client client("localhost:50051");
//   std::vector<float> logits = {0.1f, 2.0f, -1.0f, 0.5f, 0.5f, 0.0f};
//   std::vector<int64_t> labels = {1, 0};
//   absl::StatusOr<lossservice::LossResult> r = client.CrossEntropy(
//       lossservice::View(logits, {2, 3}), lossservice::View(labels), {}, {.grad = true});
//   if (r.ok()) std::cout << r->item() << "\n";   // r->grad: d(loss)/d(logits)
//
// Tensors go in as views of the caller's memory (the core's TensorView; see
// View()) and come back as the core's Tensor. Options are the core's option
// structs, with torch.nn's defaults. Every call returns absl::Status on
// failure: the gRPC code and message, and the request id (RequestIdOf()).
#ifndef LOSSSERVICE_CLIENT_CLIENT_H_
#define LOSSSERVICE_CLIENT_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/activation.h"
#include "core/loss.h"
#include "core/tensor.h"
#include "lossservice/v1/loss_service.grpc.pb.h"

namespace grpc {
class Channel;
class ClientContext;
}  // namespace grpc

namespace lossservice {

/// How a Client connects and what every call carries.
struct ClientOptions {
  /// Deadline of each call (a call may override it); zero: none.
  std::chrono::milliseconds timeout{30000};
  /// TLS; without it the channel is plaintext.
  bool tls = false;
  /// PEM certificates that verify the server; empty: gRPC's default roots
  /// (GRPC_DEFAULT_SSL_ROOTS_FILE_PATH or the system's).
  std::string root_certificates{};
  /// PEM private key and certificate chain of the client, for servers that
  /// require mutual TLS. Both or neither.
  std::string private_key{};
  std::string certificate_chain{};
  /// The name the server's certificate must carry, when it is not the host
  /// of the address (e.g. connecting to an IP address).
  std::string tls_server_name{};
  /// Sent as `authorization: Bearer <token>` on every call; empty: none.
  std::string token{};
  /// Largest message sent and received, in bytes (gRPC's own receive default
  /// is 4 MiB, less than a 2M-float gradient).
  int max_message_bytes = 64 << 20;
  /// Retry calls that fail with UNAVAILABLE: up to 5 attempts, backoff from
  /// 0.1 s doubling to at most 2 s (kRetryServiceConfig, the channel's service
  /// config).
  bool retry_unavailable = true;
  /// A service config of your own (JSON) instead of kRetryServiceConfig, e.g.
  /// round_robin over a headless Service; retries are enabled with it.
  std::string service_config{};
};

/// The service config of every channel a Client opens when
/// retry_unavailable is set.
extern const char kRetryServiceConfig[];

/// What every evaluation may set besides the loss's own options.
struct EvaluateOptions {
  Reduction reduction = Reduction::kMean;
  /// Also return d(loss)/d(input).
  bool grad = false;
  /// Upstream gradient, shaped like the loss; default ones.
  std::optional<TensorView> grad_output{};
  /// Echoed by the server and logged; empty: a random one.
  std::string request_id{};
  /// This call's deadline; default ClientOptions::timeout.
  std::optional<std::chrono::milliseconds> timeout{};
};

/// One evaluation's answer.
struct LossResult {
  /// The input's dtype; shape [] unless the reduction is kNone.
  Tensor loss{};
  /// d(loss)/d(input), when asked: the input's shape and dtype.
  std::optional<Tensor> grad{};
  std::string request_id{};

  /// The loss as a double; NaN unless it holds exactly one element.
  double item() const;
};

/// A view of caller memory as a 1-d tensor, or with `shape`. The memory must
/// outlive the call. If `shape` does not hold exactly values.size()
/// elements, the view holds no data and a call given it fails with
/// INVALID_ARGUMENT.
TensorView View(std::span<const float> values);
TensorView View(std::span<const double> values);
TensorView View(std::span<const int64_t> values);
TensorView View(std::span<const int32_t> values);
TensorView View(std::span<const float> values, Shape shape);
TensorView View(std::span<const double> values, Shape shape);
TensorView View(std::span<const int64_t> values, Shape shape);
TensorView View(std::span<const int32_t> values, Shape shape);

/// The request id carried by a status a Client returned ("" if none).
std::string RequestIdOf(const absl::Status& status);
/// The payload type URL under which a status carries its request id.
inline constexpr char kRequestIdPayload[] = "type.lossservice.dev/request_id";

/// A connection to a lossservice server. Thread-safe; calls may run
/// concurrently. The channel connects lazily and reconnects by itself.
class Client {
 public:
  explicit Client(std::string address, ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // --- every loss, named after torch.nn.functional ---
  // The tensors torch takes positionally are arguments; the rest of the
  // loss's options are the core's option struct (its tensor fields that are
  // arguments here are ignored).

  absl::StatusOr<LossResult> MseLoss(TensorView input, TensorView target,
                                     const EvaluateOptions& call = {});
  absl::StatusOr<LossResult> L1Loss(TensorView input, TensorView target,
                                    const EvaluateOptions& call = {});
  /// sqrt(mse + eps); kMean only.
  absl::StatusOr<LossResult> RmseLoss(TensorView input, TensorView target,
                                      const RmseOptions& options = {},
                                      const EvaluateOptions& call = {});
  absl::StatusOr<LossResult> HuberLoss(TensorView input, TensorView target,
                                       const HuberOptions& options = {},
                                       const EvaluateOptions& call = {});
  absl::StatusOr<LossResult> SmoothL1Loss(TensorView input, TensorView target,
                                          const SmoothL1Options& options = {},
                                          const EvaluateOptions& call = {});
  absl::StatusOr<LossResult> CrossEntropy(TensorView input, TensorView target,
                                          const CrossEntropyOptions& options = {},
                                          const EvaluateOptions& call = {});
  absl::StatusOr<LossResult> NllLoss(TensorView input, TensorView target,
                                     const NllOptions& options = {},
                                     const EvaluateOptions& call = {});
  absl::StatusOr<LossResult> BinaryCrossEntropy(TensorView input, TensorView target,
                                                const BceOptions& options = {},
                                                const EvaluateOptions& call = {});
  absl::StatusOr<LossResult> BinaryCrossEntropyWithLogits(TensorView input, TensorView target,
                                                          const BceWithLogitsOptions& options = {},
                                                          const EvaluateOptions& call = {});
  absl::StatusOr<LossResult> KlDiv(TensorView input, TensorView target,
                                   const KlDivOptions& options = {},
                                   const EvaluateOptions& call = {});
  absl::StatusOr<LossResult> PoissonNllLoss(TensorView input, TensorView target,
                                            const PoissonNllOptions& options = {},
                                            const EvaluateOptions& call = {});
  absl::StatusOr<LossResult> GaussianNllLoss(TensorView input, TensorView target, TensorView var,
                                             const GaussianNllOptions& options = {},
                                             const EvaluateOptions& call = {});
  absl::StatusOr<LossResult> SoftMarginLoss(TensorView input, TensorView target,
                                            const EvaluateOptions& call = {});
  absl::StatusOr<LossResult> MultilabelSoftMarginLoss(
      TensorView input, TensorView target, const MultiLabelSoftMarginOptions& options = {},
      const EvaluateOptions& call = {});
  absl::StatusOr<LossResult> MultiMarginLoss(TensorView input, TensorView target,
                                             const MultiMarginOptions& options = {},
                                             const EvaluateOptions& call = {});
  absl::StatusOr<LossResult> MultilabelMarginLoss(TensorView input, TensorView target,
                                                  const EvaluateOptions& call = {});
  absl::StatusOr<LossResult> HingeEmbeddingLoss(TensorView input, TensorView target,
                                                const HingeEmbeddingOptions& options = {},
                                                const EvaluateOptions& call = {});
  absl::StatusOr<LossResult> MarginRankingLoss(TensorView input1, TensorView input2,
                                               TensorView target,
                                               const MarginRankingOptions& options = {},
                                               const EvaluateOptions& call = {});
  absl::StatusOr<LossResult> CosineEmbeddingLoss(TensorView input1, TensorView input2,
                                                 TensorView target,
                                                 const CosineEmbeddingOptions& options = {},
                                                 const EvaluateOptions& call = {});
  /// No target: the gradient is d(loss)/d(anchor).
  absl::StatusOr<LossResult> TripletMarginLoss(TensorView anchor, TensorView positive,
                                               TensorView negative,
                                               const TripletMarginOptions& options = {},
                                               const EvaluateOptions& call = {});
  absl::StatusOr<LossResult> CtcLoss(TensorView log_probs, TensorView targets,
                                     TensorView input_lengths, TensorView target_lengths,
                                     const CtcOptions& options = {},
                                     const EvaluateOptions& call = {});

  // --- activations: the input's shape and dtype ---

  absl::StatusOr<Tensor> Sigmoid(TensorView input);
  absl::StatusOr<Tensor> Softmax(TensorView input, int64_t dim = -1);
  absl::StatusOr<Tensor> LogSoftmax(TensorView input, int64_t dim = -1);
  /// log(p / (1 - p)), with p clamped to [eps, 1 - eps] when eps is set.
  absl::StatusOr<Tensor> Logit(TensorView input, std::optional<double> eps = std::nullopt);

  // --- general forms ---

  /// Any loss, as the core takes it (request.options selects the loss;
  /// request.reduction, compute_grad and grad_output apply; `call`'s
  /// reduction, grad and grad_output are not used).
  absl::StatusOr<LossResult> Evaluate(const LossRequest& request, const EvaluateOptions& call = {});
  absl::StatusOr<Tensor> Activate(const ActivationRequest& request);

  /// Many evaluations over one EvaluateStream, answered in order. The outer
  /// status fails if the stream does; an inner one if that request did (the
  /// stream goes on). Request ids are generated for every request.
  absl::StatusOr<std::vector<absl::StatusOr<LossResult>>> EvaluateMany(
      std::span<const LossRequest> requests,
      std::optional<std::chrono::milliseconds> timeout = std::nullopt);

  /// The proto messages as they are, for callers that build them.
  absl::StatusOr<v1::EvaluateResponse> Evaluate(const v1::EvaluateRequest& request);
  absl::StatusOr<v1::ActivateResponse> Activate(const v1::ActivateRequest& request);
  absl::StatusOr<v1::ListLossesResponse> ListLosses();

  /// grpc.health.v1.Health/Check: "SERVING", "NOT_SERVING", "UNKNOWN" or
  /// "SERVICE_UNKNOWN" for `service` ("" is the whole server).
  absl::StatusOr<std::string> Health(absl::string_view service = "");

  const std::string& address() const { return address_; }
  const ClientOptions& options() const { return options_; }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

 private:
  /// Sets the deadline and the token of one call.
  void Prepare(grpc::ClientContext& context,
               std::optional<std::chrono::milliseconds> timeout) const;

  std::string address_;
  ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::LossService::Stub> stub_;
};

/// The gRPC channel a Client with these options uses.
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address,
                                           const ClientOptions& options);

/// Proto <-> core conversions the client uses, for callers that mix the two.
/// ToProto copies the values into raw_data (little-endian), dtype set.
absl::StatusOr<v1::Tensor> ToProto(const TensorView& view, absl::string_view field);
/// Any encoding the contract allows; checks the element count.
absl::StatusOr<Tensor> FromProto(const v1::Tensor& tensor, absl::string_view field);
/// The EvaluateRequest of a core request (tensors as raw_data).
absl::StatusOr<v1::EvaluateRequest> ToProto(const LossRequest& request);

}  // namespace lossservice

#endif  // LOSSSERVICE_CLIENT_CLIENT_H_
