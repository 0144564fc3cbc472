// The codec layer without a network: the wire format on slices, our request
// parser against protobuf's, the tensor decoder's rules, the response
// writer, and the buffer pool.
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/buffer_pool.h"
#include "server/request_parser.h"
#include "server/response_writer.h"
#include "server/tensor_codec.h"
#include "server/wire_format.h"
#include "tests/server_testing.h"

namespace lossservice {
namespace {

namespace pb = ::google::protobuf;
using test::Floats;
using test::Int64s;

// `bytes` cut into slices of the given sizes (the last takes the rest).
std::vector<grpc::Slice> Cut(const std::string& bytes, const std::vector<size_t>& sizes) {
  std::vector<grpc::Slice> slices;
  size_t at = 0;
  for (size_t n : sizes) {
    if (at >= bytes.size()) break;
    n = std::min(n, bytes.size() - at);
    slices.emplace_back(bytes.data() + at, n);
    at += n;
  }
  if (at < bytes.size() || slices.empty())
    slices.emplace_back(bytes.data() + at, bytes.size() - at);
  return slices;
}

// Ways to cut a message: whole, every byte its own slice, and uneven chunks.
std::vector<std::vector<grpc::Slice>> Cuts(const std::string& bytes, uint32_t seed) {
  std::vector<std::vector<grpc::Slice>> cuts;
  cuts.push_back(Cut(bytes, {bytes.size()}));
  if (bytes.size() <= 4096) cuts.push_back(Cut(bytes, std::vector<size_t>(bytes.size(), 1)));
  std::mt19937 rng(seed);
  std::vector<size_t> sizes;
  for (size_t total = 0; total < bytes.size();) {
    sizes.push_back(1 + rng() % 37);
    total += sizes.back();
  }
  cuts.push_back(Cut(bytes, sizes));
  return cuts;
}

// ---- wire format ------------------------------------------------------------------------------

TEST(SliceReaderTest, ReadsAcrossSliceBoundaries) {
  const std::vector<uint64_t> values = {0, 1, 127, 128, 300, 1u << 31, ~uint64_t{0}, 42};
  std::string bytes;
  for (uint64_t v : values) wire::AppendVarint(v, &bytes);
  bytes += "payload!";
  for (const auto& slices : Cuts(bytes, 1)) {
    wire::SliceReader r(slices);
    EXPECT_EQ(r.size(), bytes.size());
    for (uint64_t want : values) {
      uint64_t got;
      ASSERT_TRUE(r.ReadVarint(&got));
      EXPECT_EQ(got, want);
    }
    char out[8];
    ASSERT_TRUE(r.Copy(8, out));
    EXPECT_EQ(std::string(out, 8), "payload!");
    EXPECT_EQ(r.position(), bytes.size());
    uint64_t v;
    EXPECT_FALSE(r.ReadVarint(&v));
    EXPECT_FALSE(r.Skip(1));
  }
}

TEST(SliceReaderTest, ContiguousOnlyWithinOneSlice) {
  const std::string bytes = "abcdefgh";
  const std::vector<grpc::Slice> slices = Cut(bytes, {5, 3});
  wire::SliceReader r(slices);
  const char* p;
  ASSERT_TRUE(r.ReadContiguous(3, &p));
  EXPECT_EQ(std::string(p, 3), "abc");
  EXPECT_EQ(p, reinterpret_cast<const char*>(slices[0].begin()));
  EXPECT_FALSE(r.ReadContiguous(3, &p));  // "def" spans both slices
  EXPECT_EQ(r.position(), 3u);
  ASSERT_TRUE(r.ReadContiguous(2, &p));
  EXPECT_EQ(std::string(p, 2), "de");
  ASSERT_TRUE(r.ReadContiguous(3, &p));
  EXPECT_EQ(std::string(p, 3), "fgh");
}

TEST(SliceReaderTest, RefusesOverlongAndTruncatedVarints) {
  const std::string overlong(11, '\xff');
  for (const std::string& bytes : {overlong, std::string("\x80\x80", 2)}) {
    for (const auto& slices : Cuts(bytes, 2)) {
      wire::SliceReader r(slices);
      uint64_t v;
      EXPECT_FALSE(r.ReadVarint(&v));
    }
  }
}

TEST(MessageWriterTest, WritesWhatProtobufParses) {
  std::vector<float> big(5000);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<float>(i) * 0.5f;
  for (bool large : {false, true}) {
    const size_t n = large ? big.size() : 3;
    wire::MessageWriter tensor;
    tensor.PackedVarints(v1::Tensor::kShapeFieldNumber, {static_cast<int64_t>(n)});
    tensor.Varint(v1::Tensor::kDtypeFieldNumber, v1::DATA_TYPE_FLOAT32);
    tensor.Payload(v1::Tensor::kFloatValuesFieldNumber, grpc::Slice(big.data(), n * sizeof(float)));
    wire::MessageWriter response;
    response.Message(v1::EvaluateResponse::kGradFieldNumber, std::move(tensor));
    response.Bytes(v1::EvaluateResponse::kRequestIdFieldNumber, "id-7");
    const size_t size = response.size();
    const grpc::ByteBuffer bytes = response.Finish();
    EXPECT_EQ(bytes.Length(), size);
    v1::EvaluateResponse r;
    ASSERT_TRUE(test::ParseBuffer(bytes, &r));
    EXPECT_EQ(r.request_id(), "id-7");
    ASSERT_EQ(r.grad().shape_size(), 1);
    EXPECT_EQ(r.grad().shape(0), static_cast<int64_t>(n));
    EXPECT_EQ(r.grad().dtype(), v1::DATA_TYPE_FLOAT32);
    ASSERT_EQ(r.grad().float_values_size(), static_cast<int>(n));
    for (size_t i = 0; i < n; ++i) EXPECT_EQ(r.grad().float_values(static_cast<int>(i)), big[i]);
    EXPECT_FALSE(r.has_loss());
  }
  // An empty message is a valid (empty) buffer.
  const grpc::ByteBuffer empty = wire::MessageWriter().Finish();
  EXPECT_TRUE(empty.Valid());
  EXPECT_EQ(empty.Length(), 0u);
}

// ---- the request parser against protobuf's ----------------------------------------------------

// Every Tensor message in `m`, with its path.
void CollectTensors(const pb::Message& m, const std::string& path,
                    std::vector<std::pair<std::string, const v1::Tensor*>>* out) {
  std::vector<const pb::FieldDescriptor*> fields;
  m.GetReflection()->ListFields(m, &fields);
  for (const pb::FieldDescriptor* f : fields) {
    if (f->message_type() == nullptr) continue;
    const std::string here = path.empty() ? f->name() : absl::StrCat(path, ".", f->name());
    const int n = f->is_repeated() ? m.GetReflection()->FieldSize(m, f) : 1;
    for (int i = 0; i < n; ++i) {
      const pb::Message& sub = f->is_repeated() ? m.GetReflection()->GetRepeatedMessage(m, f, i)
                                                : m.GetReflection()->GetMessage(m, f);
      if (f->message_type() == v1::Tensor::descriptor()) {
        out->emplace_back(here, static_cast<const v1::Tensor*>(&sub));
      } else {
        CollectTensors(sub, here, out);
      }
    }
  }
}

// `m` without the value fields of its tensors.
void StripValues(pb::Message* m) {
  std::vector<const pb::FieldDescriptor*> fields;
  m->GetReflection()->ListFields(*m, &fields);
  for (const pb::FieldDescriptor* f : fields) {
    if (f->message_type() == nullptr || f->is_repeated()) continue;
    pb::Message* sub = m->GetReflection()->MutableMessage(m, f);
    if (f->message_type() == v1::Tensor::descriptor()) {
      auto* t = static_cast<v1::Tensor*>(sub);
      t->clear_float_values();
      t->clear_double_values();
      t->clear_int64_values();
      t->clear_int32_values();
      t->clear_raw_data();
    } else {
      StripValues(sub);
    }
  }
}

std::string FieldBytes(const TensorValues::Field& f, size_t width) {
  return f.count == 0 ? std::string() : std::string(f.data, static_cast<size_t>(f.count) * width);
}

// Parses `bytes`, cut every way, with our parser and with protobuf's, and
// checks that they agree: the same message apart from tensor values, and
// the same values for every tensor.
template <typename Message>
void ExpectParsesAsProtobuf(const std::string& bytes, uint32_t seed) {
  Message want;
  ASSERT_TRUE(want.ParseFromString(bytes));
  std::vector<std::pair<std::string, const v1::Tensor*>> want_tensors;
  CollectTensors(want, "", &want_tensors);
  Message want_stripped = want;
  StripValues(&want_stripped);
  BufferPool pool(1 << 20);
  for (std::vector<grpc::Slice> slices : Cuts(bytes, seed)) {
    SCOPED_TRACE(absl::StrCat(slices.size(), " slices"));
    pb::Arena arena;
    auto* got = pb::Arena::CreateMessage<Message>(&arena);
    WireTensors wire;
    const absl::Status s = ParseMessage(&slices, got, &wire, pool);
    ASSERT_TRUE(s.ok()) << s;
    Message got_stripped = *got;
    StripValues(&got_stripped);
    // Compared as bytes: NaN options are equal to themselves there.
    EXPECT_EQ(got_stripped.SerializeAsString(), want_stripped.SerializeAsString())
        << "got " << got_stripped.ShortDebugString() << "\nwant "
        << want_stripped.ShortDebugString();
    std::vector<std::pair<std::string, const v1::Tensor*>> got_tensors;
    CollectTensors(*got, "", &got_tensors);
    ASSERT_EQ(got_tensors.size(), want_tensors.size());
    TensorDecoder decoder(&wire);
    for (size_t i = 0; i < got_tensors.size(); ++i) {
      SCOPED_TRACE(got_tensors[i].first);
      EXPECT_EQ(got_tensors[i].first, want_tensors[i].first);
      const TensorValues g = decoder.Values(*got_tensors[i].second);
      const TensorValues w = ValuesOf(*want_tensors[i].second);
      EXPECT_EQ(FieldBytes(g.float_values, 4), FieldBytes(w.float_values, 4));
      EXPECT_EQ(FieldBytes(g.double_values, 8), FieldBytes(w.double_values, 8));
      EXPECT_EQ(FieldBytes(g.int64_values, 8), FieldBytes(w.int64_values, 8));
      EXPECT_EQ(FieldBytes(g.int32_values, 4), FieldBytes(w.int32_values, 4));
      EXPECT_EQ(FieldBytes(g.raw_data, 1), FieldBytes(w.raw_data, 1));
    }
  }
}

TEST(RequestParserTest, EveryGoldenRequestParsesAsProtobufDoes) {
  uint32_t seed = 0;
  for (const golden::GoldenCase& c : test::GoldenCases()) {
    SCOPED_TRACE(c.name);
    for (Encoding e : {Encoding::kTyped, Encoding::kRaw}) {
      if (c.is_activation()) {
        ExpectParsesAsProtobuf<v1::ActivateRequest>(
            test::ActivateRequestFor(c, e).SerializeAsString(), ++seed);
      } else {
        ExpectParsesAsProtobuf<v1::EvaluateRequest>(
            test::EvaluateRequestFor(c, e).SerializeAsString(), ++seed);
      }
    }
  }
}

// Encodings protobuf accepts that serializers rarely write: a field that
// occurs twice (messages merge, repeated fields concatenate, the last
// scalar wins), unpacked repeated values, unknown fields of every wire type,
// and known fields with another wire type (kept as unknown).
TEST(RequestParserTest, UnusualEncodingsParseAsProtobufDoes) {
  const auto bytes = [](const pb::Message& m) { return m.SerializeAsString(); };
  v1::EvaluateRequest a = test::Mse(Floats({2}, {1, 2}), Floats({2}, {3, 4}));
  v1::EvaluateRequest b;
  *b.mutable_input() = Floats({1}, {5});
  b.mutable_input()->set_raw_data("abcd");
  b.set_request_id("second");
  v1::EvaluateRequest ce;
  *ce.mutable_cross_entropy()->mutable_weight() = Floats({3}, {1, 2, 3});
  ce.mutable_cross_entropy()->set_ignore_index(7);
  v1::EvaluateRequest mse;
  mse.mutable_mse();
  v1::EvaluateRequest raw1, raw2;
  raw1.mutable_target()->set_raw_data("first");
  raw2.mutable_target()->set_raw_data("last!");
  // Unpacked float_values (fixed32 elements) and int64_values (varints),
  // and an unpacked shape.
  std::string unpacked_input;
  for (float f : {1.5f, -2.0f, 3.25f}) {
    unpacked_input += '\x1d';
    unpacked_input.append(reinterpret_cast<const char*>(&f), 4);
  }
  unpacked_input += std::string("\x28\x05\x28\x80\x01\x08\x03", 7);
  std::string unpacked;
  unpacked += '\x0a';
  wire::AppendVarint(unpacked_input.size(), &unpacked);
  unpacked += unpacked_input;
  // Unknown fields of every wire type, top level and inside a tensor, and a
  // closed group; input (field 1) as a varint, which protobuf keeps unknown.
  std::string unknown = std::string("\xf8\x07\x2a", 3) +                    // 127: varint
                        std::string("\xf9\x07", 2) + std::string(8, 'x') +  // fixed64
                        std::string("\xfd\x07", 2) + std::string(4, 'y') +  // fixed32
                        std::string("\xfa\x07\x03zzz", 6) +                 // length-delimited
                        std::string("\xfb\x07\x08\x01\xfc\x07", 6) +        // group
                        std::string("\x12\x05\xf8\x07\x01\x10\x02", 7) +    // inside target
                        std::string("\x08\x05", 2);                         // input as a varint
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"a field twice", bytes(a) + bytes(b)},
      {"oneof switched and back", bytes(ce) + bytes(mse) + bytes(ce)},
      {"message merged into a oneof", bytes(ce) + bytes(ce)},
      {"raw_data twice", bytes(raw1) + bytes(raw2)},
      {"unpacked values", unpacked + unpacked},
      {"unknown fields", unknown + bytes(a)},
      // A length in 5 bytes (the most protobuf reads), and tags in 5 bytes
      // whose bits above 32 protobuf drops: request_id (field 6), and
      // raw_data (field 7) inside a tensor.
      {"5-byte lengths and tags",
       std::string("\x0a\x8a\x80\x80\x80\x00\xba\x80\x80\x80\x70\x04"
                   "abcd",
                   16) +
           std::string("\xb2\x80\x80\x80\x10\x02id", 8) + bytes(a)},
  };
  uint32_t seed = 100;
  for (const auto& [name, encoded] : cases) {
    SCOPED_TRACE(name);
    ExpectParsesAsProtobuf<v1::EvaluateRequest>(encoded, ++seed);
  }
}

