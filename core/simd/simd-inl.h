// Per-target building blocks of the vector kernels: math that is defined on
// every input (Highway's contrib/math is only valid on documented ranges),
// loads that promote float32 to double lanes, masked tails, and sums that
// keep float32 results at least as accurate as PyTorch's cascade sum.
//
// Included once per target by the kernels' foreach_target translation units
// (the usual Highway include-guard toggle).

#if defined(LOSSSERVICE_CORE_SIMD_SIMD_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef LOSSSERVICE_CORE_SIMD_SIMD_INL_H_
#undef LOSSSERVICE_CORE_SIMD_SIMD_INL_H_
#else
#define LOSSSERVICE_CORE_SIMD_SIMD_INL_H_
#endif

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "core/simd/log_table.h"
#include "core/simd/softplus_table.h"
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace lossservice::simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <class D>
using V = hn::Vec<D>;

// ---- math on the whole domain ------------------------------------------------
//
// hn::Exp is documented for x <= 104 (float) / 706 (double) and returns 0 for
// NaN; hn::Log for x in (0, max] (0, negatives, +inf and NaN give garbage);
// hn::Log1p for x >= 0. These wrappers give std::exp / std::log / std::log1p's
// results at the edges: NaN stays NaN, overflow is +inf, exp(-inf) = 0,
// log(0) = -inf, log(negative) = NaN, log(+inf) = +inf. Subnormal inputs and
// results are handled by Highway itself (Exp scales in two steps, Log
// renormalises subnormals). Max error: Exp 1 ULP, Log 4 ULP, Log1p 2 ULP.


#if HWY_TARGET == HWY_AVX3
// A full AVX-512 vector of float, which the AVX-512-only paths below take.
template <class D>
inline constexpr bool kFull512Float = std::is_same_v<D, hn::Simd<float, 16, 0>>;
#endif

/// e^f for |f| <= ln(2) / 2: 1 + f + f^2 (k0 + ... + k5 f^5) with Highway's
/// coefficients (Estrin's scheme), 1 ULP.
template <class D>
HWY_INLINE V<D> ExpPolynomial(D d, V<D> f) {
  const V<D> f2 = hn::Mul(f, f);
  const V<D> lo = hn::MulAdd(hn::Set(d, 0.166666671633720397949219f), f, hn::Set(d, 0.5f));
  const V<D> mid = hn::MulAdd(hn::Set(d, 0.00833336077630519866943359f), f,
                              hn::Set(d, 0.0416664853692054748535156f));
  const V<D> hi = hn::MulAdd(hn::Set(d, 0.000198527617612853646278381f), f,
                             hn::Set(d, 0.00139304355252534151077271f));
  const V<D> poly = hn::MulAdd(hn::MulAdd(hi, f2, mid), f2, lo);
  return hn::Add(hn::MulAdd(poly, f2, f), hn::Set(d, 1.0f));
}

/// Cephes' logf polynomial: log(1 + m) for m in [sqrt(1/2) - 1, sqrt(2) - 1],
/// plus e log(2), about 1 ULP.
template <class D>
HWY_INLINE V<D> LogPolynomial(D d, V<D> m, V<D> e) {
  const V<D> z = hn::Mul(m, m);
  V<D> y = hn::Set(d, 7.0376836292e-2f);
  y = hn::MulAdd(y, m, hn::Set(d, -1.1514610310e-1f));
  y = hn::MulAdd(y, m, hn::Set(d, 1.1676998740e-1f));
  y = hn::MulAdd(y, m, hn::Set(d, -1.2420140846e-1f));
  y = hn::MulAdd(y, m, hn::Set(d, 1.4249322787e-1f));
  y = hn::MulAdd(y, m, hn::Set(d, -1.6668057665e-1f));
  y = hn::MulAdd(y, m, hn::Set(d, 2.0000714765e-1f));
  y = hn::MulAdd(y, m, hn::Set(d, -2.4999993993e-1f));
  y = hn::MulAdd(y, m, hn::Set(d, 3.3333331174e-1f));
  y = hn::Mul(hn::Mul(y, m), z);
  y = hn::MulAdd(e, hn::Set(d, -2.12194440e-4f), y);
  y = hn::MulAdd(z, hn::Set(d, -0.5f), y);
  return hn::MulAdd(e, hn::Set(d, 0.693359375f), hn::Add(m, y));
}

