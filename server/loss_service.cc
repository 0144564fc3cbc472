#include "server/loss_service.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "core/activation.h"
#include "core/loss.h"
#include "lossservice/v1/loss_service.pb.h"
#include "server/access_log.h"
#include "server/metrics.h"
#include "server/request_codec.h"
#include "server/request_parser.h"
#include "server/response_writer.h"
#include "server/status_util.h"
#include "server/tensor_codec.h"

namespace lossservice {
namespace {

// "FLOAT32[2,3]" (the dtype as declared, else that of the typed values);
// "" for a tensor the request does not have.
// `wire`: where the parser left the values.
std::string Describe(bool has, const v1::Tensor& t, const WireTensors& wire) {
  if (!has) return {};
  v1::DataType dtype = t.dtype();
  if (dtype == v1::DATA_TYPE_UNSPECIFIED) {
    const TensorValues* at = wire.Find(&t);
    const TensorValues v = at != nullptr ? *at : ValuesOf(t);
    dtype = v.float_values.count    ? v1::DATA_TYPE_FLOAT32
            : v.double_values.count ? v1::DATA_TYPE_FLOAT64
            : v.int64_values.count  ? v1::DATA_TYPE_INT64
            : v.int32_values.count  ? v1::DATA_TYPE_INT32
                                    : v1::DATA_TYPE_UNSPECIFIED;
  }
  absl::string_view name = v1::DataType_Name(dtype);
  absl::ConsumePrefix(&name, "DATA_TYPE_");
  return absl::StrCat(name, "[", absl::StrJoin(t.shape(), ","), "]");
}

std::string SerializedLosses() {
  v1::ListLossesResponse response;
  for (const LossInfo& info : AllLosses()) {
    v1::LossInfo* out = response.add_losses();
    out->set_name(std::string(info.name));
    out->set_field_number(info.field_number);
    out->set_input(std::string(info.input));
    out->set_target(std::string(info.target));
    for (absl::string_view option : info.options) out->add_options(std::string(option));
    for (Reduction r : info.reductions) {
      switch (r) {
        case Reduction::kMean:
          out->add_reductions(v1::REDUCTION_MEAN);
          break;
        case Reduction::kSum:
          out->add_reductions(v1::REDUCTION_SUM);
          break;
        case Reduction::kNone:
          out->add_reductions(v1::REDUCTION_NONE);
          break;
        case Reduction::kBatchMean:
          out->add_reductions(v1::REDUCTION_BATCHMEAN);
          break;
      }
    }
    out->set_has_grad(info.has_grad);
  }
  return response.SerializeAsString();
}

// Why a computation is not started, or its result discarded.
grpc::Status Stopped(const ComputeContext& ctx, absl::string_view when) {
  if (ctx.deadline != absl::InfiniteFuture() && absl::Now() >= ctx.deadline) {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                        absl::StrCat("the deadline passed ", when));
  }
  return grpc::Status(grpc::StatusCode::CANCELLED, absl::StrCat("the call was cancelled ", when));
}

// One request's run: the checks around the core call that every RPC shares.
class Run {
 public:
  Run(ThreadPool& pool, CallStats& stats, const StopCondition& stop)
      : stats_(stats), ctx_{&pool, stop.cancelled, stop.deadline} {}

  const ComputeContext& ctx() const { return ctx_; }