TEST(RequestParserTest, ValuesInOneAlignedSliceAreReadInPlace) {
  std::vector<float> values(4096);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i);
  v1::EvaluateRequest q = test::Mse(test::RawFloats({4096}, values), Floats({4096}, values));
  const std::string bytes = q.SerializeAsString();
  const std::string raw(reinterpret_cast<const char*>(values.data()), values.size() * 4);
  const size_t raw_at = bytes.find(raw);
  const size_t typed_at = bytes.find(raw, raw_at + 1);
  ASSERT_NE(raw_at, std::string::npos);
  ASSERT_NE(typed_at, std::string::npos);
  BufferPool pool(1 << 20);
  for (size_t shift = 0; shift < 4; ++shift) {
    SCOPED_TRACE(absl::StrCat("shift ", shift));
    // The message at `shift` bytes past a 64-byte boundary: one shift in
    // four puts each tensor's values on a 4-byte boundary.
    std::vector<char> memory(bytes.size() + 64 + 4);
    char* base = memory.data() + (64 - reinterpret_cast<uintptr_t>(memory.data()) % 64) % 64;
    char* start = base + shift;
    std::memcpy(start, bytes.data(), bytes.size());
    std::vector<grpc::Slice> slices;
    slices.emplace_back(start, bytes.size(), grpc::Slice::STATIC_SLICE);
    pb::Arena arena;
    auto* got = pb::Arena::CreateMessage<v1::EvaluateRequest>(&arena);
    WireTensors wire;
    ASSERT_TRUE(ParseMessage(&slices, got, &wire, pool).ok());
    TensorDecoder decoder(&wire);
    absl::StatusOr<TensorView> input = decoder.Decode(got->input(), "input");
    absl::StatusOr<TensorView> target = decoder.Decode(got->target(), "target");
    ASSERT_TRUE(input.ok() && target.ok());
    const char* in = static_cast<const char*>(input->data);
    const char* tg = static_cast<const char*>(target->data);
    const bool in_aligned = reinterpret_cast<uintptr_t>(start + raw_at) % 4 == 0;
    const bool tg_aligned = reinterpret_cast<uintptr_t>(start + typed_at) % 4 == 0;
    // In place when aligned; one aligned copy otherwise.
    EXPECT_EQ(in == start + raw_at, in_aligned);
    EXPECT_EQ(tg == start + typed_at, tg_aligned);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(in) % 4, 0u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(tg) % 4, 0u);
    EXPECT_EQ(std::memcmp(in, values.data(), raw.size()), 0);
    EXPECT_EQ(std::memcmp(tg, values.data(), raw.size()), 0);
  }
}

