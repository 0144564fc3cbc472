#include "server/call_handlers.h"

#include <atomic>
#include <chrono>
#include <deque>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/response_writer.h"

namespace lossservice {
namespace {

constexpr char kEvaluate[] = "/lossservice.v1.LossService/Evaluate";
constexpr char kEvaluateStream[] = "/lossservice.v1.LossService/EvaluateStream";
constexpr char kActivate[] = "/lossservice.v1.LossService/Activate";

absl::Time DeadlineOf(const grpc::CallbackServerContext& context) {
  const auto deadline = context.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

grpc::Status TooLarge(const CallEnvironment& env, size_t bytes) {
  env.stats.too_large.fetch_add(1, std::memory_order_relaxed);
  return grpc::Status(
      grpc::StatusCode::RESOURCE_EXHAUSTED,
      absl::StrCat("the request message has ", bytes, " bytes, over the limit of ",
                   env.max_message_mb, " MiB (--max_message_mb=", env.max_message_mb, ")"));
}

grpc::Status ExpiredOnArrival(const CallEnvironment& env) {
  env.stats.not_started.fetch_add(1, std::memory_order_relaxed);
  return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                      "the deadline passed before the call arrived");
}

// Finishes at once with a status (an unknown method).
class Refuse final : public grpc::ServerGenericBidiReactor {
 public:
  explicit Refuse(grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

// Evaluate and Activate: admitted on arrival, one message read, computed on
// the pool, answered from the worker.
class UnaryCall final : public grpc::ServerGenericBidiReactor {
 public:
  enum class Method { kEvaluate, kActivate };

  UnaryCall(const CallEnvironment& env, const grpc::CallbackServerContext& context, Method method)
      : env_(env), method_(method), stop_{&cancelled_, DeadlineOf(context)} {
    if (absl::Now() >= stop_.deadline) {
      Finish(ExpiredOnArrival(env_));
      return;
    }
    ticket_ = env_.admission.TryAdmit();
    if (!ticket_) {
      Finish(env_.admission.Refusal());
      return;
    }
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The call is over (cancelled, past its deadline) or the client
      // half-closed without a message; only the latter sees this status.
      ticket_.reset();
      env_.stats.not_started.fetch_add(1, std::memory_order_relaxed);
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "the call ended without a request message"));
      return;
    }
    if (request_.Length() > env_.max_message_bytes) {
      ticket_.reset();
      Finish(TooLarge(env_, request_.Length()));
      return;
    }
    env_.pool.Schedule([this] { Compute(); });
  }

  void OnCancel() override {
    cancelled_.store(true);
    env_.stats.cancelled.fetch_add(1, std::memory_order_relaxed);
  }
  void OnDone() override { delete this; }

 private:
  // On a compute worker.
  void Compute() {
    LossService::Result r = method_ == Method::kEvaluate ? env_.service.Evaluate(&request_, stop_)
                                                         : env_.service.Activate(&request_, stop_);
    ticket_.reset();
    if (!r.status.ok()) {
      Finish(r.status);
      return;
    }
    response_ = r.response.Finish();
    StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
  }

  const CallEnvironment& env_;
  const Method method_;
  std::atomic<bool> cancelled_{false};
  const StopCondition stop_;
  std::optional<Admission::Ticket> ticket_;
  grpc::ByteBuffer request_, response_;
};

// EvaluateStream: one response per request, in order, with one request
// computing at a time; reading runs ahead by at most kReadAhead requests
// and computing by at most kWriteBehind unsent responses, so a stream holds
// a bounded amount of memory. Each request is admitted when it arrives; a
// refused, oversized or failed one gets an in-band Error and the stream
// goes on. A cancelled stream stops computing.
class StreamCall final : public grpc::ServerGenericBidiReactor {
 public:
  StreamCall(const CallEnvironment& env, const grpc::CallbackServerContext& context)
      : env_(env), stop_{&cancelled_, DeadlineOf(context)} {
    if (absl::Now() >= stop_.deadline) {
      absl::MutexLock lock(&mu_);
      finished_ = true;
      Finish(ExpiredOnArrival(env_));
      return;
    }
    absl::MutexLock lock(&mu_);
    reading_ = true;
    StartRead(&read_);
  }

  void OnReadDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    reading_ = false;
    if (!ok) {  // the client half-closed, or the call is over
      reads_done_ = true;
      MaybeFinish();
      return;
    }
    Item item;
    item.bytes.Swap(&read_);
    if (item.bytes.Length() > env_.max_message_bytes) {
      item.refusal = TooLarge(env_, item.bytes.Length());
      item.bytes.Clear();
    } else if (std::optional<Admission::Ticket> t = env_.admission.TryAdmit()) {
      item.ticket = std::move(t);
    } else {
      item.refusal = env_.admission.Refusal();
      item.bytes.Clear();
    }
    pending_.push_back(std::move(item));
    MaybeRead();
    MaybeCompute();
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    writes_.pop_front();
    if (!ok) broken_ = true;  // the client is gone
    MaybeWrite();
    MaybeCompute();
    MaybeFinish();
  }

