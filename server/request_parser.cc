#include "server/request_parser.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/coded_stream.h"
#include "server/wire_format.h"

namespace lossservice {
namespace {

namespace pb = ::google::protobuf;
using wire::SliceReader;

// Protobuf's own default nesting limit.
constexpr int kMaxDepth = 100;

// How the parser treats a field.
enum class Kind : uint8_t {
  kOther,      // handed to protobuf's parser
  kTensor,     // a lossservice.v1.Tensor: read here
  kContainer,  // a message that holds tensors somewhere inside: walked here
};

// For every message of the contract's file: each field's kind, by number.
class Schema {
 public:
  static const Schema& Get() {
    static const Schema* schema = new Schema();
    return *schema;
  }

  struct Field {
    const pb::FieldDescriptor* descriptor = nullptr;
    Kind kind = Kind::kOther;
  };
  // The field `number` of `message`, or nullptr if the message has none (or
  // is not of this file: all of it is then protobuf's).
  const Field* Find(const pb::Descriptor* message, uint64_t number) const {
    auto it = messages_.find(message);
    if (it == messages_.end() || number >= it->second.size()) return nullptr;
    const Field& f = it->second[number];
    return f.descriptor != nullptr ? &f : nullptr;
  }

 private:
  Schema() {
    const pb::Descriptor* tensor = v1::Tensor::descriptor();
    const pb::FileDescriptor* file = tensor->file();
    std::vector<const pb::Descriptor*> all;
    for (int i = 0; i < file->message_type_count(); ++i) Collect(file->message_type(i), &all);
    for (const pb::Descriptor* m : all) {
      std::vector<Field>& fields = messages_[m];
      for (int i = 0; i < m->field_count(); ++i) {
        const pb::FieldDescriptor* f = m->field(i);
        if (static_cast<size_t>(f->number()) >= fields.size()) fields.resize(f->number() + 1);
        Kind kind = Kind::kOther;
        if (f->message_type() == tensor) {
          kind = Kind::kTensor;
        } else if (f->message_type() != nullptr && HoldsTensors(f->message_type(), tensor, 0)) {
          kind = Kind::kContainer;
        }
        fields[f->number()] = {f, kind};
      }
    }
  }
  static void Collect(const pb::Descriptor* m, std::vector<const pb::Descriptor*>* out) {
    out->push_back(m);
    for (int i = 0; i < m->nested_type_count(); ++i) Collect(m->nested_type(i), out);
  }
  static bool HoldsTensors(const pb::Descriptor* m, const pb::Descriptor* tensor, int depth) {
    if (depth > 8) return false;
    for (int i = 0; i < m->field_count(); ++i) {
      const pb::Descriptor* type = m->field(i)->message_type();
      if (type == tensor || (type != nullptr && HoldsTensors(type, tensor, depth + 1))) return true;
    }
    return false;
  }

  std::map<const pb::Descriptor*, std::vector<Field>> messages_;
};

// The chain of field names from the request to the message being parsed.
struct Path {
  const Path* parent;
  absl::string_view name;
};

std::string PathString(const Path* path, absl::string_view field) {
  std::string s(field);
  for (const Path* p = path; p != nullptr; p = p->parent) s = absl::StrCat(p->name, ".", s);
  return s;
}

class Parser {
 public:
  Parser(SliceReader& reader, WireTensors* wire, BufferPool& pool)
      : r_(reader), wire_(wire), pool_(pool) {}

  bool ParseMessage(size_t end, pb::Message* message, const Path* path);
  absl::Status status(const pb::Descriptor* type) const {
    if (error_.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat("request does not parse as ", type->full_name(), ": ", error_));
  }
  // Moves the buffers of fields that grew by appending into `wire_`.
  void KeepGrown();

