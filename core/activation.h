// Activations: sigmoid, softmax, log_softmax and logit, as in torch.
#ifndef LOSSSERVICE_CORE_ACTIVATION_H_
#define LOSSSERVICE_CORE_ACTIVATION_H_

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "core/parallel.h"
#include "core/tensor.h"

namespace lossservice {

enum class Activation : uint8_t { kSigmoid, kSoftmax, kLogSoftmax, kLogit };

struct ActivationRequest {
  Activation activation = Activation::kSigmoid;
  TensorView input;             ///< FLOAT32 or FLOAT64
  int64_t dim = -1;             ///< softmax / log_softmax; negative counts from the end
  std::optional<double> eps;    ///< logit: clamp to [eps, 1 - eps] when set
};

/// Writes the activation of `request.input` (same shape and dtype) to the
/// kOutput slot of `out`. torch.sigmoid, torch.softmax, torch.log_softmax,
/// torch.logit. A 0-d input is treated as one element along `dim` 0 or -1.
absl::Status Activate(const ActivationRequest& request, OutputAllocator& out,
                      const ComputeContext& ctx = {});

}  // namespace lossservice

#endif  // LOSSSERVICE_CORE_ACTIVATION_H_
