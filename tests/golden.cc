#include "tests/golden.h"

#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

#ifndef LOSS_GOLDEN_DIR
#error "LOSS_GOLDEN_DIR must be defined (the absolute path of tests/golden)"
#endif

namespace lossservice::golden {
namespace {

using Json = nlohmann::json;

// Thrown inside the parser and turned into a status at the file level, so
// that the parsing code reads straight through.
struct ParseError {
  std::string message;
};

[[noreturn]] void Fail(std::string message) { throw ParseError{std::move(message)}; }

const Json& Field(const Json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end()) Fail(absl::StrCat("missing field \"", key, "\""));
  return *it;
}

std::string StringField(const Json& object, const char* key) {
  const Json& v = Field(object, key);
  if (!v.is_string()) Fail(absl::StrCat("field \"", key, "\" is not a string"));
  return v.get<std::string>();
}

int64_t IntValue(const Json& v, std::string_view what) {
  if (!v.is_number_integer()) Fail(absl::StrCat(std::string(what), " is not an integer: ", v.dump()));
  return v.get<int64_t>();
}

double DoubleValue(const Json& v, std::string_view what) {
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
    if (s == "inf") return std::numeric_limits<double>::infinity();
    if (s == "-inf") return -std::numeric_limits<double>::infinity();
  }
  Fail(absl::StrCat(std::string(what), " is not a number: ", v.dump()));
}

DType ParseDType(const std::string& name) {
  if (name == "float32") return DType::kFloat32;
  if (name == "float64") return DType::kFloat64;
  if (name == "int64") return DType::kInt64;
  if (name == "int32") return DType::kInt32;
  Fail(absl::StrCat("unknown dtype \"", name, "\""));
}

template <typename T>
void Store(Tensor& t, size_t i, T value) {
  std::memcpy(t.bytes.data() + i * sizeof(T), &value, sizeof(T));
}

Tensor ParseTensor(const Json& j, std::string_view field) {
  try {
    if (!j.is_object()) Fail("not an object");
    Tensor t;
    t.dtype = ParseDType(StringField(j, "dtype"));
    const Json& shape = Field(j, "shape");
    if (!shape.is_array()) Fail("shape is not an array");
    for (const Json& d : shape) {
      int64_t dim = IntValue(d, "a dimension");
      if (dim < 0) Fail("negative dimension");
      t.shape.push_back(dim);
    }
    const Json& values = Field(j, "values");
    if (!values.is_array()) Fail("values is not an array");
    const size_t n = static_cast<size_t>(NumElements(t.shape));
    if (values.size() != n) {
      Fail(absl::StrCat(values.size(), " values for shape ", ShapeString(t.shape)));
    }
    t.bytes.resize(n * DTypeSize(t.dtype));
    for (size_t i = 0; i < n; ++i) {
      switch (t.dtype) {
        case DType::kFloat32:
          Store(t, i, static_cast<float>(DoubleValue(values[i], "a value")));
          break;
        case DType::kFloat64:
          Store(t, i, DoubleValue(values[i], "a value"));
          break;
        case DType::kInt64:
          Store(t, i, IntValue(values[i], "a value"));
          break;
        case DType::kInt32: {
          int64_t v = IntValue(values[i], "a value");
          if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
            Fail(absl::StrCat("int32 value out of range: ", v));
          }
          Store(t, i, static_cast<int32_t>(v));
          break;
        }
      }
    }
    return t;
  } catch (const ParseError& e) {
    Fail(absl::StrCat("tensor \"", std::string(field), "\": ", e.message));
  }
}

std::optional<Tensor> OptionalTensor(const Json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::nullopt;
  return ParseTensor(*it, key);
}

