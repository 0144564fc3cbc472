// Integration tests: a real LossServer on 127.0.0.1:0, called over real
// channels. Every golden case goes over the wire in both encodings; the
// execution model (admission at arrival, deadlines, cancellation, stream
// order, our own parsing and size limit) is checked from the client's side
// and with the server's counters.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "core/parallel.h"
#include "google/protobuf/unknown_field_set.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "lossservice/v1/loss_service.grpc.pb.h"
#include "server/loss_server.h"
#include "server/tensor_codec.h"
#include "tests/golden.h"
#include "tests/server_testing.h"

namespace lossservice {
namespace {

using golden::GoldenCase;
using test::Floats;
using test::Mse;
using Clock = std::chrono::steady_clock;

constexpr char kEvaluate[] = "/lossservice.v1.LossService/Evaluate";
constexpr char kEvaluateStream[] = "/lossservice.v1.LossService/EvaluateStream";

using test::BigCrossEntropyLoss;
using test::Burst;
using test::HeldPool;
using test::Idle;
using test::Outcome;
using test::RawStream;
using test::WaitFor;

// ---- fixture: one server for the golden and simple tests
// -----------------------------------------

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new test::TestServer({.max_message_mb = 4, .compute_threads = 2});
  }
  static void TearDownTestSuite() { delete server_; }

  grpc::Status Evaluate(const v1::EvaluateRequest& q, v1::EvaluateResponse* r) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return server_->Stub()->Evaluate(&context, q, r);
  }
  grpc::Status Activate(const v1::ActivateRequest& q, v1::ActivateResponse* r) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return server_->Stub()->Activate(&context, q, r);
  }
  void ExpectServing() {
    v1::EvaluateResponse r;
    ASSERT_TRUE(Evaluate(Mse(Floats({1}, {3}), Floats({1}, {1})), &r).ok());
    ASSERT_EQ(r.loss().float_values_size(), 1);
    EXPECT_EQ(r.loss().float_values(0), 4.0f);
  }

  static test::TestServer* server_;
};

test::TestServer* ServerTest::server_ = nullptr;

// ---- every golden case, both encodings ----------------------------------------------

class GoldenOverWire : public ServerTest,
                       public ::testing::WithParamInterface<std::tuple<size_t, Encoding>> {};

TEST_P(GoldenOverWire, MatchesPyTorch) {
  const GoldenCase& c = test::GoldenCases()[std::get<0>(GetParam())];
  const Encoding e = std::get<1>(GetParam());
  SCOPED_TRACE(c.name);
  if (c.is_activation()) {
    v1::ActivateResponse r;
    grpc::Status s = Activate(test::ActivateRequestFor(c, e), &r);
    if (c.is_error()) {
      EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
      return;
    }
    ASSERT_TRUE(s.ok()) << s.error_message();
    const auto mismatch = golden::CompareToReference(test::FromProto(r.output(), e),
                                                     *c.expected_output, c.input->dtype);
    EXPECT_FALSE(mismatch) << *mismatch;
    return;
  }
  v1::EvaluateResponse r;
  grpc::Status s = Evaluate(test::EvaluateRequestFor(c, e), &r);
  if (c.is_error()) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    EXPECT_FALSE(s.error_message().empty());
    return;
  }
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(r.request_id(), c.name);
  // An empty input carries no encoding; the target's (if any values) decides.
  const bool has_raw = c.input->numel() > 0 || (c.target && c.target->numel() > 0);
  const Encoding expect = e == Encoding::kRaw && has_raw ? Encoding::kRaw : Encoding::kTyped;
  const auto loss_mismatch = golden::CompareToReference(test::FromProto(r.loss(), expect),
                                                        *c.expected_loss, c.input->dtype);
  EXPECT_FALSE(loss_mismatch) << "loss: " << *loss_mismatch;
  if (c.compute_grad) {
    const auto grad_mismatch = golden::CompareToReference(test::FromProto(r.grad(), expect),
                                                          *c.expected_grad, c.input->dtype);
    EXPECT_FALSE(grad_mismatch) << "grad: " << *grad_mismatch;
  } else {
    EXPECT_FALSE(r.has_grad());
  }
}

