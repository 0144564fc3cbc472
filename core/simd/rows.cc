// Row-wise margin and embedding kernels (see rows.h): per target in double
// lanes, and the scalar reference below.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "core/simd/rows.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/simd/rows.h"
#include "core/simd/simd-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace lossservice::simd {
namespace HWY_NAMESPACE {
namespace {

using DD = hn::ScalableTag<double>;
using VD = V<DD>;

// Calls f(k, lanes_in_use, load) for the vectors of a row of `length`
// values; load(p, fill) gives the vector of T at p + k as double (the tail's
// padded with `fill`), store(v, p) writes the lanes in use.
template <typename T>
struct RowCursor {
  using DT = hn::Rebind<T, DD>;
  DD dd;
  DT dt;
  size_t length;
  size_t k = 0;
  size_t lanes = 0;  // in use at k
  bool tail = false;

  HWY_INLINE VD Load(const T* p, T fill) const {
    if (!tail) return LoadAs(dd, dt, p + k);
    HWY_ALIGN T buf[kMaxLanes<T>];
    PadTail(p + k, lanes, buf, fill);
    return LoadAs(dd, dt, buf);
  }
  HWY_INLINE void Store(VD v, T* p) const {
    if (!tail) return StoreAs(dd, dt, v, p + k);
    HWY_ALIGN T buf[kMaxLanes<T>];
    StoreAs(dd, dt, v, buf);
    std::copy(buf, buf + lanes, p + k);
  }
  HWY_INLINE VD Masked(VD v) const { return tail ? hn::IfThenElseZero(hn::FirstN(dd, lanes), v) : v; }
};

template <typename T, class F>
HWY_INLINE void ForEachVector(size_t length, F&& f) {
  RowCursor<T> c;
  c.length = length;
  const size_t N = hn::Lanes(c.dd);
  for (c.k = 0; c.k < length; c.k += N) {
    c.lanes = std::min(N, length - c.k);
    c.tail = c.lanes < N;
    f(c);
  }
}

HWY_INLINE double Total(VD v) { return hn::GetLane(hn::SumOfLanes(DD(), v)); }

template <typename T>
void RowDotsT(const T* a, const T* b, int64_t length, int64_t count, double* ab, double* aa,
              double* bb) {
  const size_t L = static_cast<size_t>(length);
  for (int64_t i = 0; i < count; ++i) {
    const T* ar = a + i * length;
    const T* br = b + i * length;
    VD s_ab = hn::Zero(DD()), s_aa = s_ab, s_bb = s_ab;
    ForEachVector<T>(L, [&](const RowCursor<T>& c) HWY_ATTR {
      const VD x = c.Load(ar, T(0)), y = c.Load(br, T(0));  // zeros add nothing
      s_ab = hn::MulAdd(x, y, s_ab);
      s_aa = hn::MulAdd(x, x, s_aa);
      s_bb = hn::MulAdd(y, y, s_bb);
    });
    ab[i] = Total(s_ab);
    aa[i] = Total(s_aa);
    bb[i] = Total(s_bb);
  }
}

template <typename T>
void RowCombineT(const T* a, const T* b, int64_t length, int64_t count, const double* ca,
                 const double* cb, T* out) {
  const size_t L = static_cast<size_t>(length);
  for (int64_t i = 0; i < count; ++i) {
    const T* ar = a + i * length;
    const T* br = b + i * length;
    T* o = out + i * length;
    const VD va = hn::Set(DD(), ca[i]), vb = hn::Set(DD(), cb[i]);
    ForEachVector<T>(L, [&](const RowCursor<T>& c) HWY_ATTR {
      c.Store(hn::Sub(hn::Mul(c.Load(br, T(0)), vb), hn::Mul(c.Load(ar, T(0)), va)), o);
    });
  }
}

template <typename T>
void RowNormPowerT(int p, const T* a, const T* b, double eps, int64_t length, int64_t count,
                   double* out) {
  const size_t L = static_cast<size_t>(length);
  const VD ve = hn::Set(DD(), eps);
  for (int64_t i = 0; i < count; ++i) {
    const T* ar = a + i * length;
    const T* br = b + i * length;
    VD s = hn::Zero(DD());
    ForEachVector<T>(L, [&](const RowCursor<T>& c) HWY_ATTR {
      const VD d = c.Masked(hn::Add(hn::Sub(c.Load(ar, T(0)), c.Load(br, T(0))), ve));
      s = p == 2 ? hn::MulAdd(d, d, s) : hn::Add(s, hn::Abs(d));
    });
    out[i] = Total(s);
  }
}

template <int kP, typename T>
void TripletNormsP(const T* a, const T* pos, const T* neg, double eps, int64_t length,
                   int64_t count, double* npos, double* nneg, double* nswap) {
  const size_t L = static_cast<size_t>(length);
  const VD ve = hn::Set(DD(), eps);
  const auto term = [](VD s, VD d) HWY_ATTR {
    return kP == 2 ? hn::MulAdd(d, d, s) : hn::Add(s, hn::Abs(d));
  };
  for (int64_t i = 0; i < count; ++i) {
    const T* ar = a + i * length;
    const T* pr = pos + i * length;
    const T* nr = neg + i * length;
    VD s1 = hn::Zero(DD()), s2 = s1, s3 = s1;
    ForEachVector<T>(L, [&](const RowCursor<T>& c) HWY_ATTR {
      const VD x = c.Load(ar, T(0)), vp = c.Load(pr, T(0)), vn = c.Load(nr, T(0));
      s1 = term(s1, c.Masked(hn::Add(hn::Sub(x, vp), ve)));
      s2 = term(s2, c.Masked(hn::Add(hn::Sub(x, vn), ve)));
      if (nswap) s3 = term(s3, c.Masked(hn::Add(hn::Sub(vp, vn), ve)));
    });
    npos[i] = Total(s1);
    nneg[i] = Total(s2);
    if (nswap) nswap[i] = Total(s3);
  }
}

template <typename T>
void TripletNormsT(int p, const T* a, const T* pos, const T* neg, double eps, int64_t length,
                   int64_t count, double* npos, double* nneg, double* nswap) {
  if (p == 2) return TripletNormsP<2>(a, pos, neg, eps, length, count, npos, nneg, nswap);
  TripletNormsP<1>(a, pos, neg, eps, length, count, npos, nneg, nswap);
}

template <typename T>
void TripletGradT(int p, const T* a, const T* pos, const T* neg, double eps, int64_t length,
                  int64_t count, const double* c1, const double* c2, T* out) {
  const size_t L = static_cast<size_t>(length);
  const VD ve = hn::Set(DD(), eps);
  for (int64_t i = 0; i < count; ++i) {
    const T* ar = a + i * length;
    const T* pr = pos + i * length;
    const T* nr = neg + i * length;
    T* o = out + i * length;
    const VD v1 = hn::Set(DD(), c1[i]), v2 = hn::Set(DD(), c2[i]);
    ForEachVector<T>(L, [&](const RowCursor<T>& c) HWY_ATTR {
      const VD x = c.Load(ar, T(0));
      const VD d1 = hn::Add(hn::Sub(x, c.Load(pr, T(0))), ve);
      const VD d2 = hn::Add(hn::Sub(x, c.Load(nr, T(0))), ve);
      const VD g = p == 2 ? hn::Add(hn::Mul(d1, v1), hn::Mul(d2, v2))
                          : hn::Add(hn::Mul(Sign(DD(), d1), v1), hn::Mul(Sign(DD(), d2), v2));
      c.Store(g, o);
    });
  }
}

template <typename T>
void MultiMarginT(const MultiMarginArgs<T>& a) {
  const size_t C = static_cast<size_t>(a.classes);
  const DD dd;
  const hn::RebindToSigned<DD> di;
  for (int64_t i = 0; i < a.count; ++i) {
    const T* xr = a.x + i * a.classes;
    T* gr = a.grad ? a.grad + i * a.classes : nullptr;
    const int64_t y = a.target[i];
    const double wy = a.weight ? static_cast<double>(a.weight[y]) : 1.0;
    const VD base = hn::Set(dd, a.margin - static_cast<double>(xr[y]));
    const VD vw = hn::Set(dd, wy), vg = hn::Set(dd, a.g[i]), zero = hn::Zero(dd);
    const auto vy = hn::Set(di, y);
    VD sum = zero, grad_y = zero;
    ForEachVector<T>(C, [&](const RowCursor<T>& c) HWY_ATTR {
      // Padding of -inf makes z = -inf: never active.
      const VD z = hn::Add(base, c.Load(xr, -std::numeric_limits<T>::infinity()));
      const auto not_y =
          hn::RebindMask(dd, hn::Ne(hn::Iota(di, static_cast<int64_t>(c.k)), vy));
      const auto active = hn::And(not_y, hn::Gt(z, zero));
      sum = hn::Add(sum, hn::IfThenElseZero(active, hn::Mul(a.square ? hn::Mul(z, z) : z, vw)));
      if (gr) {
        const VD gz = hn::IfThenElseZero(active, a.square ? hn::Mul(hn::Add(z, z), vg) : vg);
        grad_y = hn::Add(grad_y, gz);
        c.Store(gz, gr);
      }
    });
    a.loss[i] = Total(sum);
    if (gr) gr[y] = static_cast<T>(-Total(grad_y));
  }
}

template <typename T>
void MultiLabelMarginRowT(const T* x, int64_t C, const int64_t* labels, int64_t num_labels,
                          const double* is_label, double g, double* hits, T* grad, double* loss) {
  const size_t L = static_cast<size_t>(C);
  const DD dd;
  const VD zero = hn::Zero(dd), one = hn::Set(dd, 1.0);
  std::fill(hits, hits + C, 0.0);
  VD sum = zero;
  for (int64_t j = 0; j < num_labels; ++j) {
    const int64_t label = labels[j];
    const VD base = hn::Set(dd, 1.0 - static_cast<double>(x[label]));
    VD active_count = zero;
    ForEachVector<T>(L, [&](const RowCursor<T>& c) HWY_ATTR {
      const VD z = hn::Add(base, c.Load(x, -std::numeric_limits<T>::infinity()));
      // is_label read through a padded copy in the tail (1: never active).
      VD lab;
      if (c.tail) {
        HWY_ALIGN double buf[kMaxLanes<double>];
        PadTail(is_label + c.k, c.lanes, buf, 1.0);
        lab = hn::Load(dd, buf);
      } else {
        lab = hn::LoadU(dd, is_label + c.k);
      }
      const auto active = hn::And(hn::Eq(lab, zero), hn::Gt(z, zero));
      sum = hn::Add(sum, hn::IfThenElseZero(active, z));
      if (grad) {
        const VD add = hn::IfThenElseZero(active, one);
        active_count = hn::Add(active_count, add);
        HWY_ALIGN double h[kMaxLanes<double>];
        PadTail(hits + c.k, c.lanes, h, 0.0);
        hn::Store(hn::Add(hn::Load(dd, h), add), dd, h);
        std::copy(h, h + c.lanes, hits + c.k);
      }
    });
    if (grad) hits[label] -= Total(active_count);
  }
  *loss = Total(sum);
  if (grad) {
    for (int64_t c = 0; c < C; ++c) grad[c] = static_cast<T>(hits[c] * g);
  }
}

void CtcLse3T(const double* a, const double* b, const double* c, const double* allow_c,
              const double* add, int64_t n, double* out) {
  const DD dd;
  const size_t N = hn::Lanes(dd);
  const VD neg_inf = hn::Set(dd, -std::numeric_limits<double>::infinity());
  const VD pos_inf = hn::Set(dd, std::numeric_limits<double>::infinity());
  const VD zero = hn::Zero(dd), one = hn::Set(dd, 1.0);
  const VD nan = hn::Set(dd, std::numeric_limits<double>::quiet_NaN());
  const auto step = [&](VD va, VD vb, VD vc, VD allow, VD vadd) HWY_ATTR {
    vc = hn::IfThenElse(hn::Eq(allow, zero), neg_inf, vc);
    // m = a; if (b > m) m = b; if (c > m) m = c;  (NaN never wins a comparison)
    VD m = va;
    m = hn::IfThenElse(hn::Gt(vb, m), vb, m);
    m = hn::IfThenElse(hn::Gt(vc, m), vc, m);
    const auto all_neg_inf =
        hn::And(hn::And(hn::Eq(va, neg_inf), hn::Eq(vb, neg_inf)), hn::Eq(vc, neg_inf));
    const auto m_pos_inf = hn::Eq(m, pos_inf);
    const VD mr = hn::IfThenElse(hn::Eq(m, neg_inf), zero, m);
    const auto er = [&](VD v) HWY_ATTR {
      return hn::IfThenElse(hn::Eq(v, mr), one,
                            hn::IfThenElse(hn::Eq(v, neg_inf), zero, ExpAll(dd, hn::Sub(v, mr))));
    };
    VD r = hn::Add(LogAll(dd, hn::Add(hn::Add(er(va), er(vb)), er(vc))), mr);
    r = hn::IfThenElse(m_pos_inf, nan, r);
    r = hn::IfThenElse(all_neg_inf, neg_inf, r);
    return hn::Add(r, vadd);
  };
  size_t i = 0;
  const size_t count = static_cast<size_t>(n);
  for (; i + N <= count; i += N) {
    hn::StoreU(step(hn::LoadU(dd, a + i), hn::LoadU(dd, b + i), hn::LoadU(dd, c + i),
                    hn::LoadU(dd, allow_c + i), hn::LoadU(dd, add + i)),
               dd, out + i);
  }
  if (i < count) {
    const size_t rest = count - i;
    const double ninf = -std::numeric_limits<double>::infinity();
    HWY_ALIGN double ba[kMaxLanes<double>], bb[kMaxLanes<double>], bc[kMaxLanes<double>],
        bl[kMaxLanes<double>], bd[kMaxLanes<double>], bo[kMaxLanes<double>];
    PadTail(a + i, rest, ba, ninf);
    PadTail(b + i, rest, bb, ninf);
    PadTail(c + i, rest, bc, ninf);
    PadTail(allow_c + i, rest, bl, 0.0);
    PadTail(add + i, rest, bd, 0.0);
    hn::Store(step(hn::Load(dd, ba), hn::Load(dd, bb), hn::Load(dd, bc), hn::Load(dd, bl),
                   hn::Load(dd, bd)),
              dd, bo);
    std::copy(bo, bo + rest, out + i);
  }
}

double SumExpRelativeT(const double* v, int64_t n, double m) {
  const VD vm = hn::Set(DD(), m);
  VD s = hn::Zero(DD());
  ForEachVector<double>(static_cast<size_t>(n), [&](const RowCursor<double>& c) HWY_ATTR {
    s = hn::Add(s, c.Masked(ExpAll(DD(), hn::Sub(c.Load(v, 0.0), vm))));
  });
  return Total(s);
}

template <typename T>
void CtcGradRowT(const T* lp, const double* acc, int64_t C, double nll, double scale, T* g) {
  const VD vn = hn::Set(DD(), nll), vs = hn::Set(DD(), scale);
  ForEachVector<T>(static_cast<size_t>(C), [&](const RowCursor<T>& c) HWY_ATTR {
    const VD l = c.Load(lp, T(0));
    VD a;
    if (c.tail) {
      HWY_ALIGN double buf[kMaxLanes<double>];
      PadTail(acc + c.k, c.lanes, buf, 0.0);
      a = hn::Load(DD(), buf);
    } else {
      a = hn::LoadU(DD(), acc + c.k);
    }
    const VD e1 = ExpAll(DD(), l);
    const VD e2 = ExpAll(DD(), hn::Sub(hn::Add(a, vn), l));
    c.Store(hn::Mul(hn::Sub(e1, e2), vs), g);
  });
}

}  // namespace

void CtcLse3(const double* a, const double* b, const double* c, const double* allow_c,
             const double* add, int64_t n, double* out) {
  CtcLse3T(a, b, c, allow_c, add, n, out);
}
double SumExpRelativeF64(const double* v, int64_t n, double m) { return SumExpRelativeT(v, n, m); }

void CtcGradRowF32(const float* lp, const double* acc, int64_t C, double nll, double scale,
                   float* g) {
  CtcGradRowT(lp, acc, C, nll, scale, g);
}
void CtcGradRowF64(const double* lp, const double* acc, int64_t C, double nll, double scale,
                   double* g) {
  CtcGradRowT(lp, acc, C, nll, scale, g);
}

void RowDotsF32(const float* a, const float* b, int64_t l, int64_t n, double* ab, double* aa,
                double* bb) {
  RowDotsT(a, b, l, n, ab, aa, bb);
}
void RowDotsF64(const double* a, const double* b, int64_t l, int64_t n, double* ab, double* aa,
                double* bb) {
  RowDotsT(a, b, l, n, ab, aa, bb);
}
void RowCombineF32(const float* a, const float* b, int64_t l, int64_t n, const double* ca,
                   const double* cb, float* out) {
  RowCombineT(a, b, l, n, ca, cb, out);
}
void RowCombineF64(const double* a, const double* b, int64_t l, int64_t n, const double* ca,
                   const double* cb, double* out) {
  RowCombineT(a, b, l, n, ca, cb, out);
}
void RowNormPowerF32(int p, const float* a, const float* b, double eps, int64_t l, int64_t n,
                     double* out) {
  RowNormPowerT(p, a, b, eps, l, n, out);
}
void RowNormPowerF64(int p, const double* a, const double* b, double eps, int64_t l, int64_t n,
                     double* out) {
  RowNormPowerT(p, a, b, eps, l, n, out);
}
void TripletNormsF32(int p, const float* a, const float* pos, const float* neg, double eps,
                     int64_t l, int64_t n, double* np, double* nn, double* ns) {
  TripletNormsT(p, a, pos, neg, eps, l, n, np, nn, ns);
}
void TripletNormsF64(int p, const double* a, const double* pos, const double* neg, double eps,
                     int64_t l, int64_t n, double* np, double* nn, double* ns) {
  TripletNormsT(p, a, pos, neg, eps, l, n, np, nn, ns);
}
void TripletGradF32(int p, const float* a, const float* pos, const float* neg, double eps,
                    int64_t l, int64_t n, const double* c1, const double* c2, float* out) {
  TripletGradT(p, a, pos, neg, eps, l, n, c1, c2, out);
}
void TripletGradF64(int p, const double* a, const double* pos, const double* neg, double eps,
                    int64_t l, int64_t n, const double* c1, const double* c2, double* out) {
  TripletGradT(p, a, pos, neg, eps, l, n, c1, c2, out);
}
void MultiMarginF32(const MultiMarginArgs<float>& a) { MultiMarginT(a); }
void MultiMarginF64(const MultiMarginArgs<double>& a) { MultiMarginT(a); }
void MultiLabelMarginRowF32(const float* x, int64_t C, const int64_t* labels, int64_t nl,
                            const double* is_label, double g, double* hits, float* grad,
                            double* loss) {
  MultiLabelMarginRowT(x, C, labels, nl, is_label, g, hits, grad, loss);
}
void MultiLabelMarginRowF64(const double* x, int64_t C, const int64_t* labels, int64_t nl,
                            const double* is_label, double g, double* hits, double* grad,
                            double* loss) {
  MultiLabelMarginRowT(x, C, labels, nl, is_label, g, hits, grad, loss);
}

}  // namespace HWY_NAMESPACE
}  // namespace lossservice::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lossservice::simd {