GoldenCase ParseCase(const Json& j) {
  if (!j.is_object()) Fail("a case is not an object");
  GoldenCase c;
  c.name = StringField(j, "name");
  try {
    c.kind = StringField(j, "kind");
    if (c.kind != "loss" && c.kind != "activation") Fail(absl::StrCat("unknown kind ", c.kind));
    if (j.contains("expect_error")) c.expect_error = StringField(j, "expect_error");
    c.input = OptionalTensor(j, "input");
    if (!c.input) Fail("missing input");
    if (c.is_loss()) {
      c.loss = StringField(j, "loss");
      c.reduction = StringField(j, "reduction");
      const Json& grad = Field(j, "compute_grad");
      if (!grad.is_boolean()) Fail("compute_grad is not a boolean");
      c.compute_grad = grad.get<bool>();
      c.target = OptionalTensor(j, "target");
      c.grad_output = OptionalTensor(j, "grad_output");
      if (auto it = j.find("options"); it != j.end()) {
        const Json& o = *it;
        if (!o.is_object()) Fail("options is not an object");
        for (auto opt = o.begin(); opt != o.end(); ++opt) {
          const std::string& key = opt.key();
          const std::string what = absl::StrCat("options.", key);
          if (opt->is_object()) {
            c.options.tensors.emplace(key, ParseTensor(*opt, what.c_str()));
          } else if (opt->is_boolean()) {
            c.options.flags.emplace(key, opt->get<bool>());
          } else {
            c.options.numbers.emplace(key, DoubleValue(*opt, what));
          }
        }
      }
      c.expected_loss = OptionalTensor(j, "expected_loss");
      c.expected_grad = OptionalTensor(j, "expected_grad");
      if (!c.is_error() && !c.expected_loss) Fail("missing expected_loss");
      if (!c.is_error() && c.compute_grad && !c.expected_grad) Fail("missing expected_grad");
    } else {
      c.activation = StringField(j, "activation");
      if (j.contains("dim")) c.options.numbers["dim"] = static_cast<double>(IntValue(j["dim"], "dim"));
      if (j.contains("eps")) c.options.numbers["eps"] = DoubleValue(j["eps"], "eps");
      c.expected_output = OptionalTensor(j, "expected_output");
      if (!c.is_error() && !c.expected_output) Fail("missing expected_output");
    }
  } catch (const ParseError& e) {
    Fail(absl::StrCat("case \"", c.name, "\": ", e.message));
  }
  return c;
}

absl::StatusOr<Json> ReadJson(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open golden file ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  Json j = Json::parse(buffer.str(), /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::DataLossError(absl::StrCat("golden file ", path, " is not valid JSON"));
  }
  return j;
}

// A view of an owned tensor. An empty std::vector may have a null data
// pointer; point empty views at a dummy element instead, since a TensorView's
// `data` is documented as aligned storage.
TensorView ViewOf(const Tensor& t) {
  alignas(16) static const std::byte kEmpty[16] = {};
  TensorView v = t.view();
  if (v.data == nullptr) v.data = kEmpty;
  return v;
}

std::optional<TensorView> OptionalView(const std::optional<Tensor>& t) {
  if (!t) return std::nullopt;
  return ViewOf(*t);
}

std::string FormatDouble(double v) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

std::string IndexString(int64_t flat, absl::Span<const int64_t> shape) {
  std::vector<int64_t> index(shape.size());
  for (size_t k = shape.size(); k-- > 0;) {
    if (shape[k] == 0) break;
    index[k] = flat % shape[k];
    flat /= shape[k];
  }
  return absl::StrCat("[", absl::StrJoin(index, ", "), "]");
}

}  // namespace

void PrintTo(const GoldenCase& c, std::ostream* os) { *os << c.name; }

std::string GoldenPath(std::string_view file_name) {
  return absl::StrCat(LOSS_GOLDEN_DIR, "/", std::string(file_name));
}

absl::StatusOr<GoldenFile> LoadCases(const std::string& path) {
  absl::StatusOr<Json> json = ReadJson(path);
  if (!json.ok()) return json.status();
  GoldenFile file;
  try {
    const Json& j = *json;
    if (!j.is_object()) Fail("top level is not an object");
    file.generator = StringField(j, "generator");
    file.torch_version = StringField(j, "torch_version");
    const Json& cases = Field(j, "cases");
    if (!cases.is_array()) Fail("cases is not an array");
    file.cases.reserve(cases.size());
    for (const Json& c : cases) file.cases.push_back(ParseCase(c));
  } catch (const ParseError& e) {
    return absl::DataLossError(absl::StrCat(path, ": ", e.message));
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(absl::StrCat(path, ": ", e.what()));
  }
  return file;
}

absl::StatusOr<GoldenFile> LoadCoreCases() { return LoadCases(GoldenPath("core_cases.json")); }

