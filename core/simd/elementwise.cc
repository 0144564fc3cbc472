// Element-wise loss and activation kernels: one vector implementation per
// target (compiled once per target through foreach_target.h) and, below it,
// the scalar reference with the same formulas.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "core/simd/elementwise.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <type_traits>

#include "core/simd/elementwise.h"
#include "core/simd/simd-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace lossservice::simd {
namespace HWY_NAMESPACE {
namespace {

// The operands of one vector of elements, in the compute type.
template <class D>
struct In {
  V<D> x, y, z, pw;
};

// exp(v) overflows float64 past this v (log(DBL_MAX)).
constexpr double kExpOverflow64 = 709.782712893384;

// Operands an op reads besides x (the loop loads no others).
constexpr int kY = 1, kZ = 2, kPw = 4, kWeighted = 8;

// Each op: kDouble (float32 data in double lanes), kOperands, and
// operator()(d, in, params, loss, grad) computing the element loss and
// d loss / d x, before weights and the upstream gradient.

struct MseOp {
  static constexpr bool kDouble = false;
  static constexpr int kOperands = kY;
  template <class D>
  HWY_INLINE void operator()(D, const In<D>& in, const PointParams&, V<D>& loss,
                             V<D>& grad) const {
    const V<D> d = hn::Sub(in.x, in.y);
    loss = hn::Mul(d, d);
    grad = hn::Add(d, d);
  }
};

struct L1Op {
  static constexpr bool kDouble = false;
  static constexpr int kOperands = kY;
  template <class D>
  HWY_INLINE void operator()(D dc, const In<D>& in, const PointParams&, V<D>& loss,
                             V<D>& grad) const {
    const V<D> d = hn::Sub(in.x, in.y);
    loss = hn::Abs(d);
    grad = Sign(dc, d);
  }
};

struct DiffOp {
  static constexpr bool kDouble = false;
  static constexpr int kOperands = kY;
  template <class D>
  HWY_INLINE void operator()(D dc, const In<D>& in, const PointParams&, V<D>& loss,
                             V<D>& grad) const {
    loss = hn::Zero(dc);
    grad = hn::Sub(in.x, in.y);
  }
};

template <bool kWide>
struct HuberOp {
  static constexpr bool kDouble = kWide;
  static constexpr int kOperands = kY;
  template <class D>
  HWY_INLINE void operator()(D dc, const In<D>& in, const PointParams& p, V<D>& loss,
                             V<D>& grad) const {
    using C = hn::TFromD<D>;
    const V<D> delta = hn::Set(dc, static_cast<C>(p.a));
    const V<D> half = hn::Set(dc, C(0.5));
    const V<D> d = hn::Sub(in.x, in.y);
    const V<D> z = hn::Abs(d);
    loss = hn::IfThenElse(hn::Lt(z, delta), hn::Mul(hn::Mul(half, z), z),
                          hn::Mul(delta, hn::Sub(z, hn::Mul(half, delta))));
    grad = hn::IfThenElse(hn::Lt(d, hn::Neg(delta)), hn::Neg(delta),
                          hn::IfThenElse(hn::Gt(d, delta), delta, d));
  }
};

template <bool kWide>
struct SmoothL1Op {
  static constexpr bool kDouble = kWide;
  static constexpr int kOperands = kY;
  template <class D>
  HWY_INLINE void operator()(D dc, const In<D>& in, const PointParams& p, V<D>& loss,
                             V<D>& grad) const {
    // beta = 0 needs no case of its own: z < 0 never holds, z - 0 is z, and
    // the gradient's d / 0 is only selected for a NaN d.
    using C = hn::TFromD<D>;
    const V<D> beta = hn::Set(dc, static_cast<C>(p.a));
    const V<D> half = hn::Set(dc, C(0.5));
    const V<D> one = hn::Set(dc, C(1));
    const V<D> d = hn::Sub(in.x, in.y);
    const V<D> z = hn::Abs(d);
    loss = hn::IfThenElse(hn::Lt(z, beta), hn::Div(hn::Mul(hn::Mul(half, z), z), beta),
                          hn::Sub(z, hn::Mul(half, beta)));
    grad = hn::IfThenElse(hn::Le(d, hn::Neg(beta)), hn::Neg(one),
                          hn::IfThenElse(hn::Ge(d, beta), one, hn::Div(d, beta)));
  }
};

struct BceOp {
  static constexpr bool kDouble = false;
  static constexpr int kOperands = kY | kWeighted;
  template <class D>
  HWY_INLINE void operator()(D dc, const In<D>& in, const PointParams&, V<D>& loss,
                             V<D>& grad) const {
    using T = hn::TFromD<D>;
    const V<D> one = hn::Set(dc, T(1));
    const V<D> log_min = hn::Set(dc, T(-100));
    // PyTorch's EPSILON is a float, also for float64 inputs.
    const V<D> eps = hn::Set(dc, static_cast<T>(1e-12f));
    // x is in [0, 1] (checked): log(0) and log1p(-1) are -inf, clamped.
    const V<D> zero = hn::Zero(dc);
    const V<D> log_x =
        hn::IfThenElse(hn::Eq(in.x, zero), log_min, hn::Max(LogPositive(dc, in.x), log_min));
    const V<D> log_1mx = hn::IfThenElse(hn::Eq(in.x, one), log_min,
                                        hn::Max(Log1pAboveMinus1(dc, hn::Neg(in.x)), log_min));
    loss = hn::Sub(hn::Mul(hn::Sub(in.y, one), log_1mx), hn::Mul(in.y, log_x));
    grad = hn::Div(hn::Sub(in.x, in.y), hn::Max(hn::Mul(hn::Sub(one, in.x), in.x), eps));
  }
};

template <bool kHasPw>
struct BceWithLogitsOp {
  static constexpr bool kDouble = false;
  static constexpr int kOperands = kY | (kHasPw ? kPw : 0) | kWeighted;
  template <class D>
  HWY_INLINE void operator()(D dc, const In<D>& in, const PointParams&, V<D>& loss,
                             V<D>& grad) const {
    using T = hn::TFromD<D>;
    const V<D> one = hn::Set(dc, T(1));
    // With PyTorch's m = max(-x, 0), exp(-m) and exp(-x - m) are 1 and
    // e = exp(-|x|) (in some order), so its log(exp(-m) + exp(-x - m)) is
    // log1p(e) = log1p(exp(-|x|)); e itself only enters the gradient.
    const V<D> abs_x = hn::Abs(in.x);
    const V<D> e = ExpNonPositive(dc, hn::Neg(abs_x));
    // PyTorch's sum is NaN for x = -inf (exp(inf - inf)); keep that NaN.
    const V<D> log_sum = hn::IfThenElse(
        hn::Eq(in.x, hn::Set(dc, -std::numeric_limits<T>::infinity())),
        hn::Set(dc, std::numeric_limits<T>::quiet_NaN()), Log1pExpNeg(dc, abs_x));
    const V<D> one_minus_y = hn::Sub(one, in.y);
    // sigmoid(x) and sigmoid(-x) = 1 - sigmoid(x), each without cancellation:
    // 1 / (1 + e) and e / (1 + e), in the order the sign of x gives.
    const V<D> r = hn::Div(one, hn::Add(one, e));
    const auto non_negative = hn::Ge(in.x, hn::Zero(dc));
    const V<D> sig = hn::IfThenElse(non_negative, r, hn::Mul(e, r));
    if constexpr (kHasPw) {
      // PyTorch's (1 - y) x + l (log_sum + m) and (pw y + 1 - y) sigmoid(x)
      // - pw y, with l = 1 + (pw - 1) y, rearranged so that no term is
      // larger than the result needs: m = -x below 0 makes the loss
      // -x pw y + l log_sum, and the gradient is (1 - y) sigmoid(x) -
      // pw y sigmoid(-x).
      const V<D> t = hn::Mul(in.pw, in.y);
      const V<D> l = hn::Add(hn::Mul(hn::Sub(in.pw, one), in.y), one);
      const V<D> lead = hn::IfThenElse(non_negative, hn::Mul(one_minus_y, in.x),
                                       hn::Mul(hn::Neg(in.x), t));
      loss = hn::Add(lead, hn::Mul(l, log_sum));
      const V<D> sig_neg = hn::IfThenElse(non_negative, hn::Mul(e, r), r);
      grad = hn::Sub(hn::Mul(one_minus_y, sig), hn::Mul(t, sig_neg));
    } else {
      // PyTorch's ((1 - y) x + m) + log_sum, with its m = -x below 0 folded
      // in: (1 - y) x - x is -y x, which float32 would get by cancelling
      // terms of size |x| (and 1 - y's rounding times |x|).
      const V<D> lead =
          hn::IfThenElse(non_negative, hn::Mul(one_minus_y, in.x), hn::Mul(hn::Neg(in.y), in.x));
      loss = hn::Add(lead, log_sum);
      grad = hn::Sub(sig, in.y);
    }
  }
};

struct KlDivOp {
  static constexpr bool kDouble = true;
  static constexpr int kOperands = kY;
  template <class D>
  HWY_INLINE void operator()(D dc, const In<D>& in, const PointParams&, V<D>& loss,
                             V<D>& grad) const {
    const V<D> zero = hn::Zero(dc);
    const V<D> ylogy = hn::Mul(in.y, LogAll(dc, in.y));
    const V<D> xlogy =
        hn::IfThenElse(hn::IsNaN(in.y), in.y, hn::IfThenElse(hn::Eq(in.y, zero), zero, ylogy));
    loss = hn::Sub(xlogy, hn::Mul(in.y, in.x));
    grad = hn::Neg(in.y);
  }
};

struct KlDivLogTargetOp {
  static constexpr bool kDouble = true;
  static constexpr int kOperands = kY;
  template <class D>
  HWY_INLINE void operator()(D dc, const In<D>& in, const PointParams&, V<D>& loss,
                             V<D>& grad) const {
    const V<D> e = ExpAll(dc, in.y);
    loss = hn::Mul(e, hn::Sub(in.y, in.x));
    grad = hn::Neg(e);
  }
};

// Stirling's term of poisson_nll's full loss, where y > 1 (or NaN).
template <class D>
HWY_INLINE V<D> AddStirling(D dc, V<D> loss, V<D> y) {
  const V<D> stirling =
      hn::Add(hn::Sub(hn::Mul(y, LogAll(dc, y)), y),
              hn::Mul(hn::Set(dc, 0.5), LogAll(dc, hn::Mul(hn::Set(dc, 2 * std::numbers::pi), y))));
  return hn::IfThenElse(hn::Le(y, hn::Set(dc, 1.0)), loss, hn::Add(loss, stirling));
}

// e^x - y x, grad e^x - y. Without Stirling's term in the data's own
// lanes: the exp (1 ULP) and one rounding of the fused e - y x, where
// PyTorch's float32 rounds y x and the difference too. With it (full), in
// double lanes for its logarithms.
template <bool kFull>
struct PoissonLogOp {
  static constexpr bool kDouble = kFull;
  static constexpr int kOperands = kY;
  template <class D>
  HWY_INLINE void operator()(D dc, const In<D>& in, const PointParams&, V<D>& loss,
                             V<D>& grad) const {
    const V<D> e = ExpAll(dc, in.x);
    if constexpr (kFull) {
      loss = AddStirling(dc, hn::Sub(e, hn::Mul(in.y, in.x)), in.y);
    } else {
      loss = hn::NegMulAdd(in.y, in.x, e);
    }
    grad = hn::Sub(e, in.y);
  }
};

struct PoissonOp {
  static constexpr bool kDouble = true;
  static constexpr int kOperands = kY;
  template <class D>
  HWY_INLINE void operator()(D dc, const In<D>& in, const PointParams& p, V<D>& loss,
                             V<D>& grad) const {
    const V<D> denom = hn::Add(in.x, hn::Set(dc, p.a));
    loss = hn::Sub(in.x, hn::Mul(in.y, LogAll(dc, denom)));
    if (p.full) loss = AddStirling(dc, loss, in.y);
    grad = hn::Sub(hn::Set(dc, 1.0), hn::Div(in.y, denom));
  }
};

struct GaussianOp {
  static constexpr bool kDouble = true;
  static constexpr int kOperands = kY | kZ;
  template <class D>
  HWY_INLINE void operator()(D dc, const In<D>& in, const PointParams& p, V<D>& loss,
                             V<D>& grad) const {
    const V<D> eps = hn::Set(dc, p.a);
    const V<D> v = hn::IfThenElse(hn::Lt(in.z, eps), eps, in.z);  // NaN stays NaN
    const V<D> d = hn::Sub(in.x, in.y);
    loss = hn::Mul(hn::Set(dc, 0.5), hn::Add(LogAll(dc, v), hn::Div(hn::Mul(d, d), v)));
    if (p.full) loss = hn::Add(loss, hn::Set(dc, 0.5 * std::log(2 * std::numbers::pi)));
    grad = hn::Div(d, v);
  }
};

// log(1 + e^v) for v = -y x as max(v, 0) + log1p(e^-|v|), which is finite
// where PyTorch's float32 log1p(exp(v)) overflows; past v = 709.78, where
// PyTorch's float64 exp overflows, the loss is inf and the gradient
// -y inf / (1 + inf) = NaN, as there. Gradient -y sigmoid(v).
struct SoftMarginOp {
  static constexpr bool kDouble = false;
  static constexpr int kOperands = kY;
  template <class D>
  HWY_INLINE void operator()(D dc, const In<D>& in, const PointParams&, V<D>& loss,
                             V<D>& grad) const {
    using T = hn::TFromD<D>;
    const V<D> one = hn::Set(dc, T(1));
    const V<D> neg_y = hn::Neg(in.y);
    const V<D> v = hn::Mul(neg_y, in.x);
    const V<D> t = hn::Abs(v);
    const V<D> e = ExpNonPositive(dc, hn::Neg(t));
    const V<D> r = hn::Div(one, hn::Add(one, e));
    const auto non_negative = hn::Ge(v, hn::Zero(dc));
    const auto overflow = hn::Gt(v, hn::Set(dc, static_cast<T>(kExpOverflow64)));
    // A NaN v makes t, hence e, r and log1p(e^-t), NaN: both results stay NaN.
    const V<D> softplus = hn::Add(hn::Max(v, hn::Zero(dc)), Log1pExpNeg(dc, t));
    loss = hn::IfThenElse(overflow, hn::Set(dc, std::numeric_limits<T>::infinity()), softplus);
    const V<D> sig = hn::IfThenElse(non_negative, r, hn::Mul(e, r));
    grad = hn::IfThenElse(overflow, hn::Set(dc, std::numeric_limits<T>::quiet_NaN()),
                          hn::Mul(neg_y, sig));
  }
};

// PyTorch's logsigmoid(x) = min(x, 0) - log1p(e^-|x|) and logsigmoid(-x),
// sharing the exp; the formula as written (x = +-inf with the matching label
// gives 0 * -inf = NaN, as in PyTorch). Gradient (1 - y) sigmoid(x) -
// y sigmoid(-x), both sigmoids without cancellation.
struct MultiLabelSoftMarginOp {
  static constexpr bool kDouble = false;
  static constexpr int kOperands = kY | kWeighted;
  template <class D>
  HWY_INLINE void operator()(D dc, const In<D>& in, const PointParams&, V<D>& loss,
                             V<D>& grad) const {
    using T = hn::TFromD<D>;
    const V<D> one = hn::Set(dc, T(1));
    const V<D> zero = hn::Zero(dc);
    const V<D> t = hn::Abs(in.x);
    const V<D> e = ExpNonPositive(dc, hn::Neg(t));
    const V<D> lp = Log1pExpNeg(dc, t);
    const V<D> ls_pos = hn::Sub(hn::Min(in.x, zero), lp);
    const V<D> ls_neg = hn::Sub(hn::Min(hn::Neg(in.x), zero), lp);
    const V<D> one_minus_y = hn::Sub(one, in.y);
    loss = hn::Neg(hn::Add(hn::Mul(in.y, ls_pos), hn::Mul(one_minus_y, ls_neg)));
    const V<D> r = hn::Div(one, hn::Add(one, e));
    const auto non_negative = hn::Ge(in.x, zero);
    const V<D> sig = hn::IfThenElse(non_negative, r, hn::Mul(e, r));
    const V<D> sig_neg = hn::IfThenElse(non_negative, hn::Mul(e, r), r);
    grad = hn::Sub(hn::Mul(one_minus_y, sig), hn::Mul(in.y, sig_neg));
    // min() may drop a NaN x; the formula keeps it.
    loss = hn::IfThenElse(hn::IsNaN(in.x), in.x, loss);
  }
};

struct HingeEmbeddingOp {
  static constexpr bool kDouble = true;
  static constexpr int kOperands = kY;
  template <class D>
  HWY_INLINE void operator()(D dc, const In<D>& in, const PointParams& p, V<D>& loss,
                             V<D>& grad) const {
    const V<D> one = hn::Set(dc, 1.0);
    const V<D> c = hn::Sub(hn::Set(dc, p.a), in.x);
    // y != 1 and y != -1 as in C++ (true for NaN; hn::Ne is ordered on some
    // targets).
    const auto not_pos = hn::Not(hn::Eq(in.y, one));          // adds max(0, margin - x)
    const auto not_neg = hn::Not(hn::Eq(in.y, hn::Neg(one)));  // adds x
    loss = hn::Add(hn::IfThenElseZero(not_pos, ClampMin0(dc, c)), hn::IfThenElseZero(not_neg, in.x));
    const V<D> g_clamp = hn::IfThenElseZero(hn::Ge(c, hn::Zero(dc)), hn::Neg(one));
    grad = hn::Add(hn::IfThenElseZero(not_pos, g_clamp), hn::IfThenElseZero(not_neg, one));
  }
};

struct MarginRankingOp {
  static constexpr bool kDouble = true;
  static constexpr int kOperands = kY | kZ;
  template <class D>
  HWY_INLINE void operator()(D dc, const In<D>& in, const PointParams& p, V<D>& loss,
                             V<D>& grad) const {
    const V<D> neg_y = hn::Neg(in.y);
    const V<D> v = hn::Add(hn::Mul(neg_y, hn::Sub(in.x, in.z)), hn::Set(dc, p.a));
    loss = ClampMin0(dc, v);
    grad = hn::IfThenElseZero(hn::Ge(v, hn::Zero(dc)), neg_y);
  }
};

// One vector of elements at offset i of `a`: loads, the op, weights, the
// upstream gradient, stores; the loss goes to `sum` (masked to the lanes in
// use when kTail) unless stored per element.
template <int kWhich, bool kGrad, bool kW, bool kTail, class Op, class DC, class DT>
HWY_INLINE void Step(const Op& op, DC dc, DT dt, const PointArgs<hn::TFromD<DT>>& a,
                     const PointParams& p, size_t i, V<DC> scale, Summer<DC>& sum,
                     size_t lanes_in_use) {
  In<DC> in;
  in.x = LoadAs(dc, dt, a.x + i);
  in.y = (Op::kOperands & kY) ? LoadAs(dc, dt, a.y + i) : hn::Zero(dc);
  in.z = (Op::kOperands & kZ) ? LoadAs(dc, dt, a.z + i) : hn::Zero(dc);
  in.pw = (Op::kOperands & kPw) ? LoadAs(dc, dt, a.pw + i) : hn::Zero(dc);
  V<DC> loss, grad;
  op(dc, in, p, loss, grad);
  if constexpr (kW) {
    const V<DC> w = LoadAs(dc, dt, a.w + i);
    loss = hn::Mul(loss, w);
    grad = hn::Mul(grad, w);
  }
  if constexpr (kGrad) {
    const V<DC> g = a.go ? LoadAs(dc, dt, a.go + i) : scale;
    StoreAs(dc, dt, hn::Mul(grad, g), a.grad + i);
  }
  if (a.loss != nullptr) {  // reduction none (a predictable branch)
    StoreAs(dc, dt, loss, a.loss + i);
  } else if constexpr (kTail) {
    sum.template Add<kWhich>(hn::IfThenElseZero(hn::FirstN(dc, lanes_in_use), loss));
  } else {
    sum.template Add<kWhich>(loss);
  }
}

template <bool kGrad, bool kW, class Op, typename T>
HWY_NOINLINE double Loop(const Op& op, const PointParams& p, const PointArgs<T>& args) {
  // A local copy: the compiler cannot see that the stores through a.loss and
  // a.grad leave the caller's struct alone, and would reload every pointer
  // after each store.
  const PointArgs<T> a = args;
  using C = std::conditional_t<Op::kDouble, double, T>;
  using DC = hn::ScalableTag<C>;
  const DC dc;
  const hn::Rebind<T, DC> dt;
  const size_t N = hn::Lanes(dc);
  const size_t n = static_cast<size_t>(a.n);
  Summer<DC> sum(dc);
  const V<DC> scale = hn::Set(dc, static_cast<C>(a.grad_scale));
  size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    Step<0, kGrad, kW, false>(op, dc, dt, a, p, i, scale, sum, N);
    Step<1, kGrad, kW, false>(op, dc, dt, a, p, i + N, scale, sum, N);
  }
  if (i + N <= n) {
    Step<0, kGrad, kW, false>(op, dc, dt, a, p, i, scale, sum, N);
    i += N;
  }
  if (i < n) {
    // The ragged tail: padded stack copies of the operands, and of the
    // outputs, of which the lanes in use are copied back.
    const size_t rest = n - i;
    HWY_ALIGN T x[kMaxLanes<T>], y[kMaxLanes<T>], z[kMaxLanes<T>], w[kMaxLanes<T>],
        pw[kMaxLanes<T>], go[kMaxLanes<T>], loss[kMaxLanes<T>], grad[kMaxLanes<T>];
    const T fill = T(0.5);  // inside every op's domain; masked out of the sum
    PointArgs<T> t = a;
    t.x = PadTail(a.x + i, rest, x, fill);
    t.y = PadTail(a.y ? a.y + i : nullptr, rest, y, fill);
    t.z = PadTail(a.z ? a.z + i : nullptr, rest, z, fill);
    t.w = PadTail(a.w ? a.w + i : nullptr, rest, w, fill);
    t.pw = PadTail(a.pw ? a.pw + i : nullptr, rest, pw, fill);
    t.go = PadTail(a.go ? a.go + i : nullptr, rest, go, T(0));
    t.loss = a.loss != nullptr ? loss : nullptr;
    t.grad = grad;
    Step<0, kGrad, kW, true>(op, dc, dt, t, p, 0, scale, sum, rest);
    if (a.loss != nullptr) std::copy(loss, loss + rest, a.loss + i);
    if constexpr (kGrad) std::copy(grad, grad + rest, a.grad + i);
  }
  return a.loss != nullptr ? 0.0 : sum.Total();
}

template <bool kW, class Op, typename T>
double RunW(const Op& op, const PointParams& p, const PointArgs<T>& a) {
  return a.grad != nullptr ? Loop<true, kW>(op, p, a) : Loop<false, kW>(op, p, a);
}

template <class Op, typename T>
double Run(const Op& op, const PointParams& p, const PointArgs<T>& a) {
  if constexpr ((Op::kOperands & kWeighted) != 0) {
    if (a.w != nullptr) return RunW<true>(op, p, a);
  }
  return RunW<false>(op, p, a);
}

template <typename T>
double PointT(PointOp op, const PointParams& p, const PointArgs<T>& a) {
  switch (op) {
    case PointOp::kMse: return Run(MseOp{}, p, a);
    case PointOp::kL1: return Run(L1Op{}, p, a);
    case PointOp::kDiff: return Run(DiffOp{}, p, a);
    case PointOp::kHuber: return Run(HuberOp<false>{}, p, a);
    case PointOp::kHuberWide: return Run(HuberOp<true>{}, p, a);
    case PointOp::kSmoothL1: return Run(SmoothL1Op<false>{}, p, a);
    case PointOp::kSmoothL1Wide: return Run(SmoothL1Op<true>{}, p, a);
    case PointOp::kBce: return Run(BceOp{}, p, a);
    case PointOp::kBceWithLogits:
      return a.pw != nullptr ? Run(BceWithLogitsOp<true>{}, p, a) : Run(BceWithLogitsOp<false>{}, p, a);
    case PointOp::kKlDiv: return Run(KlDivOp{}, p, a);
    case PointOp::kKlDivLogTarget: return Run(KlDivLogTargetOp{}, p, a);
    case PointOp::kPoissonLog:
      return p.full ? Run(PoissonLogOp<true>{}, p, a) : Run(PoissonLogOp<false>{}, p, a);
    case PointOp::kPoisson: return Run(PoissonOp{}, p, a);
    case PointOp::kGaussian: return Run(GaussianOp{}, p, a);
    case PointOp::kSoftMargin: return Run(SoftMarginOp{}, p, a);
    case PointOp::kMultiLabelSoftMargin: return Run(MultiLabelSoftMarginOp{}, p, a);
    case PointOp::kHingeEmbedding: return Run(HingeEmbeddingOp{}, p, a);
    case PointOp::kMarginRanking: return Run(MarginRankingOp{}, p, a);
  }
  return 0;
}

// ---- activations ----------------------------------------------------------------

template <class D>
HWY_INLINE V<D> UnaryVec(D d, UnaryOp op, V<D> x, V<D> lo, V<D> hi) {
  using T = hn::TFromD<D>;
  const V<D> one = hn::Set(d, T(1));
  switch (op) {
    case UnaryOp::kSigmoid:
      return Sigmoid(d, x);
    case UnaryOp::kLogit:
      return LogAll(d, hn::Div(x, hn::Sub(one, x)));
    case UnaryOp::kLogitClamp: {
      const V<D> q = hn::IfThenElse(hn::Lt(x, lo), lo, hn::IfThenElse(hn::Gt(x, hi), hi, x));
      return LogAll(d, hn::Div(q, hn::Sub(one, q)));
    }
  }
  return x;
}

// y[i] = f(x[i]) for i < n, one vector at a time; the tail's vector is
// padded with `fill`.
template <class D, class F, typename T = hn::TFromD<D>>
HWY_INLINE void MapSpan(D d, const T* HWY_RESTRICT x, T* HWY_RESTRICT y, size_t n, T fill,
                        const F& f) {
  const size_t N = hn::Lanes(d);
  size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(f(hn::LoadU(d, x + i)), d, y + i);
  if (i < n) {
    HWY_ALIGN T in[kMaxLanes<T>], out[kMaxLanes<T>];
    PadTail(x + i, n - i, in, fill);
    hn::Store(f(hn::Load(d, in)), d, out);
    std::copy(out, out + (n - i), y + i);
  }
}

template <typename T>
HWY_NOINLINE void UnaryT(UnaryOp op, double a, const T* HWY_RESTRICT x, T* HWY_RESTRICT y,
                         int64_t count) {
  using D = hn::ScalableTag<T>;
  const D d;
  const V<D> lo = hn::Set(d, static_cast<T>(a));
  const V<D> hi = hn::Sub(hn::Set(d, T(1)), lo);
  MapSpan(d, x, y, static_cast<size_t>(count), T(0.5),
          [&](V<D> v) HWY_ATTR { return UnaryVec(d, op, v, lo, hi); });
}

template <bool kNanInside, typename T>
HWY_NOINLINE int64_t FindOutsideT(const T* HWY_RESTRICT x, int64_t count, double lo_d,
                                  double hi_d) {
  using D = hn::ScalableTag<T>;
  const D d;
  const size_t N = hn::Lanes(d);
  const size_t n = static_cast<size_t>(count);
  const T lo_s = static_cast<T>(lo_d), hi_s = static_cast<T>(hi_d);
  const auto outside = [&](T v) {
    return kNanInside ? (v < lo_s || v > hi_s) : !(v >= lo_s && v <= hi_s);
  };
  // Blocks of eight vectors are tested without a comparison per vector
  // (on AVX-512 each is a mask-register operation, and they made bce's
  // check a third of its time): the block's min and max, where Min(v, acc)
  // and Max(v, acc) ignore a NaN v (x86 returns the second operand, the
  // scalar target the other one), and for kNanInside false a sum of v - v,
  // NaN once a NaN or an infinity passes. A block that fails is scanned
  // element by element; an infinity inside [lo, hi] fails its block's
  // sum, and the scan then finds nothing and goes on.
  constexpr size_t kBlock = 8;
  size_t i = 0;
  for (; i + kBlock * N <= n; i += kBlock * N) {
    V<D> mn = hn::Set(d, lo_s), mx = hn::Set(d, hi_s), nan = hn::Zero(d);
    for (size_t k = 0; k < kBlock; ++k) {
      const V<D> v = hn::LoadU(d, x + i + k * N);
      mn = hn::Min(v, mn);
      mx = hn::Max(v, mx);
      if constexpr (!kNanInside) nan = hn::Add(nan, hn::Sub(v, v));
    }
    auto bad = hn::Or(hn::Lt(mn, hn::Set(d, lo_s)), hn::Gt(mx, hn::Set(d, hi_s)));
    if constexpr (!kNanInside) bad = hn::Or(bad, hn::Not(hn::Eq(nan, hn::Zero(d))));
    if (HWY_LIKELY(hn::AllFalse(d, bad))) continue;
    for (size_t j = i; j < i + kBlock * N; ++j) {
      if (outside(x[j])) return static_cast<int64_t>(j);
    }
  }
  for (; i < n; ++i) {
    if (outside(x[i])) return static_cast<int64_t>(i);
  }
  return count;
}

}  // namespace

