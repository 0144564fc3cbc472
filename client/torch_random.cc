#include "client/torch_random.h"

#include <cmath>
#include <limits>
#include <numbers>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace lossservice {

TorchGenerator::TorchGenerator(uint64_t seed)
    // at::mt19937 keeps only the low 32 bits of the seed; its initialisation
    // is std::mt19937's.
    : engine_(static_cast<std::mt19937::result_type>(seed & 0xffffffffULL)) {}

uint32_t TorchGenerator::Random() { return static_cast<uint32_t>(engine_()); }

uint64_t TorchGenerator::Random64() {
  const uint64_t hi = Random();
  const uint64_t lo = Random();
  return (hi << 32) | lo;
}

double TorchGenerator::Uniform() {
  constexpr uint64_t kMask = (uint64_t{1} << std::numeric_limits<double>::digits) - 1;
  constexpr double kScale = 1.0 / static_cast<double>(uint64_t{1} << std::numeric_limits<double>::digits);
  return static_cast<double>(Random64() & kMask) * kScale;
}

double TorchGenerator::Normal() {
  if (next_double_normal_sample_.has_value()) {
    const double cached = *next_double_normal_sample_;
    next_double_normal_sample_.reset();
    return cached;
  }
  const double u1 = Uniform();
  const double u2 = Uniform();
  // 1 - u2 is in (0, 1], so the log is finite.
  const double r = std::sqrt(-2.0 * std::log(1.0 - u2));
  const double theta = 2.0 * std::numbers::pi * u1;
  next_double_normal_sample_ = r * std::sin(theta);
  return r * std::cos(theta);
}

absl::StatusOr<std::vector<float>> TorchGenerator::Randn(
    absl::Span<const int64_t> shape) {
  bool has_zero = false;
  for (int64_t d : shape) {
    if (d < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "randn: negative dimension in shape [", absl::StrJoin(shape, ", "), "]"));
    }
    has_zero = has_zero || d == 0;
  }
  // Saturates above kMaxRandnElements, so that no product overflows.
  int64_t count = has_zero ? 0 : 1;
  for (int64_t d : shape) {
    if (count == 0 || count > kMaxRandnElements) break;
    count = d > kMaxRandnElements ? kMaxRandnElements + 1 : count * d;
  }
  if (count > kMaxRandnElements) {
    return absl::InvalidArgumentError(absl::StrCat(
        "randn: shape [", absl::StrJoin(shape, ", "), "] has more than ",
        kMaxRandnElements,
        " elements; only PyTorch's scalar path (fewer than 16) is reproduced"));
  }
  std::vector<float> values;
  values.reserve(static_cast<size_t>(count));
  constexpr double kMean = 0.0;
  constexpr double kStd = 1.0;
  for (int64_t i = 0; i < count; ++i) {
    values.push_back(static_cast<float>(Normal() * kStd + kMean));
  }
  return values;
}

}  // namespace lossservice
