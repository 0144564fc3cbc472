#include "server/tensor_codec.h"

#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace lossservice {
namespace {

// Tensors larger than this many bytes cannot arrive under any message limit;
// the bound keeps element-count arithmetic far from overflow.
constexpr int64_t kMaxTensorBytes = int64_t{1} << 40;
// An empty tensor's other dimensions still size loops and per-sample
// outputs ((2^40, 0) has 2^40 rows of nothing): their product is bounded by
// what a message could hold.
constexpr int64_t kMaxNonEmptyExtent = int64_t{1} << 31;

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

template <typename T>
TensorValues::Field FieldOf(const google::protobuf::RepeatedField<T>& r) {
  return {reinterpret_cast<const char*>(r.data()), r.size()};
}

}  // namespace

v1::DataType ToProto(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return v1::DATA_TYPE_FLOAT32;
    case DType::kFloat64:
      return v1::DATA_TYPE_FLOAT64;
    case DType::kInt64:
      return v1::DATA_TYPE_INT64;
    case DType::kInt32:
      return v1::DATA_TYPE_INT32;
  }
  return v1::DATA_TYPE_UNSPECIFIED;
}

TensorValues ValuesOf(const v1::Tensor& t) {
  TensorValues v;
  v.float_values = FieldOf(t.float_values());
  v.double_values = FieldOf(t.double_values());
  v.int64_values = FieldOf(t.int64_values());
  v.int32_values = FieldOf(t.int32_values());
  v.raw_data = {t.raw_data().data(), static_cast<int64_t>(t.raw_data().size())};
  return v;
}

const TensorValues* WireTensors::Find(const v1::Tensor* t) const {
  for (const auto& [tensor, values] : entries_) {
    if (tensor == t) return &values;
  }
  return nullptr;
}

TensorValues& WireTensors::Entry(const v1::Tensor* t) {
  for (auto& [tensor, values] : entries_) {
    if (tensor == t) return values;
  }
  return entries_.emplace_back(t, TensorValues{}).second;
}

const char* WireTensors::Keep(BufferPool::Buffer buffer) {
  return buffers_.emplace_back(std::move(buffer)).data();
}

void WireTensors::Clear() {
  entries_.clear();
  buffers_.clear();
}

TensorValues TensorDecoder::Values(const v1::Tensor& t) const {
  if (wire_ != nullptr) {
    if (const TensorValues* v = wire_->Find(&t)) return *v;
  }
  return ValuesOf(t);
}

Encoding TensorDecoder::EncodingOf(const v1::Tensor& t) const {
  return Values(t).raw_data.count > 0 ? Encoding::kRaw : Encoding::kTyped;
}

Encoding TensorDecoder::EncodingOf(const v1::EvaluateRequest& q) const {
  const TensorValues in = Values(q.input());
  if (in.raw_data.count == 0 && in.float_values.count == 0 && in.double_values.count == 0) {
    return EncodingOf(q.target());
  }
  return in.raw_data.count > 0 ? Encoding::kRaw : Encoding::kTyped;
}

const char* TensorDecoder::AlignedCopy(const char* data, size_t bytes) {
  char* out;
  const size_t rounded = (bytes + 63) / 64 * 64;
  if (rounded <= sizeof(scratch_) - scratch_used_) {
    out = scratch_ + scratch_used_;
    scratch_used_ += rounded;
  } else if (pool_ != nullptr) {
    out = pooled_copies_.emplace_back(pool_->Acquire(bytes)).data();
  } else {
    auto& v = heap_copies_.emplace_back((bytes + sizeof(std::max_align_t) - 1) /
                                        sizeof(std::max_align_t));
    out = reinterpret_cast<char*>(v.data());
  }
  if (bytes > 0) std::memcpy(out, data, bytes);
  return out;
}