 private:
  bool Fail(const Path* path, absl::string_view field, absl::string_view what) {
    if (error_.empty()) {
      error_ = absl::StrCat(PathString(path, field), ": ", what, " (at byte ", r_.position(),
                            " of ", r_.size(), ")");
    }
    return false;
  }
  bool ReadVarint(size_t end, uint64_t* v, const Path* path, absl::string_view field);
  bool ReadLength(size_t end, size_t* length, const Path* path, absl::string_view field);
  // A tag as protobuf reads one: at most 5 bytes, kept to its low 32 bits.
  bool ReadTag(size_t end, uint64_t* tag, const Path* path);
  bool SkipField(uint64_t tag, size_t end, int depth, const Path* path, absl::string_view field);
  // Skips the field whose tag was read at `field_start` and hands its bytes
  // to protobuf's parser to merge into `message`.
  bool MergeField(const SliceReader& field_start, uint64_t tag, size_t end, pb::Message* message,
                  const pb::FieldDescriptor* field, const Path* path, absl::string_view name);
  // The next `n` bytes: in place if they lie in one slice, else copied once.
  const char* ReadSpan(size_t n);
  bool ParseTensor(size_t end, v1::Tensor* t, const Path* path);
  bool ParsePackedVarints(size_t length, bool int32, TensorValues::Field* field,
                          const v1::Tensor* t, int index, const Path* path, absl::string_view name);
  // Appends `n` elements of `width` bytes to `field` (the values of a field
  // that occurs more than once, or unpacked, are concatenated as protobuf
  // does).
  // `copy`: `data` does not outlive the call.
  void Append(TensorValues::Field* field, const v1::Tensor* t, int index, const char* data,
              int64_t n, size_t width, bool copy = false);

  // The storage of a field that has been appended to.
  struct Grown {
    const v1::Tensor* tensor;
    int index;
    BufferPool::Buffer buffer;
    size_t bytes;
  };

