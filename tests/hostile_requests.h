// Hostile requests, each with the status it must get: the bad-input battery
// (tests/battery_test.cc) sends them over real channels to a loss_server
// process, and the fuzzers start from them (fuzz/seeds.cc).
#ifndef LOSSSERVICE_TESTS_HOSTILE_REQUESTS_H_
#define LOSSSERVICE_TESTS_HOSTILE_REQUESTS_H_

#include <string>
#include <vector>

#include "grpcpp/support/status_code_enum.h"

namespace lossservice::test {

/// One hostile request: the bytes of one message sent to `method`, and what
/// the server must answer.
struct HostileRequest {
  enum class Method { kEvaluate, kActivate, kListLosses, kEvaluateStream, kUnknown };

  std::string name;
  Method method;
  /// The message's bytes; for kEvaluateStream one item of a stream, which
  /// must get an in-band Error (the stream itself goes on and ends OK).
  std::string bytes;
  grpc::StatusCode code;
  /// A part of the message (the part that names the field, the shape or the
  /// limit).
  std::string message;
};

/// The battery: overflowing shapes, raw_data of odd length, unknown enum
/// values, garbage and truncated bytes, 100,000 nested groups, huge
/// dimensions with no data, NaN and infinite options, every tensor field of
/// the wrong dtype, and more. The server they are sent to must run with
/// --max_message_mb=kHostileMaxMessageMb.
const std::vector<HostileRequest>& HostileRequests();

inline constexpr int kHostileMaxMessageMb = 4;

/// "/lossservice.v1.LossService/Evaluate", ...
std::string MethodPath(HostileRequest::Method method);

}  // namespace lossservice::test

#endif  // LOSSSERVICE_TESTS_HOSTILE_REQUESTS_H_
