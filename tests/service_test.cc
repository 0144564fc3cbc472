// The service adapter without a network: bytes in, status and bytes out.
// Bad input as one table of {request, code, message}; the stop conditions;
// ListLosses; admission.
#include <atomic>
#include <cmath>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/parallel.h"
#include "gtest/gtest.h"
#include "server/admission.h"
#include "server/buffer_pool.h"
#include "server/call_stats.h"
#include "server/loss_service.h"
#include "tests/server_testing.h"

namespace lossservice {
namespace {

using test::Floats;
using test::Int64s;
using test::Mse;

class ServiceTest : public ::testing::Test {
 protected:
  ServiceTest() : pool_(2), buffers_(64 << 20), service_(pool_, buffers_, stats_) {}

  // Evaluates `q` through the adapter; on success parses the response.
  grpc::Status Evaluate(const v1::EvaluateRequest& q, v1::EvaluateResponse* r = nullptr,
                        StopCondition stop = {}) {
    grpc::ByteBuffer bytes = test::ToBuffer(q);
    return Finish(service_.Evaluate(&bytes, stop), r);
  }
  grpc::Status Activate(const v1::ActivateRequest& q, v1::ActivateResponse* r = nullptr) {
    grpc::ByteBuffer bytes = test::ToBuffer(q);
    return Finish(service_.Activate(&bytes, {}), r);
  }
  template <typename Response>
  grpc::Status Finish(LossService::Result result, Response* r) {
    if (result.status.ok()) {
      const grpc::ByteBuffer bytes = result.response.Finish();
      Response ignored;
      EXPECT_TRUE(test::ParseBuffer(bytes, r != nullptr ? r : &ignored));
    } else {
      EXPECT_EQ(result.response.size(), 0u) << "a failed request has no response";
    }
    return result.status;
  }

