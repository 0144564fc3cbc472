// Proto tensors <-> core tensor views, with the contract's validation.
#ifndef LOSSSERVICE_SERVER_TENSOR_CODEC_H_
#define LOSSSERVICE_SERVER_TENSOR_CODEC_H_

#include <deque>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/tensor.h"
#include "lossservice/v1/loss_service.pb.h"

namespace lossservice {

namespace v1 = ::lossservice::v1;

/// How a request's tensor carried its values; results are sent the same way.
enum class Encoding { kTyped, kRaw };
inline Encoding EncodingOf(const v1::Tensor& t) {
  return t.raw_data().empty() ? Encoding::kTyped : Encoding::kRaw;
}
/// The encoding of an evaluation's results: the input's; an input with no
/// elements carries none, and then the target's decides.
inline Encoding EncodingOf(const v1::EvaluateRequest& q) {
  if (q.input().raw_data().empty() && q.input().float_values().empty() &&
      q.input().double_values().empty()) {
    return EncodingOf(q.target());
  }
  return EncodingOf(q.input());
}

/// Turns proto tensors into views of their values without copying (raw
/// bytes that are not aligned for their dtype are copied once). Views stay
/// valid while the decoder and the decoded messages live.
class TensorDecoder {
 public:
  /// Checks the contract's tensor rules; `field` names the tensor in
  /// messages ("input", "cross_entropy.weight").
  absl::StatusOr<TensorView> Decode(const v1::Tensor& t, absl::string_view field);

 private:
  std::deque<std::string> aligned_copies_;
};

/// Writes core outputs straight into response tensors, in `encoding`.
class ProtoAllocator final : public OutputAllocator {
 public:
  ProtoAllocator(Encoding encoding, v1::Tensor* loss, v1::Tensor* grad, v1::Tensor* output)
      : encoding_(encoding), loss_(loss), grad_(grad), output_(output) {}
  void* Allocate(Slot slot, DType dtype, absl::Span<const int64_t> shape) override;

 private:
  Encoding encoding_;
  v1::Tensor* loss_;
  v1::Tensor* grad_;
  v1::Tensor* output_;
};

/// Proto <-> core enum conversions.
v1::DataType ToProto(DType dtype);

}  // namespace lossservice

#endif  // LOSSSERVICE_SERVER_TENSOR_CODEC_H_
