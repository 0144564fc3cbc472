// How calls are handled: every call of lossservice.v1.LossService is seen
// when its headers arrive, before its messages are read, by a generic
// reactor that reads raw bytes, admits the call, hands the work to the
// compute pool and finishes from there.
#ifndef LOSSSERVICE_SERVER_CALL_HANDLERS_H_
#define LOSSSERVICE_SERVER_CALL_HANDLERS_H_

#include <cstddef>

#include "core/parallel.h"
#include "grpcpp/generic/async_generic_service.h"
#include "lossservice/v1/loss_service.grpc.pb.h"
#include "server/admission.h"
#include "server/call_stats.h"
#include "server/loss_service.h"

namespace lossservice {

/// What every call's reactor needs.
struct CallEnvironment {
  LossService& service;
  ThreadPool& pool;
  Admission& admission;
  CallStats& stats;
  /// --max_message_mb, and in bytes.
  int max_message_mb;
  size_t max_message_bytes;
};

/// Evaluate, EvaluateStream and Activate, by method name, on raw bytes.
/// Unknown methods get UNIMPLEMENTED naming the method.
class LossCallService final : public grpc::CallbackGenericService {
 public:
  explicit LossCallService(CallEnvironment env) : env_(env) {}
  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* context) override;

 private:
  CallEnvironment env_;
};

/// lossservice.v1.LossService as a registered service, so that the server
/// (and server reflection) lists it: ListLosses is answered here on raw
/// bytes; the other methods are marked generic and reach LossCallService.
class ListedLossService final
    : public v1::LossService::WithRawCallbackMethod_ListLosses<
          v1::LossService::WithGenericMethod_Evaluate<
              v1::LossService::WithGenericMethod_EvaluateStream<
                  v1::LossService::WithGenericMethod_Activate<v1::LossService::Service>>>> {
 public:
  explicit ListedLossService(LossService& service) : service_(service) {}
  grpc::ServerUnaryReactor* ListLosses(grpc::CallbackServerContext* context,
                                       const grpc::ByteBuffer* request,
                                       grpc::ByteBuffer* response) override;

 private:
  LossService& service_;
};

}  // namespace lossservice

#endif  // LOSSSERVICE_SERVER_CALL_HANDLERS_H_
