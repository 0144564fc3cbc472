// lossservice::Client against a real LossServer on 127.0.0.1:0 (the examples
// of every loss, errors, limits, streams, health), and against a small fake
// LossService for what a server cannot be made to do on demand: fail with
// UNAVAILABLE (retries).
#include "client/client.h"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/examples.h"
#include "core/loss.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/loss_server.h"

namespace lossservice {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;

class ClientTest : public testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<LossServer>(LossServer::Options{.address = "127.0.0.1:0"});
    ASSERT_TRUE(server_->Start().ok());
    address_ = absl::StrCat("127.0.0.1:", server_->port());
    client_ = std::make_unique<Client>(address_);
  }

  std::unique_ptr<LossServer> server_;
  std::string address_;
  std::unique_ptr<Client> client_;
};

// --- the examples of every loss ---------------------------------------------

// Rows RunExamples reports for a file: loss and gradient per loss example, the
// output per activation example.
size_t RowsOf(const Json& doc) {
  size_t n = 0;
  for (const Json& c : doc["cases"]) n += c["kind"] == "loss" ? 2 : 1;
  return n;
}

TEST_F(ClientTest, EveryExampleAgreesWithPyTorch) {
  const Json doc = Json::parse(BuiltinExamplesJson());
  absl::StatusOr<ExamplesReport> report = RunExamples(*client_, BuiltinExamplesJson());
  ASSERT_TRUE(report.ok()) << report.status();
  for (const ExampleRow& row : report->rows) {
    EXPECT_TRUE(row.agrees) << row.example << " " << row.what << ": pytorch " << row.expected
                            << ", service " << row.service;
  }
  EXPECT_EQ(report->rows.size(), RowsOf(doc));
  EXPECT_EQ(report->num_differ(), 0);
  EXPECT_TRUE(report->uncovered.empty());
  EXPECT_TRUE(report->not_listed.empty());
  EXPECT_TRUE(report->all_agree());
}

TEST_F(ClientTest, ExamplesCoverEveryLossTheServerLists) {
  absl::StatusOr<v1::ListLossesResponse> listed = client_->ListLosses();
  ASSERT_TRUE(listed.ok()) << listed.status();
  const Json doc = Json::parse(BuiltinExamplesJson());
  for (const v1::LossInfo& info : listed->losses()) {
    int examples = 0;
    for (const Json& c : doc["cases"]) examples += c.value("loss", "") == info.name() ? 1 : 0;
    EXPECT_EQ(examples, 2) << info.name();
  }
  EXPECT_EQ(listed->losses_size(), static_cast<int>(AllLosses().size()));
}

TEST_F(ClientTest, AChangedExpectedValueDiffers) {
  Json doc = Json::parse(BuiltinExamplesJson());
  for (Json& c : doc["cases"]) {
    if (c["name"] == "huber") {
      c["expected_loss"]["values"][0] = c["expected_loss"]["values"][0].get<double>() * 1.001;
    }
  }
  absl::StatusOr<ExamplesReport> report = RunExamples(*client_, doc.dump());
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->num_differ(), 1);
  for (const ExampleRow& row : report->rows) {
    EXPECT_EQ(row.agrees, !(row.example == "huber" && row.what == "loss")) << row.example;
  }
  EXPECT_FALSE(report->all_agree());
}

TEST_F(ClientTest, AListedLossWithoutAnExampleFails) {
  Json doc = Json::parse(BuiltinExamplesJson());
  Json kept = Json::array();
  for (const Json& c : doc["cases"]) {
    if (c.value("loss", "") != "ctc") kept.push_back(c);
  }
  doc["cases"] = kept;
  absl::StatusOr<ExamplesReport> report = RunExamples(*client_, doc.dump());
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->num_differ(), 0);
  EXPECT_EQ(report->uncovered, std::vector<std::string>{"ctc"});
  EXPECT_FALSE(report->all_agree());
}

