#include "server/call_gate.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

namespace lossservice {
namespace {

constexpr absl::string_view kBearer = "Bearer ";

}  // namespace

bool ConstantTimeEquals(absl::string_view presented, absl::string_view expected) {
  // Every byte of `presented` is compared with a byte of `expected` (cycled
  // when it is shorter), and the lengths at the end: the loop runs as long
  // as what the client sent, whatever it holds.
  if (expected.empty()) return presented.empty();
  volatile unsigned char diff = presented.size() == expected.size() ? 0 : 1;
  for (size_t i = 0, j = 0; i < presented.size(); ++i) {
    diff = diff | static_cast<unsigned char>(presented[i] ^ expected[j]);
    j = j + 1 == expected.size() ? 0 : j + 1;
  }
  return diff == 0;
}

CallGate::Pass& CallGate::Pass::operator=(Pass&& other) noexcept {
  if (this != &other) {
    Release();
    gate_ = other.gate_;
    other.gate_ = nullptr;
  }
  return *this;
}

void CallGate::Pass::Release() {
  if (gate_ != nullptr) gate_->Leave();
  gate_ = nullptr;
}

CallGate::CallGate(std::string token, CallStats& stats, Metrics& metrics)
    : expected_(token.empty() ? std::string() : absl::StrCat(kBearer, token)),
      stats_(stats),
      metrics_(metrics) {}

grpc::Status CallGate::Authenticate(const grpc::ServerContextBase& context) {
  if (expected_.empty()) return grpc::Status::OK;
  const auto& metadata = context.client_metadata();
  const auto it = metadata.find("authorization");
  bool ok = false;
  if (it != metadata.end()) {
    const absl::string_view value(it->second.data(), it->second.size());
    // The scheme is case-insensitive (RFC 7235); the token is not.
    if (value.size() >= kBearer.size() &&
        absl::EqualsIgnoreCase(value.substr(0, kBearer.size()), kBearer)) {
      ok = ConstantTimeEquals(value.substr(kBearer.size()),
                              absl::string_view(expected_).substr(kBearer.size()));
    }
  }
  if (ok) return grpc::Status::OK;
  metrics_.RecordUnauthenticated();
  if (const int64_t n = unauthenticated_log_.Add()) {
    spdlog::warn("refused {} call{} without a valid bearer token (--auth_token_file)", n,
                 n == 1 ? "" : "s");
  }
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                      it == metadata.end()
                          ? "this server requires a bearer token: send the metadata "
                            "\"authorization: Bearer <token>\""
                          : "the bearer token is not valid");
}

grpc::Status CallGate::Check(const grpc::ServerContextBase& context) {
  grpc::Status s = Authenticate(context);
  if (!s.ok()) return s;
  if (draining_.load()) return Refuse();
  return grpc::Status::OK;
}

grpc::Status CallGate::Refuse() {
  stats_.draining_refused.fetch_add(1, std::memory_order_relaxed);
  last_refusal_ns_.store(absl::GetCurrentTimeNanos(), std::memory_order_relaxed);
  return DrainingRefusal();
}

grpc::Status CallGate::Enter(const grpc::ServerContextBase& context, Pass* pass) {
  grpc::Status s = Authenticate(context);
  if (!s.ok()) return s;
  // Counted before the drain is checked, so that the drain, which sets the
  // flag before it counts, either sees this call or is seen by it.
  held_.fetch_add(1);
  if (draining_.load()) {
    Leave();
    return Refuse();
  }
  *pass = Pass(this);
  return grpc::Status::OK;
}

void CallGate::Leave() {
  // Under the lock that WaitUntilIdle waits with: once held_ is 0 the gate
  // may be destroyed, so nothing of it is touched after the unlock (which
  // wakes the waiter).
  absl::MutexLock lock(&mu_);
  held_.fetch_sub(1);
}

void CallGate::StartDraining() {
  last_refusal_ns_.store(absl::GetCurrentTimeNanos());
  draining_.store(true);
}

void CallGate::WaitForQuiet(absl::Duration quiet, absl::Time deadline) {
  for (;;) {
    const absl::Time quiet_at =
        absl::FromUnixNanos(last_refusal_ns_.load(std::memory_order_relaxed)) + quiet;
    const absl::Time now = absl::Now();
    if (now >= quiet_at || now >= deadline) return;
    absl::SleepFor(std::min(quiet_at, deadline) - now);
  }
}

grpc::Status CallGate::DrainingRefusal() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      "the server is shutting down and takes no new calls; retry (another "
                      "replica will answer)");
}

bool CallGate::WaitUntilIdle(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithDeadline(
      absl::Condition(
          +[](std::atomic<int64_t>* held) { return held->load() == 0; }, &held_),
      deadline);
}

}  // namespace lossservice
