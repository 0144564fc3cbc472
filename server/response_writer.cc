#include "server/response_writer.h"

#include <cstring>
#include <utility>
#include <vector>

#include "absl/base/config.h"
#include "lossservice/v1/loss_service.pb.h"

namespace lossservice {

static_assert(ABSL_IS_LITTLE_ENDIAN, "values are sent as they are in memory: little-endian");

void* ResponseAllocator::Allocate(Slot slot, DType dtype, absl::Span<const int64_t> shape) {
  Output& o = outputs_[Index(slot)];
  o.set = true;
  o.dtype = dtype;
  o.shape.assign(shape.begin(), shape.end());
  o.bytes = static_cast<size_t>(NumElements(shape)) * DTypeSize(dtype);
  if (o.bytes <= kInline) {
    o.data = o.inline_values;
  } else {
    o.buffer = pool_.Acquire(o.bytes);
    o.data = o.buffer.data();
  }
  return o.data;
}

void ResponseAllocator::WriteTensor(Slot slot, int field, wire::MessageWriter& out) {
  Output& o = outputs_[Index(slot)];
  if (!o.set) return;
  wire::MessageWriter t;
  t.PackedVarints(v1::Tensor::kShapeFieldNumber, o.shape);
  t.Varint(v1::Tensor::kDtypeFieldNumber, static_cast<uint64_t>(ToProto(o.dtype)));
  if (o.bytes > 0) {
    if (encoding_ == Encoding::kTyped && (o.dtype == DType::kInt64 || o.dtype == DType::kInt32)) {
      // Typed integers are varints: the one case that needs encoding.
      const int64_t n = NumElements(o.shape);
      std::vector<int64_t> v(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        if (o.dtype == DType::kInt64) {
          std::memcpy(&v[i], o.data + i * 8, 8);
        } else {
          int32_t x;
          std::memcpy(&x, o.data + i * 4, 4);
          v[i] = x;
        }
      }
      t.PackedVarints(o.dtype == DType::kInt64 ? v1::Tensor::kInt64ValuesFieldNumber
                                               : v1::Tensor::kInt32ValuesFieldNumber,
                      v);
    } else {
      int number = v1::Tensor::kRawDataFieldNumber;
      if (encoding_ == Encoding::kTyped) {
        number = o.dtype == DType::kFloat64 ? v1::Tensor::kDoubleValuesFieldNumber
                                            : v1::Tensor::kFloatValuesFieldNumber;
      }
      if (o.buffer && o.bytes > wire::kReferencedPayload) {
        t.Payload(number, BufferPool::ToSlice(std::move(o.buffer), o.bytes));
      } else {
        t.Bytes(number, absl::string_view(o.data, o.bytes));
      }
    }
  }
  out.Message(field, std::move(t));
  o.set = false;
  o.buffer = BufferPool::Buffer();
  o.data = nullptr;
}

wire::MessageWriter EvaluateResponseMessage(ResponseAllocator& outputs, bool with_grad,
                                            absl::string_view request_id) {
  wire::MessageWriter m;
  outputs.WriteTensor(OutputAllocator::Slot::kLoss, v1::EvaluateResponse::kLossFieldNumber, m);
  if (with_grad) {
    outputs.WriteTensor(OutputAllocator::Slot::kGrad, v1::EvaluateResponse::kGradFieldNumber, m);
  }
  if (!request_id.empty()) m.Bytes(v1::EvaluateResponse::kRequestIdFieldNumber, request_id);
  return m;
}

wire::MessageWriter ActivateResponseMessage(ResponseAllocator& outputs) {
  wire::MessageWriter m;
  outputs.WriteTensor(OutputAllocator::Slot::kOutput, v1::ActivateResponse::kOutputFieldNumber, m);
  return m;
}

grpc::ByteBuffer StreamResponse(wire::MessageWriter response) {
  wire::MessageWriter m;
  m.Message(v1::EvaluateStreamResponse::kResponseFieldNumber, std::move(response));
  return m.Finish();
}

grpc::ByteBuffer StreamError(const grpc::Status& status, absl::string_view request_id) {
  wire::MessageWriter error;
  if (status.error_code() != grpc::StatusCode::OK) {
    error.Varint(v1::Error::kCodeFieldNumber, static_cast<uint64_t>(status.error_code()));
  }
  if (!status.error_message().empty()) {
    error.Bytes(v1::Error::kMessageFieldNumber, status.error_message());
  }
  if (!request_id.empty()) error.Bytes(v1::Error::kRequestIdFieldNumber, request_id);
  wire::MessageWriter m;
  m.Message(v1::EvaluateStreamResponse::kErrorFieldNumber, std::move(error));
  return m.Finish();
}

}  // namespace lossservice