void ExpNonPositiveF32(const float* HWY_RESTRICT x, float* HWY_RESTRICT y, int64_t count) {
  using D = hn::ScalableTag<float>;
  const D d;
  MapSpan(d, x, y, static_cast<size_t>(count), 0.0f,
          [&](V<D> v) HWY_ATTR { return ExpNonPositive(d, v); });
}

int64_t FindOutsideF32(const float* x, int64_t n, double lo, double hi, bool nan_inside) {
  return nan_inside ? FindOutsideT<true>(x, n, lo, hi) : FindOutsideT<false>(x, n, lo, hi);
}
int64_t FindOutsideF64(const double* x, int64_t n, double lo, double hi, bool nan_inside) {
  return nan_inside ? FindOutsideT<true>(x, n, lo, hi) : FindOutsideT<false>(x, n, lo, hi);
}

int64_t TargetF() { return HWY_TARGET; }

double PointF32(PointOp op, const PointParams& p, const PointArgs<float>& a) {
  return PointT(op, p, a);
}
double PointF64(PointOp op, const PointParams& p, const PointArgs<double>& a) {
  return PointT(op, p, a);
}
void UnaryF32(UnaryOp op, double a, const float* x, float* y, int64_t n) { UnaryT(op, a, x, y, n); }
void UnaryF64(UnaryOp op, double a, const double* x, double* y, int64_t n) {
  UnaryT(op, a, x, y, n);
}

}  // namespace HWY_NAMESPACE
}  // namespace lossservice::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lossservice::simd {