TEST_F(ClientTest, MalformedExamplesAreInvalidArgument) {
  absl::StatusOr<ExamplesReport> report = RunExamples(*client_, "{\"cases\": [{}]}");
  EXPECT_EQ(report.status().code(), absl::StatusCode::kInvalidArgument) << report.status();
}

// --- typed calls -------------------------------------------------------------

// The core's own answer for `request`, computed in this process.
TensorAllocator Local(const LossRequest& request) {
  TensorAllocator out;
  EXPECT_TRUE(EvaluateLoss(request, out).ok());
  return out;
}

bool SameBytes(const Tensor& a, const Tensor& b) {
  return a.dtype == b.dtype && a.shape == b.shape && a.bytes == b.bytes;
}

TEST_F(ClientTest, TypedCallReturnsWhatTheCoreComputes) {
  const std::vector<float> logits = {0.1f, 2.0f, -1.0f, 0.5f, 0.5f, 0.0f};
  const std::vector<int64_t> labels = {1, 0};
  const std::vector<double> weight = {0.5, 1.0, 2.0};
  CrossEntropyOptions options{
      .weight = View(weight), .ignore_index = -100, .label_smoothing = 0.25};
  absl::StatusOr<LossResult> r = client_->CrossEntropy(
      View(logits, {2, 3}), View(labels), options, {.reduction = Reduction::kSum, .grad = true});
  ASSERT_TRUE(r.ok()) << r.status();

  LossRequest local{.input = View(logits, {2, 3}),
                    .target = View(labels),
                    .reduction = Reduction::kSum,
                    .compute_grad = true,
                    .grad_output = std::nullopt,
                    .options = options};
  TensorAllocator want = Local(local);
  ASSERT_TRUE(want.loss && want.grad);
  EXPECT_TRUE(SameBytes(r->loss, *want.loss));
  ASSERT_TRUE(r->grad.has_value());
  EXPECT_TRUE(SameBytes(*r->grad, *want.grad));
  EXPECT_EQ(r->loss.dtype, DType::kFloat32);
  EXPECT_EQ(r->loss.shape, Shape{});
  EXPECT_EQ(r->grad->shape, (Shape{2, 3}));
  EXPECT_EQ(r->item(), static_cast<double>(*want.loss->data_as<float>()));
  EXPECT_EQ(r->request_id.size(), 16u);
}

TEST_F(ClientTest, NoGradientUnlessAsked) {
  const std::vector<double> x = {1.0, 2.0, 3.0}, y = {1.5, 2.0, 2.0};
  absl::StatusOr<LossResult> r = client_->MseLoss(View(x), View(y));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->grad.has_value());
  EXPECT_EQ(r->loss.dtype, DType::kFloat64);
  EXPECT_EQ(r->item(), (0.25 + 0.0 + 1.0) / 3.0);
}

TEST_F(ClientTest, ErrorsCarryCodeMessageAndRequestId) {
  const std::vector<float> x(6, 0.5f), y(6, 0.5f);
  absl::StatusOr<LossResult> r =
      client_->MseLoss(View(x, {2, 3}), View(y, {3, 2}), {.request_id = "req-42"});
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "[2, 3]")) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "[3, 2]")) << r.status();
  EXPECT_EQ(RequestIdOf(r.status()), "req-42");

  // Without one, the client makes one up and still reports it.
  r = client_->MseLoss(View(x, {2, 3}), View(y, {6}));
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_EQ(RequestIdOf(r.status()).size(), 16u);
}

TEST_F(ClientTest, AViewOfTheWrongSizeIsRefusedBeforeSending) {
  const std::vector<float> x(5, 0.5f), y(6, 0.5f);
  absl::StatusOr<LossResult> r = client_->MseLoss(View(x, {2, 3}), View(y, {2, 3}));
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_EQ(r.status().message(),
            "input: no values for shape [2, 3] (a View whose number of values differs from "
            "its shape holds none)");
  EXPECT_EQ(RequestIdOf(r.status()).size(), 16u);
}

