// The softmax family's kernels (see softmax.h): per target, the contiguous
// layout (lanes over a sample's classes) and the strided one (lanes over
// consecutive samples); below, the scalar reference.
//
// PyTorch's arithmetic kept where parity depends on it: log p = (x - max) -
// log_sum (x - (max + log_sum) loses float32 digits for large logits); the
// loss of a sample is w_t * -log p_t; the gradient p - [c == t] is formed per
// class with p = exp(x - max) / sum, so that it is exact where p rounds to 1.
// Sums of exps accumulate in float32 lanes flushed into double (contiguous)
// or in double lanes (strided), never in one serial float32.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "core/simd/softmax.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/simd/simd-inl.h"
#include "core/simd/softmax.h"
#include "hwy/cache_control.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace lossservice::simd {
namespace HWY_NAMESPACE {
namespace {

// ---- contiguous rows: lanes over the classes of one sample ------------------------

// The largest of row[0, C); with a NaN anywhere the result may or may not
// be NaN, and every output of the sample is NaN either way (its exp is NaN,
// and so is the sum).
template <class D, typename T = hn::TFromD<D>>
HWY_INLINE T RowMax(D d, const T* HWY_RESTRICT row, size_t C) {
  const size_t N = hn::Lanes(d);
  const V<D> neg_inf = hn::Set(d, -std::numeric_limits<T>::infinity());
  V<D> m0 = neg_inf, m1 = neg_inf;
  size_t c = 0;
  for (; c + 2 * N <= C; c += 2 * N) {
    m0 = hn::Max(m0, hn::LoadU(d, row + c));
    m1 = hn::Max(m1, hn::LoadU(d, row + c + N));
  }
  for (; c + N <= C; c += N) m0 = hn::Max(m0, hn::LoadU(d, row + c));
  if (c < C) {
    HWY_ALIGN T buf[kMaxLanes<T>];
    PadTail(row + c, C - c, buf, -std::numeric_limits<T>::infinity());
    m1 = hn::Max(m1, hn::Load(d, buf));
  }
  return hn::GetLane(hn::MaxOfLanes(d, hn::Max(m0, m1)));
}

struct RowStats {
  double sum = 0;   // sum of exp(x - max)
  double wsum = 0;  // sum of q_c (x_c - max)
  double qsum = 0;  // sum of q_c
};

// What a row's weighted sums weigh (a compile-time choice): nothing, the
// class weights (label smoothing of class-index targets), or
// class-probability targets mixed with the label smoothing and times the
// class weights.
enum WeightKind { kNoWeights, kClassWeights, kProbWeights };

template <typename T>
struct RowWeights {
  const T* w = nullptr;      // class weights or nullptr (all 1)
  const T* t = nullptr;      // kProbWeights: the row's targets
  T one_minus_ls = 1;        // kProbWeights: t (1 - ls) + ls / C when smoothing
  T uniform = 0;
  bool smooth = false;
};

// The weights of class-probability targets: the class weights, and the
// label smoothing's mix t (1 - ls) + ls / C.
template <typename T>
RowWeights<T> ProbWeights(const ClassProbArgs<T>& a) {
  RowWeights<T> rw;
  const T ls = static_cast<T>(a.label_smoothing);
  rw.w = a.weight;
  rw.smooth = a.label_smoothing > 0;
  rw.one_minus_ls = T(1) - ls;
  rw.uniform = ls / static_cast<T>(a.classes);
  return rw;
}

template <int kKind, class D, typename T = hn::TFromD<D>>
HWY_INLINE V<D> WeightAt(D d, const RowWeights<T>& rw, const T* t, const T* w) {
  if constexpr (kKind == kClassWeights) {
    (void)t;
    return w ? hn::LoadU(d, w) : hn::Set(d, T(1));
  } else {
    V<D> q = hn::LoadU(d, t);
    if (rw.smooth) q = hn::Add(hn::Mul(q, hn::Set(d, rw.one_minus_ls)), hn::Set(d, rw.uniform));
    return w ? hn::Mul(hn::LoadU(d, w), q) : q;
  }
}

// One vector of the exp pass at class c (full or, with kTail, the first
// `lanes` lanes of padded copies).
template <int kWhich, bool kStore, bool kTail, int kKind, class D, typename T = hn::TFromD<D>>
HWY_INLINE void ExpStep(D d, const T* x, V<D> m, T* e_out, const RowWeights<T>& rw, const T* t,
                        const T* w, size_t lanes, Summer<D>& sum, Summer<D>& wsum,
                        Summer<D>& qsum) {
  const V<D> v = hn::Sub(hn::LoadU(d, x), m);
  V<D> e = ExpNonPositive(d, v);
  if constexpr (kStore) hn::StoreU(e, d, e_out);
  if constexpr (kTail) e = hn::IfThenElseZero(hn::FirstN(d, lanes), e);
  sum.template Add<kWhich>(e);
  if constexpr (kKind != kNoWeights) {
    V<D> q = WeightAt<kKind>(d, rw, t, w);
    V<D> qv = hn::Mul(q, v);
    if constexpr (kTail) {
      q = hn::IfThenElseZero(hn::FirstN(d, lanes), q);
      qv = hn::IfThenElseZero(hn::FirstN(d, lanes), qv);
    }
    wsum.template Add<kWhich>(qv);
    if constexpr (kKind == kProbWeights) qsum.template Add<kWhich>(q);
  }
}

// The exp pass over one row: the sums, and exp(x - max) into e_out when
// kStore; with `ahead` (or nullptr), the prefetch of that row.
template <bool kStore, int kKind, class D, typename T = hn::TFromD<D>>
HWY_INLINE RowStats RowExp(D d, const T* HWY_RESTRICT row, size_t C, T max, T* HWY_RESTRICT e_out,
                           const RowWeights<T>& rw, const T* ahead) {
  const size_t N = hn::Lanes(d);
  const V<D> m = hn::Set(d, max);
  Summer<D> sum(d), wsum(d), qsum(d);
  const T* w = rw.w;
  const T* t = rw.t;
  const auto at = [](const T* p, size_t c) { return p ? p + c : nullptr; };
  const auto out_at = [](T* p, size_t c) { return p ? p + c : nullptr; };
  size_t c = 0;
  for (; c + 2 * N <= C; c += 2 * N) {
    if (ahead != nullptr) {
      hwy::Prefetch(ahead + c);
      if (2 * N * sizeof(T) > 64) hwy::Prefetch(ahead + c + 64 / sizeof(T));
    }
    ExpStep<0, kStore, false, kKind>(d, row + c, m, out_at(e_out, c), rw, at(t, c), at(w, c), N,
                                     sum, wsum, qsum);
    ExpStep<1, kStore, false, kKind>(d, row + c + N, m, out_at(e_out, c + N), rw, at(t, c + N),
                                     at(w, c + N), N, sum, wsum, qsum);
  }
  for (; c + N <= C; c += N) {
    ExpStep<0, kStore, false, kKind>(d, row + c, m, out_at(e_out, c), rw, at(t, c), at(w, c), N,
                                     sum, wsum, qsum);
  }
  if (c < C) {
    const size_t rest = C - c;
    HWY_ALIGN T xb[kMaxLanes<T>], eb[kMaxLanes<T>], tb[kMaxLanes<T>], wb[kMaxLanes<T>];
    PadTail(row + c, rest, xb, -std::numeric_limits<T>::infinity());
    ExpStep<0, kStore, true, kKind>(d, xb, m, eb, rw, PadTail(at(t, c), rest, tb, T(0)),
                                    PadTail(at(w, c), rest, wb, T(0)), rest, sum, wsum, qsum);
    if constexpr (kStore) std::copy(eb, eb + rest, e_out + c);
  }
  RowStats st;
  st.sum = sum.Total();
  if constexpr (kKind != kNoWeights) st.wsum = wsum.Total();
  if constexpr (kKind == kProbWeights) st.qsum = qsum.Total();
  return st;
}

// Applies f(v, c, tail) -> new value to every vector of row[0, C) in place.
template <class D, class F, typename T = hn::TFromD<D>>
HWY_INLINE void RowMap(D d, T* HWY_RESTRICT row, size_t C, const F& f) {
  const size_t N = hn::Lanes(d);
  size_t c = 0;
  for (; c + N <= C; c += N) hn::StoreU(f(hn::LoadU(d, row + c), c, false), d, row + c);
  if (c < C) {
    HWY_ALIGN T buf[kMaxLanes<T>];
    PadTail(row + c, C - c, buf, T(0));
    hn::Store(f(hn::Load(d, buf), c, true), d, buf);
    std::copy(buf, buf + (C - c), row + c);
  }
}

// A vector of the class weights at c (1 without weights); the tail's copy
// is padded.
template <class D, typename T = hn::TFromD<D>>
HWY_INLINE V<D> ClassWeightAt(D d, const T* w, size_t c, size_t C, bool tail) {
  if (w == nullptr) return hn::Set(d, T(1));
  if (!tail) return hn::LoadU(d, w + c);
  HWY_ALIGN T buf[kMaxLanes<T>];
  PadTail(w + c, C - c, buf, T(0));
  return hn::Load(d, buf);
}

// log(sum[i]) and 1 / sum[i] for i < n (n <= kGroup), rounded to T: the
// per-sample scalars of a group of samples, in double lanes.
constexpr size_t kGroup = 16;
// GroupRows prefetches the row kPrefetchAhead rows ahead of the one it
// computes, for rows of at most kPrefetchRowBytes (measured on [4096, 1000]
// on Zen 5: forward 765-809 us without, 682-706 us two rows ahead, 715-798
// us four). RowExp issues the prefetches, one per cache line among its exp
// steps: as one burst before the pass (as they were) they were 12% of the
// forward's samples under perf on Zen 4, waiting for free miss buffers;
// spread, [4096, 1000] forward took 1.14 ms at best of 18 against 1.19 ms,
// rows of 128 0.348 against 0.359 ms.
constexpr size_t kPrefetchAhead = 2;
constexpr size_t kPrefetchRowBytes = 16 * 1024;

template <typename T>
HWY_INLINE void LogAndInverse(const double* sum, size_t n, T* log_out, T* inv_out) {
  using DD = hn::ScalableTag<double>;
  const DD dd;
  const size_t N = hn::Lanes(dd);
  HWY_ALIGN double in[kGroup + kMaxLanes<double>], lg[kGroup + kMaxLanes<double>],
      inv[kGroup + kMaxLanes<double>];
  for (size_t i = 0; i < kGroup + kMaxLanes<double>; ++i) in[i] = i < n ? sum[i] : 1.0;
  const V<DD> one = hn::Set(dd, 1.0);
  for (size_t i = 0; i < n; i += N) {
    const V<DD> v = hn::Load(dd, in + i);
    hn::Store(LogAll(dd, v), dd, lg + i);
    hn::Store(hn::Div(one, v), dd, inv + i);
  }
  for (size_t i = 0; i < n; ++i) {
    log_out[i] = static_cast<T>(lg[i]);
    inv_out[i] = static_cast<T>(inv[i]);
  }
}

// Rows [i0, i0 + n) of a group: their max and sums (exps stored into `e`'s
// rows when kStore), then their log-sum-exp and 1 / sum.
template <bool kStore, int kKind, class D, typename T = hn::TFromD<D>>
HWY_INLINE void GroupRows(D d, const T* x, size_t C, size_t n, size_t rows_left, T* e,
                          RowWeights<T>& rw, const T* t_rows, T* max, RowStats* st, T* log_sum,
                          T* inv) {
  double sums[kGroup];
  // Rows of up to kPrefetchRowBytes: a later row of the span (rows_left
  // rows from x on) is fetched while this one's exps are computed, so that
  // its max pass does not wait for L3.
  const bool prefetch = C * sizeof(T) <= kPrefetchRowBytes;
  for (size_t j = 0; j < n; ++j) {
    const T* row = x + j * C;
    if constexpr (kKind == kProbWeights) rw.t = t_rows + j * C;
    max[j] = RowMax(d, row, C);
    const T* ahead =
        prefetch && j + kPrefetchAhead < rows_left ? row + kPrefetchAhead * C : nullptr;
    st[j] = RowExp<kStore, kKind>(d, row, C, max[j], kStore ? e + j * C : nullptr, rw, ahead);
    sums[j] = st[j].sum;
  }
  LogAndInverse(sums, n, log_sum, inv);
}

template <bool kGrad, int kKind, typename T>
ClassSums IndexRowsK(const ClassIndexArgs<T>& a) {
  using D = hn::ScalableTag<T>;
  using VD = V<D>;
  const D d;
  const size_t C = static_cast<size_t>(a.classes);
  constexpr bool kSmooth = kKind == kClassWeights;
  const T ls = static_cast<T>(a.label_smoothing);
  const T smooth_scale = ls / static_cast<T>(a.classes);
  const T wsum_t = static_cast<T>(a.weight_total);
  RowWeights<T> rw;
  rw.w = a.weight;
  ClassSums sums;
  T max[kGroup], log_sum[kGroup], inv[kGroup];
  RowStats st[kGroup];
  for (int64_t i0 = 0; i0 < a.count; i0 += static_cast<int64_t>(kGroup)) {
    const size_t n = std::min<size_t>(kGroup, static_cast<size_t>(a.count - i0));
    const T* x0 = a.x + i0 * a.classes;
    T* g0 = kGrad ? a.grad + i0 * a.classes : nullptr;
    GroupRows<kGrad, kKind>(d, x0, C, n, static_cast<size_t>(a.count - i0), g0, rw,
                            static_cast<const T*>(nullptr), max, st, log_sum, inv);
    for (size_t j = 0; j < n; ++j) {
      const int64_t i = i0 + static_cast<int64_t>(j);
      const T* row = x0 + j * C;
      T* grow = kGrad ? g0 + j * C : nullptr;
      const int64_t t = a.target[i];
      if (t == a.ignore_index) {
        if (a.loss) a.loss[i] = 0;
        if constexpr (kGrad) {
          // log_softmax's backward with a zero upstream gradient: 0 - p * 0,
          // NaN where p is (a NaN or +inf logit in the row), as in PyTorch.
          const VD vinv = hn::Set(d, inv[j]), zero = hn::Zero(d);
          RowMap(d, grow, C, [&](VD e, size_t, bool) HWY_ATTR {
            return hn::Sub(zero, hn::Mul(hn::Mul(e, vinv), zero));
          });
        }
        continue;
      }
      const T wt = a.weight ? a.weight[t] : T(1);
      const T nll = -wt * ((row[t] - max[j]) - log_sum[j]);
      // -sum_c w_c log p_c = log_sum * sum_c w_c - sum_c w_c (x_c - max).
      const T smooth_term =
          kSmooth ? static_cast<T>(static_cast<double>(log_sum[j]) * a.weight_total - st[j].wsum)
                  : T(0);
      if (a.loss) {
        a.loss[i] = (T(1) - ls) * nll + smooth_scale * smooth_term;
      } else {
        sums.nll += nll;
        sums.smooth += smooth_term;
      }
      if constexpr (kGrad) {
        // d/dx_c of (1-ls) nll + (ls/C) smooth, with p = softmax(x):
        //   nll:    w_t (p_c - [c == t]);   smooth: p_c sum(w) - w_c
        const T g = a.go ? a.go[i] : static_cast<T>(a.grad_scale);
        const T coef = (T(1) - ls) * wt * g;
        const T bsm = smooth_scale * g;
        const T e_t = grow[t];
        const VD vinv = hn::Set(d, inv[j]), vcoef = hn::Set(d, coef), vbsm = hn::Set(d, bsm),
                 vw = hn::Set(d, wsum_t);
        RowMap(d, grow, C, [&](VD e, size_t c, bool tail) HWY_ATTR {
          const VD p = hn::Mul(e, vinv);
          VD gv = hn::Mul(vcoef, p);
          if constexpr (kSmooth) {
            gv = hn::Add(gv, hn::Mul(vbsm, hn::Sub(hn::Mul(p, vw),
                                                   ClassWeightAt(d, a.weight, c, C, tail))));
          }
          return gv;
        });
        const T p_t = e_t * inv[j];
        grow[t] = coef * (p_t - T(1)) + (kSmooth ? bsm * (p_t * wsum_t - wt) : T(0));
      }
    }
  }
  return sums;
}

template <bool kGrad, typename T>
ClassSums IndexRows(const ClassIndexArgs<T>& a) {
  return a.label_smoothing > 0 ? IndexRowsK<kGrad, kClassWeights>(a)
                               : IndexRowsK<kGrad, kNoWeights>(a);
}

template <bool kGrad, typename T>
double ProbRows(const ClassProbArgs<T>& a) {
  using D = hn::ScalableTag<T>;
  const D d;
  using VD = V<D>;
  const size_t C = static_cast<size_t>(a.classes);
  RowWeights<T> rw = ProbWeights(a);
  double total = 0;
  T max[kGroup], log_sum[kGroup], inv[kGroup];
  RowStats st[kGroup];
  for (int64_t i0 = 0; i0 < a.count; i0 += static_cast<int64_t>(kGroup)) {
    const size_t n = std::min<size_t>(kGroup, static_cast<size_t>(a.count - i0));
    const T* x0 = a.x + i0 * a.classes;
    const T* t0 = a.target + i0 * a.classes;
    T* g0 = kGrad ? a.grad + i0 * a.classes : nullptr;
    GroupRows<kGrad, kProbWeights>(d, x0, C, n, static_cast<size_t>(a.count - i0), g0, rw, t0,
                                   max, st, log_sum, inv);
    for (size_t j = 0; j < n; ++j) {
      const int64_t i = i0 + static_cast<int64_t>(j);
      // -sum_c q_c log p_c = log_sum * sum_c q_c - sum_c q_c (x_c - max).
      const double li = static_cast<double>(log_sum[j]) * st[j].qsum - st[j].wsum;
      if (a.loss) {
        a.loss[i] = static_cast<T>(li);
      } else {
        total += li;
      }
      if constexpr (kGrad) {
        T* grow = g0 + j * C;
        rw.t = t0 + j * C;
        const T g = a.go ? a.go[i] : static_cast<T>(a.grad_scale);
        const VD vinv = hn::Set(d, inv[j]), vg = hn::Set(d, g),
                 vqs = hn::Set(d, static_cast<T>(st[j].qsum));
        RowMap(d, grow, C, [&](VD e, size_t c, bool tail) HWY_ATTR {
          VD q;
          if (tail) {
            HWY_ALIGN T tb[kMaxLanes<T>], wb[kMaxLanes<T>];
            const size_t rest = C - c;
            q = WeightAt<kProbWeights>(d, rw, PadTail(rw.t + c, rest, tb, T(0)),
                                       PadTail(a.weight ? a.weight + c : nullptr, rest, wb, T(0)));
          } else {
            q = WeightAt<kProbWeights>(d, rw, rw.t + c, a.weight ? a.weight + c : nullptr);
          }
          return hn::Mul(vg, hn::Sub(hn::Mul(hn::Mul(e, vinv), vqs), q));
        });
      }
    }
  }
  return total;
}

template <bool kLog, typename T>
void SoftmaxRows(int64_t count, int64_t classes, const T* x, T* y) {
  using D = hn::ScalableTag<T>;
  const D d;
  using VD = V<D>;
  const size_t C = static_cast<size_t>(classes);
  RowWeights<T> none;
  T max[kGroup], log_sum[kGroup], inv[kGroup];
  RowStats st[kGroup];
  for (int64_t i0 = 0; i0 < count; i0 += static_cast<int64_t>(kGroup)) {
    const size_t n = std::min<size_t>(kGroup, static_cast<size_t>(count - i0));
    const T* x0 = x + i0 * classes;
    T* y0 = y + i0 * classes;
    GroupRows<!kLog, kNoWeights>(d, x0, C, n, static_cast<size_t>(count - i0), y0, none,
                                 static_cast<const T*>(nullptr), max, st, log_sum, inv);
    for (size_t j = 0; j < n; ++j) {
      T* out = y0 + j * C;
      if constexpr (kLog) {
        const T* row = x0 + j * C;
        std::copy(row, row + C, out);
        const VD m = hn::Set(d, max[j]), ls = hn::Set(d, log_sum[j]);
        RowMap(d, out, C, [&](VD v, size_t, bool) HWY_ATTR { return hn::Sub(hn::Sub(v, m), ls); });
      } else {
        const VD vinv = hn::Set(d, inv[j]);
        RowMap(d, out, C, [&](VD e, size_t, bool) HWY_ATTR { return hn::Mul(e, vinv); });
      }
    }
  }
}

// ---- strided: lanes over consecutive samples, classes `stride` apart -------------

// Per-lane sums in double: one vector for double data, the two promoted
// halves for float.
template <class D>
class LaneSums {
  using T = hn::TFromD<D>;
#if HWY_TARGET == HWY_SCALAR
  using DD = hn::Rebind<double, D>;  // one lane: promoted whole
#else
  using DD = hn::Repartition<double, D>;
#endif

