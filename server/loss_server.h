// An embeddable lossservice gRPC server.
#ifndef LOSSSERVICE_SERVER_LOSS_SERVER_H_
#define LOSSSERVICE_SERVER_LOSS_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/call_stats.h"

namespace grpc {
class Server;
class ServerCredentials;
}  // namespace grpc
namespace prometheus {
class Exposer;
}  // namespace prometheus

namespace lossservice {

class Admission;
class BufferPool;
class CallGate;
class HealthService;
class HealthState;
class ListedLossService;
class LossCallService;
class LossService;
class Metrics;
template <typename Version>
class ReflectionService;
struct ReflectionV1;
struct ReflectionV1alpha;
class ThreadPool;

/// Serves lossservice.v1.LossService, grpc.health.v1.Health and server
/// reflection (grpc.reflection.v1 and v1alpha), with TLS, mutual TLS and a
/// bearer token when configured, Prometheus metrics, an access log, and a
/// drain. Start() binds and returns; the destructor drains and shuts down.
///
/// Every evaluation runs on the server's own compute pool; gRPC's threads
/// only receive, parse, serialize and send. A call is checked (token, drain)
/// and admitted when its headers arrive (see Options::max_inflight).
///
///   LossServer server({.address = "127.0.0.1:0"});
///   CHECK_OK(server.Start());
///   Connect to absl::StrCat("127.0.0.1:", server.port());
class LossServer {
 public:
  struct Options {
    /// host:port; port 0 picks a free port (see port()).
    std::string address = "0.0.0.0:50051";
    /// Largest request message accepted; larger ones get RESOURCE_EXHAUSTED.
    int max_message_mb = 64;
    /// Threads of the compute pool; 0: the machine's cores.
    int compute_threads = 0;
    /// A pool to compute on instead of one of the server's own (not owned;
    /// it must outlive the server); compute_threads is then ignored. For
    /// embedding the server in a process that has its pool already.
    ThreadPool* compute_pool = nullptr;
    /// Requests admitted at once (waiting for the pool or computing); more
    /// get RESOURCE_EXHAUSTED when they arrive. 0: no limit.
    int max_inflight = 0;
    /// TLS: PEM files of the server's certificate chain and of its private
    /// key; both or neither.
    std::string tls_cert{}, tls_key{};
    /// Mutual TLS: a PEM file of the certificate authorities whose client
    /// certificates are accepted; every client must present one, and one
    /// that does not verify is refused in the handshake. Needs tls_cert.
    std::string tls_client_ca{};
    /// A file holding the bearer token every RPC but grpc.health.v1.Health
    /// must carry (`authorization: Bearer <token>`); whitespace around the
    /// token is ignored (a file written by `echo` works). Empty: no token.
    std::string auth_token_file{};
    /// host:port of Prometheus' /metrics (plain HTTP); port 0 picks a free
    /// one (see metrics_port()). Empty: no metrics endpoint.
    std::string metrics_address{};
    /// host:port of a second, plaintext listener that serves only
    /// grpc.health.v1.Health, for probes that cannot speak TLS (the
    /// kubelet's gRPC probe); port 0 picks a free one (see health_port()).
    /// Empty: none.
    std::string health_address{};
    /// Connections get GOAWAY after this many seconds (calls in flight
    /// finish), so that long-lived clients re-resolve and reach replicas
    /// added since they connected. 0: never.
    int max_connection_age_s = 0;
  };

  /// What a drain did.
  struct DrainResult {
    /// Every call accepted before the drain finished within the grace.
    bool drained = true;
    /// Calls still running when the grace ran out; they were cancelled.
    int64_t cancelled = 0;
    /// Calls refused (UNAVAILABLE) while draining.
    int64_t refused = 0;
    absl::Duration took;
  };

  explicit LossServer(Options options);
  ~LossServer();
  LossServer(const LossServer&) = delete;
  LossServer& operator=(const LossServer&) = delete;

  /// Binds and starts serving; fails if the options are out of range, a
  /// file cannot be read, or an address cannot be bound.
  absl::Status Start();
  /// The bound port, valid after Start().
  int port() const { return port_; }
  /// The bound port of /metrics (0 without Options::metrics_address).
  int metrics_port() const { return metrics_port_; }
  /// The bound port of the health-only listener (0 without
  /// Options::health_address).
  int health_port() const { return health_port_; }
  /// The compute pool's size, valid after Start().
  int compute_threads() const;

  /// Drains, then stops; what SIGTERM does. At once: health turns
  /// NOT_SERVING (the port keeps answering it) and calls that arrive from
  /// now on get UNAVAILABLE. Every call accepted before goes on to its
  /// answer, those still uploading or waiting for the pool included; an
  /// EvaluateStream still open after half the grace answers the requests it
  /// has read and ends with UNAVAILABLE. Once every accepted call has
  /// finished (and no call has arrived for 100 ms, or a second has passed),
  /// the server stops. If `grace` runs out first, the calls still running
  /// are cancelled (DrainResult::drained is false). Idempotent (later calls
  /// return the first result).
  DrainResult Drain(absl::Duration grace);
  /// Drain(grace_ms milliseconds).
  void Shutdown(int grace_ms = 10000) { Drain(absl::Milliseconds(grace_ms)); }
  /// Blocks until the server has shut down.
  void Wait();

  /// What the calls did so far.
  ServerStats stats() const;

 private:
  struct SideServer;
  absl::Status BuildCredentials();
  absl::StatusOr<std::unique_ptr<SideServer>> StartHealthListener(const std::string& address);

  Options options_;
  CallStats stats_;
  std::shared_ptr<grpc::ServerCredentials> credentials_;
  std::string token_;
  std::unique_ptr<ThreadPool> own_pool_;
  ThreadPool* pool_ = nullptr;
  std::unique_ptr<BufferPool> buffers_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<Admission> admission_;
  std::unique_ptr<CallGate> gate_;
  std::unique_ptr<HealthState> health_;
  std::unique_ptr<LossService> service_;
  std::unique_ptr<LossCallService> calls_;
  std::unique_ptr<ListedLossService> listed_;
  std::unique_ptr<HealthService> health_service_;
  std::unique_ptr<ReflectionService<ReflectionV1>> reflection_v1_;
  std::unique_ptr<ReflectionService<ReflectionV1alpha>> reflection_v1alpha_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<SideServer> health_listener_;  // --health_address
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
  int metrics_port_ = 0;
  int health_port_ = 0;
  bool drained_ = false;
  DrainResult drain_result_;
};

}  // namespace lossservice

#endif  // LOSSSERVICE_SERVER_LOSS_SERVER_H_