template <class D>
HWY_INLINE V<D> ExpAll(D d, V<D> x);

/// e^x for x <= 0 or NaN (a log-sum-exp term x - max, or e^-|x|). float on
/// AVX-512: kExp2Table and vscalefps, within 0.68 ULP, subnormal results
/// included (bench/ulp_core's expneg rows). Elsewhere Highway's reduction
/// and polynomial (1 ULP), but one scaling step and no overflow guard:
/// results below 2^-126 (x < -87.5) are 0 instead of subnormal; they are far
/// below every sum they enter. NaN stays NaN (the polynomial of a NaN is
/// NaN), -inf gives 0.
template <class D>
HWY_INLINE V<D> ExpNonPositive(D d, V<D> x) {
  using T = hn::TFromD<D>;
  if constexpr (sizeof(T) == 8) {
    return ExpAll(d, x);
  } else {
#if HWY_TARGET == HWY_AVX3
    if constexpr (kFull512Float<D>) {
      // AVX-512: x = (m + j / 16) log(2) + f, |f| <= log(2) / 32, and e^x =
      // 2^m 2^(j/16) e^f with 2^(j/16) from kExp2Table (vpermps, one
      // register) and e^f - 1 = f + f^2 (1/2 + f/6) (Taylor; the next term
      // is 0.08 ULP). Three fewer multiplies than the degree-5 polynomial,
      // which on Zen 4 (512-bit FMAs in two halves) bound the cross-entropy
      // exp pass, and more accurate (the table's low part is added with the
      // small term). The shifter 1.5 * 2^19 rounds x log2(e)
      // to a multiple of 1/16 whose low four bits are j; vscalefps scales by
      // 2^floor(k) (gradual underflow included). max(-104, x) keeps a NaN x
      // (the second operand) and sends -inf to a value whose exp underflows
      // to 0.
      const __m512 xc = _mm512_max_ps(_mm512_set1_ps(-104.0f), x.raw);
      const __m512 shifter = _mm512_set1_ps(786432.0f);
      const __m512 z = _mm512_fmadd_ps(xc, _mm512_set1_ps(1.442695040888963407359924681f), shifter);
      const __m512 k = _mm512_sub_ps(z, shifter);  // m + j / 16
      __m512 f = _mm512_fmadd_ps(k, _mm512_set1_ps(-0.693145751953125f), xc);
      f = _mm512_fmadd_ps(k, _mm512_set1_ps(-1.428606765330187045e-6f), f);
      const __m512i j = _mm512_castps_si512(z);
      const __m512 t_hi = _mm512_permutexvar_ps(j, _mm512_load_ps(kExp2Table.hi));
      const __m512 t_lo = _mm512_permutexvar_ps(j, _mm512_load_ps(kExp2Table.lo));
      const __m512 f2 = _mm512_mul_ps(f, f);
      const __m512 q = _mm512_fmadd_ps(f, _mm512_set1_ps(1.0f / 6.0f), _mm512_set1_ps(0.5f));
      const __m512 p = _mm512_fmadd_ps(q, f2, f);  // e^f - 1
      const __m512 r = _mm512_add_ps(t_hi, _mm512_fmadd_ps(t_hi, p, t_lo));
      return V<D>{_mm512_scalef_ps(r, k)};
    }
#endif
    const hn::RebindToSigned<D> di;
    const V<D> n = hn::Round(hn::Mul(x, hn::Set(d, 1.442695040888963407359924681f)));
    V<D> f = hn::MulAdd(n, hn::Set(d, -0.693145751953125f), x);
    f = hn::MulAdd(n, hn::Set(d, -1.428606765330187045e-6f), f);
    const V<D> p = ExpPolynomial(d, f);
    V<D> n_in_range = n;
#if HWY_TARGET == HWY_EMU128 || HWY_TARGET == HWY_SCALAR
    // Here ConvertTo is a C++ cast, undefined for NaN and +-inf (x86's
    // conversion gives INT_MIN): those n become 0, their scale is not used.
    n_in_range = hn::IfThenElseZero(hn::Lt(hn::Abs(n), hn::Set(d, 256.0f)), n);
#endif
    const V<D> scale = hn::BitCast(
        d, hn::ShiftLeft<23>(hn::Add(hn::ConvertTo(di, n_in_range), hn::Set(di, 127))));
    return hn::IfThenZeroElse(hn::Lt(x, hn::Set(d, -87.5f)), hn::Mul(p, scale));
  }
}

