// The fuzzers' seed corpus and dictionary, made from the tests' requests
// (never committed: `./dev fuzz` writes them at build time with
// fuzz_seed_corpus), and the inputs the fuzzers found.
#ifndef LOSSSERVICE_FUZZ_SEEDS_H_
#define LOSSSERVICE_FUZZ_SEEDS_H_

#include <string>
#include <vector>

#include "fuzz/fuzz_checks.h"

namespace lossservice::fuzz {

/// The largest seed (libFuzzer's -max_len follows the corpus).
inline constexpr size_t kMaxSeedBytes = 64 << 10;

/// The seeds of `target`: golden requests (both encodings, a few cases of
/// every loss or activation, error cases included) and every
/// hostile request of the battery that fits kMaxSeedBytes; for kStream,
/// streams made of them, with cancelled items.
std::vector<std::string> Seeds(Target target);

/// A libFuzzer dictionary: the tag of every field of the request messages
/// (each wire type a field may come as), the enums' values, and varints and
/// floats worth trying.
std::string Dictionary(Target target);

/// An input a fuzzer found, kept as a regression test.
struct Regression {
  Target target;
  /// What it exposed.
  std::string what;
  std::string bytes;
};
const std::vector<Regression>& Regressions();

}  // namespace lossservice::fuzz

#endif  // LOSSSERVICE_FUZZ_SEEDS_H_
