// lossservice::Client against loss_server processes started with TLS
// (--tls_cert, --tls_key), mutual TLS (--tls_client_ca) and a bearer token
// (--auth_token_file): what connects, what is refused and with which code.
// Certificates from tests/make_test_certs.sh (openssl).
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "tests/server_testing.h"

#ifndef LOSS_TESTS_DIR
#error "LOSS_TESTS_DIR must be defined (the absolute path of tests/)"
#endif

namespace lossservice {
namespace {

using std::chrono::milliseconds;
using test::ServerProcess;

constexpr char kToken[] = "s3cret-token";

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// mse([0.5, 1.5], [1, 1]) = (0.25 + 0.25) / 2, exact in float32.
const std::vector<float> kInput = {0.5f, 1.5f}, kTarget = {1.0f, 1.0f};
constexpr double kLoss = 0.25;

absl::StatusOr<LossResult> Call(const std::string& address, ClientOptions options,
                                const std::string& request_id = "") {
  options.timeout = milliseconds(20000);
  Client client(address, options);
  return client.MseLoss(View(kInput), View(kTarget), {.request_id = request_id});
}

// Three servers for the whole suite: TLS, mutual TLS, and plaintext with a
// token (written with whitespace around it, which the server ignores).
class ClientSecurityTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::filesystem::path(std::filesystem::temp_directory_path() /
                                     absl::StrCat("lossservice_client_security_", getpid()));
    const std::string command = absl::StrCat(LOSS_TESTS_DIR, "/make_test_certs.sh ", dir_->string());
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
    std::ofstream(*dir_ / "token") << "  " << kToken << "\n\t\n";
    const std::string tls_cert = "--tls_cert=" + (*dir_ / "server.pem").string();
    const std::string tls_key = "--tls_key=" + (*dir_ / "server.key").string();
    tls_ = new ServerProcess;
    tls_->Start({tls_cert, tls_key});
    mtls_ = new ServerProcess;
    mtls_->Start({tls_cert, tls_key, "--tls_client_ca=" + (*dir_ / "ca.pem").string()});
    token_ = new ServerProcess;
    token_->Start({"--auth_token_file=" + (*dir_ / "token").string()});
  }
  static void TearDownTestSuite() {
    delete tls_;
    delete mtls_;
    delete token_;
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }
  void SetUp() override {
    // Each Start asserts; a server that did not start fails every test.
    ASSERT_GT(tls_->port(), 0) << tls_->log();
    ASSERT_GT(mtls_->port(), 0) << mtls_->log();
    ASSERT_GT(token_->port(), 0) << token_->log();
  }

  static std::string Pem(const char* name) { return ReadFile(*dir_ / name); }
  // TLS verifying the server with the test CA.
  static ClientOptions Tls() { return {.tls = true, .root_certificates = Pem("ca.pem")}; }
  // Refusals are not retried: the code comes back at once.
  static ClientOptions NoRetry(ClientOptions options) {
    options.retry_unavailable = false;
    return options;
  }

  static std::filesystem::path* dir_;
  static ServerProcess* tls_;
  static ServerProcess* mtls_;
  static ServerProcess* token_;
};

std::filesystem::path* ClientSecurityTest::dir_ = nullptr;
ServerProcess* ClientSecurityTest::tls_ = nullptr;
ServerProcess* ClientSecurityTest::mtls_ = nullptr;
ServerProcess* ClientSecurityTest::token_ = nullptr;

// --- --tls_cert, --tls_key ---------------------------------------------------

TEST_F(ClientSecurityTest, TlsWithTheTestCaAsRoots) {
  absl::StatusOr<LossResult> r = Call(tls_->address(), Tls());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->loss.dtype, DType::kFloat32);
  EXPECT_EQ(r->item(), kLoss);
  // The name the certificate carries, given explicitly.
  ClientOptions named = Tls();
  named.tls_server_name = "localhost";
  r = Call(tls_->address(), named);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->item(), kLoss);
  EXPECT_EQ(Client(tls_->address(), Tls()).Health().value_or("error"), "SERVING");
}

TEST_F(ClientSecurityTest, TlsWithTheDefaultRootsIsUnavailable) {
  // The test CA is not among gRPC's default roots (nor the system's).
  absl::StatusOr<LossResult> r = Call(tls_->address(), NoRetry({.tls = true}));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
}

TEST_F(ClientSecurityTest, TlsWithAnotherServerNameIsUnavailable) {
  ClientOptions options = NoRetry(Tls());
  options.tls_server_name = "other.example";
  absl::StatusOr<LossResult> r = Call(tls_->address(), options);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
}

