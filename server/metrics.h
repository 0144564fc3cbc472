// What the server exports to Prometheus: every call by method and status,
// every request of lossservice.v1.LossService by RPC, loss and status, its
// latency and bytes, the admission and drain counters, build and process
// information.
//
// Recording a call is a few relaxed atomic increments into fixed tables (no
// lock, no allocation, no label lookup); the tables become Prometheus
// families only when /metrics is scraped.
#ifndef LOSSSERVICE_SERVER_METRICS_H_
#define LOSSSERVICE_SERVER_METRICS_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/support/status.h"
#include "server/call_stats.h"

namespace prometheus {
class Exposer;
struct MetricFamily;
}  // namespace prometheus

namespace lossservice {

/// Every method the server answers; the first four are lossservice.v1.LossService's.
enum class Method : uint8_t {
  kEvaluate,
  kEvaluateStream,
  kActivate,
  kListLosses,
  kHealthCheck,
  kHealthWatch,
  kReflectionV1,
  kReflectionV1alpha,
  kUnknown,  ///< a method the server does not serve
};
inline constexpr size_t kMethods = 9;
/// The RPCs of lossservice.v1.LossService (Evaluate ... ListLosses).
inline constexpr size_t kRpcs = 4;

/// "Evaluate", "Check", ...: the method's name in its service.
absl::string_view MethodName(Method method);
/// "lossservice.v1.LossService", "grpc.health.v1.Health", ...
absl::string_view ServiceName(Method method);

/// The `loss` label of a request: 0 when it is not known (the request did
/// not parse, or set no loss), then every loss of EvaluateRequest's oneof by
/// its field name ("mse", "cross_entropy", ...), then every activation of
/// ActivateRequest ("sigmoid", ...).
class LossLabel {
 public:
  static constexpr uint8_t kNone = 0;
  /// The label of EvaluateRequest's loss field `field_number` (its
  /// loss_case()); kNone for a number that is no loss.
  static uint8_t OfLoss(int field_number);
  /// The label of an ActivateRequest's activation (its enum value); kNone
  /// for ACTIVATION_UNSPECIFIED and unknown values.
  static uint8_t OfActivation(int value);
  /// Its name; "" for kNone.
  static absl::string_view Name(uint8_t label);
  /// How many labels there are, kNone included.
  static size_t Count();
};

/// Latency buckets of the request histograms, in seconds.
inline constexpr std::array<double, 18> kLatencyBuckets = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30,    60};

/// Build information: the version, the git revision, the compiler, the
/// libraries and the SIMD targets of the core.
struct BuildInfo {
  std::string version, revision, compiler, grpc, protobuf, highway;
  static const BuildInfo& Get();
  /// One line per field, for --version.
  std::string ToString() const;
};

/// The server's metrics. Thread-safe.
class Metrics {
 public:
  /// Counts read from the server when scraped.
  struct Sources {
    const CallStats* stats = nullptr;
    /// Requests waiting for a compute thread.
    std::function<int64_t()> queued;
    /// Whether the server drains.
    std::function<bool()> draining;
    int compute_threads = 0;
    int max_inflight = 0;
  };
  explicit Metrics(Sources sources);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  /// One call of `method`, as it ended.
  void RecordCall(Method method, grpc::StatusCode code) {
    calls_[Index(method)][Code(code)].fetch_add(1, std::memory_order_relaxed);
  }
  /// One request of an RPC of lossservice.v1.LossService (an Evaluate or
  /// Activate call, a request of an EvaluateStream, a ListLosses call):
  /// its loss label, status, time from arrival to answer and bytes.
  void RecordRequest(Method rpc, uint8_t loss, grpc::StatusCode code, absl::Duration latency,
                     size_t request_bytes, size_t response_bytes);
  /// A call refused because it carried no valid token.
  void RecordUnauthenticated() { unauthenticated_.fetch_add(1, std::memory_order_relaxed); }

  /// Every family, as a scrape shows them.
  std::vector<prometheus::MetricFamily> Collect() const;

  /// Serves /metrics on `address` (host:port; port 0 picks a free one).
  /// The endpoint must not outlive the metrics.
  absl::StatusOr<std::unique_ptr<prometheus::Exposer>> Serve(const std::string& address,
                                                             int* port);

 private:
  static size_t Index(Method m) { return static_cast<size_t>(m); }
  static size_t Code(grpc::StatusCode code) {
    const auto c = static_cast<size_t>(code);
    return c < kCodes ? c : static_cast<size_t>(grpc::StatusCode::UNKNOWN);
  }
  static constexpr size_t kCodes = 17;
  static constexpr size_t kMaxLabels = 32;

  struct Histogram {
    std::array<std::atomic<uint64_t>, kLatencyBuckets.size() + 1> buckets{};  // + Inf
    std::atomic<uint64_t> count{0};
    std::atomic<int64_t> sum_ns{0};
  };
  struct PerLoss {
    std::array<std::atomic<uint64_t>, kCodes> requests{};
    std::atomic<uint64_t> request_bytes{0}, response_bytes{0};
    Histogram latency;
  };
  class Collectable;

  const Sources sources_;
  std::array<std::array<std::atomic<uint64_t>, kCodes>, kMethods> calls_{};
  std::array<std::array<PerLoss, kMaxLabels>, kRpcs> requests_{};
  std::atomic<uint64_t> unauthenticated_{0};
  std::shared_ptr<Collectable> collectable_;
};

}  // namespace lossservice

#endif  // LOSSSERVICE_SERVER_METRICS_H_