#if HWY_TARGET == HWY_AVX3
/// Entry idx (its low five bits) of each lane in a LogTable.
struct LogEntry {
  __m512 invc, log_hi, log_lo;
};

HWY_INLINE LogEntry LookUp(const LogTable& t, __m512i idx) {
  const auto column = [&](const float* c) {
    return _mm512_permutex2var_ps(_mm512_load_ps(c), idx, _mm512_load_ps(c + 16));
  };
  return {column(t.invc), column(t.log_hi), column(t.log_lo)};
}
#endif

/// log(x) for finite x > 0, subnormals included (0, negatives, +inf and NaN
/// are the caller's). float: on AVX-512 kLogTable and a degree-5
/// polynomial, elsewhere Cephes' logf (a degree-8 polynomial on
/// [sqrt(1/2) - 1, sqrt(2) - 1], 0.83 ULP), both without hn::Log's
/// division; double: hn::Log (4 ULP).
template <class D>
HWY_INLINE V<D> LogPositive(D d, V<D> x) {
  using T = hn::TFromD<D>;
  if constexpr (sizeof(T) == 8) {
    return hn::Log(d, x);
  } else {
#if HWY_TARGET == HWY_AVX3
    if constexpr (kFull512Float<D>) {
      // AVX-512: vgetmantps / vgetexpps split x = m 2^e, m in [0.75, 1.5)
      // (subnormals included; e = getexp(x) - getexp(m)), and kLogTable's
      // m = c (1 + r) gives log(x) = e log(2) - log(invc) + log1p(r), with
      // log1p(r) of degree 5 (|r| <= 1/32). e log(2) is Cephes' pair: e C1
      // (9 bits) is exact in the last fma, the only rounding at the result's
      // scale. Within 0.99 ULP, unbiased, over every positive float32 below 4.
      const __m512 one = _mm512_set1_ps(1.0f);
      const __m512 m = _mm512_getmant_ps(x.raw, _MM_MANT_NORM_p75_1p5, _MM_MANT_SIGN_src);
      const __m512 e = _mm512_sub_ps(_mm512_getexp_ps(x.raw), _mm512_getexp_ps(m));
      const __m512i idx = _mm512_srli_epi32(_mm512_castps_si512(m), 18);
      const auto [invc, log_hi, log_lo] = LookUp(kLogTable, idx);
      const __m512 r = _mm512_fmsub_ps(m, invc, one);
      const __m512 r2 = _mm512_mul_ps(r, r);
      // log1p(r) = r + r^2 (-1/2 + r/3 + r^2 (-1/4 + r/5)).
      const __m512 t1 = _mm512_fmadd_ps(r, _mm512_set1_ps(1.0f / 3), _mm512_set1_ps(-0.5f));
      const __m512 t2 = _mm512_fmadd_ps(r, _mm512_set1_ps(0.2f), _mm512_set1_ps(-0.25f));
      const __m512 q = _mm512_fmadd_ps(r2, t2, t1);
      const __m512 lo = _mm512_fmadd_ps(e, _mm512_set1_ps(-2.12194440e-4f), log_lo);
      const __m512 small = _mm512_fmadd_ps(r2, q, lo);
      return V<D>{_mm512_fmadd_ps(e, _mm512_set1_ps(0.693359375f),
                                  _mm512_add_ps(log_hi, _mm512_add_ps(r, small)))};
    }
#endif
    const hn::RebindToSigned<D> di;
    const auto subnormal = hn::Lt(x, hn::Set(d, std::numeric_limits<float>::min()));
    x = hn::IfThenElse(subnormal, hn::Mul(x, hn::Set(d, 33554432.0f)), x);  // 2^25
    const auto bits = hn::BitCast(di, x);
    // x = m 2^e with m in [0.5, 1).
    V<D> e = hn::ConvertTo(d, hn::Sub(hn::ShiftRight<23>(bits), hn::Set(di, 126)));
    e = hn::Sub(e, hn::IfThenElseZero(subnormal, hn::Set(d, 25.0f)));
    V<D> m = hn::BitCast(d, hn::Or(hn::And(bits, hn::Set(di, 0x007FFFFF)), hn::Set(di, 0x3F000000)));
    const V<D> one = hn::Set(d, 1.0f);
    const auto small = hn::Lt(m, hn::Set(d, 0.707106781186547524f));
    e = hn::Sub(e, hn::IfThenElseZero(small, one));
    m = hn::Sub(hn::IfThenElse(small, hn::Add(m, m), m), one);
    return LogPolynomial(d, m, e);
  }
}

