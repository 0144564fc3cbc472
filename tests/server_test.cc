// Integration tests: a real LossServer on 127.0.0.1:0, called over a real
// channel. Every golden case goes through the wire in both encodings.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/unknown_field_set.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "lossservice/v1/loss_service.grpc.pb.h"
#include "server/loss_server.h"
#include "server/tensor_codec.h"
#include "tests/golden.h"

namespace lossservice {
namespace {

using golden::GoldenCase;

// ---- proto builders --------------------------------------------------------

v1::Tensor ToProto(const Tensor& t, Encoding encoding) {
  v1::Tensor p;
  for (int64_t d : t.shape) p.add_shape(d);
  p.set_dtype(ToProto(t.dtype));
  if (encoding == Encoding::kRaw) {
    p.set_raw_data(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
    return p;
  }
  const int64_t n = t.numel();
  switch (t.dtype) {
    case DType::kFloat32:
      p.mutable_float_values()->Add(t.data_as<float>(), t.data_as<float>() + n);
      break;
    case DType::kFloat64:
      p.mutable_double_values()->Add(t.data_as<double>(), t.data_as<double>() + n);
      break;
    case DType::kInt64:
      p.mutable_int64_values()->Add(t.data_as<int64_t>(), t.data_as<int64_t>() + n);
      break;
    case DType::kInt32:
      p.mutable_int32_values()->Add(t.data_as<int32_t>(), t.data_as<int32_t>() + n);
      break;
  }
  return p;
}

v1::Tensor Floats(std::vector<int64_t> shape, std::vector<float> values) {
  v1::Tensor p;
  for (int64_t d : shape) p.add_shape(d);
  p.mutable_float_values()->Add(values.begin(), values.end());
  return p;
}

v1::Tensor Int64s(std::vector<int64_t> shape, std::vector<int64_t> values) {
  v1::Tensor p;
  for (int64_t d : shape) p.add_shape(d);
  p.mutable_int64_values()->Add(values.begin(), values.end());
  return p;
}

v1::Reduction ReductionOf(const std::string& name) {
  if (name == "sum") return v1::REDUCTION_SUM;
  if (name == "none") return v1::REDUCTION_NONE;
  if (name == "batchmean") return v1::REDUCTION_BATCHMEAN;
  return v1::REDUCTION_MEAN;
}

// The EvaluateRequest of a golden loss case.
v1::EvaluateRequest EvaluateRequestFor(const GoldenCase& c, Encoding e) {
  v1::EvaluateRequest q;
  q.set_request_id(c.name);
  if (c.input) *q.mutable_input() = ToProto(*c.input, e);
  if (c.target) *q.mutable_target() = ToProto(*c.target, e);
  if (c.grad_output) *q.mutable_grad_output() = ToProto(*c.grad_output, e);
  q.set_reduction(ReductionOf(c.reduction));
  q.set_compute_grad(c.compute_grad);
  // The loss message and its options, set by their proto field names.
  const google::protobuf::FieldDescriptor* loss_field =
      v1::EvaluateRequest::descriptor()->FindFieldByName(c.loss);
  if (loss_field == nullptr) {
    ADD_FAILURE() << "no loss field " << c.loss;
    return q;
  }
  google::protobuf::Message* loss = q.GetReflection()->MutableMessage(&q, loss_field);
  const google::protobuf::Reflection* reflection = loss->GetReflection();
  const auto field = [&](const std::string& name) {
    const google::protobuf::FieldDescriptor* f = loss->GetDescriptor()->FindFieldByName(name);
    if (f == nullptr) ADD_FAILURE() << c.loss << " has no option " << name;
    return f;
  };
  for (const auto& [name, t] : c.options.tensors) {
    if (const auto* f = field(name)) reflection->MutableMessage(loss, f)->CopyFrom(ToProto(t, e));
  }
  for (const auto& [name, v] : c.options.flags) {
    if (const auto* f = field(name)) reflection->SetBool(loss, f, v);
  }
  for (const auto& [name, v] : c.options.numbers) {
    const auto* f = field(name);
    if (f == nullptr) continue;
    if (f->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_INT64) {
      reflection->SetInt64(loss, f, static_cast<int64_t>(v));
    } else {
      reflection->SetDouble(loss, f, v);
    }
  }
  return q;
}

v1::ActivateRequest ActivateRequestFor(const GoldenCase& c, Encoding e) {
  v1::ActivateRequest q;
  if (c.activation == "sigmoid") q.set_activation(v1::ACTIVATION_SIGMOID);
  if (c.activation == "softmax") q.set_activation(v1::ACTIVATION_SOFTMAX);
  if (c.activation == "log_softmax") q.set_activation(v1::ACTIVATION_LOG_SOFTMAX);
  if (c.activation == "logit") q.set_activation(v1::ACTIVATION_LOGIT);
  *q.mutable_input() = ToProto(*c.input, e);
  if (auto dim = c.options.number("dim")) q.set_dim(static_cast<int64_t>(*dim));
  if (auto eps = c.options.number("eps")) q.set_eps(*eps);
  return q;
}

// A response tensor back as a core Tensor, checking it uses `encoding`.
Tensor FromProto(const v1::Tensor& p, Encoding encoding) {
  if (encoding == Encoding::kRaw) {
    EXPECT_EQ(p.float_values_size() + p.double_values_size(), 0) << "raw in, raw out";
  } else {
    EXPECT_TRUE(p.raw_data().empty()) << "typed in, typed out";
  }
  TensorDecoder decoder;
  absl::StatusOr<TensorView> view = decoder.Decode(p, "response");
  EXPECT_TRUE(view.ok()) << view.status();
  if (!view.ok()) return Tensor{};
  Tensor t{view->dtype, view->shape, {}};
  const size_t bytes = static_cast<size_t>(view->numel()) * DTypeSize(view->dtype);
  t.bytes.resize(bytes);
  if (bytes) std::memcpy(t.bytes.data(), view->data, bytes);
  return t;
}

// ---- fixture -------------------------------------------------------------------

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new LossServer({.address = "127.0.0.1:0", .max_message_mb = 4});
    ASSERT_TRUE(server_->Start().ok());
    channel_ = new std::shared_ptr<grpc::Channel>(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", server_->port()), grpc::InsecureChannelCredentials()));
  }
  static void TearDownTestSuite() {
    delete channel_;
    delete server_;
  }
  static std::unique_ptr<v1::LossService::Stub> Stub() {
    return v1::LossService::NewStub(*channel_);
  }

  grpc::Status Evaluate(const v1::EvaluateRequest& q, v1::EvaluateResponse* r) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return Stub()->Evaluate(&context, q, r);
  }
  grpc::Status Activate(const v1::ActivateRequest& q, v1::ActivateResponse* r) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return Stub()->Activate(&context, q, r);
  }
  // The status of evaluating `q`; the response must be empty on failure.
  grpc::Status EvaluateStatus(const v1::EvaluateRequest& q) {
    v1::EvaluateResponse r;
    grpc::Status s = Evaluate(q, &r);
    if (!s.ok()) {
      EXPECT_FALSE(r.has_loss());
    }
    return s;
  }

