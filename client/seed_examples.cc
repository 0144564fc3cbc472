#include "client/seed_examples.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/types/span.h"
#include "client/status_macros.h"
#include "client/torch_random.h"

namespace lossservice {
namespace {

using Shape = std::vector<int64_t>;

int64_t NumElements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

v1::Tensor Float32Tensor(const Shape& shape, absl::Span<const float> values) {
  v1::Tensor t;
  t.mutable_shape()->Add(shape.begin(), shape.end());
  t.set_dtype(v1::DATA_TYPE_FLOAT32);
  t.mutable_float_values()->Add(values.begin(), values.end());
  return t;
}

v1::Tensor Float64Tensor(const Shape& shape, absl::Span<const double> values) {
  v1::Tensor t;
  t.mutable_shape()->Add(shape.begin(), shape.end());
  t.set_dtype(v1::DATA_TYPE_FLOAT64);
  t.mutable_double_values()->Add(values.begin(), values.end());
  return t;
}

v1::Tensor Int64Tensor(const Shape& shape, absl::Span<const int64_t> values) {
  v1::Tensor t;
  t.mutable_shape()->Add(shape.begin(), shape.end());
  t.set_dtype(v1::DATA_TYPE_INT64);
  t.mutable_int64_values()->Add(values.begin(), values.end());
  return t;
}

// "(1, 2, 3)", "(3,)", "()": a shape as numpy prints it.
std::string NumpyShape(absl::Span<const int64_t> shape) {
  if (shape.size() == 1) return absl::StrCat("(", shape[0], ",)");
  return absl::StrCat("(", absl::StrJoin(shape, ", "), ")");
}

// "[1, 2]": the index of flat element `flat` of a row-major `shape`.
std::string IndexString(const Shape& shape, int64_t flat) {
  std::vector<int64_t> index(shape.size());
  for (size_t i = shape.size(); i-- > 0;) {
    index[i] = shape[i] == 0 ? 0 : flat % shape[i];
    flat = shape[i] == 0 ? 0 : flat / shape[i];
  }
  return absl::StrCat("[", absl::StrJoin(index, ", "), "]");
}

// The values of a float tensor from a response, in double, in any of the
// encodings the contract allows. Checks that the shape is `expected_shape`
// and the dtype `expected_dtype`.
absl::StatusOr<std::vector<double>> FloatValues(const v1::Tensor& t,
                                                absl::string_view name,
                                                const Shape& expected_shape,
                                                v1::DataType expected_dtype) {
  const Shape shape(t.shape().begin(), t.shape().end());
  if (shape != expected_shape) {
    return absl::InternalError(absl::StrCat(
        "response ", name, " has shape [", absl::StrJoin(shape, ", "),
        "], expected [", absl::StrJoin(expected_shape, ", "), "]"));
  }
  const int64_t n = NumElements(shape);
  std::vector<double> out;
  v1::DataType dtype = t.dtype();
  if (t.float_values_size() > 0) {
    if (dtype == v1::DATA_TYPE_UNSPECIFIED) dtype = v1::DATA_TYPE_FLOAT32;
    out.assign(t.float_values().begin(), t.float_values().end());
  } else if (t.double_values_size() > 0) {
    if (dtype == v1::DATA_TYPE_UNSPECIFIED) dtype = v1::DATA_TYPE_FLOAT64;
    out.assign(t.double_values().begin(), t.double_values().end());
  } else if (!t.raw_data().empty()) {
    const std::string& raw = t.raw_data();
    if (dtype == v1::DATA_TYPE_FLOAT32 && raw.size() == static_cast<size_t>(n) * 4) {
      for (int64_t i = 0; i < n; ++i) {
        float f;
        std::memcpy(&f, raw.data() + i * 4, 4);
        out.push_back(f);
      }
    } else if (dtype == v1::DATA_TYPE_FLOAT64 &&
               raw.size() == static_cast<size_t>(n) * 8) {
      for (int64_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, raw.data() + i * 8, 8);
        out.push_back(d);
      }
    } else {
      return absl::InternalError(absl::StrCat(
          "response ", name, " has ", raw.size(), " raw bytes of dtype ",
          v1::DataType_Name(dtype), " for ", n, " elements"));
    }
  }
  if (dtype != expected_dtype) {
    return absl::InternalError(absl::StrCat("response ", name, " has dtype ",
                                            v1::DataType_Name(dtype), ", expected ",
                                            v1::DataType_Name(expected_dtype)));
  }
  if (static_cast<int64_t>(out.size()) != n) {
    return absl::InternalError(absl::StrCat("response ", name, " holds ", out.size(),
                                            " values for shape [",
                                            absl::StrJoin(shape, ", "), "]"));
  }
  return out;
}

absl::Status InSection(const absl::Status& s, absl::string_view section,
                       absl::string_view rpc) {
  return absl::Status(s.code(), absl::StrCat(section, ": ", rpc, ": ", s.message()));
}

// Walks the document. Each example builds its requests, calls the service
// and records rows; the document's printed values are written beside the
// code of their section.
class SeedWalk {
 public:
  explicit SeedWalk(Client& client) : client_(client) {}

