#include "server/loss_server.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "server/loss_service.h"
#include "spdlog/spdlog.h"

namespace lossservice {
namespace {
constexpr char kServiceName[] = "lossservice.v1.LossService";
}  // namespace

LossServer::LossServer(Options options) : options_(std::move(options)) {}

LossServer::~LossServer() { Shutdown(); }

absl::Status LossServer::Start() {
  if (server_) return absl::FailedPreconditionError("LossServer already started");
  if (options_.max_message_mb <= 0 || options_.max_message_mb > 2047) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_message_mb must be in [1, 2047], got ", options_.max_message_mb));
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  service_ = std::make_unique<LossServiceImpl>(options_.max_inflight);

  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.address, grpc::InsecureServerCredentials(), &port_);
  builder.SetMaxReceiveMessageSize(options_.max_message_mb * 1024 * 1024);
  builder.SetMaxSendMessageSize(-1);
  // A second server on a taken port must fail, not silently share it.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(service_.get());
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

}  // namespace lossservice
