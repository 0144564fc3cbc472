// Server reflection, both versions (grpc.reflection.v1 and
// grpc.reflection.v1alpha: the same messages under two packages), answered
// from the descriptors compiled into the binary, so that it lists and
// describes every service the server serves, lossservice.v1.LossService
// (served by a generic handler, unknown to gRPC's own reflection) and
// grpc.health.v1.Health included.
#ifndef LOSSSERVICE_SERVER_REFLECTION_SERVICE_H_
#define LOSSSERVICE_SERVER_REFLECTION_SERVICE_H_

#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpc/reflection/v1/reflection.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "server/call_gate.h"
#include "server/metrics.h"

namespace lossservice {

/// One version's ServerReflection service. Every call passes `gate`
/// (UNAUTHENTICATED without the token, UNAVAILABLE while draining).
/// Thread-safe.
template <typename Version>
class ReflectionService final : public Version::Service {
 public:
  using Request = typename Version::Request;
  using Response = typename Version::Response;

  /// `services`: the fully qualified names list_services answers.
  ReflectionService(std::vector<std::string> services, CallGate& gate, Metrics& metrics);
  /// Waits for the last call's OnDone (the server has shut down; gRPC may
  /// still be running it on one of its threads).
  ~ReflectionService() override;

  grpc::ServerBidiReactor<Request, Response>* ServerReflectionInfo(
      grpc::CallbackServerContext* context) override;

  /// Ends every open call with UNAVAILABLE (after the answer it is writing,
  /// if any): the server drains.
  void EndCalls();

 private:
  class Call;
  const std::vector<std::string> services_;
  CallGate& gate_;
  Metrics& metrics_;
  absl::Mutex mu_;
  std::set<Call*> calls_ ABSL_GUARDED_BY(mu_);
};

struct ReflectionV1 {
  using Service = grpc::reflection::v1::ServerReflection::CallbackService;
  using Request = grpc::reflection::v1::ServerReflectionRequest;
  using Response = grpc::reflection::v1::ServerReflectionResponse;
  static constexpr Method kMethod = Method::kReflectionV1;
};
struct ReflectionV1alpha {
  using Service = grpc::reflection::v1alpha::ServerReflection::CallbackService;
  using Request = grpc::reflection::v1alpha::ServerReflectionRequest;
  using Response = grpc::reflection::v1alpha::ServerReflectionResponse;
  static constexpr Method kMethod = Method::kReflectionV1alpha;
};

extern template class ReflectionService<ReflectionV1>;
extern template class ReflectionService<ReflectionV1alpha>;

}  // namespace lossservice

#endif  // LOSSSERVICE_SERVER_REFLECTION_SERVICE_H_
