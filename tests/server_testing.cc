#include "tests/server_testing.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/client_interceptor.h"
#include "gtest/gtest.h"

namespace lossservice::test {

using golden::GoldenCase;

v1::Tensor ToProto(const Tensor& t, Encoding encoding) {
  v1::Tensor p;
  for (int64_t d : t.shape) p.add_shape(d);
  p.set_dtype(lossservice::ToProto(t.dtype));
  if (encoding == Encoding::kRaw) {
    p.set_raw_data(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
    return p;
  }
  const int64_t n = t.numel();
  switch (t.dtype) {
    case DType::kFloat32:
      p.mutable_float_values()->Add(t.data_as<float>(), t.data_as<float>() + n);
      break;
    case DType::kFloat64:
      p.mutable_double_values()->Add(t.data_as<double>(), t.data_as<double>() + n);
      break;
    case DType::kInt64:
      p.mutable_int64_values()->Add(t.data_as<int64_t>(), t.data_as<int64_t>() + n);
      break;
    case DType::kInt32:
      p.mutable_int32_values()->Add(t.data_as<int32_t>(), t.data_as<int32_t>() + n);
      break;
  }
  return p;
}

v1::Tensor Floats(std::vector<int64_t> shape, std::vector<float> values) {
  v1::Tensor p;
  for (int64_t d : shape) p.add_shape(d);
  p.mutable_float_values()->Add(values.begin(), values.end());
  return p;
}

v1::Tensor Int64s(std::vector<int64_t> shape, std::vector<int64_t> values) {
  v1::Tensor p;
  for (int64_t d : shape) p.add_shape(d);
  p.mutable_int64_values()->Add(values.begin(), values.end());
  return p;
}

v1::Tensor RawFloats(std::vector<int64_t> shape, const std::vector<float>& values) {
  v1::Tensor p;
  for (int64_t d : shape) p.add_shape(d);
  p.set_dtype(v1::DATA_TYPE_FLOAT32);
  p.set_raw_data(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
  return p;
}

v1::EvaluateRequest Mse(v1::Tensor input, v1::Tensor target) {
  v1::EvaluateRequest q;
  *q.mutable_input() = std::move(input);
  *q.mutable_target() = std::move(target);
  q.mutable_mse();
  return q;
}

v1::EvaluateRequest BigCrossEntropy(int rows, int classes) {
  v1::EvaluateRequest q;
  *q.mutable_input() =
      RawFloats({rows, classes}, std::vector<float>(static_cast<size_t>(rows) * classes, 0.5f));
  v1::Tensor* t = q.mutable_target();
  t->add_shape(rows);
  t->set_dtype(v1::DATA_TYPE_INT64);
  const std::vector<int64_t> targets(static_cast<size_t>(rows), 3);
  t->set_raw_data(reinterpret_cast<const char*>(targets.data()), targets.size() * 8);
  q.mutable_cross_entropy();
  q.set_compute_grad(true);
  return q;
}

const std::vector<GoldenCase>& GoldenCases() {
  static const auto* cases = [] {
    absl::StatusOr<golden::GoldenFile> file = golden::LoadCoreCases();
    if (!file.ok()) {
      ADD_FAILURE() << file.status();
      return new std::vector<GoldenCase>();
    }
    return new std::vector<GoldenCase>(std::move(file->cases));
  }();
  return *cases;
}

namespace {
v1::Reduction ReductionOf(const std::string& name) {
  if (name == "sum") return v1::REDUCTION_SUM;
  if (name == "none") return v1::REDUCTION_NONE;
  if (name == "batchmean") return v1::REDUCTION_BATCHMEAN;
  return v1::REDUCTION_MEAN;
}
}  // namespace

v1::EvaluateRequest EvaluateRequestFor(const GoldenCase& c, Encoding e) {
  v1::EvaluateRequest q;
  q.set_request_id(c.name);
  if (c.input) *q.mutable_input() = ToProto(*c.input, e);
  if (c.target) *q.mutable_target() = ToProto(*c.target, e);
  if (c.grad_output) *q.mutable_grad_output() = ToProto(*c.grad_output, e);
  q.set_reduction(ReductionOf(c.reduction));
  q.set_compute_grad(c.compute_grad);
  // The loss message and its options, set by their proto field names.
  const google::protobuf::FieldDescriptor* loss_field =
      v1::EvaluateRequest::descriptor()->FindFieldByName(c.loss);
  if (loss_field == nullptr) {
    ADD_FAILURE() << "no loss field " << c.loss;
    return q;
  }
  google::protobuf::Message* loss = q.GetReflection()->MutableMessage(&q, loss_field);
  const google::protobuf::Reflection* reflection = loss->GetReflection();
  const auto field = [&](const std::string& name) {
    const google::protobuf::FieldDescriptor* f = loss->GetDescriptor()->FindFieldByName(name);
    if (f == nullptr) ADD_FAILURE() << c.loss << " has no option " << name;
    return f;
  };
  for (const auto& [name, t] : c.options.tensors) {
    if (const auto* f = field(name)) reflection->MutableMessage(loss, f)->CopyFrom(ToProto(t, e));
  }
  for (const auto& [name, v] : c.options.flags) {
    if (const auto* f = field(name)) reflection->SetBool(loss, f, v);
  }
  for (const auto& [name, v] : c.options.numbers) {
    const auto* f = field(name);
    if (f == nullptr) continue;
    if (f->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_INT64) {
      reflection->SetInt64(loss, f, static_cast<int64_t>(v));
    } else {
      reflection->SetDouble(loss, f, v);
    }
  }
  return q;
}

v1::ActivateRequest ActivateRequestFor(const GoldenCase& c, Encoding e) {
  v1::ActivateRequest q;
  if (c.activation == "sigmoid") q.set_activation(v1::ACTIVATION_SIGMOID);
  if (c.activation == "softmax") q.set_activation(v1::ACTIVATION_SOFTMAX);
  if (c.activation == "log_softmax") q.set_activation(v1::ACTIVATION_LOG_SOFTMAX);
  if (c.activation == "logit") q.set_activation(v1::ACTIVATION_LOGIT);
  *q.mutable_input() = ToProto(*c.input, e);
  if (auto dim = c.options.number("dim")) q.set_dim(static_cast<int64_t>(*dim));
  if (auto eps = c.options.number("eps")) q.set_eps(*eps);
  return q;
}

Tensor FromProto(const v1::Tensor& p, Encoding encoding) {
  if (encoding == Encoding::kRaw) {
    EXPECT_EQ(p.float_values_size() + p.double_values_size(), 0) << "raw in, raw out";
  } else {
    EXPECT_TRUE(p.raw_data().empty()) << "typed in, typed out";
  }
  TensorDecoder decoder;
  absl::StatusOr<TensorView> view = decoder.Decode(p, "response");
  EXPECT_TRUE(view.ok()) << view.status();
  if (!view.ok()) return Tensor{};
  Tensor t{view->dtype, view->shape, {}};
  const size_t bytes = static_cast<size_t>(view->numel()) * DTypeSize(view->dtype);
  t.bytes.resize(bytes);
  if (bytes) std::memcpy(t.bytes.data(), view->data, bytes);
  return t;
}

grpc::ByteBuffer ToBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

grpc::ByteBuffer ToBuffer(const google::protobuf::Message& message) {
  return ToBuffer(message.SerializeAsString());
}

std::string ToString(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Valid() || !buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& s : slices)
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

bool ParseBuffer(const grpc::ByteBuffer& buffer, google::protobuf::Message* message) {
  return message->ParseFromString(ToString(buffer));
}

TestServer::TestServer(LossServer::Options options) {
  options.address = "127.0.0.1:0";
  server_ = std::make_unique<LossServer>(std::move(options));
  const absl::Status started = server_->Start();
  EXPECT_TRUE(started.ok()) << started;
  channel_ = NewConnection();
  // Serving once health says so (no sleeping for readiness).
  int health = 0;
  const grpc::Status s = CheckHealth(channel_, "", &health);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(health, grpc::health::v1::HealthCheckResponse::SERVING);
}

std::string TestServer::address() const { return absl::StrCat("127.0.0.1:", server_->port()); }

std::shared_ptr<grpc::Channel> TestServer::NewConnection() const { return Connect(address()); }

namespace {
// Adds "authorization: <value>" to every call's metadata.
class Authorization final : public grpc::experimental::Interceptor {
 public:
  explicit Authorization(const std::string& value) : value_(value) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->insert({"authorization", value_});
    }
    methods->Proceed();
  }

 private:
  const std::string value_;
};
class AuthorizationFactory final : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit AuthorizationFactory(std::string value) : value_(std::move(value)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new Authorization(value_);
  }

 private:
  const std::string value_;
};
}  // namespace

