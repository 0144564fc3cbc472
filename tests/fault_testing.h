// What the battery and the soak test share: golden requests with a check of
// their answers, and a stream of raw items over a channel.
#ifndef LOSSSERVICE_TESTS_FAULT_TESTING_H_
#define LOSSSERVICE_TESTS_FAULT_TESTING_H_

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"
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

/// One EvaluateStream call on raw items: writes each (stopping at the first
/// failed write), half-closes, reads every response; `status` is the call's.
std::vector<std::string> RawStreamCall(const std::shared_ptr<grpc::Channel>& channel,
                                       const std::vector<std::string>& items, grpc::Status* status,
                                       std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace lossservice::test

#endif  // LOSSSERVICE_TESTS_FAULT_TESTING_H_
