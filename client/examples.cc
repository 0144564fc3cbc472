#include "client/examples.h"

#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace lossservice {

namespace {

using Json = nlohmann::json;

// The arguments of one example, by their torch.nn.functional names.
struct Args {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, double> numbers;
  std::map<std::string, bool> flags;
  std::string reduction = "mean";

  std::optional<TensorView> view(const std::string& name) const {
    auto it = tensors.find(name);
    if (it == tensors.end()) return std::nullopt;
    return it->second.view();
  }
  // A required tensor; an empty float32 scalar view when absent (the server
  // then names the field that is wrong).
  TensorView at(const std::string& name) const { return view(name).value_or(TensorView{}); }
  double number(const std::string& name, double fallback) const {
    auto it = numbers.find(name);
    return it == numbers.end() ? fallback : it->second;
  }
  bool flag(const std::string& name, bool fallback) const {
    auto it = flags.find(name);
    return it == flags.end() ? fallback : it->second;
  }
};

struct Example {
  std::string name, kind, loss, activation;
  std::vector<std::string> required;  // positional arguments, in order
  Args args;
  std::optional<Tensor> grad_output;
  Tensor expected_loss, expected_grad, expected_output;
  double atol = 0, rtol = 0;
};

absl::StatusOr<Tensor> ParseTensor(const Json& j, const std::string& what) {
  if (!j.is_object() || !j.contains("dtype") || !j.contains("shape") || !j.contains("values")) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not a {dtype, shape, values} tensor"));
  }
  const std::string dtype = j["dtype"].get<std::string>();
  Tensor t;
  for (const Json& d : j["shape"]) t.shape.push_back(d.get<int64_t>());
  const Json& values = j["values"];
  if (static_cast<int64_t>(values.size()) != NumElements(t.shape)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", values.size(), " values for shape ", ShapeString(t.shape)));
  }
  auto number = [](const Json& v) {
    if (v.is_string()) {
      const std::string s = v.get<std::string>();
      if (s == "nan") return std::nan("");
      return s == "-inf" ? -HUGE_VAL : HUGE_VAL;
    }
    return v.get<double>();
  };
  auto fill = [&]<typename T>(DType d) {
    t.dtype = d;
    t.bytes.resize(values.size() * sizeof(T));
    for (size_t i = 0; i < values.size(); ++i) {
      const T v = std::is_integral_v<T> ? static_cast<T>(values[i].get<int64_t>())
                                        : static_cast<T>(number(values[i]));
      std::memcpy(t.bytes.data() + i * sizeof(T), &v, sizeof(T));
    }
  };
  if (dtype == "float32") {
    fill.operator()<float>(DType::kFloat32);
  } else if (dtype == "float64") {
    fill.operator()<double>(DType::kFloat64);
  } else if (dtype == "int64") {
    fill.operator()<int64_t>(DType::kInt64);
  } else if (dtype == "int32") {
    fill.operator()<int32_t>(DType::kInt32);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(what, ": unknown dtype ", dtype));
  }
  return t;
}

absl::StatusOr<std::vector<Example>> ParseExamples(absl::string_view text) {
  std::vector<Example> out;
  try {
    const Json doc = Json::parse(text);
    for (const Json& c : doc.at("cases")) {
      Example e;
      e.name = c.at("name").get<std::string>();
      e.kind = c.at("kind").get<std::string>();
      if (e.kind == "loss") e.loss = c.at("loss").get<std::string>();
      if (e.kind == "activation") e.activation = c.at("activation").get<std::string>();
      e.required = c.at("required").get<std::vector<std::string>>();
      if (e.required.empty()) return absl::InvalidArgumentError(e.name + ": no required argument");
      for (const auto& [key, value] : c.at("args").items()) {
        const std::string what = absl::StrCat(e.name, ": ", key);
        if (value.is_object()) {
          absl::StatusOr<Tensor> t = ParseTensor(value, what);
          if (!t.ok()) return t.status();
          e.args.tensors[key] = *std::move(t);
        } else if (value.is_boolean()) {
          e.args.flags[key] = value.get<bool>();
        } else if (value.is_number()) {
          e.args.numbers[key] = value.get<double>();
        } else if (key == "reduction" && value.is_string()) {
          e.args.reduction = value.get<std::string>();
        } else {
          return absl::InvalidArgumentError(
              absl::StrCat(what, ": unexpected value ", value.dump()));
        }
      }
      auto tensor = [&](const char* key, Tensor& into) -> absl::Status {
        absl::StatusOr<Tensor> t = ParseTensor(c.at(key), absl::StrCat(e.name, ": ", key));
        if (!t.ok()) return t.status();
        into = *std::move(t);
        return absl::OkStatus();
      };
      absl::Status s;
      if (e.kind == "loss") {
        s.Update(tensor("expected_loss", e.expected_loss));
        s.Update(tensor("expected_grad", e.expected_grad));
        if (c.contains("grad_output")) {
          Tensor go;
          s.Update(tensor("grad_output", go));
          e.grad_output = std::move(go);
        }
      } else if (e.kind == "activation") {
        s.Update(tensor("expected_output", e.expected_output));
      } else {
        return absl::InvalidArgumentError(absl::StrCat(e.name, ": unknown kind ", e.kind));
      }
      if (!s.ok()) return s;
      e.atol = c.at("tolerance").at("atol").get<double>();
      e.rtol = c.at("tolerance").at("rtol").get<double>();
      out.push_back(std::move(e));
    }
  } catch (const Json::exception& ex) {
    return absl::InvalidArgumentError(absl::StrCat("examples: ", ex.what()));
  }
  return out;
}

