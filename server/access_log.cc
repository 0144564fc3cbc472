#include "server/access_log.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "server/status_util.h"

namespace lossservice {
namespace {

bool ShowsMessage(grpc::StatusCode code) {
  return AccessLevel(code) == spdlog::level::err;
}

std::string TextLine(const AccessRecord& r, const std::string& peer) {
  std::string line(MethodName(r.method));
  if (r.method == Method::kUnknown) line = "unknown method";
  if (!r.request_id.empty()) absl::StrAppend(&line, " id=", Printable(r.request_id));
  if (r.loss != LossLabel::kNone) absl::StrAppend(&line, " loss=", LossLabel::Name(r.loss));
  if (!r.input.empty()) absl::StrAppend(&line, " input=", r.input);
  if (!r.target.empty()) absl::StrAppend(&line, " target=", r.target);
  absl::StrAppend(&line, " -> ", StatusCodeName(r.code), " in ",
                  absl::ToInt64Microseconds(r.duration), "us");
  if (r.answered >= 0) absl::StrAppend(&line, ", ", r.answered, " requests answered");
  if (r.request_bytes || r.response_bytes) {
    absl::StrAppend(&line, ", ", r.request_bytes, " B in, ", r.response_bytes, " B out");
  }
  if (!peer.empty()) absl::StrAppend(&line, ", peer ", peer);
  if (ShowsMessage(r.code) && !r.message.empty()) {
    absl::StrAppend(&line, ": ", Printable(r.message, 1024));
  }
  return line;
}

void Field(absl::string_view key, absl::string_view value, std::string* out) {
  absl::StrAppend(out, ",\"", key, "\":");
  AppendJsonString(value, out);
}

std::string JsonFields(const AccessRecord& r, const std::string& peer) {
  std::string out = "\"msg\":";
  AppendJsonString(absl::StrCat(MethodName(r.method), " -> ", StatusCodeName(r.code)), &out);
  Field("rpc", MethodName(r.method), &out);
  Field("service", ServiceName(r.method), &out);
  Field("code", StatusCodeName(r.code), &out);
  absl::StrAppend(&out, ",\"duration_us\":", absl::ToInt64Microseconds(r.duration));
  if (!r.request_id.empty()) Field("request_id", r.request_id.substr(0, 128), &out);
  if (r.loss != LossLabel::kNone) Field("loss", LossLabel::Name(r.loss), &out);
  if (!r.input.empty()) Field("input", r.input, &out);
  if (!r.target.empty()) Field("target", r.target, &out);
  if (r.answered >= 0) absl::StrAppend(&out, ",\"answered\":", r.answered);
  if (r.request_bytes || r.response_bytes) {
    absl::StrAppend(&out, ",\"request_bytes\":", r.request_bytes,
                    ",\"response_bytes\":", r.response_bytes);
  }
  if (!peer.empty()) Field("peer", peer, &out);
  if (ShowsMessage(r.code) && !r.message.empty()) Field("error", r.message, &out);
  return out;
}

}  // namespace

void LogAccess(const AccessRecord& r) {
  const spdlog::level::level_enum level = AccessLevel(r.code);
  spdlog::logger& log = AccessLog();
  if (!log.should_log(level)) return;
  const std::string peer = r.context != nullptr ? r.context->peer() : std::string();
  log.log(level, "{}", JsonLogs() ? JsonFields(r, peer) : TextLine(r, peer));
}

}  // namespace lossservice