/// c / y for the rounding correction c of y = 1 + u (|c| <= half an ULP of
/// y): the approximate reciprocal refined by one Newton step. Where log(1 +
/// u) is as small as u, c is a large share of it; the bare estimate's 2^-14
/// (AVX-512) or 2^-12 error would then be hundreds of ULP of the result.
/// After the Newton step the AVX-512 reciprocal is within 2^-28; the 2^-12
/// estimate's is only within 2^-24, the same every time (for y = 1, r1 = 1 -
/// 2^-24: -0.8 ULP on average over every float32 u in (-1, 0], which is
/// mostly tiny u), so there the quotient takes one correction step more.
template <class D>
HWY_INLINE V<D> RoundingCorrection(D d, V<D> c, V<D> y) {
  const V<D> r0 = hn::ApproximateReciprocal(y);
  const V<D> r1 = hn::Mul(r0, hn::NegMulAdd(y, r0, hn::Set(d, 2.0f)));
  const V<D> q = hn::Mul(c, r1);
#if HWY_TARGET == HWY_AVX3
  return q;
#else
  return hn::MulAdd(hn::NegMulAdd(q, y, c), r1, q);
#endif
}

/// log(1 + u) for finite u > -1: log(y) for y = 1 + u rounded, plus the
/// rounding's correction (u - (y - 1)) / y. u = -1 is the caller's.
template <class D>
HWY_INLINE V<D> Log1pAboveMinus1(D d, V<D> u) {
  using T = hn::TFromD<D>;
  if constexpr (sizeof(T) == 8) {
    (void)d;
    return hn::Log1p(d, u);
  } else {
    const V<D> one = hn::Set(d, 1.0f);
    const V<D> y = hn::Add(one, u);
    const V<D> c = hn::Sub(u, hn::Sub(y, one));
    return hn::Add(LogPositive(d, y), RoundingCorrection(d, c, y));
  }
}

