// Responses written straight into the bytes gRPC sends.
#ifndef LOSSSERVICE_SERVER_RESPONSE_WRITER_H_
#define LOSSSERVICE_SERVER_RESPONSE_WRITER_H_

#include <cstddef>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/tensor.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/status.h"
#include "server/buffer_pool.h"
#include "server/tensor_codec.h"
#include "server/wire_format.h"

namespace lossservice {

/// Where the core writes its outputs: each one is a pooled buffer that then
/// becomes a slice of the serialized response, so values are written once
/// and sent without another copy (float32 and float64 values have the same
/// bytes in float_values / double_values as in raw_data: little-endian).
class ResponseAllocator final : public OutputAllocator {
 public:
  ResponseAllocator(Encoding encoding, BufferPool& pool) : encoding_(encoding), pool_(pool) {}

  void* Allocate(Slot slot, DType dtype, absl::Span<const int64_t> shape) override;

  /// Whether the core wrote `slot`.
  bool has(Slot slot) const { return outputs_[Index(slot)].set; }
  /// Appends the Tensor of `slot` as field `field` of `out`, giving its
  /// buffer to the message.
  void WriteTensor(Slot slot, int field, wire::MessageWriter& out);

 private:
  // Outputs this small (a reduced loss) live in the allocator itself.
  static constexpr size_t kInline = 256;
  struct Output {
    bool set = false;
    DType dtype = DType::kFloat32;
    Shape shape;
    BufferPool::Buffer buffer;
    alignas(64) char inline_values[kInline];
    char* data = nullptr;
    size_t bytes = 0;
  };
  static size_t Index(Slot slot) { return static_cast<size_t>(slot); }

  Encoding encoding_;
  BufferPool& pool_;
  Output outputs_[3];
};

/// EvaluateResponse {loss, grad (when `with_grad`), request_id}.
wire::MessageWriter EvaluateResponseMessage(ResponseAllocator& outputs, bool with_grad,
                                            absl::string_view request_id);
/// ActivateResponse {output}.
wire::MessageWriter ActivateResponseMessage(ResponseAllocator& outputs);
/// EvaluateStreamResponse {response}.
grpc::ByteBuffer StreamResponse(wire::MessageWriter response);
/// EvaluateStreamResponse {error {code, message, request_id}}.
grpc::ByteBuffer StreamError(const grpc::Status& status, absl::string_view request_id);

}  // namespace lossservice

#endif  // LOSSSERVICE_SERVER_RESPONSE_WRITER_H_