  static LossServer* server_;
  static std::shared_ptr<grpc::Channel>* channel_;
};

LossServer* ServerTest::server_ = nullptr;
std::shared_ptr<grpc::Channel>* ServerTest::channel_ = nullptr;

// ---- every golden case, both encodings ----------------------------------------------

const std::vector<GoldenCase>& Cases() {
  static const auto* cases = [] {
    absl::StatusOr<golden::GoldenFile> file = golden::LoadCoreCases();
    if (!file.ok()) {
      ADD_FAILURE() << file.status();
      return new std::vector<GoldenCase>();
    }
    return new std::vector<GoldenCase>(std::move(file->cases));
  }();
  return *cases;
}

class GoldenOverWire : public ServerTest,
                       public ::testing::WithParamInterface<std::tuple<size_t, Encoding>> {};

TEST_P(GoldenOverWire, MatchesPyTorch) {
  const GoldenCase& c = Cases()[std::get<0>(GetParam())];
  const Encoding e = std::get<1>(GetParam());
  SCOPED_TRACE(c.name);
  if (c.is_activation()) {
    v1::ActivateResponse r;
    grpc::Status s = Activate(ActivateRequestFor(c, e), &r);
    if (c.is_error()) {
      EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
      return;
    }
    ASSERT_TRUE(s.ok()) << s.error_message();
    const auto mismatch =
        golden::CompareToReference(FromProto(r.output(), e), *c.expected_output, c.input->dtype);
    EXPECT_FALSE(mismatch) << *mismatch;
    return;
  }
  v1::EvaluateResponse r;
  grpc::Status s = Evaluate(EvaluateRequestFor(c, e), &r);
  if (c.is_error()) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    EXPECT_FALSE(s.error_message().empty());
    return;
  }
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(r.request_id(), c.name);
  // An empty input carries no encoding; the target's (if any values) decides.
  const bool has_raw = c.input->numel() > 0 || (c.target && c.target->numel() > 0);
  const Encoding expect = e == Encoding::kRaw && has_raw ? Encoding::kRaw : Encoding::kTyped;
  const auto loss_mismatch =
      golden::CompareToReference(FromProto(r.loss(), expect), *c.expected_loss, c.input->dtype);
  EXPECT_FALSE(loss_mismatch) << "loss: " << *loss_mismatch;
  if (c.compute_grad) {
    const auto grad_mismatch =
        golden::CompareToReference(FromProto(r.grad(), expect), *c.expected_grad, c.input->dtype);
    EXPECT_FALSE(grad_mismatch) << "grad: " << *grad_mismatch;
  } else {
    EXPECT_FALSE(r.has_grad());
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllCases, GoldenOverWire,
    ::testing::Combine(::testing::Range<size_t>(0, Cases().size()),
                       ::testing::Values(Encoding::kTyped, Encoding::kRaw)),
    [](const ::testing::TestParamInfo<std::tuple<size_t, Encoding>>& info) {
      return absl::StrCat(golden::SanitizeName(Cases()[std::get<0>(info.param)].name), "_",
                          std::get<1>(info.param) == Encoding::kRaw ? "raw" : "typed", "_",
                          std::get<0>(info.param));
    });