HWY_EXPORT(CtcLse3);
HWY_EXPORT(SumExpRelativeF64);
HWY_EXPORT(CtcGradRowF32);
HWY_EXPORT(CtcGradRowF64);
HWY_EXPORT(RowDotsF32);
HWY_EXPORT(RowDotsF64);
HWY_EXPORT(RowCombineF32);
HWY_EXPORT(RowCombineF64);
HWY_EXPORT(RowNormPowerF32);
HWY_EXPORT(RowNormPowerF64);
HWY_EXPORT(TripletNormsF32);
HWY_EXPORT(TripletNormsF64);
HWY_EXPORT(TripletGradF32);
HWY_EXPORT(TripletGradF64);
HWY_EXPORT(MultiMarginF32);
HWY_EXPORT(MultiMarginF64);
HWY_EXPORT(MultiLabelMarginRowF32);
HWY_EXPORT(MultiLabelMarginRowF64);

void CtcLogSumExp3(const double* a, const double* b, const double* c, const double* allow_c,
                   const double* add, int64_t n, double* out) {
  HWY_DYNAMIC_DISPATCH(CtcLse3)(a, b, c, allow_c, add, n, out);
}
double SumExpRelative(const double* v, int64_t n, double m) {
  return HWY_DYNAMIC_DISPATCH(SumExpRelativeF64)(v, n, m);
}

