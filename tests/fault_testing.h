// What the battery and the soak test share: golden requests with a check of
// their answers.
#ifndef LOSSSERVICE_TESTS_FAULT_TESTING_H_
#define LOSSSERVICE_TESTS_FAULT_TESTING_H_

#include <string>
#include <vector>

#include "server/tensor_codec.h"
#include "tests/golden.h"

namespace lossservice::test {

/// A golden case as a request that must succeed, with PyTorch's answer.
struct GoldenCall {
  const golden::GoldenCase* golden;
  Encoding encoding;
  /// "/lossservice.v1.LossService/Evaluate" or ".../Activate".
  std::string method;
  std::string request;

  /// Checks the bytes of an EvaluateResponse (an ActivateResponse for an
  /// activation case) against PyTorch's values: empty when they match,
  /// else what differs.
  std::string Check(const std::string& response) const;
};

/// Every golden case that is not an error case, in both encodings, up to
/// `max_request_bytes` each.
std::vector<GoldenCall> GoldenCalls(size_t max_request_bytes);

}  // namespace lossservice::test

#endif  // LOSSSERVICE_TESTS_FAULT_TESTING_H_
