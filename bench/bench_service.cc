// bench_service: a closed-loop load generator for lossservice (and for any
// server that implements its contract, such as bench/peer/).
//
//   bench_service --target 127.0.0.1:50051 --connections 2 --concurrency 8
//                 --seconds 3 --repeat 3 [--scenarios health,mse16,...] [--json FILE]
//
// Every scenario's request is serialized once and sent as raw bytes, so the
// client spends its CPU on gRPC, not on protobuf. `--concurrency` calls are
// kept outstanding at all times, spread over `--connections` TCP
// connections; each completion immediately starts the next call. The first
// answer of every run is checked against a value computed here in double
// precision, so a server that answers fast but wrong fails the run.
//
// Rounds run every scenario in turn (health first), so each round measures
// all scenarios side by side; the report gives each scenario's median round
// (and best), and its requests/s as a fraction of the health check's in the
// same round (the floor: the cheapest call the server answers).
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "lossservice/v1/loss_service.pb.h"
#include "nlohmann/json.hpp"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "server address");
ABSL_FLAG(std::string, scenarios, "health,mse16,ce64x10,mse1m,ce4096",
          "comma-separated scenarios: health, mse16, ce64x10, mse1m, ce4096");
ABSL_FLAG(int, connections, 2, "TCP connections (one channel each)");
ABSL_FLAG(int, concurrency, 8, "calls outstanding at all times, over all connections");
ABSL_FLAG(double, seconds, 3, "measured duration of each scenario in each round");
ABSL_FLAG(double, warmup_seconds, 0.5, "unmeasured calls before each measurement");
ABSL_FLAG(int, repeat, 3, "rounds; each runs every scenario once");
ABSL_FLAG(int, client_threads, 1, "threads polling the client's completion queues");
ABSL_FLAG(int64_t, calls, 0,
          "if > 0, each scenario of each round stops after this many calls instead of "
          "--seconds (no warm-up)");
ABSL_FLAG(int, server_pid, 0,
          "the server's process id, when it runs on this machine: also report the server's CPU "
          "time per call (from /proc), which other load on the machine disturbs far less than "
          "throughput");
ABSL_FLAG(std::string, json, "", "also write the results to this file as JSON");
ABSL_FLAG(std::string, label, "", "a name for the server under test, printed and in the JSON");

