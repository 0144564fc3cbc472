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

}  // namespace

v1::DataType ToProto(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return v1::DATA_TYPE_FLOAT32;
    case DType::kFloat64: return v1::DATA_TYPE_FLOAT64;
    case DType::kInt64: return v1::DATA_TYPE_INT64;
    case DType::kInt32: return v1::DATA_TYPE_INT32;
  }
  return v1::DATA_TYPE_UNSPECIFIED;
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
  const std::string shape = ShapeString(view.shape);

  if (!v1::DataType_IsValid(t.dtype())) {
    return Invalid(field, absl::StrCat("unknown dtype ", t.dtype()));
  }
  struct Field {
    const char* name;
    int size;
    DType dtype;
  };
  const Field typed[] = {
      {"float_values", t.float_values_size(), DType::kFloat32},
      {"double_values", t.double_values_size(), DType::kFloat64},
      {"int64_values", t.int64_values_size(), DType::kInt64},
      {"int32_values", t.int32_values_size(), DType::kInt32},
  };
  std::vector<absl::string_view> set;
  const Field* used = nullptr;
  for (const Field& f : typed) {
    if (f.size > 0) {
      set.push_back(f.name);
      used = &f;
    }
  }
  if (!t.raw_data().empty()) set.push_back("raw_data");
  if (set.size() > 1) {
    return Invalid(field, absl::StrCat("more than one value field is set (",
                                       absl::StrJoin(set, ", "), "); use exactly one"));
  }
  const bool has_dtype = t.dtype() != v1::DATA_TYPE_UNSPECIFIED;
  const auto proto_dtype = [](v1::DataType d) {
    switch (d) {
      case v1::DATA_TYPE_FLOAT64: return DType::kFloat64;
      case v1::DATA_TYPE_INT64: return DType::kInt64;
      case v1::DATA_TYPE_INT32: return DType::kInt32;
      default: return DType::kFloat32;
    }
  };

  if (!t.raw_data().empty()) {
    if (!has_dtype) return Invalid(field, "raw_data needs dtype to be set");
    view.dtype = proto_dtype(t.dtype());
    const size_t want = static_cast<size_t>(numel) * DTypeSize(view.dtype);
    if (t.raw_data().size() != want) {
      return Invalid(field, absl::StrCat("raw_data has ", t.raw_data().size(), " bytes but shape ",
                                         shape, " of ", DTypeName(view.dtype), " needs ", want));
    }
    const char* bytes = t.raw_data().data();
    if (reinterpret_cast<uintptr_t>(bytes) % DTypeSize(view.dtype) != 0) {
      aligned_copies_.emplace_back(t.raw_data());
      bytes = aligned_copies_.back().data();
    }
    view.data = bytes;
    return view;
  }
  if (used != nullptr) {
    if (has_dtype && proto_dtype(t.dtype()) != used->dtype) {
      return Invalid(field, absl::StrCat("dtype ", v1::DataType_Name(t.dtype()), " disagrees with ",
                                         used->name));
    }
    if (used->size != numel) {
      return Invalid(field, absl::StrCat(used->name, " holds ", used->size,
                                         " values but shape ", shape, " needs ", numel));
    }
    view.dtype = used->dtype;
    switch (view.dtype) {
      case DType::kFloat32: view.data = t.float_values().data(); break;
      case DType::kFloat64: view.data = t.double_values().data(); break;
      case DType::kInt64: view.data = t.int64_values().data(); break;
      case DType::kInt32: view.data = t.int32_values().data(); break;
    }
    return view;
  }
  // No values at all.
  if (numel != 0) {
    return Invalid(field, absl::StrCat("holds 0 values but shape ", shape, " needs ", numel));
  }
  if (!has_dtype) {
    return Invalid(field, absl::StrCat("an empty tensor (shape ", shape, ") must set dtype"));
  }
  view.dtype = proto_dtype(t.dtype());
  return view;
}

void* ProtoAllocator::Allocate(Slot slot, DType dtype, absl::Span<const int64_t> shape) {
  v1::Tensor* t = slot == Slot::kLoss ? loss_ : slot == Slot::kGrad ? grad_ : output_;
  t->Clear();
  t->set_dtype(ToProto(dtype));
  for (int64_t d : shape) t->add_shape(d);
  const int64_t n = NumElements(shape);
  if (encoding_ == Encoding::kRaw) {
    std::string* raw = t->mutable_raw_data();
    raw->resize(static_cast<size_t>(n) * DTypeSize(dtype));
    return raw->data();
  }
  switch (dtype) {
    case DType::kFloat32:
      t->mutable_float_values()->Resize(static_cast<int>(n), 0.0f);
      return t->mutable_float_values()->mutable_data();
    case DType::kFloat64:
      t->mutable_double_values()->Resize(static_cast<int>(n), 0.0);
      return t->mutable_double_values()->mutable_data();
    case DType::kInt64:
      t->mutable_int64_values()->Resize(static_cast<int>(n), 0);
      return t->mutable_int64_values()->mutable_data();
    case DType::kInt32:
      t->mutable_int32_values()->Resize(static_cast<int>(n), 0);
      return t->mutable_int32_values()->mutable_data();
  }
  return nullptr;
}

}  // namespace lossservice