absl::StatusOr<Tensor> ParseTensorJson(std::string_view json_text) {
  Json j = Json::parse(json_text, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("tensor JSON does not parse");
  try {
    return ParseTensor(j, "tensor");
  } catch (const ParseError& e) {
    return absl::InvalidArgumentError(e.message);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(e.what());
  }
}

absl::StatusOr<Reduction> ParseReduction(std::string_view name) {
  if (name == "mean") return Reduction::kMean;
  if (name == "sum") return Reduction::kSum;
  if (name == "none") return Reduction::kNone;
  if (name == "batchmean") return Reduction::kBatchMean;
  return absl::InvalidArgumentError(absl::StrCat("unknown reduction \"", std::string(name), "\""));
}

absl::StatusOr<Activation> ParseActivation(std::string_view name) {
  if (name == "sigmoid") return Activation::kSigmoid;
  if (name == "softmax") return Activation::kSoftmax;
  if (name == "log_softmax") return Activation::kLogSoftmax;
  if (name == "logit") return Activation::kLogit;
  return absl::InvalidArgumentError(absl::StrCat("unknown activation \"", std::string(name), "\""));
}

absl::StatusOr<LossRequest> BuildLossRequest(const GoldenCase& c) {
  if (!c.is_loss()) return absl::InvalidArgumentError(absl::StrCat(c.name, ": not a loss case"));
  if (!c.input) return absl::InvalidArgumentError(absl::StrCat(c.name, ": no input"));
  absl::StatusOr<Reduction> reduction = ParseReduction(c.reduction);
  if (!reduction.ok()) return reduction.status();

  LossRequest r;
  r.input = ViewOf(*c.input);
  r.target = OptionalView(c.target);
  r.reduction = *reduction;
  r.compute_grad = c.compute_grad;
  r.grad_output = OptionalView(c.grad_output);

  // Every option the options struct lists (OptionField), by its name.
  const CaseOptions& o = c.options;
  const auto fill = [&]<class Options>(Options opts) {
    ForEachOptionField<Options>([&](const auto& option) {
      auto& dst = opts.*option.member;
      using Member = std::decay_t<decltype(dst)>;
      const std::string name(option.name);
      if constexpr (std::is_same_v<Member, std::optional<TensorView>>) {
        if (const Tensor* t = o.tensor(name)) dst = ViewOf(*t);
      } else if constexpr (std::is_same_v<Member, bool>) {
        if (auto v = o.flag(name)) dst = *v;
      } else {
        if (auto v = o.number(name)) dst = static_cast<Member>(*v);
      }
    });
    r.options = opts;
  };
#define LOSSSERVICE_GOLDEN_OPTIONS_(name, Camel, number) \
  if (c.loss == #name) {                                 \
    fill(Camel##Options{});                              \
    return r;                                            \
  }
  LOSSSERVICE_FOR_EACH_LOSS(LOSSSERVICE_GOLDEN_OPTIONS_)
#undef LOSSSERVICE_GOLDEN_OPTIONS_
  return absl::InvalidArgumentError(
      absl::StrCat(c.name, ": the golden library does not know loss \"", c.loss, "\""));
}

absl::StatusOr<ActivationRequest> BuildActivationRequest(const GoldenCase& c) {
  if (!c.is_activation()) {
    return absl::InvalidArgumentError(absl::StrCat(c.name, ": not an activation case"));
  }
  if (!c.input) return absl::InvalidArgumentError(absl::StrCat(c.name, ": no input"));
  absl::StatusOr<Activation> activation = ParseActivation(c.activation);
  if (!activation.ok()) return activation.status();
  ActivationRequest r;
  r.activation = *activation;
  r.input = ViewOf(*c.input);
  if (auto dim = c.options.number("dim")) r.dim = static_cast<int64_t>(*dim);
  r.eps = c.options.number("eps");
  return r;
}

Tolerance ToleranceFor(DType dtype) {
  if (dtype == DType::kFloat32) return {1e-6, 1e-5};
  return {1e-12, 1e-10};
}

std::optional<std::string> CompareToReference(const Tensor& actual, const Tensor& expected,
                                              DType want_dtype) {
  if (actual.dtype != want_dtype) {
    return absl::StrCat("dtype ", std::string(DTypeName(actual.dtype)), ", want ",
                        std::string(DTypeName(want_dtype)));
  }
  if (!IsFloating(actual.dtype)) {
    return absl::StrCat("dtype ", std::string(DTypeName(actual.dtype)));
  }
  if (actual.shape != expected.shape) {
    return absl::StrCat("shape ", ShapeString(actual.shape), ", want ",
                        ShapeString(expected.shape));
  }
  const size_t want_bytes = static_cast<size_t>(actual.numel()) * DTypeSize(actual.dtype);
  if (actual.bytes.size() != want_bytes) {
    return absl::StrCat("holds ", actual.bytes.size(), " bytes for shape ",
                        ShapeString(actual.shape), ", want ", want_bytes);
  }
  const std::vector<double> got = actual.ToDoubles();
  const std::vector<double> ref = expected.ToDoubles();
  const Tolerance tol = ToleranceFor(want_dtype);
  int64_t mismatches = 0;
  int64_t first = -1;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double a = got[i];
    const double e = ref[i];
    bool ok;
    if (std::isnan(e) || std::isnan(a)) {
      ok = std::isnan(e) && std::isnan(a);
    } else if (std::isinf(e) || std::isinf(a)) {
      ok = a == e;
    } else {
      ok = std::fabs(a - e) <= tol.atol + tol.rtol * std::fabs(e);
    }
    if (!ok) {
      if (first < 0) first = static_cast<int64_t>(i);
      ++mismatches;
    }
  }
  if (mismatches == 0) return std::nullopt;
  const size_t f = static_cast<size_t>(first);
  return absl::StrCat(mismatches, " of ", ref.size(), " elements differ; first at ",
                      IndexString(first, actual.shape), " (flat ", first,
                      "): got ", FormatDouble(got[f]), ", want ", FormatDouble(ref[f]),
                      " (|diff| ", FormatDouble(std::fabs(got[f] - ref[f])), ", allowed ",
                      FormatDouble(tol.atol + tol.rtol * std::fabs(ref[f])), ")");
}

std::string DescribeTensor(const Tensor& t, size_t max_values) {
  std::string out = absl::StrCat(std::string(DTypeName(t.dtype)), ShapeString(t.shape), "{");
  if (t.bytes.size() == static_cast<size_t>(t.numel()) * DTypeSize(t.dtype)) {
    const std::vector<double> v = t.ToDoubles();
    for (size_t i = 0; i < v.size() && i < max_values; ++i) {
      absl::StrAppend(&out, i ? ", " : "", FormatDouble(v[i]));
    }
    if (v.size() > max_values) absl::StrAppend(&out, ", ...");
  } else {
    absl::StrAppend(&out, "<", t.bytes.size(), " bytes>");
  }
  return absl::StrCat(out, "}");
}

std::string SanitizeName(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (char ch : name) {
    const bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                       (ch >= '0' && ch <= '9');
    out.push_back(alnum ? ch : '_');
  }
  if (out.empty()) out = "_";
  return out;
}

absl::StatusOr<std::vector<RandnCase>> LoadRandnCases(const std::string& path) {
  absl::StatusOr<Json> json = ReadJson(path);
  if (!json.ok()) return json.status();
  std::vector<RandnCase> out;
  try {
    const Json& cases = Field(*json, "cases");
    if (!cases.is_array()) Fail("cases is not an array");
    for (const Json& jc : cases) {
      RandnCase c;
      c.seed = static_cast<uint64_t>(IntValue(Field(jc, "seed"), "seed"));
      for (const Json& jcall : Field(jc, "calls")) {
        RandnCall call;
        for (const Json& d : Field(jcall, "shape")) call.shape.push_back(IntValue(d, "dim"));
        for (const Json& v : Field(jcall, "values")) {
          call.values.push_back(static_cast<float>(DoubleValue(v, "value")));
        }
        if (static_cast<int64_t>(call.values.size()) != NumElements(call.shape)) {
          Fail(absl::StrCat("seed ", c.seed, ": ", call.values.size(), " values for shape ",
                            ShapeString(call.shape)));
        }
        c.calls.push_back(std::move(call));
      }
      out.push_back(std::move(c));
    }
  } catch (const ParseError& e) {
    return absl::DataLossError(absl::StrCat(path, ": ", e.message));
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(absl::StrCat(path, ": ", e.what()));
  }
  return out;
}

absl::StatusOr<std::vector<RandnCase>> LoadTorchRandn() {
  return LoadRandnCases(GoldenPath("torch_randn.json"));
}

}  // namespace lossservice::golden