// ... and the slices they were copied out of are let go as the copy goes
// on, so that a large message is not held twice.
TEST(RequestParserTest, ValuesAcrossSlicesAreCopiedOnce) {
  std::vector<float> values(4096, 0.25f);
  v1::EvaluateRequest q =
      test::Mse(test::RawFloats({4096}, values), test::RawFloats({4096}, values));
  const std::string bytes = q.SerializeAsString();
  std::vector<grpc::Slice> slices = Cut(bytes, std::vector<size_t>(64, 1000));
  BufferPool pool(1 << 20);
  pb::Arena arena;
  auto* got = pb::Arena::CreateMessage<v1::EvaluateRequest>(&arena);
  WireTensors wire;
  ASSERT_TRUE(ParseMessage(&slices, got, &wire, pool).ok());
  size_t held = 0;
  for (const grpc::Slice& s : slices) held += s.size();
  EXPECT_LE(held, 3000u) << "of " << bytes.size() << " bytes";
  TensorDecoder decoder(&wire);
  absl::StatusOr<TensorView> input = decoder.Decode(got->input(), "input");
  ASSERT_TRUE(input.ok());
  const char* p = static_cast<const char*>(input->data);
  for (const grpc::Slice& s : slices) {
    const char* b = reinterpret_cast<const char*>(s.begin());
    EXPECT_FALSE(p >= b && p < b + s.size()) << "the values span slices: they must be a copy";
  }
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % BufferPool::kAlignment, 0u);
  EXPECT_EQ(std::memcmp(p, values.data(), values.size() * 4), 0);
}

