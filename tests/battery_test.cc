// The bad-input battery: every hostile request of tests/hostile_requests.cc
// over a real channel to a loss_server process. Each must get its exact code
// and a message that is not empty, holds what names the field or the limit,
// and is at most 2 KB; after each, the same connection and a new one still
// get PyTorch's answer to a valid request; at the end the server drains and
// exits 0.
#include <signal.h>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "lossservice/v1/loss_service.pb.h"
#include "tests/fault_testing.h"
#include "tests/hostile_requests.h"
#include "tests/server_testing.h"

namespace lossservice::test {
namespace {

constexpr size_t kMaxMessageBytes = 2048;

// The code and message a hostile request got: the call's status for a unary
// method, the in-band Error for a stream item (the stream itself must end
// OK, after the valid item behind it was answered right).
grpc::Status Send(const std::shared_ptr<grpc::Channel>& channel, const HostileRequest& h,
                  const GoldenCall& valid) {
  if (h.method != HostileRequest::Method::kEvaluateStream) {
    std::string response;
    return RawUnary(channel, MethodPath(h.method), ToBuffer(h.bytes), &response);
  }
  std::vector<grpc::ByteBuffer> items;
  items.push_back(ToBuffer(h.bytes));
  items.push_back(ToBuffer(valid.request));
  RawStream stream(channel, MethodPath(h.method), std::move(items));
  std::vector<std::string> responses;
  const grpc::Status status = stream.Await(&responses);
  if (!status.ok()) return status;
  EXPECT_EQ(responses.size(), 2u);
  if (responses.size() != 2) return grpc::Status(grpc::StatusCode::INTERNAL, "responses");
  v1::EvaluateStreamResponse error, answer;
  EXPECT_TRUE(answer.ParseFromString(responses[1]) && answer.has_response());
  EXPECT_EQ(valid.Check(answer.response().SerializeAsString()), "") << "the item after it";
  if (!error.ParseFromString(responses[0]) || !error.has_error()) {
    ADD_FAILURE() << "no in-band Error: " << error.ShortDebugString();
    return grpc::Status::OK;
  }
  return grpc::Status(static_cast<grpc::StatusCode>(error.error().code()), error.error().message());
}

TEST(BatteryTest, EveryHostileRequestGetsItsCodeAndTheServerGoesOn) {
  const std::vector<HostileRequest>& battery = HostileRequests();
  ASSERT_GE(battery.size(), 60u);
  const std::vector<GoldenCall> valid = GoldenCalls(64 << 10);
  ASSERT_GE(valid.size(), 40u);

  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(
      server.Start({absl::StrCat("--max_message_mb=", kHostileMaxMessageMb), "--log_level=info"}));
  const std::shared_ptr<grpc::Channel> channel = Connect(server.address());
  for (size_t i = 0; i < battery.size(); ++i) {
    const HostileRequest& h = battery[i];
    SCOPED_TRACE(absl::StrCat("#", i, " ", h.name));
    const GoldenCall& after = valid[i % valid.size()];
    const grpc::Status got = Send(channel, h, after);
    EXPECT_EQ(got.error_code(), h.code) << got.error_message();
    EXPECT_FALSE(got.error_message().empty());
    EXPECT_LE(got.error_message().size(), kMaxMessageBytes);
    EXPECT_NE(got.error_message().find(h.message), std::string::npos)
        << "message: " << got.error_message() << "\nwanted a part: " << h.message;

    // The server still serves, on this connection and on a new one.
    for (const auto& c : {channel, Connect(server.address())}) {
      std::string response;
      const grpc::Status s = RawUnary(c, after.method, ToBuffer(after.request), &response);
      ASSERT_TRUE(s.ok()) << "after it, " << after.golden->name << ": " << s.error_message();
      EXPECT_EQ(after.Check(response), "") << after.golden->name;
    }
  }
  server.Signal(SIGTERM);
  EXPECT_EQ(server.Wait(), 0) << server.log();
}

// Each category the battery must cover has its rows.
TEST(BatteryTest, CoversEveryKindOfHostileInput) {
  int groups = 0, odd_raw = 0, nan_inf = 0, unknown_enum = 0, overflow = 0, garbage = 0,
      no_data = 0, dtype = 0;
  for (const HostileRequest& h : HostileRequests()) {
    groups += h.name.find("100,000 nested groups") != std::string::npos;
    odd_raw += h.message.find("raw_data has") != std::string::npos;
    nan_inf += h.message.find("got nan") != std::string::npos ||
               h.message.find("inf") != std::string::npos;
    unknown_enum += h.message.find("unknown") != std::string::npos;
    overflow += h.message.find("is too large") != std::string::npos;
    garbage += h.name.find("random bytes") != std::string::npos ||
               h.name.find("cut") != std::string::npos;
    no_data += h.message.find("holds 0 values") != std::string::npos;
    dtype += h.name.find("int64") != std::string::npos || h.name.find("int32") != std::string::npos ||
             h.name.find("float") != std::string::npos;
  }
  EXPECT_GE(groups, 5);
  EXPECT_GE(odd_raw, 5);
  EXPECT_GE(nan_inf, 5);
  EXPECT_GE(unknown_enum, 5);
  EXPECT_GE(overflow, 5);
  EXPECT_GE(garbage, 5);
  EXPECT_GE(no_data, 3);
  EXPECT_GE(dtype, 12);
}

}  // namespace
}  // namespace lossservice::test
