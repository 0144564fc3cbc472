// loss_client: a command-line client of lossservice.v1.LossService, built on
// lossservice::Client.
//
//   loss_client --address=localhost:50051 seed
//   loss_client examples
//   loss_client health
//   loss_client list
//   loss_client evaluate request.json
//   echo '{"activation":"ACTIVATION_SIGMOID","input":{"float_values":[0]}}' |
//       loss_client activate -

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
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
#include "client/client.h"
#include "client/examples.h"
#include "client/seed_examples.h"
#include "google/protobuf/util/json_util.h"

ABSL_FLAG(std::string, address, "localhost:50051", "host:port of the lossservice server");
ABSL_FLAG(int, timeout_ms, 10000, "Deadline of each RPC, in milliseconds");
ABSL_FLAG(bool, tls, false, "Connect with TLS");
ABSL_FLAG(std::string, root_certificates, "",
          "PEM file of the certificates that verify the server (TLS); default: "
          "gRPC's default roots");
ABSL_FLAG(std::string, client_key, "", "PEM file of the client's private key (mutual TLS)");
ABSL_FLAG(std::string, client_cert, "", "PEM file of the client's certificate chain (mutual TLS)");
ABSL_FLAG(std::string, tls_server_name, "",
          "Name the server's certificate must carry, if not the address's host");
ABSL_FLAG(std::string, token_file, "",
          "File holding a bearer token (whitespace around it ignored), sent as "
          "'authorization: Bearer <token>' on every RPC");
ABSL_FLAG(std::string, examples_file, "",
          "examples: read the examples from this file instead of the built-in copy "
          "of tests/golden/examples.json");