TEST_F(ClientSecurityTest, PlaintextToATlsServerIsUnavailable) {
  absl::StatusOr<LossResult> r = Call(tls_->address(), NoRetry({}));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
}

// --- --tls_client_ca: client certificates required and verified ------------

TEST_F(ClientSecurityTest, MutualTlsWithTheClientsCertificate) {
  ClientOptions options = Tls();
  options.private_key = Pem("client.key");
  options.certificate_chain = Pem("client.pem");
  absl::StatusOr<LossResult> r = Call(mtls_->address(), options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->item(), kLoss);
}

TEST_F(ClientSecurityTest, MutualTlsWithoutAClientCertificateIsUnavailable) {
  absl::StatusOr<LossResult> r = Call(mtls_->address(), NoRetry(Tls()));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
}

TEST_F(ClientSecurityTest, MutualTlsWithAnotherCasCertificateIsUnavailable) {
  ClientOptions options = NoRetry(Tls());
  options.private_key = Pem("other_client.key");
  options.certificate_chain = Pem("other_client.pem");
  absl::StatusOr<LossResult> r = Call(mtls_->address(), options);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
}

// --- --auth_token_file ---------------------------------------------------------

TEST_F(ClientSecurityTest, TheRightTokenIsAccepted) {
  absl::StatusOr<LossResult> r = Call(token_->address(), {.token = kToken}, "token-ok");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->item(), kLoss);
  EXPECT_EQ(r->request_id, "token-ok");
  Client client(token_->address(), {.token = kToken});
  absl::StatusOr<v1::ListLossesResponse> listed = client.ListLosses();
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(listed->losses_size(), static_cast<int>(AllLosses().size()));
}

TEST_F(ClientSecurityTest, AMissingTokenIsUnauthenticatedWithTheRequestId) {
  absl::StatusOr<LossResult> r = Call(token_->address(), {}, "no-token-1");
  ASSERT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "bearer token")) << r.status();
  EXPECT_EQ(RequestIdOf(r.status()), "no-token-1");
  // A request id the client made up is reported too.
  r = Call(token_->address(), {});
  ASSERT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated) << r.status();
  EXPECT_EQ(RequestIdOf(r.status()).size(), 16u);
}

TEST_F(ClientSecurityTest, AWrongTokenIsUnauthenticatedWithTheRequestId) {
  // Whitespace is stripped from the file, not from what a client sends.
  for (const std::string token : {"wrong", "s3cret-tokenx", " s3cret-token"}) {
    absl::StatusOr<LossResult> r = Call(token_->address(), {.token = token}, "bad-token-1");
    ASSERT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated) << token << ": " << r.status();
    EXPECT_TRUE(absl::StrContains(r.status().message(), "bearer token")) << r.status();
    EXPECT_EQ(RequestIdOf(r.status()), "bad-token-1");
  }
}

TEST_F(ClientSecurityTest, EveryLossServiceRpcNeedsTheToken) {
  Client client(token_->address(), {.timeout = milliseconds(20000)});
  EXPECT_EQ(client.ListLosses().status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(client.Sigmoid(View(kInput)).status().code(), absl::StatusCode::kUnauthenticated);
  const LossRequest request{.input = View(kInput),
                            .target = View(kTarget),
                            .reduction = Reduction::kMean,
                            .compute_grad = false,
                            .grad_output = std::nullopt,
                            .options = MseOptions{}};
  std::vector<LossRequest> requests = {request};
  EXPECT_EQ(client.EvaluateMany(requests).status().code(), absl::StatusCode::kUnauthenticated);
  // With it, the stream answers.
  Client with_token(token_->address(), {.timeout = milliseconds(20000), .token = kToken});
  absl::StatusOr<std::vector<absl::StatusOr<LossResult>>> answers =
      with_token.EvaluateMany(requests);
  ASSERT_TRUE(answers.ok()) << answers.status();
  ASSERT_EQ(answers->size(), 1u);
  ASSERT_TRUE((*answers)[0].ok()) << (*answers)[0].status();
  EXPECT_EQ((*answers)[0]->item(), kLoss);
}

TEST_F(ClientSecurityTest, HealthNeedsNoToken) {
  Client client(token_->address());
  EXPECT_EQ(client.Health().value_or("error"), "SERVING");
  EXPECT_EQ(client.Health("lossservice.v1.LossService").value_or("error"), "SERVING");
}

}  // namespace
}  // namespace lossservice
