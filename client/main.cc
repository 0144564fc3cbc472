// loss_client: a command-line client of lossservice.v1.LossService.
//
//   loss_client --address=localhost:50051 seed
//   loss_client health
//   loss_client list
//   loss_client evaluate request.json
//   echo '{"activation":"ACTIVATION_SIGMOID","input":{"float_values":[0]}}' |
//       loss_client activate -

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <future>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "client/seed_examples.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/byte_buffer.h"
#include "lossservice/v1/loss_service.grpc.pb.h"

ABSL_FLAG(std::string, address, "localhost:50051",
          "host:port of the lossservice server");
ABSL_FLAG(int, timeout_ms, 10000, "Deadline of each RPC, in milliseconds");

namespace lossservice {
namespace {

namespace v1 = ::lossservice::v1;

constexpr char kUsage[] =
    R"(a command-line client of lossservice.v1.LossService.

Usage: loss_client [--address=HOST:PORT] [--timeout_ms=MS] COMMAND [ARG]

Commands:
  seed              Replay every example of the seed document ("2. Loss
                    Functions") through Evaluate / Activate and print a table
                    of the document's numbers beside the service's.
  health [SERVICE]  grpc.health.v1.Health/Check for SERVICE (default: the
                    whole server); prints SERVING, NOT_SERVING, ...
  list              ListLosses: every loss with its input, target, options,
                    reductions and whether it returns a gradient.
  evaluate REQUEST  Evaluate one EvaluateRequest; prints the EvaluateResponse.
  activate REQUEST  Activate one ActivateRequest; prints the ActivateResponse.

REQUEST is the request message in protobuf JSON: a file name, '-' for stdin,
or the JSON text itself when it starts with '{'. Field names may be the proto
names or their lowerCamelCase forms; responses print with the proto names.
For example:

  loss_client evaluate '{"mse": {},
      "input":  {"shape": [2], "float_values": [0.5, 1.5]},
      "target": {"shape": [2], "float_values": [1, 1]}}'
  loss_client activate '{"activation": "ACTIVATION_SOFTMAX",
      "input": {"shape": [3], "double_values": [1.3863, 0, -0.6931]}}'

Exit status:
  0  success (seed: every value agrees; health: SERVING)
  1  the RPC failed (evaluate, activate, list, health), the service is not
     SERVING, or a seed value differs from the document
  2  usage error, unreadable or malformed REQUEST, or (seed) an RPC failed

RPC errors print the gRPC status code name and message to stderr.)";

std::string CodeName(grpc::StatusCode code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

int PrintRpcError(absl::string_view rpc, const grpc::Status& status) {
  std::cerr << rpc << " failed: " << CodeName(status.error_code()) << ": "
            << status.error_message() << "\n";
  return 1;
}

void SetDeadline(grpc::ClientContext& context) {
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(absl::GetFlag(FLAGS_timeout_ms)));
}

// --- seed ---

int RunSeed(v1::LossService::StubInterface& stub) {
  SeedOptions options;
  options.timeout_ms = absl::GetFlag(FLAGS_timeout_ms);
  absl::StatusOr<SeedReport> report = RunSeedExamples(stub, options);
  if (!report.ok()) {
    std::cerr << "seed: " << absl::StatusCodeToString(report.status().code())
              << ": " << report.status().message() << "\n";
    return 2;
  }
  const std::vector<std::string> header = {"section", "what", "document", "service",
                                           "ok"};
  std::vector<size_t> width(header.size());
  for (size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
  for (const SeedRow& row : report->rows) {
    width[0] = std::max(width[0], row.section.size());
    width[1] = std::max(width[1], row.what.size());
    width[2] = std::max(width[2], row.document.size());
    width[3] = std::max(width[3], row.service.size());
  }
  auto print_row = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (size_t i = 0; i < cells.size(); ++i) {
      // Numbers right-aligned, text left-aligned.
      const bool right = i == 2 || i == 3;
      const std::string pad(width[i] > cells[i].size() ? width[i] - cells[i].size() : 0,
                            ' ');
      absl::StrAppend(&line, i == 0 ? "" : "  ", right ? pad : "", cells[i],
                      right || i + 1 == cells.size() ? "" : pad);
    }
    std::cout << line << "\n";
  };
  print_row(header);
  std::vector<std::string> rule;
  for (size_t w : width) rule.push_back(std::string(w, '-'));
  print_row(rule);
  for (const SeedRow& row : report->rows) {
    print_row({row.section, row.what, row.document, row.service,
               row.agrees ? "ok" : "DIFFERS"});
  }
  std::cout << "seed: " << report->num_agree() << " values agree, "
            << report->num_differ() << " differ\n";
  return report->all_agree() ? 0 : 1;
}