// Bytes that are not an encoding of the message: protobuf's parser refuses
// each of them too, and ours says what and where.
TEST(RequestParserTest, MalformedBytesAreRefusedWithWhatFailed) {
  std::string deep;
  for (int i = 0; i < 100000; ++i) deep += "\xa3\x06";  // field 100, start-group
  std::string long_varint = "\x18" + std::string(10, '\xff') + "\x01";
  struct Case {
    std::string name, bytes, message;
  };
  const Case cases[] = {
      {"length past the end", std::string("\x0a\x7f\x01", 3),
       "input: length 127 runs past the end of its message (1 bytes left) (at byte 2 of 3)"},
      {"truncated length", "\x0a", "input: the message ends inside a varint (at byte 1 of 1)"},
      {"truncated tag", "\x80", "tag: a varint is truncated or longer than 10 bytes"},
      {"field number 0", std::string("\x00\x01", 2), "tag: field number 0 is not allowed"},
      {"invalid wire type", "\x0f", "input: invalid wire type 7"},
      {"overlong varint", long_varint, "reduction: a varint is truncated or longer than 10 bytes"},
      {"length in 6 bytes", std::string("\x0a\x80\x80\x80\x80\x80\x00", 7),
       "input: a length is longer than 5 bytes"},
      {"length of 2 GiB", std::string("\x0a\x80\x80\x80\x80\x08", 6),
       "input: length 2147483648 is above protobuf's limit of 2147483631 bytes"},
      {"tag in 6 bytes", std::string("\xb2\x80\x80\x80\x80\x00\x00", 7),
       "tag: a tag is longer than 5 bytes"},
      {"tag in 6 bytes in a tensor", std::string("\x0a\x07\xba\x80\x80\x80\x80\x00\x00", 9),
       "input.tag: a tag is longer than 5 bytes"},
      {"unclosed group", "\x0b\x08\x01",
       "input: a group has no end-group tag before the end of its message"},
      {"mismatched group", "\x0b\x14", "input: group 1 is closed by end-group 2"},
      {"stray end-group", "\x0c", "input: end-group tag of field 1 without a start-group"},
      {"groups nested 100000 deep", deep, "field 100: groups nested more than 100 deep"},
      {"request_id not UTF-8", std::string("\x32\x01\xff", 3), "request_id: is not valid UTF-8"},
      {"float_values of 3 bytes", std::string("\x0a\x05\x1a\x03\x00\x00\x00", 7),
       "input.float_values: packed length 3 is not a multiple of 4"},
      {"packed varint cut", std::string("\x12\x03\x2a\x01\x80", 5),
       "target.int64_values: the packed field ends inside a varint"},
      {"fixed32 cut", std::string("\x0a\x03\x1d\x00\x00", 5),
       "input.float_values: the message ends inside a value"},
      {"tensor past its message", std::string("\x0a\x02\x3a\x05xx", 5),
       "input.raw_data: length 5 runs past the end of its message (0 bytes left)"},
      {"nested tensor", std::string("\x7a\x04\x0a\x02\x3a\x09", 6),
       "cross_entropy.weight.raw_data: length 9 runs past the end of its message"},
      {"loss message that does not parse", std::string("\x52\x02\x0a\x05", 4),
       "mse: does not parse as lossservice.v1.MseLoss"},
  };
  BufferPool pool(1 << 20);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::EvaluateRequest protobuf;
    EXPECT_FALSE(protobuf.ParseFromString(c.bytes)) << "protobuf accepts it";
    for (std::vector<grpc::Slice> slices : Cuts(c.bytes, 7)) {
      pb::Arena arena;
      auto* got = pb::Arena::CreateMessage<v1::EvaluateRequest>(&arena);
      WireTensors wire;
      const absl::Status s = ParseMessage(&slices, got, &wire, pool);
      EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
      EXPECT_EQ(s.message().rfind("request does not parse as lossservice.v1.EvaluateRequest: ", 0),
                0u)
          << s.message();
      EXPECT_NE(s.message().find(c.message), std::string::npos) << s.message();
    }
  }
}

