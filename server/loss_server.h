// An embeddable lossservice gRPC server.
#ifndef LOSSSERVICE_SERVER_LOSS_SERVER_H_
#define LOSSSERVICE_SERVER_LOSS_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "server/call_stats.h"

namespace grpc {
class Server;
}

namespace lossservice {

class Admission;
class BufferPool;
class ListedLossService;
class LossCallService;
class LossService;
class ThreadPool;

/// Serves lossservice.v1.LossService, grpc.health.v1.Health and server
/// reflection. Start() binds and returns; the destructor shuts down.
///
/// Every evaluation runs on the server's own compute pool; gRPC's threads
/// only receive, parse, serialize and send. A call is admitted when its
/// headers arrive (see Options::max_inflight).
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
  };

  explicit LossServer(Options options);
  ~LossServer();
  LossServer(const LossServer&) = delete;
  LossServer& operator=(const LossServer&) = delete;

  /// Binds and starts serving; fails if the options are out of range or
  /// the address cannot be bound.
  absl::Status Start();
  /// The bound port, valid after Start().
  int port() const { return port_; }
  /// The compute pool's size, valid after Start().
  int compute_threads() const;
  /// Stops accepting calls, lets calls in flight finish for up to
  /// `grace_ms` milliseconds, then cancels the rest. Idempotent.
  void Shutdown(int grace_ms = 5000);
  /// Blocks until the server has shut down.
  void Wait();

  /// What the calls did so far.
  ServerStats stats() const;

 private:
  Options options_;
  CallStats stats_;
  std::unique_ptr<ThreadPool> own_pool_;
  ThreadPool* pool_ = nullptr;
  std::unique_ptr<BufferPool> buffers_;
  std::unique_ptr<Admission> admission_;
  std::unique_ptr<LossService> service_;
  std::unique_ptr<LossCallService> calls_;
  std::unique_ptr<ListedLossService> listed_;
  std::unique_ptr<grpc::Server> server_;  // last: destroyed first
  int port_ = 0;
  bool shut_down_ = false;
};

}  // namespace lossservice

#endif  // LOSSSERVICE_SERVER_LOSS_SERVER_H_