absl::StatusOr<Reduction> ParseReduction(const std::string& name) {
  if (name == "mean") return Reduction::kMean;
  if (name == "sum") return Reduction::kSum;
  if (name == "none") return Reduction::kNone;
  if (name == "batchmean") return Reduction::kBatchMean;
  return absl::InvalidArgumentError(absl::StrCat("unknown reduction ", name));
}

using LossCall =
    std::function<absl::StatusOr<LossResult>(Client&, const Args&, const EvaluateOptions&)>;

// Each loss through its typed call, with the example's arguments.
const std::map<std::string, LossCall>& LossCalls() {
  static const auto* calls = new std::map<std::string, LossCall>{
      {"mse", [](Client& c, const Args& a,
                 const EvaluateOptions& o) { return c.MseLoss(a.at("input"), a.at("target"), o); }},
      {"l1", [](Client& c, const Args& a,
                const EvaluateOptions& o) { return c.L1Loss(a.at("input"), a.at("target"), o); }},
      {"rmse",
       [](Client& c, const Args& a, const EvaluateOptions& o) {
         return c.RmseLoss(a.at("input"), a.at("target"), {.eps = a.number("eps", 1e-7)}, o);
       }},
      {"huber",
       [](Client& c, const Args& a, const EvaluateOptions& o) {
         return c.HuberLoss(a.at("input"), a.at("target"), {.delta = a.number("delta", 1.0)}, o);
       }},
      {"smooth_l1",
       [](Client& c, const Args& a, const EvaluateOptions& o) {
         return c.SmoothL1Loss(a.at("input"), a.at("target"), {.beta = a.number("beta", 1.0)}, o);
       }},
      {"cross_entropy",
       [](Client& c, const Args& a, const EvaluateOptions& o) {
         return c.CrossEntropy(
             a.at("input"), a.at("target"),
             {.weight = a.view("weight"),
              .ignore_index = static_cast<int64_t>(a.number("ignore_index", -100)),
              .label_smoothing = a.number("label_smoothing", 0.0)},
             o);
       }},
      {"nll",
       [](Client& c, const Args& a, const EvaluateOptions& o) {
         return c.NllLoss(a.at("input"), a.at("target"),
                          {.weight = a.view("weight"),
                           .ignore_index = static_cast<int64_t>(a.number("ignore_index", -100))},
                          o);
       }},
      {"bce",
       [](Client& c, const Args& a, const EvaluateOptions& o) {
         return c.BinaryCrossEntropy(a.at("input"), a.at("target"), {.weight = a.view("weight")},
                                     o);
       }},
      {"bce_with_logits",
       [](Client& c, const Args& a, const EvaluateOptions& o) {
         return c.BinaryCrossEntropyWithLogits(
             a.at("input"), a.at("target"),
             {.weight = a.view("weight"), .pos_weight = a.view("pos_weight")}, o);
       }},
      {"kl_div",
       [](Client& c, const Args& a, const EvaluateOptions& o) {
         return c.KlDiv(a.at("input"), a.at("target"), {.log_target = a.flag("log_target", false)},
                        o);
       }},
      {"poisson_nll",
       [](Client& c, const Args& a, const EvaluateOptions& o) {
         return c.PoissonNllLoss(a.at("input"), a.at("target"),
                                 {.log_input = a.flag("log_input", true),
                                  .full = a.flag("full", false),
                                  .eps = a.number("eps", 1e-8)},
                                 o);
       }},
      {"gaussian_nll",
       [](Client& c, const Args& a, const EvaluateOptions& o) {
         GaussianNllOptions options;
         options.full = a.flag("full", false);
         options.eps = a.number("eps", 1e-6);
         return c.GaussianNllLoss(a.at("input"), a.at("target"), a.at("var"), options, o);
       }},
      {"soft_margin",
       [](Client& c, const Args& a, const EvaluateOptions& o) {
         return c.SoftMarginLoss(a.at("input"), a.at("target"), o);
       }},
      {"multilabel_soft_margin",
       [](Client& c, const Args& a, const EvaluateOptions& o) {
         return c.MultilabelSoftMarginLoss(a.at("input"), a.at("target"),
                                           {.weight = a.view("weight")}, o);
       }},
      {"multi_margin",
       [](Client& c, const Args& a, const EvaluateOptions& o) {
         return c.MultiMarginLoss(a.at("input"), a.at("target"),
                                  {.p = static_cast<int64_t>(a.number("p", 1)),
                                   .margin = a.number("margin", 1.0),
                                   .weight = a.view("weight")},
                                  o);
       }},
      {"multilabel_margin",
       [](Client& c, const Args& a, const EvaluateOptions& o) {
         return c.MultilabelMarginLoss(a.at("input"), a.at("target"), o);
       }},
      {"hinge_embedding",
       [](Client& c, const Args& a, const EvaluateOptions& o) {
         return c.HingeEmbeddingLoss(a.at("input"), a.at("target"),
                                     {.margin = a.number("margin", 1.0)}, o);
       }},
      {"margin_ranking",
       [](Client& c, const Args& a, const EvaluateOptions& o) {
         MarginRankingOptions options;
         options.margin = a.number("margin", 0.0);
         return c.MarginRankingLoss(a.at("input1"), a.at("input2"), a.at("target"), options, o);
       }},
      {"cosine_embedding",
       [](Client& c, const Args& a, const EvaluateOptions& o) {
         CosineEmbeddingOptions options;
         options.margin = a.number("margin", 0.0);
         return c.CosineEmbeddingLoss(a.at("input1"), a.at("input2"), a.at("target"), options, o);
       }},
      {"triplet_margin",
       [](Client& c, const Args& a, const EvaluateOptions& o) {
         TripletMarginOptions options;
         options.margin = a.number("margin", 1.0);
         options.p = a.number("p", 2.0);
         options.eps = a.number("eps", 1e-6);
         options.swap = a.flag("swap", false);
         return c.TripletMarginLoss(a.at("anchor"), a.at("positive"), a.at("negative"), options, o);
       }},
      {"ctc",
       [](Client& c, const Args& a, const EvaluateOptions& o) {
         CtcOptions options;
         options.blank = static_cast<int64_t>(a.number("blank", 0));
         options.zero_infinity = a.flag("zero_infinity", false);
         return c.CtcLoss(a.at("log_probs"), a.at("targets"), a.at("input_lengths"),
                          a.at("target_lengths"), options, o);
       }},
  };
  return *calls;
}