// ---- the tensor decoder -----------------------------------------------------------------------

TEST(TensorDecoderTest, RefusesBadTensorsWithExactMessages) {
  const auto with = [](v1::Tensor t, auto change) {
    change(t);
    return t;
  };
  struct Case {
    std::string name;
    v1::Tensor tensor;
    std::string message;
  };
  const Case cases[] = {
      {"count", Floats({2, 3}, {1, 2, 3, 4, 5}),
       "input: float_values holds 5 values but shape [2, 3] needs 6"},
      {"raw size",
       with(v1::Tensor(),
            [](v1::Tensor& t) {
              t.add_shape(2);
              t.set_dtype(v1::DATA_TYPE_FLOAT64);
              t.set_raw_data(std::string(12, '\0'));
            }),
       "input: raw_data has 12 bytes but shape [2] of float64 needs 16"},
      {"raw without dtype",
       with(v1::Tensor(),
            [](v1::Tensor& t) {
              t.add_shape(1);
              t.set_raw_data(std::string(4, '\0'));
            }),
       "input: raw_data needs dtype to be set"},
      {"two value fields", with(Floats({1}, {1}), [](v1::Tensor& t) { t.add_double_values(1); }),
       "input: more than one value field is set (float_values, double_values); use exactly one"},
      {"dtype disagrees",
       with(Floats({1}, {1}), [](v1::Tensor& t) { t.set_dtype(v1::DATA_TYPE_FLOAT64); }),
       "input: dtype DATA_TYPE_FLOAT64 disagrees with float_values"},
      {"negative dimension", Floats({2, -1}, {}), "input: shape [2, -1] has a negative dimension"},
      {"unknown dtype",
       with(Floats({1}, {1}), [](v1::Tensor& t) { t.set_dtype(static_cast<v1::DataType>(42)); }),
       "input: unknown dtype 42"},
      {"huge empty",
       with(Floats({int64_t{1} << 40, 0}, {}),
            [](v1::Tensor& t) { t.set_dtype(v1::DATA_TYPE_FLOAT32); }),
       "input: shape [1099511627776, 0] is too large (its non-zero dimensions multiply to more "
       "than 2^31)"},
      {"no values", Floats({3}, {}), "input: holds 0 values but shape [3] needs 3"},
      {"empty without dtype", Floats({0}, {}), "input: an empty tensor (shape [0]) must set dtype"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    TensorDecoder decoder;
    absl::StatusOr<TensorView> v = decoder.Decode(c.tensor, "input");
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(v.status().message(), c.message);
  }
  TensorDecoder decoder;
  const v1::Tensor int64s = Int64s({2}, {4, 5});  // the view points into it
  absl::StatusOr<TensorView> ok = decoder.Decode(int64s, "target");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->dtype, DType::kInt64);
  EXPECT_EQ(ok->data_as<int64_t>()[1], 5);
}