  // Before parsing: a request whose call is already over is not started.
  bool NotStarted(LossService::Result* r) {
    if (!ctx_.ShouldStop()) {
      stats_.started.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    stats_.not_started.fetch_add(1, std::memory_order_relaxed);
    r->status = Stopped(ctx_, "before the request was started");
    return true;
  }
  // After the core: a result computed after the call ended is discarded.
  void Finish(const absl::Status& core, LossService::Result* r) {
    if (ctx_.ShouldStop()) {
      stats_.stopped.fetch_add(1, std::memory_order_relaxed);
      r->status = Stopped(ctx_, "while the request was computed; its result was discarded");
      return;
    }
    stats_.computed.fetch_add(1, std::memory_order_relaxed);
    r->status = ToGrpcStatus(core);
  }
  void Unparsable(const absl::Status& s, LossService::Result* r) {
    stats_.unparsable.fetch_add(1, std::memory_order_relaxed);
    r->status = ToGrpcStatus(s);
  }

 private:
  CallStats& stats_;
  const ComputeContext ctx_;
};

}  // namespace

LossService::LossService(ThreadPool& pool, BufferPool& buffers, CallStats& stats)
    : pool_(pool), buffers_(buffers), stats_(stats), list_losses_(SerializedLosses()) {}

namespace {

// What differs between the RPCs that compute: their messages, core call and
// response; everything else is Serve's.
struct EvaluateRpc {
  using Request = v1::EvaluateRequest;
  static std::string RequestId(const Request& q) { return q.request_id(); }
  static Encoding EncodingOf(const TensorDecoder& d, const Request& q) { return d.EncodingOf(q); }
  static absl::Status Compute(const LossRequest& core, OutputAllocator& out,
                              const ComputeContext& ctx) {
    return EvaluateLoss(core, out, ctx);
  }
  static wire::MessageWriter Respond(ResponseAllocator& out, const LossRequest& core,
                                     const std::string& request_id) {
    return EvaluateResponseMessage(out, core.compute_grad, request_id);
  }
  static uint8_t Loss(const Request& q) { return LossLabel::OfLoss(q.loss_case()); }
  static void Describe(const Request& q, const WireTensors& wire, LossService::Result* r) {
    r->input = lossservice::Describe(q.has_input(), q.input(), wire);
    r->target = lossservice::Describe(q.has_target(), q.target(), wire);
  }
};

struct ActivateRpc {
  using Request = v1::ActivateRequest;
  static std::string RequestId(const Request&) { return {}; }
  static Encoding EncodingOf(const TensorDecoder& d, const Request& q) {
    return d.EncodingOf(q.input());
  }
  static absl::Status Compute(const ActivationRequest& core, OutputAllocator& out,
                              const ComputeContext& ctx) {
    return lossservice::Activate(core, out, ctx);
  }
  static wire::MessageWriter Respond(ResponseAllocator& out, const ActivationRequest&,
                                     const std::string&) {
    return ActivateResponseMessage(out);
  }
  static uint8_t Loss(const Request& q) { return LossLabel::OfActivation(q.activation()); }
  static void Describe(const Request& q, const WireTensors& wire, LossService::Result* r) {
    r->input = lossservice::Describe(q.has_input(), q.input(), wire);
  }
};

// One request: not started if its call is over; parse, decode, compute,
// respond; discarded if the call ended meanwhile; described for the access
// log when its line will be written.
template <typename Rpc>
LossService::Result Serve(grpc::ByteBuffer* bytes, const StopCondition& stop, ThreadPool& pool,
                          BufferPool& buffers, CallStats& stats) {
  LossService::Result r;
  Run run(pool, stats, stop);
  ParsedRequest<typename Rpc::Request> parsed;
  bool parsed_any = false;
  [&] {
    if (run.NotStarted(&r)) {
      bytes->Clear();
      return;
    }
    const absl::Status parse = parsed.Parse(bytes, buffers);
    parsed_any = true;
    const typename Rpc::Request& q = parsed.message();
    r.request_id = Rpc::RequestId(q);
    r.loss = Rpc::Loss(q);
    if (!parse.ok()) {
      run.Unparsable(parse, &r);
      return;
    }
    TensorDecoder decoder(&parsed.wire(), &buffers);
    auto core = ToCoreRequest(q, decoder);
    if (!core.ok()) {
      run.Finish(core.status(), &r);
      return;
    }
    ResponseAllocator out(Rpc::EncodingOf(decoder, q), buffers);
    run.Finish(Rpc::Compute(*core, out, run.ctx()), &r);
    if (r.status.ok()) r.response = Rpc::Respond(out, *core, r.request_id);
  }();
  if (parsed_any && AccessLogged(r.status.error_code())) Rpc::Describe(parsed.message(), parsed.wire(), &r);
  return r;
}

}  // namespace

LossService::Result LossService::Evaluate(grpc::ByteBuffer* bytes, const StopCondition& stop) {
  return Serve<EvaluateRpc>(bytes, stop, pool_, buffers_, stats_);
}

LossService::Result LossService::Activate(grpc::ByteBuffer* bytes, const StopCondition& stop) {
  return Serve<ActivateRpc>(bytes, stop, pool_, buffers_, stats_);
}

grpc::Status LossService::ListLosses(const grpc::ByteBuffer& bytes, grpc::ByteBuffer* response) {
  ParsedRequest<v1::ListLossesRequest> parsed;
  grpc::ByteBuffer copy = bytes;
  if (absl::Status s = parsed.Parse(&copy, buffers_); !s.ok()) {
    stats_.unparsable.fetch_add(1, std::memory_order_relaxed);
    return ToGrpcStatus(s);
  }
  grpc::Slice slice(list_losses_.data(), list_losses_.size(), grpc::Slice::STATIC_SLICE);
  *response = grpc::ByteBuffer(&slice, 1);
  return grpc::Status::OK;
}

}  // namespace lossservice