  absl::StatusOr<SeedReport> Run() {
    LOSS_CLIENT_RETURN_IF_ERROR(Perceptron());
    LOSS_CLIENT_RETURN_IF_ERROR(Softmax());
    LOSS_CLIENT_RETURN_IF_ERROR(Mse());
    LOSS_CLIENT_RETURN_IF_ERROR(L1());
    LOSS_CLIENT_RETURN_IF_ERROR(Rmse());
    LOSS_CLIENT_RETURN_IF_ERROR(CrossEntropy());
    LOSS_CLIENT_RETURN_IF_ERROR(CrossEntropyManual());
    LOSS_CLIENT_RETURN_IF_ERROR(Bce());
    LOSS_CLIENT_RETURN_IF_ERROR(BceWithLogits());
    LOSS_CLIENT_RETURN_IF_ERROR(SoftmaxAndLogSoftmax());
    LOSS_CLIENT_RETURN_IF_ERROR(Nll());
    return std::move(report_);
  }

 private:
  // --- the examples, in the document's order ---

  // 2.1: sigmoid keeps the (1, 2, 3) shape; squeeze() drops the 1.
  absl::Status Perceptron() {
    constexpr absl::string_view kSection = "2.1 Perceptron";
    // Document: "Shape of input array :  (1, 2, 3)",
    //           "Shape of output array :  (2, 3)".
    constexpr absl::string_view kShape = "(1, 2, 3)";
    constexpr absl::string_view kSqueezedShape = "(2, 3)";

    const Shape shape = {1, 2, 3};
    const std::vector<float> twos(6, 2.0f);  // np.array([[[2, 2, 2], [2, 2, 2]]])
    v1::ActivateRequest request;
    request.set_activation(v1::ACTIVATION_SIGMOID);
    *request.mutable_input() = Float32Tensor(shape, twos);
    LOSS_CLIENT_ASSIGN_OR_RETURN(v1::Tensor out, Activate(kSection, request));
    const Shape out_shape(out.shape().begin(), out.shape().end());
    AddText(kSection, "shape of sigmoid(in_arr)", kShape, NumpyShape(out_shape));
    Shape squeezed;
    for (int64_t d : out_shape) {
      if (d != 1) squeezed.push_back(d);
    }
    AddText(kSection, "shape of sigmoid(in_arr).squeeze() (client squeeze)",
            kSqueezedShape, NumpyShape(squeezed));
    return absl::OkStatus();
  }

  // 2.2: softmax over dim 1 of torch.randn(1, 3) right after manual_seed(42).
  absl::Status Softmax() {
    constexpr absl::string_view kSection = "2.2 Softmax";
    // Document: print(x_input), print(y_output), print(torch.sum(y_output, dim=1)).
    constexpr absl::string_view kXInput[] = {"0.3367", "0.1288", "0.2345"};
    constexpr absl::string_view kYOutput[] = {"0.3683", "0.2992", "0.3325"};
    constexpr absl::string_view kSum = "1.";

    const Shape shape = {1, 3};
    TorchGenerator gen(42);
    LOSS_CLIENT_ASSIGN_OR_RETURN(std::vector<float> x, gen.Randn(shape));
    AddValues(kSection, "x_input", " (client torch generator)", shape, kXInput,
              std::vector<double>(x.begin(), x.end()));

    v1::ActivateRequest request;
    request.set_activation(v1::ACTIVATION_SOFTMAX);
    request.set_dim(1);
    *request.mutable_input() = Float32Tensor(shape, x);
    LOSS_CLIENT_ASSIGN_OR_RETURN(v1::Tensor out, Activate(kSection, request));
    LOSS_CLIENT_ASSIGN_OR_RETURN(std::vector<double> y,
                          FloatValues(out, "output", shape, v1::DATA_TYPE_FLOAT32));
    AddValues(kSection, "softmax(x_input, dim=1)", "", shape, kYOutput, y);

    float sum = 0.0f;  // float32, as torch.sum of a float32 tensor
    for (double v : y) sum += static_cast<float>(v);
    AddValue(kSection, "sum(y_output, dim=1)[0] (client sum of the service's softmax)",
             kSum, sum);
    return absl::OkStatus();
  }