// ---- the response writer ----------------------------------------------------------------------

TEST(ResponseWriterTest, OutputsBecomeTheResponse) {
  BufferPool pool(1 << 20);
  for (Encoding e : {Encoding::kTyped, Encoding::kRaw}) {
    for (int64_t n : {int64_t{3}, int64_t{3000}}) {
      SCOPED_TRACE(absl::StrCat(e == Encoding::kRaw ? "raw " : "typed ", n));
      ResponseAllocator out(e, pool);
      auto* loss =
          static_cast<double*>(out.Allocate(OutputAllocator::Slot::kLoss, DType::kFloat64, {}));
      *loss = 0.125;
      auto* grad =
          static_cast<double*>(out.Allocate(OutputAllocator::Slot::kGrad, DType::kFloat64, {n, 1}));
      for (int64_t i = 0; i < n; ++i) grad[i] = static_cast<double>(i) - 0.5;
      v1::EvaluateResponse r;
      ASSERT_TRUE(test::ParseBuffer(EvaluateResponseMessage(out, true, "id").Finish(), &r));
      EXPECT_EQ(r.request_id(), "id");
      const Tensor l = test::FromProto(r.loss(), e);
      EXPECT_EQ(l.dtype, DType::kFloat64);
      EXPECT_TRUE(l.shape.empty());
      EXPECT_EQ(l.data_as<double>()[0], 0.125);
      const Tensor g = test::FromProto(r.grad(), e);
      EXPECT_EQ(g.shape, (Shape{n, 1}));
      for (int64_t i = 0; i < n; ++i)
        EXPECT_EQ(g.data_as<double>()[i], static_cast<double>(i) - 0.5);
    }
  }
  // Without the gradient, only the loss.
  ResponseAllocator out(Encoding::kTyped, pool);
  *static_cast<float*>(out.Allocate(OutputAllocator::Slot::kLoss, DType::kFloat32, {})) = 2.0f;
  v1::EvaluateResponse r;
  ASSERT_TRUE(test::ParseBuffer(EvaluateResponseMessage(out, false, "").Finish(), &r));
  EXPECT_FALSE(r.has_grad());
  ASSERT_EQ(r.loss().float_values_size(), 1);
  EXPECT_EQ(r.loss().float_values(0), 2.0f);
  EXPECT_EQ(r.loss().dtype(), v1::DATA_TYPE_FLOAT32);
}