// ---- bad input: exact codes and messages --------------------------------------------------

v1::EvaluateRequest Mse(v1::Tensor input, v1::Tensor target) {
  v1::EvaluateRequest q;
  *q.mutable_input() = std::move(input);
  *q.mutable_target() = std::move(target);
  q.mutable_mse();
  return q;
}

TEST_F(ServerTest, ShapeMismatchNamesBothShapes) {
  grpc::Status s = EvaluateStatus(Mse(Floats({2, 3}, {1, 2, 3, 4, 5, 6}), Floats({3, 2}, {1, 2, 3, 4, 5, 6})));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("target has shape [3, 2]"), std::string::npos) << s.error_message();
  EXPECT_NE(s.error_message().find("input [2, 3]"), std::string::npos) << s.error_message();
  EXPECT_EQ(s.error_message().find("squeeze"), std::string::npos) << s.error_message();
}

TEST_F(ServerTest, NBy1AgainstNSuggestsSqueeze) {
  grpc::Status s = EvaluateStatus(Mse(Floats({3, 1}, {1, 2, 3}), Floats({3}, {1, 2, 3})));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("[3, 1]"), std::string::npos) << s.error_message();
  EXPECT_NE(s.error_message().find("[3]"), std::string::npos) << s.error_message();
  EXPECT_NE(s.error_message().find("squeeze"), std::string::npos) << s.error_message();
}

TEST_F(ServerTest, ElementCountMustMatchShape) {
  grpc::Status s = EvaluateStatus(Mse(Floats({2, 3}, {1, 2, 3, 4, 5}), Floats({2, 3}, {1, 2, 3, 4, 5, 6})));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "input: float_values holds 5 values but shape [2, 3] needs 6");
}

TEST_F(ServerTest, RawDataSizeMustMatchShape) {
  v1::Tensor input;
  input.add_shape(2);
  input.set_dtype(v1::DATA_TYPE_FLOAT64);
  input.set_raw_data(std::string(12, '\0'));
  grpc::Status s = EvaluateStatus(Mse(input, Floats({2}, {1, 2})));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "input: raw_data has 12 bytes but shape [2] of float64 needs 16");
}

TEST_F(ServerTest, RawDataNeedsDtype) {
  v1::Tensor input;
  input.add_shape(1);
  input.set_raw_data(std::string(4, '\0'));
  EXPECT_EQ(EvaluateStatus(Mse(input, Floats({1}, {1}))).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ServerTest, MoreThanOneValueField) {
  v1::Tensor input = Floats({1}, {1});
  input.add_double_values(1);
  grpc::Status s = EvaluateStatus(Mse(input, Floats({1}, {1})));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("float_values, double_values"), std::string::npos);
}

