#include "server/loss_service.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/activation.h"
#include "core/loss.h"
#include "server/request_codec.h"
#include "server/status_util.h"
#include "server/tensor_codec.h"
#include "spdlog/spdlog.h"

namespace lossservice {

class LossServiceImpl::InflightSlot {
 public:
  explicit InflightSlot(LossServiceImpl& service) : service_(service) {
    const int now = service_.inflight_.fetch_add(1, std::memory_order_acq_rel) + 1;
    admitted_ = service_.max_inflight_ <= 0 || now <= service_.max_inflight_;
  }
  ~InflightSlot() { service_.inflight_.fetch_sub(1, std::memory_order_acq_rel); }
  bool admitted() const { return admitted_; }
  grpc::Status Refusal() const {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        absl::StrCat("server is at its limit of ", service_.max_inflight_,
                                     " evaluations in flight; retry with backoff"));
  }

 private:
  LossServiceImpl& service_;
  bool admitted_;
};

namespace {

using Clock = std::chrono::steady_clock;

int64_t MicrosSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count();
}

std::string Describe(const v1::Tensor& t) {
  return absl::StrCat(v1::DataType_Name(t.dtype()), "[", absl::StrJoin(t.shape(), ","), "]");
}

}  // namespace

grpc::Status LossServiceImpl::Run(absl::FunctionRef<grpc::Status()> compute,
                                  absl::FunctionRef<std::string()> describe) {
  const Clock::time_point start = Clock::now();
  InflightSlot slot(*this);
  const grpc::Status status = slot.admitted() ? compute() : slot.Refusal();
  if (status.ok()) {
    if (spdlog::should_log(spdlog::level::debug)) {
      spdlog::debug("{} -> OK in {}us", describe(), MicrosSince(start));
    }
  } else {
    spdlog::info("{} -> {}: {}", describe(), StatusCodeName(status.error_code()),
                 status.error_message());
  }
  return status;
}

grpc::Status LossServiceImpl::EvaluateOne(const v1::EvaluateRequest& request,
                                          v1::EvaluateResponse* response) {
  response->set_request_id(request.request_id());
  const grpc::Status status = Run(
      [&] {
        TensorDecoder decoder;
        absl::StatusOr<LossRequest> core = ToCoreRequest(request, decoder);
        if (!core.ok()) return ToGrpcStatus(core.status());
        ProtoAllocator out(EncodingOf(request), response->mutable_loss(),
                           response->mutable_grad(), nullptr);
        const absl::Status s = EvaluateLoss(*core, out);
        if (!core->compute_grad) response->clear_grad();
        return ToGrpcStatus(s);
      },
      [&] {
        return absl::StrCat("Evaluate id=", request.request_id(), " loss=", LossName(request),
                            " input=", Describe(request.input()));
      });
  if (!status.ok()) {
    response->clear_loss();
    response->clear_grad();
  }
  return status;
}

grpc::ServerUnaryReactor* LossServiceImpl::Evaluate(grpc::CallbackServerContext* context,
                                                    const v1::EvaluateRequest* request,
                                                    v1::EvaluateResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(EvaluateOne(*request, response));
  return reactor;
}

namespace {

// Reads a request, answers it, reads the next: one response per request, in
// order. A failed evaluation becomes an in-band Error and the stream goes on.
class EvaluateStreamReactor final
    : public grpc::ServerBidiReactor<v1::EvaluateRequest, v1::EvaluateStreamResponse> {
 public:
  explicit EvaluateStreamReactor(LossServiceImpl& service) : service_(service) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client half-closed, or the call is gone
      Finish(grpc::Status::OK);
      return;
    }
    response_.Clear();
    grpc::Status status = service_.EvaluateOne(request_, response_.mutable_response());
    if (!status.ok()) {
      v1::Error* error = response_.mutable_error();
      error->set_code(static_cast<int32_t>(status.error_code()));
      error->set_message(status.error_message());
      error->set_request_id(request_.request_id());
    }
    StartWrite(&response_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the stream was closed while writing"));
      return;
    }
    StartRead(&request_);
  }

  void OnDone() override { delete this; }

 private:
  LossServiceImpl& service_;
  v1::EvaluateRequest request_;
  v1::EvaluateStreamResponse response_;
};

}  // namespace

grpc::ServerBidiReactor<v1::EvaluateRequest, v1::EvaluateStreamResponse>*
LossServiceImpl::EvaluateStream(grpc::CallbackServerContext*) {
  return new EvaluateStreamReactor(*this);
}

grpc::ServerUnaryReactor* LossServiceImpl::Activate(grpc::CallbackServerContext* context,
                                                    const v1::ActivateRequest* request,
                                                    v1::ActivateResponse* response) {
  const grpc::Status status = Run(
      [&] {
        TensorDecoder decoder;
        absl::StatusOr<ActivationRequest> core = ToCoreRequest(*request, decoder);
        if (!core.ok()) return ToGrpcStatus(core.status());
        ProtoAllocator out(EncodingOf(request->input()), nullptr, nullptr,
                           response->mutable_output());
        return ToGrpcStatus(lossservice::Activate(*core, out));
      },
      [&] {
        return absl::StrCat("Activate ", static_cast<int>(request->activation()),
                            " input=", Describe(request->input()));
      });
  if (!status.ok()) response->Clear();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

grpc::ServerUnaryReactor* LossServiceImpl::ListLosses(grpc::CallbackServerContext* context,
                                                      const v1::ListLossesRequest*,
                                                      v1::ListLossesResponse* response) {
  for (const LossInfo& info : AllLosses()) {
    v1::LossInfo* out = response->add_losses();
    out->set_name(std::string(info.name));
    out->set_field_number(info.field_number);
    out->set_input(std::string(info.input));
    out->set_target(std::string(info.target));
    for (absl::string_view option : info.options) out->add_options(std::string(option));
    for (Reduction r : info.reductions) {
      switch (r) {
        case Reduction::kMean: out->add_reductions(v1::REDUCTION_MEAN); break;
        case Reduction::kSum: out->add_reductions(v1::REDUCTION_SUM); break;
        case Reduction::kNone: out->add_reductions(v1::REDUCTION_NONE); break;
        case Reduction::kBatchMean: out->add_reductions(v1::REDUCTION_BATCHMEAN); break;
      }
    }
    out->set_has_grad(info.has_grad);
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace lossservice
