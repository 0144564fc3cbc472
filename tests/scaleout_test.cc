// Scale-out on one machine: three loss_server processes on loopback ports and
// one client channel over all three with gRPC's round_robin policy (an ipv4:
// target list), a retry policy and client-side health checking in its
// service config (docker/service-config.json, as the README says), the way docker/k8s's headless Service is meant to be used.
// While client threads send requests:
//
//   - one replica is killed (SIGKILL) and restarted on its port: no call
//     fails, the others take its share, the restarted one takes calls again;
//   - one replica gets SIGTERM, as the kubelet sends it: health turns
//     NOT_SERVING, the channel moves away (what arrives meanwhile is refused
//     with UNAVAILABLE and retried on another replica), a stream it had
//     accepted keeps being answered, and once that ends the process exits 0
//     within its grace; no call fails.
//
// Every replica serves /metrics; the spread is read from its counter of
// answered Evaluate requests, and the counts are exact: at each point where
// the clients are paused (no call in flight), every replica's counter equals
// the calls the clients had answered by it (by the call's peer address), and
// the counters add up to every call made. A SIGKILLed process takes its
// counter with it: its share before the kill is the peer count, which its
// last scrape matched.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "lossservice/v1/loss_service.grpc.pb.h"
#include "tests/server_testing.h"