  // yhat = torch.randn(3, 5); y = torch.randn(3, 5) after manual_seed(42), as
  // 2.3, 2.4 and 2.5 draw them.
  absl::StatusOr<std::pair<std::vector<float>, std::vector<float>>> YhatAndY() {
    TorchGenerator gen(42);
    LOSS_CLIENT_ASSIGN_OR_RETURN(std::vector<float> yhat, gen.Randn(kShape35));
    LOSS_CLIENT_ASSIGN_OR_RETURN(std::vector<float> y, gen.Randn(kShape35));
    return std::make_pair(std::move(yhat), std::move(y));
  }

  // The float32 scalar loss of `request` on yhat / y.
  absl::Status RegressionLoss(absl::string_view section, v1::EvaluateRequest request,
                              absl::string_view what, absl::string_view printed) {
    LOSS_CLIENT_ASSIGN_OR_RETURN(auto data, YhatAndY());
    *request.mutable_input() = Float32Tensor(kShape35, data.first);
    *request.mutable_target() = Float32Tensor(kShape35, data.second);
    return AddLoss(section, std::move(request), what, printed, v1::DATA_TYPE_FLOAT32);
  }

  absl::Status Mse() {
    // Document 2.3: print(loss) -> tensor(1.0192, grad_fn=<MseLossBackward>)
    v1::EvaluateRequest request;
    request.mutable_mse();
    return RegressionLoss("2.3 MSELoss", std::move(request), "MSELoss()(yhat, y)",
                          "1.0192");
  }

  absl::Status L1() {
    constexpr absl::string_view kSection = "2.4 MAE Loss - L1Loss";
    // Document: print(yhat), print(y).
    constexpr absl::string_view kYhat[] = {
        "0.3367",  "0.1288", "0.2345",  "0.2303",  "-1.1229",  //
        "-0.1863", "2.2082", "-0.6380", "0.4617",  "0.2674",   //
        "0.5349",  "0.8094", "1.1103",  "-1.6898", "-0.9890"};
    constexpr absl::string_view kY[] = {
        "0.9580", "1.3221", "0.8172",  "-0.7658", "-0.7506",  //
        "1.3525", "0.6863", "-0.3278", "0.7950",  "0.2815",   //
        "0.0562", "0.5227", "-0.2384", "-0.0499", "0.5263"};
    LOSS_CLIENT_ASSIGN_OR_RETURN(auto data, YhatAndY());
    AddValues(kSection, "yhat", " (client torch generator)", kShape35, kYhat,
              std::vector<double>(data.first.begin(), data.first.end()));
    AddValues(kSection, "y", " (client torch generator)", kShape35, kY,
              std::vector<double>(data.second.begin(), data.second.end()));
    // Document: print(loss) -> tensor(0.8502, grad_fn=<L1LossBackward>)
    v1::EvaluateRequest request;
    request.mutable_l1();
    return RegressionLoss(kSection, std::move(request), "L1Loss()(yhat, y)", "0.8502");
  }

  absl::Status Rmse() {
    // Document 2.5: print(loss) -> tensor(1.0096, grad_fn=<SqrtBackward>)
    // The document's RMSELoss is sqrt(MSELoss()(yhat, y) + 1e-7), the service's
    // rmse with its default eps.
    v1::EvaluateRequest request;
    request.mutable_rmse();
    return RegressionLoss("2.5 RMSE Loss", std::move(request),
                          "RMSELoss()(yhat, y)", "1.0096");
  }

  absl::Status CrossEntropy() {
    constexpr absl::string_view kSection = "2.6 CrossEntropyLoss";
    // Document: print(loss) -> tensor(2.6812, grad_fn=<NllLossBackward>)
    constexpr absl::string_view kLoss = "2.6812";
    TorchGenerator gen(42);
    LOSS_CLIENT_ASSIGN_OR_RETURN(std::vector<float> outputs, gen.Randn(kShape35));
    v1::EvaluateRequest request;
    request.mutable_cross_entropy();
    *request.mutable_input() = Float32Tensor(kShape35, outputs);
    *request.mutable_target() = Int64Tensor({3}, {1, 0, 3});
    return AddLoss(kSection, std::move(request),
                   "CrossEntropyLoss()(outputs, targets=[1, 0, 3])", kLoss,
                   v1::DATA_TYPE_FLOAT32);
  }

