// The adapter between the bytes of a call and the core: parse, decode,
// evaluate, serialize, convert the status, describe the request for the
// access log. No loss math here and no call handling (server/call_handlers.h
// drives it, and logs each call once).
#ifndef LOSSSERVICE_SERVER_LOSS_SERVICE_H_
#define LOSSSERVICE_SERVER_LOSS_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "core/parallel.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/status.h"
#include "server/buffer_pool.h"
#include "server/call_stats.h"
#include "server/wire_format.h"

namespace lossservice {

/// When a computation must stop: the call's cancellation flag (set by the
/// call when the client cancels or goes away) and its deadline.
struct StopCondition {
  const std::atomic<bool>* cancelled = nullptr;
  absl::Time deadline = absl::InfiniteFuture();
};

/// Thread-safe; every method runs on the caller's thread (a compute worker)
/// and uses the pool only for the core's own parallel chunks.
class LossService {
 public:
  /// `max_response_bytes`: the largest response's tensors (a per-sample loss
  /// of an input with no elements can be far larger than its request: [2^31,
  /// 0] asks for 2^31 losses); larger ones get RESOURCE_EXHAUSTED before
  /// anything is allocated. LossServer passes --max_message_mb.
  LossService(ThreadPool& pool, BufferPool& buffers, CallStats& stats,
              size_t max_response_bytes = kDefaultMaxResponseBytes);
  static constexpr size_t kDefaultMaxResponseBytes = size_t{64} << 20;

  /// The outcome of one request.
  struct Result {
    grpc::Status status;
    /// The request's request_id, when it parsed that far.
    std::string request_id;
    /// Its loss (or activation) as a metrics label (LossLabel).
    uint8_t loss = 0;
    /// Its input's and target's dtype and shape ("FLOAT32[2,3]"), when it
    /// parsed and its access-log line will be written (AccessLogged).
    std::string input, target;
    /// The response message, when `status` is OK.
    wire::MessageWriter response;
  };

  /// One EvaluateRequest, serialized; the bytes are taken over (`request`
  /// is left empty). Not started (DEADLINE_EXCEEDED or CANCELLED) if `stop`
  /// already holds; a result computed while it came to hold is discarded,
  /// with the same codes.
  Result Evaluate(grpc::ByteBuffer* request, const StopCondition& stop);
  /// One ActivateRequest, serialized; as Evaluate.
  Result Activate(grpc::ByteBuffer* request, const StopCondition& stop);
  /// The ListLosses answer to `request` (a ListLossesRequest).
  grpc::Status ListLosses(const grpc::ByteBuffer& request, grpc::ByteBuffer* response);

 private:
  ThreadPool& pool_;
  BufferPool& buffers_;
  CallStats& stats_;
  const size_t max_response_bytes_;
  const std::string list_losses_;  // the serialized ListLossesResponse
};

}  // namespace lossservice

#endif  // LOSSSERVICE_SERVER_LOSS_SERVICE_H_