namespace lossservice {
namespace {

namespace v1 = ::lossservice::v1;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr int kReplicas = 3;
constexpr int kClientThreads = 4;
// Every phase of a test must complete within this, or the test fails.
constexpr auto kPhaseTimeout = 30s;
// The drained replica's --shutdown_grace_s: the drain waits up to half of it
// for the open stream, longer than the test keeps it open.
constexpr int kGraceS = 30;

// Evaluate requests a replica answered (each is also counted, under
// rpc="EvaluateStream", when it comes on a stream).
constexpr char kAnswered[] = R"(lossservice_requests_total{rpc="Evaluate",loss="mse",code="OK"})";

// What a client of the headless Service should use (docker/service-config.json):
// round_robin over every address, retries of what a dying or draining
// replica refuses, and client-side health checking so that a NOT_SERVING
// replica gets no calls. Without `health_check`, the same but its
// healthCheckConfig: a client that keeps sending to a draining replica until
// the replica closes its connection.
std::string ServiceConfig(bool health_check) {
  std::ifstream in(LOSS_SERVICE_CONFIG);
  std::stringstream text;
  text << in.rdbuf();
  std::string config = text.str();
  const size_t line = config.find("  \"healthCheckConfig\"");
  EXPECT_NE(line, std::string::npos) << LOSS_SERVICE_CONFIG;
  if (!health_check && line != std::string::npos) config.erase(line, config.find('\n', line) + 1 - line);
  return config;
}

// Waits until done() holds, failing the test after kPhaseTimeout.
template <typename Done>
bool WaitFor(const std::string& what, Done done) {
  const auto deadline = Clock::now() + kPhaseTimeout;
  while (!done()) {
    if (Clock::now() > deadline) {
      ADD_FAILURE() << "timed out waiting for " << what;
      return false;
    }
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

// MSE of [1, 2] against [1, 4] is exactly 2.
v1::EvaluateRequest Request() {
  return test::Mse(test::Floats({2}, {1, 2}), test::Floats({2}, {1, 4}));
}
bool RightAnswer(const v1::EvaluateResponse& r) {
  return r.loss().float_values_size() == 1 && r.loss().float_values(0) == 2.0f;
}

// One loss_server process on a loopback port, with its metrics.
class Replica {
 public:
  // Starts on 127.0.0.1:port (0: a free one), metrics on a free port.
  void Start(int port, int grace_s = 10) {
    process_.Start({absl::StrCat("--address=127.0.0.1:", port), "--metrics_address=127.0.0.1:0",
                    absl::StrCat("--shutdown_grace_s=", grace_s)});
    ASSERT_TRUE(port == 0 || process_.port() == port) << process_.log();
    ASSERT_GT(process_.metrics_port(), 0) << process_.log();
  }
  test::Scrape Scrape() const {
    return test::Scrape(test::HttpGet(process_.metrics_port(), "/metrics"));
  }
  int64_t Answered() const { return static_cast<int64_t>(Scrape()[kAnswered]); }
  test::ServerProcess& process() { return process_; }
  int port() const { return process_.port(); }

 private:
  test::ServerProcess process_;
};

// Client threads sending Evaluate on one channel until stopped; counts the
// answers by the replica's port and keeps every failure. Pause() holds every
// thread between two calls.
class Load {
 public:
  Load(const std::vector<int>& ports, bool health_check) : request_(Request()) {
    std::vector<std::string> addresses;
    for (int port : ports) addresses.push_back(absl::StrCat("127.0.0.1:", port));
    grpc::ChannelArguments args;
    args.SetServiceConfigJSON(ServiceConfig(health_check));
    // Reconnect to a restarted replica within a fraction of a second (the
    // default backoff starts at 1 s and grows to 120 s).
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
    channel_ = grpc::CreateCustomChannel(absl::StrCat("ipv4:", absl::StrJoin(addresses, ",")),
                                         grpc::InsecureChannelCredentials(), args);
  }
  ~Load() { Stop(); }

  void Start() {
    for (int i = 0; i < kClientThreads; ++i) threads_.emplace_back([this, i] { Run(i); });
  }

  // Returns once every thread has finished a call it started after this was
  // called: by then every call answered before is counted.
  bool WaitForCallsInFlight() {
    std::vector<int64_t> started;
    {
      absl::MutexLock lock(&mu_);
      started = finished_;
    }
    return WaitFor("every client thread to finish a call", [&] {
      absl::MutexLock lock(&mu_);
      for (int i = 0; i < kClientThreads; ++i) {
        if (finished_[i] < started[i] + 2) return false;
      }
      return true;
    });
  }

  // Holds every thread before its next call; returns once none is in a call.
  bool Pause() {
    absl::MutexLock lock(&mu_);
    paused_ = true;
    const bool parked = mu_.AwaitWithTimeout(
        absl::Condition(+[](Load* l) { return l->parked_ == kClientThreads; }, this),
        absl::FromChrono(kPhaseTimeout));
    EXPECT_TRUE(parked) << "the client threads did not pause";
    return parked;
  }
  void Resume() {
    absl::MutexLock lock(&mu_);
    paused_ = false;
  }
  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    for (std::thread& thread : threads_) thread.join();
    threads_.clear();
  }

  std::map<int, int64_t> by_port() const {
    absl::MutexLock lock(&mu_);
    return by_port_;
  }
  int64_t answered_by(int port) const {
    absl::MutexLock lock(&mu_);
    auto it = by_port_.find(port);
    return it == by_port_.end() ? 0 : it->second;
  }
  // Calls made and answered right.
  int64_t answered() const {
    absl::MutexLock lock(&mu_);
    return answered_;
  }
  std::vector<std::string> failures() const {
    absl::MutexLock lock(&mu_);
    return failures_;
  }

 private:
  void Run(int thread) {
    auto stub = v1::LossService::NewStub(channel_);
    for (;;) {
      {
        absl::MutexLock lock(&mu_);
        if (paused_ && !stop_) {
          ++parked_;
          mu_.Await(absl::Condition(
              +[](Load* l) { return !l->paused_ || l->stop_; },
              this));
          --parked_;
        }
        if (stop_) return;
      }
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + 10s);
      v1::EvaluateResponse response;
      const grpc::Status status = stub->Evaluate(&context, request_, &response);
      absl::MutexLock lock(&mu_);
      ++finished_[thread];
      if (!status.ok()) {
        failures_.push_back(absl::StrCat(status.error_code(), " ", status.error_message()));
      } else if (!RightAnswer(response)) {
        failures_.push_back(absl::StrCat("wrong loss: ", response.loss().ShortDebugString()));
      } else {
        ++answered_;
        // "ipv4:127.0.0.1:PORT"
        const std::string peer = context.peer();
        ++by_port_[std::stoi(peer.substr(peer.rfind(':') + 1))];
      }
    }
  }

  std::shared_ptr<grpc::Channel> channel_;
  const v1::EvaluateRequest request_;
  std::vector<std::thread> threads_;
  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool paused_ ABSL_GUARDED_BY(mu_) = false;
  int parked_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t answered_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<int, int64_t> by_port_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> failures_ ABSL_GUARDED_BY(mu_);
  std::vector<int64_t> finished_ ABSL_GUARDED_BY(mu_) = std::vector<int64_t>(kClientThreads);
};

std::string Counts(const std::map<int, int64_t>& counts) {
  std::vector<std::string> parts;
  for (const auto& [port, count] : counts) parts.push_back(absl::StrCat(port, ": ", count));
  return absl::StrJoin(parts, ", ");
}

class ScaleOutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < kReplicas; ++i) {
      replicas_.push_back(std::make_unique<Replica>());
      // The one a test signals gets the long grace (see kGraceS).
      ASSERT_NO_FATAL_FAILURE(replicas_.back()->Start(0, i == 1 ? kGraceS : 10));
      ports_.push_back(replicas_.back()->port());
    }
    load_ = std::make_unique<Load>(ports_, HealthCheck());
    load_->Start();
    // Every replica takes calls; then, all connected, round_robin shares
    // them out evenly, and every replica's counter is exact.
    ASSERT_TRUE(WaitFor("50 calls on every replica", [&] {
      for (int port : ports_) {
        if (load_->answered_by(port) < 50) return false;
      }
      return true;
    })) << Counts(load_->by_port());
    ASSERT_TRUE(load_->Pause());
    const std::map<int, int64_t> warm = Scrapes();
    const int64_t warm_total = load_->answered();
    ExpectExact(warm, warm_total);
    load_->Resume();
    ASSERT_TRUE(WaitFor("100 more calls on every replica", [&] {
      for (int port : ports_) {
        if (load_->answered_by(port) < warm.at(port) + 100) return false;
      }
      return true;
    })) << Counts(load_->by_port());
    ASSERT_TRUE(load_->Pause());
    std::map<int, int64_t> metrics = Scrapes();
    const int64_t total = load_->answered();
    ExpectExact(metrics, total);
    std::map<int, int64_t> spread;
    for (const auto& [port, count] : metrics) spread[port] = count - warm.at(port);
    for (const auto& [port, count] : spread) {
      EXPECT_GE(count * 100, (total - warm_total) * 25) << "uneven: " << Counts(spread);
    }
    std::printf("spread over %d replicas by /metrics: %s (of %lld calls after %lld to warm up)\n",
                kReplicas, Counts(spread).c_str(), static_cast<long long>(total - warm_total),
                static_cast<long long>(warm_total));
    load_->Resume();
  }

  // The counters, scraped while the clients are paused, are what the
  // clients saw each replica answer, and add up to every call made.
  void ExpectExact(const std::map<int, int64_t>& metrics, int64_t total) {
    EXPECT_EQ(metrics, load_->by_port());
    int64_t sum = 0;
    for (const auto& [port, count] : metrics) sum += count;
    EXPECT_EQ(sum, total);
  }

  void TearDown() override {
    if (load_ != nullptr) {
      load_->Stop();
      const std::vector<std::string> failures = load_->failures();
      EXPECT_TRUE(failures.empty())
          << failures.size() << " calls failed, the first: " << failures.front();
      std::printf("%lld calls answered, by port: %s; failed: %zu\n",
                  static_cast<long long>(load_->answered()), Counts(load_->by_port()).c_str(),
                  failures.size());
    }
  }

  // Whether the clients' channel watches each replica's health.
  virtual bool HealthCheck() const { return true; }

  void SigtermWhileClientsSend();

  // Every running replica's answered Evaluate requests, by its port.
  std::map<int, int64_t> Scrapes(int except_port = -1) {
    std::map<int, int64_t> counts;
    for (auto& r : replicas_) {
      if (r->port() != except_port) counts[r->port()] = r->Answered();
    }
    return counts;
  }

  // Calls keep going to the others, and none to `gone`, for a while.
  void ExpectOthersServe(int gone) {
    const std::map<int, int64_t> before = load_->by_port();
    ASSERT_TRUE(WaitFor("200 more calls on each other replica", [&] {
      for (int port : ports_) {
        if (port != gone && load_->answered_by(port) < before.at(port) + 200) return false;
      }
      return true;
    })) << Counts(load_->by_port());
    EXPECT_EQ(load_->answered_by(gone), before.at(gone)) << "calls answered by " << gone;
  }

  std::vector<std::unique_ptr<Replica>> replicas_;
  std::vector<int> ports_;
  std::unique_ptr<Load> load_;
};

