// The server's logs: spdlog's loggers, in text or in JSON (one object per
// line), with gRPC's and Protobuf's own messages routed through them, and
// the access log (one line per call, server/access_log.h).
#ifndef LOSSSERVICE_SERVER_LOGGING_H_
#define LOSSSERVICE_SERVER_LOGGING_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "spdlog/spdlog.h"

namespace lossservice {

/// Sets every logger's level ("trace", "debug", "info", "warn", "error",
/// "critical" or "off") and format ("text": spdlog's pattern; "json": one
/// JSON object per line with "time" (UTC, RFC 3339), "level", "logger" and
/// "msg", and the access log's fields), and routes gRPC's and Protobuf's
/// messages into them. INVALID_ARGUMENT for an unknown level or format.
absl::Status ConfigureLogging(absl::string_view level, absl::string_view format);

/// Whether lines are JSON objects.
bool JsonLogs();

/// The access log: the logger named "access". In JSON its messages are the
/// fields of the line's object ("key":value,...), spliced in as they are.
spdlog::logger& AccessLog();

/// Appends `s` as a JSON string (quoted and escaped; bytes that are not
/// UTF-8 text are escaped as \u00XX).
void AppendJsonString(absl::string_view s, std::string* out);

/// `s` for a text line: control characters escaped (a client's request id
/// cannot start a line of its own), at most `max` bytes of it.
std::string Printable(absl::string_view s, size_t max = 128);

}  // namespace lossservice

#endif  // LOSSSERVICE_SERVER_LOGGING_H_
