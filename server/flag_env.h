// Flags from the environment: every flag of a binary can also be set by an
// environment variable PREFIX<FLAG> (the flag's name in upper case), the way
// containers and Kubernetes pods are usually configured. The command line
// wins over the environment.
#ifndef LOSSSERVICE_SERVER_FLAG_ENV_H_
#define LOSSSERVICE_SERVER_FLAG_ENV_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace lossservice {

/// The environment variable of a flag: prefix + the name in upper case,
/// e.g. ("LOSS_SERVER_", "max_inflight") -> "LOSS_SERVER_MAX_INFLIGHT".
std::string FlagEnvName(absl::string_view prefix, absl::string_view flag);

/// For every flag in Abseil's registry except Abseil's own (--flagfile,
/// --fromenv, --tryfromenv, --undefok), parses the value of its environment variable, when set,
/// into the flag. Call it before absl::ParseCommandLine so that a flag given on the command line
/// overrides its variable. A value that does not parse is INVALID_ARGUMENT naming the variable, the
/// value and the flag (every bad variable, not just the first).
absl::Status SetFlagsFromEnv(absl::string_view prefix);

/// The variables that start with prefix but name no flag (typos, or the
/// <SERVICE>_PORT variables Kubernetes defines for a Service whose name
/// turns into prefix), sorted.
std::vector<std::string> UnknownFlagEnv(absl::string_view prefix);

/// SetFlagsFromEnv for main(): on error prints "<argv0>: <message>" to stderr
/// and exits with status 1, as absl::ParseCommandLine does for a bad flag.
/// (main warns about the variables UnknownFlagEnv returns once its log is
/// set up, so that the warning comes in the log's format.)
void SetFlagsFromEnvOrExit(absl::string_view prefix, const char* argv0);

}  // namespace lossservice

#endif  // LOSSSERVICE_SERVER_FLAG_ENV_H_
