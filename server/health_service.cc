#include "server/health_service.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/access_log.h"

namespace lossservice {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

}  // namespace

HealthState::HealthState(const std::vector<std::string>& services) {
  for (const std::string& s : services) statuses_[s] = HealthCheckResponse::SERVING;
}

std::optional<ServingStatus> HealthState::Get(const std::string& service) const {
  absl::MutexLock lock(&mu_);
  const auto it = statuses_.find(service);
  if (it == statuses_.end()) return std::nullopt;
  return it->second;
}

void HealthState::SetAll(ServingStatus status) {
  absl::MutexLock listeners(&listeners_mu_);
  {
    absl::MutexLock lock(&mu_);
    for (auto& [service, s] : statuses_) s = status;
  }
  for (Listener* l : listeners_) l->OnHealthChange();
}

void HealthState::Subscribe(Listener* listener) {
  absl::MutexLock lock(&listeners_mu_);
  listeners_.insert(listener);
}

void HealthState::Unsubscribe(Listener* listener) {
  absl::MutexLock lock(&listeners_mu_);
  listeners_.erase(listener);
}

// One Watch: the status now, then each change, until the client goes, or
// EndWatches.
class HealthService::WatchCall final : public grpc::ServerWriteReactor<HealthCheckResponse> {
 public:
  WatchCall(HealthService& service, grpc::CallbackServerContext* context, std::string name)
      : service_(service), context_(context), name_(std::move(name)) {}

  // Sends the status now (from the constructor's caller, once registered).
  void Start(bool end_after_first) {
    absl::MutexLock lock(&mu_);
    end_wanted_ = end_after_first;
    MaybeWrite();
  }
  void OnHealthChange() {
    absl::MutexLock lock(&mu_);
    MaybeWrite();
  }
  void End() {
    absl::MutexLock lock(&mu_);
    end_wanted_ = true;
    if (!writing_) MaybeFinish(grpc::Status::OK);
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {  // the client is gone
      MaybeFinish(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
      return;
    }
    MaybeWrite();
    if (!writing_ && end_wanted_) MaybeFinish(grpc::Status::OK);
  }
  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    MaybeFinish(grpc::Status(grpc::StatusCode::CANCELLED, "the watch was cancelled"));
  }
  void OnDone() override {
    service_.Remove(this);
    delete this;
  }

 private:
  ServingStatus Now() const {
    return service_.state_.Get(name_).value_or(HealthCheckResponse::SERVICE_UNKNOWN);
  }
  void MaybeWrite() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_) return;
    const ServingStatus now = Now();
    if (sent_ && now == last_) return;
    sent_ = true;
    last_ = now;
    response_.set_status(now);
    writing_ = true;
    StartWrite(&response_);
  }
  void MaybeFinish(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    service_.metrics_.RecordCall(Method::kHealthWatch, status.error_code());
    LogAccess({.method = Method::kHealthWatch,
               .code = status.error_code(),
               .duration = absl::Now() - start_,
               .context = context_});
    Finish(std::move(status));
  }

  HealthService& service_;
  const grpc::CallbackServerContext* context_;
  const std::string name_;
  const absl::Time start_ = absl::Now();
  absl::Mutex mu_;
  HealthCheckResponse response_ ABSL_GUARDED_BY(mu_);
  ServingStatus last_ ABSL_GUARDED_BY(mu_) = HealthCheckResponse::UNKNOWN;
  bool sent_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool end_wanted_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

HealthService::HealthService(HealthState& state, Metrics& metrics)
    : state_(state), metrics_(metrics) {
  state_.Subscribe(this);
}

HealthService::~HealthService() {
  state_.Unsubscribe(this);
  // The server has shut down; gRPC may still be running the last Watch's
  // OnDone on one of its threads.
  absl::MutexLock lock(&mu_);
  mu_.Await(
      absl::Condition(+[](std::set<WatchCall*>* watches) { return watches->empty(); }, &watches_));
}

grpc::ServerUnaryReactor* HealthService::Check(grpc::CallbackServerContext* context,
                                               const HealthCheckRequest* request,
                                               HealthCheckResponse* response) {
  const auto start = absl::Now();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  grpc::Status status;
  if (const std::optional<ServingStatus> s = state_.Get(request->service())) {
    response->set_status(*s);
  } else {
    status = grpc::Status(grpc::StatusCode::NOT_FOUND,
                          absl::StrCat("unknown service \"", request->service(), "\""));
  }
  metrics_.RecordCall(Method::kHealthCheck, status.error_code());
  if (AccessLogged(status.error_code())) {
    LogAccess({.method = Method::kHealthCheck,
               .code = status.error_code(),
               .duration = absl::Now() - start,
               .context = context});
  }
  reactor->Finish(std::move(status));
  return reactor;
}

grpc::ServerWriteReactor<HealthCheckResponse>* HealthService::Watch(
    grpc::CallbackServerContext* context, const HealthCheckRequest* request) {
  auto* call = new WatchCall(*this, context, request->service());
  bool ended;
  {
    absl::MutexLock lock(&mu_);
    watches_.insert(call);
    ended = ended_;
  }
  call->Start(ended);
  return call;
}

void HealthService::EndWatches() {
  absl::MutexLock lock(&mu_);
  ended_ = true;
  for (WatchCall* call : watches_) call->End();
}

void HealthService::OnHealthChange() {
  absl::MutexLock lock(&mu_);
  for (WatchCall* call : watches_) call->OnHealthChange();
}

void HealthService::Remove(WatchCall* call) {
  absl::MutexLock lock(&mu_);
  watches_.erase(call);
}

}  // namespace lossservice