absl::StatusOr<Tensor> RunActivation(Client& c, const Example& e) {
  const TensorView input = e.args.at("input");
  if (e.activation == "sigmoid") return c.Sigmoid(input);
  if (e.activation == "softmax") {
    return c.Softmax(input, static_cast<int64_t>(e.args.number("dim", -1)));
  }
  if (e.activation == "log_softmax") {
    return c.LogSoftmax(input, static_cast<int64_t>(e.args.number("dim", -1)));
  }
  if (e.activation == "logit") {
    auto it = e.args.numbers.find("eps");
    return c.Logit(input,
                   it == e.args.numbers.end() ? std::nullopt : std::optional<double>(it->second));
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown activation ", e.activation));
}

// "2.318817" or "[2, 3] 0.07519809, 0.5354082, ...".
std::string Format(const std::vector<double>& v, absl::Span<const int64_t> shape) {
  auto one = [](double x) { return absl::StrFormat("%.7g", x); };
  if (shape.empty()) return v.empty() ? "(none)" : one(v[0]);
  std::vector<std::string> head;
  for (size_t i = 0; i < v.size() && i < 2; ++i) head.push_back(one(v[i]));
  return absl::StrCat(ShapeString(shape), " ", absl::StrJoin(head, ", "),
                      v.size() > 2 ? ", ..." : "");
}

bool Close(double got, double ref, double atol, double rtol) {
  if (std::isnan(ref) || std::isnan(got)) return std::isnan(ref) && std::isnan(got);
  if (std::isinf(ref) || std::isinf(got)) return got == ref;
  return std::fabs(got - ref) <= atol + rtol * std::fabs(ref);
}

ExampleRow Compare(const Example& e, const std::string& what, const Tensor& expected,
                   const absl::StatusOr<Tensor>& got, DType want_dtype) {
  ExampleRow row{.example = e.name, .what = what};
  const std::vector<double> ref = expected.ToDoubles();
  row.expected = Format(ref, expected.shape);
  if (!got.ok()) {
    row.service =
        absl::StrCat(absl::StatusCodeToString(got.status().code()), ": ", got.status().message());
    return row;
  }
  const std::vector<double> v = got->ToDoubles();
  row.service = Format(v, got->shape);
  if (got->dtype != want_dtype) {
    absl::StrAppend(&row.service, " (dtype ", DTypeName(got->dtype), ", want ",
                    DTypeName(want_dtype), ")");
    return row;
  }
  if (got->shape != expected.shape) return row;
  row.agrees = true;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!Close(v[i], ref[i], e.atol, e.rtol)) {
      row.agrees = false;
      absl::StrAppend(&row.service, " (element ", i, ": ", absl::StrFormat("%.9g", v[i]), " vs ",
                      absl::StrFormat("%.9g", ref[i]), ")");
      break;
    }
  }
  return row;
}

}  // namespace