namespace lossservice {
namespace {

namespace v1 = ::lossservice::v1;

constexpr char kUsage[] =
    R"usage(a command-line client of lossservice.v1.LossService.

Usage: loss_client [--address=HOST:PORT] [--timeout_ms=MS] [TLS and token
                   flags] COMMAND [ARG]

Commands:
  seed              Replay every example of the seed document ("2. Loss
                    Functions") through Evaluate / Activate and print a table
                    of the document's numbers beside the service's.
  examples          Call every loss that ListLosses reports (and every
                    activation) with a small input whose result PyTorch
                    computed, through lossservice::Client's typed calls;
                    print each result beside PyTorch's.
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

TLS and tokens: --tls connects with TLS, verifying the server with
--root_certificates (default gRPC's roots) and, if the certificate is for
another name than the address's host, --tls_server_name; --client_key and
--client_cert present a client certificate (servers with --tls_client_ca);
--token_file sends the token it holds (whitespace around it ignored) as
"authorization: Bearer <token>" (servers with --auth_token_file; health needs
none):

  loss_client --address=lossservice:50051 --tls --root_certificates=ca.pem \
      --token_file=/etc/lossservice/token examples

Exit status:
  0  success (seed, examples: every value agrees; health: SERVING)
  1  an RPC failed (e.g. UNAUTHENTICATED without the token), the service is
     not SERVING, a seed value differs from the document, or an example
     differs from PyTorch, fails, or a listed loss has no example
  2  usage error, unreadable or malformed REQUEST or file

RPC errors print "RPC failed: CODE: message (request_id ID)" to stderr, and
for UNAUTHENTICATED what to do about the token.)usage";

// Prints "RPC failed: CODE: message (request_id ID)", and what to do about a
// missing or refused token; returns the exit status of a failed RPC, 1.
int PrintError(absl::string_view rpc, const absl::Status& status) {
  std::cerr << rpc << " failed: " << absl::StatusCodeToString(status.code()) << ": "
            << status.message();
  if (const std::string id = RequestIdOf(status); !id.empty()) {
    std::cerr << " (request_id " << id << ")";
  }
  std::cerr << "\n";
  if (status.code() == absl::StatusCode::kUnauthenticated) {
    std::cerr << (absl::GetFlag(FLAGS_token_file).empty()
                      ? "loss_client: the server requires a bearer token: pass --token_file=FILE\n"
                      : "loss_client: the server refused the token read from --token_file\n");
  }
  return 1;
}

// The contents of a file named by a flag; prints the problem if unreadable.
std::optional<std::string> ReadFlagFile(absl::string_view flag, const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream text;
  if (file) text << file.rdbuf();
  if (!file || file.bad()) {
    std::cerr << "loss_client: --" << flag << ": cannot read " << path << "\n";
    return std::nullopt;
  }
  return text.str();
}

// Left-aligned text, right-aligned numbers: one table printer for seed and
// examples.
void PrintTable(const std::vector<std::vector<std::string>>& rows, const std::vector<bool>& right) {
  std::vector<size_t> width(right.size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  auto print_row = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (size_t i = 0; i < cells.size(); ++i) {
      const std::string pad(width[i] - cells[i].size(), ' ');
      const bool last = i + 1 == cells.size();
      absl::StrAppend(&line, i == 0 ? "" : "  ", right[i] ? pad : "", cells[i],
                      right[i] || last ? "" : pad);
    }
    std::cout << line << "\n";
  };
  print_row(rows[0]);
  std::vector<std::string> rule;
  for (size_t w : width) rule.push_back(std::string(w, '-'));
  print_row(rule);
  for (size_t i = 1; i < rows.size(); ++i) print_row(rows[i]);
}

// --- seed ---

int RunSeed(Client& client) {
  absl::StatusOr<SeedReport> report = RunSeedExamples(client);
  if (!report.ok()) return PrintError("seed", report.status());
  std::vector<std::vector<std::string>> rows = {{"section", "what", "document", "service", "ok"}};
  for (const SeedRow& row : report->rows) {
    rows.push_back(
        {row.section, row.what, row.document, row.service, row.agrees ? "ok" : "DIFFERS"});
  }
  PrintTable(rows, {false, false, true, true, false});
  std::cout << "seed: " << report->num_agree() << " values agree, " << report->num_differ()
            << " differ\n";
  return report->all_agree() ? 0 : 1;
}

// --- examples ---

int RunExamplesCommand(Client& client) {
  std::string text(BuiltinExamplesJson());
  if (const std::string path = absl::GetFlag(FLAGS_examples_file); !path.empty()) {
    std::optional<std::string> file = ReadFlagFile("examples_file", path);
    if (!file) return 2;
    text = *std::move(file);
  }
  if (absl::Status valid = CheckExamples(text); !valid.ok()) {
    std::cerr << "examples: " << valid.message() << "\n";
    return 2;
  }
  // Well-formed examples: only ListLosses can fail.
  absl::StatusOr<ExamplesReport> report = RunExamples(client, text);
  if (!report.ok()) return PrintError("examples: ListLosses", report.status());
  std::vector<std::vector<std::string>> rows = {{"example", "what", "pytorch", "service", "ok"}};
  for (const ExampleRow& row : report->rows) {
    rows.push_back(
        {row.example, row.what, row.expected, row.service, row.agrees ? "ok" : "DIFFERS"});
  }
  PrintTable(rows, {false, false, false, false, false});
  for (const std::string& name : report->not_listed) {
    std::cout << "not run: " << name << " (the server does not list this loss)\n";
  }
  for (const std::string& loss : report->uncovered) {
    std::cout << "no example for the listed loss " << loss << "\n";
  }
  std::cout << "examples: " << report->num_agree() << " values agree, " << report->num_differ()
            << " differ, " << report->uncovered.size() << " listed losses without an example\n";
  return report->all_agree() ? 0 : 1;
}

// --- health ---

int RunHealth(Client& client, absl::string_view service) {
  absl::StatusOr<std::string> serving = client.Health(service);
  if (!serving.ok()) return PrintError("Health/Check", serving.status());
  std::cout << *serving << "\n";
  return *serving == "SERVING" ? 0 : 1;
}

// --- list ---

std::string ReductionName(int reduction) {
  std::string name = v1::Reduction_Name(static_cast<v1::Reduction>(reduction));
  if (name.empty()) return absl::StrCat(reduction);
  return absl::AsciiStrToLower(absl::StripPrefix(name, "REDUCTION_"));
}

int RunList(Client& client) {
  absl::StatusOr<v1::ListLossesResponse> listed = client.ListLosses();
  if (!listed.ok()) return PrintError("ListLosses", listed.status());
  const v1::ListLossesResponse& response = *listed;

  size_t name_width = 4;
  for (const v1::LossInfo& loss : response.losses()) {
    name_width = std::max(name_width, loss.name().size());
  }
  for (const v1::LossInfo& loss : response.losses()) {
    std::vector<std::string> reductions;
    for (int r : loss.reductions()) reductions.push_back(ReductionName(r));
    std::cout << loss.name() << std::string(name_width - loss.name().size(), ' ') << "  field "
              << loss.field_number() << "  grad: " << (loss.has_grad() ? "yes" : "no")
              << "  reductions: " << absl::StrJoin(reductions, ", ") << "\n";
    std::cout << "    input:   " << loss.input() << "\n";
    std::cout << "    target:  " << loss.target() << "\n";
    std::cout << "    options: "
              << (loss.options().empty() ? "none" : absl::StrJoin(loss.options(), "; ")) << "\n";
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
    return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
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
    std::cerr << "loss_client: "
              << (arg == "-" ? std::string("stdin") : std::string(arg.substr(0, 60)))
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
    std::cerr << "loss_client: cannot print the response as JSON: " << status.message() << "\n";
    return;
  }
  std::cout << json;
  if (json.empty() || json.back() != '\n') std::cout << "\n";
}

int RunEvaluate(Client& client, absl::string_view arg) {
  v1::EvaluateRequest request;
  if (!ParseRequest(arg, request)) return 2;
  absl::StatusOr<v1::EvaluateResponse> response = client.Evaluate(request);
  if (!response.ok()) return PrintError("Evaluate", response.status());
  PrintJson(*response);
  return 0;
}

int RunActivate(Client& client, absl::string_view arg) {
  v1::ActivateRequest request;
  if (!ParseRequest(arg, request)) return 2;
  absl::StatusOr<v1::ActivateResponse> response = client.Activate(request);
  if (!response.ok()) return PrintError("Activate", response.status());
  PrintJson(*response);
  return 0;
}

// The client's options from the flags; prints the problem and returns
// nullopt if a file cannot be read.
std::optional<ClientOptions> OptionsFromFlags() {
  ClientOptions options;
  options.timeout = std::chrono::milliseconds(absl::GetFlag(FLAGS_timeout_ms));
  options.tls = absl::GetFlag(FLAGS_tls);
  options.tls_server_name = absl::GetFlag(FLAGS_tls_server_name);
  struct PemFlag {
    const char* name;
    std::string path;
    std::string* into;
  };
  for (const PemFlag& f :
       {PemFlag{"root_certificates", absl::GetFlag(FLAGS_root_certificates),
                &options.root_certificates},
        PemFlag{"client_key", absl::GetFlag(FLAGS_client_key), &options.private_key},
        PemFlag{"client_cert", absl::GetFlag(FLAGS_client_cert), &options.certificate_chain}}) {
    if (f.path.empty()) continue;
    std::optional<std::string> pem = ReadFlagFile(f.name, f.path);
    if (!pem) return std::nullopt;
    *f.into = *std::move(pem);
  }
  if (const std::string path = absl::GetFlag(FLAGS_token_file); !path.empty()) {
    std::optional<std::string> token = ReadFlagFile("token_file", path);
    if (!token) return std::nullopt;
    options.token = std::string(absl::StripAsciiWhitespace(*token));
  }
  return options;
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
  if (absl::GetFlag(FLAGS_client_key).empty() != absl::GetFlag(FLAGS_client_cert).empty()) {
    return UsageError("--client_key and --client_cert go together");
  }
  std::optional<ClientOptions> options = OptionsFromFlags();
  if (!options) return 2;
  Client client(absl::GetFlag(FLAGS_address), *std::move(options));

  if (command == "seed") {
    if (!want_args(0, 0)) return UsageError("seed takes no argument");
    return RunSeed(client);
  }
  if (command == "examples") {
    if (!want_args(0, 0)) return UsageError("examples takes no argument");
    return RunExamplesCommand(client);
  }
  if (command == "health") {
    if (!want_args(0, 1)) return UsageError("health takes at most one SERVICE");
    return RunHealth(client, num_args == 1 ? args[2] : "");
  }
  if (command == "list") {
    if (!want_args(0, 0)) return UsageError("list takes no argument");
    return RunList(client);
  }
  if (command == "evaluate") {
    if (!want_args(1, 1)) return UsageError("evaluate takes one REQUEST (a file, '-' or JSON)");
    return RunEvaluate(client, args[2]);
  }
  if (command == "activate") {
    if (!want_args(1, 1)) return UsageError("activate takes one REQUEST (a file, '-' or JSON)");
    return RunActivate(client, args[2]);
  }
  return UsageError(absl::StrCat("unknown COMMAND '", command, "'"));
}

}  // namespace
}  // namespace lossservice

int main(int argc, char** argv) { return lossservice::Main(argc, argv); }