TEST_F(ClientTest, ActivationsKeepShapeAndDtype) {
  const std::vector<double> p = {0.25, 0.5, 0.75, 0.0};
  absl::StatusOr<Tensor> out = client_->Logit(View(p, {2, 2}), 0.25);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->dtype, DType::kFloat64);
  EXPECT_EQ(out->shape, (Shape{2, 2}));
  // eps = 0.25 clamps 0.0 to 0.25: logit(0.25) = -log(3), in both places.
  EXPECT_EQ(out->data_as<double>()[3], out->data_as<double>()[0]);
  EXPECT_EQ(out->data_as<double>()[1], 0.0);

  absl::StatusOr<Tensor> bad = client_->Softmax(View(p, {2, 2}), 2);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << bad.status();
}

// gRPC's default receive limit is 4 MiB; a 2M-float gradient is 8 MB.
TEST_F(ClientTest, TwoMillionFloatGradientArrivesWithTheDefaults) {
  constexpr int64_t kN = 2'000'000;
  std::vector<float> x(kN), y(kN, 0.25f);
  for (int64_t i = 0; i < kN; ++i) x[i] = static_cast<float>(i % 1000) / 500.0f;
  absl::StatusOr<LossResult> r = client_->MseLoss(View(x), View(y), {.grad = true});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->grad.has_value());
  EXPECT_EQ(r->grad->shape, Shape{kN});
  EXPECT_GT(r->grad->bytes.size(), 4u << 20);
  TensorAllocator want = Local(LossRequest{.input = View(x),
                                           .target = View(y),
                                           .reduction = Reduction::kMean,
                                           .compute_grad = true,
                                           .grad_output = std::nullopt,
                                           .options = MseOptions{}});
  EXPECT_TRUE(SameBytes(*r->grad, *want.grad));

  // The same call with gRPC's default limit fails.
  Client small(address_, {.max_message_bytes = 4 << 20});
  r = small.MseLoss(View(x), View(y), {.grad = true});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
}

