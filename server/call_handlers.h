// How calls are handled: every call of lossservice.v1.LossService is seen
// when its headers arrive, before its messages are read, by a generic
// reactor that checks its token and the drain, admits it, reads raw bytes,
// hands the work to the compute pool and finishes from there; each call is
// counted in the metrics and written to the access log once.
#ifndef LOSSSERVICE_SERVER_CALL_HANDLERS_H_
#define LOSSSERVICE_SERVER_CALL_HANDLERS_H_

#include <cstddef>
#include <set>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "core/parallel.h"
#include "grpcpp/generic/async_generic_service.h"
#include "lossservice/v1/loss_service.grpc.pb.h"
#include "server/admission.h"
#include "server/call_gate.h"
#include "server/call_stats.h"
#include "server/loss_service.h"
#include "server/metrics.h"

namespace lossservice {

/// What every call's reactor needs.
struct CallEnvironment {
  LossService& service;
  ThreadPool& pool;
  Admission& admission;
  CallStats& stats;
  CallGate& gate;
  Metrics& metrics;
  /// --max_message_mb, and in bytes.
  int max_message_mb;
  size_t max_message_bytes;
};

/// The EvaluateStream calls open now, so that a drain can end them.
/// Thread-safe.
class OpenStreams {
 public:
  class Stream {
   public:
    /// Reads no more requests; answers those read, then ends with
    /// UNAVAILABLE saying how many were answered.
    virtual void StopTakingRequests() = 0;

   protected:
    ~Stream() = default;
  };
  /// Adds `stream`; false if StopAll has already run (the stream must stop
  /// at once).
  bool Add(Stream* stream);
  void Remove(Stream* stream);
  /// Every stream open now, and every one added later, stops taking requests.
  void StopAll();

 private:
  absl::Mutex mu_;
  std::set<Stream*> streams_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

/// Evaluate, EvaluateStream and Activate, by method name, on raw bytes.
/// Unknown methods get UNIMPLEMENTED naming the method (after the token
/// check: without it, UNAUTHENTICATED).
class LossCallService final : public grpc::CallbackGenericService {
 public:
  explicit LossCallService(CallEnvironment env) : env_(env) {}
  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* context) override;

  /// See OpenStreams::StopAll.
  void StopStreams() { streams_.StopAll(); }

 private:
  CallEnvironment env_;
  OpenStreams streams_;
};

/// lossservice.v1.LossService as a registered service, so that the server
/// lists it: ListLosses is answered here on raw bytes (after the gate); the
/// other methods are marked generic and reach LossCallService.
class ListedLossService final
    : public v1::LossService::WithRawCallbackMethod_ListLosses<
          v1::LossService::WithGenericMethod_Evaluate<
              v1::LossService::WithGenericMethod_EvaluateStream<
                  v1::LossService::WithGenericMethod_Activate<v1::LossService::Service>>>> {
 public:
  explicit ListedLossService(const CallEnvironment& env) : env_(env) {}
  grpc::ServerUnaryReactor* ListLosses(grpc::CallbackServerContext* context,
                                       const grpc::ByteBuffer* request,
                                       grpc::ByteBuffer* response) override;

 private:
  const CallEnvironment env_;
};

/// The Method of a full method name ("/lossservice.v1.LossService/Evaluate").
Method MethodOf(const std::string& name);

}  // namespace lossservice

#endif  // LOSSSERVICE_SERVER_CALL_HANDLERS_H_
