// Class-index kernels (see class_index.h): per target, the scan in the
// targets' own integer lanes and nll's float32 gather; below, the scalar
// reference, which the vector kernels also run on their tails and on what
// they do not take (float64 nll, indices beyond int32 lanes).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "core/simd/class_index.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <cstddef>
#include <limits>

#include "core/simd/class_index.h"
#include "core/simd/simd-inl.h"
#include "hwy/highway.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "NllF32 reads an int64 target's low half as its int32 value");

HWY_BEFORE_NAMESPACE();
namespace lossservice::simd {
namespace HWY_NAMESPACE {
namespace {

template <typename I>
IndexScan ScanT(const I* HWY_RESTRICT t, int64_t count, int64_t C, int64_t ignore) {
#if HWY_TARGET == HWY_SCALAR
  return ScanClassIndicesReference(t, count, C, ignore);
#else
  // In I's lanes C and ignore_index must be I values too.
  constexpr int64_t kMax = std::numeric_limits<I>::max(), kMin = std::numeric_limits<I>::min();
  if (C > kMax || ignore > kMax || ignore < kMin) {
    return ScanClassIndicesReference(t, count, C, ignore);
  }
  using D = hn::ScalableTag<I>;
  const D d;
  const size_t N = hn::Lanes(d);
  const size_t n = static_cast<size_t>(count);
  const V<D> zero = hn::Zero(d), classes = hn::Set(d, static_cast<I>(C)),
             ign = hn::Set(d, static_cast<I>(ignore));
  const auto valid = [&](V<D> v, auto ignored) HWY_ATTR {
    return hn::Or(ignored, hn::And(hn::Not(hn::Lt(v, zero)), hn::Lt(v, classes)));
  };
  // Two vectors per test; at the first bad value the reference finds it.
  size_t i = 0, ignored = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    const V<D> a = hn::LoadU(d, t + i), b = hn::LoadU(d, t + i + N);
    const auto ia = hn::Eq(a, ign), ib = hn::Eq(b, ign);
    if (!hn::AllTrue(d, hn::And(valid(a, ia), valid(b, ib)))) break;
    ignored += hn::CountTrue(d, ia) + hn::CountTrue(d, ib);
  }
  IndexScan rest = ScanClassIndicesReference(t + i, count - static_cast<int64_t>(i), C, ignore);
  rest.first_bad += static_cast<int64_t>(i);
  rest.kept += static_cast<int64_t>(i - ignored);
  return rest;
#endif
}

// nll's gather in int32 index lanes: a sample's offset t * step_t + i *
// step_k must fit, and so must ignore_index (a target is in [0, C) or
// ignore_index, so its low half decides which).
double NllF32T(const NllArgs<float>& a) {
#if HWY_TARGET == HWY_SCALAR
  return NllSumReference(a);
#else
  constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
  const int64_t C = a.classes, S = a.stride;
  const int64_t end = S == 1 ? a.count * C : C * S;  // past the largest offset
  if (end > kMax || a.ignore_index > kMax || a.ignore_index < -kMax - 1) {
    return NllSumReference(a);
  }
  using DF = hn::ScalableTag<float>;
  using DI = hn::RebindToSigned<DF>;
  using DD = hn::Repartition<double, DF>;
  const DF df;
  const DI di;
  const DD dd;
  const hn::Half<DF> dh;
  const size_t N = hn::Lanes(df);
  const int32_t step_k = static_cast<int32_t>(S == 1 ? C : 1);
  const int32_t step_t = static_cast<int32_t>(S == 1 ? 1 : S);
  const V<DI> lanes = hn::Mul(hn::Iota(di, 0), hn::Set(di, step_k));
  const V<DI> ign = hn::Set(di, static_cast<int32_t>(a.ignore_index));
  const V<DI> vstep_t = hn::Set(di, step_t);
  const int32_t* HWY_RESTRICT t32 = reinterpret_cast<const int32_t*>(a.target);
  V<DD> lo = hn::Zero(dd), hi = hn::Zero(dd);
  const size_t n = static_cast<size_t>(a.count);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const V<DI> t = hn::ConcatEven(di, hn::LoadU(di, t32 + 2 * i + N), hn::LoadU(di, t32 + 2 * i));
    const auto keep = hn::Ne(t, ign);
    const V<DI> base = hn::Add(lanes, hn::Set(di, static_cast<int32_t>(i) * step_k));
    // Ignored lanes read x[0] and w[0] (both exist) and are zeroed.
    const V<DI> at = hn::IfThenElseZero(keep, hn::Add(hn::Mul(t, vstep_t), base));
    V<DF> v = hn::GatherIndex(df, a.x, at);
    if (a.weight != nullptr) v = hn::Mul(hn::GatherIndex(df, a.weight, hn::IfThenElseZero(keep, t)), v);
    v = hn::IfThenElseZero(hn::RebindMask(df, keep), hn::Neg(v));
    lo = hn::Add(lo, hn::PromoteTo(dd, hn::LowerHalf(dh, v)));
    hi = hn::Add(hi, hn::PromoteTo(dd, hn::UpperHalf(dh, v)));
  }
  NllArgs<float> rest = a;
  rest.count = a.count - static_cast<int64_t>(i);
  rest.target += i;
  rest.x += S == 1 ? static_cast<int64_t>(i) * C : static_cast<int64_t>(i);
  return hn::GetLane(hn::SumOfLanes(dd, hn::Add(lo, hi))) + NllSumReference(rest);
#endif
}

}  // namespace

