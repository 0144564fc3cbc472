// The drain: what SIGTERM does. In process (LossServer::Drain, with a held
// compute pool where a call must wait): health turns NOT_SERVING and stays
// answerable on the port, new calls get UNAVAILABLE, every call accepted
// before (queued for the pool, still uploading) gets its full answer, a
// stream still open at half the grace is ended with UNAVAILABLE after its
// answers, and calls still running when the grace runs out are cancelled.
// As shipped (a loss_server process): SIGTERM during a burst of large
// requests over several connections, and the exit status.
#include <signal.h>

#include <atomic>
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
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "lossservice/v1/loss_service.grpc.pb.h"
#include "server/call_gate.h"
#include "server/loss_server.h"
#include "tests/server_testing.h"

namespace lossservice {
namespace {

using grpc::health::v1::HealthCheckResponse;
using test::Floats;
using test::Mse;
using Clock = std::chrono::steady_clock;

constexpr char kEvaluate[] = "/lossservice.v1.LossService/Evaluate";
constexpr char kEvaluateStream[] = "/lossservice.v1.LossService/EvaluateStream";

const std::string& DrainingMessage() {
  static const std::string* m = new std::string(CallGate::DrainingRefusal().error_message());
  return *m;
}

// A bidi call on raw bytes driven by the test: its headers go out at once,
// each Write() when the test says, and every response is kept.
class ManualCall final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  ManualCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& method)
      : stub_(channel) {
    context_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    stub_.PrepareBidiStreamingCall(&context_, method, grpc::StubOptions(), this);
    StartRead(&read_);
    StartCall();
  }

  // Writes one message and waits until it is sent.
  bool Write(const grpc::ByteBuffer& message) {
    std::unique_lock<std::mutex> lock(mu_);
    writing_ = message;
    write_done_ = false;
    lock.unlock();
    StartWrite(&writing_);
    lock.lock();
    cv_.wait(lock, [&] { return write_done_; });
    return write_ok_;
  }
  void WritesDone() { StartWritesDone(); }

  // Waits until `n` responses have arrived (false if the call ends first).
  bool WaitForResponses(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return responses_.size() >= n || done_; });
    return responses_.size() >= n;
  }
  grpc::Status Await(std::vector<std::string>* responses) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return done_; });
    *responses = responses_;
    return status_;
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    write_done_ = true;
    write_ok_ = ok;
    cv_.notify_all();
  }
  void OnWritesDoneDone(bool) override {}
  void OnReadDone(bool ok) override {
    if (!ok) return;
    std::lock_guard<std::mutex> lock(mu_);
    responses_.push_back(test::ToString(read_));
    cv_.notify_all();
    StartRead(&read_);
  }
  void OnDone(const grpc::Status& s) override {
    std::lock_guard<std::mutex> lock(mu_);
    status_ = s;
    done_ = true;
    cv_.notify_all();
  }

 private:
  grpc::GenericStub stub_;
  grpc::ClientContext context_;
  grpc::ByteBuffer read_, writing_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> responses_;
  bool write_done_ = false, write_ok_ = false, done_ = false;
  grpc::Status status_;
};

// The float loss of an EvaluateResponse (typed), or NaN.
float LossOf(const std::string& bytes) {
  v1::EvaluateResponse r;
  if (!r.ParseFromString(bytes) || r.loss().float_values_size() != 1) return std::nanf("");
  return r.loss().float_values(0);
}