  SliceReader& r_;
  WireTensors* wire_;
  BufferPool& pool_;
  std::vector<Grown> grown_;
  std::string error_;
};

bool Parser::ReadVarint(size_t end, uint64_t* v, const Path* path, absl::string_view field) {
  if (r_.position() >= end) return Fail(path, field, "the message ends inside a varint");
  if (!r_.ReadVarint(v)) {
    return Fail(path, field, "a varint is truncated or longer than 10 bytes");
  }
  if (r_.position() > end) {
    return Fail(path, field, "a varint runs past the end of its message");
  }
  return true;
}

bool Parser::ReadTag(size_t end, uint64_t* tag, const Path* path) {
  const size_t start = r_.position();
  if (!ReadVarint(end, tag, path, "tag")) return false;
  if (r_.position() - start > 5) return Fail(path, "tag", "a tag is longer than 5 bytes");
  *tag = static_cast<uint32_t>(*tag);
  return true;
}

bool Parser::ReadLength(size_t end, size_t* length, const Path* path, absl::string_view field) {
  const size_t start = r_.position();
  uint64_t n;
  if (!ReadVarint(end, &n, path, field)) return false;
  // As protobuf's ReadSize: at most 5 bytes, below 2^31 less its 16 slop
  // bytes.
  constexpr uint64_t kMaxLength = std::numeric_limits<int32_t>::max() - 16;
  if (r_.position() - start > 5) return Fail(path, field, "a length is longer than 5 bytes");
  if (n > kMaxLength) {
    return Fail(path, field,
                absl::StrCat("length ", n, " is above protobuf's limit of ", kMaxLength, " bytes"));
  }
  const size_t left = end - r_.position();
  if (n > left) {
    return Fail(
        path, field,
        absl::StrCat("length ", n, " runs past the end of its message (", left, " bytes left)"));
  }
  *length = static_cast<size_t>(n);
  return true;
}

bool Parser::SkipField(uint64_t tag, size_t end, int depth, const Path* path,
                       absl::string_view field) {
  const uint32_t type = static_cast<uint32_t>(tag & 7);
  switch (type) {
    case wire::kVarint: {
      uint64_t v;
      return ReadVarint(end, &v, path, field);
    }
    case wire::kFixed64:
    case wire::kFixed32: {
      const size_t n = type == wire::kFixed64 ? 8 : 4;
      if (end - r_.position() < n) {
        return Fail(path, field,
                    absl::StrCat("the message ends inside a ", wire::WireTypeName(type), " value"));
      }
      return r_.Skip(n);
    }
    case wire::kLengthDelimited: {
      size_t n;
      return ReadLength(end, &n, path, field) && r_.Skip(n);
    }
    case wire::kStartGroup: {
      if (depth >= kMaxDepth) {
        return Fail(path, field, absl::StrCat("groups nested more than ", kMaxDepth, " deep"));
      }
      while (true) {
        uint64_t inner;
        if (r_.position() >= end) {
          return Fail(path, field, "a group has no end-group tag before the end of its message");
        }
        if (!ReadTag(end, &inner, path)) return false;
        if ((inner & 7) == wire::kEndGroup) {
          if ((inner >> 3) != (tag >> 3)) {
            return Fail(path, field,
                        absl::StrCat("group ", tag >> 3, " is closed by end-group ", inner >> 3));
          }
          return true;
        }
        if (!SkipField(inner, end, depth + 1, path, field)) return false;
      }
    }
    case wire::kEndGroup:
      return Fail(path, field,
                  absl::StrCat("end-group tag of field ", tag >> 3, " without a start-group"));
    default:
      return Fail(path, field, absl::StrCat("invalid wire type ", type));
  }
}

const char* Parser::ReadSpan(size_t n) {
  const char* data;
  if (r_.ReadContiguous(n, &data)) return data;
  BufferPool::Buffer copy = pool_.Acquire(n);
  r_.Copy(n, copy.data());
  return wire_->Keep(std::move(copy));
}

void Parser::Append(TensorValues::Field* field, const v1::Tensor* t, int index, const char* data,
                    int64_t n, size_t width, bool copy) {
  if (field->count == 0 && !copy) {
    // The first values of the field: referenced where they are.
    field->data = data;
    field->count = n;
    return;
  }
  const size_t old_bytes = static_cast<size_t>(field->count) * width;
  const size_t new_bytes = old_bytes + static_cast<size_t>(n) * width;
  Grown* g = nullptr;
  for (Grown& candidate : grown_) {
    if (candidate.tensor == t && candidate.index == index) g = &candidate;
  }
  if (g == nullptr) g = &grown_.emplace_back(Grown{t, index, {}, 0});
  if (!g->buffer || g->buffer.capacity() < new_bytes || g->buffer.data() != field->data) {
    BufferPool::Buffer bigger = pool_.Acquire(std::max<size_t>(2 * new_bytes, 64));
    if (old_bytes > 0) std::memcpy(bigger.data(), field->data, old_bytes);
    g->buffer = std::move(bigger);
  }
  std::memcpy(g->buffer.data() + old_bytes, data, new_bytes - old_bytes);
  g->bytes = new_bytes;
  field->data = g->buffer.data();
  field->count += n;
}

void Parser::KeepGrown() {
  for (Grown& g : grown_) wire_->Keep(std::move(g.buffer));
  grown_.clear();
}

bool Parser::ParsePackedVarints(size_t length, bool int32, TensorValues::Field* field,
                                const v1::Tensor* t, int index, const Path* path,
                                absl::string_view name) {
  const char* p = ReadSpan(length);
  const char* stop = p + length;
  int64_t count = 0;
  for (const char* q = p; q < stop; ++q) count += static_cast<uint8_t>(*q) < 0x80;
  if (count == 0 && length == 0) return true;
  const size_t width = int32 ? 4 : 8;
  BufferPool::Buffer values = pool_.Acquire(static_cast<size_t>(count) * width);
  char* out = values.data();
  for (int64_t i = 0; i < count; ++i) {
    uint64_t v;
    if (!wire::DecodeVarint(&p, stop, &v)) {
      return Fail(path, name, "a packed varint is longer than 10 bytes");
    }
    if (int32) {
      const int32_t x = static_cast<int32_t>(v);
      std::memcpy(out + i * 4, &x, 4);
    } else {
      const int64_t x = static_cast<int64_t>(v);
      std::memcpy(out + i * 8, &x, 8);
    }
  }
  if (p != stop) return Fail(path, name, "the packed field ends inside a varint");
  const char* kept = wire_->Keep(std::move(values));
  Append(field, t, index, kept, count, width);
  return true;
}

bool Parser::MergeField(const SliceReader& field_start, uint64_t tag, size_t end,
                        pb::Message* message, const pb::FieldDescriptor* field, const Path* path,
                        absl::string_view name) {
  if (!SkipField(tag, end, 0, path, name)) return false;
  const size_t n = r_.position() - field_start.position();
  SliceReader at = field_start;
  const char* bytes;
  std::string copy;
  if (!at.ReadContiguous(n, &bytes)) {
    copy.resize(n);
    at.Copy(n, copy.data());
    bytes = copy.data();
  }
  pb::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes), static_cast<int>(n));
  if (message->MergePartialFromCodedStream(&in) && in.ConsumedEntireMessage()) return true;
  std::string what = "does not parse";
  if (field != nullptr && field->type() == pb::FieldDescriptor::TYPE_STRING) {
    what = "is not valid UTF-8";
  } else if (field != nullptr && field->message_type() != nullptr) {
    what = absl::StrCat("does not parse as ", field->message_type()->full_name());
  }
  r_ = field_start;
  return Fail(path, name, what);
}