TEST(ResponseWriterTest, StreamResponsesAndErrors) {
  BufferPool pool(1 << 20);
  ResponseAllocator out(Encoding::kRaw, pool);
  *static_cast<float*>(out.Allocate(OutputAllocator::Slot::kOutput, DType::kFloat32, {1})) = 0.5f;
  v1::ActivateResponse a;
  ASSERT_TRUE(test::ParseBuffer(ActivateResponseMessage(out).Finish(), &a));
  EXPECT_EQ(test::FromProto(a.output(), Encoding::kRaw).data_as<float>()[0], 0.5f);

  ResponseAllocator loss(Encoding::kTyped, pool);
  *static_cast<float*>(loss.Allocate(OutputAllocator::Slot::kLoss, DType::kFloat32, {})) = 1.0f;
  v1::EvaluateStreamResponse s;
  ASSERT_TRUE(test::ParseBuffer(StreamResponse(EvaluateResponseMessage(loss, false, "r")), &s));
  ASSERT_TRUE(s.has_response());
  EXPECT_EQ(s.response().request_id(), "r");
  EXPECT_EQ(s.response().loss().float_values(0), 1.0f);

  v1::EvaluateStreamResponse e;
  ASSERT_TRUE(test::ParseBuffer(
      StreamError(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad"), "r2"), &e));
  ASSERT_TRUE(e.has_error());
  EXPECT_EQ(e.error().code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_EQ(e.error().message(), "bad");
  EXPECT_EQ(e.error().request_id(), "r2");
}

// ---- the buffer pool ----------------------------------------------------------------------------

TEST(BufferPoolTest, ReusesReleasedBuffersUpToItsBound) {
  BufferPool pool(size_t{1} << 20);
  char* first;
  {
    BufferPool::Buffer b = pool.Acquire(300000);
    ASSERT_TRUE(b);
    EXPECT_GE(b.capacity(), 300000u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % BufferPool::kAlignment, 0u);
    first = b.data();
    std::memset(b.data(), 1, 300000);
  }
  EXPECT_GT(pool.cached_bytes(), 0u);
  {
    BufferPool::Buffer again = pool.Acquire(290000);  // the same size class
    EXPECT_EQ(again.data(), first);
    EXPECT_EQ(pool.cached_bytes(), 0u);
  }
  {
    // Over the bound: freed, not kept.
    BufferPool::Buffer big = pool.Acquire(size_t{2} << 20);
  }
  EXPECT_LE(pool.cached_bytes(), size_t{1} << 20);
  // A slice owns its buffer and returns it when gRPC lets go.
  const size_t before = pool.cached_bytes();
  {
    grpc::Slice s = BufferPool::ToSlice(pool.Acquire(100000), 100000);
    EXPECT_EQ(s.size(), 100000u);
  }
  EXPECT_GT(pool.cached_bytes(), before);
}

}  // namespace
}  // namespace lossservice
