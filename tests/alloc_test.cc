// "Nothing is allocated on the success path of small requests": every valid
// golden case (every loss and activation, with their options, dtypes and
// encodings of targets) is evaluated into preallocated outputs while this
// binary's operator new counts.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "core/activation.h"
#include "core/loss.h"
#include "gtest/gtest.h"
#include "tests/golden.h"

// This file replaces operator new and delete with malloc and free; GCC sees
// the free of memory from `new` and cannot know that both are ours.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace {
std::atomic<bool> counting{false};
std::atomic<int64_t> allocations{0};
}  // namespace

// Every allocation of the binary goes through these.
void* operator new(std::size_t size) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return operator new(size); }
void* operator new(std::size_t size, std::align_val_t align) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1);
  const size_t a = static_cast<size_t>(align);
  if (void* p = std::aligned_alloc(a, (size + a - 1) / a * a)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size, std::align_val_t align) { return operator new(size, align); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace lossservice::golden {
namespace {

// Outputs into storage reserved up front.
class Preallocated final : public OutputAllocator {
 public:
  Preallocated() : loss_(1 << 20), grad_(1 << 20), out_(1 << 20) {}
  void* Allocate(Slot slot, DType dtype, absl::Span<const int64_t> shape) override {
    std::vector<std::byte>& buf = slot == Slot::kLoss ? loss_ : slot == Slot::kGrad ? grad_ : out_;
    if (static_cast<size_t>(NumElements(shape)) * DTypeSize(dtype) > buf.size()) return nullptr;
    return buf.data();
  }

 private:
  std::vector<std::byte> loss_, grad_, out_;
};

// Allocations made by `fn`, run once before (the first call of a kernel
// picks its target) and once counted.
template <class F>
int64_t AllocationsOf(F&& fn) {
  fn();
  allocations = 0;
  counting = true;
  fn();
  counting = false;
  return allocations.load();
}

TEST(AllocTest, ValidGoldenCasesAllocateNothing) {
  absl::StatusOr<GoldenFile> file = LoadCoreCases();
  ASSERT_TRUE(file.ok()) << file.status();
  Preallocated out;
  int checked_losses = 0, checked_activations = 0;
  std::vector<std::string> losses_seen;
  for (const GoldenCase& c : file->cases) {
    if (c.is_error()) continue;
    if (c.is_loss()) {
      absl::StatusOr<LossRequest> r = BuildLossRequest(c);
      ASSERT_TRUE(r.ok()) << r.status();
      absl::Status status;
      const int64_t n = AllocationsOf([&] { status = EvaluateLoss(*r, out); });
      ASSERT_TRUE(status.ok()) << c.name << ": " << status;
      EXPECT_EQ(n, 0) << c.name;
      ++checked_losses;
      if (std::find(losses_seen.begin(), losses_seen.end(), c.loss) == losses_seen.end()) {
        losses_seen.push_back(c.loss);
      }
    } else {
      absl::StatusOr<ActivationRequest> r = BuildActivationRequest(c);
      ASSERT_TRUE(r.ok()) << r.status();
      absl::Status status;
      const int64_t n = AllocationsOf([&] { status = Activate(*r, out); });
      ASSERT_TRUE(status.ok()) << c.name << ": " << status;
      EXPECT_EQ(n, 0) << c.name;
      ++checked_activations;
    }
  }
  // Every loss of the contract was among them.
  EXPECT_EQ(losses_seen.size(), AllLosses().size());
  EXPECT_GT(checked_losses, 1000);
  EXPECT_GT(checked_activations, 50);
}

// The counter itself counts.
TEST(AllocTest, TheCounterSeesAnAllocation) {
  static std::vector<int>* volatile keep = nullptr;
  EXPECT_EQ(AllocationsOf([] {
              delete keep;
              keep = new std::vector<int>();
            }),
            1);
}

}  // namespace
}  // namespace lossservice::golden
