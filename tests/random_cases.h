// Valid random requests for every loss, at any size: for the determinism and
// allocation tests and for bench_core (which hands the same bytes to
// libtorch).
#ifndef LOSSSERVICE_TESTS_RANDOM_CASES_H_
#define LOSSSERVICE_TESTS_RANDOM_CASES_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "core/loss.h"
#include "core/tensor.h"

namespace lossservice::testing {

/// A request with the tensors it views. `others` holds, in this order, the
/// target (when the loss has one) and the option tensors in the order of
/// the options struct's Fields().
struct OwnedRequest {
  std::string loss;
  Tensor input;
  std::deque<Tensor> others;
  LossRequest request;  ///< reduction mean, no gradient, default options
  /// Bytes of the input and every other tensor.
  size_t bytes() const;
};

/// A valid request for `loss` (its EvaluateRequest oneof name) with about
/// `elements` input elements of `dtype`: 1-D for the element-wise losses,
/// rows of `classes` for cross_entropy, nll and the row-wise losses,
/// (T, N = 4, C = 32) log-probabilities for ctc. Values are drawn from a
/// generator seeded with `seed`; targets lie in each loss's domain. nullptr
/// for an unknown loss.
std::unique_ptr<OwnedRequest> RandomRequest(absl::string_view loss, int64_t elements,
                                            uint64_t seed, DType dtype = DType::kFloat32,
                                            int64_t classes = 128);

}  // namespace lossservice::testing

#endif  // LOSSSERVICE_TESTS_RANDOM_CASES_H_