TEST_F(ClientTest, EvaluateManyAnswersInOrderWithInBandErrors) {
  const std::vector<float> x = {0.5f, 1.5f}, y = {1.0f, 1.0f}, bad = {1.0f, 1.0f, 1.0f};
  std::vector<LossRequest> requests(4);
  requests[0] = {.input = View(x),
                 .target = View(y),
                 .reduction = Reduction::kSum,
                 .compute_grad = true,
                 .grad_output = std::nullopt,
                 .options = MseOptions{}};
  requests[1] = requests[0];
  requests[1].target = View(bad);  // shape mismatch: an in-band error
  requests[2] = requests[0];
  requests[2].options = L1Options{};
  requests[3] = requests[0];
  requests[3].input = View(x, {3});  // refused before sending
  absl::StatusOr<std::vector<absl::StatusOr<LossResult>>> results = client_->EvaluateMany(requests);
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ(results->size(), 4u);
  ASSERT_TRUE((*results)[0].ok()) << (*results)[0].status();
  EXPECT_EQ((*results)[0]->item(), 0.25 + 0.25);
  EXPECT_EQ((*results)[0]->grad->shape, Shape{2});
  EXPECT_EQ((*results)[1].status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RequestIdOf((*results)[1].status()).size(), 16u);
  ASSERT_TRUE((*results)[2].ok()) << (*results)[2].status();
  EXPECT_EQ((*results)[2]->item(), 0.5 + 0.5);
  EXPECT_EQ((*results)[3].status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ClientTest, HealthOfTheServerAndTheService) {
  EXPECT_EQ(client_->Health().value_or("error"), "SERVING");
  EXPECT_EQ(client_->Health("lossservice.v1.LossService").value_or("error"), "SERVING");
}

TEST_F(ClientTest, TheChannelUsesTheRetryServiceConfig) {
  ASSERT_TRUE(client_->ListLosses().ok());
  EXPECT_EQ(client_->channel()->GetServiceConfigJSON(), kRetryServiceConfig);
  Client no_retry(address_, {.retry_unavailable = false});
  ASSERT_TRUE(no_retry.ListLosses().ok());
  EXPECT_EQ(no_retry.channel()->GetServiceConfigJSON(), "{}");
}

TEST_F(ClientTest, AStoppedServerIsUnavailable) {
  server_->Shutdown(0);
  server_->Wait();
  Client client(address_, {.timeout = milliseconds(10000)});
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<LossResult> r =
      client.MseLoss(View(std::vector<float>{1.0f}), View(std::vector<float>{1.0f}));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  // Retried with backoff, but well within the deadline.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(8));
}

// --- a fake LossService: retries ----------------------------------------------

// Answers Evaluate with a float32 scalar 1.5 after failing the first
// `fail_first` calls with UNAVAILABLE: what a real server cannot be made to
// do on demand. (TLS, mutual TLS and tokens against loss_server itself:
// client_security_test.)
class FakeLossService final : public v1::LossService::CallbackService {
 public:
  grpc::ServerUnaryReactor* Evaluate(grpc::CallbackServerContext* context,
                                     const v1::EvaluateRequest* request,
                                     v1::EvaluateResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    absl::MutexLock lock(&mu_);
    ++calls_;
    if (fail_first_ > 0) {
      --fail_first_;
      reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "not yet"));
      return reactor;
    }
    response->set_request_id(request->request_id());
    const float value = 1.5f;
    response->mutable_loss()->set_dtype(v1::DATA_TYPE_FLOAT32);
    response->mutable_loss()->set_raw_data(&value, sizeof(value));
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  void FailFirst(int n) {
    absl::MutexLock lock(&mu_);
    fail_first_ = n;
  }
  int calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }

 private:
  absl::Mutex mu_;
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
  int fail_first_ ABSL_GUARDED_BY(mu_) = 0;
};

class FakeServerTest : public testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port, 0);
    address_ = absl::StrCat("127.0.0.1:", port);
  }

  absl::StatusOr<LossResult> Call(const ClientOptions& options) {
    Client client(address_, options);
    const std::vector<float> x = {1.0f};
    return client.MseLoss(View(x), View(x), {.request_id = "fake-1"});
  }

  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  FakeLossService service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

TEST_F(FakeServerTest, RetriesUnavailable) {
  service_.FailFirst(2);
  absl::StatusOr<LossResult> r = Call({});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->item(), 1.5);
  EXPECT_EQ(r->request_id, "fake-1");
  EXPECT_EQ(service_.calls(), 3);
}

TEST_F(FakeServerTest, NoRetryWhenDisabled) {
  service_.FailFirst(2);
  absl::StatusOr<LossResult> r = Call({.retry_unavailable = false});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_EQ(r.status().message(), "not yet");
  EXPECT_EQ(service_.calls(), 1);
}

TEST_F(FakeServerTest, GivesUpAfterFiveAttempts) {
  service_.FailFirst(10);
  absl::StatusOr<LossResult> r = Call({});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_EQ(service_.calls(), 5);
}

TEST_F(FakeServerTest, AServiceConfigOfOnesOwn) {
  service_.FailFirst(10);
  const std::string config = R"({"methodConfig": [{
      "name": [{"service": "lossservice.v1.LossService"}],
      "retryPolicy": {"maxAttempts": 2, "initialBackoff": "0.01s", "maxBackoff": "0.01s",
                      "backoffMultiplier": 1, "retryableStatusCodes": ["UNAVAILABLE"]}}]})";
  absl::StatusOr<LossResult> r = Call({.service_config = config});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_EQ(service_.calls(), 2);
}

}  // namespace
}  // namespace lossservice
