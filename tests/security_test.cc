// TLS, mutual TLS and bearer tokens against a real LossServer, with
// certificates made by openssl when the suite starts (make_test_certs.sh: a
// CA, the server, a good client, and a client of another CA). Each outcome
// is checked exactly: the handshakes that must fail fail (UNAVAILABLE, and
// the server saw no call), every RPC but health answers UNAUTHENTICATED
// without the right token (streams and reflection included), health answers
// without one.
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "lossservice/v1/loss_service.grpc.pb.h"
#include "server/call_gate.h"
#include "server/loss_server.h"
#include "tests/server_testing.h"

#ifndef LOSS_TESTS_DIR
#error "LOSS_TESTS_DIR must be defined (the absolute path of tests/)"
#endif

namespace lossservice {
namespace {

using test::Floats;
using test::Mse;

constexpr char kEvaluate[] = "/lossservice.v1.LossService/Evaluate";

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class SecurityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::filesystem::path(std::filesystem::path(::testing::TempDir()) /
                                     absl::StrCat("security_test_", getpid()));
    const std::string command =
        absl::StrCat(LOSS_TESTS_DIR, "/make_test_certs.sh ", dir_->string());
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
    // The token file as an operator writes it: `echo`, with its newline
    // (and spaces around, which must not count).
    const std::string echo =
        absl::StrCat("echo '  ", kToken, "  ' > ", (*dir_ / "token").string());
    ASSERT_EQ(std::system(echo.c_str()), 0) << echo;
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }
  static std::string Path(const char* name) { return (*dir_ / name).string(); }
  static std::string Pem(const char* name) { return ReadFile(*dir_ / name); }

  static std::unique_ptr<LossServer> Serve(LossServer::Options options) {
    options.address = "127.0.0.1:0";
    auto server = std::make_unique<LossServer>(std::move(options));
    const absl::Status s = server->Start();
    EXPECT_TRUE(s.ok()) << s;
    return server;
  }
  static std::shared_ptr<grpc::ChannelCredentials> Tls(const char* roots,
                                                       const char* client = nullptr) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = Pem(roots);
    if (client != nullptr) {
      ssl.pem_private_key = Pem(absl::StrCat(client, ".key").c_str());
      ssl.pem_cert_chain = Pem(absl::StrCat(client, ".pem").c_str());
    }
    return grpc::SslCredentials(ssl);
  }
  // An Evaluate of MSE([3], [1]) on a new connection: its status, and the
  // loss (4) checked when OK.
  static grpc::Status Evaluate(const LossServer& server,
                               std::shared_ptr<grpc::ChannelCredentials> credentials,
                               const std::string& authorization = "") {
    auto channel = test::Connect(absl::StrCat("127.0.0.1:", server.port()),
                                 std::move(credentials), authorization);
    std::string bytes;
    const grpc::Status s = test::RawUnary(
        channel, kEvaluate, test::ToBuffer(Mse(Floats({1}, {3}), Floats({1}, {1}))), &bytes,
        std::chrono::milliseconds(10000));
    if (s.ok()) {
      v1::EvaluateResponse r;
      EXPECT_TRUE(r.ParseFromString(bytes));
      EXPECT_EQ(r.loss().float_values_size(), 1);
      if (r.loss().float_values_size() == 1) {
        EXPECT_EQ(r.loss().float_values(0), 4.0f);
      }
    }
    return s;
  }

  static constexpr char kToken[] = "s3cret-Token_0123456789";
  static std::filesystem::path* dir_;
};

std::filesystem::path* SecurityTest::dir_ = nullptr;

