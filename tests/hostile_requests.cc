#include "tests/hostile_requests.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lossservice/v1/loss_service.pb.h"
#include "server/wire_format.h"
#include "tests/server_testing.h"

namespace lossservice::test {
namespace {

using C = grpc::StatusCode;
using M = HostileRequest::Method;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();

std::string Bytes(const google::protobuf::Message& m) { return m.SerializeAsString(); }

// A tensor of `shape` and `dtype` with no values.
v1::Tensor NoData(std::vector<int64_t> shape, v1::DataType dtype = v1::DATA_TYPE_FLOAT32) {
  v1::Tensor t;
  for (int64_t d : shape) t.add_shape(d);
  t.set_dtype(dtype);
  return t;
}

v1::Tensor Raw(std::vector<int64_t> shape, v1::DataType dtype, size_t bytes) {
  v1::Tensor t = NoData(std::move(shape), dtype);
  t.set_raw_data(std::string(bytes, '\x01'));
  return t;
}

v1::Tensor Int32s(std::vector<int64_t> shape, std::vector<int32_t> values) {
  v1::Tensor t;
  for (int64_t d : shape) t.add_shape(d);
  t.mutable_int32_values()->Add(values.begin(), values.end());
  return t;
}

v1::Tensor Doubles(std::vector<int64_t> shape, std::vector<double> values) {
  v1::Tensor t;
  for (int64_t d : shape) t.add_shape(d);
  t.mutable_double_values()->Add(values.begin(), values.end());
  return t;
}

// A [2, 3] float input and [2] class targets.
v1::EvaluateRequest Classes() {
  v1::EvaluateRequest q;
  *q.mutable_input() = Floats({2, 3}, {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f});
  *q.mutable_target() = Int64s({2}, {0, 2});
  return q;
}

// A [2, 2] float input and target.
v1::EvaluateRequest Pair() {
  return Mse(Floats({2, 2}, {0.5f, -1, 2, 0}), Floats({2, 2}, {0.25f, 1, 2, 3}));
}

v1::ActivateRequest Activate(v1::Activation a, v1::Tensor input) {
  v1::ActivateRequest q;
  q.set_activation(a);
  *q.mutable_input() = std::move(input);
  return q;
}

v1::EvaluateRequest Ctc() {
  // T = 3, N = 1, C = 3; one target of length 1.
  v1::EvaluateRequest q;
  *q.mutable_input() = Floats({3, 1, 3}, std::vector<float>(9, std::log(1.0f / 3)));
  *q.mutable_target() = Int64s({1, 1}, {1});
  *q.mutable_ctc()->mutable_input_lengths() = Int64s({1}, {3});
  *q.mutable_ctc()->mutable_target_lengths() = Int64s({1}, {1});
  return q;
}

v1::EvaluateRequest Triplet() {
  v1::EvaluateRequest q;
  *q.mutable_input() = Floats({2, 2}, {1, 2, 3, 4});
  *q.mutable_triplet_margin()->mutable_positive() = Floats({2, 2}, {1, 2, 3, 5});
  *q.mutable_triplet_margin()->mutable_negative() = Floats({2, 2}, {0, 2, 3, 4});
  return q;
}

template <typename Change>
std::string Evaluate(v1::EvaluateRequest q, Change change) {
  change(q);
  return Bytes(q);
}

// A length-delimited field `number` holding `content`.
std::string Field(int number, const std::string& content) {
  std::string out;
  wire::AppendVarint(wire::Tag(number, wire::kLengthDelimited), &out);
  wire::AppendVarint(content.size(), &out);
  return out + content;
}

// `depth` start-group tags of field `number`, never closed.
std::string Groups(int number, int depth) {
  std::string tag;
  wire::AppendVarint(wire::Tag(number, wire::kStartGroup), &tag);
  std::string out;
  out.reserve(tag.size() * depth);
  for (int i = 0; i < depth; ++i) out += tag;
  return out;
}

std::string Garbage(uint32_t seed, size_t n) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

constexpr char kNotEvaluate[] = "request does not parse as lossservice.v1.EvaluateRequest: ";
constexpr char kNotActivate[] = "request does not parse as lossservice.v1.ActivateRequest: ";

std::vector<HostileRequest> Build() {
  const std::string valid_ce = Evaluate(Classes(), [](auto& q) {
    *q.mutable_cross_entropy()->mutable_weight() = Floats({3}, {1, 2, 3});
    q.set_request_id("truncated");
  });
  std::vector<HostileRequest> rows = {
      // ---- overflowing shapes ----
      {"dimensions whose product overflows int64", M::kEvaluate,
       Bytes(Mse(NoData({int64_t{1} << 32, int64_t{1} << 32}), NoData({1}))),
       C::INVALID_ARGUMENT, "input: shape [4294967296, 4294967296] is too large"},
      {"a dimension of INT64_MAX", M::kEvaluate, Bytes(Mse(NoData({kInt64Max, 2}), NoData({1}))),
       C::INVALID_ARGUMENT, "input: shape [9223372036854775807, 2] is too large"},
      {"a negative dimension (a 10-byte varint)", M::kEvaluate,
       Bytes(Mse(NoData({-1}), NoData({1}))), C::INVALID_ARGUMENT,
       "input: shape [-1] has a negative dimension"},
      {"INT64_MIN as a dimension", M::kEvaluate, Bytes(Mse(NoData({3, kInt64Min}), NoData({1}))),
       C::INVALID_ARGUMENT, "input: shape [3, -9223372036854775808] has a negative dimension"},
      {"overflow hidden behind a zero dimension", M::kEvaluate,
       Bytes(Mse(NoData({int64_t{1} << 62, 4, 0}), NoData({0}))), C::INVALID_ARGUMENT,
       "input: shape [4611686018427387904, 4, 0] is too large"},
      {"three values for 3 x 2^62", M::kEvaluate,
       Bytes(Mse(Floats({3, int64_t{1} << 62}, {1, 2, 3}), Floats({3}, {1, 2, 3}))),
       C::INVALID_ARGUMENT, "input: shape [3, 4611686018427387904] is too large"},
      {"a target shape that overflows", M::kEvaluate,
       Bytes(Mse(Floats({1}, {1}), NoData({kInt64Max, kInt64Max}))), C::INVALID_ARGUMENT,
       "target: shape [9223372036854775807, 9223372036854775807] is too large"},
      {"a weight shape that overflows", M::kEvaluate, Evaluate(Classes(), [](auto& q) {
         *q.mutable_cross_entropy()->mutable_weight() =
             NoData({int64_t{1} << 40, int64_t{1} << 40});
       }),
       C::INVALID_ARGUMENT, "cross_entropy.weight: shape [1099511627776, 1099511627776] is too large"},
      {"an activation input that overflows", M::kActivate,
       Bytes(Activate(v1::ACTIVATION_SOFTMAX, NoData({int64_t{1} << 33, int64_t{1} << 33}))),
       C::INVALID_ARGUMENT, "input: shape [8589934592, 8589934592] is too large"},
      {"100,000 dimensions of 1 against 99,999: the message is cut", M::kEvaluate,
       Bytes(Mse(Floats(std::vector<int64_t>(100000, 1), {1}),
                 Floats(std::vector<int64_t>(99999, 1), {1}))),
       C::INVALID_ARGUMENT, "target has shape [1, 1, 1"},

      // ---- raw_data of odd length ----
      {"float32 raw_data of 7 bytes", M::kEvaluate,
       Bytes(Mse(Raw({2}, v1::DATA_TYPE_FLOAT32, 7), Floats({2}, {1, 2}))), C::INVALID_ARGUMENT,
       "input: raw_data has 7 bytes but shape [2] of float32 needs 8"},
      {"float64 raw_data of 9 bytes", M::kEvaluate,
       Bytes(Mse(Raw({1}, v1::DATA_TYPE_FLOAT64, 9), Floats({1}, {1}))), C::INVALID_ARGUMENT,
       "input: raw_data has 9 bytes but shape [1] of float64 needs 8"},
      {"int64 class targets in 13 bytes", M::kEvaluate, Evaluate(Classes(), [](auto& q) {
         *q.mutable_target() = Raw({2}, v1::DATA_TYPE_INT64, 13);
         q.mutable_cross_entropy();
       }),
       C::INVALID_ARGUMENT, "target: raw_data has 13 bytes but shape [2] of int64 needs 16"},
      {"int32 class targets in 3 bytes", M::kEvaluate, Evaluate(Classes(), [](auto& q) {
         *q.mutable_target() = Raw({2}, v1::DATA_TYPE_INT32, 3);
         q.mutable_nll();
       }),
       C::INVALID_ARGUMENT, "target: raw_data has 3 bytes but shape [2] of int32 needs 8"},
      {"a weight in 5 bytes", M::kEvaluate, Evaluate(Classes(), [](auto& q) {
         *q.mutable_cross_entropy()->mutable_weight() = Raw({3}, v1::DATA_TYPE_FLOAT32, 5);
       }),
       C::INVALID_ARGUMENT, "cross_entropy.weight: raw_data has 5 bytes but shape [3] of float32 needs 12"},
      {"raw_data of 1 byte without a dtype", M::kEvaluate, Evaluate(Pair(), [](auto& q) {
         *q.mutable_input() = Raw({1}, v1::DATA_TYPE_UNSPECIFIED, 1);
       }),
       C::INVALID_ARGUMENT, "input: raw_data needs dtype to be set"},
      {"an activation input of 3 bytes", M::kActivate,
       Bytes(Activate(v1::ACTIVATION_SIGMOID, Raw({1}, v1::DATA_TYPE_FLOAT32, 3))),
       C::INVALID_ARGUMENT, "input: raw_data has 3 bytes but shape [1] of float32 needs 4"},

      // ---- unknown enum values ----
      {"dtype 99", M::kEvaluate,
       Evaluate(Pair(), [](auto& q) { q.mutable_input()->set_dtype(static_cast<v1::DataType>(99)); }),
       C::INVALID_ARGUMENT, "input: unknown dtype 99"},
      {"dtype -1", M::kEvaluate,
       Evaluate(Pair(), [](auto& q) { q.mutable_target()->set_dtype(static_cast<v1::DataType>(-1)); }),
       C::INVALID_ARGUMENT, "target: unknown dtype -1"},
      {"dtype INT32_MAX on a weight", M::kEvaluate, Evaluate(Classes(), [](auto& q) {
         v1::Tensor* w = q.mutable_nll()->mutable_weight();
         *w = Floats({3}, {1, 1, 1});
         w->set_dtype(static_cast<v1::DataType>(std::numeric_limits<int32_t>::max()));
       }),
       C::INVALID_ARGUMENT, "nll.weight: unknown dtype 2147483647"},
      {"reduction 5", M::kEvaluate,
       Evaluate(Pair(), [](auto& q) { q.set_reduction(static_cast<v1::Reduction>(5)); }),
       C::INVALID_ARGUMENT, "reduction: unknown value 5"},
      {"reduction INT32_MIN", M::kEvaluate, Evaluate(Pair(), [](auto& q) {
         q.set_reduction(static_cast<v1::Reduction>(std::numeric_limits<int32_t>::min()));
       }),
       C::INVALID_ARGUMENT, "reduction: unknown value -2147483648"},
      {"activation 42", M::kActivate,
       Bytes(Activate(static_cast<v1::Activation>(42), Floats({2}, {1, 2}))), C::INVALID_ARGUMENT,
       "activation: unknown value 42"},
      {"activation -7", M::kActivate,
       Bytes(Activate(static_cast<v1::Activation>(-7), Floats({2}, {1, 2}))), C::INVALID_ARGUMENT,
       "activation: unknown value -7"},
      {"activation not set", M::kActivate,
       Bytes(Activate(v1::ACTIVATION_UNSPECIFIED, Floats({2}, {1, 2}))), C::INVALID_ARGUMENT,
       "activation: not set; choose SIGMOID, SOFTMAX, LOG_SOFTMAX or LOGIT"},
      {"no loss set", M::kEvaluate, Evaluate(Pair(), [](auto& q) { q.clear_mse(); }),
       C::INVALID_ARGUMENT, "loss: no loss set; set one of mse, l1, rmse,"},

      // ---- garbage and truncated bytes ----
      {"512 random bytes", M::kEvaluate, Garbage(1, 512), C::INVALID_ARGUMENT, kNotEvaluate},
      {"4096 random bytes", M::kEvaluate, Garbage(2, 4096), C::INVALID_ARGUMENT, kNotEvaluate},
      {"random bytes to Activate", M::kActivate, Garbage(3, 300), C::INVALID_ARGUMENT, kNotActivate},
      {"random bytes to ListLosses", M::kListLosses, Garbage(4, 100), C::INVALID_ARGUMENT,
       "request does not parse as lossservice.v1.ListLossesRequest: "},
      {"64 bytes of 0xff", M::kEvaluate, std::string(64, '\xff'), C::INVALID_ARGUMENT,
       "tag: a varint is truncated or longer than 10 bytes"},
      {"a request cut one byte short", M::kEvaluate, valid_ce.substr(0, valid_ce.size() - 1),
       C::INVALID_ARGUMENT, kNotEvaluate},
      {"a request cut in half", M::kEvaluate, valid_ce.substr(0, valid_ce.size() / 2),
       C::INVALID_ARGUMENT, "runs past the end of its message"},
      {"a request cut inside its first tensor", M::kEvaluate, valid_ce.substr(0, 5),
       C::INVALID_ARGUMENT, "input"},
      {"a truncated tag", M::kEvaluate, "\x80", C::INVALID_ARGUMENT,
       "tag: a varint is truncated or longer than 10 bytes"},
      {"field number 0", M::kEvaluate, std::string("\x00\x01", 2), C::INVALID_ARGUMENT,
       "tag: field number 0 is not allowed"},
      {"wire type 7", M::kEvaluate, "\x0f", C::INVALID_ARGUMENT, "input: invalid wire type 7"},
      {"wire type 6 inside a tensor", M::kEvaluate, Field(1, "\x0e"), C::INVALID_ARGUMENT,
       "input.field 1: invalid wire type 6"},
      {"an 11-byte varint", M::kEvaluate, "\x18" + std::string(10, '\xff') + "\x01",
       C::INVALID_ARGUMENT, "reduction: a varint is truncated or longer than 10 bytes"},
      {"a length of 2^63", M::kEvaluate, "\x0a" + std::string(8, '\xff') + "\x7f",
       C::INVALID_ARGUMENT, "input: a length is longer than 5 bytes"},
      {"a length of 2^31 - 1", M::kEvaluate, "\x0a" + std::string(4, '\xff') + "\x07",
       C::INVALID_ARGUMENT, "input: length 2147483647 is above protobuf's limit of 2147483631 bytes"},
      {"a length of 2^31 - 17", M::kEvaluate, "\x0a\xef" + std::string(3, '\xff') + "\x07",
       C::INVALID_ARGUMENT, "input: length 2147483631 runs past the end of its message (0 bytes left)"},
      {"an end-group without a start", M::kEvaluate, "\x0c", C::INVALID_ARGUMENT,
       "input: end-group tag of field 1 without a start-group"},
      {"a group never closed", M::kEvaluate, "\x0b\x08\x01", C::INVALID_ARGUMENT,
       "input: a group has no end-group tag before the end of its message"},
      {"request_id not UTF-8", M::kEvaluate,
       Bytes(Pair()) + Field(6, std::string("\xc3\x28", 2)), C::INVALID_ARGUMENT,
       "request_id: is not valid UTF-8"},
      {"a packed varint cut short", M::kEvaluate, Field(2, Field(5, "\x2a\x80")),
       C::INVALID_ARGUMENT, "target.int64_values: the packed field ends inside a varint"},
      {"float_values of 6 bytes", M::kEvaluate, Field(1, Field(3, std::string(6, '\0'))),
       C::INVALID_ARGUMENT, "input.float_values: packed length 6 is not a multiple of 4"},
      {"a tensor as a varint: no input", M::kEvaluate,
       "\x08\x05" + Evaluate(Pair(), [](auto& q) { q.clear_input(); }),
       C::INVALID_ARGUMENT, "input is required"},
      {"the loss message cut inside", M::kEvaluate, Bytes(Pair()) + Field(13, "\x09\x00"),
       C::INVALID_ARGUMENT, "huber: does not parse as lossservice.v1.HuberLoss"},

      // ---- 100,000 nested groups ----
      {"100,000 nested groups", M::kEvaluate, Groups(100, 100000), C::INVALID_ARGUMENT,
       "field 100: groups nested more than 100 deep"},
      {"100,000 nested groups inside a tensor", M::kEvaluate, Field(2, Groups(15, 100000)),
       C::INVALID_ARGUMENT, "target.field 15: groups nested more than 100 deep"},
      {"100,000 nested groups inside a loss's options", M::kEvaluate,
       Field(15, Groups(9, 100000)), C::INVALID_ARGUMENT,
       "cross_entropy.field 9: groups nested more than 100 deep"},
      {"100,000 nested groups inside an option tensor", M::kEvaluate,
       Field(15, Field(1, Groups(8, 100000))), C::INVALID_ARGUMENT,
       "cross_entropy.weight.field 8: groups nested more than 100 deep"},
      {"100,000 nested groups inside a message of no tensors", M::kEvaluate,
       Field(10, Groups(3, 100000)), C::INVALID_ARGUMENT,
       "mse: does not parse as lossservice.v1.MseLoss"},
      {"100,000 nested groups to Activate", M::kActivate, Groups(5, 100000), C::INVALID_ARGUMENT,
       "field 5: groups nested more than 100 deep"},

      // ---- huge dimensions with no data ----
      {"[2^31, 0]: 2^31 per-sample losses of nothing", M::kEvaluate,
       Evaluate(Pair(), [](auto& q) {
         *q.mutable_input() = NoData({int64_t{1} << 31, 0});
         *q.mutable_target() = NoData({int64_t{1} << 31, 0});
         q.mutable_multilabel_soft_margin();
         q.set_reduction(v1::REDUCTION_NONE);
       }),
       C::RESOURCE_EXHAUSTED,
       "the response would hold 2147483648 values of float32 (loss [2147483648]), 8589934592 "
       "bytes, over the limit of 4 MiB (--max_message_mb=4)"},
      {"[2^40, 0]", M::kEvaluate, Evaluate(Pair(), [](auto& q) {
         *q.mutable_input() = NoData({int64_t{1} << 40, 0});
         *q.mutable_target() = NoData({int64_t{1} << 40, 0});
       }),
       C::INVALID_ARGUMENT, "input: shape [1099511627776, 0] is too large"},
      {"[2^28, 0] cosine pairs with a gradient", M::kEvaluate, Evaluate(Pair(), [](auto& q) {
         *q.mutable_input() = NoData({int64_t{1} << 28, 0});
         *q.mutable_target() = NoData({int64_t{1} << 28}, v1::DATA_TYPE_FLOAT32);
         *q.mutable_cosine_embedding()->mutable_input2() = NoData({int64_t{1} << 28, 0});
         q.set_reduction(v1::REDUCTION_NONE);
         q.set_compute_grad(true);
       }),
       C::INVALID_ARGUMENT, "target: holds 0 values but shape [268435456] needs 268435456"},
      {"[2^15, 2^15] with no values", M::kEvaluate,
       Bytes(Mse(NoData({1 << 15, 1 << 15}), NoData({1 << 15, 1 << 15}))), C::INVALID_ARGUMENT,
       "input: holds 0 values but shape [32768, 32768] needs 1073741824"},
      {"[2^20, 2^20] with no values", M::kEvaluate,
       Bytes(Mse(NoData({1 << 20, 1 << 20}), NoData({1 << 20, 1 << 20}))), C::INVALID_ARGUMENT,
       "input: shape [1048576, 1048576] is too large"},
      {"[2^31] class targets with no values", M::kEvaluate, Evaluate(Classes(), [](auto& q) {
         *q.mutable_input() = NoData({int64_t{1} << 31, 3});
         *q.mutable_target() = NoData({int64_t{1} << 31}, v1::DATA_TYPE_INT64);
         q.mutable_cross_entropy();
       }),
       C::INVALID_ARGUMENT, "input: shape [2147483648, 3] is too large"},
      {"a huge grad_output with no values", M::kEvaluate, Evaluate(Pair(), [](auto& q) {
         q.set_compute_grad(true);
         *q.mutable_grad_output() = NoData({int64_t{1} << 30});
       }),
       C::INVALID_ARGUMENT, "grad_output: holds 0 values but shape [1073741824] needs 1073741824"},
      {"softmax over [2^32, 0]", M::kActivate,
       Bytes(Activate(v1::ACTIVATION_SOFTMAX, NoData({int64_t{1} << 32, 0}))), C::INVALID_ARGUMENT,
       "input: shape [4294967296, 0] is too large"},

      // ---- NaN and infinite options ----
      {"huber delta NaN", M::kEvaluate,
       Evaluate(Pair(), [](auto& q) { q.mutable_huber()->set_delta(kNaN); }), C::INVALID_ARGUMENT,
       "huber.delta must be > 0, got nan"},
      {"huber delta -inf", M::kEvaluate,
       Evaluate(Pair(), [](auto& q) { q.mutable_huber()->set_delta(-kInf); }),
       C::INVALID_ARGUMENT, "huber.delta must be > 0, got -inf"},
      {"smooth_l1 beta NaN", M::kEvaluate,
       Evaluate(Pair(), [](auto& q) { q.mutable_smooth_l1()->set_beta(kNaN); }),
       C::INVALID_ARGUMENT, "smooth_l1.beta must be >= 0, got nan"},
      {"smooth_l1 beta -inf", M::kEvaluate,
       Evaluate(Pair(), [](auto& q) { q.mutable_smooth_l1()->set_beta(-kInf); }),
       C::INVALID_ARGUMENT, "smooth_l1.beta must be >= 0, got -inf"},
      {"rmse eps NaN", M::kEvaluate,
       Evaluate(Pair(), [](auto& q) { q.mutable_rmse()->set_eps(kNaN); }), C::INVALID_ARGUMENT,
       "rmse.eps must be >= 0, got nan"},
      {"label_smoothing NaN", M::kEvaluate,
       Evaluate(Classes(), [](auto& q) { q.mutable_cross_entropy()->set_label_smoothing(kNaN); }),
       C::INVALID_ARGUMENT, "cross_entropy.label_smoothing must be in [0, 1], got nan"},
      {"label_smoothing inf", M::kEvaluate,
       Evaluate(Classes(), [](auto& q) { q.mutable_cross_entropy()->set_label_smoothing(kInf); }),
       C::INVALID_ARGUMENT, "cross_entropy.label_smoothing must be in [0, 1], got inf"},
      {"logit eps NaN", M::kActivate, [] {
         v1::ActivateRequest q = Activate(v1::ACTIVATION_LOGIT, Floats({2}, {0.25f, 0.5f}));
         q.set_eps(kNaN);
         return Bytes(q);
       }(),
       C::INVALID_ARGUMENT, "eps must be in [0, 0.5] for logit, got nan"},
      {"logit eps inf", M::kActivate, [] {
         v1::ActivateRequest q = Activate(v1::ACTIVATION_LOGIT, Floats({2}, {0.25f, 0.5f}));
         q.set_eps(kInf);
         return Bytes(q);
       }(),
       C::INVALID_ARGUMENT, "eps must be in [0, 0.5] for logit, got inf"},
      {"multi_margin p = 3", M::kEvaluate,
       Evaluate(Classes(), [](auto& q) { q.mutable_multi_margin()->set_p(3); }),
       C::INVALID_ARGUMENT, "multi_margin.p"},
      {"softmax dim 2^62", M::kActivate, [] {
         v1::ActivateRequest q = Activate(v1::ACTIVATION_SOFTMAX, Floats({2}, {1, 2}));
         q.set_dim(int64_t{1} << 62);
         return Bytes(q);
       }(),
       C::INVALID_ARGUMENT, "dim 4611686018427387904 is out of range for input [2]"},
      {"ctc blank -1", M::kEvaluate, Evaluate(Ctc(), [](auto& q) { q.mutable_ctc()->set_blank(-1); }),
       C::INVALID_ARGUMENT, "blank"},
      {"ctc blank INT64_MAX", M::kEvaluate,
       Evaluate(Ctc(), [](auto& q) { q.mutable_ctc()->set_blank(kInt64Max); }),
       C::INVALID_ARGUMENT, "blank"},

      // ---- every tensor field of the wrong dtype ----
      {"an int64 input", M::kEvaluate,
       Evaluate(Pair(), [](auto& q) { *q.mutable_input() = Int64s({2, 2}, {1, 2, 3, 4}); }),
       C::INVALID_ARGUMENT, "input must be FLOAT32 or FLOAT64, got int64 [2, 2]"},
      {"an int32 activation input", M::kActivate,
       Bytes(Activate(v1::ACTIVATION_SIGMOID, Int32s({2}, {1, 2}))), C::INVALID_ARGUMENT,
       "input must be FLOAT32 or FLOAT64, got int32 [2]"},
      {"an int64 target for mse", M::kEvaluate,
       Evaluate(Pair(), [](auto& q) { *q.mutable_target() = Int64s({2, 2}, {1, 2, 3, 4}); }),
       C::INVALID_ARGUMENT, "target"},
      {"float class targets for cross_entropy", M::kEvaluate, Evaluate(Classes(), [](auto& q) {
         *q.mutable_target() = Floats({2}, {0, 2});
         q.mutable_cross_entropy();
       }),
       C::INVALID_ARGUMENT,
       "target: class indices must be INT64 or INT32, got float32 [2] for input [2, 3]"},
      {"float64 class targets for multi_margin", M::kEvaluate, Evaluate(Classes(), [](auto& q) {
         *q.mutable_target() = Doubles({2}, {0, 2});
         q.mutable_multi_margin();
       }),
       C::INVALID_ARGUMENT, "target must hold class indices (INT64 or INT32), got float64 [2]"},
      {"float labels for multilabel_margin", M::kEvaluate, Evaluate(Classes(), [](auto& q) {
         *q.mutable_target() = Floats({2, 3}, {0, 1, -1, 2, -1, 0});
         q.mutable_multilabel_margin();
       }),
       C::INVALID_ARGUMENT, "target"},
      {"an int64 weight", M::kEvaluate, Evaluate(Classes(), [](auto& q) {
         *q.mutable_cross_entropy()->mutable_weight() = Int64s({3}, {1, 1, 1});
       }),
       C::INVALID_ARGUMENT, "cross_entropy.weight"},
      {"an int32 pos_weight", M::kEvaluate, Evaluate(Pair(), [](auto& q) {
         *q.mutable_target() = Floats({2, 2}, {0, 1, 1, 0});
         *q.mutable_bce_with_logits()->mutable_pos_weight() = Int32s({2}, {1, 2});
       }),
       C::INVALID_ARGUMENT, "bce_with_logits.pos_weight"},
      {"an int64 var", M::kEvaluate, Evaluate(Pair(), [](auto& q) {
         *q.mutable_gaussian_nll()->mutable_var() = Int64s({2, 2}, {1, 1, 1, 1});
       }),
       C::INVALID_ARGUMENT, "gaussian_nll.var"},
      {"an int64 input2", M::kEvaluate, Evaluate(Pair(), [](auto& q) {
         *q.mutable_target() = Floats({2, 2}, {1, -1, 1, -1});
         *q.mutable_margin_ranking()->mutable_input2() = Int64s({2, 2}, {1, 2, 3, 4});
       }),
       C::INVALID_ARGUMENT, "margin_ranking.input2"},
      {"an int32 positive", M::kEvaluate, Evaluate(Triplet(), [](auto& q) {
         *q.mutable_triplet_margin()->mutable_positive() = Int32s({2, 2}, {1, 2, 3, 4});
       }),
       C::INVALID_ARGUMENT, "triplet_margin.positive"},
      {"an int64 negative", M::kEvaluate, Evaluate(Triplet(), [](auto& q) {
         *q.mutable_triplet_margin()->mutable_negative() = Int64s({2, 2}, {1, 2, 3, 4});
       }),
       C::INVALID_ARGUMENT, "triplet_margin.negative"},
      {"float ctc input_lengths", M::kEvaluate, Evaluate(Ctc(), [](auto& q) {
         *q.mutable_ctc()->mutable_input_lengths() = Floats({1}, {3});
       }),
       C::INVALID_ARGUMENT, "input_lengths"},
      {"float ctc target_lengths", M::kEvaluate, Evaluate(Ctc(), [](auto& q) {
         *q.mutable_ctc()->mutable_target_lengths() = Doubles({1}, {1});
       }),
       C::INVALID_ARGUMENT, "target_lengths"},
      {"float ctc targets", M::kEvaluate,
       Evaluate(Ctc(), [](auto& q) { *q.mutable_target() = Floats({1, 1}, {1}); }),
       C::INVALID_ARGUMENT, "target"},
      {"an int64 grad_output", M::kEvaluate, Evaluate(Pair(), [](auto& q) {
         q.set_compute_grad(true);
         q.set_reduction(v1::REDUCTION_NONE);
         *q.mutable_grad_output() = Int64s({2, 2}, {1, 1, 1, 1});
       }),
       C::INVALID_ARGUMENT, "grad_output"},
      {"float_values declared INT64", M::kEvaluate,
       Evaluate(Pair(), [](auto& q) { q.mutable_input()->set_dtype(v1::DATA_TYPE_INT64); }),
       C::INVALID_ARGUMENT, "input: dtype DATA_TYPE_INT64 disagrees with float_values"},
      {"two value fields", M::kEvaluate,
       Evaluate(Pair(), [](auto& q) { q.mutable_target()->add_int32_values(1); }),
       C::INVALID_ARGUMENT,
       "target: more than one value field is set (float_values, int32_values); use exactly one"},

      // ---- limits, methods and streams ----
      {"over --max_message_mb", M::kEvaluate,
       Bytes(Mse(RawFloats({1100000}, std::vector<float>(1100000, 1.0f)), Floats({1}, {1}))),
       C::RESOURCE_EXHAUSTED,
       absl::StrCat("MiB (--max_message_mb=", kHostileMaxMessageMb, ")")},
      {"an unknown method", M::kUnknown, Bytes(Pair()), C::UNIMPLEMENTED,
       "unknown method /lossservice.v1.LossService/Forget"},
      {"a stream item of random bytes", M::kEvaluateStream, Garbage(5, 200), C::INVALID_ARGUMENT,
       kNotEvaluate},
      {"a stream item of 100,000 nested groups", M::kEvaluateStream, Groups(100, 100000),
       C::INVALID_ARGUMENT, "field 100: groups nested more than 100 deep"},
      {"a stream item of [2^31, 0]", M::kEvaluateStream, Evaluate(Pair(), [](auto& q) {
         *q.mutable_input() = NoData({int64_t{1} << 31, 0});
         *q.mutable_target() = NoData({int64_t{1} << 31, 0});
         q.mutable_multilabel_soft_margin();
         q.set_reduction(v1::REDUCTION_NONE);
       }),
       C::RESOURCE_EXHAUSTED, "the response would hold 2147483648 values of float32"},
      {"a stream item over --max_message_mb", M::kEvaluateStream,
       Bytes(Mse(RawFloats({1100000}, std::vector<float>(1100000, 1.0f)), Floats({1}, {1}))),
       C::RESOURCE_EXHAUSTED,
       absl::StrCat("MiB (--max_message_mb=", kHostileMaxMessageMb, ")")},
  };
  return rows;
}

}  // namespace

const std::vector<HostileRequest>& HostileRequests() {
  static const auto* rows = new std::vector<HostileRequest>(Build());
  return *rows;
}

std::string MethodPath(HostileRequest::Method method) {
  switch (method) {
    case M::kEvaluate:
      return "/lossservice.v1.LossService/Evaluate";
    case M::kActivate:
      return "/lossservice.v1.LossService/Activate";
    case M::kListLosses:
      return "/lossservice.v1.LossService/ListLosses";
    case M::kEvaluateStream:
      return "/lossservice.v1.LossService/EvaluateStream";
    case M::kUnknown:
      return "/lossservice.v1.LossService/Forget";
  }
  return "";
}

}  // namespace lossservice::test