INSTANTIATE_TEST_SUITE_P(AllCases, GoldenOverWire,
                         ::testing::Combine(::testing::Range<size_t>(0, test::GoldenCases().size()),
                                            ::testing::Values(Encoding::kTyped, Encoding::kRaw)),
                         [](const ::testing::TestParamInfo<std::tuple<size_t, Encoding>>& info) {
                           return absl::StrCat(
                               golden::SanitizeName(
                                   test::GoldenCases()[std::get<0>(info.param)].name),
                               "_", std::get<1>(info.param) == Encoding::kRaw ? "raw" : "typed",
                               "_", std::get<0>(info.param));
                         });

// ---- statuses over the wire ---------------------------------------------------------------------

TEST_F(ServerTest, ClientMistakesArriveWithCodeAndMessage) {
  v1::EvaluateResponse r;
  grpc::Status s =
      Evaluate(Mse(Floats({2, 3}, {1, 2, 3, 4, 5}), Floats({2, 3}, {1, 2, 3, 4, 5, 6})), &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "input: float_values holds 5 values but shape [2, 3] needs 6");
  EXPECT_FALSE(r.has_loss());
  v1::ActivateRequest a;
  *a.mutable_input() = Floats({2}, {1, 2});
  a.set_activation(v1::ACTIVATION_SOFTMAX);
  a.set_dim(1);
  v1::ActivateResponse ar;
  s = Activate(a, &ar);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "dim 1 is out of range for input [2] (valid: -1 to 0)");
}

