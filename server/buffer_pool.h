// Reusable, aligned buffers for tensor values.
#ifndef LOSSSERVICE_SERVER_BUFFER_POOL_H_
#define LOSSSERVICE_SERVER_BUFFER_POOL_H_

#include <cstddef>
#include <map>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/support/slice.h"

namespace lossservice {

/// Buffers for the values the server copies or produces: request tensors
/// that did not arrive contiguous, and the response tensors the core writes
/// and gRPC sends. Released buffers of 64 KiB and more are kept for reuse,
/// up to a bound: memory fresh from the kernel costs a page fault and a
/// zeroing per 4 KiB, which on a multi-megabyte request is as much work as
/// the loss itself.
///
/// Thread-safe. Buffers may outlive the pool (they then free themselves).
class BufferPool {
 public:
  /// Keeps at most `max_cached_bytes` of released buffers.
  explicit BufferPool(size_t max_cached_bytes);
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  /// Every buffer's alignment.
  static constexpr size_t kAlignment = 64;

  class Buffer {
   public:
    Buffer() = default;
    Buffer(Buffer&& other) noexcept { *this = std::move(other); }
    Buffer& operator=(Buffer&& other) noexcept;
    ~Buffer() { Release(); }

    char* data() const { return data_; }
    /// At least the size asked for.
    size_t capacity() const { return capacity_; }
    explicit operator bool() const { return data_ != nullptr; }

   private:
    friend class BufferPool;
    struct Shared;
    void Release();
    std::shared_ptr<Shared> pool_;
    char* data_ = nullptr;
    size_t capacity_ = 0;
  };

  /// An uninitialized buffer of at least `bytes` (> 0) bytes, kAlignment-aligned.
  Buffer Acquire(size_t bytes);

  /// A slice of the first `length` bytes of `buffer` that owns the buffer:
  /// it goes back to the pool when gRPC no longer needs the bytes.
  static grpc::Slice ToSlice(Buffer buffer, size_t length);

  /// Bytes held for reuse.
  size_t cached_bytes() const;

 private:
  std::shared_ptr<Buffer::Shared> shared_;
};

}  // namespace lossservice

#endif  // LOSSSERVICE_SERVER_BUFFER_POOL_H_
