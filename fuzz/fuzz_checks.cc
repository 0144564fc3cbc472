#include "fuzz/fuzz_checks.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/parallel.h"
#include "google/protobuf/arena.h"
#include "google/protobuf/stubs/logging.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"
#include "lossservice/v1/loss_service.pb.h"
#include "server/buffer_pool.h"
#include "server/call_stats.h"
#include "server/loss_service.h"
#include "server/request_parser.h"
#include "server/response_writer.h"
#include "server/status_util.h"
#include "server/tensor_codec.h"
#include "server/wire_format.h"
#include "spdlog/spdlog.h"

namespace lossservice::fuzz {
namespace {

namespace pb = ::google::protobuf;

// What the server keeps for reuse by default (LossServer: twice the 64 MiB
// message limit).
constexpr size_t kCachedBufferBytes = size_t{128} << 20;

// ---- cutting the bytes into slices ------------------------------------------------------------

uint64_t Fnv1a(absl::string_view bytes) {
  uint64_t h = 1469598103934665603u;
  for (char c : bytes) {
    h ^= static_cast<uint8_t>(c);
    h *= 1099511628211u;
  }
  return h;
}

uint64_t SplitMix(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

// The slices gRPC could have received `bytes` in, chosen from the bytes
// themselves so that an input is always cut the same way: one slice, one
// slice per byte, or runs of up to 64 or 4096 bytes.
std::vector<grpc::Slice> Cut(absl::string_view bytes) {
  uint64_t state = Fnv1a(bytes);
  const uint64_t style = SplitMix(&state) % 4;
  std::vector<grpc::Slice> slices;
  if (style == 0 || bytes.empty()) {
    slices.emplace_back(bytes.data(), bytes.size());
    return slices;
  }
  const size_t longest = style == 1 ? 1 : style == 2 ? 64 : 4096;
  for (size_t at = 0; at < bytes.size();) {
    const size_t n = std::min(bytes.size() - at, 1 + SplitMix(&state) % longest);
    slices.emplace_back(bytes.data() + at, n);
    at += n;
  }
  return slices;
}

grpc::ByteBuffer ToBuffer(std::vector<grpc::Slice> slices) {
  return grpc::ByteBuffer(slices.data(), slices.size());
}

std::string ToString(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Valid() || !buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

// ---- our parser against protobuf's --------------------------------------------------------------

// Every Tensor message in `m`, with its path.
void CollectTensors(const pb::Message& m, const std::string& path,
                    std::vector<std::pair<std::string, const v1::Tensor*>>* out) {
  std::vector<const pb::FieldDescriptor*> fields;
  m.GetReflection()->ListFields(m, &fields);
  for (const pb::FieldDescriptor* f : fields) {
    if (f->message_type() == nullptr) continue;
    const std::string here = path.empty() ? f->name() : absl::StrCat(path, ".", f->name());
    const int n = f->is_repeated() ? m.GetReflection()->FieldSize(m, f) : 1;
    for (int i = 0; i < n; ++i) {
      const pb::Message& sub = f->is_repeated() ? m.GetReflection()->GetRepeatedMessage(m, f, i)
                                                : m.GetReflection()->GetMessage(m, f);
      if (f->message_type() == v1::Tensor::descriptor()) {
        out->emplace_back(here, static_cast<const v1::Tensor*>(&sub));
      } else {
        CollectTensors(sub, here, out);
      }
    }
  }
}

// `m` without the value fields of its tensors (our parser leaves them out
// of the message).
void StripValues(pb::Message* m) {
  std::vector<const pb::FieldDescriptor*> fields;
  m->GetReflection()->ListFields(*m, &fields);
  for (const pb::FieldDescriptor* f : fields) {
    if (f->message_type() == nullptr) continue;
    const int n = f->is_repeated() ? m->GetReflection()->FieldSize(*m, f) : 1;
    for (int i = 0; i < n; ++i) {
      pb::Message* sub = f->is_repeated() ? m->GetReflection()->MutableRepeatedMessage(m, f, i)
                                          : m->GetReflection()->MutableMessage(m, f);
      if (f->message_type() == v1::Tensor::descriptor()) {
        auto* t = static_cast<v1::Tensor*>(sub);
        t->clear_float_values();
        t->clear_double_values();
        t->clear_int64_values();
        t->clear_int32_values();
        t->clear_raw_data();
      } else {
        StripValues(sub);
      }
    }
  }
}

std::string FieldBytes(const TensorValues::Field& f, size_t width) {
  return f.count == 0 ? std::string() : std::string(f.data, static_cast<size_t>(f.count) * width);
}

// Our parser on `slices` and protobuf's on the same bytes must agree: both
// refuse them, or both accept them with the same message and the same
// tensor values.
template <typename Message>
std::string CompareParsers(std::vector<grpc::Slice> slices, bool protobuf_ok,
                           const Message& want, BufferPool& pool) {
  pb::Arena arena;
  auto* got = pb::Arena::CreateMessage<Message>(&arena);
  WireTensors wire;
  const absl::Status ours = ParseMessage(&slices, got, &wire, pool);
  if (ours.ok() != protobuf_ok) {
    return absl::StrCat("protobuf's parser ", protobuf_ok ? "accepts" : "refuses",
                        " the bytes, ours says: ", ours.ToString());
  }
  if (!ours.ok()) return "";
  Message got_stripped = *got, want_stripped = want;
  StripValues(&got_stripped);
  StripValues(&want_stripped);
  // As bytes: a NaN option equals itself there.
  if (got_stripped.SerializeAsString() != want_stripped.SerializeAsString()) {
    return absl::StrCat("our parser's message differs from protobuf's: ours ",
                        got_stripped.ShortDebugString(), " protobuf's ",
                        want_stripped.ShortDebugString());
  }
  std::vector<std::pair<std::string, const v1::Tensor*>> got_tensors, want_tensors;
  CollectTensors(*got, "", &got_tensors);
  CollectTensors(want, "", &want_tensors);
  if (got_tensors.size() != want_tensors.size()) {
    return absl::StrCat("our parser found ", got_tensors.size(), " tensors, protobuf's ",
                        want_tensors.size());
  }
  TensorDecoder decoder(&wire);
  for (size_t i = 0; i < got_tensors.size(); ++i) {
    const TensorValues g = decoder.Values(*got_tensors[i].second);
    const TensorValues w = ValuesOf(*want_tensors[i].second);
    if (got_tensors[i].first != want_tensors[i].first ||
        FieldBytes(g.float_values, 4) != FieldBytes(w.float_values, 4) ||
        FieldBytes(g.double_values, 8) != FieldBytes(w.double_values, 8) ||
        FieldBytes(g.int64_values, 8) != FieldBytes(w.int64_values, 8) ||
        FieldBytes(g.int32_values, 4) != FieldBytes(w.int32_values, 4) ||
        FieldBytes(g.raw_data, 1) != FieldBytes(w.raw_data, 1)) {
      return absl::StrCat("the values of ", want_tensors[i].first,
                          " differ between our parser and protobuf's");
    }
  }
  return "";
}

// ---- what an answer must be -----------------------------------------------------------------------

std::string ShapeOf(const v1::Tensor& t) { return absl::StrCat("[", absl::StrJoin(t.shape(), ", "), "]"); }

// A result tensor: decodes under the contract's rules, has `dtype`, and
// uses `encoding`.
std::string CheckTensor(const v1::Tensor& t, absl::string_view name, DType dtype,
                        Encoding encoding) {
  TensorDecoder decoder;
  absl::StatusOr<TensorView> view = decoder.Decode(t, name);
  if (!view.ok()) return absl::StrCat("the response's ", view.status().message());
  if (view->dtype != dtype) {
    return absl::StrCat("the response's ", name, " is ", DTypeName(view->dtype), ", the input ",
                        DTypeName(dtype));
  }
  const bool typed = t.float_values_size() + t.double_values_size() + t.int64_values_size() +
                         t.int32_values_size() >
                     0;
  if ((encoding == Encoding::kRaw && typed) || (encoding == Encoding::kTyped && !t.raw_data().empty())) {
    return absl::StrCat("the response's ", name, " does not use the request's encoding");
  }
  return "";
}

// What holds of every outcome of one request: the code is one a client's
// bytes may cause, and a failure has a message of at most
// kMaxErrorMessage bytes and no response.
std::string CheckStatus(const LossService::Result& r, bool protobuf_ok,
                        absl::string_view message_name) {
  const grpc::StatusCode code = r.status.error_code();
  if (code != grpc::StatusCode::OK && code != grpc::StatusCode::INVALID_ARGUMENT &&
      code != grpc::StatusCode::RESOURCE_EXHAUSTED) {
    return absl::StrCat("code ", StatusCodeName(code), ": ", r.status.error_message());
  }
  if (code == grpc::StatusCode::OK) return "";
  if (r.status.error_message().empty()) return absl::StrCat(StatusCodeName(code), " without a message");
  if (r.status.error_message().size() > kMaxErrorMessage) {
    return absl::StrCat("a message of ", r.status.error_message().size(), " bytes");
  }
  if (r.response.size() != 0) return "a failed request has a response";
  const std::string unparsable = absl::StrCat("request does not parse as ", message_name, ": ");
  if (!protobuf_ok && (code != grpc::StatusCode::INVALID_ARGUMENT ||
                       !absl::StartsWith(r.status.error_message(), unparsable))) {
    return absl::StrCat("bytes protobuf refuses got ", StatusCodeName(code), ": ",
                        r.status.error_message());
  }
  return "";
}

std::string CheckEvaluateAnswer(const v1::EvaluateRequest& q, const std::string& bytes) {
  v1::EvaluateResponse response;
  if (!response.ParseFromString(bytes)) return "the response does not parse";
  if (response.request_id() != q.request_id()) return "the response's request_id differs";
  TensorDecoder decoder;
  absl::StatusOr<TensorView> input = decoder.Decode(q.input(), "input");
  if (!input.ok()) return absl::StrCat("answered a request whose ", input.status().message());
  const Encoding encoding = decoder.EncodingOf(q);
  if (!response.has_loss()) return "the response has no loss";
  std::string failure = CheckTensor(response.loss(), "loss", input->dtype, encoding);
  if (!failure.empty()) return failure;
  if (q.reduction() != v1::REDUCTION_NONE && response.loss().shape_size() != 0) {
    return absl::StrCat("a reduced loss of shape ", ShapeOf(response.loss()));
  }
  if (response.has_grad() != q.compute_grad()) return "a gradient that was not asked for, or none";
  if (!q.compute_grad()) return "";
  if (ShapeOf(response.grad()) != ShapeOf(q.input())) {
    return absl::StrCat("a gradient of shape ", ShapeOf(response.grad()), " for an input of ",
                        ShapeOf(q.input()));
  }
  return CheckTensor(response.grad(), "grad", input->dtype, encoding);
}

std::string CheckActivateAnswer(const v1::ActivateRequest& q, const std::string& bytes) {
  v1::ActivateResponse response;
  if (!response.ParseFromString(bytes)) return "the response does not parse";
  TensorDecoder decoder;
  absl::StatusOr<TensorView> input = decoder.Decode(q.input(), "input");
  if (!input.ok()) return absl::StrCat("answered a request whose ", input.status().message());
  if (!response.has_output()) return "the response has no output";
  if (ShapeOf(response.output()) != ShapeOf(q.input())) {
    return absl::StrCat("an output of shape ", ShapeOf(response.output()), " for an input of ",
                        ShapeOf(q.input()));
  }
  return CheckTensor(response.output(), "output", input->dtype, decoder.EncodingOf(q.input()));
}

// The answer an EvaluateStream call sends for a request's result.
grpc::ByteBuffer StreamAnswer(LossService::Result r) {
  return r.status.ok() ? StreamResponse(std::move(r.response))
                       : StreamError(r.status, r.request_id);
}

}  // namespace

absl::string_view TargetName(Target target) {
  switch (target) {
    case Target::kEvaluate:
      return "evaluate";
    case Target::kActivate:
      return "activate";
    case Target::kStream:
      return "stream";
  }
  return "unknown";
}

std::string EncodeStreamItem(absl::string_view request, bool cancelled) {
  std::string out;
  wire::AppendVarint((static_cast<uint64_t>(request.size()) << 1) | (cancelled ? 1 : 0), &out);
  out.append(request.data(), request.size());
  return out;
}

void QuietLogs() {
  spdlog::set_level(spdlog::level::off);
  pb::SetLogHandler(nullptr);
}

struct Harness::State {
  ThreadPool pool{1};
  BufferPool buffers{kCachedBufferBytes};
  CallStats stats;
  LossService service{pool, buffers, stats};

  // One request through the service, as a unary call runs it.
  template <typename Message, typename CheckAnswer>
  std::string Unary(absl::string_view bytes, CheckAnswer check_answer) {
    Message want;
    const bool protobuf_ok = want.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
    std::string failure = CompareParsers(Cut(bytes), protobuf_ok, want, buffers);
    if (!failure.empty()) return failure;
    grpc::ByteBuffer request = ToBuffer(Cut(bytes));
    LossService::Result r = std::is_same_v<Message, v1::EvaluateRequest>
                                ? service.Evaluate(&request, {})
                                : service.Activate(&request, {});
    failure = CheckStatus(r, protobuf_ok, Message::descriptor()->full_name());
    if (!failure.empty() || !r.status.ok()) return failure;
    return check_answer(want, ToString(r.response.Finish()));
  }

  std::string Stream(absl::string_view bytes) {
    const char* p = bytes.data();
    const char* end = p + bytes.size();
    for (int item = 0; p < end; ++item) {
      uint64_t header;
      if (!wire::DecodeVarint(&p, end, &header)) break;
      const size_t size = std::min<uint64_t>(header >> 1, static_cast<uint64_t>(end - p));
      const absl::string_view request(p, size);
      p += size;
      std::string failure = StreamItem(request, (header & 1) != 0);
      if (!failure.empty()) return absl::StrCat("item ", item, ": ", failure);
    }
    return "";
  }

  std::string StreamItem(absl::string_view bytes, bool cancelled) {
    const int64_t started = stats.started.load(), not_started = stats.not_started.load();
    const int64_t ended =
        stats.computed.load() + stats.unparsable.load() + stats.stopped.load();
    std::atomic<bool> cancelled_flag{cancelled};
    grpc::ByteBuffer request = ToBuffer(Cut(bytes));
    LossService::Result r = service.Evaluate(&request, {&cancelled_flag, absl::InfiniteFuture()});
    if (request.Valid() && request.Length() > 0) return "the request's bytes were not taken over";
    if (cancelled) {
      if (r.status.error_code() != grpc::StatusCode::CANCELLED ||
          r.status.error_message() != "the call was cancelled before the request was started") {
        return absl::StrCat("a cancelled item got ", StatusCodeName(r.status.error_code()), ": ",
                            r.status.error_message());
      }
      if (stats.not_started.load() != not_started + 1 || stats.started.load() != started) {
        return "a cancelled item was started";
      }
      return "";
    }
    if (stats.started.load() != started + 1 ||
        stats.computed.load() + stats.unparsable.load() + stats.stopped.load() != ended + 1) {
      return "the counters do not add up: an item must be started and then end once";
    }
    v1::EvaluateRequest want;
    const bool protobuf_ok = want.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
    std::string failure = CheckStatus(r, protobuf_ok, v1::EvaluateRequest::descriptor()->full_name());
    if (!failure.empty()) return failure;
    const grpc::Status status = r.status;
    const std::string request_id = r.request_id;
    const std::string answer = ToString(StreamAnswer(std::move(r)));

    // The same bytes on a service of its own: an answer must not depend on
    // what the buffers held before.
    BufferPool fresh_buffers(kCachedBufferBytes);
    CallStats fresh_stats;
    LossService fresh(pool, fresh_buffers, fresh_stats);
    grpc::ByteBuffer again = ToBuffer(Cut(bytes));
    if (ToString(StreamAnswer(fresh.Evaluate(&again, {}))) != answer) {
      return "the answer differs from the same request's on a fresh service";
    }

    v1::EvaluateStreamResponse sent;
    if (!sent.ParseFromString(answer)) return "the stream's answer does not parse";
    if (status.ok()) {
      if (!sent.has_response()) return "an OK result was not sent as a response";
      return CheckEvaluateAnswer(want, sent.response().SerializeAsString());
    }
    if (!sent.has_error() || sent.error().code() != static_cast<int>(status.error_code()) ||
        sent.error().message() != status.error_message() ||
        sent.error().request_id() != request_id) {
      return absl::StrCat("the in-band Error differs from the result: ", sent.ShortDebugString());
    }
    if (protobuf_ok && request_id != want.request_id()) return "the Error's request_id differs";
    return "";
  }
};

Harness::Harness() : state_(std::make_unique<State>()) {}
Harness::~Harness() = default;

std::string Harness::Check(Target target, absl::string_view bytes) {
  switch (target) {
    case Target::kEvaluate:
      return state_->Unary<v1::EvaluateRequest>(bytes, CheckEvaluateAnswer);
    case Target::kActivate:
      return state_->Unary<v1::ActivateRequest>(bytes, CheckActivateAnswer);
    case Target::kStream:
      return state_->Stream(bytes);
  }
  return "unknown target";
}

}  // namespace lossservice::fuzz
