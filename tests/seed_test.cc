// The seed document's examples through a real LossServer on 127.0.0.1:0:
// every number the document prints must come back the same.
#include "client/seed_examples.h"

#include <chrono>
#include <cmath>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "client/client.h"
#include "server/loss_server.h"

namespace lossservice {
namespace {

// The numbers (and shapes) of the document the walk compares:
//   2.1 two shapes; 2.2 x_input 3, softmax 3, sum 1; 2.3 1; 2.4 yhat 15, y 15,
//   loss 1; 2.5 1; 2.6 1; 2.6.1 positive_pred 1, two forms 2; 2.6.2
//   probabilities 4, loss 1, right and wrong 2; 2.6.3 logits 2, loss 1;
//   2.7.2 odds 3, manual softmax 3; 2.7.3 softmax 3; 2.8 log_softmax 3;
//   2.9 log_probs 15, gather mean 1, nll 1, weighted 1, ignore_index 1.
constexpr size_t kPrintedValues = 2 + 7 + 1 + 31 + 1 + 1 + 3 + 7 + 3 + 6 + 3 + 3 + 19;

class SeedTest : public testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<LossServer>(LossServer::Options{.address = "127.0.0.1:0"});
    ASSERT_TRUE(server_->Start().ok());
    ASSERT_GT(server_->port(), 0);
    client_ = std::make_unique<Client>(absl::StrCat("127.0.0.1:", server_->port()),
                                       ClientOptions{.timeout = std::chrono::seconds(5)});
  }

  std::unique_ptr<LossServer> server_;
  std::unique_ptr<Client> client_;
};

const SeedRow* FindRow(const SeedReport& report, const std::string& section,
                       const std::string& what) {
  for (const SeedRow& row : report.rows) {
    if (row.section == section && row.what == what) return &row;
  }
  return nullptr;
}

TEST_F(SeedTest, EveryPrintedValueAgrees) {
  absl::StatusOr<SeedReport> report = RunSeedExamples(*client_);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_GE(report->rows.size(), kPrintedValues);
  for (const SeedRow& row : report->rows) {
    EXPECT_TRUE(row.agrees) << row.section << " / " << row.what << ": document "
                            << row.document << ", service " << row.service;
  }
  EXPECT_EQ(report->num_differ(), 0);
  EXPECT_EQ(report->num_agree(), static_cast<int>(report->rows.size()));
}

TEST_F(SeedTest, SpecificRows) {
  absl::StatusOr<SeedReport> report = RunSeedExamples(*client_);
  ASSERT_TRUE(report.ok()) << report.status();
  struct Expected {
    std::string section, what, service;
  };
  const Expected expected[] = {
      {"2.1 Perceptron", "shape of sigmoid(in_arr)", "(1, 2, 3)"},
      {"2.1 Perceptron", "shape of sigmoid(in_arr).squeeze() (client squeeze)", "(2, 3)"},
      {"2.2 Softmax", "softmax(x_input, dim=1)[0, 0]", "0.3683"},
      {"2.3 MSELoss", "MSELoss()(yhat, y)", "1.0192"},
      {"2.4 MAE Loss - L1Loss", "L1Loss()(yhat, y)", "0.8502"},
      {"2.5 RMSE Loss", "RMSELoss()(yhat, y)", "1.0096"},
      {"2.6 CrossEntropyLoss", "CrossEntropyLoss()(outputs, targets=[1, 0, 3])", "2.6812"},
      {"2.6.2 Binary Cross Entropy Loss - PyTorch",
       "BCELoss()(probabilities, targets=[1, 0, 1, 0])", "0.6741"},
      {"2.6.2 Binary Cross Entropy Loss - PyTorch",
       "wrong: BCELoss()(labels, predictions)", "15.0000"},
      {"2.6.3 BCE with Logits Loss", "logit([.9, .2]) (float64)[1]", "-1.3863"},
      {"2.6.3 BCE with Logits Loss", "BCEWithLogitsLoss()(logits, labels=[1, 0])",
       "0.1643"},
      {"2.8 LogSoftmax", "F.log_softmax / nn.LogSoftmax(logits, dim=-1)[2]", "-2.3979"},
      {"2.9 Negative Loglikelihood Loss", "log_probs[4, 2]", "-0.6737"},
      {"2.9.2 Using PyTorch", "F.nll_loss / nn.NLLLoss()(log_probs, labels)", "1.6553"},
      {"2.9.3 Example of Using Weight", "NLLLoss(weight=[1, 1, 2])", "1.7188"},
      {"2.9.4 Example of Using ignore_index", "NLLLoss(ignore_index=2)", "1.5599"},
  };
  for (const Expected& e : expected) {
    const SeedRow* row = FindRow(*report, e.section, e.what);
    ASSERT_NE(row, nullptr) << "no row " << e.section << " / " << e.what;
    EXPECT_EQ(row->service, e.service) << e.section << " / " << e.what;
    EXPECT_EQ(row->document, e.service) << e.section << " / " << e.what;
  }
}

TEST_F(SeedTest, StoppedServerIsUnavailable) {
  server_->Shutdown(0);
  server_->Wait();
  absl::StatusOr<SeedReport> report = RunSeedExamples(*client_);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), absl::StatusCode::kUnavailable) << report.status();
  EXPECT_NE(report.status().message().find("2.1 Perceptron"), std::string::npos)
      << report.status();
}

TEST(FormatLikeTest, UsesThePrintedDecimals) {
  EXPECT_EQ(FormatLike(1.01923, "1.0192"), "1.0192");
  EXPECT_EQ(FormatLike(15.0, "15.0000"), "15.0000");
  EXPECT_EQ(FormatLike(0.99999994, "1."), "1.");
  EXPECT_EQ(FormatLike(-1.38629436, "-1.3863"), "-1.3863");
  EXPECT_EQ(FormatLike(2.0, "2"), "2");
  EXPECT_EQ(FormatLike(std::nan(""), "0.1"), "nan");
}

TEST(PrintedEqualTest, SignOfZeroIsIgnored) {
  EXPECT_TRUE(PrintedEqual("0.0000", "-0.0000"));
  EXPECT_TRUE(PrintedEqual("-0.0000", "0.0000"));
  EXPECT_TRUE(PrintedEqual("1.0192", "1.0192"));
  EXPECT_FALSE(PrintedEqual("0.0001", "-0.0001"));
  EXPECT_FALSE(PrintedEqual("0.0000", "0.00000"));
  EXPECT_FALSE(PrintedEqual("1.0192", "1.0193"));
}

}  // namespace
}  // namespace lossservice
