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
#include "absl/synchronization/mutex.h"
#include "google/protobuf/stubs/logging.h"
#include "server/flag_env.h"
#include "server/loss_server.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, address, "0.0.0.0:50051",
          "host:port to listen on; port 0 picks a free port (the log says which)");
ABSL_FLAG(int, max_message_mb, 64, "largest request in MiB; larger ones get RESOURCE_EXHAUSTED");
ABSL_FLAG(int, compute_threads, 0,
          "threads of the compute pool that runs every evaluation; 0 for the machine's cores");
ABSL_FLAG(int, max_inflight, 0,
          "requests admitted at once (waiting for the compute pool or computing); more get "
          "RESOURCE_EXHAUSTED when they arrive; 0 for no limit");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn, error, critical or off");
ABSL_FLAG(int, shutdown_grace_ms, 5000,
          "on SIGINT/SIGTERM, how long calls in flight may take to finish");

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
      "grpc.health.v1.Health and server reflection.\n  loss_server --address 0.0.0.0:50051\n"
      "Every flag can also be set by an environment variable LOSS_SERVER_<FLAG> (upper case, e.g.\n"
      "LOSS_SERVER_MAX_INFLIGHT=64); a flag given on the command line wins.");
  // --help lists this file's flags (Abseil matches the file to the binary's
  // name by default, and this file is main.cc).
  absl::FlagsUsageConfig usage_config;
  usage_config.contains_help_flags = [](absl::string_view file) {
    return absl::EndsWith(file, "server/main.cc");
  };
  usage_config.contains_helpshort_flags = usage_config.contains_help_flags;
  absl::SetFlagsUsageConfig(usage_config);
  lossservice::SetFlagsFromEnvOrExit("LOSS_SERVER_", argv[0]);
  absl::ParseCommandLine(argc, argv);

  const spdlog::level::level_enum level = spdlog::level::from_str(absl::GetFlag(FLAGS_log_level));
  if (level == spdlog::level::off && absl::GetFlag(FLAGS_log_level) != "off") {
    spdlog::error("unknown --log_level {}", absl::GetFlag(FLAGS_log_level));
    return 2;
  }
  spdlog::set_level(level);
  // Protobuf logs an error for each string field of a request that is not
  // UTF-8: the request is refused with INVALID_ARGUMENT saying so, and the
  // client's mistake is no server error.
  google::protobuf::SetLogHandler([](google::protobuf::LogLevel pb_level, const char* file,
                                     int line, const std::string& message) {
    if (pb_level >= google::protobuf::LOGLEVEL_FATAL) {
      spdlog::critical("protobuf {}:{}: {}", file, line, message);
    } else {
      spdlog::debug("protobuf {}:{}: {}", file, line, message);
    }
  });

  // Block the signals in every thread (gRPC's inherit the mask) and take
  // them synchronously below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  lossservice::LossServer server({.address = absl::GetFlag(FLAGS_address),
                                  .max_message_mb = absl::GetFlag(FLAGS_max_message_mb),
                                  .compute_threads = absl::GetFlag(FLAGS_compute_threads),
                                  .max_inflight = absl::GetFlag(FLAGS_max_inflight)});
  if (absl::Status status = server.Start(); !status.ok()) {
    spdlog::critical("{}", status.ToString());
    return 1;
  }
  const std::string address = absl::GetFlag(FLAGS_address);
  spdlog::info("lossservice listening on {}:{} (max message {} MiB, {} compute threads, {})",
               address.substr(0, address.rfind(':')), server.port(),
               absl::GetFlag(FLAGS_max_message_mb), server.compute_threads(),
               absl::GetFlag(FLAGS_max_inflight) > 0
                   ? "at most " + std::to_string(absl::GetFlag(FLAGS_max_inflight)) + " in flight"
                   : std::string("no in-flight limit"));

  int received = 0;
  sigwait(&signals, &received);
  spdlog::info("received {}, shutting down", received == SIGINT ? "SIGINT" : "SIGTERM");
  server.Shutdown(absl::GetFlag(FLAGS_shutdown_grace_ms));
  spdlog::info("stopped");
  return 0;
}