 public:
  explicit LaneSums(D) : lo_(hn::Zero(DD())), hi_(hn::Zero(DD())) {}
  HWY_INLINE void Add(V<D> v) {
    if constexpr (sizeof(T) == 8) {
      lo_ = hn::Add(lo_, v);
    } else {
#if HWY_TARGET == HWY_SCALAR
      lo_ = hn::Add(lo_, hn::PromoteTo(DD(), v));
#else
      const hn::Half<D> dh;
      lo_ = hn::Add(lo_, hn::PromoteTo(DD(), hn::LowerHalf(dh, v)));
      hi_ = hn::Add(hi_, hn::PromoteTo(DD(), hn::UpperHalf(dh, v)));
#endif
    }
  }
  // Lane i's sum to out[i].
  void Store(double* out) const {
    hn::StoreU(lo_, DD(), out);
#if HWY_TARGET != HWY_SCALAR
    if constexpr (sizeof(T) == 4) hn::StoreU(hi_, DD(), out + hn::Lanes(DD()));
#endif
  }

 private:
  V<DD> lo_, hi_;
};

// A group of up to N consecutive samples: loads and stores of class c.
template <class D, typename T = hn::TFromD<D>>
struct Group {
  D d;
  size_t lanes;   // samples in use
  int64_t stride;
  bool full;
  HWY_INLINE V<D> Load(const T* base, int64_t c, T fill) const {
    if (full) return hn::LoadU(d, base + c * stride);
    HWY_ALIGN T buf[kMaxLanes<T>];
    PadTail(base + c * stride, lanes, buf, fill);
    return hn::Load(d, buf);
  }
  HWY_INLINE void Store(V<D> v, T* base, int64_t c) const {
    if (full) return hn::StoreU(v, d, base + c * stride);
    HWY_ALIGN T buf[kMaxLanes<T>];
    hn::Store(v, d, buf);
    std::copy(buf, buf + lanes, base + c * stride);
  }
  HWY_INLINE V<D> Masked(V<D> v) const {
    return full ? v : hn::IfThenElseZero(hn::FirstN(d, lanes), v);
  }
};

// The max and exp pass of a group: per lane, max[j], sum[j] and the weighted
// sums (see WeightKind) into arrays of N; exp(x - max) into e_base when not
// nullptr. t_base: kProbWeights targets at the group's first sample.
template <int kKind, class D, typename T = hn::TFromD<D>>
HWY_INLINE void GroupExp(const Group<D>& g, const T* x, int64_t C, T* e_base,
                         const RowWeights<T>& rw, const T* t_base, T* max, double* sum,
                         double* wsum, double* qsum) {
  const D d = g.d;
  const T neg_inf = -std::numeric_limits<T>::infinity();
  V<D> m = hn::Set(d, neg_inf);
  for (int64_t c = 0; c < C; ++c) m = hn::Max(m, g.Load(x, c, neg_inf));
  hn::StoreU(m, d, max);
  LaneSums<D> s(d), ws(d), qs(d);
  for (int64_t c = 0; c < C; ++c) {
    const V<D> v = hn::Sub(g.Load(x, c, neg_inf), m);
    const V<D> e = g.Masked(ExpNonPositive(d, v));
    if (e_base) g.Store(e, e_base, c);
    s.Add(e);
    if constexpr (kKind == kClassWeights) {
      const V<D> w = hn::Set(d, rw.w ? rw.w[c] : T(1));
      ws.Add(g.Masked(hn::Mul(w, v)));
    } else if constexpr (kKind == kProbWeights) {
      V<D> q = g.Load(t_base, c, T(0));
      if (rw.smooth) q = hn::Add(hn::Mul(q, hn::Set(d, rw.one_minus_ls)), hn::Set(d, rw.uniform));
      if (rw.w) q = hn::Mul(hn::Set(d, rw.w[c]), q);
      q = g.Masked(q);
      ws.Add(g.Masked(hn::Mul(q, v)));
      qs.Add(q);
    }
  }
  s.Store(sum);
  if constexpr (kKind != kNoWeights) ws.Store(wsum);
  if constexpr (kKind == kProbWeights) qs.Store(qsum);
}

template <bool kGrad, int kKind, typename T>
ClassSums IndexLanesK(const ClassIndexArgs<T>& a) {
  using D = hn::ScalableTag<T>;
  const D d;
  using VD = V<D>;
  const size_t N = hn::Lanes(d);
  const int64_t C = a.classes, S = a.stride;
  constexpr bool smooth = kKind == kClassWeights;
  const T ls = static_cast<T>(a.label_smoothing);
  const T smooth_scale = ls / static_cast<T>(C);
  const T wsum_t = static_cast<T>(a.weight_total);
  RowWeights<T> rw;
  rw.w = a.weight;
  ClassSums sums;
  HWY_ALIGN T max[kMaxLanes<T>], inv[kMaxLanes<T>], log_sums[kMaxLanes<T>], coef[kMaxLanes<T>],
      bsm[kMaxLanes<T>], ignored[kMaxLanes<T>];
  double sum[kMaxLanes<T>], wsum[kMaxLanes<T>], qsum[kMaxLanes<T>];
  T e_t[kMaxLanes<T>];
  for (int64_t i0 = 0; i0 < a.count; i0 += static_cast<int64_t>(N)) {
    const size_t lanes = std::min<size_t>(N, static_cast<size_t>(a.count - i0));
    const Group<D> g{d, lanes, S, lanes == N};
    const T* x = a.x + i0;
    T* gb = kGrad ? a.grad + i0 : nullptr;
    GroupExp<kKind>(g, x, C, gb, rw, static_cast<const T*>(nullptr), max, sum, wsum, qsum);
    LogAndInverse(sum, lanes, log_sums, inv);
    for (size_t j = 0; j < N; ++j) {
      coef[j] = bsm[j] = ignored[j] = 0;
      if (j >= lanes) {
        inv[j] = 0;
        continue;
      }
      const int64_t i = i0 + static_cast<int64_t>(j);
      const int64_t t = a.target[i];
      const T log_sum = log_sums[j];
      if (t == a.ignore_index) {
        ignored[j] = 1;
        if (a.loss) a.loss[i] = 0;
        continue;
      }
      const T wt = a.weight ? a.weight[t] : T(1);
      const T nll = -wt * ((x[t * S + static_cast<int64_t>(j)] - max[j]) - log_sum);
      const T smooth_term =
          smooth ? static_cast<T>(static_cast<double>(log_sum) * a.weight_total - wsum[j]) : T(0);
      if (a.loss) {
        a.loss[i] = (T(1) - ls) * nll + smooth_scale * smooth_term;
      } else {
        sums.nll += nll;
        sums.smooth += smooth_term;
      }
      if constexpr (kGrad) {
        const T go = a.go ? a.go[i] : static_cast<T>(a.grad_scale);
        coef[j] = (T(1) - ls) * wt * go;
        bsm[j] = smooth_scale * go;
        e_t[j] = gb[t * S + static_cast<int64_t>(j)];
      }
    }
    if constexpr (kGrad) {
      const VD vinv = hn::Load(d, inv), vcoef = hn::Load(d, coef), vbsm = hn::Load(d, bsm),
               vw = hn::Set(d, wsum_t), zero = hn::Zero(d);
      const auto is_ignored = hn::Gt(hn::Load(d, ignored), zero);
      for (int64_t c = 0; c < C; ++c) {
        const VD p = hn::Mul(g.Load(gb, c, T(0)), vinv);
        VD gv = hn::Mul(vcoef, p);
        if (smooth) {
          const VD wc = hn::Set(d, a.weight ? a.weight[c] : T(1));
          gv = hn::Add(gv, hn::Mul(vbsm, hn::Sub(hn::Mul(p, vw), wc)));
        }
        gv = hn::IfThenElse(is_ignored, hn::Sub(zero, hn::Mul(p, zero)), gv);
        g.Store(gv, gb, c);
      }
      for (size_t j = 0; j < lanes; ++j) {
        if (ignored[j] != 0) continue;
        const int64_t t = a.target[i0 + static_cast<int64_t>(j)];
        const T wt = a.weight ? a.weight[t] : T(1);
        const T p_t = e_t[j] * inv[j];
        gb[t * S + static_cast<int64_t>(j)] =
            coef[j] * (p_t - T(1)) + (smooth ? bsm[j] * (p_t * wsum_t - wt) : T(0));
      }
    }
  }
  return sums;
}

template <bool kGrad, typename T>
ClassSums IndexLanes(const ClassIndexArgs<T>& a) {
  return a.label_smoothing > 0 ? IndexLanesK<kGrad, kClassWeights>(a)
                               : IndexLanesK<kGrad, kNoWeights>(a);
}

template <bool kGrad, typename T>
double ProbLanes(const ClassProbArgs<T>& a) {
  using D = hn::ScalableTag<T>;
  const D d;
  using VD = V<D>;
  const size_t N = hn::Lanes(d);
  const int64_t C = a.classes, S = a.stride;
  RowWeights<T> rw = ProbWeights(a);
  double total = 0;
  HWY_ALIGN T max[kMaxLanes<T>], inv[kMaxLanes<T>], log_sums[kMaxLanes<T>], go[kMaxLanes<T>],
      qs[kMaxLanes<T>];
  double sum[kMaxLanes<T>], wsum[kMaxLanes<T>], qsum[kMaxLanes<T>];
  for (int64_t i0 = 0; i0 < a.count; i0 += static_cast<int64_t>(N)) {
    const size_t lanes = std::min<size_t>(N, static_cast<size_t>(a.count - i0));
    const Group<D> g{d, lanes, S, lanes == N};
    const T* x = a.x + i0;
    const T* tb = a.target + i0;
    T* gb = kGrad ? a.grad + i0 : nullptr;
    GroupExp<kProbWeights>(g, x, C, gb, rw, tb, max, sum, wsum, qsum);
    LogAndInverse(sum, lanes, log_sums, inv);
    for (size_t j = 0; j < N; ++j) {
      go[j] = qs[j] = 0;
      if (j >= lanes) {
        inv[j] = 0;
        continue;
      }
      const int64_t i = i0 + static_cast<int64_t>(j);
      const double li = static_cast<double>(log_sums[j]) * qsum[j] - wsum[j];
      if (a.loss) {
        a.loss[i] = static_cast<T>(li);
      } else {
        total += li;
      }
      go[j] = a.go ? a.go[i] : static_cast<T>(a.grad_scale);
      qs[j] = static_cast<T>(qsum[j]);
    }
    if constexpr (kGrad) {
      const VD vinv = hn::Load(d, inv), vg = hn::Load(d, go), vqs = hn::Load(d, qs);
      for (int64_t c = 0; c < C; ++c) {
        VD q = g.Load(tb, c, T(0));
        if (rw.smooth) q = hn::Add(hn::Mul(q, hn::Set(d, rw.one_minus_ls)), hn::Set(d, rw.uniform));
        if (rw.w) q = hn::Mul(hn::Set(d, rw.w[c]), q);
        const VD p = hn::Mul(g.Load(gb, c, T(0)), vinv);
        g.Store(hn::Mul(vg, hn::Sub(hn::Mul(p, vqs), q)), gb, c);
      }
    }
  }
  return total;
}

template <bool kLog, typename T>
void SoftmaxLanes(int64_t count, int64_t C, int64_t S, const T* x_all, T* y_all) {
  using D = hn::ScalableTag<T>;
  const D d;
  using VD = V<D>;
  const size_t N = hn::Lanes(d);
  const RowWeights<T> none;
  HWY_ALIGN T max[kMaxLanes<T>], scale[kMaxLanes<T>], log_sums[kMaxLanes<T>], inv[kMaxLanes<T>];
  double sum[kMaxLanes<T>], unused[kMaxLanes<T>], unused2[kMaxLanes<T>];
  for (int64_t i0 = 0; i0 < count; i0 += static_cast<int64_t>(N)) {
    const size_t lanes = std::min<size_t>(N, static_cast<size_t>(count - i0));
    const Group<D> g{d, lanes, S, lanes == N};
    const T* x = x_all + i0;
    T* y = y_all + i0;
    GroupExp<kNoWeights>(g, x, C, kLog ? nullptr : y, none, static_cast<const T*>(nullptr), max,
                         sum, unused, unused2);
    LogAndInverse(sum, lanes, log_sums, inv);
    for (size_t j = 0; j < N; ++j) scale[j] = j >= lanes ? T(0) : kLog ? log_sums[j] : inv[j];
    const VD vs = hn::Load(d, scale), vm = hn::Load(d, max);
    for (int64_t c = 0; c < C; ++c) {
      if constexpr (kLog) {
        g.Store(hn::Sub(hn::Sub(g.Load(x, c, T(0)), vm), vs), y, c);
      } else {
        g.Store(hn::Mul(g.Load(y, c, T(0)), vs), y, c);
      }
    }
  }
}

// ---- few classes: contiguous rows transposed into the strided layout --------------
//
// Rows of fewer than 2 N classes would waste most of a vector (and pay a
// row's fixed cost for a handful of values): groups of N rows are copied
// into a stack buffer, class-major (class c of row j at c * N + j), and go
// through the strided kernels with stride N; gradients are copied back.

template <typename T>
inline constexpr size_t kSmallClasses = 2 * kMaxLanes<T>;

template <typename T>
bool FewClasses(int64_t stride, int64_t classes) {
  const hn::ScalableTag<T> d;
  return stride == 1 && classes < static_cast<int64_t>(2 * hn::Lanes(d));
}

// Copies rows [i0, i0 + lanes) of `src` (C contiguous values each) into
// `dst` (class-major, N apart), and back.
template <typename T>
HWY_INLINE void ToClassMajor(const T* src, int64_t C, size_t lanes, size_t N, T* dst) {
  for (size_t j = 0; j < lanes; ++j) {
    for (int64_t c = 0; c < C; ++c) dst[static_cast<size_t>(c) * N + j] = src[j * C + c];
  }
}
template <typename T>
HWY_INLINE void FromClassMajor(const T* src, int64_t C, size_t lanes, size_t N, T* dst) {
  for (size_t j = 0; j < lanes; ++j) {
    for (int64_t c = 0; c < C; ++c) dst[j * C + c] = src[static_cast<size_t>(c) * N + j];
  }
}

template <bool kGrad, typename T>
ClassSums IndexFew(const ClassIndexArgs<T>& a) {
  const size_t N = hn::Lanes(hn::ScalableTag<T>());
  const int64_t C = a.classes;
  HWY_ALIGN T xt[kMaxLanes<T> * kSmallClasses<T>], gt[kMaxLanes<T> * kSmallClasses<T>];
  ClassSums sums;
  for (int64_t i0 = 0; i0 < a.count; i0 += static_cast<int64_t>(N)) {
    const size_t lanes = std::min<size_t>(N, static_cast<size_t>(a.count - i0));
    ToClassMajor(a.x + i0 * C, C, lanes, N, xt);
    ClassIndexArgs<T> b = a;
    b.count = static_cast<int64_t>(lanes);
    b.stride = static_cast<int64_t>(N);
    b.x = xt;
    b.grad = kGrad ? gt : nullptr;
    b.target = a.target + i0;
    b.go = a.go ? a.go + i0 : nullptr;
    b.loss = a.loss ? a.loss + i0 : nullptr;
    sums += IndexLanes<kGrad>(b);
    if constexpr (kGrad) FromClassMajor(gt, C, lanes, N, a.grad + i0 * C);
  }
  return sums;
}

template <bool kGrad, typename T>
double ProbFew(const ClassProbArgs<T>& a) {
  const size_t N = hn::Lanes(hn::ScalableTag<T>());
  const int64_t C = a.classes;
  HWY_ALIGN T xt[kMaxLanes<T> * kSmallClasses<T>], tt[kMaxLanes<T> * kSmallClasses<T>],
      gt[kMaxLanes<T> * kSmallClasses<T>];
  double total = 0;
  for (int64_t i0 = 0; i0 < a.count; i0 += static_cast<int64_t>(N)) {
    const size_t lanes = std::min<size_t>(N, static_cast<size_t>(a.count - i0));
    ToClassMajor(a.x + i0 * C, C, lanes, N, xt);
    ToClassMajor(a.target + i0 * C, C, lanes, N, tt);
    ClassProbArgs<T> b = a;
    b.count = static_cast<int64_t>(lanes);
    b.stride = static_cast<int64_t>(N);
    b.x = xt;
    b.target = tt;
    b.grad = kGrad ? gt : nullptr;
    b.go = a.go ? a.go + i0 : nullptr;
    b.loss = a.loss ? a.loss + i0 : nullptr;
    total += ProbLanes<kGrad>(b);
    if constexpr (kGrad) FromClassMajor(gt, C, lanes, N, a.grad + i0 * C);
  }
  return total;
}

template <bool kLog, typename T>
void SoftmaxFew(int64_t count, int64_t C, const T* x, T* y) {
  const size_t N = hn::Lanes(hn::ScalableTag<T>());
  HWY_ALIGN T xt[kMaxLanes<T> * kSmallClasses<T>], yt[kMaxLanes<T> * kSmallClasses<T>];
  for (int64_t i0 = 0; i0 < count; i0 += static_cast<int64_t>(N)) {
    const size_t lanes = std::min<size_t>(N, static_cast<size_t>(count - i0));
    ToClassMajor(x + i0 * C, C, lanes, N, xt);
    SoftmaxLanes<kLog>(static_cast<int64_t>(lanes), C, static_cast<int64_t>(N), xt, yt);
    FromClassMajor(yt, C, lanes, N, y + i0 * C);
  }
}

template <typename T>
ClassSums IndexT(const ClassIndexArgs<T>& a) {
  if (FewClasses<T>(a.stride, a.classes)) return a.grad ? IndexFew<true>(a) : IndexFew<false>(a);
  if (a.stride == 1) return a.grad ? IndexRows<true>(a) : IndexRows<false>(a);
  return a.grad ? IndexLanes<true>(a) : IndexLanes<false>(a);
}

template <typename T>
double ProbT(const ClassProbArgs<T>& a) {
  if (FewClasses<T>(a.stride, a.classes)) return a.grad ? ProbFew<true>(a) : ProbFew<false>(a);
  if (a.stride == 1) return a.grad ? ProbRows<true>(a) : ProbRows<false>(a);
  return a.grad ? ProbLanes<true>(a) : ProbLanes<false>(a);
}

template <typename T>
void SoftmaxT(bool log, int64_t count, int64_t classes, int64_t stride, const T* x, T* y) {
  if (FewClasses<T>(stride, classes)) {
    return log ? SoftmaxFew<true>(count, classes, x, y) : SoftmaxFew<false>(count, classes, x, y);
  }
  if (stride == 1) {
    return log ? SoftmaxRows<true>(count, classes, x, y) : SoftmaxRows<false>(count, classes, x, y);
  }
  return log ? SoftmaxLanes<true>(count, classes, stride, x, y)
             : SoftmaxLanes<false>(count, classes, stride, x, y);
}

}  // namespace

ClassSums IndexF32(const ClassIndexArgs<float>& a) { return IndexT(a); }
ClassSums IndexF64(const ClassIndexArgs<double>& a) { return IndexT(a); }
double ProbF32(const ClassProbArgs<float>& a) { return ProbT(a); }
double ProbF64(const ClassProbArgs<double>& a) { return ProbT(a); }
void SoftmaxF32(bool log, int64_t n, int64_t c, int64_t s, const float* x, float* y) {
  SoftmaxT(log, n, c, s, x, y);
}
void SoftmaxF64(bool log, int64_t n, int64_t c, int64_t s, const double* x, double* y) {
  SoftmaxT(log, n, c, s, x, y);
}

}  // namespace HWY_NAMESPACE
}  // namespace lossservice::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lossservice::simd {