TEST_F(ScaleOutTest, KilledReplicaIsRetriedAroundAndTakesCallsAgainOnItsPort) {
  Replica& victim = *replicas_[1];
  const int port = victim.port();
  victim.process().Signal(SIGKILL);
  EXPECT_EQ(victim.process().Wait(), 128 + SIGKILL);
  ASSERT_TRUE(load_->WaitForCallsInFlight());
  // What the killed process answered, its counter gone with it.
  const int64_t before_kill = load_->answered_by(port);
  ASSERT_NO_FATAL_FAILURE(ExpectOthersServe(port));

  ASSERT_NO_FATAL_FAILURE(victim.Start(port));
  ASSERT_TRUE(WaitFor("a /metrics count of 100 on the restarted replica",
                      [&] { return victim.Answered() >= 100; }));
  ASSERT_TRUE(load_->Pause());
  std::map<int, int64_t> metrics = Scrapes();
  std::map<int, int64_t> seen = load_->by_port();
  // The restarted process counts from 0: what it answered since the restart.
  seen[port] -= before_kill;
  EXPECT_EQ(metrics, seen);
  int64_t sum = before_kill;
  for (const auto& [p, count] : metrics) sum += count;
  EXPECT_EQ(sum, load_->answered());
  EXPECT_GE(metrics[port], 100);
  std::printf("after SIGKILL and restart on %d, by /metrics: %s; %lld answered before the kill\n",
              port, Counts(metrics).c_str(), static_cast<long long>(before_kill));
}

