#include "core/tensor.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace lossservice {

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
    case DType::kInt32:
      return 4;
    case DType::kFloat64:
    case DType::kInt64:
      return 8;
  }
  return 0;
}

absl::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "float32";
    case DType::kFloat64:
      return "float64";
    case DType::kInt64:
      return "int64";
    case DType::kInt32:
      return "int32";
  }
  return "unknown";
}

std::string ShapeString(absl::Span<const int64_t> shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

int64_t NumElements(absl::Span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

namespace {
template <typename T>
void Fill(Tensor& t, absl::Span<const double> values) {
  T* out = t.data_as<T>();
  for (size_t i = 0; i < values.size(); ++i) out[i] = static_cast<T>(values[i]);
}
template <typename T>
void Drain(const Tensor& t, std::vector<double>& out) {
  const T* in = t.data_as<T>();
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<double>(in[i]);
}
}  // namespace

Tensor Tensor::FromDoubles(DType dtype, Shape shape, absl::Span<const double> values) {
  Tensor t{dtype, std::move(shape), {}};
  t.bytes.resize(values.size() * DTypeSize(dtype));
  switch (dtype) {
    case DType::kFloat32: Fill<float>(t, values); break;
    case DType::kFloat64: Fill<double>(t, values); break;
    case DType::kInt64: Fill<int64_t>(t, values); break;
    case DType::kInt32: Fill<int32_t>(t, values); break;
  }
  return t;
}

std::vector<double> Tensor::ToDoubles() const {
  std::vector<double> out(bytes.size() / DTypeSize(dtype));
  switch (dtype) {
    case DType::kFloat32: Drain<float>(*this, out); break;
    case DType::kFloat64: Drain<double>(*this, out); break;
    case DType::kInt64: Drain<int64_t>(*this, out); break;
    case DType::kInt32: Drain<int32_t>(*this, out); break;
  }
  return out;
}

void* TensorAllocator::Allocate(Slot slot, DType dtype, absl::Span<const int64_t> shape) {
  std::optional<Tensor>& dst = slot == Slot::kLoss ? loss : slot == Slot::kGrad ? grad : output;
  dst.emplace(Tensor{dtype, Shape(shape.begin(), shape.end()), {}});
  dst->bytes.resize(static_cast<size_t>(NumElements(shape)) * DTypeSize(dtype));
  return dst->bytes.data();
}

}  // namespace lossservice
