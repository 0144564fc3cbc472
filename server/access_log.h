// The access log: one line per call (and one per request of a stream) with
// the request id, the loss, the shapes, the status, the duration and the
// bytes. Never tensor values, and never a client mistake's message (it can
// quote an offending value, such as a class index): the client has the
// message, and the request id ties the two together.
//
// Levels: server faults (INTERNAL, UNKNOWN, DATA_LOSS) at error, with their
// message; everything else (successes, client mistakes, refusals) at debug,
// so that a busy server, or a client that keeps sending bad requests, does
// not flood the log at the default level. Refusals at the in-flight limit
// and without a token are summed up at warn at most once a second.
#ifndef LOSSSERVICE_SERVER_ACCESS_LOG_H_
#define LOSSSERVICE_SERVER_ACCESS_LOG_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/status.h"
#include "server/logging.h"
#include "server/metrics.h"

namespace lossservice {

/// What one call, or one request of a stream, did.
struct AccessRecord {
  Method method = Method::kUnknown;
  uint8_t loss = LossLabel::kNone;
  grpc::StatusCode code = grpc::StatusCode::OK;
  /// The status message; logged for server faults only.
  absl::string_view message{};
  absl::string_view request_id{};
  /// Dtypes and shapes, e.g. "FLOAT32[16,4]"; empty when not known.
  absl::string_view input{}, target{};
  absl::Duration duration{};
  size_t request_bytes = 0, response_bytes = 0;
  /// For the end of a stream: how many requests it answered; -1 otherwise.
  int64_t answered = -1;
  /// The call's, for the peer's address.
  const grpc::ServerContextBase* context = nullptr;
};

/// The level of a call that ended with `code`.
inline spdlog::level::level_enum AccessLevel(grpc::StatusCode code) {
  return code == grpc::StatusCode::INTERNAL || code == grpc::StatusCode::UNKNOWN ||
                 code == grpc::StatusCode::DATA_LOSS
             ? spdlog::level::err
             : spdlog::level::debug;
}

/// Whether a call that ended with `code` is logged (a level check: calls
/// whose line the level filters out cost nothing more).
inline bool AccessLogged(grpc::StatusCode code) {
  return AccessLog().should_log(AccessLevel(code));
}

/// Logs `r` if its level is on.
void LogAccess(const AccessRecord& r);

}  // namespace lossservice

#endif  // LOSSSERVICE_SERVER_ACCESS_LOG_H_
