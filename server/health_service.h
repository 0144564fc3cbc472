// grpc.health.v1.Health, served from its compiled proto
// (proto/grpc/health/v1/health.proto): Check and Watch, for the server as a
// whole ("") and for each service it serves. No token is needed (probes
// carry none), and it answers while the server drains.
#ifndef LOSSSERVICE_SERVER_HEALTH_SERVICE_H_
#define LOSSSERVICE_SERVER_HEALTH_SERVICE_H_

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "server/metrics.h"

namespace lossservice {

using ServingStatus = grpc::health::v1::HealthCheckResponse::ServingStatus;

/// The statuses of the services a server (and its side listeners) report,
/// shared by every HealthService. Thread-safe.
class HealthState {
 public:
  /// Every service of `services` ("" included, if wanted) starts SERVING.
  explicit HealthState(const std::vector<std::string>& services);

  /// The status of `service`; nullopt for a service not known.
  std::optional<ServingStatus> Get(const std::string& service) const;
  /// Sets every service's status, and tells every watcher.
  void SetAll(ServingStatus status);

  class Listener {
   public:
    virtual ~Listener() = default;
    virtual void OnHealthChange() = 0;
  };
  void Subscribe(Listener* listener);
  void Unsubscribe(Listener* listener);

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, ServingStatus> statuses_ ABSL_GUARDED_BY(mu_);
  // Taken while listeners are told, so that none goes away meanwhile.
  absl::Mutex listeners_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::set<Listener*> listeners_ ABSL_GUARDED_BY(listeners_mu_);
};

/// Health for one grpc::Server (each server has its own instance over the
/// same HealthState). Thread-safe.
class HealthService final : public grpc::health::v1::Health::CallbackService,
                            private HealthState::Listener {
 public:
  HealthService(HealthState& state, Metrics& metrics);
  ~HealthService() override;

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* context,
                                  const grpc::health::v1::HealthCheckRequest* request,
                                  grpc::health::v1::HealthCheckResponse* response) override;
  grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse>* Watch(
      grpc::CallbackServerContext* context,
      const grpc::health::v1::HealthCheckRequest* request) override;

  /// Ends every Watch call (after it has sent the latest status) with OK,
  /// and every later one right after its first status: the server that
  /// serves them is about to stop.
  void EndWatches();

 private:
  class WatchCall;
  void OnHealthChange() override;
  void Remove(WatchCall* call);

  HealthState& state_;
  Metrics& metrics_;
  absl::Mutex mu_;
  std::set<WatchCall*> watches_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace lossservice

#endif  // LOSSSERVICE_SERVER_HEALTH_SERVICE_H_
