// Margin and embedding losses: multilabel_soft_margin, multi_margin,
// multilabel_margin, cosine_embedding, triplet_margin.
#include "core/internal.h"

namespace lossservice::internal {

absl::Status Evaluate(const LossRequest& r, const MultiLabelSoftMarginOptions&, OutputAllocator&) {
  return NotImplemented(r);
}

absl::Status Evaluate(const LossRequest& r, const MultiMarginOptions&, OutputAllocator&) {
  return NotImplemented(r);
}

absl::Status Evaluate(const LossRequest& r, const MultiLabelMarginOptions&, OutputAllocator&) {
  return NotImplemented(r);
}

absl::Status Evaluate(const LossRequest& r, const CosineEmbeddingOptions&, OutputAllocator&) {
  return NotImplemented(r);
}

absl::Status Evaluate(const LossRequest& r, const TripletMarginOptions&, OutputAllocator&) {
  return NotImplemented(r);
}


}  // namespace lossservice::internal