HWY_EXPORT(PointF32);
HWY_EXPORT(PointF64);
HWY_EXPORT(UnaryF32);
HWY_EXPORT(UnaryF64);
HWY_EXPORT(FindOutsideF32);
HWY_EXPORT(TargetF);

int64_t DispatchedTarget() { return HWY_DYNAMIC_DISPATCH(TargetF)(); }
HWY_EXPORT(FindOutsideF64);
HWY_EXPORT(ExpNonPositiveF32);

void ExpNonPositiveSpan(const float* x, float* y, int64_t n) {
  HWY_DYNAMIC_DISPATCH(ExpNonPositiveF32)(x, y, n);
}

int64_t FindOutside(const float* x, int64_t n, double lo, double hi, bool nan_inside) {
  return HWY_DYNAMIC_DISPATCH(FindOutsideF32)(x, n, lo, hi, nan_inside);
}
int64_t FindOutside(const double* x, int64_t n, double lo, double hi, bool nan_inside) {
  return HWY_DYNAMIC_DISPATCH(FindOutsideF64)(x, n, lo, hi, nan_inside);
}

double Point(PointOp op, const PointParams& p, const PointArgs<float>& a) {
  return HWY_DYNAMIC_DISPATCH(PointF32)(op, p, a);
}
double Point(PointOp op, const PointParams& p, const PointArgs<double>& a) {
  return HWY_DYNAMIC_DISPATCH(PointF64)(op, p, a);
}
void Unary(UnaryOp op, double a, const float* x, float* y, int64_t n) {
  HWY_DYNAMIC_DISPATCH(UnaryF32)(op, a, x, y, n);
}
void Unary(UnaryOp op, double a, const double* x, double* y, int64_t n) {
  HWY_DYNAMIC_DISPATCH(UnaryF64)(op, a, x, y, n);
}