IndexScan ScanI64(const int64_t* t, int64_t n, int64_t c, int64_t ign) { return ScanT(t, n, c, ign); }
IndexScan ScanI32(const int32_t* t, int64_t n, int64_t c, int64_t ign) { return ScanT(t, n, c, ign); }
double NllF32(const NllArgs<float>& a) { return NllF32T(a); }

}  // namespace HWY_NAMESPACE
}  // namespace lossservice::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lossservice::simd {

HWY_EXPORT(ScanI64);
HWY_EXPORT(ScanI32);
HWY_EXPORT(NllF32);

IndexScan ScanClassIndices(const int64_t* t, int64_t n, int64_t c, int64_t ign) {
  return HWY_DYNAMIC_DISPATCH(ScanI64)(t, n, c, ign);
}
IndexScan ScanClassIndices(const int32_t* t, int64_t n, int64_t c, int64_t ign) {
  return HWY_DYNAMIC_DISPATCH(ScanI32)(t, n, c, ign);
}
double NllSum(const NllArgs<float>& a) { return HWY_DYNAMIC_DISPATCH(NllF32)(a); }
double NllSum(const NllArgs<double>& a) { return NllSumReference(a); }

// ---- scalar reference ----------------------------------------------------------

namespace {

template <typename I>
IndexScan ScanReference(const I* t, int64_t count, int64_t C, int64_t ignore) {
  IndexScan s;
  for (; s.first_bad < count; ++s.first_bad) {
    const int64_t ti = t[s.first_bad];
    if (ti == ignore) continue;
    if (ti < 0 || ti >= C) break;
    ++s.kept;
  }
  return s;
}

template <typename T>
double NllReference(const NllArgs<T>& a) {
  double sum = 0;
  for (int64_t i = 0; i < a.count; ++i) {
    const int64_t t = a.target[i];
    if (t == a.ignore_index) continue;
    const T w = a.weight != nullptr ? a.weight[t] : T(1);
    sum += -w * a.x[a.stride == 1 ? i * a.classes + t : t * a.stride + i];
  }
  return sum;
}

}  // namespace

IndexScan ScanClassIndicesReference(const int64_t* t, int64_t n, int64_t c, int64_t ign) {
  return ScanReference(t, n, c, ign);
}
IndexScan ScanClassIndicesReference(const int32_t* t, int64_t n, int64_t c, int64_t ign) {
  return ScanReference(t, n, c, ign);
}
double NllSumReference(const NllArgs<float>& a) { return NllReference(a); }
double NllSumReference(const NllArgs<double>& a) { return NllReference(a); }

}  // namespace lossservice::simd
#endif  // HWY_ONCE
