// Flags from the environment (server/flag_env.h), over flags of every kind
// defined here; loss_server's own flags go the same way (flag_env_test.sh).
#include "server/flag_env.h"

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

ABSL_FLAG(int, fe_count, 7, "an int");
ABSL_FLAG(std::string, fe_address, "0.0.0.0:1", "a string");
ABSL_FLAG(bool, fe_verbose, false, "a bool");
ABSL_FLAG(double, fe_ratio, 0.5, "a double");
ABSL_FLAG(int, fe_cli, 1, "given on the command line in CommandLineWins");

namespace lossservice {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kPrefix[] = "FE_TEST_";

// Each test starts and ends with the flags at their defaults and no FE_TEST_
// variable set.
class FlagEnvTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const std::string& name : set_) unsetenv(name.c_str());
    for (const char* name : {"fe_count", "fe_address", "fe_verbose", "fe_ratio", "fe_cli"}) {
      absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
      std::string error;
      ASSERT_TRUE(flag->ParseFrom(flag->DefaultValue(), &error)) << error;
    }
  }
  void Set(const std::string& name, const char* value) {
    setenv(name.c_str(), value, 1);
    set_.push_back(name);
  }

 private:
  std::vector<std::string> set_;
};

TEST(FlagEnvName, PrefixAndUpperCase) {
  EXPECT_EQ(FlagEnvName("LOSS_SERVER_", "max_inflight"), "LOSS_SERVER_MAX_INFLIGHT");
  EXPECT_EQ(FlagEnvName("LOSS_SERVER_", "address"), "LOSS_SERVER_ADDRESS");
  EXPECT_EQ(FlagEnvName("", "tls_client_ca"), "TLS_CLIENT_CA");
}

TEST_F(FlagEnvTest, UnsetVariablesLeaveDefaults) {
  ASSERT_TRUE(SetFlagsFromEnv(kPrefix).ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_fe_count), 7);
  EXPECT_EQ(absl::GetFlag(FLAGS_fe_address), "0.0.0.0:1");
  EXPECT_FALSE(absl::GetFlag(FLAGS_fe_verbose));
  EXPECT_EQ(absl::GetFlag(FLAGS_fe_ratio), 0.5);
}

TEST_F(FlagEnvTest, EveryKindOfFlag) {
  Set("FE_TEST_FE_COUNT", "-12");
  Set("FE_TEST_FE_ADDRESS", "127.0.0.1:0");
  Set("FE_TEST_FE_VERBOSE", "true");
  Set("FE_TEST_FE_RATIO", "0.25");
  ASSERT_TRUE(SetFlagsFromEnv(kPrefix).ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_fe_count), -12);
  EXPECT_EQ(absl::GetFlag(FLAGS_fe_address), "127.0.0.1:0");
  EXPECT_TRUE(absl::GetFlag(FLAGS_fe_verbose));
  EXPECT_EQ(absl::GetFlag(FLAGS_fe_ratio), 0.25);
}

TEST_F(FlagEnvTest, BoolsTakeAbseilsSpellings) {
  Set("FE_TEST_FE_VERBOSE", "1");
  ASSERT_TRUE(SetFlagsFromEnv(kPrefix).ok());
  EXPECT_TRUE(absl::GetFlag(FLAGS_fe_verbose));
  Set("FE_TEST_FE_VERBOSE", "no");
  ASSERT_TRUE(SetFlagsFromEnv(kPrefix).ok());
  EXPECT_FALSE(absl::GetFlag(FLAGS_fe_verbose));
}

TEST_F(FlagEnvTest, EmptyStringIsAValue) {
  Set("FE_TEST_FE_ADDRESS", "");
  ASSERT_TRUE(SetFlagsFromEnv(kPrefix).ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_fe_address), "");
}

TEST_F(FlagEnvTest, OnlyTheGivenPrefix) {
  Set("OTHER_FE_COUNT", "3");
  Set("fe_test_fe_count", "4");
  ASSERT_TRUE(SetFlagsFromEnv(kPrefix).ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_fe_count), 7);
}

