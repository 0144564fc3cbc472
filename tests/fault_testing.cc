#include "tests/fault_testing.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "lossservice/v1/loss_service.pb.h"
#include "tests/server_testing.h"

namespace lossservice::test {
namespace {

// A response tensor as a Tensor, or what is wrong with it.
std::string ToTensor(const v1::Tensor& p, Tensor* out) {
  TensorDecoder decoder;
  absl::StatusOr<TensorView> view = decoder.Decode(p, "response");
  if (!view.ok()) return std::string(view.status().message());
  *out = Tensor{view->dtype, view->shape, {}};
  const size_t bytes = static_cast<size_t>(view->numel()) * DTypeSize(view->dtype);
  out->bytes.resize(bytes);
  if (bytes > 0) std::memcpy(out->bytes.data(), view->data, bytes);
  return "";
}

std::string Compare(const v1::Tensor& got, const Tensor& want, DType dtype,
                    absl::string_view what) {
  Tensor t;
  std::string failure = ToTensor(got, &t);
  if (failure.empty()) {
    if (auto mismatch = golden::CompareToReference(t, want, dtype)) failure = *mismatch;
  }
  return failure.empty() ? "" : absl::StrCat(what, ": ", failure);
}

}  // namespace

std::string GoldenCall::Check(const std::string& response) const {
  const golden::GoldenCase& c = *golden;
  const DType dtype = c.input->dtype;
  if (c.is_activation()) {
    v1::ActivateResponse r;
    if (!r.ParseFromString(response)) return "the response does not parse";
    return Compare(r.output(), *c.expected_output, dtype, "output");
  }
  v1::EvaluateResponse r;
  if (!r.ParseFromString(response)) return "the response does not parse";
  if (r.request_id() != c.name) return absl::StrCat("request_id ", r.request_id());
  std::string failure = Compare(r.loss(), *c.expected_loss, dtype, "loss");
  if (failure.empty() && c.compute_grad) failure = Compare(r.grad(), *c.expected_grad, dtype, "grad");
  if (failure.empty() && !c.compute_grad && r.has_grad()) failure = "a gradient nobody asked for";
  return failure;
}

std::vector<GoldenCall> GoldenCalls(size_t max_request_bytes) {
  std::vector<GoldenCall> calls;
  for (const golden::GoldenCase& c : GoldenCases()) {
    if (c.is_error()) continue;
    for (Encoding e : {Encoding::kTyped, Encoding::kRaw}) {
      GoldenCall call{&c, e, "", ""};
      if (c.is_activation()) {
        call.method = "/lossservice.v1.LossService/Activate";
        call.request = ActivateRequestFor(c, e).SerializeAsString();
      } else {
        call.method = "/lossservice.v1.LossService/Evaluate";
        call.request = EvaluateRequestFor(c, e).SerializeAsString();
      }
      if (call.request.size() <= max_request_bytes) calls.push_back(std::move(call));
    }
  }
  return calls;
}

}  // namespace lossservice::test
