// Admission at arrival: the in-flight limit.
#ifndef LOSSSERVICE_SERVER_ADMISSION_H_
#define LOSSSERVICE_SERVER_ADMISSION_H_

#include <atomic>
#include <cstdint>
#include <optional>

#include "grpcpp/support/status.h"
#include "server/call_stats.h"
#include "server/rate_limited_log.h"

namespace lossservice {

/// Bounds the requests admitted (waiting for the compute pool, or computing)
/// by --max_inflight. A call asks when it arrives, before its message is
/// read; beyond the limit it is refused at once. Refusals are counted and
/// logged at most once a second. Thread-safe.
class Admission {
 public:
  /// `max_inflight` <= 0: no limit.
  Admission(int max_inflight, CallStats& stats) : max_inflight_(max_inflight), stats_(stats) {}

  /// A request's place; gives it back when destroyed.
  class Ticket {
   public:
    Ticket(Ticket&& other) noexcept : admission_(other.admission_) { other.admission_ = nullptr; }
    Ticket& operator=(Ticket&& other) noexcept;
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    ~Ticket();

   private:
    friend class Admission;
    explicit Ticket(Admission* admission) : admission_(admission) {}
    Admission* admission_;
  };

  /// A ticket, or nullopt (counted, and logged at most once a second) when
  /// the server is at its limit.
  std::optional<Ticket> TryAdmit();

  /// The status of a refused call: RESOURCE_EXHAUSTED naming the limit and
  /// the flag.
  grpc::Status Refusal() const;

  int max_inflight() const { return max_inflight_; }

 private:
  void CountRefusal();

  const int max_inflight_;
  CallStats& stats_;
  RateLimitedCount refusals_log_;
};

}  // namespace lossservice

#endif  // LOSSSERVICE_SERVER_ADMISSION_H_
