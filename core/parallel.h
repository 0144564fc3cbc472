// The threads a computation may use and when it must stop: a thread pool that
// its owner (the server, a benchmark, a test) creates once and hands to the
// core, and a context that carries the pool and a stop condition.
#ifndef LOSSSERVICE_CORE_PARALLEL_H_
#define LOSSSERVICE_CORE_PARALLEL_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace lossservice {

/// A fixed set of worker threads with two queues: tasks (whole requests,
/// first in, first out) and the helpers of a ParallelFor that is already
/// running, which go before any task so that work that has started finishes
/// before new work starts.
///
/// Thread-safe. The destructor runs every task already scheduled, then joins.
class ThreadPool {
 public:
  /// `threads` >= 1 workers.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  /// The number of workers, and the most threads one ParallelFor uses.
  int threads() const { return static_cast<int>(workers_.size()); }

  /// Queues `task` to run on a worker.
  void Schedule(absl::AnyInvocable<void() &&> task);

  /// Tasks scheduled and not yet started (ParallelFor helpers not counted).
  int64_t queued() const;

  /// Calls fn(i) exactly once for every i in [0, n) and returns when every
  /// call has returned. The calling thread takes part, with at most
  /// threads() - 1 workers beside it, so at most threads() threads run `fn`;
  /// a task running on this pool may call ParallelFor without deadlocking
  /// (it never waits for a call that has not started). Which thread runs
  /// which i is unspecified: results that must not depend on the thread
  /// count are written per i and combined by the caller in order of i.
  void ParallelFor(int64_t n, absl::FunctionRef<void(int64_t)> fn);

  /// True on this pool's worker threads.
  bool OnWorkerThread() const;

  /// ParallelFor calls so far (tests check that small inputs never reach
  /// the pool).
  int64_t parallel_for_calls() const { return parallel_for_calls_.load(std::memory_order_relaxed); }

 private:
  struct ForJob;
  void WorkerLoop();
  static void RunHelper(ForJob& job);

  mutable absl::Mutex mu_;
  absl::CondVar work_available_;
  std::deque<absl::AnyInvocable<void() &&>> tasks_ ABSL_GUARDED_BY(mu_);
  std::deque<std::shared_ptr<ForJob>> helpers_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<int64_t> parallel_for_calls_{0};
  std::vector<std::thread> workers_;
};

/// What one computation may use, and when it must stop. The default context
/// runs on the calling thread only and never stops.
///
/// A computation checks ShouldStop() between chunks of its work and skips the
/// chunks that remain once it is true; the caller then discards the outputs
/// (they are partly written) and reports why it stopped.
struct ComputeContext {
  /// Threads for inputs large enough to split; nullptr: the calling thread.
  ThreadPool* pool = nullptr;
  /// Set by the owner when the call is cancelled; nullptr: never.
  const std::atomic<bool>* cancelled = nullptr;
  /// Past it, the computation stops.
  absl::Time deadline = absl::InfiniteFuture();

  /// True once `cancelled` is set or `deadline` has passed.
  bool ShouldStop() const {
    if (cancelled != nullptr && cancelled->load(std::memory_order_relaxed)) return true;
    return deadline != absl::InfiniteFuture() && absl::Now() >= deadline;
  }
};

}  // namespace lossservice

#endif  // LOSSSERVICE_CORE_PARALLEL_H_
