// Happens-before edges that gRPC provides and ThreadSanitizer cannot see.
//
// A reactor's operation (StartRead, StartWrite, Finish) happens before the
// callback it leads to (OnReadDone, OnWriteDone, OnDone), which gRPC may run
// on another thread. Debian's gRPC is not built with TSan, so the
// synchronization in between is invisible to it, and a reactor's fields
// written before an operation and read in its callback (a response written
// on a compute worker, destroyed in OnDone on a gRPC thread) look like a
// race. These two mark that edge on the reactor's address in a TSan build
// and compile to nothing otherwise.
#pragma once

#if defined(__SANITIZE_THREAD__)
#define LOSS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define LOSS_TSAN 1
#endif
#endif

#ifdef LOSS_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace lossservice {

// Before each operation a reactor starts.
inline void BeforeGrpcOperation(const void* reactor) {
#ifdef LOSS_TSAN
  __tsan_release(const_cast<void*>(reactor));
#else
  (void)reactor;
#endif
}

// First thing in each of a reactor's callbacks.
inline void InGrpcCallback(const void* reactor) {
#ifdef LOSS_TSAN
  __tsan_acquire(const_cast<void*>(reactor));
#else
  (void)reactor;
#endif
}

// For a callback other than OnDone: acquires on entry, releases on return
// (gRPC calls OnDone after every other callback has returned).
class GrpcCallback {
 public:
  explicit GrpcCallback(const void* reactor) : reactor_(reactor) { InGrpcCallback(reactor_); }
  ~GrpcCallback() { BeforeGrpcOperation(reactor_); }
  GrpcCallback(const GrpcCallback&) = delete;
  GrpcCallback& operator=(const GrpcCallback&) = delete;

 private:
  const void* reactor_;
};

}  // namespace lossservice
