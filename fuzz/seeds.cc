#include "fuzz/seeds.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "lossservice/v1/loss_service.pb.h"
#include "server/wire_format.h"
#include "tests/hostile_requests.h"
#include "tests/server_testing.h"

namespace lossservice::fuzz {
namespace {

namespace pb = ::google::protobuf;
using test::HostileRequest;

// Every golden request of `activation` cases or of loss cases, both
// encodings, error cases included (they parse and then fail validation).
// At most kPerName cases of each loss (activation), so that the corpus
// stays a few hundred inputs that cover every loss, option and error.
std::vector<std::string> GoldenRequests(bool activation) {
  constexpr int kPerName = 4;
  std::map<std::string, int> taken;
  std::vector<std::string> out;
  for (const golden::GoldenCase& c : test::GoldenCases()) {
    if (c.is_activation() != activation) continue;
    if (++taken[c.is_activation() ? c.activation : c.loss] > kPerName) continue;
    for (Encoding e : {Encoding::kTyped, Encoding::kRaw}) {
      std::string bytes = activation ? test::ActivateRequestFor(c, e).SerializeAsString()
                                     : test::EvaluateRequestFor(c, e).SerializeAsString();
      if (bytes.size() <= kMaxSeedBytes) out.push_back(std::move(bytes));
    }
  }
  return out;
}

std::vector<std::string> HostileRequests(std::set<HostileRequest::Method> methods) {
  std::vector<std::string> out;
  for (const HostileRequest& h : test::HostileRequests()) {
    if (methods.count(h.method) != 0 && h.bytes.size() <= kMaxSeedBytes) out.push_back(h.bytes);
  }
  return out;
}

// A dictionary entry: "\xNN" for every byte.
std::string Entry(const std::string& bytes) {
  std::string out = "\"";
  for (unsigned char c : bytes) absl::StrAppend(&out, "\\x", absl::Hex(c, absl::kZeroPad2));
  return out + "\"\n";
}

std::string Varint(uint64_t v) {
  std::string out;
  wire::AppendVarint(v, &out);
  return out;
}

template <typename T>
std::string BytesOf(T v) {
  std::string out(sizeof v, '\0');
  std::memcpy(out.data(), &v, sizeof v);
  return out;
}

// The tags of every field of `d` and of the messages it holds: the wire type
// it is declared with, and length-delimited for packed repeated scalars.
void Tags(const pb::Descriptor* d, std::set<const pb::Descriptor*>* seen,
          std::set<std::string>* out) {
  if (!seen->insert(d).second) return;
  for (int i = 0; i < d->field_count(); ++i) {
    const pb::FieldDescriptor* f = d->field(i);
    wire::WireType type = wire::kLengthDelimited;
    switch (f->type()) {
      case pb::FieldDescriptor::TYPE_DOUBLE:
      case pb::FieldDescriptor::TYPE_FIXED64:
      case pb::FieldDescriptor::TYPE_SFIXED64:
        type = wire::kFixed64;
        break;
      case pb::FieldDescriptor::TYPE_FLOAT:
      case pb::FieldDescriptor::TYPE_FIXED32:
      case pb::FieldDescriptor::TYPE_SFIXED32:
        type = wire::kFixed32;
        break;
      case pb::FieldDescriptor::TYPE_STRING:
      case pb::FieldDescriptor::TYPE_BYTES:
      case pb::FieldDescriptor::TYPE_MESSAGE:
        break;
      default:
        type = wire::kVarint;
    }
    out->insert(Varint(wire::Tag(f->number(), type)));
    if (f->is_repeated()) out->insert(Varint(wire::Tag(f->number(), wire::kLengthDelimited)));
    if (f->message_type() != nullptr) Tags(f->message_type(), seen, out);
    if (f->enum_type() != nullptr) {
      for (int v = 0; v < f->enum_type()->value_count(); ++v) {
        out->insert(Varint(static_cast<uint64_t>(f->enum_type()->value(v)->number())));
      }
    }
  }
}

}  // namespace

std::vector<std::string> Seeds(Target target) {
  using M = HostileRequest::Method;
  switch (target) {
    case Target::kEvaluate: {
      std::vector<std::string> seeds = GoldenRequests(false);
      for (std::string& h : HostileRequests({M::kEvaluate, M::kEvaluateStream})) {
        seeds.push_back(std::move(h));
      }
      return seeds;
    }
    case Target::kActivate: {
      std::vector<std::string> seeds = GoldenRequests(true);
      for (std::string& h : HostileRequests({M::kActivate})) seeds.push_back(std::move(h));
      return seeds;
    }
    case Target::kStream: {
      // Runs of four golden requests, every third item cancelled in every
      // other stream, then each hostile request between two valid ones.
      const std::vector<std::string> valid = GoldenRequests(false);
      std::vector<std::string> seeds;
      for (size_t i = 0; i + 4 <= valid.size(); i += 4) {
        std::string stream;
        for (size_t k = 0; k < 4; ++k) {
          stream += EncodeStreamItem(valid[i + k], (i / 4) % 2 == 1 && k == 2);
        }
        if (stream.size() <= kMaxSeedBytes) seeds.push_back(std::move(stream));
      }
      size_t next = 0;
      for (const std::string& h : HostileRequests({M::kEvaluate, M::kEvaluateStream})) {
        std::string stream = EncodeStreamItem(valid[next % valid.size()]);
        stream += EncodeStreamItem(h);
        stream += EncodeStreamItem(valid[(next + 1) % valid.size()]);
        next += 2;
        if (stream.size() <= kMaxSeedBytes) seeds.push_back(std::move(stream));
      }
      return seeds;
    }
  }
  return {};
}

std::string Dictionary(Target target) {
  std::set<std::string> entries;
  std::set<const pb::Descriptor*> seen;
  Tags(target == Target::kActivate ? v1::ActivateRequest::descriptor()
                                   : v1::EvaluateRequest::descriptor(),
       &seen, &entries);
  // Start- and end-group tags, a 10-byte -1, the largest lengths.
  entries.insert(Varint(wire::Tag(1, wire::kStartGroup)));
  entries.insert(Varint(wire::Tag(1, wire::kEndGroup)));
  entries.insert(Varint(static_cast<uint64_t>(-1)));
  entries.insert(Varint(uint64_t{1} << 31));
  entries.insert(Varint(uint64_t{1} << 62));
  entries.insert(Varint(static_cast<uint64_t>(std::numeric_limits<int64_t>::max())));
  for (double v : {std::nan(""), std::numeric_limits<double>::infinity(),
                   -std::numeric_limits<double>::infinity(), -0.0, 1e308}) {
    entries.insert(BytesOf(v));
    entries.insert(BytesOf(static_cast<float>(v)));
  }
  entries.insert(BytesOf(std::numeric_limits<float>::denorm_min()));
  std::string out = absl::StrCat("# ", TargetName(target),
                                 ": tags of every field, enum values, edge values\n");
  for (const std::string& e : entries) out += Entry(e);
  return out;
}

}  // namespace lossservice::fuzz
