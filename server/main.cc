// loss_server: flags, logging, signals. Everything else is LossServer.
#include <malloc.h>

#include <csignal>
#include <cstdlib>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "server/flag_env.h"
#include "server/logging.h"
#include "server/loss_server.h"
#include "server/metrics.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, address, "0.0.0.0:50051",
          "host:port to listen on; port 0 picks a free port (the log says which)");
ABSL_FLAG(int, max_message_mb, 64, "largest request in MiB; larger ones get RESOURCE_EXHAUSTED");
ABSL_FLAG(int, compute_threads, 0,
          "threads of the compute pool that runs every evaluation; 0 for the machine's cores");
ABSL_FLAG(int, max_inflight, 0,
          "requests admitted at once (waiting for the compute pool or computing); more get "
          "RESOURCE_EXHAUSTED when they arrive; 0 for no limit");
ABSL_FLAG(int, shutdown_grace_s, 10,
          "on SIGTERM/SIGINT: health turns NOT_SERVING, new calls get UNAVAILABLE, and the calls "
          "already accepted get this many seconds to finish; the exit status is 0 if they all "
          "did, 3 if some had to be cancelled");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM file of the server's certificate chain: serve TLS (with --tls_key)");
ABSL_FLAG(std::string, tls_key, "", "PEM file of the server's private key (with --tls_cert)");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM file of the certificate authorities of client certificates: mutual TLS, every "
          "client must present a certificate they signed");
ABSL_FLAG(std::string, auth_token_file, "",
          "file holding the bearer token every RPC but grpc.health.v1.Health must carry as "
          "'authorization: Bearer <token>' (whitespace around it is ignored); else "
          "UNAUTHENTICATED");
ABSL_FLAG(std::string, metrics_address, "",
          "host:port to serve Prometheus metrics on (/metrics, plain HTTP); port 0 picks a free "
          "port (the log says which); empty for none");
ABSL_FLAG(std::string, health_address, "",
          "host:port of a plaintext listener serving only grpc.health.v1.Health, for probes "
          "that cannot speak TLS (the kubelet's gRPC probe); empty for none");
ABSL_FLAG(int, max_connection_age_s, 0,
          "send clients GOAWAY on connections older than this (calls in flight finish), so that "
          "they re-resolve and reach new replicas; 0 for never");
ABSL_FLAG(std::string, log_level, "info",
          "trace, debug (one access-log line per call), info, warn, error, critical or off");
ABSL_FLAG(std::string, log_format, "text", "text, or json for one JSON object per line");