// ---- the scalar reference -----------------------------------------------------------

namespace {

template <typename C>
struct Element {
  C loss;
  C grad;
};

// PyTorch's clamp_min(0): NaN stays NaN.
template <typename C>
C ClampMin0(C v) {
  return v < 0 ? C(0) : v;
}

template <typename C>
C Stirling(C y) {
  return y * std::log(y) - y + C(0.5) * std::log(C(2 * std::numbers::pi) * y);
}

// One element in the compute type C (double for the ops marked so).
template <typename C>
Element<C> Eval(PointOp op, const PointParams& p, C x, C y, C z, C pw, bool has_pw) {
  switch (op) {
    case PointOp::kMse: {
      const C d = x - y;
      return {d * d, d + d};
    }
    case PointOp::kL1: {
      const C d = x - y;
      return {std::abs(d), static_cast<C>((C(0) < d) - (d < C(0)))};
    }
    case PointOp::kDiff:
      return {0, x - y};
    case PointOp::kHuber:
    case PointOp::kHuberWide: {
      const C delta = static_cast<C>(p.a);
      const C d = x - y, a = std::abs(d);
      return {a < delta ? C(0.5) * a * a : delta * (a - C(0.5) * delta),
              d < -delta ? -delta : d > delta ? delta : d};
    }
    case PointOp::kSmoothL1:
    case PointOp::kSmoothL1Wide: {
      const C beta = static_cast<C>(p.a);
      const C d = x - y, a = std::abs(d);
      return {beta == 0 ? a : a < beta ? C(0.5) * a * a / beta : a - C(0.5) * beta,
              d <= -beta ? C(-1) : d >= beta ? C(1) : d / beta};
    }
    case PointOp::kBce: {
      const C log_min = -100;
      const C eps = static_cast<C>(1e-12f);
      return {(y - C(1)) * std::max(std::log1p(-x), log_min) - y * std::max(std::log(x), log_min),
              (x - y) / std::max((C(1) - x) * x, eps)};
    }
    case PointOp::kBceWithLogits: {
      // PyTorch's log(exp(-m) + exp(-x - m)) is log1p(exp(-|x|)), NaN at
      // x = -inf; sigmoid(x) from the same exp.
      const C e = std::exp(-std::abs(x));
      const C log_sum = x == -std::numeric_limits<C>::infinity()
                            ? std::numeric_limits<C>::quiet_NaN()
                            : std::log1p(e);
      const C sig = x >= 0 ? C(1) / (C(1) + e) : e / (C(1) + e);
      if (has_pw) {
        // Rearranged as in the vector kernel: no term larger than needed.
        const C t = pw * y;
        const C sig_neg = x >= 0 ? e / (C(1) + e) : C(1) / (C(1) + e);
        const C lead = x >= 0 ? (C(1) - y) * x : -x * t;
        return {lead + ((pw - C(1)) * y + C(1)) * log_sum, (C(1) - y) * sig - t * sig_neg};
      }
      return {(x >= 0 ? (C(1) - y) * x : -y * x) + log_sum, sig - y};
    }
    case PointOp::kKlDiv: {
      const C xlogy = std::isnan(y) ? y : y == 0 ? C(0) : y * std::log(y);
      return {xlogy - y * x, -y};
    }
    case PointOp::kKlDivLogTarget: {
      const C e = std::exp(y);
      return {e * (y - x), -e};
    }
    case PointOp::kPoissonLog: {
      const C e = std::exp(x);
      C loss = e - y * x;
      if (p.full && !(y <= 1)) loss += Stirling(y);
      return {loss, e - y};
    }
    case PointOp::kPoisson: {
      const C denom = x + static_cast<C>(p.a);
      C loss = x - y * std::log(denom);
      if (p.full && !(y <= 1)) loss += Stirling(y);
      return {loss, C(1) - y / denom};
    }
    case PointOp::kGaussian: {
      const C eps = static_cast<C>(p.a);
      const C v = z < eps ? eps : z;
      const C d = x - y;
      C loss = C(0.5) * (std::log(v) + d * d / v);
      if (p.full) loss += C(0.5 * std::log(2 * std::numbers::pi));
      return {loss, d / v};
    }
    case PointOp::kSoftMargin: {
      const C v = -y * x;
      if (std::isnan(v)) return {v, v};
      if (v > C(709.782712893384)) {
        return {std::numeric_limits<C>::infinity(), std::numeric_limits<C>::quiet_NaN()};
      }
      const C e = std::exp(-std::abs(v));
      const C sig = v >= 0 ? C(1) / (C(1) + e) : e / (C(1) + e);
      return {std::max(v, C(0)) + std::log1p(e), -y * sig};
    }
    case PointOp::kMultiLabelSoftMargin: {
      const C e = std::exp(-std::abs(x));
      const C lp = std::log1p(e);
      const C ls_pos = std::min(x, C(0)) - lp, ls_neg = std::min(-x, C(0)) - lp;
      const C sig = x >= 0 ? C(1) / (C(1) + e) : e / (C(1) + e);
      const C sig_neg = x >= 0 ? e / (C(1) + e) : C(1) / (C(1) + e);
      const C loss = std::isnan(x) ? x : -(y * ls_pos + (C(1) - y) * ls_neg);
      return {loss, (C(1) - y) * sig - y * sig_neg};
    }
    case PointOp::kHingeEmbedding: {
      C loss = 0, grad = 0;
      if (y != 1) {
        const C c = static_cast<C>(p.a) - x;
        loss = ClampMin0(c);
        grad = c >= 0 ? C(-1) : C(0);
      }
      if (y != -1) {
        loss += x;
        grad += 1;
      }
      return {loss, grad};
    }
    case PointOp::kMarginRanking: {
      const C v = -y * (x - z) + static_cast<C>(p.a);
      return {ClampMin0(v), v >= 0 ? -y : C(0)};
    }
  }
  return {0, 0};
}

bool ComputesInDouble(PointOp op) {
  switch (op) {
    case PointOp::kMse:
    case PointOp::kL1:
    case PointOp::kDiff:
    case PointOp::kBce:
    case PointOp::kBceWithLogits:
    case PointOp::kHuber:
    case PointOp::kSmoothL1:
    case PointOp::kSoftMargin:
    case PointOp::kMultiLabelSoftMargin:
      return false;
    default:
      return true;
  }
}

template <typename C, typename T>
double ReferenceIn(PointOp op, const PointParams& p, const PointArgs<T>& a) {
  double sum = 0;
  const C scale = static_cast<C>(a.grad_scale);
  for (int64_t i = 0; i < a.n; ++i) {
    const auto at = [&](const T* v) { return v ? static_cast<C>(v[i]) : C(0); };
    Element<C> e = Eval<C>(op, p, at(a.x), at(a.y), at(a.z), at(a.pw), a.pw != nullptr);
    if (a.w) {
      e.loss *= at(a.w);
      e.grad *= at(a.w);
    }
    if (a.grad) a.grad[i] = static_cast<T>(e.grad * (a.go ? at(a.go) : scale));
    if (a.loss) {
      a.loss[i] = static_cast<T>(e.loss);
    } else {
      sum += static_cast<double>(e.loss);
    }
  }
  return a.loss ? 0.0 : sum;
}

template <typename T>
double ReferenceT(PointOp op, const PointParams& p, const PointArgs<T>& a) {
  return ComputesInDouble(op) ? ReferenceIn<double>(op, p, a) : ReferenceIn<T>(op, p, a);
}

template <typename T>
void UnaryReferenceT(UnaryOp op, double a, const T* x, T* y, int64_t n) {
  const T lo = static_cast<T>(a), hi = T(1) - lo;
  for (int64_t i = 0; i < n; ++i) {
    switch (op) {
      case UnaryOp::kSigmoid:
        y[i] = T(1) / (T(1) + std::exp(-x[i]));
        break;
      case UnaryOp::kLogit:
        y[i] = std::log(x[i] / (T(1) - x[i]));
        break;
      case UnaryOp::kLogitClamp: {
        const T q = x[i] < lo ? lo : (x[i] > hi ? hi : x[i]);
        y[i] = std::log(q / (T(1) - q));
        break;
      }
    }
  }
}

}  // namespace

double PointReference(PointOp op, const PointParams& p, const PointArgs<float>& a) {
  return ReferenceT(op, p, a);
}
double PointReference(PointOp op, const PointParams& p, const PointArgs<double>& a) {
  return ReferenceT(op, p, a);
}
void UnaryReference(UnaryOp op, double a, const float* x, float* y, int64_t n) {
  UnaryReferenceT(op, a, x, y, n);
}
void UnaryReference(UnaryOp op, double a, const double* x, double* y, int64_t n) {
  UnaryReferenceT(op, a, x, y, n);
}

}  // namespace lossservice::simd
#endif  // HWY_ONCE
