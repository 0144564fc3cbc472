// What an operator sees: /metrics, scraped before and after a known set of
// calls, moves by exactly those calls; the access log (text and
// --log_format=json, one object per line) has each call's request id, loss,
// shapes, status and duration and never a tensor value; client mistakes stay
// below the default level; the start-up warning of a server open
// to anyone.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "lossservice/v1/loss_service.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "server/loss_server.h"
#include "server/metrics.h"
#include "tests/server_testing.h"

namespace lossservice {
namespace {

using test::Floats;
using test::Mse;
using test::Scrape;

constexpr char kEvaluate[] = "/lossservice.v1.LossService/Evaluate";
constexpr char kActivate[] = "/lossservice.v1.LossService/Activate";
constexpr char kListLosses[] = "/lossservice.v1.LossService/ListLosses";
constexpr char kEvaluateStream[] = "/lossservice.v1.LossService/EvaluateStream";

// A cross_entropy request whose target has the wrong shape (INVALID_ARGUMENT).
v1::EvaluateRequest BadCrossEntropy() {
  v1::EvaluateRequest q;
  *q.mutable_input() = Floats({2, 3}, {1, 2, 3, 4, 5, 6});
  *q.mutable_target() = test::Int64s({3}, {0, 1, 2});
  q.mutable_cross_entropy();
  return q;
}

v1::ActivateRequest Sigmoid() {
  v1::ActivateRequest q;
  q.set_activation(v1::ACTIVATION_SIGMOID);
  *q.mutable_input() = Floats({2}, {0, 0});
  return q;
}

std::string Series(const std::string& name, const std::string& labels) {
  return absl::StrCat(name, "{", labels, "}");
}

// ---- metrics --------------------------------------------------------------------------------

TEST(MetricsTest, CountersMoveByExactlyTheCallsMade) {
  test::TestServer server({.compute_threads = 1, .metrics_address = "127.0.0.1:0"});
  ASSERT_NE(server.server().metrics_port(), 0);
  const Scrape before(test::HttpGet(server.server().metrics_port(), "/metrics"));

  // 3 good MSE calls, whose request and response bytes are counted.
  size_t mse_in = 0, mse_out = 0;
  for (float x : {3.0f, 5.0f, 7.0f}) {
    const std::string q = Mse(Floats({2}, {x, x}), Floats({2}, {1, 1})).SerializeAsString();
    std::string r;
    ASSERT_TRUE(test::RawUnary(server.channel(), kEvaluate, test::ToBuffer(q), &r).ok());
    mse_in += q.size();
    mse_out += r.size();
  }
  std::string unused;
  EXPECT_EQ(test::RawUnary(server.channel(), kEvaluate, test::ToBuffer(BadCrossEntropy()),
                           &unused)
                .error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // Bytes that do not parse: no loss is known.
  EXPECT_EQ(test::RawUnary(server.channel(), kEvaluate, test::ToBuffer(std::string("\xff\xff")),
                           &unused)
                .error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(
        test::RawUnary(server.channel(), kActivate, test::ToBuffer(Sigmoid()), &unused).ok());
  }
  ASSERT_TRUE(test::RawUnary(server.channel(), kListLosses, test::ToBuffer(""), &unused).ok());
  // A stream of two good requests and a bad one (answered in band).
  std::vector<grpc::ByteBuffer> items;
  for (const v1::EvaluateRequest& q : {Mse(Floats({1}, {3}), Floats({1}, {1})), BadCrossEntropy(),
                                       Mse(Floats({1}, {5}), Floats({1}, {1}))}) {
    items.push_back(test::ToBuffer(q));
  }
  test::RawStream stream(server.channel(), kEvaluateStream, std::move(items));
  std::vector<std::string> responses;
  ASSERT_TRUE(stream.Await(&responses).ok());
  ASSERT_EQ(responses.size(), 3u);
  ASSERT_TRUE(test::WaitFor(server.server(), test::Idle));

  const Scrape after(test::HttpGet(server.server().metrics_port(), "/metrics"));
  const auto delta = [&](const std::string& series) { return after[series] - before[series]; };
  const std::string requests = "lossservice_requests_total";
  const std::map<std::string, double> moved = {
      {Series(requests, R"(rpc="Evaluate",loss="mse",code="OK")"), 3},
      {Series(requests, R"(rpc="Evaluate",loss="cross_entropy",code="INVALID_ARGUMENT")"), 1},
      {Series(requests, R"(rpc="Evaluate",loss="",code="INVALID_ARGUMENT")"), 1},
      {Series(requests, R"(rpc="Activate",loss="sigmoid",code="OK")"), 2},
      {Series(requests, R"(rpc="ListLosses",loss="",code="OK")"), 1},
      {Series(requests, R"(rpc="EvaluateStream",loss="mse",code="OK")"), 2},
      {Series(requests, R"(rpc="EvaluateStream",loss="cross_entropy",code="INVALID_ARGUMENT")"),
       1},
      {Series("lossservice_request_duration_seconds_count", R"(rpc="Evaluate",loss="mse")"), 3},
      {Series("lossservice_request_duration_seconds_bucket", R"(rpc="Evaluate",loss="mse",le="+Inf")"),
       3},
      {Series("lossservice_request_duration_seconds_bucket", R"(rpc="Evaluate",loss="mse",le="60")"),
       3},
      {Series("lossservice_request_duration_seconds_count", R"(rpc="Activate",loss="sigmoid")"),
       2},
      {Series("lossservice_request_bytes_total", R"(rpc="Evaluate",loss="mse")"),
       static_cast<double>(mse_in)},
      {Series("lossservice_response_bytes_total", R"(rpc="Evaluate",loss="mse")"),
       static_cast<double>(mse_out)},
      {Series("grpc_server_handled_total",
              R"(grpc_service="lossservice.v1.LossService",grpc_method="Evaluate",grpc_type="unary",grpc_code="OK")"),
       3},
      {Series("grpc_server_handled_total",
              R"(grpc_service="lossservice.v1.LossService",grpc_method="Evaluate",grpc_type="unary",grpc_code="INVALID_ARGUMENT")"),
       2},
      {Series("grpc_server_handled_total",
              R"(grpc_service="lossservice.v1.LossService",grpc_method="EvaluateStream",grpc_type="bidi_stream",grpc_code="OK")"),
       1},
      // 5 Evaluate + 2 Activate calls and the stream's 3 requests; not ListLosses.
      {"lossservice_admitted_total", 10},
      // All but the bytes that did not parse.
      {"lossservice_computed_total", 9},
      {"lossservice_unparsable_total", 1},
      {"lossservice_refused_total", 0},
      {"lossservice_cancelled_total", 0},
  };
  for (const auto& [series, by] : moved) {
    EXPECT_EQ(delta(series), by) << series;
  }
  const std::string sum =
      Series("lossservice_request_duration_seconds_sum", R"(rpc="Evaluate",loss="mse")");
  EXPECT_GT(delta(sum), 0);
  EXPECT_LT(delta(sum), 30);
  EXPECT_EQ(after["lossservice_in_flight"], 0);
  EXPECT_EQ(after["lossservice_queued"], 0);
  EXPECT_EQ(after["lossservice_compute_threads"], 1);
  EXPECT_EQ(after["lossservice_draining"], 0);
  const BuildInfo& build = BuildInfo::Get();
  EXPECT_EQ(after[Series("lossservice_build_info",
                         absl::StrCat("version=\"", build.version, "\",revision=\"", build.revision,
                                      "\",compiler=\"", build.compiler, "\",grpc=\"", build.grpc,
                                      "\",protobuf=\"", build.protobuf, "\",highway=\"",
                                      build.highway, "\""))],
            1);
  EXPECT_FALSE(build.version.empty());
}

TEST(MetricsTest, QueuedAndRefusedAtTheInFlightLimit) {
  test::HeldPool pool;
  test::TestServer server(
      {.compute_pool = &pool.pool(), .max_inflight = 1, .metrics_address = "127.0.0.1:0"});
  const int port = server.server().metrics_port();
  const Scrape before(test::HttpGet(port, "/metrics"));
  test::Burst first(server.channel());
  first.Start(kEvaluate, test::ToBuffer(Mse(Floats({1}, {3}), Floats({1}, {1}))));
  ASSERT_TRUE(test::WaitFor(server.server(), [](const ServerStats& s) { return s.queued == 1; }));
  std::string unused;
  const grpc::Status refused = test::RawUnary(
      server.channel(), kEvaluate, test::ToBuffer(Mse(Floats({1}, {3}), Floats({1}, {1}))),
      &unused);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  const Scrape during(test::HttpGet(port, "/metrics"));
  EXPECT_EQ(during["lossservice_queued"], 1);
  EXPECT_EQ(during["lossservice_in_flight"], 1);
  EXPECT_EQ(during["lossservice_max_inflight"], 1);
  EXPECT_EQ(during["lossservice_admitted_total"] - before["lossservice_admitted_total"], 1);
  EXPECT_EQ(during["lossservice_refused_total"] - before["lossservice_refused_total"], 1);
  const std::string exhausted =
      Series("lossservice_requests_total", R"(rpc="Evaluate",loss="",code="RESOURCE_EXHAUSTED")");
  EXPECT_EQ(during[exhausted] - before[exhausted], 1);
  pool.Release();
  ASSERT_TRUE(first.Await()[0].status.ok());
  ASSERT_TRUE(test::WaitFor(server.server(), test::Idle));
  const Scrape after(test::HttpGet(port, "/metrics"));
  EXPECT_EQ(after["lossservice_queued"], 0);
  EXPECT_EQ(after["lossservice_computed_total"] - before["lossservice_computed_total"], 1);
  const std::string ok = Series("lossservice_requests_total", R"(rpc="Evaluate",loss="mse",code="OK")");
  EXPECT_EQ(after[ok] - before[ok], 1);
}

// ---- the access log ---------------------------------------------------------------------------

// The lines of `log` that are JSON objects with "logger" "access".
std::vector<nlohmann::json> AccessLines(const std::string& log) {
  std::vector<nlohmann::json> lines;
  for (absl::string_view line : absl::StrSplit(log, '\n', absl::SkipEmpty())) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(j.is_object()) << "not one JSON object: " << line;
    if (j.is_object() && j.value("logger", "") == "access") lines.push_back(j);
  }
  return lines;
}

// Calls made for the access-log tests: a good MSE with a distinctive value,
// a client mistake, an Activate.
void MakeLoggedCalls(const std::string& address) {
  auto channel = test::Connect(address);
  v1::EvaluateRequest good = Mse(Floats({2, 3}, {1234.5f, 2, 3, 4, 5, 6}), Floats({2, 3}, {0, 0, 0, 0, 0, 0}));
  good.set_request_id("req-good-7");
  std::string unused;
  ASSERT_TRUE(test::RawUnary(channel, kEvaluate, test::ToBuffer(good), &unused).ok());
  v1::EvaluateRequest bad = BadCrossEntropy();
  bad.set_request_id("req-bad-8");
  ASSERT_EQ(test::RawUnary(channel, kEvaluate, test::ToBuffer(bad), &unused).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(test::RawUnary(channel, kActivate, test::ToBuffer(Sigmoid()), &unused).ok());
}

TEST(AccessLogTest, JsonOneObjectPerLineWithTheCallsFieldsAndNoValues) {
  test::ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start({"--log_level=debug", "--log_format=json"}));
  ASSERT_NO_FATAL_FAILURE(MakeLoggedCalls(server.address()));
  server.Signal(SIGTERM);
  ASSERT_EQ(server.Wait(), 0) << server.log();
  const std::string log = server.log();
  // No tensor value, in any form.
  EXPECT_EQ(log.find("1234.5"), std::string::npos) << log;
  const std::vector<nlohmann::json> lines = AccessLines(log);
  std::map<std::string, nlohmann::json> by_id;
  int activates = 0;
  for (const nlohmann::json& j : lines) {
    EXPECT_TRUE(j.contains("time")) << j;
    EXPECT_TRUE(j["duration_us"].is_number_integer()) << j;
    if (j.contains("request_id")) by_id[j["request_id"]] = j;
    if (j.value("rpc", "") == "Activate") ++activates;
  }
  ASSERT_EQ(by_id.count("req-good-7"), 1u) << log;
  const nlohmann::json& good = by_id["req-good-7"];
  EXPECT_EQ(good["level"], "debug");
  EXPECT_EQ(good["rpc"], "Evaluate");
  EXPECT_EQ(good["service"], "lossservice.v1.LossService");
  EXPECT_EQ(good["loss"], "mse");
  EXPECT_EQ(good["code"], "OK");
  EXPECT_EQ(good["input"], "FLOAT32[2,3]");
  EXPECT_EQ(good["target"], "FLOAT32[2,3]");
  EXPECT_GT(good["request_bytes"].get<int64_t>(), 0);
  EXPECT_GT(good["response_bytes"].get<int64_t>(), 0);
  EXPECT_TRUE(absl::StartsWith(good.value("peer", ""), "ipv4:127.0.0.1:")) << good;
  EXPECT_FALSE(good.contains("error"));
  ASSERT_EQ(by_id.count("req-bad-8"), 1u) << log;
  const nlohmann::json& bad = by_id["req-bad-8"];
  // A client mistake: at debug, without its message (which may quote values).
  EXPECT_EQ(bad["level"], "debug");
  EXPECT_EQ(bad["code"], "INVALID_ARGUMENT");
  EXPECT_EQ(bad["loss"], "cross_entropy");
  EXPECT_EQ(bad["input"], "FLOAT32[2,3]");
  EXPECT_EQ(bad["target"], "INT64[3]");
  EXPECT_FALSE(bad.contains("error"));
  EXPECT_EQ(activates, 1);
}

TEST(AccessLogTest, TextLinesAndNothingForClientMistakesAtInfo) {
  {
    test::ServerProcess server;
    ASSERT_NO_FATAL_FAILURE(server.Start({"--log_level=debug"}));
    ASSERT_NO_FATAL_FAILURE(MakeLoggedCalls(server.address()));
    server.Signal(SIGTERM);
    ASSERT_EQ(server.Wait(), 0) << server.log();
    const std::string log = server.log();
    EXPECT_EQ(log.find("1234.5"), std::string::npos) << log;
    EXPECT_TRUE(absl::StrContains(
        log, "Evaluate id=req-good-7 loss=mse input=FLOAT32[2,3] target=FLOAT32[2,3] -> OK in "))
        << log;
    EXPECT_TRUE(absl::StrContains(log,
                                  "Evaluate id=req-bad-8 loss=cross_entropy input=FLOAT32[2,3] "
                                  "target=INT64[3] -> INVALID_ARGUMENT in "))
        << log;
  }
  {
    test::ServerProcess server;
    ASSERT_NO_FATAL_FAILURE(server.Start({"--log_level=info"}));
    ASSERT_NO_FATAL_FAILURE(MakeLoggedCalls(server.address()));
    server.Signal(SIGTERM);
    ASSERT_EQ(server.Wait(), 0) << server.log();
    const std::string log = server.log();
    EXPECT_FALSE(absl::StrContains(log, "req-good-7")) << log;
    EXPECT_FALSE(absl::StrContains(log, "req-bad-8")) << log;
    EXPECT_FALSE(absl::StrContains(log, "INVALID_ARGUMENT")) << log;
    EXPECT_TRUE(absl::StrContains(log, "drained in")) << log;
  }
}

TEST(AccessLogTest, EveryLineOfAJsonLogIsOneObjectFromStartToStop) {
  test::ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(
      server.Start({"--log_format=json", "--metrics_address=127.0.0.1:0", "--log_level=info"}));
  server.Signal(SIGTERM);
  ASSERT_EQ(server.Wait(), 0) << server.log();
  int lines = 0;
  std::vector<std::string> messages;
  for (absl::string_view line : absl::StrSplit(server.log(), '\n', absl::SkipEmpty())) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << line;
    EXPECT_EQ(j.value("level", ""), "info") << line;
    EXPECT_TRUE(j.contains("time") && j.contains("msg")) << line;
    messages.push_back(j.value("msg", ""));
    ++lines;
  }
  EXPECT_GE(lines, 5);
  EXPECT_TRUE(absl::StartsWith(messages.front(), "loss_server ")) << messages.front();
  EXPECT_EQ(messages.back(), "stopped");
}

// ---- the binary's start ----------------------------------------------------------------------

// A plaintext server without a token beyond loopback warns once at start;
// on loopback, or with a token, it does not.
TEST(StartupTest, WarnsWhenOpenToAnyoneBeyondLoopback) {
  struct Case {
    std::vector<std::string> flags;
    bool warns;
  };
  const std::string token_file = absl::StrCat(::testing::TempDir(), "startup_token_", getpid());
  ASSERT_EQ(std::system(absl::StrCat("echo t0ken > ", token_file).c_str()), 0);
  const Case cases[] = {
      {{}, false},
      {{"--address=0.0.0.0:0"}, true},
      {{"--address=0.0.0.0:0", "--auth_token_file=" + token_file}, false},
  };
  for (const Case& c : cases) {
    test::ServerProcess server;
    ASSERT_NO_FATAL_FAILURE(server.Start(c.flags, /*host=*/c.flags.empty() ? "127.0.0.1" : "0.0.0.0"));
    server.Signal(SIGTERM);
    ASSERT_EQ(server.Wait(), 0) << server.log();
    EXPECT_EQ(absl::StrContains(server.log(),
                                "serving plaintext without a bearer token on 0.0.0.0:0: anyone who "
                                "can reach this port can call it"),
              c.warns)
        << server.log();
  }
  std::remove(token_file.c_str());
}

}  // namespace
}  // namespace lossservice
