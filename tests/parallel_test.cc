// ThreadPool and ComputeContext.
#include "core/parallel.h"

#include <atomic>
#include <cstdint>
#include <set>
#include <thread>
#include <vector>

#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace lossservice {
namespace {

TEST(ThreadPoolTest, ParallelForCallsEveryIndexOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 7, 1000}) {
      std::vector<std::atomic<int>> calls(static_cast<size_t>(n));
      pool.ParallelFor(n, [&](int64_t i) { calls[static_cast<size_t>(i)].fetch_add(1); });
      for (int64_t i = 0; i < n; ++i) {
        EXPECT_EQ(calls[static_cast<size_t>(i)].load(), 1) << "threads " << threads << " i " << i;
      }
    }
  }
}

TEST(ThreadPoolTest, ParallelForUsesAtMostThreadsThreads) {
  ThreadPool pool(3);
  absl::Mutex mu;
  std::set<std::thread::id> ids;
  std::atomic<int> running{0}, most{0};
  pool.ParallelFor(200, [&](int64_t) {
    const int now = running.fetch_add(1) + 1;
    int seen = most.load();
    while (now > seen && !most.compare_exchange_weak(seen, now)) {
    }
    {
      absl::MutexLock lock(&mu);
      ids.insert(std::this_thread::get_id());
    }
    absl::SleepFor(absl::Microseconds(200));
    running.fetch_sub(1);
  });
  EXPECT_LE(most.load(), 3);
  EXPECT_LE(ids.size(), 3u);
  EXPECT_GE(ids.size(), 2u);  // 200 sleeps of 200 us: the workers join in
}

// Every worker runs a task that itself calls ParallelFor: no task waits for
// a helper that could only run on a worker that is busy waiting.
TEST(ThreadPoolTest, NestedParallelForDoesNotDeadlock) {
  ThreadPool pool(2);
  constexpr int kTasks = 16;
  absl::BlockingCounter finished(kTasks);
  std::atomic<int64_t> total{0};
  for (int t = 0; t < kTasks; ++t) {
    pool.Schedule([&] {
      EXPECT_TRUE(pool.OnWorkerThread());
      pool.ParallelFor(50, [&](int64_t i) { total.fetch_add(i); });
      finished.DecrementCount();
    });
  }
  finished.Wait();
  EXPECT_EQ(total.load(), kTasks * (49 * 50 / 2));
  EXPECT_FALSE(pool.OnWorkerThread());
}

TEST(ThreadPoolTest, TasksRunInOrderOnOneWorkerAndQueuedCountsWaitingOnes) {
  ThreadPool pool(1);
  absl::Notification release;
  absl::Notification started;
  std::vector<int> order;
  pool.Schedule([&] {
    started.Notify();
    release.WaitForNotification();
  });
  started.WaitForNotification();
  for (int i = 0; i < 5; ++i) pool.Schedule([&order, i] { order.push_back(i); });
  EXPECT_EQ(pool.queued(), 5);
  release.Notify();
  absl::Notification last;
  pool.Schedule([&] { last.Notify(); });
  last.WaitForNotification();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(pool.queued(), 0);
}

TEST(ThreadPoolTest, DestructorRunsScheduledTasks) {
  std::atomic<int> ran{0};
  {
    ThreadPool pool(2);
    for (int i = 0; i < 100; ++i) pool.Schedule([&] { ran.fetch_add(1); });
  }
  EXPECT_EQ(ran.load(), 100);
}

TEST(ComputeContextTest, StopsOnCancelOrDeadline) {
  EXPECT_FALSE(ComputeContext{}.ShouldStop());
  std::atomic<bool> cancelled{false};
  ComputeContext ctx{.cancelled = &cancelled};
  EXPECT_FALSE(ctx.ShouldStop());
  cancelled = true;
  EXPECT_TRUE(ctx.ShouldStop());
  EXPECT_TRUE(ComputeContext{.deadline = absl::Now() - absl::Milliseconds(1)}.ShouldStop());
  EXPECT_FALSE(ComputeContext{.deadline = absl::Now() + absl::Hours(1)}.ShouldStop());
}

}  // namespace
}  // namespace lossservice
