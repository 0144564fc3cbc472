// Golden cases computed by PyTorch (tools/gen_golden.py), for the core and
// server tests.
//
// core_cases.json holds loss cases, error cases and activation cases:
//
//   {"generator": "tools/gen_golden.py", "torch_version": "1.13.0",
//    "cases": [CASE, ...]}
//
// A loss CASE: name, kind "loss", loss (the EvaluateRequest oneof field name),
// reduction ("mean" | "sum" | "none"), compute_grad, input, target,
// grad_output (optional), options {weight, pos_weight, ignore_index,
// label_smoothing, eps}, expected_loss, expected_grad (when compute_grad).
// An activation CASE: kind "activation", activation ("sigmoid" | "softmax" |
// "log_softmax" | "logit"), input, dim and eps (optional), expected_output.
// An error CASE has "expect_error": "INVALID_ARGUMENT" and no expected_*.
// A tensor is {"dtype", "shape", "values"}; non-finite values are the strings
// "nan", "inf" and "-inf".
//
// Expected tensors are float64 references computed from the exact stored
// inputs; a float32 case's result is float32 and is compared with the float32
// tolerance (see CompareToReference).
#ifndef LOSSSERVICE_TESTS_GOLDEN_H_
#define LOSSSERVICE_TESTS_GOLDEN_H_

#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/activation.h"
#include "core/loss.h"
#include "core/tensor.h"

namespace lossservice::golden {

/// Options of a case, keyed by their proto field names (the loss message's
/// fields; for activations "dim" and "eps"). Tensors (weight, var, input2,
/// input_lengths, ...), numbers (ignore_index, margin, eps, ...) and flags
/// (log_target, full, swap, ...) are kept apart.
struct CaseOptions {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, double> numbers;
  std::map<std::string, bool> flags;

  const Tensor* tensor(const std::string& name) const {
    auto it = tensors.find(name);
    return it == tensors.end() ? nullptr : &it->second;
  }
  std::optional<double> number(const std::string& name) const {
    auto it = numbers.find(name);
    return it == numbers.end() ? std::nullopt : std::optional<double>(it->second);
  }
  std::optional<bool> flag(const std::string& name) const {
    auto it = flags.find(name);
    return it == flags.end() ? std::nullopt : std::optional<bool>(it->second);
  }
};

/// One case of core_cases.json. Plain data: the server tests build proto
/// requests from these fields.
struct GoldenCase {
  std::string name;
  std::string kind;        ///< "loss" or "activation"
  std::string loss;        ///< loss cases: "mse", "cross_entropy", ...
  std::string activation;  ///< activation cases: "sigmoid", ...
  std::string reduction;   ///< loss cases: "mean", "sum" or "none"
  bool compute_grad = false;
  std::optional<Tensor> input, target, grad_output;
  CaseOptions options;
  std::optional<Tensor> expected_loss, expected_grad, expected_output;
  std::string expect_error;  ///< "INVALID_ARGUMENT" for error cases, else empty

  bool is_loss() const { return kind == "loss"; }
  bool is_activation() const { return kind == "activation"; }
  bool is_error() const { return !expect_error.empty(); }
};

/// gtest prints a parameter with PrintTo: the case name, not its bytes.
void PrintTo(const GoldenCase& c, std::ostream* os);

/// A golden file's header and cases.
struct GoldenFile {
  std::string generator;
  std::string torch_version;
  std::vector<GoldenCase> cases;
};

/// LOSS_GOLDEN_DIR + "/" + file_name.
std::string GoldenPath(std::string_view file_name);

/// Reads and parses a core_cases.json file. Errors name the file and case.
absl::StatusOr<GoldenFile> LoadCases(const std::string& path);
/// LoadCases(GoldenPath("core_cases.json")).
absl::StatusOr<GoldenFile> LoadCoreCases();

/// Parses one tensor of the golden format ({"dtype", "shape", "values"}).
/// Takes the JSON text so that this header needs no JSON library.
absl::StatusOr<Tensor> ParseTensorJson(std::string_view json_text);

/// "mean" -> kMean, "sum" -> kSum, "none" -> kNone, "batchmean" -> kBatchMean.
absl::StatusOr<Reduction> ParseReduction(std::string_view name);
/// "sigmoid" -> kSigmoid, ... "logit" -> kLogit.
absl::StatusOr<Activation> ParseActivation(std::string_view name);

/// The core request of a loss case (also of a loss error case). The views
/// point into `c`'s tensors: keep `c` alive and unmoved while the request is
/// used. Fails for an unknown loss or reduction name or a missing input.
absl::StatusOr<LossRequest> BuildLossRequest(const GoldenCase& c);
/// The core request of an activation case; same lifetime rule.
absl::StatusOr<ActivationRequest> BuildActivationRequest(const GoldenCase& c);

/// Tolerances of the golden comparison: |actual - ref| <= atol + rtol |ref|.
struct Tolerance {
  double atol;
  double rtol;
};
/// float32: 1e-6 + 1e-5 |ref|; float64: 1e-12 + 1e-10 |ref|.
Tolerance ToleranceFor(DType dtype);

/// Checks a computed tensor against a float64 reference: `actual` must have
/// dtype `want_dtype` (the input's dtype) and exactly the reference's shape;
/// every element must be within ToleranceFor(want_dtype), NaN where the
/// reference is NaN and an infinity of the same sign where it is infinite.
/// Returns std::nullopt on a match, else a message naming the first
/// mismatching index with both values (and the number of mismatches).
std::optional<std::string> CompareToReference(const Tensor& actual, const Tensor& expected,
                                              DType want_dtype);

/// "float32[2, 3]{0.5, -1, ...}", for messages; at most `max_values` values.
std::string DescribeTensor(const Tensor& t, size_t max_values = 8);

/// The case name made into a gtest name: alphanumerics and '_' only.
std::string SanitizeName(std::string_view name);

/// One torch.randn call of torch_randn.json.
struct RandnCall {
  Shape shape;
  std::vector<float> values;
};
/// torch.manual_seed(seed) followed by `calls`, in order.
struct RandnCase {
  uint64_t seed = 0;
  std::vector<RandnCall> calls;
};

/// Reads torch_randn.json.
absl::StatusOr<std::vector<RandnCase>> LoadRandnCases(const std::string& path);
/// LoadRandnCases(GoldenPath("torch_randn.json")).
absl::StatusOr<std::vector<RandnCase>> LoadTorchRandn();

}  // namespace lossservice::golden

#endif  // LOSSSERVICE_TESTS_GOLDEN_H_
