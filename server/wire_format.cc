#include "server/wire_format.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace lossservice::wire {
absl::string_view WireTypeName(uint32_t wire_type) {
  switch (wire_type) {
    case kVarint:
      return "varint";
    case kFixed64:
      return "fixed64";
    case kLengthDelimited:
      return "length-delimited";
    case kStartGroup:
      return "start-group";
    case kEndGroup:
      return "end-group";
    case kFixed32:
      return "fixed32";
    default:
      return "invalid";
  }
}

SliceReader::SliceReader(absl::Span<const grpc::Slice> slices) : slices_(slices) {
  for (const grpc::Slice& s : slices_) size_ += s.size();
  if (!slices_.empty()) {
    cur_ = reinterpret_cast<const char*>(slices_[0].begin());
    end_ = cur_ + slices_[0].size();
  }
  Normalize();
}

SliceReader::SliceReader(std::vector<grpc::Slice>* release) : SliceReader(*release) {
  release_ = release;
}

void SliceReader::Normalize() {
  while (cur_ == end_ && index_ + 1 < slices_.size()) {
    ++index_;
    pinned_ = false;
    cur_ = reinterpret_cast<const char*>(slices_[index_].begin());
    end_ = cur_ + slices_[index_].size();
  }
}

bool DecodeVarint(const char** p, const char* end, uint64_t* value) {
  uint64_t result = 0;
  const char* q = *p;
  for (int shift = 0; shift < 70 && q < end; shift += 7) {
    const uint8_t byte = static_cast<uint8_t>(*q++);
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if (byte < 0x80) {
      *p = q;
      *value = result;
      return true;
    }
  }
  return false;  // truncated, or longer than 10 bytes
}

bool SliceReader::ReadVarint(uint64_t* value) {
  if (end_ - cur_ >= 10 || (index_ + 1 == slices_.size())) {
    const char* p = cur_;
    if (!DecodeVarint(&p, end_, value)) return false;
    position_ += static_cast<size_t>(p - cur_);
    cur_ = p;
    Normalize();
    return true;
  }
  // Near the end of a slice: byte by byte.
  uint64_t result = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (cur_ == end_) return false;
    const uint8_t byte = static_cast<uint8_t>(*cur_++);
    ++position_;
    Normalize();
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if (byte < 0x80) {
      *value = result;
      return true;
    }
  }
  return false;
}

bool SliceReader::Skip(size_t n) {
  if (n > size_ - position_) return false;
  position_ += n;
  while (n > 0) {
    const size_t here = std::min(n, static_cast<size_t>(end_ - cur_));
    cur_ += here;
    n -= here;
    Normalize();
  }
  return true;
}

bool SliceReader::ReadContiguous(size_t n, const char** data) {
  if (static_cast<size_t>(end_ - cur_) < n) return false;
  pinned_ = true;
  *data = cur_;
  cur_ += n;
  position_ += n;
  Normalize();
  return true;
}

bool SliceReader::Copy(size_t n, char* out) {
  if (n > size_ - position_) return false;
  position_ += n;
  while (n > 0) {
    const size_t here = std::min(n, static_cast<size_t>(end_ - cur_));
    std::memcpy(out, cur_, here);
    out += here;
    cur_ += here;
    n -= here;
    if (cur_ == end_ && release_ != nullptr && !pinned_ && index_ + 1 < slices_.size()) {
      (*release_)[index_] = grpc::Slice();  // copied: let it go
    }
    Normalize();
  }
  return true;
}

size_t VarintSize(uint64_t value) {
  size_t n = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++n;
  }
  return n;
}

void AppendVarint(uint64_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>(value | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

void MessageWriter::Varint(int field, uint64_t value) {
  const size_t before = pending_.size();
  AppendVarint(Tag(field, kVarint), &pending_);
  AppendVarint(value, &pending_);
  size_ += pending_.size() - before;
}

void MessageWriter::Bytes(int field, absl::string_view bytes) {
  const size_t before = pending_.size();
  AppendVarint(Tag(field, kLengthDelimited), &pending_);
  AppendVarint(bytes.size(), &pending_);
  pending_.append(bytes.data(), bytes.size());
  size_ += pending_.size() - before;
}

void MessageWriter::Payload(int field, grpc::Slice payload) {
  if (payload.size() <= kReferencedPayload) {
    Bytes(field, absl::string_view(reinterpret_cast<const char*>(payload.begin()), payload.size()));
    return;
  }
  const size_t before = pending_.size();
  AppendVarint(Tag(field, kLengthDelimited), &pending_);
  AppendVarint(payload.size(), &pending_);
  size_ += pending_.size() - before + payload.size();
  Flush();
  slices_.push_back(std::move(payload));
}

void MessageWriter::PackedVarints(int field, absl::Span<const int64_t> values) {
  if (values.empty()) return;
  size_t length = 0;
  for (int64_t v : values) length += VarintSize(static_cast<uint64_t>(v));
  const size_t before = pending_.size();
  AppendVarint(Tag(field, kLengthDelimited), &pending_);
  AppendVarint(length, &pending_);
  pending_.reserve(pending_.size() + length);
  for (int64_t v : values) AppendVarint(static_cast<uint64_t>(v), &pending_);
  size_ += pending_.size() - before;
}

void MessageWriter::Message(int field, MessageWriter child) {
  const size_t before = pending_.size();
  AppendVarint(Tag(field, kLengthDelimited), &pending_);
  AppendVarint(child.size_, &pending_);
  size_ += pending_.size() - before + child.size_;
  if (child.slices_.empty()) {
    pending_.append(child.pending_);
    return;
  }
  Flush();
  for (grpc::Slice& s : child.slices_) slices_.push_back(std::move(s));
  pending_ = std::move(child.pending_);
}

void MessageWriter::Flush() {
  if (pending_.empty()) return;
  slices_.emplace_back(pending_);
  pending_.clear();
}

grpc::ByteBuffer MessageWriter::Finish() {
  Flush();
  if (slices_.empty()) slices_.emplace_back();  // an empty message is one empty slice
  grpc::ByteBuffer buffer(slices_.data(), slices_.size());
  slices_.clear();
  size_ = 0;
  return buffer;
}

}  // namespace lossservice::wire