  ThreadPool pool_;
  BufferPool buffers_;
  CallStats stats_;
  LossService service_;
};

// ---- bad input: one table, one matcher ----------------------------------------------------

enum class Match { kExact, kPrefix, kContains };

struct BadRequest {
  std::string name;
  std::function<v1::EvaluateRequest()> request;
  grpc::StatusCode code;
  Match match;
  std::string message;
};

void ExpectStatus(const grpc::Status& s, grpc::StatusCode code, Match match,
                  const std::string& message) {
  EXPECT_EQ(s.error_code(), code) << s.error_message();
  EXPECT_FALSE(s.error_message().empty());
  switch (match) {
    case Match::kExact:
      EXPECT_EQ(s.error_message(), message);
      break;
    case Match::kPrefix:
      EXPECT_EQ(s.error_message().rfind(message, 0), 0u) << s.error_message();
      break;
    case Match::kContains:
      EXPECT_NE(s.error_message().find(message), std::string::npos) << s.error_message();
      break;
  }
}

v1::Tensor Empty(std::vector<int64_t> shape, v1::DataType dtype) {
  v1::Tensor t = Floats(std::move(shape), {});
  t.set_dtype(dtype);
  return t;
}

const std::vector<BadRequest>& BadRequests() {
  using C = grpc::StatusCode;
  static const auto* table = new std::vector<BadRequest>{
      {"shape mismatch names both shapes",
       [] {
         return Mse(Floats({2, 3}, {1, 2, 3, 4, 5, 6}), Floats({3, 2}, {1, 2, 3, 4, 5, 6}));
       },
       C::INVALID_ARGUMENT, Match::kContains, "target has shape [3, 2]"},
      {"(N, 1) against (N) suggests squeeze",
       [] {
         return Mse(Floats({3, 1}, {1, 2, 3}), Floats({3}, {1, 2, 3}));
       },
       C::INVALID_ARGUMENT, Match::kContains, "squeeze"},
      {"element count",
       [] {
         return Mse(Floats({2, 3}, {1, 2, 3, 4, 5}), Floats({2, 3}, {1, 2, 3, 4, 5, 6}));
       },
       C::INVALID_ARGUMENT, Match::kExact,
       "input: float_values holds 5 values but shape [2, 3] needs 6"},
      {"raw_data size",
       [] {
         v1::Tensor in;
         in.add_shape(2);
         in.set_dtype(v1::DATA_TYPE_FLOAT64);
         in.set_raw_data(std::string(12, '\0'));
         return Mse(in, Floats({2}, {1, 2}));
       },
       C::INVALID_ARGUMENT, Match::kExact,
       "input: raw_data has 12 bytes but shape [2] of float64 needs 16"},
      {"unknown reduction",
       [] {
         v1::EvaluateRequest q = Mse(Floats({1}, {1}), Floats({1}, {1}));
         q.set_reduction(static_cast<v1::Reduction>(-3));
         return q;
       },
       C::INVALID_ARGUMENT, Match::kExact, "reduction: unknown value -3"},
      {"unknown dtype",
       [] {
         v1::Tensor t = Floats({1}, {1});
         t.set_dtype(static_cast<v1::DataType>(42));
         return Mse(t, Floats({1}, {1}));
       },
       C::INVALID_ARGUMENT, Match::kExact, "input: unknown dtype 42"},
      {"huge empty shape",
       [] {
         v1::EvaluateRequest q = Mse(Empty({int64_t{1} << 40, 0}, v1::DATA_TYPE_FLOAT32),
                                     Empty({int64_t{1} << 40, 0}, v1::DATA_TYPE_FLOAT32));
         q.clear_mse();
         q.mutable_multilabel_soft_margin();
         q.set_reduction(v1::REDUCTION_NONE);
         return q;
       },
       C::INVALID_ARGUMENT, Match::kExact,
       "input: shape [1099511627776, 0] is too large (its non-zero dimensions multiply to more "
       "than 2^31)"},
      {"empty tensor without dtype", [] { return Mse(Floats({0}, {}), Floats({0}, {})); },
       C::INVALID_ARGUMENT, Match::kExact, "input: an empty tensor (shape [0]) must set dtype"},
      {"integer input",
       [] {
         return Mse(Int64s({2}, {1, 2}), Floats({2}, {1, 2}));
       },
       C::INVALID_ARGUMENT, Match::kExact, "input must be FLOAT32 or FLOAT64, got int64 [2]"},
      {"class index out of range",
       [] {
         v1::EvaluateRequest q;
         *q.mutable_input() = Floats({2, 3}, {1, 2, 3, 4, 5, 6});
         *q.mutable_target() = Int64s({2}, {0, 3});
         q.mutable_cross_entropy();
         return q;
       },
       C::INVALID_ARGUMENT, Match::kContains,
       "class index 3 at flat position 1 is out of range for 3 classes"},
      {"float class target",
       [] {
         v1::EvaluateRequest q;
         *q.mutable_input() = Floats({2, 3}, {1, 2, 3, 4, 5, 6});
         *q.mutable_target() = Floats({2}, {0, 1});
         q.mutable_nll();
         return q;
       },
       C::INVALID_ARGUMENT, Match::kExact,
       "target must hold class indices (INT64 or INT32), got float32 [2]"},
      {"weight of the wrong length",
       [] {
         v1::EvaluateRequest q;
         *q.mutable_input() = Floats({2, 3}, {1, 2, 3, 4, 5, 6});
         *q.mutable_target() = Int64s({2}, {0, 2});
         *q.mutable_cross_entropy()->mutable_weight() = Floats({2}, {1, 2});
         return q;
       },
       C::INVALID_ARGUMENT, Match::kExact,
       "cross_entropy.weight must have one value per class: shape [3], got [2]"},
      {"no loss set",
       [] {
         v1::EvaluateRequest q = Mse(Floats({1}, {1}), Floats({1}, {1}));
         q.clear_mse();
         return q;
       },
       C::INVALID_ARGUMENT, Match::kPrefix, "loss: no loss set; set one of mse, l1, rmse,"},
      {"missing input",
       [] {
         v1::EvaluateRequest q = Mse(Floats({1}, {1}), Floats({1}, {1}));
         q.clear_input();
         return q;
       },
       C::INVALID_ARGUMENT, Match::kExact, "input is required"},
      {"reduction not allowed",
       [] {
         v1::EvaluateRequest q = Mse(Floats({2}, {1, 2}), Floats({2}, {1, 3}));
         q.mutable_rmse();
         q.set_reduction(v1::REDUCTION_SUM);
         return q;
       },
       C::INVALID_ARGUMENT, Match::kExact, "reduction sum is not allowed for rmse; allowed: mean"},
      {"bce input outside [0, 1]",
       [] {
         v1::EvaluateRequest q;
         *q.mutable_input() = Floats({3}, {0.5f, 1.5f, 0.2f});
         *q.mutable_target() = Floats({3}, {1, 0, 1});
         q.mutable_bce();
         return q;
       },
       C::INVALID_ARGUMENT, Match::kContains,
       "input: bce needs probabilities in [0, 1]; input [3] has 1.5 at flat position 1"},
      {"grad_output of the wrong shape",
       [] {
         v1::EvaluateRequest q = Mse(Floats({2}, {1, 2}), Floats({2}, {1, 3}));
         q.set_compute_grad(true);
         *q.mutable_grad_output() = Floats({2}, {1, 1});
         return q;
       },
       C::INVALID_ARGUMENT, Match::kExact,
       "size mismatch: grad_output has shape [2] but must be [] to match the loss"},
      {"triplet_margin with a target",
       [] {
         v1::EvaluateRequest q;
         *q.mutable_input() = Floats({2, 2}, {1, 2, 3, 4});
         *q.mutable_target() = Floats({2}, {1, 1});
         auto* t = q.mutable_triplet_margin();
         *t->mutable_positive() = Floats({2, 2}, {1, 2, 3, 4});
         *t->mutable_negative() = Floats({2, 2}, {0, 2, 3, 5});
         return q;
       },
       C::INVALID_ARGUMENT, Match::kContains, "target"},
      {"ctc work over the request budget",
       [] {
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
         return q;
       },
       C::RESOURCE_EXHAUSTED, Match::kContains,
       "over the limit of 1073741824 per request; split the batch"},
      {"multilabel_margin work over the request budget",
       [] {
         constexpr int kC = 1 << 18;
         v1::EvaluateRequest q;
         q.mutable_input()->add_shape(kC);
         q.mutable_input()->mutable_float_values()->Resize(kC, 0.5f);
         q.mutable_target()->add_shape(kC);
         auto* labels = q.mutable_target()->mutable_int32_values();
         labels->Resize(kC, -1);
         for (int c = 0; c < kC / 2; ++c) labels->Set(c, c);
         q.mutable_multilabel_margin();
         return q;
       },
       C::RESOURCE_EXHAUSTED, Match::kContains, "over the limit of 2147483648 per request"},
  };
  return *table;
}

TEST_F(ServiceTest, BadRequestsGetTheirCodeAndMessage) {
  for (const BadRequest& c : BadRequests()) {
    SCOPED_TRACE(c.name);
    ExpectStatus(Evaluate(c.request()), c.code, c.match, c.message);
  }
  EXPECT_EQ(stats_.computed.load(), static_cast<int64_t>(BadRequests().size()));
}

TEST_F(ServiceTest, BadActivationsGetTheirCodeAndMessage) {
  v1::ActivateRequest q;
  *q.mutable_input() = Floats({2}, {1, 2});
  ExpectStatus(Activate(q), grpc::StatusCode::INVALID_ARGUMENT, Match::kExact,
               "activation: not set; choose SIGMOID, SOFTMAX, LOG_SOFTMAX or LOGIT");
  q.set_activation(static_cast<v1::Activation>(9));
  ExpectStatus(Activate(q), grpc::StatusCode::INVALID_ARGUMENT, Match::kExact,
               "activation: unknown value 9");
  q.set_activation(v1::ACTIVATION_SOFTMAX);
  q.set_dim(1);
  ExpectStatus(Activate(q), grpc::StatusCode::INVALID_ARGUMENT, Match::kExact,
               "dim 1 is out of range for input [2] (valid: -1 to 0)");
  q.clear_input();
  ExpectStatus(Activate(q), grpc::StatusCode::INVALID_ARGUMENT, Match::kExact, "input is required");
}

TEST_F(ServiceTest, UnparsableBytesAreInvalidArgumentSayingWhat) {
  const std::string garbage("\x0a\x7f\x01", 3);
  grpc::ByteBuffer bytes = test::ToBuffer(garbage);
  const LossService::Result e = service_.Evaluate(&bytes, {});
  EXPECT_FALSE(bytes.Valid()) << "the request's bytes are taken over";
  ExpectStatus(e.status, grpc::StatusCode::INVALID_ARGUMENT, Match::kExact,
               "request does not parse as lossservice.v1.EvaluateRequest: input: length 127 runs "
               "past the end of its message (1 bytes left) (at byte 2 of 3)");
  bytes = test::ToBuffer(garbage);
  const LossService::Result a = service_.Activate(&bytes, {});
  ExpectStatus(a.status, grpc::StatusCode::INVALID_ARGUMENT, Match::kPrefix,
               "request does not parse as lossservice.v1.ActivateRequest: ");
  // The request_id parsed before the bad field is kept for a stream's Error.
  bytes = test::ToBuffer(std::string("\x32\x02id\x0a\x05", 6));
  const LossService::Result id = service_.Evaluate(&bytes, {});
  EXPECT_EQ(id.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(id.request_id, "id");
  grpc::ByteBuffer list;
  ExpectStatus(service_.ListLosses(test::ToBuffer(garbage), &list),
               grpc::StatusCode::INVALID_ARGUMENT, Match::kPrefix,
               "request does not parse as lossservice.v1.ListLossesRequest: ");
  EXPECT_EQ(stats_.unparsable.load(), 4);
  EXPECT_EQ(stats_.computed.load(), 0);
}

TEST_F(ServiceTest, GoodRequests) {
  v1::EvaluateRequest q = Mse(Floats({2}, {1, 2}), Floats({2}, {1, 3}));
  q.set_request_id("abc-123");
  v1::EvaluateResponse r;
  ASSERT_TRUE(Evaluate(q, &r).ok());
  EXPECT_EQ(r.request_id(), "abc-123");
  EXPECT_EQ(r.loss().dtype(), v1::DATA_TYPE_FLOAT32);
  EXPECT_EQ(r.loss().shape_size(), 0);
  ASSERT_EQ(r.loss().float_values_size(), 1);
  EXPECT_EQ(r.loss().float_values(0), 0.5f);
  EXPECT_FALSE(r.has_grad());
  // A modest empty tensor is fine, and answers in the typed encoding.
  q = Mse(Empty({4, 0}, v1::DATA_TYPE_FLOAT32), Empty({4, 0}, v1::DATA_TYPE_FLOAT32));
  q.clear_mse();
  q.mutable_multilabel_soft_margin();
  q.set_reduction(v1::REDUCTION_NONE);
  ASSERT_TRUE(Evaluate(q, &r).ok());
  ASSERT_EQ(r.loss().shape_size(), 1);
  EXPECT_EQ(r.loss().shape(0), 4);
  // triplet_margin without a target.
  v1::EvaluateRequest t;
  *t.mutable_input() = Floats({2, 2}, {1, 2, 3, 4});
  *t.mutable_triplet_margin()->mutable_positive() = Floats({2, 2}, {1, 2, 3, 4});
  *t.mutable_triplet_margin()->mutable_negative() = Floats({2, 2}, {0, 2, 3, 5});
  EXPECT_TRUE(Evaluate(t).ok());
}

// ---- stop conditions ------------------------------------------------------------------------

TEST_F(ServiceTest, ACancelledOrExpiredRequestIsNotStarted) {
  const v1::EvaluateRequest q = Mse(Floats({2}, {1, 2}), Floats({2}, {1, 3}));
  std::atomic<bool> cancelled{true};
  ExpectStatus(Evaluate(q, nullptr, {&cancelled, absl::InfiniteFuture()}),
               grpc::StatusCode::CANCELLED, Match::kExact,
               "the call was cancelled before the request was started");
  ExpectStatus(Evaluate(q, nullptr, {nullptr, absl::Now() - absl::Milliseconds(1)}),
               grpc::StatusCode::DEADLINE_EXCEEDED, Match::kExact,
               "the deadline passed before the request was started");
  EXPECT_EQ(stats_.not_started.load(), 2);
  EXPECT_EQ(stats_.computed.load(), 0);
  cancelled = false;
  EXPECT_TRUE(Evaluate(q, nullptr, {&cancelled, absl::Now() + absl::Seconds(60)}).ok());
  EXPECT_EQ(stats_.computed.load(), 1);
}

// A request cancelled while it computes: its result is discarded and the
// call answers CANCELLED. (When the cancellation lands after the core has
// finished, the answer is the result: both are counted apart.)
TEST_F(ServiceTest, AResultComputedAfterCancellationIsDiscarded) {
  const v1::EvaluateRequest q = test::BigCrossEntropy(8192, 1000);
  int stopped = 0;
  for (int attempt = 0; attempt < 10 && stopped == 0; ++attempt) {
    std::atomic<bool> cancelled{false};
    const int64_t started = stats_.started.load();
    grpc::Status status;
    std::thread call([&] {
      v1::EvaluateResponse r;
      status = Evaluate(q, &r, {&cancelled, absl::InfiniteFuture()});
    });
    while (stats_.started.load() == started) std::this_thread::yield();
    cancelled = true;
    call.join();
    if (status.ok()) continue;  // finished before the flag was seen
    ExpectStatus(status, grpc::StatusCode::CANCELLED, Match::kExact,
                 "the call was cancelled while the request was computed; its result was "
                 "discarded");
    ++stopped;
  }
  EXPECT_EQ(stopped, 1);
  EXPECT_EQ(stats_.stopped.load(), 1);
  EXPECT_EQ(stats_.started.load(), stats_.computed.load() + stats_.stopped.load());
}

// ---- ListLosses -------------------------------------------------------------------------------

TEST_F(ServiceTest, ListLossesCoversTheWholeOneof) {
  grpc::ByteBuffer bytes;
  ASSERT_TRUE(service_.ListLosses(test::ToBuffer(""), &bytes).ok());
  v1::ListLossesResponse r;
  ASSERT_TRUE(test::ParseBuffer(bytes, &r));
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
TEST_F(ServiceTest, ListLossesIsTruthful) {
  grpc::ByteBuffer bytes;
  ASSERT_TRUE(service_.ListLosses(test::ToBuffer(""), &bytes).ok());
  v1::ListLossesResponse list;
  ASSERT_TRUE(test::ParseBuffer(bytes, &list));
  for (const v1::LossInfo& info : list.losses()) {
    SCOPED_TRACE(info.name());
    EXPECT_TRUE(info.has_grad());
    const golden::GoldenCase* valid = nullptr;
    for (const golden::GoldenCase& c : test::GoldenCases()) {
      if (c.is_loss() && !c.is_error() && c.loss == info.name() && c.input->numel() > 0) {
        valid = &c;
        break;
      }
    }
    ASSERT_NE(valid, nullptr) << "no golden case for " << info.name();
    v1::EvaluateRequest q = test::EvaluateRequestFor(*valid, Encoding::kTyped);
    q.clear_grad_output();
    q.set_compute_grad(true);
    for (int r = v1::REDUCTION_UNSPECIFIED; r <= v1::REDUCTION_BATCHMEAN; ++r) {
      q.set_reduction(static_cast<v1::Reduction>(r));
      const v1::Reduction effective =
          r == v1::REDUCTION_UNSPECIFIED ? v1::REDUCTION_MEAN : static_cast<v1::Reduction>(r);
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
        EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
            << v1::Reduction_Name(effective);
      }
    }
    v1::EvaluateRequest int_input = test::EvaluateRequestFor(*valid, Encoding::kTyped);
    v1::Tensor* input = int_input.mutable_input();
    input->clear_float_values();
    input->clear_double_values();
    input->set_dtype(v1::DATA_TYPE_INT64);
    input->mutable_int64_values()->Resize(static_cast<int>(valid->input->numel()), 0);
    EXPECT_EQ(Evaluate(int_input).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
}

// ---- admission --------------------------------------------------------------------------------

TEST(AdmissionTest, AdmitsUpToTheLimitAndCountsRefusals) {
  CallStats stats;
  Admission admission(2, stats);
  std::optional<Admission::Ticket> a = admission.TryAdmit(), b = admission.TryAdmit();
  ASSERT_TRUE(a && b);
  EXPECT_FALSE(admission.TryAdmit());
  EXPECT_FALSE(admission.TryAdmit());
  EXPECT_EQ(stats.in_flight.load(), 2);
  EXPECT_EQ(stats.refused.load(), 2);
  EXPECT_EQ(admission.Refusal().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(admission.Refusal().error_message(),
            "the server is at its limit of 2 requests in flight (--max_inflight=2); retry with "
            "backoff");
  a.reset();
  EXPECT_EQ(stats.in_flight.load(), 1);
  std::optional<Admission::Ticket> c = admission.TryAdmit();
  EXPECT_TRUE(c);
  Admission::Ticket moved = std::move(*c);
  c.reset();
  EXPECT_EQ(stats.in_flight.load(), 2);
  EXPECT_EQ(stats.admitted.load(), 3);

  CallStats unlimited_stats;
  Admission unlimited(0, unlimited_stats);
  std::vector<Admission::Ticket> many;
  for (int i = 0; i < 1000; ++i) many.push_back(*unlimited.TryAdmit());
  EXPECT_EQ(unlimited_stats.in_flight.load(), 1000);
  EXPECT_EQ(unlimited_stats.refused.load(), 0);
}

}  // namespace
}  // namespace lossservice
