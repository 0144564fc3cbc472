// What the codec, service, server, drain, security and metrics tests
// share: proto builders (from golden cases too), byte-buffer helpers, a
// server started for a test, raw calls and bursts, a compute pool held for
// as long as a test needs, a loss_server process, and /metrics scrapes.
#ifndef LOSSSERVICE_TESTS_SERVER_TESTING_H_
#define LOSSSERVICE_TESTS_SERVER_TESTING_H_

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "core/parallel.h"
#include "google/protobuf/message.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "lossservice/v1/loss_service.grpc.pb.h"
#include "server/loss_server.h"
#include "server/tensor_codec.h"
#include "tests/golden.h"

namespace lossservice::test {

// ---- protos ----------------------------------------------------------------------------

/// `t` as a proto tensor in `encoding`.
v1::Tensor ToProto(const Tensor& t, Encoding encoding);
v1::Tensor Floats(std::vector<int64_t> shape, std::vector<float> values);
v1::Tensor Int64s(std::vector<int64_t> shape, std::vector<int64_t> values);
/// float32 values as raw_data.
v1::Tensor RawFloats(std::vector<int64_t> shape, const std::vector<float>& values);
v1::EvaluateRequest Mse(v1::Tensor input, v1::Tensor target);
/// cross_entropy of `rows` x `classes` logits (all 0.5: the loss is
/// log(classes)) as raw_data, targets 3 (int64), with the gradient.
v1::EvaluateRequest BigCrossEntropy(int rows, int classes);

/// Every case of tests/golden/core_cases.json.
const std::vector<golden::GoldenCase>& GoldenCases();
/// The request of a golden loss / activation case.
v1::EvaluateRequest EvaluateRequestFor(const golden::GoldenCase& c, Encoding e);
v1::ActivateRequest ActivateRequestFor(const golden::GoldenCase& c, Encoding e);
/// A response tensor as a core Tensor, checking that it uses `encoding`.
Tensor FromProto(const v1::Tensor& p, Encoding encoding);

// ---- bytes -------------------------------------------------------------------------------

/// `bytes` as one slice.
grpc::ByteBuffer ToBuffer(const std::string& bytes);
grpc::ByteBuffer ToBuffer(const google::protobuf::Message& message);
std::string ToString(const grpc::ByteBuffer& buffer);
/// Parses `buffer` with protobuf's own parser.
bool ParseBuffer(const grpc::ByteBuffer& buffer, google::protobuf::Message* message);

// ---- a server -------------------------------------------------------------------------------

/// A LossServer on 127.0.0.1:0, serving once Health/Check answers SERVING.
class TestServer {
 public:
  explicit TestServer(LossServer::Options options = {});
  LossServer& server() { return *server_; }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  /// A channel of its own TCP connection.
  std::shared_ptr<grpc::Channel> NewConnection() const;
  std::unique_ptr<v1::LossService::Stub> Stub() const { return v1::LossService::NewStub(channel_); }
  std::string address() const;

 private:
  std::unique_ptr<LossServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

/// Calls a unary method with raw bytes and waits for the answer (`out`:
/// the response bytes, when OK). `timeout` 0: no deadline.
grpc::Status RawUnary(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                      const grpc::ByteBuffer& request, std::string* out,
                      std::chrono::milliseconds timeout = std::chrono::milliseconds(30000));

/// A channel of its own connection to `address`, without message limits;
/// every call on it sends `authorization` as its "authorization" metadata
/// (e.g. "Bearer s3cret"), unless it is empty.
std::shared_ptr<grpc::Channel> Connect(
    const std::string& address,
    std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials(),
    const std::string& authorization = "");

/// grpc.health.v1.Health/Check for `service` ("" for the server): the
/// call's status, and the serving status in `*out` when OK.
grpc::Status CheckHealth(const std::shared_ptr<grpc::Channel>& channel, const std::string& service,
                         int* out);

// ---- metrics ---------------------------------------------------------------------------------

/// The body of an HTTP/1.0 GET of `path` on 127.0.0.1:`port` (empty on failure).
std::string HttpGet(int port, const std::string& path);

/// Prometheus' text format, parsed: every sample by its series, e.g.
/// `lossservice_requests_total{rpc="Evaluate",loss="mse",code="OK"}`.
class Scrape {
 public:
  explicit Scrape(const std::string& text);
  /// The sample of `series`; 0 if the scrape has none (a counter that has
  /// not moved yet).
  double operator[](const std::string& series) const;
  bool has(const std::string& series) const { return samples_.count(series) > 0; }

 private:
  std::map<std::string, double> samples_;
};

// ---- a loss_server process ---------------------------------------------------------------

/// build/server/loss_server as shipped, started with flags, its output in a
/// file.
class ServerProcess {
 public:
  ServerProcess();
  ~ServerProcess();  // SIGKILL if still running
  /// Starts `loss_server --address=127.0.0.1:0 <flags>` and waits (10 s at
  /// most) for its log to say where it listens (on `host`, which a later
  /// --address in `flags` may change); also where its metrics listen, when
  /// `flags` has --metrics_address.
  void Start(const std::vector<std::string>& flags, const std::string& host = "127.0.0.1");
  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  std::string address() const;
  void Signal(int signal);
  /// Waits for the process to end: its exit status, or 128 + its signal.
  int Wait();
  std::string log() const;

