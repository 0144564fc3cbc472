#include "server/admission.h"

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace lossservice {

Admission::Ticket& Admission::Ticket::operator=(Ticket&& other) noexcept {
  if (this != &other) {
    if (admission_ != nullptr) admission_->stats_.in_flight.fetch_sub(1, std::memory_order_acq_rel);
    admission_ = other.admission_;
    other.admission_ = nullptr;
  }
  return *this;
}

Admission::Ticket::~Ticket() {
  if (admission_ != nullptr) admission_->stats_.in_flight.fetch_sub(1, std::memory_order_acq_rel);
}

std::optional<Admission::Ticket> Admission::TryAdmit() {
  const int64_t now = stats_.in_flight.fetch_add(1, std::memory_order_acq_rel) + 1;
  if (max_inflight_ > 0 && now > max_inflight_) {
    stats_.in_flight.fetch_sub(1, std::memory_order_acq_rel);
    CountRefusal();
    return std::nullopt;
  }
  stats_.admitted.fetch_add(1, std::memory_order_relaxed);
  return Ticket(this);
}

grpc::Status Admission::Refusal() const {
  return grpc::Status(
      grpc::StatusCode::RESOURCE_EXHAUSTED,
      absl::StrCat("the server is at its limit of ", max_inflight_,
                   " requests in flight (--max_inflight=", max_inflight_, "); retry with backoff"));
}

void Admission::CountRefusal() {
  stats_.refused.fetch_add(1, std::memory_order_relaxed);
  const int64_t n = refusals_log_.Add();
  if (n == 0) return;
  spdlog::warn(
      "refused {} request{} at the limit of {} in flight (--max_inflight); {} refused in all", n,
      n == 1 ? "" : "s", max_inflight_, stats_.refused.load(std::memory_order_relaxed));
}

}  // namespace lossservice