  // 2.6.1: the loss written out by hand is BCE, as a mean and as a sum / n.
  absl::Status CrossEntropyManual() {
    constexpr absl::string_view kSection = "2.6.1 Cross Entropy Loss - Manual Calculation";
    // Document: print(positive_pred) -> tensor([0.9000]); both forms of the
    // loss -> tensor(0.1643).
    constexpr absl::string_view kPositivePred = "0.9000";
    constexpr absl::string_view kLoss = "0.1643";

    const std::vector<float> labels = {1.0f, 0.0f};
    const std::vector<float> predictions = {0.9f, 0.2f};
    AddValue(kSection, "predictions[labels == 1][0] (client)", kPositivePred,
             predictions[0]);

    v1::EvaluateRequest request;
    request.mutable_bce();
    *request.mutable_input() = Float32Tensor({2}, predictions);
    *request.mutable_target() = Float32Tensor({2}, labels);
    LOSS_CLIENT_RETURN_IF_ERROR(AddLoss(
        kSection, request,
        "-(sum log p[y=1] + sum log(1-p[y=0])) / n (bce, mean)", kLoss,
        v1::DATA_TYPE_FLOAT32));

    request.set_reduction(v1::REDUCTION_SUM);
    LOSS_CLIENT_ASSIGN_OR_RETURN(double sum,
                          EvaluateScalar(kSection, request, v1::DATA_TYPE_FLOAT32));
    // loss = -summation / n_total, in float32; the service's sum is already
    // negated.
    const float n_total = static_cast<float>(labels.size());
    AddValue(kSection,
             "-sum(y log p + (1-y) log(1-p)) / n (bce sum, client / n)", kLoss,
             static_cast<float>(sum) / n_total);
    return absl::OkStatus();
  }

  absl::Status Bce() {
    constexpr absl::string_view kSection = "2.6.2 Binary Cross Entropy Loss - PyTorch";
    // Document: print(probabilities), print(loss) -> tensor(0.6741, ...),
    // print(right_loss, wrong_loss) -> tensor(0.1643) tensor(15.0000).
    constexpr absl::string_view kProbabilities[] = {"0.5834", "0.5322", "0.5583",
                                                   "0.5573"};
    constexpr absl::string_view kLoss = "0.6741";
    constexpr absl::string_view kRightLoss = "0.1643";
    constexpr absl::string_view kWrongLoss = "15.0000";

    const Shape shape = {4, 1};
    TorchGenerator gen(42);
    LOSS_CLIENT_ASSIGN_OR_RETURN(std::vector<float> x, gen.Randn(shape));
    v1::ActivateRequest activate;
    activate.set_activation(v1::ACTIVATION_SIGMOID);
    *activate.mutable_input() = Float32Tensor(shape, x);
    LOSS_CLIENT_ASSIGN_OR_RETURN(v1::Tensor probabilities, Activate(kSection, activate));
    LOSS_CLIENT_ASSIGN_OR_RETURN(
        std::vector<double> p,
        FloatValues(probabilities, "output", shape, v1::DATA_TYPE_FLOAT32));
    AddValues(kSection, "sigmoid(randn(4, 1))", "", shape, kProbabilities, p);

    v1::EvaluateRequest request;
    request.mutable_bce();
    *request.mutable_input() = probabilities;
    *request.mutable_target() = Float32Tensor(shape, {1, 0, 1, 0});
    LOSS_CLIENT_RETURN_IF_ERROR(AddLoss(kSection, std::move(request),
                                 "BCELoss()(probabilities, targets=[1, 0, 1, 0])",
                                 kLoss, v1::DATA_TYPE_FLOAT32));

    const v1::Tensor labels = Float32Tensor({2}, {1.0f, 0.0f});
    const v1::Tensor predictions = Float32Tensor({2}, {0.9f, 0.2f});
    v1::EvaluateRequest right;
    right.mutable_bce();
    *right.mutable_input() = predictions;
    *right.mutable_target() = labels;
    LOSS_CLIENT_RETURN_IF_ERROR(AddLoss(kSection, std::move(right),
                                 "right: BCELoss()(predictions, labels)", kRightLoss,
                                 v1::DATA_TYPE_FLOAT32));
    // Swapped: log(0) is clamped to -100, so the loss is (10 + 20) / 2.
    v1::EvaluateRequest wrong;
    wrong.mutable_bce();
    *wrong.mutable_input() = labels;
    *wrong.mutable_target() = predictions;
    return AddLoss(kSection, std::move(wrong), "wrong: BCELoss()(labels, predictions)",
                   kWrongLoss, v1::DATA_TYPE_FLOAT32);
  }

