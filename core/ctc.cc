// Connectionist temporal classification: ctc.
#include "core/internal.h"

namespace lossservice::internal {

absl::Status Evaluate(const LossRequest& r, const CtcOptions&, OutputAllocator&) {
  return NotImplemented(r);
}


}  // namespace lossservice::internal