void CtcGradRow(const float* lp, const double* acc, int64_t C, double nll, double scale,
                float* g) {
  HWY_DYNAMIC_DISPATCH(CtcGradRowF32)(lp, acc, C, nll, scale, g);
}
void CtcGradRow(const double* lp, const double* acc, int64_t C, double nll, double scale,
                double* g) {
  HWY_DYNAMIC_DISPATCH(CtcGradRowF64)(lp, acc, C, nll, scale, g);
}

void RowDots(const float* a, const float* b, int64_t l, int64_t n, double* ab, double* aa,
             double* bb) {
  HWY_DYNAMIC_DISPATCH(RowDotsF32)(a, b, l, n, ab, aa, bb);
}
void RowDots(const double* a, const double* b, int64_t l, int64_t n, double* ab, double* aa,
             double* bb) {
  HWY_DYNAMIC_DISPATCH(RowDotsF64)(a, b, l, n, ab, aa, bb);
}
void RowCombine(const float* a, const float* b, int64_t l, int64_t n, const double* ca,
                const double* cb, float* out) {
  HWY_DYNAMIC_DISPATCH(RowCombineF32)(a, b, l, n, ca, cb, out);
}
void RowCombine(const double* a, const double* b, int64_t l, int64_t n, const double* ca,
                const double* cb, double* out) {
  HWY_DYNAMIC_DISPATCH(RowCombineF64)(a, b, l, n, ca, cb, out);
}
void RowNormPower(int p, const float* a, const float* b, double eps, int64_t l, int64_t n,
                  double* out) {
  HWY_DYNAMIC_DISPATCH(RowNormPowerF32)(p, a, b, eps, l, n, out);
}
void RowNormPower(int p, const double* a, const double* b, double eps, int64_t l, int64_t n,
                  double* out) {
  HWY_DYNAMIC_DISPATCH(RowNormPowerF64)(p, a, b, eps, l, n, out);
}
void TripletNorms(int p, const float* a, const float* pos, const float* neg, double eps,
                  int64_t l, int64_t n, double* np, double* nn, double* ns) {
  HWY_DYNAMIC_DISPATCH(TripletNormsF32)(p, a, pos, neg, eps, l, n, np, nn, ns);
}
void TripletNorms(int p, const double* a, const double* pos, const double* neg, double eps,
                  int64_t l, int64_t n, double* np, double* nn, double* ns) {
  HWY_DYNAMIC_DISPATCH(TripletNormsF64)(p, a, pos, neg, eps, l, n, np, nn, ns);
}
void TripletGrad(int p, const float* a, const float* pos, const float* neg, double eps, int64_t l,
                 int64_t n, const double* c1, const double* c2, float* out) {
  HWY_DYNAMIC_DISPATCH(TripletGradF32)(p, a, pos, neg, eps, l, n, c1, c2, out);
}
void TripletGrad(int p, const double* a, const double* pos, const double* neg, double eps,
                 int64_t l, int64_t n, const double* c1, const double* c2, double* out) {
  HWY_DYNAMIC_DISPATCH(TripletGradF64)(p, a, pos, neg, eps, l, n, c1, c2, out);
}
void MultiMargin(const MultiMarginArgs<float>& a) { HWY_DYNAMIC_DISPATCH(MultiMarginF32)(a); }
void MultiMargin(const MultiMarginArgs<double>& a) { HWY_DYNAMIC_DISPATCH(MultiMarginF64)(a); }
void MultiLabelMarginRow(const float* x, int64_t C, const int64_t* labels, int64_t nl,
                         const double* is_label, double g, double* hits, float* grad,
                         double* loss) {
  HWY_DYNAMIC_DISPATCH(MultiLabelMarginRowF32)(x, C, labels, nl, is_label, g, hits, grad, loss);
}
void MultiLabelMarginRow(const double* x, int64_t C, const int64_t* labels, int64_t nl,
                         const double* is_label, double g, double* hits, double* grad,
                         double* loss) {
  HWY_DYNAMIC_DISPATCH(MultiLabelMarginRowF64)(x, C, labels, nl, is_label, g, hits, grad, loss);
}