TEST_F(ServerTest, DtypeMustAgreeWithField) {
  v1::Tensor input = Floats({1}, {1});
  input.set_dtype(v1::DATA_TYPE_FLOAT64);
  EXPECT_EQ(EvaluateStatus(Mse(input, Floats({1}, {1}))).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ServerTest, NegativeDimensionAndUnknownEnums) {
  v1::Tensor negative = Floats({}, {1});
  negative.add_shape(-1);
  EXPECT_EQ(EvaluateStatus(Mse(negative, Floats({1}, {1}))).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  v1::Tensor bad_dtype = Floats({1}, {1});
  bad_dtype.set_dtype(static_cast<v1::DataType>(42));
  EXPECT_EQ(EvaluateStatus(Mse(bad_dtype, Floats({1}, {1}))).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  v1::EvaluateRequest q = Mse(Floats({1}, {1}), Floats({1}, {1}));
  q.set_reduction(static_cast<v1::Reduction>(-3));
  grpc::Status s = EvaluateStatus(q);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "reduction: unknown value -3");
}

// An empty tensor whose other dimensions are huge would size loops and
// outputs by them; it is refused at once.
TEST_F(ServerTest, HugeEmptyShapesAreRefused) {
  v1::Tensor huge;
  huge.add_shape(int64_t{1} << 40);
  huge.add_shape(0);
  huge.set_dtype(v1::DATA_TYPE_FLOAT32);
  v1::ActivateRequest a;
  a.set_activation(v1::ACTIVATION_SOFTMAX);
  a.set_dim(1);
  *a.mutable_input() = huge;
  v1::ActivateResponse ar;
  grpc::Status s = Activate(a, &ar);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(),
            "input: shape [1099511627776, 0] is too large (its non-zero dimensions multiply to "
            "more than 2^31)");
  v1::EvaluateRequest q;
  *q.mutable_input() = huge;
  *q.mutable_target() = huge;
  q.mutable_multilabel_soft_margin();
  q.set_reduction(v1::REDUCTION_NONE);
  EXPECT_EQ(EvaluateStatus(q).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // A modest empty tensor is fine.
  v1::Tensor empty;
  empty.add_shape(4);
  empty.add_shape(0);
  empty.set_dtype(v1::DATA_TYPE_FLOAT32);
  *q.mutable_input() = empty;
  *q.mutable_target() = empty;
  v1::EvaluateResponse r;
  ASSERT_TRUE(Evaluate(q, &r).ok());
  EXPECT_EQ(r.loss().shape_size(), 1);
  EXPECT_EQ(r.loss().shape(0), 4);
}

// A CTC batch whose alignment tables would take minutes to fill is refused
// before any work, although each sample alone is allowed.
TEST_F(ServerTest, CtcWorkOverTheRequestBudgetIsResourceExhausted) {
  constexpr int kT = 4096, kN = 80, kC = 2, kS = 4095;
  v1::EvaluateRequest q;
  q.mutable_input()->add_shape(kT);
  q.mutable_input()->add_shape(kN);
  q.mutable_input()->add_shape(kC);
  q.mutable_input()->mutable_float_values()->Resize(kT * kN * kC, std::log(0.5f));
  q.mutable_target()->add_shape(kN);
  q.mutable_target()->add_shape(kS);
  q.mutable_target()->mutable_int32_values()->Resize(kN * kS, 1);
  auto* ctc = q.mutable_ctc();
  ctc->mutable_input_lengths()->add_shape(kN);
  ctc->mutable_input_lengths()->mutable_int64_values()->Resize(kN, kT);
  ctc->mutable_target_lengths()->add_shape(kN);
  ctc->mutable_target_lengths()->mutable_int64_values()->Resize(kN, kS);
  grpc::Status s = EvaluateStatus(q);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(s.error_message().find("over the limit of 1073741824 per request; split the batch"),
            std::string::npos)
      << s.error_message();
}

// multilabel_margin's work is quadratic in C: one sample of 2^18 classes,
// half of them labels, is refused before any work.
TEST_F(ServerTest, MultilabelMarginOverTheRequestBudgetIsResourceExhausted) {
  constexpr int kC = 1 << 18;
  v1::EvaluateRequest q;
  q.mutable_input()->add_shape(kC);
  q.mutable_input()->mutable_float_values()->Resize(kC, 0.5f);
  q.mutable_target()->add_shape(kC);
  auto* labels = q.mutable_target()->mutable_int32_values();
  labels->Resize(kC, -1);
  for (int c = 0; c < kC / 2; ++c) labels->Set(c, c);
  q.mutable_multilabel_margin();
  grpc::Status s = EvaluateStatus(q);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(s.error_message().find("over the limit of 2147483648 per request"), std::string::npos)
      << s.error_message();
}

TEST_F(ServerTest, EmptyTensorMustSetDtype) {
  v1::Tensor empty;
  empty.add_shape(0);
  grpc::Status s = EvaluateStatus(Mse(empty, Floats({0}, {})));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "input: an empty tensor (shape [0]) must set dtype");
}

TEST_F(ServerTest, IntegerInputIsRefused) {
  grpc::Status s = EvaluateStatus(Mse(Int64s({2}, {1, 2}), Floats({2}, {1, 2})));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "input must be FLOAT32 or FLOAT64, got int64 [2]");
}

