#include "server/loss_server.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "core/parallel.h"
#include "grpcpp/ext/health_check_service_server_builder_option.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/security/server_credentials.h"
#include "prometheus/exposer.h"
#include "server/admission.h"
#include "server/buffer_pool.h"
#include "server/call_gate.h"
#include "server/call_handlers.h"
#include "server/health_service.h"
#include "server/loss_service.h"
#include "server/metrics.h"
#include "server/reflection_service.h"
#include "spdlog/spdlog.h"

namespace lossservice {
namespace {

constexpr char kServiceName[] = "lossservice.v1.LossService";

// Released tensor buffers are kept for reuse up to twice the largest
// message, and at least this much.
constexpr size_t kMinCachedBufferBytes = size_t{32} << 20;

absl::StatusOr<std::string> ReadFile(const std::string& path, absl::string_view flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read ", flag, " ", path, ": ", std::strerror(errno)));
  }
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

absl::StatusOr<std::string> ReadPem(const std::string& path, absl::string_view flag,
                                    absl::string_view what) {
  absl::StatusOr<std::string> pem = ReadFile(path, flag);
  // "-----BEGIN CERTIFICATE-----", "-----BEGIN EC PRIVATE KEY-----", ...
  if (pem.ok() && !(absl::StrContains(*pem, "-----BEGIN ") &&
                    absl::StrContains(*pem, absl::StrCat(what, "-----")))) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, " holds no PEM ", what));
  }
  return pem;
}

// host and port of "host:port" ("[::1]:50051" included); false if the
// address is not of that form (unix:, a port that is no number).
bool SplitHostPort(const std::string& address, std::string* host, int* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || absl::StartsWith(address, "unix:")) return false;
  absl::string_view h(address.data(), colon);
  if (absl::ConsumePrefix(&h, "[")) absl::ConsumeSuffix(&h, "]");
  *host = std::string(h);
  return absl::SimpleAtoi(absl::string_view(address).substr(colon + 1), port);
}

bool IsLoopback(const std::string& address) {
  std::string host;
  int port;
  if (absl::StartsWith(address, "unix:")) return true;
  if (!SplitHostPort(address, &host, &port)) return false;
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

}  // namespace

// The --health_address listener: a grpc::Server of health alone.
struct LossServer::SideServer {
  std::unique_ptr<HealthService> health;
  std::unique_ptr<grpc::Server> server;
  int port = 0;

  void Stop() {
    health->EndWatches();
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    server->Wait();
  }
};

LossServer::LossServer(Options options) : options_(std::move(options)) {}

LossServer::~LossServer() {
  Drain(absl::Seconds(5));
  exposer_.reset();  // no scrape while the rest goes
  server_.reset();
  own_pool_.reset();  // runs what is left of the work, then joins
}

int LossServer::compute_threads() const { return pool_ ? pool_->threads() : 0; }

