// Plain tensor views for the loss core: no gRPC, no protobuf.
#ifndef LOSSSERVICE_CORE_TENSOR_H_
#define LOSSSERVICE_CORE_TENSOR_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace lossservice {

/// Element types a tensor may hold.
enum class DType : uint8_t { kFloat32, kFloat64, kInt64, kInt32 };

/// Bytes per element of `dtype`.
size_t DTypeSize(DType dtype);
/// "float32", "float64", "int64", "int32".
absl::string_view DTypeName(DType dtype);
inline bool IsFloating(DType dtype) {
  return dtype == DType::kFloat32 || dtype == DType::kFloat64;
}

/// Dimensions of a tensor. Up to 6 dimensions are held inline, so that
/// shapes of ordinary tensors are never allocated.
using Shape = absl::InlinedVector<int64_t, 6>;

/// "[3, 5]", as PyTorch prints sizes in its messages.
std::string ShapeString(absl::Span<const int64_t> shape);
/// Product of the dimensions (1 for a scalar). The shape must be valid.
int64_t NumElements(absl::Span<const int64_t> shape);

// Moving or copying an inline Shape copies its whole inline buffer, unused
// slots included (absl does so on purpose); GCC 12 at -O3 then warns, falsely,
// that an empty one is "used uninitialized" wherever a TensorView{} or a
// Tensor{} is moved. The implicit members of the two structs are exempt.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

/// A read-only view of a dense, row-major tensor owned by someone else.
/// `data` is aligned for `dtype` and holds NumElements(shape) elements.
struct TensorView {
  DType dtype = DType::kFloat32;
  Shape shape;
  const void* data = nullptr;

  int64_t numel() const { return NumElements(shape); }
  int64_t dim() const { return static_cast<int64_t>(shape.size()); }
  template <typename T>
  const T* data_as() const {
    return static_cast<const T*>(data);
  }
};

/// A tensor that owns its values; used by tests, tools and the client.
struct Tensor {
  DType dtype = DType::kFloat32;
  Shape shape;
  std::vector<std::byte> bytes;

  TensorView view() const { return TensorView{dtype, shape, bytes.data()}; }
  template <typename T>
  T* data_as() {
    return reinterpret_cast<T*>(bytes.data());
  }
  template <typename T>
  const T* data_as() const {
    return reinterpret_cast<const T*>(bytes.data());
  }
  int64_t numel() const { return NumElements(shape); }

  /// A tensor of `dtype` and `shape` holding `values` converted to `dtype`.
  static Tensor FromDoubles(DType dtype, Shape shape, absl::Span<const double> values);
  /// Every element converted to double.
  std::vector<double> ToDoubles() const;
};

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/// Where a computation writes its results. The core sizes each output once,
/// after validation, and fills the returned buffer; a server hands out its
/// response's storage here so that results are written in place.
class OutputAllocator {
 public:
  enum class Slot { kLoss, kGrad, kOutput };
  virtual ~OutputAllocator() = default;
  /// Returns storage for NumElements(shape) elements of `dtype`, suitably
  /// aligned. Called at most once per slot.
  virtual void* Allocate(Slot slot, DType dtype, absl::Span<const int64_t> shape) = 0;
};

/// An OutputAllocator that keeps each output as a Tensor.
class TensorAllocator final : public OutputAllocator {
 public:
  void* Allocate(Slot slot, DType dtype, absl::Span<const int64_t> shape) override;
  std::optional<Tensor> loss, grad, output;
};

}  // namespace lossservice

#endif  // LOSSSERVICE_CORE_TENSOR_H_