TEST_F(ServerTest, ClassIndexOutOfRange) {
  v1::EvaluateRequest q;
  *q.mutable_input() = Floats({2, 3}, {1, 2, 3, 4, 5, 6});
  *q.mutable_target() = Int64s({2}, {0, 3});
  q.mutable_cross_entropy();
  grpc::Status s = EvaluateStatus(q);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("class index 3 at flat position 1 is out of range for 3 classes"),
            std::string::npos)
      << s.error_message();
  q.clear_cross_entropy();
  q.mutable_nll();
  *q.mutable_target() = Int64s({2}, {-1, 0});
  EXPECT_EQ(EvaluateStatus(q).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ServerTest, FloatClassTargetOfWrongShape) {
  v1::EvaluateRequest q;
  *q.mutable_input() = Floats({2, 3}, {1, 2, 3, 4, 5, 6});
  *q.mutable_target() = Floats({2}, {0, 1});
  q.mutable_nll();
  grpc::Status s = EvaluateStatus(q);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "target must hold class indices (INT64 or INT32), got float32 [2]");
}

TEST_F(ServerTest, WeightOfWrongLength) {
  v1::EvaluateRequest q;
  *q.mutable_input() = Floats({2, 3}, {1, 2, 3, 4, 5, 6});
  *q.mutable_target() = Int64s({2}, {0, 2});
  *q.mutable_cross_entropy()->mutable_weight() = Floats({2}, {1, 2});
  grpc::Status s = EvaluateStatus(q);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(),
            "cross_entropy.weight must have one value per class: shape [3], got [2]");
}

TEST_F(ServerTest, NoLossSet) {
  v1::EvaluateRequest q = Mse(Floats({1}, {1}), Floats({1}, {1}));
  q.clear_mse();
  grpc::Status s = EvaluateStatus(q);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message().rfind("loss: no loss set; set one of mse, l1, rmse,", 0), 0u)
      << s.error_message();
}

TEST_F(ServerTest, MissingInput) {
  v1::EvaluateRequest q = Mse(Floats({1}, {1}), Floats({1}, {1}));
  q.clear_input();
  grpc::Status s = EvaluateStatus(q);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "input is required");
}

TEST_F(ServerTest, ReductionNotAllowed) {
  v1::EvaluateRequest q = Mse(Floats({2}, {1, 2}), Floats({2}, {1, 3}));
  q.mutable_rmse();
  q.set_reduction(v1::REDUCTION_SUM);
  grpc::Status s = EvaluateStatus(q);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "reduction sum is not allowed for rmse; allowed: mean");
  q = Mse(Floats({2}, {1, 2}), Floats({2}, {1, 3}));
  q.set_reduction(v1::REDUCTION_BATCHMEAN);
  EXPECT_EQ(EvaluateStatus(q).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ServerTest, BceInputOutsideUnitInterval) {
  v1::EvaluateRequest q;
  *q.mutable_input() = Floats({3}, {0.5f, 1.5f, 0.2f});
  *q.mutable_target() = Floats({3}, {1, 0, 1});
  q.mutable_bce();
  grpc::Status s = EvaluateStatus(q);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("input: bce needs probabilities in [0, 1]; input [3] has 1.5 "
                                   "at flat position 1"),
            std::string::npos)
      << s.error_message();
  *q.mutable_input() = Floats({3}, {0.5f, 0.5f, 0.2f});
  *q.mutable_target() = Floats({3}, {1, -0.5f, 1});
  EXPECT_EQ(EvaluateStatus(q).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ServerTest, GradOutputMustBeShapedLikeTheLoss) {
  v1::EvaluateRequest q = Mse(Floats({2}, {1, 2}), Floats({2}, {1, 3}));
  q.set_compute_grad(true);
  *q.mutable_grad_output() = Floats({2}, {1, 1});
  grpc::Status s = EvaluateStatus(q);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(),
            "size mismatch: grad_output has shape [2] but must be [] to match the loss");
}

