// Counting frequent events (refused calls) and logging them at most once a
// period, as a sum: a flood of refusals costs one log line a second.
#ifndef LOSSSERVICE_SERVER_RATE_LIMITED_LOG_H_
#define LOSSSERVICE_SERVER_RATE_LIMITED_LOG_H_

#include <atomic>
#include <cstdint>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace lossservice {

/// Thread-safe and lock-free.
class RateLimitedCount {
 public:
  explicit RateLimitedCount(absl::Duration period = absl::Seconds(1))
      : period_ns_(absl::ToInt64Nanoseconds(period)) {}

  /// Counts one event. Returns how many events to log now (those since the
  /// last report, this one included) at most once a period; 0 otherwise.
  int64_t Add() {
    unreported_.fetch_add(1, std::memory_order_relaxed);
    const int64_t now = absl::GetCurrentTimeNanos();
    int64_t last = last_ns_.load(std::memory_order_relaxed);
    if (now - last < period_ns_) return 0;
    // One thread wins the report of this period.
    if (!last_ns_.compare_exchange_strong(last, now, std::memory_order_relaxed)) return 0;
    return unreported_.exchange(0, std::memory_order_relaxed);
  }

 private:
  const int64_t period_ns_;
  std::atomic<int64_t> unreported_{0};
  std::atomic<int64_t> last_ns_{0};
};

}  // namespace lossservice

#endif  // LOSSSERVICE_SERVER_RATE_LIMITED_LOG_H_
