// Every input a fuzzer found that broke a check, as bytes: the regression
// test (fuzz/fuzz_regression_test.cc) runs each through its target's checks.
// A new finding: `./dev fuzz` prints the input as a C string; add it here
// with what it exposed, and fix what it exposed.
#include "fuzz/seeds.h"

#include "lossservice/v1/loss_service.pb.h"
#include "tests/server_testing.h"

namespace lossservice::fuzz {

const std::vector<Regression>& Regressions() {
  using namespace std::string_literals;
  static const auto* regressions = new std::vector<Regression>{
      // Input and target [2^31, 0], multilabel_soft_margin, reduction none:
      // 2^31 per-sample losses (8 GiB) from 30 bytes, allocated and computed,
      // and a response too large to parse. Now RESOURCE_EXHAUSTED before
      // anything is allocated (LossService's max_response_bytes).
      {Target::kEvaluate, "a per-sample loss of 2^31 values from an empty input",
       "\n\n\n\x06\x80\x80\x80\x80\x08\x00\x10\x01\x12\n\n\x06\x80\x80\x80\x80\x08\x00\x10\x01"
       "\x18\x03\xba\x01\x00"s},
      // A stream item whose request_id is not UTF-8 (between two valid
      // ones): its in-band Error echoed the bytes, and the
      // EvaluateStreamResponse did not parse.
      {Target::kStream, "a request_id that is not UTF-8 echoed in a stream's Error", [] {
         v1::EvaluateRequest q =
             test::Mse(test::Floats({2, 2}, {0.5f, -1, 2, 0}), test::Floats({2, 2}, {1, 1, 2, 3}));
         std::string bad = q.SerializeAsString();
         bad += "\x32\x02\xc3\x28"s;  // request_id (field 6): C3 28
         return EncodeStreamItem(q.SerializeAsString()) + EncodeStreamItem(bad) +
                EncodeStreamItem(q.SerializeAsString());
       }()},
      // softmax of an input [106954752, 16, 0] (no elements, 14 bytes): the
      // row loop ran 1.7e9 empty rows (libFuzzer's 30 s timeout). Now an
      // empty input computes nothing; ctest's timeout of this test catches a
      // return.
      {Target::kActivate, "softmax of an empty input with 1.7e9 empty rows",
       "\x08\x02\x12\x0a\x0a\x06\x80\x80\x80\x33\x10\x00\x10\x01"s},
      // Lengths written in 6 bytes (80 80 80 80 80 00, the value 0): our
      // parser read varints of up to 10 bytes as lengths and accepted them;
      // protobuf's ReadSize takes at most 5 bytes below 2^31 and refuses.
      // Now lengths and tags are read by protobuf's rules.
      {Target::kEvaluate, "a 6-byte length of an EvaluateRequest field",
       "\x2a\x80\x80\x80\x80\x80\x00\x80\x80\x40\x32"s},
      {Target::kActivate, "a 6-byte length of an ActivateRequest field",
       "\x08\x00\x12\x80\x80\x80\x80\x80\x00\xa0\xc8\xeb\x85\x7c\xcc\xe1\x7f\x10\x2a"s},
  };
  return *regressions;
}

}  // namespace lossservice::fuzz
