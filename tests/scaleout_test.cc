// Scale-out on one machine: three loss_server processes on loopback ports and
// one client channel over all three with gRPC's round_robin policy (an ipv4:
// target list), a retry policy and client-side health checking in its
// service config, the way docker/k8s's headless Service is meant to be used.
// While client threads send requests, one replica is killed (SIGKILL) and
// restarted on its port; no call may fail, every replica takes a share of the
// calls, and the restarted one takes calls again.
//
// Which replica answered a call is read from the call's peer address.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
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

extern char** environ;

namespace lossservice {
namespace {

namespace v1 = ::lossservice::v1;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr int kReplicas = 3;
constexpr int kClientThreads = 4;
// Every phase of a test must complete within this, or the test fails.
constexpr auto kPhaseTimeout = 20s;

// What a client of the headless Service should use: round_robin over every
// address, retries of what a dying or draining replica refuses, and
// client-side health checking so that a NOT_SERVING replica gets no calls.
constexpr char kServiceConfig[] = R"({
  "loadBalancingConfig": [{"round_robin": {}}],
  "healthCheckConfig": {"serviceName": "lossservice.v1.LossService"},
  "methodConfig": [{
    "name": [{"service": "lossservice.v1.LossService"}],
    "retryPolicy": {
      "maxAttempts": 5,
      "initialBackoff": "0.01s",
      "maxBackoff": "0.2s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE", "RESOURCE_EXHAUSTED"]
    }
  }]
})";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Waits until done() holds, failing the test after kPhaseTimeout.
template <typename Done>
bool WaitFor(const char* what, Done done) {
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

// One loss_server process with its log in a file.
class Replica {
 public:
  explicit Replica(int index)
      : log_(absl::StrCat(::testing::TempDir(), "scaleout_", getpid(), "_", index, ".log")) {}
  ~Replica() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    std::remove(log_.c_str());
  }

  // Starts on 127.0.0.1:port (0: a free one) and waits for its log to say
  // where it listens.
  void Start(int port) {
    std::string address = absl::StrCat("--address=127.0.0.1:", port);
    std::string level = "--log_level=info";
    std::string binary = LOSS_SERVER_PATH;
    char* argv[] = {binary.data(), address.data(), level.data(), nullptr};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    ASSERT_EQ(posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv, environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    const std::regex listening(R"(listening on 127\.0\.0\.1:(\d+))");
    const auto deadline = Clock::now() + 10s;
    while (Clock::now() < deadline) {
      std::smatch match;
      const std::string log = ReadFile(log_);
      if (std::regex_search(log, match, listening)) {
        port_ = std::stoi(match[1]);
        ASSERT_TRUE(port == 0 || port_ == port) << log;
        return;
      }
      ASSERT_EQ(waitpid(pid_, nullptr, WNOHANG), 0) << "loss_server exited: " << log;
      std::this_thread::sleep_for(20ms);
    }
    FAIL() << "loss_server did not listen within 10 s: " << ReadFile(log_);
  }

  void Signal(int signal) { ASSERT_EQ(kill(pid_, signal), 0); }

  // The exit status, or 128 + the signal that ended it.
  int Wait() {
    int status = 0;
    EXPECT_EQ(waitpid(pid_, &status, 0), pid_);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  int port() const { return port_; }
  std::string log() const { return ReadFile(log_); }

 private:
  std::string log_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// Client threads sending Evaluate on one channel until stopped; counts calls
// by the replica's port and keeps every failure.
class Load {
 public:
  explicit Load(const std::vector<int>& ports) {
    std::vector<std::string> addresses;
    for (int port : ports) addresses.push_back(absl::StrCat("127.0.0.1:", port));
    grpc::ChannelArguments args;
    args.SetServiceConfigJSON(kServiceConfig);
    // Reconnect to a restarted replica within a fraction of a second (the
    // default backoff starts at 1 s and grows to 120 s).
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
    channel_ = grpc::CreateCustomChannel(absl::StrCat("ipv4:", absl::StrJoin(addresses, ",")),
                                         grpc::InsecureChannelCredentials(), args);
    // MSE of [1, 2] against [1, 4] is exactly 2.
    request_.mutable_mse();
    request_.mutable_input()->add_shape(2);
    request_.mutable_input()->add_float_values(1);
    request_.mutable_input()->add_float_values(2);
    request_.mutable_target()->add_shape(2);
    request_.mutable_target()->add_float_values(1);
    request_.mutable_target()->add_float_values(4);
  }
  ~Load() { Stop(); }

  void Start() {
    for (int i = 0; i < kClientThreads; ++i) threads_.emplace_back([this, i] { Run(i); });
  }

  // Returns once every thread has finished a call it started after this was
  // called: by then every call answered before is counted.
  bool WaitForCallsInFlight() {
    std::vector<int> started;
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
  void Stop() {
    stop_ = true;
    for (std::thread& thread : threads_) thread.join();
    threads_.clear();
  }

  std::map<int, int> calls() const {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  int calls_to(int port) const {
    absl::MutexLock lock(&mu_);
    auto it = calls_.find(port);
    return it == calls_.end() ? 0 : it->second;
  }
  std::vector<std::string> failures() const {
    absl::MutexLock lock(&mu_);
    return failures_;
  }

 private:
  void Run(int thread) {
    auto stub = v1::LossService::NewStub(channel_);
    while (!stop_) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + 5s);
      v1::EvaluateResponse response;
      const grpc::Status status = stub->Evaluate(&context, request_, &response);
      absl::MutexLock lock(&mu_);
      ++finished_[thread];
      if (!status.ok()) {
        failures_.push_back(absl::StrCat(status.error_code(), " ", status.error_message()));
      } else if (response.loss().float_values_size() != 1 ||
                 response.loss().float_values(0) != 2.0f) {
        failures_.push_back(absl::StrCat("wrong loss: ", response.loss().ShortDebugString()));
      } else {
        // "ipv4:127.0.0.1:PORT"
        const std::string peer = context.peer();
        ++calls_[std::stoi(peer.substr(peer.rfind(':') + 1))];
      }
    }
  }

  std::shared_ptr<grpc::Channel> channel_;
  v1::EvaluateRequest request_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  mutable absl::Mutex mu_;
  std::map<int, int> calls_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> failures_ ABSL_GUARDED_BY(mu_);
  std::vector<int> finished_ ABSL_GUARDED_BY(mu_) = std::vector<int>(kClientThreads);
};

std::string Counts(const std::map<int, int>& calls) {
  std::vector<std::string> parts;
  for (const auto& [port, count] : calls) parts.push_back(absl::StrCat(port, ": ", count));
  return absl::StrJoin(parts, ", ");
}

class ScaleOutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < kReplicas; ++i) {
      replicas_.push_back(std::make_unique<Replica>(i));
      ASSERT_NO_FATAL_FAILURE(replicas_.back()->Start(0));
      ports_.push_back(replicas_.back()->port());
    }
    load_ = std::make_unique<Load>(ports_);
    load_->Start();
    // Every replica takes calls, and round_robin shares them out evenly.
    ASSERT_TRUE(WaitFor("100 calls on every replica", [&] {
      for (int port : ports_) {
        if (load_->calls_to(port) < 100) return false;
      }
      return true;
    })) << Counts(load_->calls());
    const std::map<int, int> calls = load_->calls();
    int total = 0;
    for (const auto& [port, count] : calls) total += count;
    for (int port : ports_) {
      EXPECT_GE(calls.at(port) * 100, total * 25) << "uneven: " << Counts(calls);
    }
    std::printf("spread over %d replicas: %s\n", kReplicas, Counts(calls).c_str());
  }

  void TearDown() override {
    if (load_ != nullptr) {
      load_->Stop();
      const std::vector<std::string> failures = load_->failures();
      EXPECT_TRUE(failures.empty())
          << failures.size() << " calls failed, the first: " << failures.front();
      std::printf("calls by port: %s; failed: %zu\n", Counts(load_->calls()).c_str(),
                  failures.size());
    }
  }

  // Calls keep going to the others for a while.
  void ExpectOthersServe(int gone) {
    std::map<int, int> before = load_->calls();
    ASSERT_TRUE(WaitFor("200 more calls on each other replica", [&] {
      for (int port : ports_) {
        if (port != gone && load_->calls_to(port) < before[port] + 200) return false;
      }
      return true;
    }));
  }

  std::vector<std::unique_ptr<Replica>> replicas_;
  std::vector<int> ports_;
  std::unique_ptr<Load> load_;
};

TEST_F(ScaleOutTest, KilledReplicaIsRetriedAroundAndTakesCallsAgainOnItsPort) {
  Replica& victim = *replicas_[1];
  const int port = victim.port();
  victim.Signal(SIGKILL);
  EXPECT_EQ(victim.Wait(), 128 + SIGKILL);
  ASSERT_TRUE(load_->WaitForCallsInFlight());
  const int at_kill = load_->calls_to(port);
  ASSERT_NO_FATAL_FAILURE(ExpectOthersServe(port));
  EXPECT_EQ(load_->calls_to(port), at_kill) << "calls answered by a killed replica";

  ASSERT_NO_FATAL_FAILURE(victim.Start(port));
  EXPECT_TRUE(WaitFor("100 calls on the restarted replica", [&] {
    return load_->calls_to(port) >= at_kill + 100;
  })) << Counts(load_->calls());
}

}  // namespace
}  // namespace lossservice