TEST_F(ServerTest, RequestOverTheSizeLimitNamesTheFlag) {
  // The fixture's server takes at most 4 MiB: 1.1M floats are 4.4 MB.
  v1::EvaluateRequest q =
      Mse(test::RawFloats({1100000}, std::vector<float>(1100000, 1.0f)), Floats({1}, {1}));
  v1::EvaluateResponse r;
  grpc::Status s = Evaluate(q, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(s.error_message(),
            absl::StrCat("the request message has ", q.ByteSizeLong(),
                         " bytes, over the limit of 4 MiB (--max_message_mb=4)"));
  // Far over it (past gRPC's own limit, 4 + 16 MiB here), gRPC itself
  // refuses it, with the same code.
  q = Mse(test::RawFloats({5600000}, std::vector<float>(5600000, 1.0f)), Floats({1}, {1}));
  EXPECT_EQ(Evaluate(q, &r).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  ExpectServing();
  EXPECT_GE(server_->server().stats().too_large, 1);
}

TEST_F(ServerTest, GarbageBytesAreInvalidArgumentSayingWhatFailed) {
  // Field 1 (input) as a length-delimited value that runs past the end.
  const grpc::ByteBuffer garbage = test::ToBuffer(std::string("\x0a\x7f\x01", 3));
  grpc::Status s = test::RawUnary(server_->channel(), kEvaluate, garbage, nullptr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(),
            "request does not parse as lossservice.v1.EvaluateRequest: input: length 127 runs "
            "past the end of its message (1 bytes left) (at byte 2 of 3)");
  s = test::RawUnary(server_->channel(), "/lossservice.v1.LossService/Activate", garbage, nullptr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(
      s.error_message().rfind("request does not parse as lossservice.v1.ActivateRequest: ", 0), 0u);
  s = test::RawUnary(server_->channel(), "/lossservice.v1.LossService/ListLosses", garbage,
                     nullptr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(
      s.error_message().rfind("request does not parse as lossservice.v1.ListLossesRequest: ", 0),
      0u);
  ExpectServing();
}

TEST_F(ServerTest, UnknownMethodIsUnimplementedNamingIt) {
  grpc::Status s = test::RawUnary(server_->channel(), "/lossservice.v1.LossService/Nope",
                                  test::ToBuffer(""), nullptr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(s.error_message().rfind("unknown method /lossservice.v1.LossService/Nope; ", 0), 0u)
      << s.error_message();
}

// ---- EvaluateStream ------------------------------------------------------------------------

TEST_F(ServerTest, StreamAnswersInOrderAndSurvivesABadItem) {
  grpc::ClientContext context;
  auto stub = server_->Stub();
  auto stream = stub->EvaluateStream(&context);
  v1::EvaluateRequest good = Mse(Floats({2}, {1, 2}), Floats({2}, {1, 4}));
  v1::EvaluateRequest bad = Mse(Floats({2}, {1, 2}), Floats({3}, {1, 2, 3}));
  good.set_request_id("first");
  bad.set_request_id("second");
  ASSERT_TRUE(stream->Write(good));
  ASSERT_TRUE(stream->Write(bad));
  good.set_request_id("third");
  good.set_reduction(v1::REDUCTION_SUM);
  ASSERT_TRUE(stream->Write(good));
  ASSERT_TRUE(stream->WritesDone());
  std::vector<v1::EvaluateStreamResponse> responses;
  v1::EvaluateStreamResponse r;
  while (stream->Read(&r)) responses.push_back(r);
  ASSERT_TRUE(stream->Finish().ok());
  ASSERT_EQ(responses.size(), 3u);
  ASSERT_TRUE(responses[0].has_response());
  EXPECT_EQ(responses[0].response().request_id(), "first");
  EXPECT_EQ(responses[0].response().loss().float_values(0), 2.0f);
  ASSERT_TRUE(responses[1].has_error());
  EXPECT_EQ(responses[1].error().code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_EQ(responses[1].error().request_id(), "second");
  EXPECT_NE(responses[1].error().message().find("[3]"), std::string::npos);
  ASSERT_TRUE(responses[2].has_response());
  EXPECT_EQ(responses[2].response().request_id(), "third");
  EXPECT_EQ(responses[2].response().loss().float_values(0), 4.0f);
}

TEST_F(ServerTest, StreamAnswersGarbageAndOversizedItemsInBandAndGoesOn) {
  v1::EvaluateRequest good = Mse(Floats({2}, {1, 2}), Floats({2}, {1, 4}));
  good.set_request_id("good");
  const v1::EvaluateRequest big =
      Mse(test::RawFloats({1100000}, std::vector<float>(1100000, 1.0f)), Floats({1}, {1}));
  RawStream stream(server_->channel(), kEvaluateStream,
                   {test::ToBuffer(good), test::ToBuffer(std::string("\x0a\x7f\x01", 3)),
                    test::ToBuffer(big), test::ToBuffer(good)});
  std::vector<std::string> responses;
  const grpc::Status s = stream.Await(&responses);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(responses.size(), 4u);
  std::vector<v1::EvaluateStreamResponse> r(4);
  for (size_t i = 0; i < 4; ++i) ASSERT_TRUE(r[i].ParseFromString(responses[i]));
  ASSERT_TRUE(r[0].has_response());
  EXPECT_EQ(r[0].response().loss().float_values(0), 2.0f);
  ASSERT_TRUE(r[1].has_error());
  EXPECT_EQ(r[1].error().code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_EQ(r[1].error().message(),
            "request does not parse as lossservice.v1.EvaluateRequest: input: length 127 runs "
            "past the end of its message (1 bytes left) (at byte 2 of 3)");
  ASSERT_TRUE(r[2].has_error());
  EXPECT_EQ(r[2].error().code(), static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));
  EXPECT_NE(r[2].error().message().find("(--max_message_mb=4)"), std::string::npos);
  ASSERT_TRUE(r[3].has_response());
  EXPECT_EQ(r[3].response().request_id(), "good");
}

// Requests of very different cost, on a pool of four threads: the answers
// come back in the order of the requests, each the right one.
TEST(StreamOrderTest, AnswersInOrderWithManyComputeThreads) {
  test::TestServer server({.compute_threads = 4});
  constexpr int kItems = 60;
  std::vector<grpc::ByteBuffer> requests;
  std::vector<float> want;
  for (int i = 0; i < kItems; ++i) {
    if (i % 3 == 0) {
      v1::EvaluateRequest q = test::BigCrossEntropy(256, 1000);
      q.set_request_id(absl::StrCat("item-", i));
      requests.push_back(test::ToBuffer(q));
      want.push_back(std::log(1000.0f));
    } else {
      v1::EvaluateRequest q = Mse(Floats({1}, {static_cast<float>(i)}), Floats({1}, {0}));
      q.set_request_id(absl::StrCat("item-", i));
      requests.push_back(test::ToBuffer(q));
      want.push_back(static_cast<float>(i * i));
    }
  }
  RawStream stream(server.channel(), kEvaluateStream, std::move(requests));
  std::vector<std::string> responses;
  ASSERT_TRUE(stream.Await(&responses).ok());
  ASSERT_EQ(responses.size(), static_cast<size_t>(kItems));
  for (int i = 0; i < kItems; ++i) {
    v1::EvaluateStreamResponse r;
    ASSERT_TRUE(r.ParseFromString(responses[i]));
    ASSERT_TRUE(r.has_response()) << r.ShortDebugString().substr(0, 200);
    EXPECT_EQ(r.response().request_id(), absl::StrCat("item-", i));
    float got;
    if (i % 3 == 0) {
      ASSERT_EQ(r.response().loss().raw_data().size(), 4u);
      std::memcpy(&got, r.response().loss().raw_data().data(), 4);
      EXPECT_NEAR(got, want[i], 1e-4f);
    } else {
      ASSERT_EQ(r.response().loss().float_values_size(), 1);
      EXPECT_EQ(r.response().loss().float_values(0), want[i]);
    }
  }
}

// A stream whose requests wait for the pool (held by another task) when the
// client cancels it: none of them is ever computed, and the stream gives
// back its places under the in-flight count.
TEST(StreamCancelTest, ACancelledStreamStopsComputing) {
  HeldPool pool;
  test::TestServer server({.compute_pool = &pool.pool()});
  const grpc::ByteBuffer item = test::ToBuffer(Mse(Floats({1}, {3}), Floats({1}, {1})));
  RawStream stream(server.channel(), kEvaluateStream, std::vector<grpc::ByteBuffer>(6, item));
  // The stream's first request waits for the pool, two more are read ahead.
  ASSERT_TRUE(WaitFor(server.server(),
                      [](const ServerStats& s) { return s.admitted == 3 && s.queued == 1; }));
  stream.Cancel();
  std::vector<std::string> responses;
  EXPECT_EQ(stream.Await(&responses).error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(responses.empty());
  ASSERT_TRUE(WaitFor(server.server(), [](const ServerStats& s) { return s.cancelled == 1; }));
  pool.Release();
  ASSERT_TRUE(WaitFor(server.server(), Idle));
  const ServerStats stats = server.server().stats();
  EXPECT_EQ(stats.started, 0) << "a request of the cancelled stream was computed";
  EXPECT_EQ(stats.not_started, 1);
  EXPECT_EQ(stats.admitted, 3);
  EXPECT_EQ(stats.in_flight, 0);
}

// ---- admission at arrival ----------------------------------------------------------------------

// A burst of 16 large requests over one connection at a server that admits
// 2, while its one compute thread is held: the 14 over the limit are refused
// as they arrive, before any answer (their messages never read), and the
// 2 admitted are computed, right, once the thread is free.
TEST(AdmissionOverTheWireTest, ABurstOverTheLimitIsRefusedAtOnce) {
  HeldPool pool;
  test::TestServer server({.compute_pool = &pool.pool(), .max_inflight = 2});
  constexpr int kRows = 4096, kClasses = 1000, kCalls = 16;
  const grpc::ByteBuffer request = test::ToBuffer(test::BigCrossEntropy(kRows, kClasses));
  Burst burst(server.channel());
  for (int i = 0; i < kCalls; ++i) burst.Start(kEvaluate, request);
  ASSERT_TRUE(WaitFor(server.server(), [](const ServerStats& s) {
    return s.admitted == 2 && s.refused == kCalls - 2;
  }));
  pool.Release();
  const std::vector<Outcome> outcomes = burst.Await();
  std::vector<Clock::time_point> answered, refused;
  for (const Outcome& o : outcomes) {
    if (o.status.ok()) {
      EXPECT_NEAR(BigCrossEntropyLoss(o.response, int64_t{kRows} * kClasses), std::log(1000.0f),
                  1e-4f);
      answered.push_back(o.done);
    } else {
      EXPECT_EQ(o.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
      EXPECT_EQ(o.status.error_message(),
                "the server is at its limit of 2 requests in flight (--max_inflight=2); retry "
                "with backoff");
      refused.push_back(o.done);
    }
  }
  ASSERT_EQ(answered.size(), 2u);
  ASSERT_EQ(refused.size(), static_cast<size_t>(kCalls - 2));
  const Clock::time_point first_answer = *std::min_element(answered.begin(), answered.end());
  for (const Clock::time_point& t : refused) EXPECT_LT(t, first_answer);
  const ServerStats stats = server.server().stats();
  EXPECT_EQ(stats.computed, 2);
  EXPECT_EQ(stats.started, 2);
}

// Without a held pool: a real burst on a server computing one request at a
// time still refuses some at arrival, before the median computed answer.
TEST(AdmissionOverTheWireTest, ABurstOnABusyServerIsRefusedBeforeTheMedianAnswer) {
  test::TestServer server({.compute_threads = 1, .max_inflight = 2});
  constexpr int kRows = 4096, kClasses = 1000, kCalls = 16;
  const grpc::ByteBuffer request = test::ToBuffer(test::BigCrossEntropy(kRows, kClasses));
  Burst burst(server.channel());
  for (int i = 0; i < kCalls; ++i) burst.Start(kEvaluate, request);
  std::vector<Clock::time_point> answered, refused;
  for (const Outcome& o : burst.Await()) {
    if (o.status.ok()) {
      answered.push_back(o.done);
    } else {
      EXPECT_EQ(o.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
      refused.push_back(o.done);
    }
  }
  ASSERT_GE(answered.size(), 2u);
  ASSERT_GE(refused.size(), 1u);
  EXPECT_EQ(answered.size() + refused.size(), static_cast<size_t>(kCalls));
  std::sort(answered.begin(), answered.end());
  const Clock::time_point median = answered[answered.size() / 2];
  std::sort(refused.begin(), refused.end());
  EXPECT_LT(refused[refused.size() / 2], median);
  EXPECT_EQ(server.server().stats().refused, static_cast<int64_t>(refused.size()));
}

// ---- deadlines and cancellation ---------------------------------------------------------------

// A [4096, 1000] request with a 1 ms deadline while the one compute thread
// is held: it is never started, so the thread, once free, goes straight to
// the next request.
TEST(DeadlineTest, AnExpiredRequestFreesThePoolAtOnce) {
  HeldPool pool;
  test::TestServer server({.compute_pool = &pool.pool()});
  const grpc::ByteBuffer big = test::ToBuffer(test::BigCrossEntropy(4096, 1000));
  // The server sees it end: on arrival, while uploading, or waiting. On a
  // loaded machine the 1 ms can pass before the call leaves the client (the
  // server never hears of it then): up to 5 tries, until one reaches it.
  bool seen = false;
  for (int attempt = 0; attempt < 5 && !seen; ++attempt) {
    Burst expiring(server.channel());
    expiring.Start(kEvaluate, big, std::chrono::milliseconds(1));
    EXPECT_EQ(expiring.Await()[0].status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
    seen = WaitFor(
        server.server(), [](const ServerStats& s) { return s.not_started + s.cancelled >= 1; },
        std::chrono::seconds(5));
  }
  ASSERT_TRUE(seen) << "no 1 ms call reached the server in 5 tries";
  Burst next(server.channel());
  next.Start(kEvaluate, test::ToBuffer(Mse(Floats({1}, {3}), Floats({1}, {1}))));
  pool.Release();
  const Outcome small = next.Await()[0];
  ASSERT_TRUE(small.status.ok()) << small.status.error_message();
  v1::EvaluateResponse r;
  ASSERT_TRUE(r.ParseFromString(small.response));
  EXPECT_EQ(r.loss().float_values(0), 4.0f);
  ASSERT_TRUE(WaitFor(server.server(), Idle));
  const ServerStats stats = server.server().stats();
  EXPECT_EQ(stats.started, 1) << "an expired request was computed";
  EXPECT_GE(stats.not_started, 1);  // a try that arrived after its 5 s counts too
}

// The same with a request the client cancels while it waits for the pool.
TEST(DeadlineTest, ACancelledRequestIsNotStarted) {
  HeldPool pool;
  test::TestServer server({.compute_pool = &pool.pool()});
  const grpc::ByteBuffer big = test::ToBuffer(test::BigCrossEntropy(4096, 1000));
  Burst burst(server.channel());
  const size_t cancelled = burst.Start(kEvaluate, big);
  // Read, admitted and waiting for the thread.
  ASSERT_TRUE(WaitFor(server.server(), [](const ServerStats& s) { return s.queued == 1; }));
  burst.Cancel(cancelled);
  EXPECT_EQ(burst.Await()[cancelled].status.error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(WaitFor(server.server(), [](const ServerStats& s) { return s.cancelled == 1; }));
  Burst next(server.channel());
  next.Start(kEvaluate, test::ToBuffer(Mse(Floats({1}, {3}), Floats({1}, {1}))));
  pool.Release();
  EXPECT_TRUE(next.Await()[0].status.ok());
  ASSERT_TRUE(WaitFor(server.server(), Idle));
  const ServerStats stats = server.server().stats();
  EXPECT_EQ(stats.started, 1) << "the cancelled request was computed";
  EXPECT_EQ(stats.not_started, 1);
}

// ---- health and reflection ---------------------------------------------------------------------

TEST_F(ServerTest, HealthIsServing) {
  for (const std::string& service : {std::string(), std::string("lossservice.v1.LossService")}) {
    std::string request, bytes;
    if (!service.empty())
      request = "\x0a" + std::string(1, static_cast<char>(service.size())) + service;
    ASSERT_TRUE(test::RawUnary(server_->channel(), "/grpc.health.v1.Health/Check",
                               test::ToBuffer(request), &bytes)
                    .ok());
    google::protobuf::UnknownFieldSet fields;
    ASSERT_TRUE(fields.ParseFromString(bytes));
    ASSERT_EQ(fields.field_count(), 1);
    EXPECT_EQ(fields.field(0).number(), 1);   // status
    EXPECT_EQ(fields.field(0).varint(), 1u);  // SERVING
  }
}

// One ServerReflectionInfo exchange (v1alpha): `request` in, the response out.
std::string Reflect(const std::shared_ptr<grpc::Channel>& channel, const std::string& request) {
  RawStream stream(channel, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                   {test::ToBuffer(request)});
  std::vector<std::string> responses;
  EXPECT_TRUE(stream.Await(&responses).ok());
  return responses.empty() ? std::string() : responses[0];
}

TEST_F(ServerTest, ReflectionListsAndDescribesTheService) {
  // ServerReflectionRequest{list_services: ""}: field 7, length 0.
  const std::string list = Reflect(server_->channel(), std::string("\x3a\x00", 2));
  EXPECT_NE(list.find("lossservice.v1.LossService"), std::string::npos);
  EXPECT_NE(list.find("grpc.reflection.v1alpha.ServerReflection"), std::string::npos);
  // file_containing_symbol (field 4): the file that defines the service,
  // with every method.
  const std::string symbol = "lossservice.v1.LossService";
  const std::string file = Reflect(
      server_->channel(), "\x22" + std::string(1, static_cast<char>(symbol.size())) + symbol);
  EXPECT_NE(file.find("lossservice/v1/loss_service.proto"), std::string::npos);
  for (const char* method : {"Evaluate", "EvaluateStream", "Activate", "ListLosses"}) {
    EXPECT_NE(file.find(method), std::string::npos) << method;
  }
}

// ---- concurrency and options
// ---------------------------------------------------------------------

TEST_F(ServerTest, ServesManyClientsAtOnce) {
  constexpr int kThreads = 8, kCalls = 50;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto stub = server_->Stub();
      for (int i = 0; i < kCalls; ++i) {
        v1::EvaluateRequest q = Mse(Floats({2}, {float(t), float(i)}), Floats({2}, {0, 0}));
        q.set_reduction(v1::REDUCTION_SUM);
        grpc::ClientContext context;
        v1::EvaluateResponse r;
        if (stub->Evaluate(&context, q, &r).ok() && r.loss().float_values_size() == 1 &&
            r.loss().float_values(0) == float(t * t + i * i)) {
          ++ok;
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(ok.load(), kThreads * kCalls);
}

TEST(LossServerTest, RefusesBadOptionsAndTakenPorts) {
  struct Bad {
    LossServer::Options options;
    std::string message;
  };
  const Bad bad[] = {
      {{.address = "127.0.0.1:0", .max_message_mb = 0},
       "max_message_mb must be in [1, 2047], got 0"},
      {{.address = "127.0.0.1:0", .compute_threads = -1},
       "compute_threads must be in [0, 1024], got -1"},
      {{.address = "127.0.0.1:0", .max_inflight = -2}, "max_inflight must be >= 0, got -2"},
  };
  for (const Bad& b : bad) {
    LossServer server(b.options);
    const absl::Status s = server.Start();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(s.message(), b.message);
  }
  LossServer a({.address = "127.0.0.1:0", .compute_threads = 3});
  ASSERT_TRUE(a.Start().ok());
  EXPECT_EQ(a.compute_threads(), 3);
  LossServer b({.address = absl::StrCat("127.0.0.1:", a.port())});
  EXPECT_EQ(b.Start().code(), absl::StatusCode::kUnavailable);
  LossServer machine({.address = "127.0.0.1:0"});
  ASSERT_TRUE(machine.Start().ok());
  EXPECT_EQ(machine.compute_threads(), static_cast<int>(std::thread::hardware_concurrency()));
}

}  // namespace
}  // namespace lossservice