TEST_F(SecurityTest, TlsServesClientsThatTrustItsAuthorityOnly) {
  std::unique_ptr<LossServer> server =
      Serve({.tls_cert = Path("server.pem"), .tls_key = Path("server.key")});
  grpc::Status s = Evaluate(*server, Tls("ca.pem"));
  EXPECT_TRUE(s.ok()) << s.error_message();
  // A plaintext client: the handshake fails.
  s = Evaluate(*server, grpc::InsecureChannelCredentials());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  // A client that trusts another authority: the server's certificate does
  // not verify.
  s = Evaluate(*server, Tls("other_ca.pem"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_EQ(server->stats().admitted, 1);
}

TEST_F(SecurityTest, MutualTlsNeedsAClientCertificateOfItsAuthority) {
  std::unique_ptr<LossServer> server = Serve({.tls_cert = Path("server.pem"),
                                              .tls_key = Path("server.key"),
                                              .tls_client_ca = Path("ca.pem")});
  grpc::Status s = Evaluate(*server, Tls("ca.pem", "client"));
  EXPECT_TRUE(s.ok()) << s.error_message();
  // No client certificate.
  s = Evaluate(*server, Tls("ca.pem"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  // A client certificate another authority signed.
  s = Evaluate(*server, Tls("ca.pem", "other_client"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  // Plaintext.
  s = Evaluate(*server, grpc::InsecureChannelCredentials());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_EQ(server->stats().admitted, 1);
}

TEST_F(SecurityTest, OnlyTheExactTokenGetsIn) {
  std::unique_ptr<LossServer> server = Serve({.auth_token_file = Path("token")});
  const std::string token = kToken;
  const std::string missing =
      "this server requires a bearer token: send the metadata \"authorization: Bearer <token>\"";
  const std::string invalid = "the bearer token is not valid";
  struct Case {
    std::string authorization;
    grpc::StatusCode code;
    std::string message;
  };
  const Case cases[] = {
      {"", grpc::StatusCode::UNAUTHENTICATED, missing},
      {"Bearer wrong", grpc::StatusCode::UNAUTHENTICATED, invalid},
      {"Bearer " + token.substr(0, token.size() - 1), grpc::StatusCode::UNAUTHENTICATED, invalid},
      {"Bearer " + token + "9", grpc::StatusCode::UNAUTHENTICATED, invalid},
      {"Bearer " + token.substr(1), grpc::StatusCode::UNAUTHENTICATED, invalid},
      {"Bearer  " + token, grpc::StatusCode::UNAUTHENTICATED, invalid},
      {"Bearer", grpc::StatusCode::UNAUTHENTICATED, invalid},
      {"Basic " + token, grpc::StatusCode::UNAUTHENTICATED, invalid},
      {token, grpc::StatusCode::UNAUTHENTICATED, invalid},
      {"Bearer " + token, grpc::StatusCode::OK, ""},
      {"bearer " + token, grpc::StatusCode::OK, ""},  // the scheme's case does not matter
  };
  int admitted = 0;
  for (const Case& c : cases) {
    const grpc::Status s = Evaluate(*server, grpc::InsecureChannelCredentials(), c.authorization);
    EXPECT_EQ(s.error_code(), c.code) << "'" << c.authorization << "': " << s.error_message();
    EXPECT_EQ(s.error_message(), c.message) << "'" << c.authorization << "'";
    if (c.code == grpc::StatusCode::OK) ++admitted;
  }
  // Refused before admission: nothing was read or computed for them.
  EXPECT_EQ(server->stats().admitted, admitted);
  EXPECT_EQ(server->stats().computed, admitted);
}

// One call of each RPC the server has, on `channel`: its status code by name.
std::map<std::string, grpc::StatusCode> CallEveryRpc(const std::shared_ptr<grpc::Channel>& channel) {
  std::map<std::string, grpc::StatusCode> codes;
  const auto unary = [&](const std::string& method, const std::string& request) {
    codes[method] = test::RawUnary(channel, method, test::ToBuffer(request), nullptr).error_code();
  };
  const auto stream = [&](const std::string& method, const std::string& request) {
    test::RawStream call(channel, method, {test::ToBuffer(request)});
    std::vector<std::string> responses;
    codes[method] = call.Await(&responses).error_code();
  };
  const std::string mse = Mse(Floats({1}, {3}), Floats({1}, {1})).SerializeAsString();
  v1::ActivateRequest activate;
  activate.set_activation(v1::ACTIVATION_SIGMOID);
  *activate.mutable_input() = Floats({1}, {0});
  unary("/lossservice.v1.LossService/Evaluate", mse);
  unary("/lossservice.v1.LossService/Activate", activate.SerializeAsString());
  unary("/lossservice.v1.LossService/ListLosses", "");
  stream("/lossservice.v1.LossService/EvaluateStream", mse);
  // ServerReflectionRequest{list_services: ""}.
  stream("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", std::string("\x3a\x00", 2));
  stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
         std::string("\x3a\x00", 2));
  unary("/lossservice.v1.LossService/NoSuchMethod", "");
  unary("/grpc.health.v1.Health/Check", "");
  // Watch: the first answer, then cancelled by the client.
  {
    auto stub = grpc::health::v1::Health::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto reader = stub->Watch(&context, grpc::health::v1::HealthCheckRequest());
    grpc::health::v1::HealthCheckResponse r;
    const bool read = reader->Read(&r);
    context.TryCancel();
    const grpc::Status s = reader->Finish();
    codes["/grpc.health.v1.Health/Watch"] =
        read && r.status() == grpc::health::v1::HealthCheckResponse::SERVING
            ? grpc::StatusCode::OK
            : s.error_code();
  }
  return codes;
}

TEST_F(SecurityTest, EveryRpcButHealthNeedsTheToken) {
  std::unique_ptr<LossServer> server = Serve({.auth_token_file = Path("token")});
  const std::string address = absl::StrCat("127.0.0.1:", server->port());
  const auto without = CallEveryRpc(test::Connect(address));
  const auto with = CallEveryRpc(
      test::Connect(address, grpc::InsecureChannelCredentials(), absl::StrCat("Bearer ", kToken)));
  const std::map<std::string, std::pair<grpc::StatusCode, grpc::StatusCode>> expected = {
      // method: {without the token, with it}
      {"/lossservice.v1.LossService/Evaluate", {grpc::StatusCode::UNAUTHENTICATED, grpc::StatusCode::OK}},
      {"/lossservice.v1.LossService/Activate", {grpc::StatusCode::UNAUTHENTICATED, grpc::StatusCode::OK}},
      {"/lossservice.v1.LossService/ListLosses",
       {grpc::StatusCode::UNAUTHENTICATED, grpc::StatusCode::OK}},
      {"/lossservice.v1.LossService/EvaluateStream",
       {grpc::StatusCode::UNAUTHENTICATED, grpc::StatusCode::OK}},
      {"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
       {grpc::StatusCode::UNAUTHENTICATED, grpc::StatusCode::OK}},
      {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
       {grpc::StatusCode::UNAUTHENTICATED, grpc::StatusCode::OK}},
      {"/lossservice.v1.LossService/NoSuchMethod",
       {grpc::StatusCode::UNAUTHENTICATED, grpc::StatusCode::UNIMPLEMENTED}},
      {"/grpc.health.v1.Health/Check", {grpc::StatusCode::OK, grpc::StatusCode::OK}},
      {"/grpc.health.v1.Health/Watch", {grpc::StatusCode::OK, grpc::StatusCode::OK}},
  };
  ASSERT_EQ(without.size(), expected.size());
  for (const auto& [method, codes] : expected) {
    EXPECT_EQ(without.at(method), codes.first) << method << " without the token";
    EXPECT_EQ(with.at(method), codes.second) << method << " with the token";
  }
}

TEST_F(SecurityTest, TlsAndATokenTogether) {
  std::unique_ptr<LossServer> server = Serve({.tls_cert = Path("server.pem"),
                                              .tls_key = Path("server.key"),
                                              .tls_client_ca = Path("ca.pem"),
                                              .auth_token_file = Path("token")});
  grpc::Status s = Evaluate(*server, Tls("ca.pem", "client"), absl::StrCat("Bearer ", kToken));
  EXPECT_TRUE(s.ok()) << s.error_message();
  s = Evaluate(*server, Tls("ca.pem", "client"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
  s = Evaluate(*server, Tls("ca.pem"), absl::StrCat("Bearer ", kToken));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
}

TEST_F(SecurityTest, BadSecurityOptionsAreRefusedAtStart) {
  std::ofstream(Path("blank")) << " \n\t\n";
  std::ofstream(Path("spaced")) << "two words\n";
  struct Bad {
    LossServer::Options options;
    std::string message;
  };
  const Bad bad[] = {
      {{.tls_cert = Path("server.pem")},
       "--tls_cert and --tls_key go together: give both or neither"},
      {{.tls_key = Path("server.key")},
       "--tls_cert and --tls_key go together: give both or neither"},
      {{.tls_client_ca = Path("ca.pem")},
       "--tls_client_ca (mutual TLS) needs --tls_cert and --tls_key"},
      {{.tls_cert = Path("server.key"), .tls_key = Path("server.key")},
       absl::StrCat("--tls_cert ", Path("server.key"), " holds no PEM CERTIFICATE")},
      {{.tls_cert = Path("server.pem"), .tls_key = Path("server.pem")},
       absl::StrCat("--tls_key ", Path("server.pem"), " holds no PEM PRIVATE KEY")},
      {{.tls_cert = Path("server.pem"), .tls_key = Path("no-such-file")},
       absl::StrCat("cannot read --tls_key ", Path("no-such-file"),
                    ": No such file or directory")},
      {{.auth_token_file = Path("blank")},
       absl::StrCat("--auth_token_file ", Path("blank"), " holds no token")},
      {{.auth_token_file = Path("spaced")},
       absl::StrCat("--auth_token_file ", Path("spaced"),
                    ": the token must be printable ASCII without spaces (it travels in a "
                    "header)")},
  };
  for (const Bad& b : bad) {
    LossServer::Options options = b.options;
    options.address = "127.0.0.1:0";
    LossServer server(options);
    const absl::Status s = server.Start();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_EQ(s.message(), b.message);
  }
}

TEST(ConstantTimeEqualsTest, EqualOnlyWhenEveryByteAndTheLengthAgree) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abd", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("xbc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("ab", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abca", "abc"));  // the expected token, cycled, would match
  EXPECT_FALSE(ConstantTimeEquals("abcabc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("a", ""));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_FALSE(ConstantTimeEquals(absl::string_view("ab\0", 3), "ab"));
}

}  // namespace
}  // namespace lossservice
