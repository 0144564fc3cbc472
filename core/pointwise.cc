// Point-wise losses: huber, smooth_l1, kl_div, poisson_nll, gaussian_nll,
// soft_margin, hinge_embedding, margin_ranking.
#include "core/internal.h"

namespace lossservice::internal {

absl::Status Evaluate(const LossRequest& r, const HuberOptions&, OutputAllocator&) {
  return NotImplemented(r);
}

absl::Status Evaluate(const LossRequest& r, const SmoothL1Options&, OutputAllocator&) {
  return NotImplemented(r);
}

absl::Status Evaluate(const LossRequest& r, const KlDivOptions&, OutputAllocator&) {
  return NotImplemented(r);
}

absl::Status Evaluate(const LossRequest& r, const PoissonNllOptions&, OutputAllocator&) {
  return NotImplemented(r);
}

absl::Status Evaluate(const LossRequest& r, const GaussianNllOptions&, OutputAllocator&) {
  return NotImplemented(r);
}

absl::Status Evaluate(const LossRequest& r, const SoftMarginOptions&, OutputAllocator&) {
  return NotImplemented(r);
}

absl::Status Evaluate(const LossRequest& r, const HingeEmbeddingOptions&, OutputAllocator&) {
  return NotImplemented(r);
}

absl::Status Evaluate(const LossRequest& r, const MarginRankingOptions&, OutputAllocator&) {
  return NotImplemented(r);
}


}  // namespace lossservice::internal
