#include "server/logging.h"

#include <atomic>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "google/protobuf/stubs/logging.h"
#include "grpc/support/log.h"
#include "spdlog/pattern_formatter.h"

namespace lossservice {
namespace {

std::atomic<bool> json_logs{false};

constexpr char kAccessLogger[] = "access";

// {"time":"2024-05-01T12:00:00.123456Z","level":"info","logger":"grpc","msg":"..."}
// The access logger's payload is its own fields, spliced in.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string line = "{\"time\":\"";
    line += absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::FromChrono(msg.time),
                             absl::UTCTimeZone());
    line += "\",\"level\":\"";
    const spdlog::string_view_t level = spdlog::level::to_string_view(msg.level);
    line.append(level.data(), level.size());
    line += '"';
    const absl::string_view logger(msg.logger_name.data(), msg.logger_name.size());
    const absl::string_view payload(msg.payload.data(), msg.payload.size());
    if (!logger.empty()) {
      line += ",\"logger\":";
      AppendJsonString(logger, &line);
    }
    if (logger == kAccessLogger) {
      line += ',';
      line.append(payload.data(), payload.size());
    } else {
      line += ",\"msg\":";
      AppendJsonString(payload, &line);
    }
    line += "}\n";
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

// gRPC's own messages (GRPC_VERBOSITY decides which reach here; ERROR by
// default). gRPC logs a client's failed TLS handshake or a reset
// connection as an error: they are the peers' doing, so they come out as
// warnings.
void GrpcLog(gpr_log_func_args* args) {
  spdlog::level::level_enum level = spdlog::level::debug;
  if (args->severity == GPR_LOG_SEVERITY_ERROR) {
    level = spdlog::level::warn;
  } else if (args->severity == GPR_LOG_SEVERITY_INFO) {
    level = spdlog::level::info;
  }
  spdlog::log(level, "grpc {}:{}: {}", args->file, args->line, args->message);
}

// Protobuf logs an error for each string field of a request that is not
// UTF-8: the request is refused with INVALID_ARGUMENT saying so, and the
// client's mistake is no server error.
void ProtobufLog(google::protobuf::LogLevel level, const char* file, int line,
                 const std::string& message) {
  if (level >= google::protobuf::LOGLEVEL_FATAL) {
    spdlog::critical("protobuf {}:{}: {}", file, line, message);
  } else {
    spdlog::debug("protobuf {}:{}: {}", file, line, message);
  }
}

}  // namespace

absl::Status ConfigureLogging(absl::string_view level, absl::string_view format) {
  const spdlog::level::level_enum l =
      spdlog::level::from_str(std::string(level.data(), level.size()));
  if (l == spdlog::level::off && level != "off") {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown --log_level ", level, " (trace, debug, info, warn, error, critical or off)"));
  }
  if (format != "text" && format != "json") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown --log_format ", format, " (text or json)"));
  }
  AccessLog();  // registered before the level is set, so that it gets it
  json_logs.store(format == "json");
  if (format == "json") spdlog::set_formatter(std::make_unique<JsonFormatter>());
  spdlog::set_level(l);
  gpr_set_log_function(GrpcLog);
  google::protobuf::SetLogHandler(ProtobufLog);
  return absl::OkStatus();
}

bool JsonLogs() { return json_logs.load(std::memory_order_relaxed); }

spdlog::logger& AccessLog() {
  static spdlog::logger* log = [] {
    std::shared_ptr<spdlog::logger> logger = spdlog::default_logger()->clone(kAccessLogger);
    spdlog::register_logger(logger);  // the registry keeps it
    return logger.get();
  }();
  return *log;
}

void AppendJsonString(absl::string_view s, std::string* out) {
  out->push_back('"');
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"': *out += "\\\""; continue;
      case '\\': *out += "\\\\"; continue;
      case '\n': *out += "\\n"; continue;
      case '\r': *out += "\\r"; continue;
      case '\t': *out += "\\t"; continue;
      default: break;
    }
    if (c < 0x20 || c == 0x7f) {
      absl::StrAppendFormat(out, "\\u%04x", c);
      continue;
    }
    if (c < 0x80) {
      out->push_back(static_cast<char>(c));
      continue;
    }
    // A well-formed UTF-8 sequence goes as it is; any other byte escaped.
    const size_t n = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
    bool valid = n > 0 && i + n <= s.size();
    for (size_t k = 1; valid && k < n; ++k) {
      valid = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
    }
    if (valid) {
      out->append(s.data() + i, n);
      i += n - 1;
    } else {
      absl::StrAppendFormat(out, "\\u%04x", c);
    }
  }
  out->push_back('"');
}

std::string Printable(absl::string_view s, size_t max) {
  std::string out;
  const bool cut = s.size() > max;
  if (cut) s = s.substr(0, max);
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\\') {
      out += "\\\\";
    } else if (c < 0x20 || c == 0x7f) {
      absl::StrAppendFormat(&out, "\\x%02x", c);
    } else {
      out.push_back(ch);
    }
  }
  if (cut) out += "...";
  return out;
}

}  // namespace lossservice
