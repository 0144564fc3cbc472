#include "server/flag_env.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace lossservice {
namespace {

// Abseil's own flags (--flagfile, --fromenv, --tryfromenv, --undefok) act
// only while the command line is parsed: a value set beforehand would do
// nothing.
bool IsAbseilFlag(const absl::CommandLineFlag& flag) {
  return absl::StrContains(flag.Filename(), "absl/flags/");
}

// The flags that can be set from the environment, by variable name, in the
// order of their names.
std::vector<std::pair<std::string, absl::CommandLineFlag*>> EnvFlags(absl::string_view prefix) {
  std::vector<std::pair<std::string, absl::CommandLineFlag*>> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (!IsAbseilFlag(*flag)) flags.emplace_back(FlagEnvName(prefix, name), flag);
  }
  std::sort(flags.begin(), flags.end());
  return flags;
}

std::string ProgramName(absl::string_view argv0) {
  return std::string(argv0.substr(argv0.rfind('/') + 1));
}

}  // namespace

std::string FlagEnvName(absl::string_view prefix, absl::string_view flag) {
  return absl::StrCat(prefix, absl::AsciiStrToUpper(flag));
}

absl::Status SetFlagsFromEnv(absl::string_view prefix) {
  std::vector<std::string> errors;
  for (const auto& [variable, flag] : EnvFlags(prefix)) {
    const char* value = std::getenv(variable.c_str());
    if (value == nullptr) continue;
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      errors.push_back(absl::StrCat("environment variable ", variable, ": ", error));
    }
  }
  if (errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(errors, "; "));
}

std::vector<std::string> UnknownFlagEnv(absl::string_view prefix) {
  absl::flat_hash_set<std::string> known;
  for (auto& [variable, flag] : EnvFlags(prefix)) known.insert(std::move(variable));
  std::vector<std::string> unknown;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const absl::string_view assignment(*entry);
    if (!absl::StartsWith(assignment, prefix)) continue;
    std::string variable(assignment.substr(0, assignment.find('=')));
    if (!known.contains(variable)) unknown.push_back(std::move(variable));
  }
  std::sort(unknown.begin(), unknown.end());
  return unknown;
}

void SetFlagsFromEnvOrExit(absl::string_view prefix, const char* argv0) {
  if (absl::Status status = SetFlagsFromEnv(prefix); !status.ok()) {
    std::fprintf(stderr, "%s: %s\n", ProgramName(argv0).c_str(),
                 std::string(status.message()).c_str());
    std::exit(1);
  }
}

}  // namespace lossservice