absl::Status LossServer::BuildCredentials() {
  const Options& o = options_;
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key go together: give both or neither");
  }
  if (!o.tls_client_ca.empty() && o.tls_cert.empty()) {
    return absl::InvalidArgumentError(
        "--tls_client_ca (mutual TLS) needs --tls_cert and --tls_key");
  }
  if (!o.auth_token_file.empty()) {
    absl::StatusOr<std::string> token = ReadFile(o.auth_token_file, "--auth_token_file");
    if (!token.ok()) return token.status();
    token_ = std::string(absl::StripAsciiWhitespace(*token));
    if (token_.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--auth_token_file ", o.auth_token_file, " holds no token"));
    }
    for (const char c : token_) {
      if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--auth_token_file ", o.auth_token_file,
            ": the token must be printable ASCII without spaces (it travels in a header)"));
      }
    }
  }
  if (o.tls_cert.empty()) {
    credentials_ = grpc::InsecureServerCredentials();
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> cert = ReadPem(o.tls_cert, "--tls_cert", "CERTIFICATE");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPem(o.tls_key, "--tls_key", "PRIVATE KEY");
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions ssl(
      o.tls_client_ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                              : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  if (!o.tls_client_ca.empty()) {
    absl::StatusOr<std::string> ca = ReadPem(o.tls_client_ca, "--tls_client_ca", "CERTIFICATE");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
  }
  ssl.pem_key_cert_pairs.push_back({*key, *cert});
  credentials_ = grpc::SslServerCredentials(ssl);
  return absl::OkStatus();
}

absl::Status LossServer::Start() {
  if (server_) return absl::FailedPreconditionError("LossServer already started");
  if (options_.max_message_mb <= 0 || options_.max_message_mb > 2047) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_message_mb must be in [1, 2047], got ", options_.max_message_mb));
  }
  if (options_.compute_threads < 0 || options_.compute_threads > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("compute_threads must be in [0, 1024], got ", options_.compute_threads));
  }
  if (options_.max_inflight < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_inflight must be >= 0, got ", options_.max_inflight));
  }
  if (options_.max_connection_age_s < 0 || options_.max_connection_age_s > INT_MAX / 1000) {
    return absl::InvalidArgumentError(absl::StrCat("max_connection_age_s must be >= 0, got ",
                                                   options_.max_connection_age_s));
  }
  if (absl::Status s = BuildCredentials(); !s.ok()) return s;

  const int threads = options_.compute_threads > 0
                          ? options_.compute_threads
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  if (options_.compute_pool != nullptr) {
    pool_ = options_.compute_pool;
  } else {
    own_pool_ = std::make_unique<ThreadPool>(threads);
    pool_ = own_pool_.get();
  }
  const size_t max_bytes = static_cast<size_t>(options_.max_message_mb) << 20;
  buffers_ = std::make_unique<BufferPool>(std::max(kMinCachedBufferBytes, 2 * max_bytes));
  metrics_ = std::make_unique<Metrics>(Metrics::Sources{
      .stats = &stats_,
      .queued = [this] { return pool_->queued(); },
      .draining = [this] { return gate_ != nullptr && gate_->draining(); },
      .compute_threads = pool_->threads(),
      .max_inflight = options_.max_inflight});
  admission_ = std::make_unique<Admission>(options_.max_inflight, stats_);
  gate_ = std::make_unique<CallGate>(token_, stats_, *metrics_);
  health_ = std::make_unique<HealthState>(std::vector<std::string>{"", kServiceName});
  service_ = std::make_unique<LossService>(*pool_, *buffers_, stats_, max_bytes);
  const CallEnvironment env{*service_, *pool_,    *admission_,           stats_,
                            *gate_,    *metrics_, options_.max_message_mb, max_bytes};
  calls_ = std::make_unique<LossCallService>(env);
  listed_ = std::make_unique<ListedLossService>(env);
  health_service_ = std::make_unique<HealthService>(*health_, *metrics_);
  const std::vector<std::string> services = {
      kServiceName, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection"};
  reflection_v1_ =
      std::make_unique<ReflectionService<ReflectionV1>>(services, *gate_, *metrics_);
  reflection_v1alpha_ =
      std::make_unique<ReflectionService<ReflectionV1alpha>>(services, *gate_, *metrics_);

  grpc::ServerBuilder builder;
  // Our own Health, not gRPC's (which reflection cannot describe).
  builder.SetOption(std::make_unique<grpc::HealthCheckServiceServerBuilderOption>(nullptr));
  builder.AddListeningPort(options_.address, credentials_, &port_);
  // gRPC's own limit sits above ours (twice it, and at least 16 MiB more),
  // so that a message over --max_message_mb reaches our check and gets a
  // message naming the flag; gRPC's still bounds what decompression may
  // produce. (gRPC 1.51 checks a message only once all of it has arrived,
  // whichever limit applies.)
  const int64_t grpc_limit = std::max<int64_t>(2 * static_cast<int64_t>(max_bytes),
                                               static_cast<int64_t>(max_bytes) + (16 << 20));
  builder.SetMaxReceiveMessageSize(static_cast<int>(std::min<int64_t>(INT_MAX, grpc_limit)));
  builder.SetMaxSendMessageSize(-1);
  // A second server on a taken port must fail, not silently share it.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  if (options_.max_connection_age_s > 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                               options_.max_connection_age_s * 1000);
  }
  builder.RegisterService(listed_.get());
  builder.RegisterService(health_service_.get());
  builder.RegisterService(reflection_v1_.get());
  builder.RegisterService(reflection_v1alpha_.get());
  builder.RegisterCallbackGenericService(calls_.get());
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    server_.reset();
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", options_.address,
        options_.tls_cert.empty()
            ? ""
            : " (or the TLS files do not make a certificate and its key: --tls_cert, --tls_key, "
              "--tls_client_ca)"));
  }
  if (!options_.health_address.empty()) {
    absl::StatusOr<std::unique_ptr<SideServer>> side = StartHealthListener(options_.health_address);
    if (!side.ok()) return side.status();
    health_listener_ = std::move(*side);
    health_port_ = health_listener_->port;
  }
  if (!options_.metrics_address.empty()) {
    absl::StatusOr<std::unique_ptr<prometheus::Exposer>> exposer =
        metrics_->Serve(options_.metrics_address, &metrics_port_);
    if (!exposer.ok()) return exposer.status();
    exposer_ = std::move(*exposer);
  }
  if (options_.tls_cert.empty() && token_.empty() && !IsLoopback(options_.address)) {
    spdlog::warn(
        "serving plaintext without a bearer token on {}: anyone who can reach this port can "
        "call it (--tls_cert/--tls_key for TLS, --auth_token_file for a token)",
        options_.address);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<LossServer::SideServer>> LossServer::StartHealthListener(
    const std::string& address) {
  auto side = std::make_unique<SideServer>();
  side->health = std::make_unique<HealthService>(*health_, *metrics_);
  grpc::ServerBuilder builder;
  builder.SetOption(std::make_unique<grpc::HealthCheckServiceServerBuilderOption>(nullptr));
  // Plaintext, for probes that cannot speak TLS; health needs no token.
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &side->port);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(side->health.get());
  side->server = builder.BuildAndStart();
  if (!side->server || side->port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address, " (--health_address)"));
  }
  return side;
}

