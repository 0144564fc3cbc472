#include "server/reflection_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "server/access_log.h"

namespace lossservice {
namespace {

namespace pb = ::google::protobuf;

// `file` and every file it imports, each once, the file asked for first.
template <typename FileResponse>
void AddFiles(const pb::FileDescriptor* file, std::set<std::string>* sent, FileResponse* out) {
  if (!sent->insert(file->name()).second) return;
  pb::FileDescriptorProto proto;
  file->CopyTo(&proto);
  out->add_file_descriptor_proto(proto.SerializeAsString());
  for (int i = 0; i < file->dependency_count(); ++i) AddFiles(file->dependency(i), sent, out);
}

template <typename Response>
void SetError(grpc::StatusCode code, std::string message, Response* response) {
  auto* e = response->mutable_error_response();
  e->set_error_code(static_cast<int>(code));
  e->set_error_message(std::move(message));
}

// The answer to one request, the same in both versions.
template <typename Request, typename Response>
void AnswerReflection(const std::vector<std::string>& services, const Request& request,
                      Response* response) {
  const pb::DescriptorPool* pool = pb::DescriptorPool::generated_pool();
  response->set_valid_host(request.host());
  *response->mutable_original_request() = request;
  std::set<std::string> sent;
  const auto files = [&](const pb::FileDescriptor* file) {
    AddFiles(file, &sent, response->mutable_file_descriptor_response());
  };
  switch (request.message_request_case()) {
    case Request::kFileByFilename:
      if (const pb::FileDescriptor* file = pool->FindFileByName(request.file_by_filename())) {
        files(file);
      } else {
        SetError(grpc::StatusCode::NOT_FOUND,
                 absl::StrCat("no file named \"", request.file_by_filename(), "\""), response);
      }
      return;
    case Request::kFileContainingSymbol:
      if (const pb::FileDescriptor* file =
              pool->FindFileContainingSymbol(request.file_containing_symbol())) {
        files(file);
      } else {
        SetError(grpc::StatusCode::NOT_FOUND,
                 absl::StrCat("no symbol \"", request.file_containing_symbol(), "\""), response);
      }
      return;
    case Request::kFileContainingExtension: {
      const auto& ext = request.file_containing_extension();
      const pb::Descriptor* type = pool->FindMessageTypeByName(ext.containing_type());
      const pb::FieldDescriptor* field =
          type != nullptr ? pool->FindExtensionByNumber(type, ext.extension_number()) : nullptr;
      if (field != nullptr) {
        files(field->file());
      } else {
        SetError(grpc::StatusCode::NOT_FOUND,
                 absl::StrCat("no extension ", ext.extension_number(), " of \"",
                              ext.containing_type(), "\""),
                 response);
      }
      return;
    }
    case Request::kAllExtensionNumbersOfType: {
      const pb::Descriptor* type = pool->FindMessageTypeByName(request.all_extension_numbers_of_type());
      if (type == nullptr) {
        SetError(grpc::StatusCode::NOT_FOUND,
                 absl::StrCat("no message type \"", request.all_extension_numbers_of_type(), "\""),
                 response);
        return;
      }
      std::vector<const pb::FieldDescriptor*> extensions;
      pool->FindAllExtensions(type, &extensions);
      std::vector<int> numbers;
      for (const pb::FieldDescriptor* f : extensions) numbers.push_back(f->number());
      std::sort(numbers.begin(), numbers.end());
      auto* out = response->mutable_all_extension_numbers_response();
      out->set_base_type_name(type->full_name());
      for (int n : numbers) out->add_extension_number(n);
      return;
    }
    case Request::kListServices:
      for (const std::string& name : services) {
        response->mutable_list_services_response()->add_service()->set_name(name);
      }
      return;
    case Request::MESSAGE_REQUEST_NOT_SET:
      break;
  }
  SetError(grpc::StatusCode::INVALID_ARGUMENT,
           "the request sets none of file_by_filename, file_containing_symbol, "
           "file_containing_extension, all_extension_numbers_of_type and list_services",
           response);
}

}  // namespace

// One ServerReflectionInfo call: each request answered in turn, until the
// client half-closes, goes away, or EndCalls.
template <typename Version>
class ReflectionService<Version>::Call final : public grpc::ServerBidiReactor<Request, Response> {
 public:
  Call(ReflectionService& service, const grpc::CallbackServerContext* context)
      : service_(service), context_(context) {}