int ExamplesReport::num_agree() const {
  int n = 0;
  for (const ExampleRow& row : rows) n += row.agrees ? 1 : 0;
  return n;
}

int ExamplesReport::num_differ() const { return static_cast<int>(rows.size()) - num_agree(); }

absl::Status CheckExamples(absl::string_view examples_json) {
  return ParseExamples(examples_json).status();
}

absl::StatusOr<ExamplesReport> RunExamples(Client& client, absl::string_view examples_json) {
  absl::StatusOr<std::vector<Example>> examples = ParseExamples(examples_json);
  if (!examples.ok()) return examples.status();
  absl::StatusOr<v1::ListLossesResponse> listed = client.ListLosses();
  if (!listed.ok()) return listed.status();

  std::set<std::string> offered, covered;
  for (const v1::LossInfo& info : listed->losses()) offered.insert(info.name());
  ExamplesReport report;
  for (const Example& e : *examples) {
    if (e.kind == "activation") {
      const DType dtype = e.args.at("input").dtype;
      report.rows.push_back(
          Compare(e, "output", e.expected_output, RunActivation(client, e), dtype));
      continue;
    }
    covered.insert(e.loss);
    if (!offered.contains(e.loss)) {
      report.not_listed.push_back(e.name);
      continue;
    }
    auto call = LossCalls().find(e.loss);
    absl::StatusOr<LossResult> result =
        absl::UnimplementedError(absl::StrCat("loss_client has no typed call for ", e.loss));
    absl::StatusOr<Reduction> reduction = ParseReduction(e.args.reduction);
    if (!reduction.ok()) {
      result = reduction.status();
    } else if (call != LossCalls().end()) {
      EvaluateOptions options{.reduction = *reduction, .grad = true};
      if (e.grad_output) options.grad_output = e.grad_output->view();
      result = call->second(client, e.args, options);
    }
    // The first required argument (input, input1, anchor or log_probs)
    // decides the dtype of the loss and the gradient.
    const DType dtype = e.args.at(e.required[0]).dtype;
    auto part = [&](bool grad) -> absl::StatusOr<Tensor> {
      if (!result.ok()) return result.status();
      if (!grad) return result->loss;
      if (!result->grad) return absl::InternalError("no gradient in the response");
      return *result->grad;
    };
    report.rows.push_back(Compare(e, "loss", e.expected_loss, part(false), dtype));
    report.rows.push_back(Compare(e, "grad", e.expected_grad, part(true), dtype));
  }
  for (const std::string& loss : offered) {
    if (!covered.contains(loss)) report.uncovered.push_back(loss);
  }
  return report;
}

}  // namespace lossservice