bool Parser::ParseTensor(size_t end, v1::Tensor* t, const Path* path) {
  TensorValues& v = wire_->Entry(t);
  while (r_.position() < end) {
    const SliceReader field_start = r_;
    uint64_t tag;
    if (!ReadTag(end, &tag, path)) return false;
    const uint64_t number = tag >> 3;
    const uint32_t type = static_cast<uint32_t>(tag & 7);
    if (number == 0) return Fail(path, "tag", "field number 0 is not allowed");
    // The value fields: (number, element width, wire type of one unpacked element).
    struct Value {
      TensorValues::Field* field;
      absl::string_view name;
      size_t width;
      uint32_t unpacked;
      bool varint;
    };
    const Value values[] = {
        {&v.float_values, "float_values", 4, wire::kFixed32, false},
        {&v.double_values, "double_values", 8, wire::kFixed64, false},
        {&v.int64_values, "int64_values", 8, wire::kVarint, true},
        {&v.int32_values, "int32_values", 4, wire::kVarint, true},
    };
    if (number == 1 && type == wire::kLengthDelimited) {  // shape, packed
      size_t n;
      if (!ReadLength(end, &n, path, "shape")) return false;
      const size_t stop = r_.position() + n;
      while (r_.position() < stop) {
        uint64_t d;
        if (!ReadVarint(stop, &d, path, "shape")) return false;
        t->add_shape(static_cast<int64_t>(d));
      }
    } else if (number == 1 && type == wire::kVarint) {  // shape, one unpacked element
      uint64_t d;
      if (!ReadVarint(end, &d, path, "shape")) return false;
      t->add_shape(static_cast<int64_t>(d));
    } else if (number == 2 && type == wire::kVarint) {
      uint64_t d;
      if (!ReadVarint(end, &d, path, "dtype")) return false;
      t->set_dtype(static_cast<v1::DataType>(static_cast<int32_t>(d)));
    } else if (number >= 3 && number <= 6 && type == wire::kLengthDelimited) {
      const Value& f = values[number - 3];
      size_t n;
      if (!ReadLength(end, &n, path, f.name)) return false;
      if (f.varint) {
        if (!ParsePackedVarints(n, f.width == 4, f.field, t, static_cast<int>(number), path,
                                f.name)) {
          return false;
        }
      } else {
        if (n % f.width != 0) {
          return Fail(path, f.name,
                      absl::StrCat("packed length ", n, " is not a multiple of ", f.width));
        }
        Append(f.field, t, static_cast<int>(number), ReadSpan(n), static_cast<int64_t>(n / f.width),
               f.width);
      }
    } else if (number >= 3 && number <= 6 && type == values[number - 3].unpacked) {
      const Value& f = values[number - 3];
      char element[8];
      if (f.varint) {
        uint64_t x;
        if (!ReadVarint(end, &x, path, f.name)) return false;
        if (f.width == 4) {
          const int32_t y = static_cast<int32_t>(x);
          std::memcpy(element, &y, 4);
        } else {
          std::memcpy(element, &x, 8);
        }
      } else {
        if (end - r_.position() < f.width) {
          return Fail(path, f.name, "the message ends inside a value");
        }
        r_.Copy(f.width, element);
      }
      // An unpacked element is copied: the next ones are appended to it.
      Append(f.field, t, static_cast<int>(number), element, 1, f.width, /*copy=*/true);
    } else if (number == 7 && type == wire::kLengthDelimited) {
      size_t n;
      if (!ReadLength(end, &n, path, "raw_data")) return false;
      // A bytes field that occurs twice keeps the last, as in protobuf.
      v.raw_data = {ReadSpan(n), static_cast<int64_t>(n)};
    } else {
      // Unknown fields, and known ones of another wire type (which protobuf
      // keeps as unknown), go to protobuf.
      if (!MergeField(field_start, tag, end, t, nullptr, path, absl::StrCat("field ", number))) {
        return false;
      }
    }
  }
  return true;
}