 private:
  std::string log_path_;
  int pid_ = -1;
  int port_ = 0;
  int metrics_port_ = 0;
};

// ---- calls and waits ------------------------------------------------------------------------

using Clock = std::chrono::steady_clock;

// A bidi call on raw bytes: writes `requests` (then half-closes) while
// reading every response.
class RawStream final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  RawStream(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
            std::vector<grpc::ByteBuffer> requests)
      : stub_(channel), requests_(std::move(requests)) {
    context_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    stub_.PrepareBidiStreamingCall(&context_, method, grpc::StubOptions(), this);
    StartRead(&read_);
    WriteNext();
    StartCall();
  }

  void OnWriteDone(bool ok) override {
    if (ok) WriteNext();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    std::string bytes = ToString(read_);
    std::lock_guard<std::mutex> lock(mu_);
    responses_.push_back(std::move(bytes));
    StartRead(&read_);
  }
  void OnDone(const grpc::Status& s) override {
    std::lock_guard<std::mutex> lock(mu_);
    status_ = s;
    done_ = true;
    cv_.notify_all();
  }

  void Cancel() { context_.TryCancel(); }

  // Waits for the end of the call.
  grpc::Status Await(std::vector<std::string>* responses) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return done_; });
    *responses = responses_;
    return status_;
  }

 private:
  void WriteNext() {
    if (next_ < requests_.size()) {
      StartWrite(&requests_[next_++]);
    } else if (!writes_done_) {
      writes_done_ = true;
      StartWritesDone();
    }
  }

  grpc::GenericStub stub_;
  grpc::ClientContext context_;
  std::vector<grpc::ByteBuffer> requests_;
  size_t next_ = 0;
  bool writes_done_ = false;
  grpc::ByteBuffer read_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> responses_;
  grpc::Status status_;
  bool done_ = false;
};

// Unary calls started together, answered in any order.
struct Outcome {
  grpc::Status status;
  std::string response;
  Clock::time_point done;
};
class Burst {
 public:
  explicit Burst(const std::shared_ptr<grpc::Channel>& channel) : stub_(channel) {}
  // Starts a call; its outcome is outcomes()[returned index] once Await returns.
  size_t Start(const std::string& method, const grpc::ByteBuffer& request,
               std::chrono::milliseconds timeout = std::chrono::milliseconds(60000)) {
    auto call = std::make_unique<Call>();
    call->context.set_deadline(std::chrono::system_clock::now() + timeout);
    Call* c = call.get();
    const size_t index = calls_.size();
    calls_.push_back(std::move(call));
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++pending_;
    }
    stub_.UnaryCall(&c->context, method, grpc::StubOptions(), &request, &c->response,
                    [this, c](grpc::Status s) {
                      std::lock_guard<std::mutex> lock(mu_);
                      c->outcome.status = std::move(s);
                      c->outcome.done = Clock::now();
                      --pending_;
                      cv_.notify_all();
                    });
    return index;
  }
  void Cancel(size_t index) { calls_[index]->context.TryCancel(); }
  std::vector<Outcome> Await() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return pending_ == 0; });
    std::vector<Outcome> out;
    for (auto& c : calls_) {
      c->outcome.response = ToString(c->response);
      out.push_back(c->outcome);
    }
    return out;
  }

 private:
  struct Call {
    grpc::ClientContext context;
    grpc::ByteBuffer response;
    Outcome outcome;
  };
  grpc::GenericStub stub_;
  std::vector<std::unique_ptr<Call>> calls_;
  std::mutex mu_;
  std::condition_variable cv_;
  int pending_ = 0;
};

// Waits (polling the server's counters) until `done` holds; false after 30 s.
template <typename Done>
bool WaitFor(LossServer& server, Done done,
             std::chrono::seconds timeout = std::chrono::seconds(30)) {
  const Clock::time_point until = Clock::now() + timeout;
  while (!done(server.stats())) {
    if (Clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}
inline bool Idle(const ServerStats& s) { return s.in_flight == 0 && s.queued == 0; }

// A compute pool of one thread, held by a task until Release(): requests
// wait for it for as long as a test needs, whatever the machine's speed.
class HeldPool {
 public:
  HeldPool() {
    pool_.Schedule([this] {
      running_.Notify();
      release_.WaitForNotification();
    });
    running_.WaitForNotification();
  }
  ~HeldPool() { Release(); }
  ThreadPool& pool() { return pool_; }
  void Release() {
    if (!release_.HasBeenNotified()) release_.Notify();
  }

 private:
  absl::Notification running_, release_;
  ThreadPool pool_{1};  // last: joined first, while the notifications live
};

// The loss of a BigCrossEntropy answer, or NaN.
inline float BigCrossEntropyLoss(const std::string& bytes, int64_t numel) {
  v1::EvaluateResponse r;
  if (!r.ParseFromString(bytes) || r.loss().raw_data().size() != 4 ||
      r.grad().raw_data().size() != static_cast<size_t>(numel) * 4) {
    return std::nanf("");
  }
  float loss;
  std::memcpy(&loss, r.loss().raw_data().data(), 4);
  return loss;
}

}  // namespace lossservice::test

#endif  // LOSSSERVICE_TESTS_SERVER_TESTING_H_
