// The protobuf wire format on gRPC's slices: a reader over the slices a
// message arrived in, and a writer that builds a message as slices so that
// large payloads are referenced rather than copied.
#ifndef LOSSSERVICE_SERVER_WIRE_FORMAT_H_
#define LOSSSERVICE_SERVER_WIRE_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"

namespace lossservice::wire {

enum WireType : uint32_t {
  kVarint = 0,
  kFixed64 = 1,
  kLengthDelimited = 2,
  kStartGroup = 3,
  kEndGroup = 4,
  kFixed32 = 5,
};

/// "varint", "fixed64", ... for messages.
absl::string_view WireTypeName(uint32_t wire_type);

/// A read position in a message held in several slices. Every read checks
/// the end of the message and returns false at it, leaving the position
/// unspecified. A reader is a small value: copy it to come back to a
/// position.
class SliceReader {
 public:
  explicit SliceReader(absl::Span<const grpc::Slice> slices);
  /// As above; Copy() also drops the slices it has copied to the end, except
  /// those ReadContiguous() pointed into, so that a message copied out of
  /// its slices is not held twice. Copies of this reader must not be read
  /// from after a Copy().
  explicit SliceReader(std::vector<grpc::Slice>* release);

  /// Bytes consumed since the start of the message.
  size_t position() const { return position_; }
  /// The message's size.
  size_t size() const { return size_; }

  bool ReadVarint(uint64_t* value);
  bool Skip(size_t n);
  /// If the next `n` bytes lie in one slice, points `*data` at them and
  /// advances; otherwise returns false and does not move.
  bool ReadContiguous(size_t n, const char** data);
  /// Copies the next `n` bytes to `out`.
  bool Copy(size_t n, char* out);

 private:
  // Moves to the next non-empty slice once the current one is used up.
  void Normalize();

  absl::Span<const grpc::Slice> slices_;
  std::vector<grpc::Slice>* release_ = nullptr;
  bool pinned_ = false;  // ReadContiguous pointed into the current slice
  size_t index_ = 0;
  const char* cur_ = nullptr;
  const char* end_ = nullptr;
  size_t position_ = 0;
  size_t size_ = 0;
};

/// Decodes one varint at `*p` (before `end`), advancing `*p`.
bool DecodeVarint(const char** p, const char* end, uint64_t* value);

size_t VarintSize(uint64_t value);
void AppendVarint(uint64_t value, std::string* out);
inline uint64_t Tag(int field, WireType type) { return (static_cast<uint64_t>(field) << 3) | type; }

/// Payloads up to this size are copied next to their tag: a slice of its
/// own costs more than copying a few kilobytes.
inline constexpr size_t kReferencedPayload = 4096;

/// Builds one message as a sequence of slices: tags, lengths and small
/// values are gathered into copied slices, large payloads are referenced as
/// they are. Fields are written in the order of the calls; nested messages
/// are built in their own writer and then added with their length.
class MessageWriter {
 public:
  void Varint(int field, uint64_t value);
  void Bytes(int field, absl::string_view bytes);
  /// A length-delimited field whose content is `payload`: referenced when
  /// large, copied when small.
  void Payload(int field, grpc::Slice payload);
  /// Packed varints (int64 and int32 values, shapes).
  void PackedVarints(int field, absl::Span<const int64_t> values);
  /// A nested message, with its length prefix.
  void Message(int field, MessageWriter child);

  /// Bytes written so far.
  size_t size() const { return size_; }
  /// The message; the writer is left empty.
  grpc::ByteBuffer Finish();

 private:
  void Flush();

  std::vector<grpc::Slice> slices_;
  std::string pending_;
  size_t size_ = 0;
};

}  // namespace lossservice::wire

#endif  // LOSSSERVICE_SERVER_WIRE_FORMAT_H_