namespace lossservice::bench {
namespace {

namespace v1 = ::lossservice::v1;
using Clock = std::chrono::steady_clock;

// ---- scenarios -------------------------------------------------------------------------

struct Scenario {
  std::string name;
  std::string description;
  std::string method;
  std::string request;  // serialized
  // Checks one serialized response; returns an error message or "".
  std::function<std::string(const std::string&)> check;
};

// Deterministic values in [-2, 2).
std::vector<float> Values(size_t n, uint64_t seed) {
  std::vector<float> v(n);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (float& f : v) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    f = static_cast<float>((x >> 40) & 0xFFFFFF) / float(1 << 24) * 4.0f - 2.0f;
  }
  return v;
}

void SetRaw(v1::Tensor* t, const void* data, size_t bytes) {
  t->set_raw_data(static_cast<const char*>(data), bytes);
}

std::string CheckClose(const char* what, double got, double want) {
  if (std::abs(got - want) <= 1e-4 * std::abs(want) + 1e-6) return "";
  return absl::StrFormat("%s: got %.9g, want %.9g", what, got, want);
}

// The float32 scalar of a response tensor, in either encoding.
bool Scalar(const v1::Tensor& t, double* out) {
  if (t.float_values_size() == 1) {
    *out = t.float_values(0);
    return true;
  }
  if (t.raw_data().size() == 4) {
    float f;
    std::memcpy(&f, t.raw_data().data(), 4);
    *out = f;
    return true;
  }
  return false;
}

Scenario Health() {
  return {"health", "grpc.health.v1.Health/Check (the floor)", "/grpc.health.v1.Health/Check", "",
          [](const std::string& r) -> std::string {
            // HealthCheckResponse{status: SERVING}.
            return r == std::string("\x08\x01", 2) ? "" : "health: not SERVING";
          }};
}

Scenario Mse(const std::string& name, size_t n, bool raw) {
  const std::vector<float> x = Values(n, 1), y = Values(n, 2);
  double want = 0;
  for (size_t i = 0; i < n; ++i) want += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
  want /= double(n);
  v1::EvaluateRequest q;
  q.mutable_mse();
  for (v1::Tensor* t : {q.mutable_input(), q.mutable_target()}) {
    t->add_shape(static_cast<int64_t>(n));
    t->set_dtype(v1::DATA_TYPE_FLOAT32);
  }
  if (raw) {
    SetRaw(q.mutable_input(), x.data(), n * 4);
    SetRaw(q.mutable_target(), y.data(), n * 4);
  } else {
    q.mutable_input()->mutable_float_values()->Add(x.begin(), x.end());
    q.mutable_target()->mutable_float_values()->Add(y.begin(), y.end());
  }
  return {name, absl::StrCat("mse of ", n, " floats", raw ? " as raw_data" : " as float_values"),
          "/lossservice.v1.LossService/Evaluate", q.SerializeAsString(),
          [want](const std::string& bytes) -> std::string {
            v1::EvaluateResponse r;
            double got;
            if (!r.ParseFromString(bytes) || !Scalar(r.loss(), &got)) return "mse: bad response";
            return CheckClose("mse", got, want);
          }};
}

Scenario CrossEntropy(const std::string& name, int64_t rows, int64_t classes, bool raw, bool grad) {
  const std::vector<float> x = Values(static_cast<size_t>(rows * classes), 3);
  std::vector<int64_t> y(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; ++i) y[i] = (i * 7919) % classes;
  // The loss, and one gradient element, in double precision.
  double want = 0, grad0 = 0;
  for (int64_t i = 0; i < rows; ++i) {
    const float* row = x.data() + i * classes;
    double m = row[0], s = 0;
    for (int64_t c = 0; c < classes; ++c) m = std::max(m, double(row[c]));
    for (int64_t c = 0; c < classes; ++c) s += std::exp(row[c] - m);
    want += m + std::log(s) - row[y[i]];
    if (i == 0) grad0 = (std::exp(row[0] - m) / s - (y[0] == 0 ? 1 : 0)) / double(rows);
  }
  want /= double(rows);
  v1::EvaluateRequest q;
  q.mutable_cross_entropy();
  q.set_compute_grad(grad);
  v1::Tensor* in = q.mutable_input();
  in->add_shape(rows);
  in->add_shape(classes);
  in->set_dtype(v1::DATA_TYPE_FLOAT32);
  v1::Tensor* t = q.mutable_target();
  t->add_shape(rows);
  t->set_dtype(v1::DATA_TYPE_INT64);
  if (raw) {
    SetRaw(in, x.data(), x.size() * 4);
    SetRaw(t, y.data(), y.size() * 8);
  } else {
    in->mutable_float_values()->Add(x.begin(), x.end());
    t->mutable_int64_values()->Add(y.begin(), y.end());
  }
  const size_t numel = x.size();
  return {name,
          absl::StrCat("cross_entropy [", rows, ", ", classes, "]", raw ? " raw" : " typed",
                       grad ? " with its gradient" : ""),
          "/lossservice.v1.LossService/Evaluate", q.SerializeAsString(),
          [want, grad, grad0, numel](const std::string& bytes) -> std::string {
            v1::EvaluateResponse r;
            double got;
            if (!r.ParseFromString(bytes) || !Scalar(r.loss(), &got)) return "ce: bad response";
            std::string e = CheckClose("cross_entropy", got, want);
            if (!e.empty() || !grad) return e;
            const v1::Tensor& g = r.grad();
            float g0;
            if (g.raw_data().size() == numel * 4) {
              std::memcpy(&g0, g.raw_data().data(), 4);
            } else if (static_cast<size_t>(g.float_values_size()) == numel) {
              g0 = g.float_values(0);
            } else {
              return "cross_entropy: gradient missing or of the wrong size";
            }
            return CheckClose("cross_entropy grad[0]", g0, grad0);
          }};
}

Scenario Make(const std::string& name) {
  if (name == "health") return Health();
  if (name == "mse16") return Mse(name, 16, false);
  if (name == "ce64x10") return CrossEntropy(name, 64, 10, false, false);
  if (name == "mse1m") return Mse(name, 1 << 20, true);
  if (name == "ce4096") return CrossEntropy(name, 4096, 1000, true, true);
  return {};
}

// ---- the closed loop ----------------------------------------------------------------------

struct Result {
  int64_t calls = 0;
  int64_t failures = 0;
  std::string first_error;
  double seconds = 0;
  int64_t bytes = 0;  // request + response message bytes of the measured calls
  std::vector<int64_t> latencies_us;
  double server_cpu_s = -1;  // over the measured window, when known
  double client_cpu_s = 0;
};

// CPU seconds (user + system) the process has used, or -1.
double ProcessCpuSeconds(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::vector<std::string> fields = absl::StrSplit(stat.substr(close + 2), ' ');
  if (fields.size() < 13) return -1;
  // Fields 14 and 15 of stat (utime, stime) are 12 and 13 after the name.
  return (std::stod(fields[11]) + std::stod(fields[12])) / double(sysconf(_SC_CLK_TCK));
}

double SelfCpuSeconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// One outstanding call at a time, restarted on completion.
struct Slot {
  grpc::GenericStub* stub = nullptr;
  grpc::CompletionQueue* cq = nullptr;
  std::unique_ptr<grpc::ClientContext> context;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> call;
  grpc::ByteBuffer response;
  grpc::Status status;
  Clock::time_point start;
  std::vector<int64_t> latencies_us;
  int64_t calls = 0, failures = 0, bytes = 0;
  std::string first_error;
};

class Runner {
 public:
  Runner(const std::string& target, int connections, int threads) {
    for (int i = 0; i < connections; ++i) {
      grpc::ChannelArguments args;
      args.SetMaxReceiveMessageSize(-1);
      args.SetMaxSendMessageSize(-1);
      // A connection of its own, not shared with the other channels.
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      channels_.push_back(
          grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
      stubs_.push_back(std::make_unique<grpc::GenericStub>(channels_.back()));
    }
    for (int i = 0; i < threads; ++i) cqs_.push_back(std::make_unique<grpc::CompletionQueue>());
  }
  ~Runner() {
    for (auto& cq : cqs_) {
      cq->Shutdown();
      void* tag;
      bool ok;
      while (cq->Next(&tag, &ok)) {
      }
    }
  }

  bool WaitForConnections(std::chrono::seconds timeout) {
    for (auto& c : channels_) {
      if (!c->WaitForConnected(std::chrono::system_clock::now() + timeout)) return false;
    }
    return true;
  }

  // Runs `s` for `seconds` after `warmup`, or (calls > 0) for `calls` calls.
  Result Run(const Scenario& s, int concurrency, double warmup, double seconds, int64_t calls,
             int server_pid) {
    const grpc::Slice slice(s.request);
    request_ = grpc::ByteBuffer(&slice, 1);
    scenario_ = &s;
    std::vector<Slot> slots(static_cast<size_t>(concurrency));
    for (size_t i = 0; i < slots.size(); ++i) {
      slots[i].stub = stubs_[i % stubs_.size()].get();
      slots[i].cq = cqs_[i % cqs_.size()].get();
    }
    // Warm up, then measure: a slot records only calls that start after
    // measure_from_ and stops starting new ones at stop_at_.
    const Clock::time_point now = Clock::now();
    limited_ = calls > 0;
    calls_left_ = calls;
    if (calls > 0) warmup = 0, seconds = 1e6;
    measure_from_ = now + std::chrono::microseconds(static_cast<int64_t>(warmup * 1e6));
    stop_at_ = measure_from_ + std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6));
    outstanding_ = static_cast<int>(slots.size());
    // CPU use over the measured window (sampled when it starts, in the pollers).
    server_pid_ = server_pid;
    cpu_sampled_.store(false);
    for (Slot& slot : slots) Start(slot);
    std::vector<std::thread> pollers;
    for (auto& cq : cqs_) pollers.emplace_back([this, q = cq.get()] { Poll(q); });
    for (std::thread& t : pollers) t.join();
    const Clock::time_point end = Clock::now();
    Result r;
    r.seconds = calls > 0 ? std::chrono::duration<double>(end - now).count() : seconds;
    if (!cpu_sampled_.load()) SampleCpu();  // the window never began
    if (server_pid > 0 && server_cpu_start_ >= 0) {
      r.server_cpu_s = ProcessCpuSeconds(server_pid) - server_cpu_start_;
    }
    r.client_cpu_s = SelfCpuSeconds() - client_cpu_start_;
    for (Slot& slot : slots) {
      r.calls += slot.calls;
      r.failures += slot.failures;
      r.bytes += slot.bytes;
      if (r.first_error.empty()) r.first_error = slot.first_error;
      r.latencies_us.insert(r.latencies_us.end(), slot.latencies_us.begin(),
                            slot.latencies_us.end());
    }
    std::sort(r.latencies_us.begin(), r.latencies_us.end());
    return r;
  }