LossServer::DrainResult LossServer::Drain(absl::Duration grace) {
  if (!server_ || drained_) return drain_result_;
  drained_ = true;
  grace = std::max(grace, absl::ZeroDuration());
  const absl::Time start = absl::Now(), deadline = start + grace;
  const int64_t refused_before = stats_.draining_refused.load();
  // The server keeps listening and answering: health says NOT_SERVING (on
  // this port, to probes and to every Watch), and the gate refuses each new
  // call with UNAVAILABLE, which clients retry. No GOAWAY yet: gRPC 1.51's
  // Shutdown kills a call whose headers it is still processing, and its
  // client sees CANCELLED, which no retry policy retries.
  health_->SetAll(grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  gate_->StartDraining();
  spdlog::info(
      "draining: health NOT_SERVING, new calls refused (UNAVAILABLE); {} call{} in flight, "
      "a grace of {}",
      gate_->held(), gate_->held() == 1 ? "" : "s", absl::FormatDuration(grace));
  bool idle = gate_->WaitUntilIdle(start + grace / 2);
  if (!idle) {
    calls_->StopStreams();
    idle = gate_->WaitUntilIdle(deadline);
  }
  drain_result_.drained = idle;
  drain_result_.cancelled = idle ? 0 : gate_->held();
  // Before the Shutdown, a moment without new calls (at most a second, and
  // not past the grace), so that no call is caught arriving.
  if (idle) gate_->WaitForQuiet(absl::Milliseconds(100), std::min(deadline, absl::Now() + absl::Seconds(1)));
  // The calls the drain does not wait for end now; Shutdown cancels what is
  // left (after the grace, the calls still running).
  health_service_->EndWatches();
  reflection_v1_->EndCalls();
  reflection_v1alpha_->EndCalls();
  server_->Shutdown(absl::ToChronoTime(idle ? absl::Now() + absl::Seconds(1) : absl::Now()));
  server_->Wait();
  // Every call has ended; the last ones' OnDone may still be running on
  // gRPC's threads (and a cancelled computation on the pool): the gate gets
  // every pass back before anything they use goes.
  gate_->WaitUntilIdle(absl::InfiniteFuture());
  if (health_listener_) health_listener_->Stop();
  drain_result_.took = absl::Now() - start;
  drain_result_.refused = stats_.draining_refused.load() - refused_before;
  if (drain_result_.drained) {
    spdlog::info("drained in {:.1f} ms: every accepted call finished; {} refused while draining",
                 absl::ToDoubleMilliseconds(drain_result_.took), drain_result_.refused);
  } else {
    spdlog::error(
        "the grace of {} ran out with {} call{} still running: they were cancelled; {} refused "
        "while draining",
        absl::FormatDuration(grace), drain_result_.cancelled,
        drain_result_.cancelled == 1 ? "" : "s", drain_result_.refused);
  }
  return drain_result_;
}

void LossServer::Wait() {
  if (server_) server_->Wait();
}

ServerStats LossServer::stats() const {
  ServerStats s;
  s.admitted = stats_.admitted.load();
  s.refused = stats_.refused.load();
  s.in_flight = stats_.in_flight.load();
  s.queued = pool_ ? pool_->queued() : 0;
  s.started = stats_.started.load();
  s.computed = stats_.computed.load();
  s.not_started = stats_.not_started.load();
  s.cancelled = stats_.cancelled.load();
  s.stopped = stats_.stopped.load();
  s.too_large = stats_.too_large.load();
  s.unparsable = stats_.unparsable.load();
  s.draining_refused = stats_.draining_refused.load();
  return s;
}

}  // namespace lossservice