// ---- the scalar reference -----------------------------------------------------------

namespace {

template <typename T>
void RowDotsRef(const T* a, const T* b, int64_t l, int64_t n, double* ab, double* aa,
                double* bb) {
  for (int64_t i = 0; i < n; ++i) {
    double s_ab = 0, s_aa = 0, s_bb = 0;
    for (int64_t k = 0; k < l; ++k) {
      const double x = a[i * l + k], y = b[i * l + k];
      s_ab += x * y;
      s_aa += x * x;
      s_bb += y * y;
    }
    ab[i] = s_ab;
    aa[i] = s_aa;
    bb[i] = s_bb;
  }
}

template <typename T>
void RowCombineRef(const T* a, const T* b, int64_t l, int64_t n, const double* ca,
                   const double* cb, T* out) {
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < l; ++k) {
      out[i * l + k] = static_cast<T>(static_cast<double>(b[i * l + k]) * cb[i] -
                                      static_cast<double>(a[i * l + k]) * ca[i]);
    }
  }
}

template <typename T>
void RowNormPowerRef(int p, const T* a, const T* b, double eps, int64_t l, int64_t n,
                     double* out) {
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t k = 0; k < l; ++k) {
      const double d = static_cast<double>(a[i * l + k]) - static_cast<double>(b[i * l + k]) + eps;
      s += p == 2 ? d * d : std::abs(d);
    }
    out[i] = s;
  }
}