// --- health ---

// grpc 1.51 installs no C++ stub for grpc.health.v1, so the request and the
// response are encoded by hand:
//   message HealthCheckRequest { string service = 1; }
//   message HealthCheckResponse { ServingStatus status = 1; }
std::string EncodeHealthCheckRequest(absl::string_view service) {
  std::string out;
  if (service.empty()) return out;  // proto3 omits the default
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
  google::protobuf::io::CodedInputStream in(
      reinterpret_cast<const uint8_t*>(bytes.data()), static_cast<int>(bytes.size()));
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

int RunHealth(const std::shared_ptr<grpc::Channel>& channel, absl::string_view service) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  SetDeadline(context);
  const std::string request_bytes = EncodeHealthCheckRequest(service);
  grpc::Slice request_slice(request_bytes);
  grpc::ByteBuffer request(&request_slice, 1);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(),
                 &request, &response,
                 [&done](grpc::Status status) { done.set_value(std::move(status)); });
  const grpc::Status status = done.get_future().get();
  if (!status.ok()) return PrintRpcError("Health/Check", status);

  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (response.Valid() && response.Dump(&slices).ok()) {
    for (const grpc::Slice& s : slices) {
      bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
  }
  const int64_t serving = DecodeHealthCheckStatus(bytes);
  if (serving < 0) {
    std::cerr << "Health/Check: the response does not parse as HealthCheckResponse\n";
    return 1;
  }
  std::cout << ServingStatusName(serving) << "\n";
  return serving == 1 ? 0 : 1;
}

// --- list ---

std::string ReductionName(int reduction) {
  std::string name = v1::Reduction_Name(static_cast<v1::Reduction>(reduction));
  if (name.empty()) return absl::StrCat(reduction);
  return absl::AsciiStrToLower(absl::StripPrefix(name, "REDUCTION_"));
}

int RunList(v1::LossService::StubInterface& stub) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::ListLossesResponse response;
  const grpc::Status status = stub.ListLosses(&context, v1::ListLossesRequest(), &response);
  if (!status.ok()) return PrintRpcError("ListLosses", status);

  size_t name_width = 4;
  for (const v1::LossInfo& loss : response.losses()) {
    name_width = std::max(name_width, loss.name().size());
  }
  for (const v1::LossInfo& loss : response.losses()) {
    std::vector<std::string> reductions;
    for (int r : loss.reductions()) reductions.push_back(ReductionName(r));
    std::cout << loss.name() << std::string(name_width - loss.name().size(), ' ')
              << "  field " << loss.field_number()
              << "  grad: " << (loss.has_grad() ? "yes" : "no")
              << "  reductions: " << absl::StrJoin(reductions, ", ") << "\n";
    std::cout << "    input:   " << loss.input() << "\n";
    std::cout << "    target:  " << loss.target() << "\n";
    std::cout << "    options: "
              << (loss.options().empty() ? "none" : absl::StrJoin(loss.options(), "; "))
              << "\n";
  }
  std::cout << response.losses_size() << " losses\n";
  return 0;
}

// --- evaluate / activate ---

// The JSON text of REQUEST: '-' is stdin, text starting with '{' is itself,
// anything else a file name.
absl::StatusOr<std::string> ReadRequestText(absl::string_view arg) {
  if (absl::StartsWith(absl::StripLeadingAsciiWhitespace(arg), "{")) {
    return std::string(arg);
  }
  if (arg == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin),
                       std::istreambuf_iterator<char>());
  }
  std::ifstream file{std::string(arg)};
  if (!file) return absl::NotFoundError(absl::StrCat("cannot open ", arg));
  std::ostringstream text;
  text << file.rdbuf();
  if (file.bad()) return absl::DataLossError(absl::StrCat("cannot read ", arg));
  return text.str();
}