absl::StatusOr<TensorView> TensorDecoder::Decode(const v1::Tensor& t, absl::string_view field) {
  TensorView view;
  int64_t numel = 1, extent = 1;  // extent: the product of the non-zero dimensions
  for (int64_t d : t.shape()) {
    if (d < 0) {
      return Invalid(field, absl::StrCat("shape [", absl::StrJoin(t.shape(), ", "),
                                         "] has a negative dimension"));
    }
    if (d != 0 && extent > kMaxNonEmptyExtent / d) {
      return Invalid(field, absl::StrCat("shape [", absl::StrJoin(t.shape(), ", "),
                                         "] is too large (its non-zero dimensions multiply to "
                                         "more than 2^31)"));
    }
    if (d != 0) extent *= d;
    numel *= d;
    view.shape.push_back(d);
  }
  static_assert(kMaxNonEmptyExtent * 8 <= kMaxTensorBytes);
  // For messages only.
  const auto shape = [&view] { return ShapeString(view.shape); };

  if (!v1::DataType_IsValid(t.dtype())) {
    return Invalid(field, absl::StrCat("unknown dtype ", t.dtype()));
  }
  const TensorValues values = Values(t);
  struct Field {
    const char* name;
    TensorValues::Field values;
    DType dtype;
  };
  const Field typed[] = {
      {"float_values", values.float_values, DType::kFloat32},
      {"double_values", values.double_values, DType::kFloat64},
      {"int64_values", values.int64_values, DType::kInt64},
      {"int32_values", values.int32_values, DType::kInt32},
  };
  std::vector<absl::string_view> set;
  const Field* used = nullptr;
  for (const Field& f : typed) {
    if (f.values.count > 0) {
      set.push_back(f.name);
      used = &f;
    }
  }
  const TensorValues::Field raw = values.raw_data;
  if (raw.count > 0) set.push_back("raw_data");
  if (set.size() > 1) {
    return Invalid(field, absl::StrCat("more than one value field is set (",
                                       absl::StrJoin(set, ", "), "); use exactly one"));
  }
  const bool has_dtype = t.dtype() != v1::DATA_TYPE_UNSPECIFIED;
  const auto proto_dtype = [](v1::DataType d) {
    switch (d) {
      case v1::DATA_TYPE_FLOAT64:
        return DType::kFloat64;
      case v1::DATA_TYPE_INT64:
        return DType::kInt64;
      case v1::DATA_TYPE_INT32:
        return DType::kInt32;
      default:
        return DType::kFloat32;
    }
  };
  // Values the core reads must be aligned for their type.
  const auto aligned = [&](const char* data, DType dtype, int64_t n) {
    const size_t bytes = static_cast<size_t>(n) * DTypeSize(dtype);
    if (reinterpret_cast<uintptr_t>(data) % DTypeSize(dtype) == 0) return data;
    return AlignedCopy(data, bytes);
  };

  if (raw.count > 0) {
    if (!has_dtype) return Invalid(field, "raw_data needs dtype to be set");
    view.dtype = proto_dtype(t.dtype());
    const size_t want = static_cast<size_t>(numel) * DTypeSize(view.dtype);
    if (static_cast<size_t>(raw.count) != want) {
      return Invalid(field, absl::StrCat("raw_data has ", raw.count, " bytes but shape ", shape(),
                                         " of ", DTypeName(view.dtype), " needs ", want));
    }
    view.data = aligned(raw.data, view.dtype, numel);
    return view;
  }
  if (used != nullptr) {
    if (has_dtype && proto_dtype(t.dtype()) != used->dtype) {
      return Invalid(field, absl::StrCat("dtype ", v1::DataType_Name(t.dtype()), " disagrees with ",
                                         used->name));
    }
    if (used->values.count != numel) {
      return Invalid(field, absl::StrCat(used->name, " holds ", used->values.count,
                                         " values but shape ", shape(), " needs ", numel));
    }
    view.dtype = used->dtype;
    view.data = aligned(used->values.data, view.dtype, numel);
    return view;
  }
  // No values at all.
  if (numel != 0) {
    return Invalid(field, absl::StrCat("holds 0 values but shape ", shape(), " needs ", numel));
  }
  if (!has_dtype) {
    return Invalid(field, absl::StrCat("an empty tensor (shape ", shape(), ") must set dtype"));
  }
  view.dtype = proto_dtype(t.dtype());
  return view;
}

}  // namespace lossservice