  absl::Status BceWithLogits() {
    constexpr absl::string_view kSection = "2.6.3 BCE with Logits Loss";
    // Document: print(logits) -> tensor([ 2.1972, -1.3863], dtype=torch.float64);
    // loss -> tensor(0.1643).
    constexpr absl::string_view kLogits[] = {"2.1972", "-1.3863"};
    constexpr absl::string_view kLoss = "0.1643";

    // The document takes np.log(p / (1 - p)) in float64.
    v1::ActivateRequest activate;
    activate.set_activation(v1::ACTIVATION_LOGIT);
    *activate.mutable_input() = Float64Tensor({2}, {0.9, 0.2});
    LOSS_CLIENT_ASSIGN_OR_RETURN(v1::Tensor logits, Activate(kSection, activate));
    LOSS_CLIENT_ASSIGN_OR_RETURN(std::vector<double> values,
                          FloatValues(logits, "output", {2}, v1::DATA_TYPE_FLOAT64));
    AddValues(kSection, "logit([.9, .2]) (float64)", "", {2}, kLogits, values);

    v1::EvaluateRequest request;
    request.mutable_bce_with_logits();
    *request.mutable_input() = logits;                     // float64
    *request.mutable_target() = Float32Tensor({2}, {1, 0});  // float32 labels
    return AddLoss(kSection, std::move(request),
                   "BCEWithLogitsLoss()(logits, labels=[1, 0])", kLoss,
                   v1::DATA_TYPE_FLOAT64);
  }

  // 2.7.2, 2.7.3 and 2.8: softmax and log_softmax of [1.3863, 0, -0.6931].
  absl::Status SoftmaxAndLogSoftmax() {
    // Document 2.7.2: odds_ratios -> tensor([4.0000, 1.0000, 0.5000]),
    // softmaxed -> tensor([0.7273, 0.1818, 0.0909]).
    constexpr absl::string_view kOddsRatios[] = {"4.0000", "1.0000", "0.5000"};
    constexpr absl::string_view kSoftmax[] = {"0.7273", "0.1818", "0.0909"};
    // Document 2.8: torch.log(softmaxed), F.log_softmax and nn.LogSoftmax all
    // print tensor([-0.3185, -1.7048, -2.3979]).
    constexpr absl::string_view kLogSoftmax[] = {"-0.3185", "-1.7048", "-2.3979"};

    const Shape shape = {3};
    const std::vector<float> logits = {1.3863f, 0.0f, -0.6931f};

    // 2.7.2 is arithmetic the document does itself: torch.exp, then a
    // division by the sum. The client repeats it in float32; no service call.
    constexpr absl::string_view kManual = "2.7.2 Compute Softmax Manually";
    std::vector<float> odds;
    float odds_sum = 0.0f;
    for (float z : logits) {
      odds.push_back(std::exp(z));
      odds_sum += odds.back();
    }
    std::vector<double> odds_d(odds.begin(), odds.end());
    std::vector<double> manual;
    for (float o : odds) manual.push_back(o / odds_sum);
    AddValues(kManual, "exp(logits)", " (client: odds ratios, no service call)", shape,
              kOddsRatios, odds_d);
    AddValues(kManual, "odds_ratios / odds_ratios.sum()", " (client, no service call)",
              shape, kSoftmax, manual);

    constexpr absl::string_view kTorch = "2.7.3 Compute Softmax in PyTorch";
    v1::ActivateRequest request;
    request.set_activation(v1::ACTIVATION_SOFTMAX);
    request.set_dim(-1);
    *request.mutable_input() = Float32Tensor(shape, logits);
    LOSS_CLIENT_ASSIGN_OR_RETURN(v1::Tensor softmax, Activate(kTorch, request));
    LOSS_CLIENT_ASSIGN_OR_RETURN(std::vector<double> softmax_values,
                          FloatValues(softmax, "output", shape, v1::DATA_TYPE_FLOAT32));
    AddValues(kTorch, "nn.Softmax / F.softmax(logits, dim=-1)", "", shape, kSoftmax,
              softmax_values);

    constexpr absl::string_view kLog = "2.8 LogSoftmax";
    request.set_activation(v1::ACTIVATION_LOG_SOFTMAX);
    LOSS_CLIENT_ASSIGN_OR_RETURN(v1::Tensor log_softmax, Activate(kLog, request));
    LOSS_CLIENT_ASSIGN_OR_RETURN(
        std::vector<double> log_softmax_values,
        FloatValues(log_softmax, "output", shape, v1::DATA_TYPE_FLOAT32));
    AddValues(kLog, "F.log_softmax / nn.LogSoftmax(logits, dim=-1)", "", shape,
              kLogSoftmax, log_softmax_values);
    return absl::OkStatus();
  }