double SignOf(double v) { return static_cast<double>((0.0 < v) - (v < 0.0)); }

template <typename T>
void TripletGradRef(int p, const T* a, const T* pos, const T* neg, double eps, int64_t l,
                    int64_t n, const double* c1, const double* c2, T* out) {
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < l; ++k) {
      const double x = a[i * l + k];
      const double d1 = x - static_cast<double>(pos[i * l + k]) + eps;
      const double d2 = x - static_cast<double>(neg[i * l + k]) + eps;
      out[i * l + k] = static_cast<T>(p == 2 ? d1 * c1[i] + d2 * c2[i]
                                             : SignOf(d1) * c1[i] + SignOf(d2) * c2[i]);
    }
  }
}

template <typename T>
void MultiMarginRef(const MultiMarginArgs<T>& a) {
  const int64_t C = a.classes;
  for (int64_t i = 0; i < a.count; ++i) {
    const T* xr = a.x + i * C;
    const int64_t y = a.target[i];
    const double wy = a.weight ? static_cast<double>(a.weight[y]) : 1.0;
    double sum = 0, grad_y = 0;
    for (int64_t c = 0; c < C; ++c) {
      if (c == y) continue;
      const double z = a.margin - static_cast<double>(xr[y]) + static_cast<double>(xr[c]);
      double gz = 0;
      if (z > 0) {
        sum += (a.square ? z * z : z) * wy;
        gz = a.square ? 2 * z * a.g[i] : a.g[i];
      }
      if (a.grad) a.grad[i * C + c] = static_cast<T>(gz);
      grad_y -= gz;
    }
    a.loss[i] = sum;
    if (a.grad) a.grad[i * C + y] = static_cast<T>(grad_y);
  }
}

