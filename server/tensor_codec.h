// Proto tensors <-> core tensor views, with the contract's validation.
#ifndef LOSSSERVICE_SERVER_TENSOR_CODEC_H_
#define LOSSSERVICE_SERVER_TENSOR_CODEC_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/tensor.h"
#include "lossservice/v1/loss_service.pb.h"
#include "server/buffer_pool.h"

namespace lossservice {

/// The value fields of one Tensor message, wherever they are held: in the
/// message itself, or where the request parser left them (in the received
/// slices, or in one copy). `count` is in elements; for raw_data, in bytes.
/// Pointers may be unaligned.
struct TensorValues {
  struct Field {
    const char* data = nullptr;
    int64_t count = 0;
  };
  Field float_values, double_values, int64_values, int32_values, raw_data;
};

/// The values of a Tensor message held by the message.
TensorValues ValuesOf(const v1::Tensor& t);

/// The values of the Tensor messages of a parsed request that the parser
/// left outside the messages (which hold only shape and dtype), by message.
class WireTensors {
 public:
  /// The values of `t`, or nullptr if its values are in the message.
  const TensorValues* Find(const v1::Tensor* t) const;
  /// The entry of `t`, created empty if new.
  TensorValues& Entry(const v1::Tensor* t);
  /// Keeps `buffer` (which some entry points into) alive with the entries.
  const char* Keep(BufferPool::Buffer buffer);
  void Clear();

 private:
  absl::InlinedVector<std::pair<const v1::Tensor*, TensorValues>, 4> entries_;
  absl::InlinedVector<BufferPool::Buffer, 2> buffers_;
};

/// How a request's tensor carried its values; results are sent the same way.
enum class Encoding { kTyped, kRaw };

/// Turns proto tensors into views of their values without copying (values
/// that are not aligned for their dtype are copied once). Views stay valid
/// while the decoder, the decoded messages and `wire` live.
class TensorDecoder {
 public:
  /// `wire`: where a parsed request's values are (nullptr: in the messages).
  /// `pool`: where aligned copies come from (nullptr: the heap).
  explicit TensorDecoder(const WireTensors* wire = nullptr, BufferPool* pool = nullptr)
      : wire_(wire), pool_(pool) {}
  TensorDecoder(const TensorDecoder&) = delete;
  TensorDecoder& operator=(const TensorDecoder&) = delete;

  /// Checks the contract's tensor rules; `field` names the tensor in
  /// messages ("input", "cross_entropy.weight").
  absl::StatusOr<TensorView> Decode(const v1::Tensor& t, absl::string_view field);

  /// The values of `t`, wherever they are.
  TensorValues Values(const v1::Tensor& t) const;
  /// The encoding of an evaluation's results: the input's; an input with no
  /// elements carries none, and then the target's decides.
  Encoding EncodingOf(const v1::EvaluateRequest& q) const;
  /// The encoding `t` used.
  Encoding EncodingOf(const v1::Tensor& t) const;

 private:
  const char* AlignedCopy(const char* data, size_t bytes);

  const WireTensors* wire_;
  BufferPool* pool_;
  // Small copies go here; larger ones to the pool (or the heap).
  alignas(64) char scratch_[512];
  size_t scratch_used_ = 0;
  absl::InlinedVector<BufferPool::Buffer, 2> pooled_copies_;
  std::vector<std::vector<std::max_align_t>> heap_copies_;
};

/// Proto <-> core enum conversions.
v1::DataType ToProto(DType dtype);

}  // namespace lossservice

#endif  // LOSSSERVICE_SERVER_TENSOR_CODEC_H_