  void Start() {
    absl::MutexLock lock(&mu_);
    this->StartRead(&request_);
  }
  void End() {
    absl::MutexLock lock(&mu_);
    end_wanted_ = true;
    if (!writing_) MaybeFinish(CallGate::DrainingRefusal());
  }

  void OnReadDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    if (!ok) {  // the client half-closed, or the call is over
      MaybeFinish(grpc::Status::OK);
      return;
    }
    response_.Clear();
    AnswerReflection(service_.services_, request_, &response_);
    ++answered_;
    writing_ = true;
    this->StartWrite(&response_);
  }
  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      MaybeFinish(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
    } else if (end_wanted_) {
      MaybeFinish(CallGate::DrainingRefusal());
    } else if (!finished_) {
      this->StartRead(&request_);
    }
  }
  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    MaybeFinish(grpc::Status(grpc::StatusCode::CANCELLED, "the call was cancelled"));
  }
  void OnDone() override {
    {
      absl::MutexLock lock(&service_.mu_);
      service_.calls_.erase(this);
    }
    delete this;
  }

 private:
  void MaybeFinish(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    service_.metrics_.RecordCall(Version::kMethod, status.error_code());
    LogAccess({.method = Version::kMethod,
               .code = status.error_code(),
               .duration = absl::Now() - start_,
               .answered = answered_,
               .context = context_});
    this->Finish(std::move(status));
  }

  ReflectionService& service_;
  const grpc::CallbackServerContext* context_;
  const absl::Time start_ = absl::Now();
  absl::Mutex mu_;
  Request request_ ABSL_GUARDED_BY(mu_);
  Response response_ ABSL_GUARDED_BY(mu_);
  int64_t answered_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool end_wanted_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

template <typename Version>
ReflectionService<Version>::ReflectionService(std::vector<std::string> services, CallGate& gate,
                                              Metrics& metrics)
    : services_(std::move(services)), gate_(gate), metrics_(metrics) {}

template <typename Version>
grpc::ServerBidiReactor<typename Version::Request, typename Version::Response>*
ReflectionService<Version>::ServerReflectionInfo(grpc::CallbackServerContext* context) {
  grpc::Status refusal = gate_.Check(*context);
  if (!refusal.ok()) {
    metrics_.RecordCall(Version::kMethod, refusal.error_code());
    LogAccess({.method = Version::kMethod, .code = refusal.error_code(), .context = context});
    // A reactor that only finishes, and deletes itself when done.
    struct Refuse final : grpc::ServerBidiReactor<Request, Response> {
      explicit Refuse(grpc::Status s) { this->Finish(std::move(s)); }
      void OnDone() override { delete this; }
    };
    return new Refuse(std::move(refusal));
  }
  auto* call = new Call(*this, context);
  {
    absl::MutexLock lock(&mu_);
    calls_.insert(call);
  }
  call->Start();
  return call;
}

template <typename Version>
ReflectionService<Version>::~ReflectionService() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(+[](std::set<Call*>* calls) { return calls->empty(); }, &calls_));
}

template <typename Version>
void ReflectionService<Version>::EndCalls() {
  absl::MutexLock lock(&mu_);
  for (Call* call : calls_) call->End();
}

template class ReflectionService<ReflectionV1>;
template class ReflectionService<ReflectionV1alpha>;

}  // namespace lossservice