  absl::Status Nll() {
    constexpr absl::string_view kSection = "2.9 Negative Loglikelihood Loss";
    // Document: log_probs = F.log_softmax(torch.randn((5, 3)), dim=-1) after
    // manual_seed(11).
    constexpr absl::string_view kLogProbs[] = {
        "-1.5229", "-0.3146", "-2.9600",  //
        "-1.7934", "-1.0044", "-0.7607",  //
        "-1.2513", "-1.0136", "-1.0471",  //
        "-2.6799", "-0.2219", "-2.0367",  //
        "-1.0728", "-1.9098", "-0.6737"};
    // Document 2.9.1 -log_probs_cls.mean(), 2.9.2 F.nll_loss and nn.NLLLoss:
    // tensor(1.6553).
    constexpr absl::string_view kNll = "1.6553";
    // Document 2.9.3: nn.NLLLoss(weight=torch.tensor([1., 1., 2.])) -> tensor(1.7188).
    constexpr absl::string_view kWeighted = "1.7188";
    // Document 2.9.4: nn.NLLLoss(ignore_index=2) -> tensor(1.5599).
    constexpr absl::string_view kIgnored = "1.5599";

    const Shape shape = {5, 3};
    const std::vector<int64_t> labels = {0, 0, 1, 2, 1};
    TorchGenerator gen(11);
    LOSS_CLIENT_ASSIGN_OR_RETURN(std::vector<float> logits, gen.Randn(shape));
    v1::ActivateRequest activate;
    activate.set_activation(v1::ACTIVATION_LOG_SOFTMAX);
    activate.set_dim(-1);
    *activate.mutable_input() = Float32Tensor(shape, logits);
    LOSS_CLIENT_ASSIGN_OR_RETURN(v1::Tensor log_probs, Activate(kSection, activate));
    LOSS_CLIENT_ASSIGN_OR_RETURN(std::vector<double> lp,
                          FloatValues(log_probs, "output", shape, v1::DATA_TYPE_FLOAT32));
    AddValues(kSection, "log_probs", "", shape, kLogProbs, lp);

    // 2.9.1: gather the log-probability of each label and negate the mean.
    float gathered_sum = 0.0f;
    for (size_t i = 0; i < labels.size(); ++i) {
      gathered_sum += static_cast<float>(lp[i * 3 + static_cast<size_t>(labels[i])]);
    }
    AddValue("2.9.1 Manual Calculation",
             "-log_probs.gather(1, labels).mean() (client, of the service's log_probs)",
             kNll, -gathered_sum / static_cast<float>(labels.size()));

    v1::EvaluateRequest request;
    request.mutable_nll();
    *request.mutable_input() = log_probs;
    *request.mutable_target() = Int64Tensor({5}, labels);
    LOSS_CLIENT_RETURN_IF_ERROR(AddLoss("2.9.2 Using PyTorch", request,
                                 "F.nll_loss / nn.NLLLoss()(log_probs, labels)", kNll,
                                 v1::DATA_TYPE_FLOAT32));

    v1::EvaluateRequest weighted = request;
    *weighted.mutable_nll()->mutable_weight() = Float32Tensor({3}, {1.0f, 1.0f, 2.0f});
    LOSS_CLIENT_RETURN_IF_ERROR(AddLoss("2.9.3 Example of Using Weight", std::move(weighted),
                                 "NLLLoss(weight=[1, 1, 2])", kWeighted,
                                 v1::DATA_TYPE_FLOAT32));

    v1::EvaluateRequest ignored = request;
    ignored.mutable_nll()->set_ignore_index(2);
    return AddLoss("2.9.4 Example of Using ignore_index", std::move(ignored),
                   "NLLLoss(ignore_index=2)", kIgnored, v1::DATA_TYPE_FLOAT32);
  }