TEST_F(ServerTest, RequestOverTheSizeLimit) {
  // The fixture's server takes at most 4 MiB.
  v1::EvaluateRequest q = Mse(Floats({}, {}), Floats({}, {}));
  q.mutable_input()->add_shape(1 << 20);
  q.mutable_input()->mutable_float_values()->Resize(1 << 20, 1.0f);
  *q.mutable_target() = q.input();
  EXPECT_EQ(EvaluateStatus(q).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  // And it keeps serving.
  v1::EvaluateResponse r;
  ASSERT_TRUE(Evaluate(Mse(Floats({1}, {3}), Floats({1}, {1})), &r).ok());
  ASSERT_EQ(r.loss().float_values_size(), 1);
  EXPECT_EQ(r.loss().float_values(0), 4.0f);
}

TEST_F(ServerTest, UnparsableBytesAreRefusedAndServingGoesOn) {
  grpc::GenericStub stub(*channel_);
  grpc::ClientContext context;
  // Field 1 (input) as a length-delimited value that runs past the end.
  const char garbage[] = "\x0a\x7f\x01";
  grpc::Slice slice(garbage, 3);
  grpc::ByteBuffer request(&slice, 1), response;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&context, "/lossservice.v1.LossService/Evaluate", grpc::StubOptions(), &request,
                 &response, [&](grpc::Status s) {
                   std::lock_guard<std::mutex> lock(mu);
                   status = std::move(s);
                   done = true;
                   cv.notify_one();
                 });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
  // gRPC refuses the bytes before our code runs; 1.51's callback server
  // answers UNIMPLEMENTED for a request that does not parse.
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  v1::EvaluateResponse r;
  EXPECT_TRUE(Evaluate(Mse(Floats({1}, {3}), Floats({1}, {1})), &r).ok());
}

TEST_F(ServerTest, RequestIdIsEchoed) {
  v1::EvaluateRequest q = Mse(Floats({2}, {1, 2}), Floats({2}, {1, 3}));
  q.set_request_id("abc-123");
  v1::EvaluateResponse r;
  ASSERT_TRUE(Evaluate(q, &r).ok());
  EXPECT_EQ(r.request_id(), "abc-123");
  EXPECT_EQ(r.loss().dtype(), v1::DATA_TYPE_FLOAT32);
  EXPECT_EQ(r.loss().shape_size(), 0);
  ASSERT_EQ(r.loss().float_values_size(), 1);
  EXPECT_EQ(r.loss().float_values(0), 0.5f);
}

