// EvaluateRequest / ActivateRequest -> core requests.
#ifndef LOSSSERVICE_SERVER_REQUEST_CODEC_H_
#define LOSSSERVICE_SERVER_REQUEST_CODEC_H_

#include "absl/status/statusor.h"
#include "core/activation.h"
#include "core/loss.h"
#include "lossservice/v1/loss_service.pb.h"
#include "server/tensor_codec.h"

namespace lossservice {

/// Validates the envelope (tensors, enums, which loss) and builds the core
/// request; its views point into `request` and `decoder`. Loss-specific
/// checks (shapes, domains) are the core's.
absl::StatusOr<LossRequest> ToCoreRequest(const v1::EvaluateRequest& request,
                                          TensorDecoder& decoder);

absl::StatusOr<ActivationRequest> ToCoreRequest(const v1::ActivateRequest& request,
                                                TensorDecoder& decoder);

/// The name of the loss set in `request` ("cross_entropy"), or "none".
std::string LossName(const v1::EvaluateRequest& request);

}  // namespace lossservice

#endif  // LOSSSERVICE_SERVER_REQUEST_CODEC_H_
