#include "server/buffer_pool.h"

#include <new>
#include <utility>

#include "grpc/slice.h"

namespace lossservice {
namespace {

// Smaller buffers come and go through malloc, which recycles them well.
constexpr size_t kPooledMin = size_t{64} << 10;

// Four size classes per power of two, so that a buffer wastes at most a
// quarter of its size: 64K, 80K, 96K, 112K, 128K, 160K, ...
size_t ClassCapacity(size_t bytes) {
  if (bytes <= kPooledMin) return bytes;
  size_t power = kPooledMin;
  while (power * 2 < bytes) power *= 2;
  const size_t step = power / 4;
  return (bytes + step - 1) / step * step;
}

char* Allocate(size_t capacity) {
  return static_cast<char*>(::operator new (capacity, std::align_val_t{BufferPool::kAlignment}));
}

void Free(char* data) { ::operator delete (data, std::align_val_t{BufferPool::kAlignment}); }

}  // namespace

struct BufferPool::Buffer::Shared {
  explicit Shared(size_t max) : max_cached(max) {}
  ~Shared() {
    for (auto& [capacity, list] : free) {
      for (char* p : list) Free(p);
    }
  }
  const size_t max_cached;
  mutable absl::Mutex mu;
  std::map<size_t, std::vector<char*>> free ABSL_GUARDED_BY(mu);
  size_t cached ABSL_GUARDED_BY(mu) = 0;
};

BufferPool::BufferPool(size_t max_cached_bytes)
    : shared_(std::make_shared<Buffer::Shared>(max_cached_bytes)) {}

BufferPool::Buffer& BufferPool::Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    Release();
    pool_ = std::move(other.pool_);
    data_ = std::exchange(other.data_, nullptr);
    capacity_ = std::exchange(other.capacity_, 0);
  }
  return *this;
}

void BufferPool::Buffer::Release() {
  if (data_ == nullptr) return;
  char* data = std::exchange(data_, nullptr);
  if (pool_ && capacity_ > kPooledMin) {
    absl::MutexLock lock(&pool_->mu);
    if (pool_->cached + capacity_ <= pool_->max_cached) {
      pool_->free[capacity_].push_back(data);
      pool_->cached += capacity_;
      data = nullptr;
    }
  }
  if (data != nullptr) Free(data);
  pool_.reset();
  capacity_ = 0;
}

BufferPool::Buffer BufferPool::Acquire(size_t bytes) {
  Buffer b;
  b.capacity_ = ClassCapacity(bytes == 0 ? 1 : bytes);
  b.pool_ = shared_;
  if (b.capacity_ > kPooledMin) {
    absl::MutexLock lock(&shared_->mu);
    auto it = shared_->free.find(b.capacity_);
    if (it != shared_->free.end() && !it->second.empty()) {
      b.data_ = it->second.back();
      it->second.pop_back();
      shared_->cached -= b.capacity_;
      return b;
    }
  }
  b.data_ = Allocate(b.capacity_);
  return b;
}

grpc::Slice BufferPool::ToSlice(Buffer buffer, size_t length) {
  auto* owned = new Buffer(std::move(buffer));
  grpc_slice s = grpc_slice_new_with_user_data(
      owned->data(), length, [](void* p) { delete static_cast<Buffer*>(p); }, owned);
  return grpc::Slice(s, grpc::Slice::STEAL_REF);
}

size_t BufferPool::cached_bytes() const {
  absl::MutexLock lock(&shared_->mu);
  return shared_->cached;
}

}  // namespace lossservice