HWY_EXPORT(IndexF32);
HWY_EXPORT(IndexF64);
HWY_EXPORT(ProbF32);
HWY_EXPORT(ProbF64);
HWY_EXPORT(SoftmaxF32);
HWY_EXPORT(SoftmaxF64);

ClassSums CrossEntropyIndex(const ClassIndexArgs<float>& a) {
  return HWY_DYNAMIC_DISPATCH(IndexF32)(a);
}
ClassSums CrossEntropyIndex(const ClassIndexArgs<double>& a) {
  return HWY_DYNAMIC_DISPATCH(IndexF64)(a);
}
double CrossEntropyProb(const ClassProbArgs<float>& a) { return HWY_DYNAMIC_DISPATCH(ProbF32)(a); }
double CrossEntropyProb(const ClassProbArgs<double>& a) {
  return HWY_DYNAMIC_DISPATCH(ProbF64)(a);
}
void Softmax(bool log, int64_t n, int64_t c, int64_t s, const float* x, float* y) {
  HWY_DYNAMIC_DISPATCH(SoftmaxF32)(log, n, c, s, x, y);
}
void Softmax(bool log, int64_t n, int64_t c, int64_t s, const double* x, double* y) {
  HWY_DYNAMIC_DISPATCH(SoftmaxF64)(log, n, c, s, x, y);
}

