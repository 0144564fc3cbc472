// Linked into every executable of a LOSS_SANITIZE=thread build: tells TSan
// about Abseil's Mutex, CondVar and Notification. Debian's Abseil is not
// built with TSan, so its synchronization (atomics and futexes inside
// libabsl_synchronization) is invisible and every field guarded by an
// absl::Mutex would be reported as a race. These definitions take the
// place of the library's (ours, in the executable, come first in symbol
// lookup, for our code and for gRPC's, whose grpc_core::Mutex is an
// absl::Mutex), call the library's own through dlsym(RTLD_NEXT), and add
// the happens-before edges: a release before every unlock and an acquire
// after every lock, as Abseil's own TSan annotations do.
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

namespace {

#define LOSS_STR2(x) #x
#define LOSS_STR(x) LOSS_STR2(x)

// The library's definition of absl::<inline namespace>::<rest>.
// `rest` starting with "K": a const member function (_ZNK4absl...).
template <typename F>
F Real(const char* rest) {
  const std::string ns = LOSS_STR(ABSL_OPTION_INLINE_NAMESPACE_NAME);
  const bool is_const = rest[0] == 'K';
  const std::string name = std::string(is_const ? "_ZNK" : "_ZN") + "4absl" +
                           std::to_string(ns.size()) + ns + (is_const ? rest + 1 : rest);
  void* f = dlsym(RTLD_NEXT, name.c_str());
  if (f == nullptr) {
    std::fprintf(stderr, "tsan_absl_sync: %s not found\n", name.c_str());
    std::abort();
  }
  return reinterpret_cast<F>(f);
}

#define LOSS_REAL(type, mangled)                  \
  static const auto real = Real<type>(mangled); \
  (void)real

// Abseil's deadlock detector keeps a graph of every Mutex under its own
// SpinLock, which TSan cannot see either; it is off, as in Abseil's own
// TSan builds' tests of other code (TSan finds lock-order inversions).
const bool kDeadlockDetectionOff = [] {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return true;
}();

void Acquire(const void* p) { __tsan_acquire(const_cast<void*>(p)); }
void Release(const void* p) { __tsan_release(const_cast<void*>(p)); }

}  // namespace

namespace absl {

void Mutex::Lock() {
  LOSS_REAL(void (*)(Mutex*), "5Mutex4LockEv");
  real(this);
  Acquire(this);
}
void Mutex::ReaderLock() {
  LOSS_REAL(void (*)(Mutex*), "5Mutex10ReaderLockEv");
  real(this);
  Acquire(this);
}
bool Mutex::TryLock() {
  LOSS_REAL(bool (*)(Mutex*), "5Mutex7TryLockEv");
  const bool locked = real(this);
  if (locked) Acquire(this);
  return locked;
}
bool Mutex::ReaderTryLock() {
  LOSS_REAL(bool (*)(Mutex*), "5Mutex13ReaderTryLockEv");
  const bool locked = real(this);
  if (locked) Acquire(this);
  return locked;
}
void Mutex::Unlock() {
  LOSS_REAL(void (*)(Mutex*), "5Mutex6UnlockEv");
  Release(this);
  real(this);
}
void Mutex::ReaderUnlock() {
  LOSS_REAL(void (*)(Mutex*), "5Mutex12ReaderUnlockEv");
  Release(this);
  real(this);
}
void Mutex::LockWhen(const Condition& cond) {
  LOSS_REAL(void (*)(Mutex*, const Condition&), "5Mutex8LockWhenERKNS0_9ConditionE");
  real(this, cond);
  Acquire(this);
  Acquire(&cond);
}
void Mutex::ReaderLockWhen(const Condition& cond) {
  LOSS_REAL(void (*)(Mutex*, const Condition&), "5Mutex14ReaderLockWhenERKNS0_9ConditionE");
  real(this, cond);
  Acquire(this);
  Acquire(&cond);
}
bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  LOSS_REAL(bool (*)(Mutex*, const Condition&, Duration),
            "5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  const bool held = real(this, cond, timeout);
  Acquire(this);
  Acquire(&cond);
  return held;
}
bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  LOSS_REAL(bool (*)(Mutex*, const Condition&, Time),
            "5Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  const bool held = real(this, cond, deadline);
  Acquire(this);
  Acquire(&cond);
  return held;
}
void Mutex::Await(const Condition& cond) {
  LOSS_REAL(void (*)(Mutex*, const Condition&), "5Mutex5AwaitERKNS0_9ConditionE");
  Release(this);
  real(this, cond);
  Acquire(this);
  Acquire(&cond);
}
bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  LOSS_REAL(bool (*)(Mutex*, const Condition&, Duration),
            "5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  Release(this);
  const bool held = real(this, cond, timeout);
  Acquire(this);
  Acquire(&cond);
  return held;
}
bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  LOSS_REAL(bool (*)(Mutex*, const Condition&, Time),
            "5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  Release(this);
  const bool held = real(this, cond, deadline);
  Acquire(this);
  Acquire(&cond);
  return held;
}

// Another thread's Unlock evaluates a waiter's Condition and then wakes it,
// the mutex passing to the waiter inside the library: the evaluation (which
// reads what the condition watches) happens before the waiter returns.
bool Condition::Eval() const {
  LOSS_REAL(bool (*)(const Condition*), "K9Condition4EvalEv");
  const bool holds = real(this);
  Release(this);
  return holds;
}

void CondVar::Wait(Mutex* mu) {
  LOSS_REAL(void (*)(CondVar*, Mutex*), "7CondVar4WaitEPNS0_5MutexE");
  Release(mu);
  real(this, mu);
  Acquire(mu);
}
bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  LOSS_REAL(bool (*)(CondVar*, Mutex*, Duration),
            "7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  Release(mu);
  const bool timed_out = real(this, mu, timeout);
  Acquire(mu);
  return timed_out;
}
bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  LOSS_REAL(bool (*)(CondVar*, Mutex*, Time),
            "7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  Release(mu);
  const bool timed_out = real(this, mu, deadline);
  Acquire(mu);
  return timed_out;
}

// HasBeenNotified() is inline: an acquire load of notified_yet_, which
// follows mutex_ (absl/synchronization/notification.h), in our own
// instrumented code; Notify releases on it too.
void Notification::Notify() {
  LOSS_REAL(void (*)(Notification*), "12Notification6NotifyEv");
  static_assert(sizeof(Notification) == sizeof(Mutex) + sizeof(void*));
  Release(this);
  Release(reinterpret_cast<const char*>(this) + sizeof(Mutex));
  real(this);
}
void Notification::WaitForNotification() const {
  LOSS_REAL(void (*)(const Notification*), "K12Notification19WaitForNotificationEv");
  real(this);
  Acquire(this);
}
bool Notification::WaitForNotificationWithTimeout(Duration timeout) const {
  LOSS_REAL(bool (*)(const Notification*, Duration),
            "K12Notification30WaitForNotificationWithTimeoutENS0_8DurationE");
  const bool notified = real(this, timeout);
  if (notified) Acquire(this);
  return notified;
}
bool Notification::WaitForNotificationWithDeadline(Time deadline) const {
  LOSS_REAL(bool (*)(const Notification*, Time),
            "K12Notification31WaitForNotificationWithDeadlineENS0_4TimeE");
  const bool notified = real(this, deadline);
  if (notified) Acquire(this);
  return notified;
}

}  // namespace absl