// Health of the server and of the service on a new connection to `address`,
// polled until both say `want` (10 s at most).
bool HealthBecomes(const std::string& address, int want) {
  const auto until = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < until) {
    int a = -1, b = -1;
    auto channel = test::Connect(address);
    if (test::CheckHealth(channel, "", &a).ok() &&
        test::CheckHealth(channel, "lossservice.v1.LossService", &b).ok() && a == want &&
        b == want) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

// ---- in process ---------------------------------------------------------------------------

// A call queued for the (held) pool and a call whose headers have arrived
// but whose message has not, when the drain starts: while both wait, health
// says NOT_SERVING on the port and new calls, on a new connection and on
// the old one, get UNAVAILABLE with the drain's message; then both get
// their full, right answers, and the drain ends drained.
TEST(DrainTest, AcceptedCallsFinishWhileHealthSaysNotServingAndNewCallsAreRefused) {
  test::HeldPool pool;
  test::TestServer server({.compute_pool = &pool.pool()});
  test::Burst queued(server.channel());
  queued.Start(kEvaluate, test::ToBuffer(test::BigCrossEntropy(256, 1000)));
  ASSERT_TRUE(test::WaitFor(server.server(), [](const ServerStats& s) { return s.queued == 1; }));
  ManualCall upload(server.NewConnection(), kEvaluate);
  ASSERT_TRUE(
      test::WaitFor(server.server(), [](const ServerStats& s) { return s.admitted == 2; }));

  LossServer::DrainResult result;
  std::thread drain([&] { result = server.server().Drain(absl::Seconds(60)); });
  ASSERT_TRUE(HealthBecomes(server.address(), HealthCheckResponse::NOT_SERVING));
  std::string unused;
  const grpc::ByteBuffer small = test::ToBuffer(Mse(Floats({1}, {3}), Floats({1}, {1})));
  for (const auto& channel : {server.NewConnection(), server.channel()}) {
    const grpc::Status s = test::RawUnary(channel, kEvaluate, small, &unused);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
    EXPECT_EQ(s.error_message(), DrainingMessage());
  }

  ASSERT_TRUE(upload.Write(test::ToBuffer(Mse(Floats({2}, {3, 5}), Floats({2}, {1, 1})))));
  upload.WritesDone();
  pool.Release();
  std::vector<std::string> answers;
  const grpc::Status uploaded = upload.Await(&answers);
  ASSERT_TRUE(uploaded.ok()) << uploaded.error_message();
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(LossOf(answers[0]), 10.0f);  // (2^2 + 4^2) / 2
  const test::Outcome q = queued.Await()[0];
  ASSERT_TRUE(q.status.ok()) << q.status.error_message();
  EXPECT_NEAR(test::BigCrossEntropyLoss(q.response, 256 * 1000), std::log(1000.0f), 1e-4f);

  drain.join();
  EXPECT_TRUE(result.drained);
  EXPECT_EQ(result.cancelled, 0);
  EXPECT_EQ(result.refused, 2);
  const ServerStats stats = server.server().stats();
  EXPECT_EQ(stats.computed, 2);
  EXPECT_EQ(stats.cancelled, 0);
  // Stopped: nothing listens on the port any more.
  EXPECT_EQ(test::CheckHealth(server.NewConnection(), "", nullptr).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

// A call waiting for the pool when a grace of 300 ms runs out is cancelled,
// and the drain says so. gRPC cancels it by closing the connection: its
// client sees UNAVAILABLE, which it may retry elsewhere.
TEST(DrainTest, CallsStillRunningWhenTheGraceRunsOutAreCancelled) {
  test::HeldPool pool;
  test::TestServer server({.compute_pool = &pool.pool()});
  test::Burst queued(server.channel());
  queued.Start(kEvaluate, test::ToBuffer(test::BigCrossEntropy(256, 1000)));
  ASSERT_TRUE(test::WaitFor(server.server(), [](const ServerStats& s) { return s.queued == 1; }));
  const Clock::time_point start = Clock::now();
  LossServer::DrainResult result;
  std::thread drain([&] { result = server.server().Drain(absl::Milliseconds(300)); });
  // The client sees the cancellation when the grace runs out; the pool, let
  // go then, skips the cancelled request, and the drain ends.
  const grpc::Status s = queued.Await()[0].status;
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  std::printf("the client of the cancelled call got %s\n", s.error_message().c_str());
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(300));
  // The server learns of the cancellation on a thread of its own, possibly
  // after the client: the pool is let go once it has.
  ASSERT_TRUE(
      test::WaitFor(server.server(), [](const ServerStats& s) { return s.cancelled == 1; }));
  pool.Release();
  drain.join();
  EXPECT_FALSE(result.drained);
  EXPECT_EQ(result.cancelled, 1);
  ASSERT_TRUE(test::WaitFor(server.server(), test::Idle));
  EXPECT_EQ(server.server().stats().cancelled, 1);
  EXPECT_EQ(server.server().stats().started, 0);
}

// A stream that answered two requests and stays open: at half the grace it
// is ended with UNAVAILABLE saying how many were answered, and the drain
// ends drained, before the grace.
TEST(DrainTest, AStreamStillOpenAtHalfTheGraceEndsAfterItsAnswers) {
  test::TestServer server({.compute_threads = 1});
  ManualCall stream(server.channel(), kEvaluateStream);
  for (float x : {3.0f, 5.0f}) {
    ASSERT_TRUE(stream.Write(test::ToBuffer(Mse(Floats({1}, {x}), Floats({1}, {1})))));
  }
  ASSERT_TRUE(stream.WaitForResponses(2));
  const Clock::time_point start = Clock::now();
  const LossServer::DrainResult result = server.server().Drain(absl::Seconds(2));
  const auto took = Clock::now() - start;
  EXPECT_TRUE(result.drained);
  EXPECT_GE(took, std::chrono::milliseconds(1000));
  EXPECT_LT(took, std::chrono::milliseconds(2000));
  std::vector<std::string> responses;
  const grpc::Status s = stream.Await(&responses);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(s.error_message(),
            "the server is shutting down: this stream's first 2 requests were answered and no "
            "more were read; send the rest on a new call");
  ASSERT_EQ(responses.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    v1::EvaluateStreamResponse r;
    ASSERT_TRUE(r.ParseFromString(responses[i]));
    EXPECT_EQ(r.response().loss().float_values(0), i == 0 ? 4.0f : 16.0f);
  }
}

// A stream that half-closes within half the grace gets every answer and OK.
TEST(DrainTest, AStreamThatEndsWithinTheGraceGetsEveryAnswer) {
  test::HeldPool pool;
  test::TestServer server({.compute_pool = &pool.pool()});
  ManualCall stream(server.channel(), kEvaluateStream);
  ASSERT_TRUE(stream.Write(test::ToBuffer(Mse(Floats({1}, {3}), Floats({1}, {1})))));
  ASSERT_TRUE(test::WaitFor(server.server(), [](const ServerStats& s) { return s.queued == 1; }));
  LossServer::DrainResult result;
  std::thread drain([&] { result = server.server().Drain(absl::Seconds(60)); });
  ASSERT_TRUE(HealthBecomes(server.address(), HealthCheckResponse::NOT_SERVING));
  // Requests on the open stream are still taken while it lasts.
  ASSERT_TRUE(stream.Write(test::ToBuffer(Mse(Floats({1}, {5}), Floats({1}, {1})))));
  stream.WritesDone();
  pool.Release();
  std::vector<std::string> responses;
  const grpc::Status s = stream.Await(&responses);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(responses.size(), 2u);
  drain.join();
  EXPECT_TRUE(result.drained);
}

// Health/Watch on the server's own connection: SERVING, then NOT_SERVING
// when the drain starts, then the watch ends (OK) so that the client
// watches elsewhere.
TEST(DrainTest, AWatchSeesNotServingThenEnds) {
  test::TestServer server;
  auto stub = grpc::health::v1::Health::NewStub(server.channel());
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckRequest request;
  request.set_service("lossservice.v1.LossService");
  auto reader = stub->Watch(&context, request);
  HealthCheckResponse r;
  ASSERT_TRUE(reader->Read(&r));
  EXPECT_EQ(r.status(), HealthCheckResponse::SERVING);
  std::thread drain([&] { server.server().Drain(absl::Seconds(10)); });
  ASSERT_TRUE(reader->Read(&r));
  EXPECT_EQ(r.status(), HealthCheckResponse::NOT_SERVING);
  EXPECT_FALSE(reader->Read(&r));
  EXPECT_TRUE(reader->Finish().ok());
  drain.join();
}

// ---- loss_server itself ---------------------------------------------------------------------

// Closed-loop clients on four connections send [2048, 1000] cross_entropy
// requests with their gradient (8 MB each way) to a server with one compute
// thread; SIGTERM comes once each client has had answers, and a 60 MB
// request still uploading (its headers arrived before the signal, its
// message after). Every call gets its full, right answer or, once the drain
// has begun, UNAVAILABLE with the drain's message: never CANCELLED, never
// anything else. The server exits 0.
TEST(SigtermTest, EveryAcceptedCallOfABurstGetsItsAnswer) {
  test::ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start(
      {"--compute_threads=1", "--shutdown_grace_s=60", "--metrics_address=127.0.0.1:0",
       "--log_level=debug"}));
  constexpr int kClients = 4, kRows = 2048, kClasses = 1000;
  const grpc::ByteBuffer request = test::ToBuffer(test::BigCrossEntropy(kRows, kClasses));
  struct Client {
    std::vector<test::Outcome> outcomes;
    std::atomic<int> answered{0};
  };
  // The upload first: its headers now (the server admits it), its message
  // after the signal.
  ManualCall upload(test::Connect(server.address()), kEvaluate);
  const auto until = Clock::now() + std::chrono::seconds(10);
  while (test::Scrape(test::HttpGet(server.metrics_port(), "/metrics"))
             ["lossservice_admitted_total"] < 1) {
    ASSERT_LT(Clock::now(), until) << "the upload's call never arrived; the server's log:\n"
                                   << server.log();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::vector<Client> clients(kClients);
  std::atomic<bool> signalled{false};
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      auto channel = test::Connect(server.address());
      // Until the first refusal, and at most a few answers past the signal.
      int after_signal = 0;
      while (after_signal < 3) {
        test::Burst call(channel);
        call.Start(kEvaluate, request, std::chrono::milliseconds(120000));
        test::Outcome o = call.Await()[0];
        const bool refused = o.status.error_code() == grpc::StatusCode::UNAVAILABLE;
        clients[c].outcomes.push_back(std::move(o));
        if (refused) break;
        clients[c].answered++;
        if (signalled.load()) ++after_signal;
      }
    });
  }
  int64_t answered = 0;
  for (auto& c : clients) {
    while (c.answered.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  for (auto& c : clients) answered += c.answered.load();
  server.Signal(SIGTERM);
  signalled = true;
  constexpr int64_t kBig = 7'500'000;  // 2 x 30 MB of floats
  const v1::EvaluateRequest big =
      Mse(test::RawFloats({kBig}, std::vector<float>(kBig, 3.0f)),
          test::RawFloats({kBig}, std::vector<float>(kBig, 1.0f)));
  ASSERT_TRUE(upload.Write(test::ToBuffer(big)));
  upload.WritesDone();
  std::vector<std::string> upload_answer;
  const grpc::Status uploaded = upload.Await(&upload_answer);
  for (std::thread& t : threads) t.join();
  const int status = server.Wait();

  ASSERT_TRUE(uploaded.ok()) << uploaded.error_message();
  ASSERT_EQ(upload_answer.size(), 1u);
  v1::EvaluateResponse r;
  ASSERT_TRUE(r.ParseFromString(upload_answer[0]));
  ASSERT_EQ(r.loss().raw_data().size(), 4u);
  float loss;
  std::memcpy(&loss, r.loss().raw_data().data(), 4);
  EXPECT_EQ(loss, 4.0f);
  int ok = 0, refused = 0;
  for (const Client& c : clients) {
    for (const test::Outcome& o : c.outcomes) {
      if (o.status.ok()) {
        ++ok;
        EXPECT_NEAR(test::BigCrossEntropyLoss(o.response, int64_t{kRows} * kClasses),
                    std::log(1000.0f), 1e-4f);
      } else {
        ++refused;
        EXPECT_EQ(o.status.error_code(), grpc::StatusCode::UNAVAILABLE) << o.status.error_message();
        EXPECT_EQ(o.status.error_message(), DrainingMessage());
      }
    }
  }
  std::printf("answered %d calls (%lld before SIGTERM), %d refused while draining\n", ok,
              static_cast<long long>(answered), refused);
  EXPECT_GE(refused, 1);
  EXPECT_EQ(status, 0) << server.log();
  if (::testing::Test::HasFailure()) std::printf("%s\n", server.log().c_str());
  EXPECT_NE(server.log().find("drained in"), std::string::npos) << server.log();
}

// A call accepted (its headers) whose message never comes: when a grace of
// 1 s runs out it is cancelled, its client gets UNAVAILABLE, the log says
// so at error, and the exit status is 3.
TEST(SigtermTest, AGraceThatRunsOutExitsNonZero) {
  test::ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(
      server.Start({"--compute_threads=1", "--shutdown_grace_s=1", "--metrics_address=127.0.0.1:0"}));
  ManualCall stalled(test::Connect(server.address()), kEvaluate);
  const auto until = Clock::now() + std::chrono::seconds(10);
  while (test::Scrape(test::HttpGet(server.metrics_port(), "/metrics"))
             ["lossservice_admitted_total"] < 1) {
    ASSERT_LT(Clock::now(), until) << "the call never arrived";
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const Clock::time_point start = Clock::now();
  server.Signal(SIGTERM);
  std::vector<std::string> responses;
  const grpc::Status s = stalled.Await(&responses);
  const int status = server.Wait();
  const auto took = Clock::now() - start;
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_TRUE(responses.empty());
  EXPECT_EQ(status, 3) << server.log();
  EXPECT_GE(took, std::chrono::milliseconds(1000));
  EXPECT_LT(took, std::chrono::milliseconds(5000));
  EXPECT_NE(server.log().find("the grace of 1s ran out with 1 call still running: they were "
                              "cancelled"),
            std::string::npos)
      << server.log();
}

// SIGINT drains as SIGTERM does: an idle server exits 0 at once.
TEST(SigtermTest, SigintDrainsToo) {
  test::ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start({}));
  const Clock::time_point start = Clock::now();
  server.Signal(SIGINT);
  EXPECT_EQ(server.Wait(), 0) << server.log();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(3));
  EXPECT_NE(server.log().find("received SIGINT, shutting down"), std::string::npos)
      << server.log();
  EXPECT_NE(server.log().find("drained in"), std::string::npos) << server.log();
}

}  // namespace
}  // namespace lossservice
