// A libFuzzer target (built three times, with LOSS_FUZZ_TARGET set to
// kEvaluate, kActivate or kStream): arbitrary bytes through
// Harness::Check; a failed check, like a crash or a sanitizer report, stops
// the fuzzer with the input saved.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "fuzz/fuzz_checks.h"

namespace {
constexpr lossservice::fuzz::Target kTarget = lossservice::fuzz::Target::LOSS_FUZZ_TARGET;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  lossservice::fuzz::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Kept for the whole run, as a server keeps its pools across calls.
  static auto* harness = new lossservice::fuzz::Harness();
  const std::string failure =
      harness->Check(kTarget, absl::string_view(reinterpret_cast<const char*>(data), size));
  if (!failure.empty()) {
    std::fprintf(stderr, "fuzz_%s: check failed: %s\n",
                 std::string(lossservice::fuzz::TargetName(kTarget)).c_str(), failure.c_str());
    std::abort();
  }
  return 0;
}