std::shared_ptr<grpc::Channel> Connect(const std::string& address,
                                       std::shared_ptr<grpc::ChannelCredentials> credentials,
                                       const std::string& authorization) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  if (authorization.empty()) return grpc::CreateCustomChannel(address, std::move(credentials), args);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<AuthorizationFactory>(authorization));
  return grpc::experimental::CreateCustomChannelWithInterceptors(
      address, std::move(credentials), args, std::move(interceptors));
}

grpc::Status CheckHealth(const std::shared_ptr<grpc::Channel>& channel, const std::string& service,
                         int* out) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status s = stub->Check(&context, request, &response);
  if (s.ok() && out != nullptr) *out = response.status();
  return s;
}

std::string HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return {};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: localhost\r\n\r\n");
    if (write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buf[65536];
      for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) response.append(buf, n);
    }
  }
  close(fd);
  const size_t body = response.find("\r\n\r\n");
  return body == std::string::npos ? std::string() : response.substr(body + 4);
}

Scrape::Scrape(const std::string& text) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    double value = 0;
    if (space == absl::string_view::npos || !absl::SimpleAtod(line.substr(space + 1), &value)) {
      ADD_FAILURE() << "not a sample: " << line;
      continue;
    }
    samples_[std::string(line.substr(0, space))] = value;
  }
}

