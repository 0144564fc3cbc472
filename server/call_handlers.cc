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
#include "server/access_log.h"
#include "server/response_writer.h"
#include "server/tsan_edges.h"

namespace lossservice {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kEvaluate[] = "/lossservice.v1.LossService/Evaluate";
constexpr char kEvaluateStream[] = "/lossservice.v1.LossService/EvaluateStream";
constexpr char kActivate[] = "/lossservice.v1.LossService/Activate";
constexpr char kListLosses[] = "/lossservice.v1.LossService/ListLosses";

absl::Time DeadlineOf(const grpc::CallbackServerContext& context) {
  const auto deadline = context.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

absl::Duration Since(Clock::time_point start) { return absl::FromChrono(Clock::now() - start); }

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

// One request's sample and access-log line. `r`: the service's result, when
// the request got that far.
void Record(const CallEnvironment& env, Method rpc, const grpc::ServerContextBase& context,
            const LossService::Result* r, grpc::StatusCode code, absl::string_view message,
            Clock::time_point start, size_t in, size_t out) {
  const absl::Duration took = Since(start);
  const uint8_t loss = r != nullptr ? r->loss : LossLabel::kNone;
  env.metrics.RecordRequest(rpc, loss, code, took, in, out);
  if (!AccessLogged(code)) return;
  AccessRecord a{.method = rpc,
                 .loss = loss,
                 .code = code,
                 .message = message,
                 .duration = took,
                 .request_bytes = in,
                 .response_bytes = out,
                 .context = &context};
  if (r != nullptr) {
    a.request_id = r->request_id;
    a.input = r->input;
    a.target = r->target;
  }
  LogAccess(a);
}

// Finishes at once with a status (an unknown method, a refused call).
class Refuse final : public grpc::ServerGenericBidiReactor {
 public:
  explicit Refuse(grpc::Status status) {
    BeforeGrpcOperation(this);
    Finish(std::move(status));
  }
  void OnDone() override {
    InGrpcCallback(this);
    delete this;
  }
};

// Evaluate and Activate: through the gate and admitted on arrival, one
// message read, computed on the pool, answered from the worker.
class UnaryCall final : public grpc::ServerGenericBidiReactor {
 public:
  UnaryCall(const CallEnvironment& env, const grpc::CallbackServerContext& context, Method method)
      : env_(env), context_(context), method_(method), stop_{&cancelled_, DeadlineOf(context)} {
    if (grpc::Status s = env_.gate.Enter(context, &pass_); !s.ok()) {
      End(std::move(s), nullptr);
      return;
    }
    if (absl::Now() >= stop_.deadline) {
      End(ExpiredOnArrival(env_), nullptr);
      return;
    }
    ticket_ = env_.admission.TryAdmit();
    if (!ticket_) {
      End(env_.admission.Refusal(), nullptr);
      return;
    }
    BeforeGrpcOperation(this);
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    const GrpcCallback callback(this);
    if (!ok) {
      // The call is over (cancelled, past its deadline) or the client
      // half-closed without a message; only the latter sees this status.
      ticket_.reset();
      env_.stats.not_started.fetch_add(1, std::memory_order_relaxed);
      End(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                       "the call ended without a request message"),
          nullptr);
      return;
    }
    request_bytes_ = request_.Length();
    if (request_bytes_ > env_.max_message_bytes) {
      ticket_.reset();
      End(TooLarge(env_, request_bytes_), nullptr);
      return;
    }
    env_.pool.Schedule([this] { Compute(); });
  }

  void OnCancel() override {
    const GrpcCallback callback(this);
    cancelled_.store(true);
    env_.stats.cancelled.fetch_add(1, std::memory_order_relaxed);
  }
  void OnDone() override {  // gives back the gate's pass
    InGrpcCallback(this);
    delete this;
  }

 private:
  // On a compute worker.
  void Compute() {
    LossService::Result r = method_ == Method::kEvaluate ? env_.service.Evaluate(&request_, stop_)
                                                         : env_.service.Activate(&request_, stop_);
    ticket_.reset();
    if (!r.status.ok()) {
      End(r.status, &r);
      return;
    }
    response_ = r.response.Finish();
    Report(&r, grpc::StatusCode::OK, {}, response_.Length());
    BeforeGrpcOperation(this);
    StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
  }

  void End(grpc::Status status, const LossService::Result* r) {
    Report(r, status.error_code(), status.error_message(), 0);
    BeforeGrpcOperation(this);
    Finish(std::move(status));
  }
  void Report(const LossService::Result* r, grpc::StatusCode code, absl::string_view message,
              size_t out) {
    env_.metrics.RecordCall(method_, code);
    Record(env_, method_, context_, r, code, message, start_, request_bytes_, out);
  }

  const CallEnvironment& env_;
  const grpc::CallbackServerContext& context_;
  const Method method_;
  const Clock::time_point start_ = Clock::now();
  std::atomic<bool> cancelled_{false};
  const StopCondition stop_;
  CallGate::Pass pass_;
  std::optional<Admission::Ticket> ticket_;
  grpc::ByteBuffer request_, response_;
  size_t request_bytes_ = 0;
};

// EvaluateStream: one response per request, in order, with one request
// computing at a time; reading runs ahead by at most kReadAhead requests
// and computing by at most kWriteBehind unsent responses, so a stream holds
// a bounded amount of memory. Each request is admitted when it arrives; a
// refused, oversized or failed one gets an in-band Error and the stream
// goes on. A cancelled stream stops computing. When the drain stops it, it
// reads no more, answers what it has read, and ends with UNAVAILABLE.
class StreamCall final : public grpc::ServerGenericBidiReactor, public OpenStreams::Stream {
 public:
  StreamCall(const CallEnvironment& env, const grpc::CallbackServerContext& context,
             OpenStreams& streams)
      : env_(env), context_(context), streams_(streams), stop_{&cancelled_, DeadlineOf(context)} {
    {
      absl::MutexLock lock(&mu_);
      if (grpc::Status s = env_.gate.Enter(context, &pass_); !s.ok()) {
        FinishWith(std::move(s));
        return;
      }
      if (absl::Now() >= stop_.deadline) {
        FinishWith(ExpiredOnArrival(env_));
        return;
      }
      registered_ = true;
    }
    // Not under mu_: the drain takes the streams' lock, then each stream's.
    const bool open = streams_.Add(this);
    absl::MutexLock lock(&mu_);
    if (!open) taking_ = false;
    if (finished_) return;  // the drain stopped it meanwhile
    if (!taking_) {
      MaybeFinish();
      return;
    }
    reading_ = true;
    BeforeGrpcOperation(this);
    StartRead(&read_);
  }