/// log(1 + e) for e in [0, 1] or NaN (softplus's log1p(exp(-|v|))): 1 + e is
/// in [1, 2], so no exponent needs extracting; the rounding of 1 + e is
/// corrected as in Log1pAboveMinus1. Within 1.01 ULP of log1p on every
/// float32 e in [0, 1] on AVX-512, 1.26 ULP on the other targets (both
/// measured over every float32 in [0, 1]).
template <class D>
HWY_INLINE V<D> Log1pUnit(D d, V<D> e) {
  using T = hn::TFromD<D>;
  if constexpr (sizeof(T) == 8) {
    return hn::Log1p(d, e);
  } else {
#if HWY_TARGET == HWY_AVX3
    if constexpr (kFull512Float<D>) {
      // kUnitLogTable's y = c (1 + r): the index is y's exponent bit and top
      // four fraction bits (16 + i; 0 for y = 2), and log1p(r) a degree-6
      // polynomial (Estrin's scheme: short chains, where Horner's degree 8
      // waited on each step). The correction c / y is c invc / (1 + r) ~
      // c invc (1 - r), exact to r^2 of a term below half an ULP of y.
      const __m512 one = _mm512_set1_ps(1.0f);
      const __m512 y = _mm512_add_ps(one, e.raw);
      const __m512 c = _mm512_sub_ps(e.raw, _mm512_sub_ps(y, one));
      const __m512i idx = _mm512_srli_epi32(_mm512_castps_si512(y), 19);
      const auto [invc, log_hi, log_lo] = LookUp(kUnitLogTable, idx);
      const __m512 r = _mm512_fmsub_ps(y, invc, one);  // exact before its one rounding
      const __m512 r2 = _mm512_mul_ps(r, r);
      // log1p(r) = r + r^2 (-1/2 + r/3 + r^2 (-1/4 + r/5 - r^2/6)).
      const __m512 t1 = _mm512_fmadd_ps(r, _mm512_set1_ps(1.0f / 3), _mm512_set1_ps(-0.5f));
      __m512 t2 = _mm512_fmadd_ps(r, _mm512_set1_ps(0.2f), _mm512_set1_ps(-0.25f));
      t2 = _mm512_fmadd_ps(r2, _mm512_set1_ps(-1.0f / 6), t2);
      const __m512 q = _mm512_fmadd_ps(r2, t2, t1);
      const __m512 ci = _mm512_mul_ps(c, invc);
      // The small terms first, then r, then -log(invc).
      const __m512 small =
          _mm512_add_ps(_mm512_fmadd_ps(r2, q, _mm512_fnmadd_ps(ci, r, ci)), log_lo);
      return V<D>{_mm512_add_ps(log_hi, _mm512_add_ps(r, small))};
    }
#endif
    const V<D> one = hn::Set(d, 1.0f);
    const V<D> y = hn::Add(one, e);
    const V<D> c = hn::Sub(e, hn::Sub(y, one));
    const auto big = hn::Gt(y, hn::Set(d, 1.41421356237309504880f));
    const V<D> m = hn::IfThenElse(big, hn::Mul(y, hn::Set(d, 0.5f)), y);
    const V<D> ex = hn::IfThenElseZero(big, one);
    return hn::Add(LogPolynomial(d, hn::Sub(m, one), ex), RoundingCorrection(d, c, y));
  }
}

/// log(1 + e^-t) for t >= 0 or NaN (softplus(v) = max(v, 0) + this at
/// t = |v|; NaN stays NaN, +inf gives 0). float on AVX-512: kSoftplusTable,
/// with no exp and no log (2^-n g_n(s), see softplus_table.h): within 1.46
/// ULP of log1p(exp(-t)) over every float32 t in [0, 104], where exp and
/// then Log1pUnit were within 1.90; elsewhere exactly that pair.
template <class D>
HWY_INLINE V<D> Log1pExpNeg(D d, V<D> t) {
#if HWY_TARGET == HWY_AVX3
  if constexpr (kFull512Float<D>) {
    // min(104, t) keeps a NaN t (the second operand); past 104 the result
    // is below half the smallest subnormal, 0 as for +inf. The shifter's
    // low bits are n = round(t log2(e)); the index is n, at most 31. s = t -
    // n log(2) in Cephes' two steps, as in ExpNonPositive.
    const __m512 tc = _mm512_min_ps(_mm512_set1_ps(104.0f), t.raw);
    const __m512 shifter = _mm512_set1_ps(12582912.0f);  // 1.5 * 2^23
    const __m512 z = _mm512_fmadd_ps(tc, _mm512_set1_ps(1.442695040888963407359924681f), shifter);
    const __m512 n = _mm512_sub_ps(z, shifter);
    const __m512i idx = _mm512_min_epi32(_mm512_castps_si512(z), _mm512_set1_epi32(0x4B40001F));
    __m512 s = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), tc);
    s = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-6f), s);
    const auto c = [&](int k) {
      const float* col = kSoftplusTable.c[k];
      return _mm512_permutex2var_ps(_mm512_load_ps(col), idx, _mm512_load_ps(col + 16));
    };
    // g_n(s) = c0 + (c1 s + s^2 (c2 + c3 s) + s^4 (c4 + c5 s + c6 s^2)),
    // Estrin's scheme, c0's low part with the small terms.
    const __m512 s2 = _mm512_mul_ps(s, s);
    const __m512 s4 = _mm512_mul_ps(s2, s2);
    const __m512 q01 = _mm512_fmadd_ps(c(1), s, c(7));
    const __m512 q23 = _mm512_fmadd_ps(c(3), s, c(2));
    const __m512 q46 = _mm512_fmadd_ps(c(6), s2, _mm512_fmadd_ps(c(5), s, c(4)));
    const __m512 rest = _mm512_fmadd_ps(s4, q46, _mm512_fmadd_ps(s2, q23, q01));
    const __m512 g = _mm512_add_ps(c(0), rest);
    return V<D>{_mm512_scalef_ps(g, _mm512_sub_ps(_mm512_setzero_ps(), n))};
  }