template <typename T>
void MultiLabelMarginRowRef(const T* x, int64_t C, const int64_t* labels, int64_t nl,
                            const double* is_label, double g, double* hits, T* grad,
                            double* loss) {
  std::fill(hits, hits + C, 0.0);
  double sum = 0;
  for (int64_t j = 0; j < nl; ++j) {
    const int64_t label = labels[j];
    for (int64_t c = 0; c < C; ++c) {
      if (is_label[c] != 0) continue;
      const double z = 1.0 - static_cast<double>(x[label]) + static_cast<double>(x[c]);
      if (z > 0) {
        sum += z;
        hits[label] -= 1;
        hits[c] += 1;
      }
    }
  }
  *loss = sum;
  if (grad) {
    for (int64_t c = 0; c < C; ++c) grad[c] = static_cast<T>(hits[c] * g);
  }
}

double ExpRelative(double v, double m) {
  if (v == m) return 1.0;
  if (v == -std::numeric_limits<double>::infinity()) return 0.0;
  return std::exp(v - m);
}

double Lse3(double a, double b, double c) {
  const double ninf = -std::numeric_limits<double>::infinity();
  double m = a;
  if (b > m) m = b;
  if (c > m) m = c;
  if (m == ninf) {
    if (a == ninf && b == ninf && c == ninf) return ninf;
    m = 0;
  } else if (m == -ninf) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  return std::log(ExpRelative(a, m) + ExpRelative(b, m) + ExpRelative(c, m)) + m;
}

