// What the server's calls did, counted as they happen.
#ifndef LOSSSERVICE_SERVER_CALL_STATS_H_
#define LOSSSERVICE_SERVER_CALL_STATS_H_

#include <atomic>
#include <cstdint>

namespace lossservice {

/// A snapshot of CallStats.
struct ServerStats {
  int64_t admitted = 0;     ///< requests admitted under --max_inflight
  int64_t refused = 0;      ///< refused at arrival over --max_inflight
  int64_t in_flight = 0;    ///< admitted and not yet computed (queued or computing)
  int64_t queued = 0;       ///< waiting for a compute thread
  int64_t started = 0;      ///< evaluations started on a compute thread
  int64_t computed = 0;     ///< evaluations run to their end (results or client mistakes)
  int64_t not_started = 0;  ///< ended before their computation started (cancelled, past the
                            ///< deadline, or no message), from arrival to the pool
  int64_t cancelled = 0;    ///< calls that ended before their answer (the client cancelled or
                            ///< went away, or the deadline passed)
  int64_t stopped = 0;      ///< stopped while computing (cancelled or past their deadline)
  int64_t too_large = 0;    ///< messages over --max_message_mb
  int64_t unparsable = 0;   ///< messages that did not parse
  int64_t draining_refused = 0;  ///< calls refused (UNAVAILABLE) while the server drained
};

/// The server's counters. Thread-safe.
struct CallStats {
  std::atomic<int64_t> admitted{0}, refused{0}, in_flight{0}, started{0}, computed{0},
      not_started{0}, cancelled{0}, stopped{0}, too_large{0}, unparsable{0}, draining_refused{0};
};

}  // namespace lossservice

#endif  // LOSSSERVICE_SERVER_CALL_STATS_H_
