// PyTorch 1.13's CPU random number generator, for reproducing the tensors
// that `torch.manual_seed(seed); torch.randn(...)` gives in Python.
#ifndef LOSSSERVICE_CLIENT_TORCH_RANDOM_H_
#define LOSSSERVICE_CLIENT_TORCH_RANDOM_H_

#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace lossservice {

/// Replays PyTorch 1.13's CPU generator (`at::CPUGeneratorImpl`) after
/// `torch.manual_seed(seed)`:
///
///   TorchGenerator gen(42);
///   auto yhat = gen.Randn({3, 5});  // == torch.randn(3, 5), bit for bit
///   auto y = gen.Randn({3, 5});     // the next torch.randn(3, 5)
///
/// Only PyTorch's scalar path of `randn` is reproduced: tensors of fewer than
/// 16 elements. Larger tensors take PyTorch's vectorised Box-Muller path,
/// which draws numbers in another order; Randn refuses them.
///
/// Not thread-safe, like the generator it copies.
class TorchGenerator {
 public:
  /// The largest element count Randn reproduces (PyTorch's scalar path).
  static constexpr int64_t kMaxRandnElements = 15;

  /// As `torch.manual_seed(seed)`: the engine is mt19937 seeded with the low
  /// 32 bits of `seed`, and no normal sample is cached.
  explicit TorchGenerator(uint64_t seed = 67280421310721ULL);

  /// `torch.randn(shape)` in float32, row-major. INVALID_ARGUMENT for a
  /// negative dimension or 16 or more elements.
  absl::StatusOr<std::vector<float>> Randn(absl::Span<const int64_t> shape);

  /// One 32-bit draw of the engine (`CPUGeneratorImpl::random()`).
  uint32_t Random();
  /// Two draws, the first in the high half (`CPUGeneratorImpl::random64()`).
  uint64_t Random64();
  /// A double in [0, 1) with 53 random bits
  /// (`at::uniform_real_distribution<double>(0, 1)`).
  double Uniform();
  /// A standard normal double (`at::normal_distribution<double>(0, 1)`):
  /// Box-Muller producing two samples, the second cached in the generator
  /// and returned by the next call.
  double Normal();

 private:
  std::mt19937 engine_;
  std::optional<double> next_double_normal_sample_;
};

}  // namespace lossservice

#endif  // LOSSSERVICE_CLIENT_TORCH_RANDOM_H_
