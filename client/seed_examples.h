// The seed document's examples ("2. Loss Functions"), replayed through the
// service and compared with the numbers the document prints.
#ifndef LOSSSERVICE_CLIENT_SEED_EXAMPLES_H_
#define LOSSSERVICE_CLIENT_SEED_EXAMPLES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/client.h"

namespace lossservice {

/// One number (or shape) the document prints, beside the service's.
struct SeedRow {
  /// The document's section, e.g. "2.3 MSELoss".
  std::string section;
  /// What was computed, e.g. "loss" or "log_probs[0, 1]". Values the client
  /// computes itself (torch's generator, a client-side sum) say so with
  /// "(client ...)"; every other value comes from an Evaluate or Activate
  /// call.
  std::string what;
  /// As the document prints it, e.g. "1.0192" or "(2, 3)".
  std::string document;
  /// The computed value, formatted like `document` (same decimals).
  std::string service;
  bool agrees = false;
};

struct SeedReport {
  std::vector<SeedRow> rows;

  int num_agree() const;
  int num_differ() const;
  bool all_agree() const { return num_differ() == 0; }
};

/// Walks through every example of the seed document in order (sections 2.1
/// to 2.9), calling `client` once or more per example, and returns one row
/// per printed number. A failed RPC or a malformed response ends the walk
/// with that status, prefixed by the section; a value that merely differs
/// from the document is a row with `agrees == false`.
absl::StatusOr<SeedReport> RunSeedExamples(Client& client);

/// Formats `value` the way `printed` was printed: as many decimals as
/// `printed` has after its '.', and a trailing '.' when it has none (PyTorch
/// prints 1.0 in an all-integer tensor as "1."). A NaN or infinity is "nan",
/// "inf" or "-inf", as PyTorch prints them.
std::string FormatLike(double value, absl::string_view printed);

/// Whether two printed numbers are the same, counting "-0.0000" equal to
/// "0.0000" (the sign of a value that rounds to zero is noise).
bool PrintedEqual(absl::string_view a, absl::string_view b);

}  // namespace lossservice

#endif  // LOSSSERVICE_CLIENT_SEED_EXAMPLES_H_