  void OnCancel() override {
    cancelled_.store(true);
    env_.stats.cancelled.fetch_add(1, std::memory_order_relaxed);
    absl::MutexLock lock(&mu_);
    MaybeFinish();
  }

  void OnDone() override { Unref(); }

 private:
  static constexpr size_t kReadAhead = 2;
  static constexpr size_t kWriteBehind = 2;

  struct Item {
    grpc::ByteBuffer bytes;
    std::optional<Admission::Ticket> ticket;
    std::optional<grpc::Status> refusal;
  };

  bool over() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return cancelled_.load() || broken_; }

  void MaybeRead() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (reading_ || reads_done_ || over() || pending_.size() >= kReadAhead) return;
    reading_ = true;
    StartRead(&read_);
  }

  void MaybeCompute() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    while (!computing_ && !pending_.empty() && writes_.size() < kWriteBehind && !over()) {
      Item item = std::move(pending_.front());
      pending_.pop_front();
      MaybeRead();
      if (item.refusal) {
        writes_.push_back(StreamError(*item.refusal, ""));
        MaybeWrite();
        continue;
      }
      computing_ = true;
      // The worker holds its own reference: gRPC's OnDone may come while it
      // still releases the lock.
      refs_.fetch_add(1, std::memory_order_relaxed);
      env_.pool.Schedule([this, item = std::move(item)]() mutable {
        Compute(std::move(item));
        Unref();
      });
    }
  }

  // On a compute worker.
  void Compute(Item item) {
    LossService::Result r = env_.service.Evaluate(&item.bytes, stop_);
    item.ticket.reset();
    grpc::ByteBuffer out =
        r.status.ok() ? StreamResponse(std::move(r.response)) : StreamError(r.status, r.request_id);
    absl::MutexLock lock(&mu_);
    computing_ = false;
    if (!over()) {
      writes_.push_back(std::move(out));
      MaybeWrite();
    }
    MaybeCompute();
    MaybeFinish();
  }

  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  void MaybeWrite() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || writes_.empty() || over()) return;
    writing_ = true;
    StartWrite(&writes_.front());
  }

  void MaybeFinish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || computing_ || writing_) return;
    if (over()) {
      finished_ = true;
      pending_.clear();
      Finish(absl::Now() >= stop_.deadline
                 ? grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "the stream's deadline passed")
                 : grpc::Status(grpc::StatusCode::CANCELLED, "the stream was cancelled"));
      return;
    }
    if (reads_done_ && pending_.empty() && writes_.empty()) {
      finished_ = true;
      Finish(grpc::Status::OK);
    }
  }

  const CallEnvironment& env_;
  std::atomic<int> refs_{1};  // gRPC's, until OnDone, and one per computing worker
  std::atomic<bool> cancelled_{false};
  const StopCondition stop_;
  absl::Mutex mu_;
  grpc::ByteBuffer read_ ABSL_GUARDED_BY(mu_);
  std::deque<Item> pending_ ABSL_GUARDED_BY(mu_);
  std::deque<grpc::ByteBuffer> writes_ ABSL_GUARDED_BY(mu_);
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool computing_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

grpc::ServerGenericBidiReactor* LossCallService::CreateReactor(
    grpc::GenericCallbackServerContext* context) {
  const std::string& method = context->method();
  if (method == kEvaluate) return new UnaryCall(env_, *context, UnaryCall::Method::kEvaluate);
  if (method == kActivate) return new UnaryCall(env_, *context, UnaryCall::Method::kActivate);
  if (method == kEvaluateStream) return new StreamCall(env_, *context);
  return new Refuse(grpc::Status(
      grpc::StatusCode::UNIMPLEMENTED,
      absl::StrCat("unknown method ", method,
                   "; this server serves lossservice.v1.LossService "
                   "(Evaluate, EvaluateStream, Activate, ListLosses), grpc.health.v1.Health and "
                   "grpc.reflection.v1alpha.ServerReflection")));
}

grpc::ServerUnaryReactor* ListedLossService::ListLosses(grpc::CallbackServerContext* context,
                                                        const grpc::ByteBuffer* request,
                                                        grpc::ByteBuffer* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(service_.ListLosses(*request, response));
  return reactor;
}

}  // namespace lossservice