// SIGTERM to one replica while it holds an open stream; the clients send on.
void ScaleOutTest::SigtermWhileClientsSend() {
  Replica& victim = *replicas_[1];
  const int port = victim.port();
  // A stream the replica accepts before the signal, on a connection of its own.
  auto direct = test::Connect(absl::StrCat("127.0.0.1:", port));
  auto stub = v1::LossService::NewStub(direct);
  grpc::ClientContext stream_context;
  stream_context.set_deadline(std::chrono::system_clock::now() + 120s);
  auto stream = stub->EvaluateStream(&stream_context);
  v1::EvaluateStreamResponse streamed;
  ASSERT_TRUE(stream->Write(Request()));
  ASSERT_TRUE(stream->Read(&streamed));
  EXPECT_TRUE(RightAnswer(streamed.response())) << streamed.ShortDebugString();

  const auto signalled = Clock::now();
  victim.process().Signal(SIGTERM);
  ASSERT_TRUE(WaitFor("lossservice_draining 1 on the replica", [&] {
    return victim.Scrape()["lossservice_draining"] == 1;
  }));
  // Calls answered from now on come from the other two.
  ASSERT_TRUE(load_->WaitForCallsInFlight());
  ASSERT_NO_FATAL_FAILURE(ExpectOthersServe(port));
  // The stream it accepted is still answered.
  ASSERT_TRUE(stream->Write(Request()));
  ASSERT_TRUE(stream->Read(&streamed));
  EXPECT_TRUE(RightAnswer(streamed.response())) << streamed.ShortDebugString();

  ASSERT_TRUE(load_->Pause());
  const test::Scrape drained = victim.Scrape();
  std::map<int, int64_t> metrics = Scrapes(port);
  metrics[port] = static_cast<int64_t>(drained[kAnswered]);
  ExpectExact(metrics, load_->answered());
  EXPECT_EQ(drained[R"(lossservice_requests_total{rpc="EvaluateStream",loss="mse",code="OK"})"], 2);
  std::printf(
      "SIGTERM to %d: by /metrics %s; the draining one refused %.0f calls (UNAVAILABLE, "
      "retried elsewhere)\n",
      port, Counts(metrics).c_str(), drained["lossservice_draining_refused_total"]);
  load_->Resume();

  // Once its stream ends, the replica exits 0, within the grace.
  ASSERT_TRUE(stream->WritesDone());
  EXPECT_FALSE(stream->Read(&streamed));
  const grpc::Status finished = stream->Finish();
  EXPECT_TRUE(finished.ok()) << finished.error_code() << " " << finished.error_message();
  const int status = victim.process().Wait();
  const auto took = Clock::now() - signalled;
  EXPECT_EQ(status, 0) << victim.process().log();
  EXPECT_LT(took, std::chrono::seconds(kGraceS));
  EXPECT_NE(victim.process().log().find("every accepted call finished"), std::string::npos)
      << victim.process().log();
  ASSERT_NO_FATAL_FAILURE(ExpectOthersServe(port));
  std::printf("exit status %d, %lld ms after SIGTERM (grace %d s)\n", status,
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()),
              kGraceS);
}

TEST_F(ScaleOutTest, ReplicaGivenSigtermDrainsWithoutAFailedCallAndExits0WithinItsGrace) {
  SigtermWhileClientsSend();
}

}  // namespace
}  // namespace lossservice