  void OnReadDone(bool ok) override {
    const GrpcCallback callback(this);
    absl::MutexLock lock(&mu_);
    reading_ = false;
    if (finished_) return;
    if (!ok) {  // the client half-closed, or the call is over
      reads_done_ = true;
      MaybeFinish();
      return;
    }
    Item item;
    item.bytes.Swap(&read_);
    item.size = item.bytes.Length();
    if (item.size > env_.max_message_bytes) {
      item.refusal = TooLarge(env_, item.size);
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
    const GrpcCallback callback(this);
    absl::MutexLock lock(&mu_);
    writing_ = false;
    writes_.pop_front();
    if (!ok) broken_ = true;  // the client is gone
    MaybeWrite();
    MaybeCompute();
    MaybeFinish();
  }

  void OnCancel() override {
    const GrpcCallback callback(this);
    cancelled_.store(true);
    env_.stats.cancelled.fetch_add(1, std::memory_order_relaxed);
    absl::MutexLock lock(&mu_);
    MaybeFinish();
  }

  void StopTakingRequests() override {
    absl::MutexLock lock(&mu_);
    taking_ = false;
    MaybeFinish();
  }

  void OnDone() override {
    InGrpcCallback(this);
    bool registered;
    {
      absl::MutexLock lock(&mu_);
      registered = registered_;
    }
    if (registered) streams_.Remove(this);
    Unref();
  }

 private:
  static constexpr size_t kReadAhead = 2;
  static constexpr size_t kWriteBehind = 2;

  struct Item {
    grpc::ByteBuffer bytes;
    size_t size = 0;
    Clock::time_point arrived = Clock::now();
    std::optional<Admission::Ticket> ticket;
    std::optional<grpc::Status> refusal;
  };

  bool over() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return cancelled_.load() || broken_; }

  void MaybeRead() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (reading_ || reads_done_ || !taking_ || over() || pending_.size() >= kReadAhead) return;
    reading_ = true;
    BeforeGrpcOperation(this);
    StartRead(&read_);
  }

