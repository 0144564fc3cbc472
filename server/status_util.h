// The one place that turns core statuses into gRPC statuses.
#ifndef LOSSSERVICE_SERVER_STATUS_UTIL_H_
#define LOSSSERVICE_SERVER_STATUS_UTIL_H_

#include <cstddef>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace lossservice {

/// Longest error message sent to a client; longer ones are cut with "...".
inline constexpr size_t kMaxErrorMessage = 1024;

/// Same code (absl and gRPC share the numbering), message capped at
/// kMaxErrorMessage.
grpc::Status ToGrpcStatus(const absl::Status& status);

/// The canonical name of a gRPC code, e.g. "INVALID_ARGUMENT".
const char* StatusCodeName(grpc::StatusCode code);

}  // namespace lossservice

#endif  // LOSSSERVICE_SERVER_STATUS_UTIL_H_