TEST_F(ServerTest, ActivateRejectsBadRequests) {
  v1::ActivateRequest q;
  *q.mutable_input() = Floats({2}, {1, 2});
  v1::ActivateResponse r;
  grpc::Status s = Activate(q, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  q.set_activation(v1::ACTIVATION_SOFTMAX);
  q.set_dim(1);
  s = Activate(q, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "dim 1 is out of range for input [2] (valid: -1 to 0)");
}

// ---- EvaluateStream ----------------------------------------------------------------------

TEST_F(ServerTest, StreamAnswersInOrderAndSurvivesABadItem) {
  grpc::ClientContext context;
  auto stub = Stub();
  auto stream = stub->EvaluateStream(&context);
  v1::EvaluateRequest good = Mse(Floats({2}, {1, 2}), Floats({2}, {1, 4}));
  v1::EvaluateRequest bad = Mse(Floats({2}, {1, 2}), Floats({3}, {1, 2, 3}));
  good.set_request_id("first");
  bad.set_request_id("second");
  ASSERT_TRUE(stream->Write(good));
  ASSERT_TRUE(stream->Write(bad));
  good.set_request_id("third");
  good.set_reduction(v1::REDUCTION_SUM);
  ASSERT_TRUE(stream->Write(good));
  ASSERT_TRUE(stream->WritesDone());
  std::vector<v1::EvaluateStreamResponse> responses;
  v1::EvaluateStreamResponse r;
  while (stream->Read(&r)) responses.push_back(r);
  ASSERT_TRUE(stream->Finish().ok());
  ASSERT_EQ(responses.size(), 3u);
  ASSERT_TRUE(responses[0].has_response());
  EXPECT_EQ(responses[0].response().request_id(), "first");
  EXPECT_EQ(responses[0].response().loss().float_values(0), 2.0f);
  ASSERT_TRUE(responses[1].has_error());
  EXPECT_EQ(responses[1].error().code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_EQ(responses[1].error().request_id(), "second");
  EXPECT_NE(responses[1].error().message().find("[3]"), std::string::npos);
  ASSERT_TRUE(responses[2].has_response());
  EXPECT_EQ(responses[2].response().request_id(), "third");
  EXPECT_EQ(responses[2].response().loss().float_values(0), 4.0f);
}

// ---- ListLosses ------------------------------------------------------------------------------

TEST_F(ServerTest, ListLossesCoversTheWholeOneof) {
  grpc::ClientContext context;
  v1::ListLossesResponse r;
  ASSERT_TRUE(Stub()->ListLosses(&context, v1::ListLossesRequest(), &r).ok());
  const auto* oneof = v1::EvaluateRequest::descriptor()->FindOneofByName("loss");
  ASSERT_EQ(r.losses_size(), oneof->field_count());
  for (int i = 0; i < oneof->field_count(); ++i) {
    const auto* field = oneof->field(i);
    EXPECT_EQ(r.losses(i).name(), field->name());
    EXPECT_EQ(r.losses(i).field_number(), field->number());
    EXPECT_FALSE(r.losses(i).input().empty());
    EXPECT_FALSE(r.losses(i).target().empty());
    EXPECT_FALSE(r.losses(i).reductions().empty());
  }
}

// What ListLosses says is what Evaluate does, for every loss: each listed
// reduction is accepted and every other one refused, the gradient comes back
// when asked, and an integer input is refused.
TEST_F(ServerTest, ListLossesIsTruthful) {
  grpc::ClientContext context;
  v1::ListLossesResponse list;
  ASSERT_TRUE(Stub()->ListLosses(&context, v1::ListLossesRequest(), &list).ok());
  for (const v1::LossInfo& info : list.losses()) {
    SCOPED_TRACE(info.name());
    EXPECT_TRUE(info.has_grad());
    // A valid request for this loss: its first golden case that succeeds.
    const GoldenCase* valid = nullptr;
    for (const GoldenCase& c : Cases()) {
      if (c.is_loss() && !c.is_error() && c.loss == info.name() && c.input->numel() > 0) {
        valid = &c;
        break;
      }
    }
    ASSERT_NE(valid, nullptr) << "no golden case for " << info.name();
    v1::EvaluateRequest q = EvaluateRequestFor(*valid, Encoding::kTyped);
    q.clear_grad_output();
    q.set_compute_grad(true);
    for (int r = v1::REDUCTION_UNSPECIFIED; r <= v1::REDUCTION_BATCHMEAN; ++r) {
      q.set_reduction(static_cast<v1::Reduction>(r));
      const v1::Reduction effective = r == v1::REDUCTION_UNSPECIFIED ? v1::REDUCTION_MEAN
                                                                    : static_cast<v1::Reduction>(r);
      const bool listed = std::find(info.reductions().begin(), info.reductions().end(),
                                    effective) != info.reductions().end();
      v1::EvaluateResponse response;
      const grpc::Status s = Evaluate(q, &response);
      if (listed) {
        EXPECT_TRUE(s.ok()) << v1::Reduction_Name(effective) << ": " << s.error_message();
        EXPECT_TRUE(response.has_grad());
        EXPECT_EQ(response.grad().float_values_size() + response.grad().double_values_size(),
                  valid->input->numel());
      } else {
        EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << v1::Reduction_Name(effective);
      }
    }
    // Integer input is refused by every loss.
    v1::EvaluateRequest int_input = EvaluateRequestFor(*valid, Encoding::kTyped);
    v1::Tensor* input = int_input.mutable_input();
    const int64_t n = valid->input->numel();
    input->clear_float_values();
    input->clear_double_values();
    input->set_dtype(v1::DATA_TYPE_INT64);
    input->mutable_int64_values()->Resize(static_cast<int>(n), 0);
    EXPECT_EQ(EvaluateStatus(int_input).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
}

TEST_F(ServerTest, TripletMarginRefusesATarget) {
  v1::EvaluateRequest q;
  *q.mutable_input() = Floats({2, 2}, {1, 2, 3, 4});
  *q.mutable_target() = Floats({2}, {1, 1});
  auto* t = q.mutable_triplet_margin();
  *t->mutable_positive() = Floats({2, 2}, {1, 2, 3, 4});
  *t->mutable_negative() = Floats({2, 2}, {0, 2, 3, 5});
  grpc::Status s = EvaluateStatus(q);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("target"), std::string::npos) << s.error_message();
  q.clear_target();
  v1::EvaluateResponse r;
  EXPECT_TRUE(Evaluate(q, &r).ok());
}

// ---- health and reflection -------------------------------------------------------------------

// Calls a unary method with raw bytes and waits for the answer.
grpc::Status RawUnary(grpc::Channel& channel, const std::string& method, const std::string& in,
                      std::string* out) {
  grpc::GenericStub stub(std::shared_ptr<grpc::Channel>(&channel, [](grpc::Channel*) {}));
  grpc::ClientContext context;
  grpc::Slice slice(in);
  grpc::ByteBuffer request(&slice, 1), response;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
    std::lock_guard<std::mutex> lock(mu);
    status = std::move(s);
    done = true;
    cv.notify_one();
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
  std::vector<grpc::Slice> slices;
  if (status.ok() && response.Dump(&slices).ok()) {
    for (const grpc::Slice& s : slices) out->append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return status;
}

TEST_F(ServerTest, HealthIsServing) {
  std::string bytes;
  // HealthCheckRequest{service: ""} is the empty message.
  ASSERT_TRUE(RawUnary(**channel_, "/grpc.health.v1.Health/Check", "", &bytes).ok());
  google::protobuf::UnknownFieldSet fields;
  ASSERT_TRUE(fields.ParseFromString(bytes));
  ASSERT_EQ(fields.field_count(), 1);
  EXPECT_EQ(fields.field(0).number(), 1);       // status
  EXPECT_EQ(fields.field(0).varint(), 1u);      // SERVING
}

TEST_F(ServerTest, ReflectionListsTheService) {
  grpc::GenericStub stub(*channel_);
  grpc::ClientContext context;
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(&context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                               &cq);
  void* tag;
  bool ok;
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  // ServerReflectionRequest{list_services: ""}: field 7, length 0.
  grpc::Slice slice(std::string("\x3a\x00", 2));
  grpc::ByteBuffer request(&slice, 1), response;
  call->Write(request, reinterpret_cast<void*>(2));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  call->Read(&response, reinterpret_cast<void*>(3));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  call->WritesDone(reinterpret_cast<void*>(4));
  ASSERT_TRUE(cq.Next(&tag, &ok));
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  ASSERT_TRUE(cq.Next(&tag, &ok));
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const grpc::Slice& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  // The service names are plain strings inside list_services_response.
  EXPECT_NE(bytes.find("lossservice.v1.LossService"), std::string::npos);
  EXPECT_NE(bytes.find("grpc.reflection.v1alpha.ServerReflection"), std::string::npos);
}

// ---- concurrency --------------------------------------------------------------------------------

TEST_F(ServerTest, ServesManyClientsAtOnce) {
  constexpr int kThreads = 8, kCalls = 50;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto stub = Stub();
      for (int i = 0; i < kCalls; ++i) {
        v1::EvaluateRequest q = Mse(Floats({2}, {float(t), float(i)}), Floats({2}, {0, 0}));
        q.set_reduction(v1::REDUCTION_SUM);
        grpc::ClientContext context;
        v1::EvaluateResponse r;
        if (stub->Evaluate(&context, q, &r).ok() && r.loss().float_values_size() == 1 &&
            r.loss().float_values(0) == float(t * t + i * i)) {
          ++ok;
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(ok.load(), kThreads * kCalls);
}

TEST(LossServerTest, RefusesBadOptionsAndTakenPorts) {
  LossServer bad({.address = "127.0.0.1:0", .max_message_mb = 0});
  EXPECT_EQ(bad.Start().code(), absl::StatusCode::kInvalidArgument);
  LossServer a({.address = "127.0.0.1:0"});
  ASSERT_TRUE(a.Start().ok());
  LossServer b({.address = absl::StrCat("127.0.0.1:", a.port())});
  EXPECT_EQ(b.Start().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace lossservice

namespace lossservice {
namespace {

// Many large evaluations at once against a server that computes one at a
// time: the ones over the limit answer RESOURCE_EXHAUSTED, the rest are right.
TEST(LossServerTest, OverTheInflightLimitIsResourceExhausted) {
  LossServer server({.address = "127.0.0.1:0", .max_inflight = 1});
  ASSERT_TRUE(server.Start().ok());
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server.port()),
                                     grpc::InsecureChannelCredentials());
  constexpr int kRows = 20000, kClasses = 100, kThreads = 8, kCalls = 4;
  v1::EvaluateRequest q;
  q.mutable_input()->add_shape(kRows);
  q.mutable_input()->add_shape(kClasses);
  q.mutable_input()->mutable_float_values()->Resize(kRows * kClasses, 0.5f);
  q.mutable_target()->add_shape(kRows);
  q.mutable_target()->mutable_int64_values()->Resize(kRows, 3);
  q.mutable_cross_entropy();
  std::atomic<int> ok{0}, exhausted{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      auto stub = v1::LossService::NewStub(channel);
      for (int i = 0; i < kCalls; ++i) {
        grpc::ClientContext context;
        v1::EvaluateResponse r;
        grpc::Status s = stub->Evaluate(&context, q, &r);
        if (s.ok() && r.loss().float_values_size() == 1 &&
            std::abs(r.loss().float_values(0) - std::log(100.0f)) < 1e-4f) {
          ++ok;
        } else if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
          EXPECT_NE(s.error_message().find("limit of 1 evaluations in flight"), std::string::npos);
          ++exhausted;
        } else {
          ++other;
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_GE(ok.load(), 1);
  EXPECT_GE(exhausted.load(), 1);
  EXPECT_EQ(ok.load() + exhausted.load(), kThreads * kCalls);
}

}  // namespace
}  // namespace lossservice