// The process's allocator, set before any thread starts. Multi-megabyte
// requests arrive in gRPC's read buffers on gRPC's threads and are freed on
// the compute threads: with glibc's defaults each thread's arena keeps its
// own high-water mark, and memory given back to the kernel is faulted in
// (and zeroed) again on the next request. One arena, large blocks served
// from it and up to 64 MiB kept free halve the CPU time and the peak RSS of
// serving 1M-float MSE (docs/PERFORMANCE.md, "Service").
void TuneAllocator() {
  mallopt(M_ARENA_MAX, 1);
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  // Debian's Abseil checks every mutex acquisition for lock-order cycles;
  // the compute pool takes its mutex for every request.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

int main(int argc, char** argv) {
  TuneAllocator();
  absl::SetProgramUsageMessage(
      "Serves lossservice.v1.LossService (PyTorch's loss functions over gRPC), "
      "grpc.health.v1.Health and server reflection (v1 and v1alpha).\n"
      "  loss_server --address 0.0.0.0:50051\n"
      "Every flag can also be set by an environment variable LOSS_SERVER_<FLAG> (upper case, e.g.\n"
      "LOSS_SERVER_MAX_INFLIGHT=64); a flag given on the command line wins.\n"
      "Exit status: 0 after a drain in which every accepted call finished; 1 if the server\n"
      "cannot start; 2 for a bad --log_level or --log_format; 3 if the drain's grace ran out.");
  // --help lists this file's flags (Abseil matches the file to the binary's
  // name by default, and this file is main.cc); --version the build.
  absl::FlagsUsageConfig usage_config;
  usage_config.contains_help_flags = [](absl::string_view file) {
    return absl::EndsWith(file, "server/main.cc");
  };
  usage_config.contains_helpshort_flags = usage_config.contains_help_flags;
  usage_config.version_string = [] { return lossservice::BuildInfo::Get().ToString(); };
  absl::SetFlagsUsageConfig(usage_config);
  lossservice::SetFlagsFromEnvOrExit("LOSS_SERVER_", argv[0]);
  absl::ParseCommandLine(argc, argv);

  if (absl::Status s = lossservice::ConfigureLogging(absl::GetFlag(FLAGS_log_level),
                                                     absl::GetFlag(FLAGS_log_format));
      !s.ok()) {
    spdlog::error("{}", std::string(s.message()));
    return 2;
  }
  if (const auto unknown = lossservice::UnknownFlagEnv("LOSS_SERVER_"); !unknown.empty()) {
    spdlog::warn("ignoring {}: no such flag", absl::StrJoin(unknown, ", "));
  }

  // Block the signals in every thread (gRPC's inherit the mask) and take
  // them synchronously below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  lossservice::LossServer server({
      .address = absl::GetFlag(FLAGS_address),
      .max_message_mb = absl::GetFlag(FLAGS_max_message_mb),
      .compute_threads = absl::GetFlag(FLAGS_compute_threads),
      .max_inflight = absl::GetFlag(FLAGS_max_inflight),
      .tls_cert = absl::GetFlag(FLAGS_tls_cert),
      .tls_key = absl::GetFlag(FLAGS_tls_key),
      .tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca),
      .auth_token_file = absl::GetFlag(FLAGS_auth_token_file),
      .metrics_address = absl::GetFlag(FLAGS_metrics_address),
      .health_address = absl::GetFlag(FLAGS_health_address),
      .max_connection_age_s = absl::GetFlag(FLAGS_max_connection_age_s),
  });
  const lossservice::BuildInfo& build = lossservice::BuildInfo::Get();
  spdlog::info("loss_server {} ({}), {}", build.version, build.revision, build.compiler);
  if (absl::Status status = server.Start(); !status.ok()) {
    spdlog::critical("{}", std::string(status.message()));
    return 1;
  }
  const std::string address = absl::GetFlag(FLAGS_address);
  const auto host = [](const std::string& a) { return a.substr(0, a.rfind(':')); };
  std::string security = absl::GetFlag(FLAGS_tls_cert).empty()        ? "plaintext"
                         : absl::GetFlag(FLAGS_tls_client_ca).empty() ? "TLS"
                                                                       : "mutual TLS";
  if (!absl::GetFlag(FLAGS_auth_token_file).empty()) security += ", bearer token required";
  spdlog::info("lossservice listening on {}:{} ({}; max message {} MiB, {} compute threads, {})",
               host(address), server.port(), security, absl::GetFlag(FLAGS_max_message_mb),
               server.compute_threads(),
               absl::GetFlag(FLAGS_max_inflight) > 0
                   ? "at most " + std::to_string(absl::GetFlag(FLAGS_max_inflight)) + " in flight"
                   : std::string("no in-flight limit"));
  if (server.health_port()) {
    spdlog::info("health (plaintext) listening on {}:{}", host(absl::GetFlag(FLAGS_health_address)),
                 server.health_port());
  }
  if (server.metrics_port()) {
    spdlog::info("metrics listening on http://{}:{}/metrics",
                 host(absl::GetFlag(FLAGS_metrics_address)), server.metrics_port());
  }

  int received = 0;
  sigwait(&signals, &received);
  spdlog::info("received {}, shutting down", received == SIGINT ? "SIGINT" : "SIGTERM");
  const lossservice::LossServer::DrainResult drain =
      server.Drain(absl::Seconds(absl::GetFlag(FLAGS_shutdown_grace_s)));
  spdlog::info("stopped");
  return drain.drained ? 0 : 3;
}
