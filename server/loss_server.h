// An embeddable lossservice gRPC server.
#ifndef LOSSSERVICE_SERVER_LOSS_SERVER_H_
#define LOSSSERVICE_SERVER_LOSS_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/status.h"

namespace grpc {
class Server;
}

namespace lossservice {

class LossServiceImpl;

/// Serves lossservice.v1.LossService, grpc.health.v1.Health and server
/// reflection. Start() binds and returns; the destructor shuts down.
///
///   LossServer server({.address = "127.0.0.1:0"});
///   CHECK_OK(server.Start());
///   Connect to absl::StrCat("127.0.0.1:", server.port());
class LossServer {
 public:
  struct Options {
    /// host:port; port 0 picks a free port (see port()).
    std::string address = "0.0.0.0:50051";
    /// Largest request accepted; larger ones get RESOURCE_EXHAUSTED.
    int max_message_mb = 64;
    /// Requests computed at once; more get RESOURCE_EXHAUSTED. 0: no limit.
    int max_inflight = 0;
  };

  explicit LossServer(Options options);
  ~LossServer();
  LossServer(const LossServer&) = delete;
  LossServer& operator=(const LossServer&) = delete;

  /// Binds and starts serving; fails if the address cannot be bound.
  absl::Status Start();
  /// The bound port, valid after Start().
  int port() const { return port_; }
  /// Stops accepting calls, lets calls in flight finish for up to
  /// `grace_ms` milliseconds, then cancels the rest. Idempotent.
  void Shutdown(int grace_ms = 5000);
  /// Blocks until the server has shut down.
  void Wait();

 private:
  Options options_;
  std::unique_ptr<LossServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool shut_down_ = false;
};

}  // namespace lossservice

#endif  // LOSSSERVICE_SERVER_LOSS_SERVER_H_