double Scrape::operator[](const std::string& series) const {
  const auto it = samples_.find(series);
  return it == samples_.end() ? 0 : it->second;
}

namespace {
std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}
}  // namespace

ServerProcess::ServerProcess() {
  static std::atomic<int> count{0};
  log_path_ = absl::StrCat(::testing::TempDir(), "loss_server_", getpid(), "_", count++, ".log");
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  std::remove(log_path_.c_str());
}

void ServerProcess::Start(const std::vector<std::string>& flags, const std::string& host) {
  std::vector<std::string> args = {LOSS_SERVER_PATH, "--address=127.0.0.1:0"};
  args.insert(args.end(), flags.begin(), flags.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path_.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  ASSERT_EQ(posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  const bool metrics = std::any_of(flags.begin(), flags.end(), [](const std::string& f) {
    return f.rfind("--metrics_address", 0) == 0;
  });
  const std::regex listening("lossservice listening on " +
                             std::regex_replace(host, std::regex(R"(\.)"), R"(\.)") + R"(:(\d+))");
  const std::regex metrics_listening(R"(metrics listening on http://[^:]+:(\d+)/metrics)");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string text = log();
    std::smatch match;
    if (std::regex_search(text, match, listening)) {
      port_ = std::stoi(match[1]);
      if (!metrics) return;
      if (std::regex_search(text, match, metrics_listening)) {
        metrics_port_ = std::stoi(match[1]);
        return;
      }
    }
    ASSERT_EQ(waitpid(pid_, nullptr, WNOHANG), 0) << "loss_server exited: " << text;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  FAIL() << "loss_server did not listen within 10 s: " << log();
}

std::string ServerProcess::address() const { return absl::StrCat("127.0.0.1:", port_); }

void ServerProcess::Signal(int signal) { ASSERT_EQ(kill(pid_, signal), 0); }

int ServerProcess::Wait() {
  int status = 0;
  EXPECT_EQ(waitpid(pid_, &status, 0), pid_);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string ServerProcess::log() const { return ReadWholeFile(log_path_); }

grpc::Status RawUnary(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                      const grpc::ByteBuffer& request, std::string* out,
                      std::chrono::milliseconds timeout) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  if (timeout.count() > 0) context.set_deadline(std::chrono::system_clock::now() + timeout);
  grpc::ByteBuffer response;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
    std::lock_guard<std::mutex> lock(mu);
    status = std::move(s);
    done = true;
    cv.notify_one();
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
  if (status.ok() && out != nullptr) *out = ToString(response);
  return status;
}

}  // namespace lossservice::test