bool Parser::ParseMessage(size_t end, pb::Message* message, const Path* path) {
  const pb::Descriptor* type = message->GetDescriptor();
  const pb::Reflection* reflection = message->GetReflection();
  const Schema& schema = Schema::Get();
  while (r_.position() < end) {
    const SliceReader field_start = r_;
    uint64_t tag;
    if (!ReadTag(end, &tag, path)) return false;
    const uint64_t number = tag >> 3;
    if (number == 0) return Fail(path, "tag", "field number 0 is not allowed");
    const Schema::Field* f = schema.Find(type, number);
    std::string unknown;
    if (f == nullptr) unknown = absl::StrCat("field ", number);
    const absl::string_view name =
        f != nullptr ? absl::string_view(f->descriptor->name()) : unknown;
    if (f != nullptr && f->kind != Kind::kOther && (tag & 7) == wire::kLengthDelimited) {
      size_t n;
      if (!ReadLength(end, &n, path, name)) return false;
      pb::Message* sub = f->descriptor->is_repeated()
                             ? reflection->AddMessage(message, f->descriptor)
                             : reflection->MutableMessage(message, f->descriptor);
      const Path here{path, f->descriptor->name()};
      const size_t stop = r_.position() + n;
      const bool ok = f->kind == Kind::kTensor
                          ? ParseTensor(stop, static_cast<v1::Tensor*>(sub), &here)
                          : ParseMessage(stop, sub, &here);
      if (!ok) return false;
      continue;
    }
    // Any other field goes to protobuf's parser as it is.
    if (!MergeField(field_start, tag, end, message, f != nullptr ? f->descriptor : nullptr, path,
                    name)) {
      return false;
    }
  }
  if (r_.position() != end) return Fail(path, "tag", "a field runs past the end of its message");
  return true;
}

}  // namespace

absl::Status ParseMessage(std::vector<grpc::Slice>* slices, pb::Message* message, WireTensors* wire,
                          BufferPool& pool) {
  SliceReader reader(slices);
  Parser parser(reader, wire, pool);
  const bool ok = parser.ParseMessage(reader.size(), message, nullptr);
  parser.KeepGrown();
  if (ok) return absl::OkStatus();
  return parser.status(message->GetDescriptor());
}

}  // namespace lossservice