 private:
  void SampleCpu() {
    server_cpu_start_ = server_pid_ > 0 ? ProcessCpuSeconds(server_pid_) : -1;
    client_cpu_start_ = SelfCpuSeconds();
    cpu_sampled_.store(true);
  }

  void Start(Slot& slot) {
    if (limited_ && calls_left_.fetch_sub(1) <= 0) {
      --outstanding_;
      return;
    }
    slot.context = std::make_unique<grpc::ClientContext>();
    slot.context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    slot.response.Clear();
    slot.start = Clock::now();
    slot.call =
        slot.stub->PrepareUnaryCall(slot.context.get(), scenario_->method, request_, slot.cq);
    slot.call->StartCall();
    slot.call->Finish(&slot.response, &slot.status, &slot);
  }

  // Runs until every slot of this queue has stopped.
  void Poll(grpc::CompletionQueue* cq) {
    void* tag;
    bool ok;
    while (outstanding_.load() > 0) {
      const auto deadline = std::chrono::system_clock::now() + std::chrono::milliseconds(100);
      const auto got = cq->AsyncNext(&tag, &ok, deadline);
      if (got != grpc::CompletionQueue::GOT_EVENT) continue;
      Slot& slot = *static_cast<Slot*>(tag);
      const Clock::time_point end = Clock::now();
      if (!cpu_sampled_.load() && end >= measure_from_) {
        absl::MutexLock lock(&cpu_mu_);
        if (!cpu_sampled_.load()) SampleCpu();
      }
      const bool measured = slot.start >= measure_from_ && slot.start < stop_at_;
      std::string error;
      if (!slot.status.ok()) {
        error =
            absl::StrCat("status ", slot.status.error_code(), ": ", slot.status.error_message());
      } else if (slot.calls == 0 || !slot.status.ok()) {
        // The first answer of every slot is checked in full.
        std::string bytes;
        std::vector<grpc::Slice> slices;
        if (slot.response.Dump(&slices).ok()) {
          for (const grpc::Slice& sl : slices) {
            bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
          }
        }
        error = scenario_->check(bytes);
      }
      if (!error.empty()) {
        ++slot.failures;
        if (slot.first_error.empty()) slot.first_error = error;
      }
      if (measured) {
        slot.latencies_us.push_back(
            std::chrono::duration_cast<std::chrono::microseconds>(end - slot.start).count());
        slot.bytes += static_cast<int64_t>(request_.Length() + slot.response.Length());
      }
      ++slot.calls;
      if (end < stop_at_ && slot.failures < 10) {
        Start(slot);  // (counts itself out when the calls are used up)
      } else {
        --outstanding_;
      }
    }
  }

  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<grpc::GenericStub>> stubs_;
  std::vector<std::unique_ptr<grpc::CompletionQueue>> cqs_;
  grpc::ByteBuffer request_;
  const Scenario* scenario_ = nullptr;
  Clock::time_point measure_from_, stop_at_;
  std::atomic<int> outstanding_{0};
  bool limited_ = false;
  std::atomic<int64_t> calls_left_{0};
  int server_pid_ = 0;
  absl::Mutex cpu_mu_;
  std::atomic<bool> cpu_sampled_{false};
  double server_cpu_start_ = -1, client_cpu_start_ = 0;
};