  // --- RPCs ---

  absl::StatusOr<v1::Tensor> Activate(absl::string_view section,
                                      const v1::ActivateRequest& request) {
    absl::StatusOr<v1::ActivateResponse> response = client_.Activate(request);
    if (!response.ok()) return InSection(response.status(), section, "Activate");
    return std::move(*response->mutable_output());
  }

  absl::StatusOr<double> EvaluateScalar(absl::string_view section,
                                        const v1::EvaluateRequest& request,
                                        v1::DataType dtype) {
    absl::StatusOr<v1::EvaluateResponse> response = client_.Evaluate(request);
    if (!response.ok()) return InSection(response.status(), section, "Evaluate");
    absl::StatusOr<std::vector<double>> loss =
        FloatValues(response->loss(), "loss", {}, dtype);
    if (!loss.ok()) return InSection(loss.status(), section, "Evaluate");
    return (*loss)[0];
  }

  absl::Status AddLoss(absl::string_view section, const v1::EvaluateRequest& request,
                       absl::string_view what, absl::string_view printed,
                       v1::DataType dtype) {
    LOSS_CLIENT_ASSIGN_OR_RETURN(double loss, EvaluateScalar(section, request, dtype));
    AddValue(section, what, printed, loss);
    return absl::OkStatus();
  }

  // --- rows ---

  void AddText(absl::string_view section, absl::string_view what,
               absl::string_view printed, std::string computed) {
    SeedRow row;
    row.section = std::string(section);
    row.what = std::string(what);
    row.document = std::string(printed);
    row.agrees = printed == computed;
    row.service = std::move(computed);
    report_.rows.push_back(std::move(row));
  }

  void AddValue(absl::string_view section, absl::string_view what,
                absl::string_view printed, double value) {
    SeedRow row;
    row.section = std::string(section);
    row.what = std::string(what);
    row.document = std::string(printed);
    row.service = FormatLike(value, printed);
    row.agrees = PrintedEqual(row.document, row.service);
    report_.rows.push_back(std::move(row));
  }

  // One row per element of a printed tensor, named "name[i, j]suffix".
  void AddValues(absl::string_view section, absl::string_view name,
                 absl::string_view suffix, const Shape& shape,
                 absl::Span<const absl::string_view> printed,
                 absl::Span<const double> values) {
    for (size_t i = 0; i < printed.size(); ++i) {
      const std::string what =
          absl::StrCat(name, IndexString(shape, static_cast<int64_t>(i)), suffix);
      if (i < values.size()) {
        AddValue(section, what, printed[i], values[i]);
      } else {
        AddText(section, what, printed[i], "(missing)");
      }
    }
  }

  inline static const Shape kShape35 = {3, 5};

  Client& client_;
  SeedReport report_;
};

}  // namespace

int SeedReport::num_agree() const {
  int n = 0;
  for (const SeedRow& row : rows) n += row.agrees ? 1 : 0;
  return n;
}

int SeedReport::num_differ() const {
  return static_cast<int>(rows.size()) - num_agree();
}

std::string FormatLike(double value, absl::string_view printed) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  const size_t dot = printed.find('.');
  const int decimals =
      dot == absl::string_view::npos ? 0 : static_cast<int>(printed.size() - dot - 1);
  std::string out = absl::StrFormat("%.*f", decimals, value);
  if (dot != absl::string_view::npos && decimals == 0) out += '.';
  return out;
}

bool PrintedEqual(absl::string_view a, absl::string_view b) {
  if (a == b) return true;
  // Compare without the sign when both print as zero.
  auto is_zero = [](absl::string_view s) {
    if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
    if (s.empty()) return false;
    for (char c : s) {
      if (c != '0' && c != '.') return false;
    }
    return true;
  };
  auto unsigned_part = [](absl::string_view s) {
    if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
    return s;
  };
  return is_zero(a) && is_zero(b) && unsigned_part(a) == unsigned_part(b);
}

absl::StatusOr<SeedReport> RunSeedExamples(Client& client) {
  return SeedWalk(client).Run();
}

}  // namespace lossservice
