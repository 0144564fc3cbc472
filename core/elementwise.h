// The driver of the element-wise losses: cuts the input into chunks (across
// the context's pool), gathers operands that are not laid out like the input
// into blocks, and runs a simd::PointOp kernel on each span. Internal to
// loss_core.
#ifndef LOSSSERVICE_CORE_ELEMENTWISE_H_
#define LOSSSERVICE_CORE_ELEMENTWISE_H_

#include <algorithm>
#include <cstdint>

#include "core/internal.h"
#include "core/simd/elementwise.h"

namespace lossservice::internal {

/// The operands of an element-wise loss besides the input (absent ones are
/// default-constructed).
template <typename T>
struct PointOperands {
  Operand<T> y, z, w, pw;
};

/// One pass of `op` over the n elements of `x`: the per-element loss into
/// `loss` (when not nullptr; else the losses are summed and the sum is
/// returned), the gradient times the upstream gradient into `grad` (when not
/// nullptr). Chunks of kGrain elements, combined in order.
template <typename T>
double PointPass(simd::PointOp op, const simd::PointParams& params, const T* x, int64_t n,
                 const PointOperands<T>& ops, const Upstream<T>& up, T* loss, T* grad,
                 const ComputeContext& ctx) {
  const bool direct = (!ops.y.present() || ops.y.direct()) && (!ops.z.present() || ops.z.direct()) &&
                      (!ops.w.present() || ops.w.direct()) &&
                      (!ops.pw.present() || ops.pw.direct()) &&
                      (!up.per_element.present() || up.per_element.direct());
  const auto span = [&](int64_t begin, int64_t count, T* ybuf, T* zbuf, T* wbuf, T* pwbuf,
                        T* gobuf) {
    simd::PointArgs<T> a;
    a.n = count;
    a.x = x + begin;
    a.y = ops.y.Get(begin, count, ybuf);
    a.z = ops.z.Get(begin, count, zbuf);
    a.w = ops.w.Get(begin, count, wbuf);
    a.pw = ops.pw.Get(begin, count, pwbuf);
    a.go = up.per_element.Get(begin, count, gobuf);
    a.grad_scale = up.uniform;
    a.loss = loss ? loss + begin : nullptr;
    a.grad = grad ? grad + begin : nullptr;
    return simd::Point(op, params, a);
  };
  const auto chunk = [&](int64_t begin, int64_t end) -> double {
    if (direct) return span(begin, end - begin, nullptr, nullptr, nullptr, nullptr, nullptr);
    T ybuf[kBlock], zbuf[kBlock], wbuf[kBlock], pwbuf[kBlock], gobuf[kBlock];
    double sum = 0;
    for (int64_t b = begin; b < end; b += kBlock) {
      sum += span(b, std::min(kBlock, end - b), ybuf, zbuf, wbuf, pwbuf, gobuf);
    }
    return sum;
  };
  return RunChunks<double>(ctx, n, kGrain, loss != nullptr, chunk);
}

/// An element-wise loss over the request's input: per element under
/// reduction none, else reduced by the plan (sum, or sum / plan.divisor).
template <typename T>
void RunPointwise(simd::PointOp op, const simd::PointParams& params, const LossRequest& r,
                  const LossPlan& plan, const PointOperands<T>& ops, void* loss_out,
                  void* grad_out, const ComputeContext& ctx) {
  T* loss = static_cast<T*>(loss_out);
  T* grad = static_cast<T*>(grad_out);
  const bool none = r.reduction == Reduction::kNone;
  const double sum = PointPass<T>(op, params, r.input.data_as<T>(), r.input.numel(), ops,
                                  UpstreamOf<T>(r, plan), none ? loss : nullptr, grad, ctx);
  if (!none) WriteReduced(r, plan, loss, sum);
}

/// The target as an operand of the input's layout.
template <typename T>
PointOperands<T> WithTarget(const LossRequest& r) {
  PointOperands<T> ops;
  ops.y = Operand<T>(*r.target, r.input.shape);
  return ops;
}

}  // namespace lossservice::internal

#endif  // LOSSSERVICE_CORE_ELEMENTWISE_H_
