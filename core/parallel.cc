#include "core/parallel.h"

#include <algorithm>
#include <utility>

namespace lossservice {
namespace {
// The pool whose worker this thread is, if any.
thread_local const ThreadPool* current_pool = nullptr;
}  // namespace

// One ParallelFor in progress. Shared by the caller and the helpers it
// queued: a helper that starts after every index was claimed only reads
// `next` and leaves, so `fn` (owned by the caller's frame) is called only
// while the caller waits.
struct ThreadPool::ForJob {
  ForJob(int64_t n, absl::FunctionRef<void(int64_t)> fn) : n(n), fn(fn) {}
  const int64_t n;
  const absl::FunctionRef<void(int64_t)> fn;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};
  absl::Mutex mu;
  absl::CondVar all_done;
};

ThreadPool::ThreadPool(int threads) {
  const int n = std::max(threads, 1);
  workers_.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    work_available_.SignalAll();
  }
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::Schedule(absl::AnyInvocable<void() &&> task) {
  absl::MutexLock lock(&mu_);
  tasks_.push_back(std::move(task));
  work_available_.Signal();
}

int64_t ThreadPool::queued() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(tasks_.size());
}

bool ThreadPool::OnWorkerThread() const { return current_pool == this; }

void ThreadPool::RunHelper(ForJob& job) {
  int64_t finished = 0;
  for (int64_t i = job.next.fetch_add(1, std::memory_order_relaxed); i < job.n;
       i = job.next.fetch_add(1, std::memory_order_relaxed)) {
    job.fn(i);
    ++finished;
  }
  if (finished == 0) return;
  if (job.done.fetch_add(finished, std::memory_order_acq_rel) + finished == job.n) {
    absl::MutexLock lock(&job.mu);
    job.all_done.SignalAll();
  }
}

void ThreadPool::ParallelFor(int64_t n, absl::FunctionRef<void(int64_t)> fn) {
  parallel_for_calls_.fetch_add(1, std::memory_order_relaxed);
  if (n <= 0) return;
  const int64_t helpers = std::min<int64_t>(n - 1, threads() - 1);
  if (helpers <= 0) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  auto job = std::make_shared<ForJob>(n, fn);
  {
    absl::MutexLock lock(&mu_);
    for (int64_t h = 0; h < helpers; ++h) helpers_.push_back(job);
    work_available_.SignalAll();
  }
  RunHelper(*job);
  absl::MutexLock lock(&job->mu);
  while (job->done.load(std::memory_order_acquire) < n) job->all_done.Wait(&job->mu);
}

void ThreadPool::WorkerLoop() {
  current_pool = this;
  while (true) {
    std::shared_ptr<ForJob> helper;
    absl::AnyInvocable<void() &&> task;
    {
      absl::MutexLock lock(&mu_);
      while (helpers_.empty() && tasks_.empty() && !stopping_) work_available_.Wait(&mu_);
      if (!helpers_.empty()) {
        helper = std::move(helpers_.front());
        helpers_.pop_front();
      } else if (!tasks_.empty()) {
        task = std::move(tasks_.front());
        tasks_.pop_front();
      } else {
        return;  // stopping, and nothing is left to run
      }
    }
    if (helper) {
      RunHelper(*helper);
    } else {
      std::move(task)();
    }
  }
}

}  // namespace lossservice
