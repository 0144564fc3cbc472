// What the fuzz targets do with their bytes, and what must then hold: the
// same functions run under libFuzzer (fuzz/fuzz_main.cc) and in the
// regression test (fuzz/fuzz_regression_test.cc), so that every input the fuzzer
// ever found is checked again by `./dev test`.
#ifndef LOSSSERVICE_FUZZ_FUZZ_CHECKS_H_
#define LOSSSERVICE_FUZZ_FUZZ_CHECKS_H_

#include <memory>
#include <string>

#include "absl/strings/string_view.h"

namespace lossservice::fuzz {

/// What a fuzz target feeds its bytes to.
enum class Target {
  /// One EvaluateRequest: our parser (the bytes cut into slices, against
  /// protobuf's parser), then the service (parse, ToCoreRequest,
  /// EvaluateLoss, the response) as a unary call runs it.
  kEvaluate,
  /// One ActivateRequest, as kEvaluate.
  kActivate,
  /// A sequence of EvaluateRequests, as one EvaluateStream call answers them:
  /// the bytes are items (EncodeStreamItem), each evaluated in order by one
  /// service whose buffers carry over from item to item; each answer must be
  /// the in-band response or Error the stream sends, and the same as the
  /// item's answer from a fresh service.
  kStream,
};

/// "evaluate", "activate", "stream".
absl::string_view TargetName(Target target);

/// One item of a kStream input: a varint of (size << 1 | cancelled), then
/// the request's bytes (the last item may be cut short). A cancelled item is
/// one whose call was cancelled before its computation started.
std::string EncodeStreamItem(absl::string_view request, bool cancelled = false);

/// The service the checks run on: one compute thread (so that every run of
/// an input is the same), a buffer pool and counters, kept across inputs as
/// a server keeps them across calls. Not thread-safe.
class Harness {
 public:
  Harness();
  ~Harness();
  Harness(const Harness&) = delete;
  Harness& operator=(const Harness&) = delete;

  /// Runs `bytes` through `target`; returns what went wrong (a message for
  /// the fuzzer to print before it aborts), or an empty string when every
  /// check held.
  std::string Check(Target target, absl::string_view bytes);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// Silences the service's and protobuf's logs (every bad input would log a
/// line).
void QuietLogs();

}  // namespace lossservice::fuzz

#endif  // LOSSSERVICE_FUZZ_FUZZ_CHECKS_H_
