// The gRPC adapter: proto -> core views, call the core, core status -> gRPC
// status, log once. No loss math here.
#ifndef LOSSSERVICE_SERVER_LOSS_SERVICE_H_
#define LOSSSERVICE_SERVER_LOSS_SERVICE_H_

#include <atomic>
#include <string>

#include "absl/functional/function_ref.h"

#include "grpcpp/grpcpp.h"
#include "lossservice/v1/loss_service.grpc.pb.h"

namespace lossservice {

class LossServiceImpl final : public v1::LossService::CallbackService {
 public:
  /// `max_inflight`: evaluations computed at once before new ones get
  /// RESOURCE_EXHAUSTED; 0 for no limit.
  explicit LossServiceImpl(int max_inflight) : max_inflight_(max_inflight) {}

  grpc::ServerUnaryReactor* Evaluate(grpc::CallbackServerContext* context,
                                     const v1::EvaluateRequest* request,
                                     v1::EvaluateResponse* response) override;
  grpc::ServerBidiReactor<v1::EvaluateRequest, v1::EvaluateStreamResponse>* EvaluateStream(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* Activate(grpc::CallbackServerContext* context,
                                     const v1::ActivateRequest* request,
                                     v1::ActivateResponse* response) override;
  grpc::ServerUnaryReactor* ListLosses(grpc::CallbackServerContext* context,
                                       const v1::ListLossesRequest* request,
                                       v1::ListLossesResponse* response) override;

  /// One evaluation, shared by Evaluate and EvaluateStream. Logs the outcome.
  grpc::Status EvaluateOne(const v1::EvaluateRequest& request, v1::EvaluateResponse* response);

 private:
  // Counts an evaluation in flight for as long as it lives.
  class InflightSlot;

  // Runs `compute` if the in-flight limit admits it, and logs the outcome
  // once (`describe` is called only when a line is written).
  grpc::Status Run(absl::FunctionRef<grpc::Status()> compute,
                   absl::FunctionRef<std::string()> describe);

  const int max_inflight_;
  std::atomic<int> inflight_{0};
};

}  // namespace lossservice

#endif  // LOSSSERVICE_SERVER_LOSS_SERVICE_H_