// ---- the scalar reference -------------------------------------------------------------

namespace {

// log_softmax of one sample's classes is (x - max) - log_sum.
template <typename T>
struct LogSoftmaxRow {
  LogSoftmaxRow(const T* x, int64_t classes, int64_t stride) {
    for (int64_t c = 0; c < classes; ++c) max = std::max(max, x[c * stride]);
    double s = 0;
    for (int64_t c = 0; c < classes; ++c) s += std::exp(x[c * stride] - max);
    sum = s;
    log_sum = static_cast<T>(std::log(s));
  }
  T operator()(T x) const { return (x - max) - log_sum; }
  T max = -std::numeric_limits<T>::infinity();
  T log_sum = 0;
  double sum = 0;
};

// Sample i of a span starts at x + Offset(i): contiguous rows, or strided.
inline int64_t Offset(int64_t i, int64_t classes, int64_t stride) {
  return stride == 1 ? i * classes : i;
}

template <typename T>
ClassSums IndexReference(const ClassIndexArgs<T>& a) {
  const int64_t C = a.classes, S = a.stride;
  const T ls = static_cast<T>(a.label_smoothing);
  const T smooth_scale = ls / static_cast<T>(C);
  ClassSums sums;
  for (int64_t i = 0; i < a.count; ++i) {
    const T* row = a.x + Offset(i, C, S);
    T* grow = a.grad ? a.grad + Offset(i, C, S) : nullptr;
    const int64_t t = a.target[i];
    const LogSoftmaxRow<T> log_p(row, C, S);
    if (t == a.ignore_index) {
      if (a.loss) a.loss[i] = 0;
      if (grow) {
        for (int64_t c = 0; c < C; ++c) grow[c * S] = T(0) - std::exp(log_p(row[c * S])) * T(0);
      }
      continue;
    }
    const T wt = a.weight ? a.weight[t] : T(1);
    const T nll = -wt * log_p(row[t * S]);
    T smooth = 0;
    if (ls > 0) {
      double acc = 0;
      for (int64_t c = 0; c < C; ++c) {
        acc -= (a.weight ? static_cast<double>(a.weight[c]) : 1.0) *
               static_cast<double>(log_p(row[c * S]));
      }
      smooth = static_cast<T>(acc);
    }
    if (a.loss) {
      a.loss[i] = (T(1) - ls) * nll + smooth_scale * smooth;
    } else {
      sums.nll += nll;
      sums.smooth += smooth;
    }
    if (grow) {
      const T g = a.go ? a.go[i] : static_cast<T>(a.grad_scale);
      const T coef = (T(1) - ls) * wt * g;
      const T bsm = smooth_scale * g;
      const T wsum = static_cast<T>(a.weight_total);
      for (int64_t c = 0; c < C; ++c) {
        const T p = std::exp(log_p(row[c * S]));
        const T wc = a.weight ? a.weight[c] : T(1);
        grow[c * S] = coef * (p - (c == t ? T(1) : T(0))) + (ls > 0 ? bsm * (p * wsum - wc) : T(0));
      }
    }
  }
  return sums;
}

template <typename T>
double ProbReference(const ClassProbArgs<T>& a) {
  const int64_t C = a.classes, S = a.stride;
  const T ls = static_cast<T>(a.label_smoothing);
  const T uniform = ls / static_cast<T>(C);
  double total = 0;
  for (int64_t i = 0; i < a.count; ++i) {
    const int64_t base = Offset(i, C, S);
    const T* row = a.x + base;
    const T* trow = a.target + base;
    const LogSoftmaxRow<T> log_p(row, C, S);
    double li = 0, wt_sum = 0;
    const auto weighted_target = [&](int64_t c) {
      const T tc = ls > 0 ? trow[c * S] * (T(1) - ls) + uniform : trow[c * S];
      return a.weight ? a.weight[c] * tc : tc;
    };
    for (int64_t c = 0; c < C; ++c) {
      const T wtc = weighted_target(c);
      li -= static_cast<double>(wtc * log_p(row[c * S]));
      wt_sum += wtc;
    }
    if (a.loss) {
      a.loss[i] = static_cast<T>(li);
    } else {
      total += li;
    }
    if (a.grad) {
      const T g = a.go ? a.go[i] : static_cast<T>(a.grad_scale);
      const T wts = static_cast<T>(wt_sum);
      for (int64_t c = 0; c < C; ++c) {
        a.grad[base + c * S] = g * (std::exp(log_p(row[c * S])) * wts - weighted_target(c));
      }
    }
  }
  return total;
}

template <typename T>
void SoftmaxReferenceT(bool log, int64_t count, int64_t C, int64_t S, const T* x, T* y) {
  for (int64_t i = 0; i < count; ++i) {
    const int64_t base = Offset(i, C, S);
    const LogSoftmaxRow<T> log_p(x + base, C, S);
    const T inv = static_cast<T>(1.0 / log_p.sum);
    for (int64_t c = 0; c < C; ++c) {
      const T v = x[base + c * S];
      y[base + c * S] = log ? log_p(v) : std::exp(v - log_p.max) * inv;
    }
  }
}

}  // namespace

ClassSums CrossEntropyIndexReference(const ClassIndexArgs<float>& a) { return IndexReference(a); }
ClassSums CrossEntropyIndexReference(const ClassIndexArgs<double>& a) { return IndexReference(a); }
double CrossEntropyProbReference(const ClassProbArgs<float>& a) { return ProbReference(a); }
double CrossEntropyProbReference(const ClassProbArgs<double>& a) { return ProbReference(a); }
void SoftmaxReference(bool log, int64_t n, int64_t c, int64_t s, const float* x, float* y) {
  SoftmaxReferenceT(log, n, c, s, x, y);
}
void SoftmaxReference(bool log, int64_t n, int64_t c, int64_t s, const double* x, double* y) {
  SoftmaxReferenceT(log, n, c, s, x, y);
}

}  // namespace lossservice::simd
#endif  // HWY_ONCE