  void MaybeCompute() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    while (!computing_ && !pending_.empty() && writes_.size() < kWriteBehind && !over()) {
      Item item = std::move(pending_.front());
      pending_.pop_front();
      MaybeRead();
      if (item.refusal) {
        Record(env_, Method::kEvaluateStream, context_, nullptr, item.refusal->error_code(),
               item.refusal->error_message(), item.arrived, item.size, 0);
        Enqueue(StreamError(*item.refusal, ""));
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
    Record(env_, Method::kEvaluateStream, context_, &r, r.status.error_code(),
           r.status.error_message(), item.arrived, item.size, out.Length());
    absl::MutexLock lock(&mu_);
    computing_ = false;
    if (!over()) Enqueue(std::move(out));
    MaybeCompute();
    MaybeFinish();
  }

  void Enqueue(grpc::ByteBuffer response) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    writes_.push_back(std::move(response));
    ++answered_;
    MaybeWrite();
  }

  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  void MaybeWrite() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || writes_.empty() || over()) return;
    writing_ = true;
    BeforeGrpcOperation(this);
    StartWrite(&writes_.front());
  }

  void MaybeFinish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || computing_ || writing_) return;
    if (over()) {
      pending_.clear();
      FinishWith(absl::Now() >= stop_.deadline
                     ? grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                                    "the stream's deadline passed")
                     : grpc::Status(grpc::StatusCode::CANCELLED, "the stream was cancelled"));
      return;
    }
    if (!pending_.empty() || !writes_.empty()) return;
    if (reads_done_) {
      FinishWith(grpc::Status::OK);
    } else if (!taking_) {
      // The drain: what was read is answered; the rest was never read.
      FinishWith(grpc::Status(
          grpc::StatusCode::UNAVAILABLE,
          absl::StrCat("the server is shutting down: this stream's first ", answered_,
                       " requests were answered and no more were read; send the rest on a new "
                       "call")));
    }
  }

  void FinishWith(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    finished_ = true;
    env_.metrics.RecordCall(Method::kEvaluateStream, status.error_code());
    if (AccessLogged(status.error_code())) {
      LogAccess({.method = Method::kEvaluateStream,
                 .code = status.error_code(),
                 .message = status.error_message(),
                 .duration = Since(start_),
                 .answered = answered_,
                 .context = &context_});
    }
    BeforeGrpcOperation(this);
    Finish(std::move(status));
  }

  const CallEnvironment& env_;
  const grpc::CallbackServerContext& context_;
  OpenStreams& streams_;
  const Clock::time_point start_ = Clock::now();
  std::atomic<int> refs_{1};  // gRPC's, until OnDone, and one per computing worker
  std::atomic<bool> cancelled_{false};
  const StopCondition stop_;
  CallGate::Pass pass_;  // given back when the last reference goes
  absl::Mutex mu_;
  grpc::ByteBuffer read_ ABSL_GUARDED_BY(mu_);
  std::deque<Item> pending_ ABSL_GUARDED_BY(mu_);
  std::deque<grpc::ByteBuffer> writes_ ABSL_GUARDED_BY(mu_);
  int64_t answered_ ABSL_GUARDED_BY(mu_) = 0;
  bool registered_ ABSL_GUARDED_BY(mu_) = false;
  bool taking_ ABSL_GUARDED_BY(mu_) = true;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool computing_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

bool OpenStreams::Add(Stream* stream) {
  absl::MutexLock lock(&mu_);
  streams_.insert(stream);
  return !stopped_;
}

void OpenStreams::Remove(Stream* stream) {
  absl::MutexLock lock(&mu_);
  streams_.erase(stream);
}

void OpenStreams::StopAll() {
  absl::MutexLock lock(&mu_);
  stopped_ = true;
  for (Stream* s : streams_) s->StopTakingRequests();
}

Method MethodOf(const std::string& name) {
  if (name == kEvaluate) return Method::kEvaluate;
  if (name == kActivate) return Method::kActivate;
  if (name == kEvaluateStream) return Method::kEvaluateStream;
  if (name == kListLosses) return Method::kListLosses;
  return Method::kUnknown;
}

grpc::ServerGenericBidiReactor* LossCallService::CreateReactor(
    grpc::GenericCallbackServerContext* context) {
  const Method method = MethodOf(context->method());
  if (method == Method::kEvaluate || method == Method::kActivate) {
    return new UnaryCall(env_, *context, method);
  }
  if (method == Method::kEvaluateStream) return new StreamCall(env_, *context, streams_);
  grpc::Status s = env_.gate.Check(*context);
  if (s.ok()) {
    s = grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                     absl::StrCat("unknown method ", context->method(),
                                  "; this server serves lossservice.v1.LossService (Evaluate, "
                                  "EvaluateStream, Activate, ListLosses), grpc.health.v1.Health, "
                                  "grpc.reflection.v1.ServerReflection and "
                                  "grpc.reflection.v1alpha.ServerReflection"));
  }
  env_.metrics.RecordCall(Method::kUnknown, s.error_code());
  if (AccessLogged(s.error_code())) {
    LogAccess({.method = Method::kUnknown, .code = s.error_code(), .context = context});
  }
  return new Refuse(std::move(s));
}

grpc::ServerUnaryReactor* ListedLossService::ListLosses(grpc::CallbackServerContext* context,
                                                        const grpc::ByteBuffer* request,
                                                        grpc::ByteBuffer* response) {
  const Clock::time_point start = Clock::now();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  CallGate::Pass pass;
  grpc::Status s = env_.gate.Enter(*context, &pass);
  if (s.ok()) s = env_.service.ListLosses(*request, response);
  const size_t in = request->Length(), out = s.ok() ? response->Length() : 0;
  env_.metrics.RecordCall(Method::kListLosses, s.error_code());
  Record(env_, Method::kListLosses, *context, nullptr, s.error_code(), s.error_message(), start,
         in, out);
  reactor->Finish(std::move(s));
  return reactor;
}

}  // namespace lossservice