TEST_F(FlagEnvTest, BadValueNamesTheVariable) {
  Set("FE_TEST_FE_COUNT", "twelve");
  const absl::Status status = SetFlagsFromEnv(kPrefix);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              HasSubstr("environment variable FE_TEST_FE_COUNT: Illegal value 'twelve' "
                        "specified for flag 'fe_count'"));
  EXPECT_EQ(absl::GetFlag(FLAGS_fe_count), 7);
}

TEST_F(FlagEnvTest, EveryBadValueIsReported) {
  Set("FE_TEST_FE_COUNT", "99999999999");  // over int's range
  Set("FE_TEST_FE_RATIO", "half");
  Set("FE_TEST_FE_VERBOSE", "maybe");
  Set("FE_TEST_FE_ADDRESS", "127.0.0.1:9");
  const absl::Status status = SetFlagsFromEnv(kPrefix);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("FE_TEST_FE_COUNT: Illegal value '99999999999'"));
  EXPECT_THAT(status.message(), HasSubstr("FE_TEST_FE_RATIO: Illegal value 'half'"));
  EXPECT_THAT(status.message(), HasSubstr("FE_TEST_FE_VERBOSE: Illegal value 'maybe'"));
  EXPECT_THAT(status.message(), ::testing::Not(HasSubstr("FE_TEST_FE_ADDRESS")));
  // The good ones are still applied; main exits on the error anyway.
  EXPECT_EQ(absl::GetFlag(FLAGS_fe_address), "127.0.0.1:9");
}

TEST_F(FlagEnvTest, AbseilsOwnFlagsAreNotTakenFromTheEnvironment) {
  // --flagfile, --fromenv, --tryfromenv and --undefok act only while the
  // command line is parsed: they stay off the environment.
  Set("FE_TEST_FLAGFILE", "/nonexistent");
  Set("FE_TEST_FROMENV", "fe_count");
  Set("FE_TEST_UNDEFOK", "x");
  Set("FE_TEST_HELP", "true");  // not a registered flag: help is parsed by name
  ASSERT_TRUE(SetFlagsFromEnv(kPrefix).ok());
  for (const char* name : {"flagfile", "fromenv", "undefok"}) {
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    ASSERT_NE(flag, nullptr) << name;
    EXPECT_EQ(flag->CurrentValue(), "") << name;
  }
  EXPECT_THAT(UnknownFlagEnv(kPrefix), ElementsAre("FE_TEST_FLAGFILE", "FE_TEST_FROMENV",
                                                   "FE_TEST_HELP", "FE_TEST_UNDEFOK"));
}

TEST_F(FlagEnvTest, UnknownVariablesAreListedSorted) {
  Set("FE_TEST_FE_COUNT", "3");
  Set("FE_TEST_SERVICE_PORT", "tcp://10.0.0.1:50051");
  Set("FE_TEST_FE_CONT", "3");
  EXPECT_THAT(UnknownFlagEnv(kPrefix), ElementsAre("FE_TEST_FE_CONT", "FE_TEST_SERVICE_PORT"));
  EXPECT_THAT(UnknownFlagEnv("NO_SUCH_PREFIX_"), ElementsAre());
}

// The order of loss_server's main: the environment, then the command line.
TEST_F(FlagEnvTest, CommandLineWins) {
  Set("FE_TEST_FE_CLI", "5");
  Set("FE_TEST_FE_COUNT", "6");
  ASSERT_TRUE(SetFlagsFromEnv(kPrefix).ok());
  std::string program = "flag_env_test", flag = "--fe_cli=9";
  char* argv[] = {program.data(), flag.data()};
  absl::ParseCommandLine(2, argv);
  EXPECT_EQ(absl::GetFlag(FLAGS_fe_cli), 9);
  EXPECT_EQ(absl::GetFlag(FLAGS_fe_count), 6);
}

}  // namespace
}  // namespace lossservice
