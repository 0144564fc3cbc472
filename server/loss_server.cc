#include "server/loss_server.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/parallel.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "server/admission.h"
#include "server/buffer_pool.h"
#include "server/call_handlers.h"
#include "server/loss_service.h"
#include "spdlog/spdlog.h"

namespace lossservice {
namespace {

constexpr char kServiceName[] = "lossservice.v1.LossService";

// Released tensor buffers are kept for reuse up to twice the largest
// message, and at least this much.
constexpr size_t kMinCachedBufferBytes = size_t{32} << 20;

}  // namespace

LossServer::LossServer(Options options) : options_(std::move(options)) {}

LossServer::~LossServer() {
  Shutdown();
  server_.reset();
  own_pool_.reset();  // runs what is left of the work, then joins
}

int LossServer::compute_threads() const { return pool_ ? pool_->threads() : 0; }

absl::Status LossServer::Start() {
  if (server_) return absl::FailedPreconditionError("LossServer already started");
  if (options_.max_message_mb <= 0 || options_.max_message_mb > 2047) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_message_mb must be in [1, 2047], got ", options_.max_message_mb));
  }
  if (options_.compute_threads < 0 || options_.compute_threads > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("compute_threads must be in [0, 1024], got ", options_.compute_threads));
  }
  if (options_.max_inflight < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_inflight must be >= 0, got ", options_.max_inflight));
  }
  const int threads = options_.compute_threads > 0
                          ? options_.compute_threads
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  if (options_.compute_pool != nullptr) {
    pool_ = options_.compute_pool;
  } else {
    own_pool_ = std::make_unique<ThreadPool>(threads);
    pool_ = own_pool_.get();
  }
  const size_t max_bytes = static_cast<size_t>(options_.max_message_mb) << 20;
  buffers_ = std::make_unique<BufferPool>(std::max(kMinCachedBufferBytes, 2 * max_bytes));
  admission_ = std::make_unique<Admission>(options_.max_inflight, stats_);
  service_ = std::make_unique<LossService>(*pool_, *buffers_, stats_);
  calls_ = std::make_unique<LossCallService>(
      CallEnvironment{*service_, *pool_, *admission_, stats_, options_.max_message_mb, max_bytes});
  listed_ = std::make_unique<ListedLossService>(*service_);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.address, grpc::InsecureServerCredentials(), &port_);
  // gRPC's own limit sits above ours (twice it, and at least 16 MiB more),
  // so that a message over --max_message_mb reaches our check and gets a
  // message naming the flag; gRPC's still bounds what decompression may
  // produce. (gRPC 1.51 checks a message only once all of it has arrived,
  // whichever limit applies.)
  const int64_t grpc_limit = std::max<int64_t>(2 * static_cast<int64_t>(max_bytes),
                                               static_cast<int64_t>(max_bytes) + (16 << 20));
  builder.SetMaxReceiveMessageSize(static_cast<int>(std::min<int64_t>(INT_MAX, grpc_limit)));
  builder.SetMaxSendMessageSize(-1);
  // A second server on a taken port must fail, not silently share it.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(listed_.get());
  builder.RegisterCallbackGenericService(calls_.get());
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    server_.reset();
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options_.address));
  }
  server_->GetHealthCheckService()->SetServingStatus(true);
  server_->GetHealthCheckService()->SetServingStatus(kServiceName, true);
  return absl::OkStatus();
}

void LossServer::Shutdown(int grace_ms) {
  if (!server_ || shut_down_) return;
  shut_down_ = true;
  server_->GetHealthCheckService()->SetServingStatus(false);
  server_->GetHealthCheckService()->SetServingStatus(kServiceName, false);
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(grace_ms));
  server_->Wait();
}

void LossServer::Wait() {
  if (server_) server_->Wait();
}

ServerStats LossServer::stats() const {
  ServerStats s;
  s.admitted = stats_.admitted.load();
  s.refused = stats_.refused.load();
  s.in_flight = stats_.in_flight.load();
  s.queued = pool_ ? pool_->queued() : 0;
  s.started = stats_.started.load();
  s.computed = stats_.computed.load();
  s.not_started = stats_.not_started.load();
  s.cancelled = stats_.cancelled.load();
  s.stopped = stats_.stopped.load();
  s.too_large = stats_.too_large.load();
  s.unparsable = stats_.unparsable.load();
  return s;
}

}  // namespace lossservice