int64_t Percentile(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t i = std::min(sorted.size() - 1, static_cast<size_t>(p * double(sorted.size())));
  return sorted[i];
}

struct Summary {
  double rps = 0, gbps = 0, ratio = 0;
  int64_t p50 = 0, p99 = 0, p999 = 0;
  double server_us = -1, client_us = 0;  // CPU per call
};

int Main() {
  std::vector<Scenario> scenarios;
  for (absl::string_view name : absl::StrSplit(absl::GetFlag(FLAGS_scenarios), ',')) {
    Scenario s = Make(std::string(name));
    if (s.name.empty()) {
      std::fprintf(stderr, "unknown scenario %s\n", std::string(name).c_str());
      return 2;
    }
    scenarios.push_back(std::move(s));
  }
  const bool has_floor = !scenarios.empty() && scenarios[0].name == "health";
  Runner runner(absl::GetFlag(FLAGS_target), absl::GetFlag(FLAGS_connections),
                absl::GetFlag(FLAGS_client_threads));
  if (!runner.WaitForConnections(std::chrono::seconds(10))) {
    std::fprintf(stderr, "cannot connect to %s\n", absl::GetFlag(FLAGS_target).c_str());
    return 1;
  }
  const int rounds = std::max(1, absl::GetFlag(FLAGS_repeat));
  // rounds x scenarios
  std::vector<std::vector<Summary>> table(scenarios.size());
  bool failed = false;
  const std::string label = absl::GetFlag(FLAGS_label);
  std::printf(
      "# bench_service %s%s: %d connections, %d calls outstanding, %.1f s per scenario, "
      "%d rounds\n",
      absl::GetFlag(FLAGS_target).c_str(), label.empty() ? "" : (" (" + label + ")").c_str(),
      absl::GetFlag(FLAGS_connections), absl::GetFlag(FLAGS_concurrency),
      absl::GetFlag(FLAGS_seconds), rounds);
  for (int round = 0; round < rounds; ++round) {
    double floor_rps = 0;
    for (size_t i = 0; i < scenarios.size(); ++i) {
      const Result r = runner.Run(scenarios[i], absl::GetFlag(FLAGS_concurrency),
                                  absl::GetFlag(FLAGS_warmup_seconds), absl::GetFlag(FLAGS_seconds),
                                  absl::GetFlag(FLAGS_calls), absl::GetFlag(FLAGS_server_pid));
      if (r.failures > 0) {
        std::fprintf(stderr, "%s: %lld failed calls; first: %s\n", scenarios[i].name.c_str(),
                     static_cast<long long>(r.failures), r.first_error.c_str());
        failed = true;
      }
      Summary s;
      s.rps = double(r.latencies_us.size()) / r.seconds;
      s.gbps = double(r.bytes) / r.seconds / 1e9;
      s.p50 = Percentile(r.latencies_us, 0.50);
      s.p99 = Percentile(r.latencies_us, 0.99);
      s.p999 = Percentile(r.latencies_us, 0.999);
      const double n = std::max<double>(1, double(r.latencies_us.size()));
      if (r.server_cpu_s >= 0) s.server_us = r.server_cpu_s / n * 1e6;
      s.client_us = r.client_cpu_s / n * 1e6;
      if (i == 0 && has_floor) floor_rps = s.rps;
      s.ratio = floor_rps > 0 ? s.rps / floor_rps : 0;
      table[i].push_back(s);
    }
  }
  // Each scenario's median round by requests/s, and its best.
  std::printf("%-9s %11s %11s %9s %9s %9s %8s %8s %10s %10s  %s\n", "scenario", "req/s",
              "best req/s", "p50 us", "p99 us", "p999 us", "GB/s", "/floor", "srv us/req",
              "cli us/req", "what");
  nlohmann::json out = {{"target", absl::GetFlag(FLAGS_target)},
                        {"label", label},
                        {"connections", absl::GetFlag(FLAGS_connections)},
                        {"concurrency", absl::GetFlag(FLAGS_concurrency)},
                        {"seconds", absl::GetFlag(FLAGS_seconds)},
                        {"rounds", rounds},
                        {"scenarios", nlohmann::json::object()}};
  for (size_t i = 0; i < scenarios.size(); ++i) {
    std::vector<Summary> runs = table[i];
    std::sort(runs.begin(), runs.end(),
              [](const Summary& a, const Summary& b) { return a.rps < b.rps; });
    const Summary& med = runs[runs.size() / 2];
    const Summary& best = runs.back();
    std::vector<double> ratios;
    for (const Summary& s : table[i]) ratios.push_back(s.ratio);
    std::sort(ratios.begin(), ratios.end());
    const double ratio = ratios[ratios.size() / 2];
    // Server CPU per call: the median over the rounds.
    std::vector<double> cpu;
    for (const Summary& s : table[i]) cpu.push_back(s.server_us);
    std::sort(cpu.begin(), cpu.end());
    const double server_us = cpu[cpu.size() / 2];
    std::printf("%-9s %11.0f %11.0f %9lld %9lld %9lld %8.3f %8s %10s %10.1f  %s\n",
                scenarios[i].name.c_str(), med.rps, best.rps, static_cast<long long>(med.p50),
                static_cast<long long>(med.p99), static_cast<long long>(med.p999), med.gbps,
                has_floor ? absl::StrFormat("%.3f", ratio).c_str() : "-",
                server_us >= 0 ? absl::StrFormat("%.1f", server_us).c_str() : "-", med.client_us,
                scenarios[i].description.c_str());
    nlohmann::json rounds_json = nlohmann::json::array();
    for (const Summary& s : table[i]) {
      rounds_json.push_back({{"rps", s.rps},
                             {"gbps", s.gbps},
                             {"p50_us", s.p50},
                             {"p99_us", s.p99},
                             {"p999_us", s.p999},
                             {"ratio_to_floor", s.ratio},
                             {"server_cpu_us_per_call", s.server_us},
                             {"client_cpu_us_per_call", s.client_us}});
    }
    out["scenarios"][scenarios[i].name] = {{"description", scenarios[i].description},
                                           {"median_rps", med.rps},
                                           {"best_rps", best.rps},
                                           {"p50_us", med.p50},
                                           {"p99_us", med.p99},
                                           {"p999_us", med.p999},
                                           {"gbps", med.gbps},
                                           {"ratio_to_floor", has_floor ? ratio : 0.0},
                                           {"server_cpu_us_per_call", server_us},
                                           {"rounds", rounds_json}};
  }
  if (const std::string path = absl::GetFlag(FLAGS_json); !path.empty()) {
    std::ofstream(path) << out.dump(2) << "\n";
  }
  return failed ? 1 : 0;
}

}  // namespace
}  // namespace lossservice::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Closed-loop load generator for lossservice: bench_service --target HOST:PORT");
  absl::ParseCommandLine(argc, argv);
  return lossservice::bench::Main();
}
