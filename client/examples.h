// Every loss (and activation) once, through the typed calls of
// lossservice::Client, compared with the value PyTorch computed
// (tests/golden/examples.json, written by tools/gen_golden.py).
#ifndef LOSSSERVICE_CLIENT_EXAMPLES_H_
#define LOSSSERVICE_CLIENT_EXAMPLES_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/client.h"

namespace lossservice {

/// The examples file built into loss_client (tests/golden/examples.json).
absl::string_view BuiltinExamplesJson();

/// One compared value: an example's loss, gradient or activation output.
struct ExampleRow {
  std::string example{};   ///< e.g. "cross_entropy/options"
  std::string what{};      ///< "loss", "grad" or "output"
  std::string expected{};  ///< PyTorch's, e.g. "2.318817" or "[2, 3] 0.07519809, 0.5354082, ..."
  std::string service{};   ///< the service's answer, formatted alike, or the error
  bool agrees = false;
};

struct ExamplesReport {
  std::vector<ExampleRow> rows;
  /// Losses ListLosses reports that no example covers (each is a failure).
  std::vector<std::string> uncovered;
  /// Examples of losses the server does not list (not run).
  std::vector<std::string> not_listed;

  int num_agree() const;
  int num_differ() const;
  bool all_agree() const { return num_differ() == 0 && uncovered.empty(); }
};

/// OK if `examples_json` is a well-formed examples file; else
/// INVALID_ARGUMENT naming the case and the problem.
absl::Status CheckExamples(absl::string_view examples_json);

/// Asks ListLosses which losses the server has, runs every example of those
/// losses and every activation example through `client`'s typed calls, and
/// compares each result with PyTorch's within the example's tolerance. A
/// failed call is a row that does not agree (the service column holds the
/// status). Fails only if ListLosses fails or `examples_json` is malformed.
absl::StatusOr<ExamplesReport> RunExamples(Client& client, absl::string_view examples_json);

}  // namespace lossservice

#endif  // LOSSSERVICE_CLIENT_EXAMPLES_H_