// Parses REQUEST into `message`; prints the problem and returns false if it
// cannot.
bool ParseRequest(absl::string_view arg, google::protobuf::Message& message) {
  absl::StatusOr<std::string> text = ReadRequestText(arg);
  if (!text.ok()) {
    std::cerr << "loss_client: " << text.status().message() << "\n";
    return false;
  }
  const auto status = google::protobuf::util::JsonStringToMessage(*text, &message);
  if (!status.ok()) {
    std::cerr << "loss_client: " << (arg == "-" ? std::string("stdin") : std::string(arg.substr(0, 60)))
              << " is not a valid " << message.GetDescriptor()->full_name()
              << " in JSON: " << status.message() << "\n";
    return false;
  }
  return true;
}

void PrintJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  std::string json;
  const auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    std::cerr << "loss_client: cannot print the response as JSON: " << status.message()
              << "\n";
    return;
  }
  std::cout << json;
  if (json.empty() || json.back() != '\n') std::cout << "\n";
}

int RunEvaluate(v1::LossService::StubInterface& stub, absl::string_view arg) {
  v1::EvaluateRequest request;
  if (!ParseRequest(arg, request)) return 2;
  grpc::ClientContext context;
  SetDeadline(context);
  v1::EvaluateResponse response;
  const grpc::Status status = stub.Evaluate(&context, request, &response);
  if (!status.ok()) return PrintRpcError("Evaluate", status);
  PrintJson(response);
  return 0;
}

int RunActivate(v1::LossService::StubInterface& stub, absl::string_view arg) {
  v1::ActivateRequest request;
  if (!ParseRequest(arg, request)) return 2;
  grpc::ClientContext context;
  SetDeadline(context);
  v1::ActivateResponse response;
  const grpc::Status status = stub.Activate(&context, request, &response);
  if (!status.ok()) return PrintRpcError("Activate", status);
  PrintJson(response);
  return 0;
}

int UsageError(absl::string_view message) {
  std::cerr << "loss_client: " << message << "\nRun loss_client --help for usage.\n";
  return 2;
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  // --help lists the flags of this file (Abseil's default looks for a file
  // named after the binary).
  absl::FlagsUsageConfig usage_config;
  usage_config.contains_help_flags = [](absl::string_view file) {
    return absl::EndsWith(file, "client/main.cc");
  };
  usage_config.contains_helpshort_flags = usage_config.contains_help_flags;
  absl::SetFlagsUsageConfig(usage_config);
  const std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() < 2) return UsageError("missing COMMAND");
  const absl::string_view command = args[1];
  const size_t num_args = args.size() - 2;
  auto want_args = [&](size_t lo, size_t hi) { return num_args >= lo && num_args <= hi; };

  if (absl::GetFlag(FLAGS_timeout_ms) <= 0) return UsageError("--timeout_ms must be > 0");
  std::shared_ptr<grpc::Channel> channel = grpc::CreateChannel(
      absl::GetFlag(FLAGS_address), grpc::InsecureChannelCredentials());
  std::unique_ptr<v1::LossService::Stub> stub = v1::LossService::NewStub(channel);

  if (command == "seed") {
    if (!want_args(0, 0)) return UsageError("seed takes no argument");
    return RunSeed(*stub);
  }
  if (command == "health") {
    if (!want_args(0, 1)) return UsageError("health takes at most one SERVICE");
    return RunHealth(channel, num_args == 1 ? args[2] : "");
  }
  if (command == "list") {
    if (!want_args(0, 0)) return UsageError("list takes no argument");
    return RunList(*stub);
  }
  if (command == "evaluate") {
    if (!want_args(1, 1)) return UsageError("evaluate takes one REQUEST (a file, '-' or JSON)");
    return RunEvaluate(*stub, args[2]);
  }
  if (command == "activate") {
    if (!want_args(1, 1)) return UsageError("activate takes one REQUEST (a file, '-' or JSON)");
    return RunActivate(*stub, args[2]);
  }
  return UsageError(absl::StrCat("unknown COMMAND '", command, "'"));
}

}  // namespace
}  // namespace lossservice

int main(int argc, char** argv) { return lossservice::Main(argc, argv); }
