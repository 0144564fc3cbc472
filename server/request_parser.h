// Our own parsing of request bytes: the messages of a call are parsed from
// the slices gRPC received them in, with tensor values left in place.
#ifndef LOSSSERVICE_SERVER_REQUEST_PARSER_H_
#define LOSSSERVICE_SERVER_REQUEST_PARSER_H_

#include <vector>

#include "absl/status/status.h"
#include "google/protobuf/arena.h"
#include "google/protobuf/message.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"
#include "server/buffer_pool.h"
#include "server/tensor_codec.h"

namespace lossservice {

/// Parses `slices` as one `message` (merged into it, as protobuf's parser
/// does). Slices whose bytes were copied out are dropped from `slices` as
/// the copy goes on. Tensor messages (lossservice.v1.Tensor, wherever they occur) are
/// read here: the message gets their shape and dtype, and `wire` their
/// values, which point into `slices` where a value field arrived in one
/// slice and into one copy (from `pool`) where it did not. Every other field
/// is handed to protobuf's own parser, so the result is what protobuf would
/// parse. `message` must be on an arena (entries of `wire` refer to its
/// tensors by address).
///
/// Bytes that are not a valid encoding give InvalidArgument saying what
/// failed to parse, where, and in which field.
absl::Status ParseMessage(std::vector<grpc::Slice>* slices, google::protobuf::Message* message,
                          WireTensors* wire, BufferPool& pool);

/// A request message parsed from a call's bytes, with the received slices
/// its tensor values point into.
template <typename Message>
class ParsedRequest {
 public:
  ParsedRequest() : arena_(Options(first_block_, sizeof(first_block_))) {}
  ParsedRequest(const ParsedRequest&) = delete;
  ParsedRequest& operator=(const ParsedRequest&) = delete;

  /// Parses `bytes` (see ParseMessage), taking them over: `bytes` is left
  /// empty, so that the message is not held twice once its values are
  /// copied out. Afterwards message() is what was parsed, also on failure.
  absl::Status Parse(grpc::ByteBuffer* bytes, BufferPool& pool) {
    Reset();
    message_ = google::protobuf::Arena::CreateMessage<Message>(&arena_);
    if (!bytes->Valid() || !bytes->Dump(&slices_).ok()) slices_.clear();
    bytes->Clear();
    return ParseMessage(&slices_, message_, &wire_, pool);
  }

  const Message& message() const { return *message_; }
  const WireTensors& wire() const { return wire_; }

 private:
  static google::protobuf::ArenaOptions Options(char* block, size_t size) {
    google::protobuf::ArenaOptions o;
    o.initial_block = block;
    o.initial_block_size = size;
    return o;
  }
  void Reset() {
    wire_.Clear();
    message_ = nullptr;
    arena_.Reset();
    slices_.clear();
  }

  // Small requests are parsed without touching the heap for the messages.
  alignas(8) char first_block_[2048];
  google::protobuf::Arena arena_;
  std::vector<grpc::Slice> slices_;
  WireTensors wire_;
  Message* message_ = nullptr;
};

}  // namespace lossservice

#endif  // LOSSSERVICE_SERVER_REQUEST_PARSER_H_
