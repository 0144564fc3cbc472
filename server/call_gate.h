// Who may call, and whether the server still takes calls. Every RPC but
// grpc.health.v1.Health passes the gate when its headers arrive, before any
// of its messages is read: without the bearer token (when the server has
// one) it gets UNAUTHENTICATED, and once the server drains it gets
// UNAVAILABLE. The calls of lossservice.v1.LossService that pass hold a
// place the drain waits for.
#ifndef LOSSSERVICE_SERVER_CALL_GATE_H_
#define LOSSSERVICE_SERVER_CALL_GATE_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/status.h"
#include "server/call_stats.h"
#include "server/metrics.h"
#include "server/rate_limited_log.h"

namespace lossservice {

/// Whether `presented` equals `expected`, in a time that depends on the
/// length of `presented` only (never on where the two first differ, nor on
/// the expected token's length).
bool ConstantTimeEquals(absl::string_view presented, absl::string_view expected);

/// Thread-safe.
class CallGate {
 public:
  /// `token`: the bearer token every call but health's must carry
  /// (`authorization: Bearer <token>`); empty: none needed.
  CallGate(std::string token, CallStats& stats, Metrics& metrics);

  /// A call's place, held until the call ends; the drain waits for every one.
  class Pass {
   public:
    Pass() = default;
    Pass(Pass&& other) noexcept : gate_(other.gate_) { other.gate_ = nullptr; }
    Pass& operator=(Pass&& other) noexcept;
    Pass(const Pass&) = delete;
    Pass& operator=(const Pass&) = delete;
    ~Pass() { Release(); }
    void Release();

   private:
    friend class CallGate;
    explicit Pass(CallGate* gate) : gate_(gate) {}
    CallGate* gate_ = nullptr;
  };

  /// OK, with `*pass` holding the call's place, or UNAUTHENTICATED (the
  /// token is missing or wrong) or UNAVAILABLE (the server drains).
  grpc::Status Enter(const grpc::ServerContextBase& context, Pass* pass);
  /// As Enter, for calls the drain does not wait for (reflection, unknown
  /// methods): they end when the drain begins.
  grpc::Status Check(const grpc::ServerContextBase& context);

  /// From now on every call is refused with UNAVAILABLE.
  void StartDraining();
  bool draining() const { return draining_.load(); }
  /// The status calls get while the server drains.
  static grpc::Status DrainingRefusal();

  /// Waits until no place is held, or until `deadline`; true if none is.
  bool WaitUntilIdle(absl::Time deadline);
  /// Waits until no call has been refused for `quiet` (since draining
  /// began), or until `deadline`.
  void WaitForQuiet(absl::Duration quiet, absl::Time deadline);
  /// Places held now.
  int64_t held() const { return held_.load(); }

 private:
  grpc::Status Authenticate(const grpc::ServerContextBase& context);
  grpc::Status Refuse();
  void Leave();

  const std::string expected_;  // "Bearer <token>", or empty
  CallStats& stats_;
  Metrics& metrics_;
  RateLimitedCount unauthenticated_log_;
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> held_{0};
  std::atomic<int64_t> last_refusal_ns_{0};
  // Held only to wake WaitUntilIdle when the last place is given back.
  absl::Mutex mu_;
};

}  // namespace lossservice

#endif  // LOSSSERVICE_SERVER_CALL_GATE_H_