#endif
  return Log1pUnit(d, ExpNonPositive(d, hn::Neg(t)));
}

/// e^x for every x.
template <class D>
HWY_INLINE V<D> ExpAll(D d, V<D> x) {
  using T = hn::TFromD<D>;
#if HWY_TARGET == HWY_AVX3
  if constexpr (std::is_same_v<D, hn::Simd<double, 8, 0>>) {
    // AVX-512: Highway's reduction and polynomial, with vscalefpd scaling by
    // 2^n (overflow to inf and gradual underflow to 0 included). The clamp
    // keeps a NaN x (min/max return their second operand for NaN).
    const __m512d lim = _mm512_set1_pd(1100.0);
    const __m512d xc = _mm512_max_pd(_mm512_sub_pd(_mm512_setzero_pd(), lim),
                                     _mm512_min_pd(lim, x.raw));
    const __m512d n = _mm512_roundscale_pd(_mm512_mul_pd(xc, _mm512_set1_pd(1.442695040888963407359924681)),
                                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512d f = _mm512_fmadd_pd(n, _mm512_set1_pd(-0.6931471805596629565116018), xc);
    f = _mm512_fmadd_pd(n, _mm512_set1_pd(-0.28235290563031577122588448175e-12), f);
    const V<D> p = hn::Add(hn::impl::ExpImpl<double>().ExpPoly(d, V<D>{f}), hn::Set(d, 1.0));
    return V<D>{_mm512_scalef_pd(p.raw, n)};
  }
  if constexpr (kFull512Float<D>) {
    const __m512 lim = _mm512_set1_ps(104.0f);
    const __m512 xc = _mm512_max_ps(_mm512_sub_ps(_mm512_setzero_ps(), lim),
                                    _mm512_min_ps(lim, x.raw));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.442695040888963407359924681f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_fmadd_ps(n, _mm512_set1_ps(-0.693145751953125f), xc);
    f = _mm512_fmadd_ps(n, _mm512_set1_ps(-1.428606765330187045e-6f), f);
    return V<D>{_mm512_scalef_ps(ExpPolynomial(d, V<D>{f}).raw, n)};
  }
#endif
  // Past these, hn::Exp's exponent arithmetic wraps; every x above them
  // overflows anyway, which the clamped value still does (e^104 > FLT_MAX,
  // e^1000 > DBL_MAX).
  const V<D> limit = hn::Set(d, static_cast<T>(sizeof(T) == 4 ? 104.0 : 1000.0));
  const V<D> e = hn::Exp(d, hn::Min(x, limit));
  return hn::IfThenElse(hn::IsNaN(x), x, e);
}

/// The special values of a logarithm's argument: 0 gives -inf, negatives and
/// NaN give NaN, +inf gives +inf.
template <class D>
HWY_INLINE V<D> FixLog(D d, V<D> arg, V<D> log) {
  using T = hn::TFromD<D>;
  const V<D> zero = hn::Zero(d);
  const V<D> inf = hn::Set(d, std::numeric_limits<T>::infinity());
  V<D> r = hn::IfThenElse(hn::Eq(arg, zero), hn::Neg(inf), log);
  r = hn::IfThenElse(hn::Eq(arg, inf), inf, r);
  const auto bad = hn::Or(hn::Lt(arg, zero), hn::IsNaN(arg));
  return hn::IfThenElse(bad, hn::Set(d, std::numeric_limits<T>::quiet_NaN()), r);
}

/// log(x) for every x.
template <class D>
HWY_INLINE V<D> LogAll(D d, V<D> x) {
  return FixLog(d, x, hn::Log(d, x));
}

/// log(1 + x) for every x (hn::Log1p's formula log(1 + x) * x / ((1 + x) - 1)
/// is also exact for x in (-1, 0): 1 + x is then exact, or (1 + x) - 1 is).
template <class D>
HWY_INLINE V<D> Log1pAll(D d, V<D> x) {
  using T = hn::TFromD<D>;
  const V<D> one = hn::Set(d, T(1));
  const V<D> y = hn::Add(x, one);
  // Keep the argument of hn::Log1p where its formula holds; the special
  // values come from 1 + x.
  const auto ok = hn::And(hn::Gt(y, hn::Zero(d)), hn::IsFinite(x));
  const V<D> safe = hn::IfThenElse(ok, x, hn::Zero(d));
  return FixLog(d, y, hn::Log1p(d, safe));
}

/// 1 / (1 + e^-x), torch.sigmoid's formula.
template <class D>
HWY_INLINE V<D> Sigmoid(D d, V<D> x) {
  using T = hn::TFromD<D>;
  const V<D> one = hn::Set(d, T(1));
  return hn::Div(one, hn::Add(one, ExpAll(d, hn::Neg(x))));
}

/// PyTorch's sign for real numbers: -1, 0 or 1; NaN gives 0.
template <class D>
HWY_INLINE V<D> Sign(D d, V<D> x) {
  using T = hn::TFromD<D>;
  const V<D> zero = hn::Zero(d);
  return hn::Sub(hn::IfThenElseZero(hn::Gt(x, zero), hn::Set(d, T(1))),
                 hn::IfThenElseZero(hn::Lt(x, zero), hn::Set(d, T(1))));
}

/// v < 0 ? 0 : v, with NaN staying NaN (PyTorch's clamp_min(0)).
template <class D>
HWY_INLINE V<D> ClampMin0(D d, V<D> v) {
  return hn::IfThenZeroElse(hn::Lt(v, hn::Zero(d)), v);
}

// ---- loads and stores in the compute type ---------------------------------------
//
// A kernel computes in lanes of C (dc) and stores in T (dt, as many lanes):
// C == T, or C = double for float32 data that PyTorch's float64 reference
// must be matched on.

template <class DC, class DT>
HWY_INLINE V<DC> LoadAs(DC dc, DT dt, const hn::TFromD<DT>* HWY_RESTRICT p) {
  if constexpr (std::is_same_v<hn::TFromD<DC>, hn::TFromD<DT>>) {
    (void)dt;
    return hn::LoadU(dc, p);
  } else {
    return hn::PromoteTo(dc, hn::LoadU(dt, p));
  }
}

template <class DC, class DT>
HWY_INLINE void StoreAs(DC dc, DT dt, V<DC> v, hn::TFromD<DT>* HWY_RESTRICT p) {
  if constexpr (std::is_same_v<hn::TFromD<DC>, hn::TFromD<DT>>) {
    (void)dt;
    hn::StoreU(v, dc, p);
  } else {
#if HWY_TARGET == HWY_SCALAR || HWY_TARGET == HWY_EMU128
    // HWY_SCALAR's and HWY_EMU128's DemoteTo saturate (an infinite double
    // becomes FLT_MAX); the conversion must round as C++ does, overflowing
    // to inf.
    (void)dt;
    HWY_ALIGN hn::TFromD<DC> lanes[hn::MaxLanes(dc)];
    hn::Store(v, dc, lanes);
    for (size_t i = 0; i < hn::Lanes(dc); ++i) p[i] = static_cast<hn::TFromD<DT>>(lanes[i]);
#else
    (void)dc;
    hn::StoreU(hn::DemoteTo(dt, v), dt, p);
#endif
  }
}

/// The most lanes of T any target has; sizes the tails' stack copies.
template <typename T>
inline constexpr size_t kMaxLanes = HWY_MAX_BYTES / sizeof(T);

/// `count` (< one vector) values from `p` into a stack copy of kMaxLanes<T>
/// values, the rest of it `fill`; returns the copy (nullptr for nullptr).
template <typename T>
HWY_INLINE const T* PadTail(const T* p, size_t count, T* buf, T fill) {
  for (size_t i = 0; i < kMaxLanes<T>; ++i) buf[i] = p != nullptr && i < count ? p[i] : fill;
  return p != nullptr ? buf : nullptr;
}

// ---- sums ------------------------------------------------------------------------

/// Sums vectors of D's lanes into a double. float: two float32 accumulators
/// (Add<0> / Add<1>, for two independent chains) whose sum is promoted into
/// double lanes every 2 * kFlush additions, so that a float32 partial holds
/// at most 2 * kFlush terms per lane; double: two double accumulators. The
/// order of the additions depends only on the sequence of Add calls: a
/// chunk's sum is the same whichever thread computes it.
template <class D>
class Summer {
  using T = hn::TFromD<D>;
  static constexpr int kFlush = 4;
#if HWY_TARGET == HWY_SCALAR
  using DD = hn::Rebind<double, D>;
#else
  using DD = hn::Repartition<double, D>;
#endif

 public:
  explicit Summer(D d)
      : d_(d), acc0_(hn::Zero(d)), acc1_(hn::Zero(d)), lo_(hn::Zero(DD())), hi_(hn::Zero(DD())) {}

  template <int kWhich>
  HWY_INLINE void Add(V<D> v) {
    if constexpr (kWhich == 0) {
      acc0_ = hn::Add(acc0_, v);
    } else {
      acc1_ = hn::Add(acc1_, v);
    }
    if constexpr (sizeof(T) == 4) {
      if (++adds_ == 2 * kFlush) Flush();
    }
  }

  /// Everything added so far.
  HWY_INLINE double Total() {
    if constexpr (sizeof(T) == 8) {
      return hn::GetLane(hn::SumOfLanes(d_, hn::Add(acc0_, acc1_)));
    } else {
      Flush();
      return hn::GetLane(hn::SumOfLanes(DD(), hn::Add(lo_, hi_)));
    }
  }

 private:
  HWY_INLINE void Flush() {
    if constexpr (sizeof(T) == 4) {
      const V<D> s = hn::Add(acc0_, acc1_);
#if HWY_TARGET == HWY_SCALAR
      lo_ = hn::Add(lo_, hn::PromoteTo(DD(), s));
#else
      const hn::Half<D> dh;
      lo_ = hn::Add(lo_, hn::PromoteTo(DD(), hn::LowerHalf(dh, s)));
      hi_ = hn::Add(hi_, hn::PromoteTo(DD(), hn::UpperHalf(dh, s)));
#endif
      acc0_ = hn::Zero(d_);
      acc1_ = hn::Zero(d_);
      adds_ = 0;
    }
  }

  D d_;
  V<D> acc0_, acc1_;
  V<DD> lo_, hi_;
  int adds_ = 0;
};

/// The largest lane, NaN if any lane is NaN (hn::Max's NaN handling differs
/// between targets).
template <class D>
HWY_INLINE hn::TFromD<D> MaxLane(D d, V<D> v) {
  using T = hn::TFromD<D>;
  if (!hn::AllFalse(d, hn::IsNaN(v))) return std::numeric_limits<T>::quiet_NaN();
  return hn::GetLane(hn::MaxOfLanes(d, v));
}

}  // namespace HWY_NAMESPACE
}  // namespace lossservice::simd
HWY_AFTER_NAMESPACE();

#endif  // LOSSSERVICE_CORE_SIMD_SIMD_INL_H_