template <typename T>
void CtcGradRowRef(const T* lp, const double* acc, int64_t C, double nll, double scale, T* g) {
  for (int64_t c = 0; c < C; ++c) {
    const double l = static_cast<double>(lp[c]);
    g[c] = static_cast<T>((std::exp(l) - std::exp(acc[c] + nll - l)) * scale);
  }
}

}  // namespace

void CtcLogSumExp3Reference(const double* a, const double* b, const double* c,
                            const double* allow_c, const double* add, int64_t n, double* out) {
  for (int64_t s = 0; s < n; ++s) {
    out[s] = Lse3(a[s], b[s], allow_c[s] != 0 ? c[s] : -std::numeric_limits<double>::infinity()) +
             add[s];
  }
}
double SumExpRelativeReference(const double* v, int64_t n, double m) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(v[i] - m);
  return s;
}

void CtcGradRowReference(const float* lp, const double* acc, int64_t C, double nll, double scale,
                         float* g) {
  CtcGradRowRef(lp, acc, C, nll, scale, g);
}
void CtcGradRowReference(const double* lp, const double* acc, int64_t C, double nll,
                         double scale, double* g) {
  CtcGradRowRef(lp, acc, C, nll, scale, g);
}

void RowDotsReference(const float* a, const float* b, int64_t l, int64_t n, double* ab,
                      double* aa, double* bb) {
  RowDotsRef(a, b, l, n, ab, aa, bb);
}
void RowDotsReference(const double* a, const double* b, int64_t l, int64_t n, double* ab,
                      double* aa, double* bb) {
  RowDotsRef(a, b, l, n, ab, aa, bb);
}
void RowCombineReference(const float* a, const float* b, int64_t l, int64_t n, const double* ca,
                         const double* cb, float* out) {
  RowCombineRef(a, b, l, n, ca, cb, out);
}
void RowCombineReference(const double* a, const double* b, int64_t l, int64_t n,
                         const double* ca, const double* cb, double* out) {
  RowCombineRef(a, b, l, n, ca, cb, out);
}
void RowNormPowerReference(int p, const float* a, const float* b, double eps, int64_t l,
                           int64_t n, double* out) {
  RowNormPowerRef(p, a, b, eps, l, n, out);
}
void RowNormPowerReference(int p, const double* a, const double* b, double eps, int64_t l,
                           int64_t n, double* out) {
  RowNormPowerRef(p, a, b, eps, l, n, out);
}
void TripletGradReference(int p, const float* a, const float* pos, const float* neg, double eps,
                          int64_t l, int64_t n, const double* c1, const double* c2, float* out) {
  TripletGradRef(p, a, pos, neg, eps, l, n, c1, c2, out);
}
void TripletGradReference(int p, const double* a, const double* pos, const double* neg,
                          double eps, int64_t l, int64_t n, const double* c1, const double* c2,
                          double* out) {
  TripletGradRef(p, a, pos, neg, eps, l, n, c1, c2, out);
}
void MultiMarginReference(const MultiMarginArgs<float>& a) { MultiMarginRef(a); }
void MultiMarginReference(const MultiMarginArgs<double>& a) { MultiMarginRef(a); }
void MultiLabelMarginRowReference(const float* x, int64_t C, const int64_t* labels, int64_t nl,
                                  const double* is_label, double g, double* hits, float* grad,
                                  double* loss) {
  MultiLabelMarginRowRef(x, C, labels, nl, is_label, g, hits, grad, loss);
}
void MultiLabelMarginRowReference(const double* x, int64_t C, const int64_t* labels, int64_t nl,
                                  const double* is_label, double g, double* hits, double* grad,
                                  double* loss) {
  MultiLabelMarginRowRef(x, C, labels, nl, is_label, g, hits, grad, loss);
}

}  // namespace lossservice::simd
#endif  // HWY_ONCE
