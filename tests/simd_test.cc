// Every vector kernel, on every Highway target that was compiled and that
// this CPU runs (AVX3, AVX2, SSE4 and the portable fallback on an AVX-512
// machine), against its scalar reference: random data with ragged tails,
// NaN, +-Inf, subnormals, zeros and +-80 logits.
//
// NaN and infinities must match exactly; finite values within a few ULP
// (the vector math is within 1-4 ULP of <cmath>), sums within the rounding
// of their terms.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/simd/class_index.h"
#include "core/simd/elementwise.h"
#include "core/simd/rows.h"
#include "core/simd/softmax.h"
#include "gtest/gtest.h"
#include "hwy/targets.h"

namespace lossservice::simd {
namespace {

constexpr int64_t kTail = 1029;  // the largest size: several blocks and a ragged tail
const std::vector<int64_t> kSizes = {1, 2, 3, 7, 15, 16, 17, 31, 33, 64, 100, kTail};

// Runs fn() once per target, with the kernels dispatching to it.
template <class F>
void ForEachTarget(F&& fn) {
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    ASSERT_EQ(DispatchedTarget(), target);
    fn();
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST(SimdTargets, EveryCompiledTargetThatTheCpuRunsIsTested) {
  std::string names;
  int64_t tested = 0;
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    names += std::string(names.empty() ? "" : " ") + hwy::TargetName(target);
    tested |= target;
  }
  std::printf("vector kernels tested on: %s\n", names.c_str());
  RecordProperty("targets", names);
  // The portable fallback always, and every x86 target the CPU has.
  EXPECT_NE(tested & (HWY_SCALAR | HWY_EMU128), 0);
  for (int64_t t : {HWY_SSE4, HWY_AVX2, HWY_AVX3}) {
    if (hwy::SupportedTargets() & t) {
      EXPECT_NE(tested & t, 0) << hwy::TargetName(t);
    }
  }
}

// ---- data --------------------------------------------------------------------------

template <typename T>
struct Special {
  static T Subnormal() { return std::numeric_limits<T>::denorm_min() * 3; }
};

// n values: `draw()` mostly, and with probability `p` each a special value:
// NaN, +inf, -inf, +-80, 0, -0 or a subnormal.
template <typename T, class Draw>
std::vector<T> Values(std::mt19937_64& rng, int64_t n, double p, Draw&& draw,
                      bool specials = true) {
  std::uniform_real_distribution<double> u(0, 1);
  std::uniform_int_distribution<int> kind(0, 7);
  const T inf = std::numeric_limits<T>::infinity();
  std::vector<T> v(static_cast<size_t>(n));
  for (T& x : v) {
    x = static_cast<T>(draw());
    if (!specials || u(rng) >= p) continue;
    switch (kind(rng)) {
      case 0: x = std::numeric_limits<T>::quiet_NaN(); break;
      case 1: x = inf; break;
      case 2: x = -inf; break;
      case 3: x = T(80); break;
      case 4: x = T(-80); break;
      case 5: x = T(0); break;
      case 6: x = T(-0.0); break;
      default: x = Special<T>::Subnormal(); break;
    }
  }
  return v;
}

template <typename T>
struct Tolerance {
  double atol, rtol;
};

// Results stored as float32: a few ULP; as float64: the double kernels' math
// (hn::Exp, hn::Log: 1-4 ULP) against <cmath>.
template <typename T>
Tolerance<T> ElementTolerance() {
  if constexpr (sizeof(T) == 4) {
    return {1e-6, 8e-6};
  } else {
    return {1e-12, 1e-10};
  }
}

template <typename T>
::testing::AssertionResult Close(double got, double want, Tolerance<T> tol) {
  if (std::isnan(want) || std::isnan(got)) {
    if (std::isnan(want) && std::isnan(got)) return ::testing::AssertionSuccess();
  } else if (std::isinf(want) || std::isinf(got)) {
    if (got == want) return ::testing::AssertionSuccess();
  } else if (std::fabs(got - want) <= tol.atol + tol.rtol * std::fabs(want)) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "got " << got << ", want " << want;
}

// Element-wise; where a result is a difference of larger terms, `magnitude`
// (when given) holds their size, to which the rounding error is relative.
template <typename T>
void ExpectAllClose(const std::vector<T>& got, const std::vector<T>& want, const char* what,
                    const std::vector<double>* magnitude = nullptr) {
  ASSERT_EQ(got.size(), want.size());
  const Tolerance<T> base = ElementTolerance<T>();
  int reported = 0;
  for (size_t i = 0; i < got.size() && reported < 3; ++i) {
    Tolerance<T> tol = base;
    if (magnitude && std::isfinite((*magnitude)[i])) tol.atol += base.rtol * (*magnitude)[i];
    const auto ok = Close<T>(got[i], want[i], tol);
    if (!ok) {
      ADD_FAILURE() << what << "[" << i << "] of " << got.size() << ": " << ok.message();
      ++reported;
    }
  }
}

// A sum of n terms whose magnitudes add up to `abs_sum`.
template <typename T>
void ExpectSumClose(double got, double want, double abs_sum, int64_t n, const char* what) {
  const Tolerance<T> e = ElementTolerance<T>();
  const Tolerance<T> tol{e.atol * static_cast<double>(n), e.rtol * 2};
  const double scale = std::isfinite(abs_sum) ? abs_sum : 0.0;
  if (std::isfinite(want) && std::isfinite(got)) {
    EXPECT_LE(std::fabs(got - want), tol.atol + tol.rtol * scale) << what << ": got " << got
                                                                  << ", want " << want;
  } else {
    EXPECT_TRUE(Close<T>(got, want, tol)) << what;
  }
}

// ---- element-wise losses -----------------------------------------------------------------

struct OpCase {
  PointOp op;
  PointParams params;
  const char* name;
};

const std::vector<OpCase>& PointOps() {
  static const std::vector<OpCase> ops = {
      {PointOp::kMse, {}, "mse"},
      {PointOp::kL1, {}, "l1"},
      {PointOp::kDiff, {}, "diff"},
      {PointOp::kHuber, {0.7}, "huber"},
      {PointOp::kHuberWide, {0.7}, "huber_wide"},
      {PointOp::kSmoothL1, {0.5}, "smooth_l1"},
      {PointOp::kSmoothL1, {0.0}, "smooth_l1_beta0"},
      {PointOp::kSmoothL1Wide, {2.0}, "smooth_l1_wide"},
      {PointOp::kBce, {}, "bce"},
      {PointOp::kBceWithLogits, {}, "bce_with_logits"},
      {PointOp::kKlDiv, {}, "kl_div"},
      {PointOp::kKlDivLogTarget, {}, "kl_div_log_target"},
      {PointOp::kPoissonLog, {1e-8, false}, "poisson_log"},
      {PointOp::kPoissonLog, {1e-8, true}, "poisson_log_full"},
      {PointOp::kPoisson, {1e-8, true}, "poisson_full"},
      {PointOp::kGaussian, {1e-6, false}, "gaussian"},
      {PointOp::kGaussian, {1e-6, true}, "gaussian_full"},
      {PointOp::kSoftMargin, {}, "soft_margin"},
      {PointOp::kMultiLabelSoftMargin, {}, "multilabel_soft_margin"},
      {PointOp::kHingeEmbedding, {1.0}, "hinge_embedding"},
      {PointOp::kMarginRanking, {0.3}, "margin_ranking"},
  };
  return ops;
}

// The operands of `op`, in its domain (bce: probabilities), with specials.
template <typename T>
struct PointData {
  std::vector<T> x, y, z, w, pw, go;
};

template <typename T>
PointData<T> MakePointData(PointOp op, int64_t n, std::mt19937_64& rng) {
  std::normal_distribution<double> normal(0, 3);
  std::uniform_real_distribution<double> unit(0, 1);
  std::uniform_int_distribution<int> sign(0, 3);
  const auto gauss = [&] { return normal(rng); };
  const auto prob = [&] { return unit(rng); };
  // Mostly +-1, sometimes another value (PyTorch's where() cases).
  const auto pm1 = [&] {
    const int s = sign(rng);
    return s == 0 ? 1.0 : s == 1 ? -1.0 : s == 2 ? 0.5 : normal(rng);
  };
  PointData<T> d;
  switch (op) {
    case PointOp::kBce: {
      d.x = Values<T>(rng, n, 0, prob, false);
      for (T& v : d.x) {  // the domain's edges
        const double u = unit(rng);
        if (u < 0.03) v = 0;
        if (u > 0.97) v = 1;
        if (u > 0.5 && u < 0.52) v = Special<T>::Subnormal();
      }
      d.y = Values<T>(rng, n, 0.05, prob);
      for (T& v : d.y) {
        if (!(std::isnan(v) || (v >= 0 && v <= 1))) v = T(0.25);
      }
      break;
    }
    case PointOp::kBceWithLogits:
      d.x = Values<T>(rng, n, 0.1, gauss);
      d.y = Values<T>(rng, n, 0.02, prob);
      break;
    case PointOp::kGaussian:
      d.x = Values<T>(rng, n, 0.1, gauss);
      d.y = Values<T>(rng, n, 0.05, gauss);
      d.z = Values<T>(rng, n, 0.1, prob);
      for (T& v : d.z) v = std::fabs(v);  // var >= 0 (checked)
      break;
    case PointOp::kSoftMargin:
    case PointOp::kHingeEmbedding:
      d.x = Values<T>(rng, n, 0.1, gauss);
      d.y = Values<T>(rng, n, 0.05, pm1);
      break;
    case PointOp::kMarginRanking:
      d.x = Values<T>(rng, n, 0.1, gauss);
      d.y = Values<T>(rng, n, 0.05, pm1);
      d.z = Values<T>(rng, n, 0.1, gauss);
      break;
    case PointOp::kKlDiv:
    case PointOp::kPoisson:
    case PointOp::kMultiLabelSoftMargin:
      d.x = Values<T>(rng, n, 0.1, gauss);
      d.y = Values<T>(rng, n, 0.1, prob);
      break;
    default:
      d.x = Values<T>(rng, n, 0.1, gauss);
      d.y = Values<T>(rng, n, 0.1, gauss);
      break;
  }
  d.w = Values<T>(rng, n, 0.05, gauss);
  d.pw = Values<T>(rng, n, 0.05, prob);
  d.go = Values<T>(rng, n, 0.02, gauss);
  return d;
}

template <typename T>
void CheckPointOp(const OpCase& oc, int64_t n, std::mt19937_64& rng) {
  const PointData<T> d = MakePointData<T>(oc.op, n, rng);
  const bool weighted = oc.op == PointOp::kBce || oc.op == PointOp::kBceWithLogits ||
                        oc.op == PointOp::kMultiLabelSoftMargin;
  for (int variant = 0; variant < (weighted ? 4 : 1); ++variant) {
    for (int grad_mode = 0; grad_mode < 3; ++grad_mode) {  // none, uniform, per element
      SCOPED_TRACE(::testing::Message() << oc.name << " n=" << n << " variant=" << variant
                                        << " grad_mode=" << grad_mode);
      PointArgs<T> a;
      a.n = n;
      a.x = d.x.data();
      a.y = d.y.data();
      a.z = d.z.empty() ? nullptr : d.z.data();
      a.w = variant & 1 ? d.w.data() : nullptr;
      a.pw = oc.op == PointOp::kBceWithLogits && (variant & 2) ? d.pw.data() : nullptr;
      a.go = grad_mode == 2 ? d.go.data() : nullptr;
      a.grad_scale = 0.37;
      // Per element, with the gradient when asked.
      std::vector<T> loss(n), loss_ref(n), grad(n), grad_ref(n);
      PointArgs<T> v = a, r = a;
      v.loss = loss.data();
      r.loss = loss_ref.data();
      v.grad = grad_mode ? grad.data() : nullptr;
      r.grad = grad_mode ? grad_ref.data() : nullptr;
      Point(oc.op, oc.params, v);
      PointReference(oc.op, oc.params, r);
      // bce_with_logits with pos_weight: the gradient (pw y + 1 - y) sigmoid(x)
      // - pw y cancels terms of size pw y.
      // Its loss (1 - y) x + (1 + (pw - 1) y) (log1p(e) + m) cancels terms too.
      std::vector<double> terms, loss_terms;
      if (a.pw) {
        for (int64_t i = 0; i < n; ++i) {
          const double t = std::fabs(static_cast<double>(d.pw[i]) * d.y[i]) + 1;
          const double g = grad_mode == 2 ? std::fabs(static_cast<double>(d.go[i])) : a.grad_scale;
          const double w = a.w ? std::fabs(static_cast<double>(d.w[i])) : 1.0;
          const double x = std::fabs(static_cast<double>(d.x[i]));
          terms.push_back(2 * t * g * w);
          loss_terms.push_back(2 * w * (std::fabs(1.0 - d.y[i]) * x + (t + 1) * (x + 1)));
        }
      }
      if (oc.op != PointOp::kDiff) {
        ExpectAllClose(loss, loss_ref, "loss", a.pw ? &loss_terms : nullptr);
      }
      if (grad_mode) ExpectAllClose(grad, grad_ref, "grad", a.pw ? &terms : nullptr);
      // Summed.
      v.loss = r.loss = nullptr;
      v.grad = r.grad = nullptr;
      double abs_sum = 0;
      for (T l : loss_ref) abs_sum += std::fabs(static_cast<double>(l));
      ExpectSumClose<T>(Point(oc.op, oc.params, v), PointReference(oc.op, oc.params, r), abs_sum,
                        n, "sum");
    }
  }
}

TEST(SimdKernels, ElementwiseLossesMatchTheReference) {
  ForEachTarget([] {
    std::mt19937_64 rng(1);
    for (const OpCase& oc : PointOps()) {
      for (int64_t n : kSizes) {
        CheckPointOp<float>(oc, n, rng);
        CheckPointOp<double>(oc, n, rng);
      }
    }
  });
}

template <typename T>
void CheckUnary(std::mt19937_64& rng) {
  std::normal_distribution<double> normal(0, 20);
  std::uniform_real_distribution<double> unit(-0.2, 1.2);
  for (int64_t n : kSizes) {
    for (auto [op, a, name] : {std::tuple{UnaryOp::kSigmoid, 0.0, "sigmoid"},
                               std::tuple{UnaryOp::kLogit, 0.0, "logit"},
                               std::tuple{UnaryOp::kLogitClamp, 0.01, "logit_eps"},
                               std::tuple{UnaryOp::kLogitClamp, 0.0, "logit_eps0"}}) {
      SCOPED_TRACE(::testing::Message() << name << " n=" << n);
      const std::vector<T> x = op == UnaryOp::kSigmoid
                                   ? Values<T>(rng, n, 0.1, [&] { return normal(rng); })
                                   : Values<T>(rng, n, 0.1, [&] { return unit(rng); });
      std::vector<T> y(n), y_ref(n);
      Unary(op, a, x.data(), y.data(), n);
      UnaryReference(op, a, x.data(), y_ref.data(), n);
      ExpectAllClose(y, y_ref, "output");
    }
  }
}

// Losses that are a small logarithm, log1p(t) ~ t: soft_margin and
// bce_with_logits at large margins (log1p(e^-|x|)), bce of a confident
// negative (-log1p(-x)) or positive (-log(x), x near 1); and bce's -log(x)
// over (0, 1]. Their float32 results must keep their relative accuracy, a
// few ULP of the float64 value, however small the logarithm is; the
// correction of 1 + t's rounding is then most of the result.
TEST(SimdKernels, SmallLogarithmsKeepTheirRelativeAccuracy) {
  constexpr int64_t kN = 4099;
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> margin(0, 85), log10_p(-30, -1);
  std::vector<float> large(kN), tiny(kN), ones(kN, 1.0f), zeros(kN, 0.0f);
  for (float& v : large) v = static_cast<float>(margin(rng));
  for (float& v : tiny) v = static_cast<float>(std::pow(10.0, log10_p(rng)));
  std::vector<float> near_one(kN), unit(kN);
  for (int64_t i = 0; i < kN; ++i) {
    near_one[i] = 1.0f - tiny[i];  // 1 itself where tiny is below half an ULP
    unit[i] = static_cast<float>(std::pow(2.0, -30 * margin(rng) / 85));
  }
  struct Case {
    PointOp op;
    const std::vector<float>& x;
    const std::vector<float>& y;
    double (*truth)(double);
    const char* name;
  };
  const Case cases[] = {
      {PointOp::kSoftMargin, large, ones, [](double x) { return std::log1p(std::exp(-x)); },
       "soft_margin"},
      {PointOp::kBceWithLogits, large, ones, [](double x) { return std::log1p(std::exp(-x)); },
       "bce_with_logits"},
      {PointOp::kBce, tiny, zeros, [](double x) { return -std::log1p(-x); }, "bce, y = 0"},
      {PointOp::kBce, near_one, ones, [](double x) { return -std::log(x); }, "bce, y = 1, x ~ 1"},
      {PointOp::kBce, unit, ones, [](double x) { return -std::log(x); }, "bce, y = 1"},
  };
  const double rtol = 4 * std::numeric_limits<float>::epsilon();  // 4 ULP at the most
  ForEachTarget([&] {
    for (const Case& c : cases) {
      SCOPED_TRACE(c.name);
      std::vector<float> loss(kN);
      PointArgs<float> a;
      a.n = kN;
      a.x = c.x.data();
      a.y = c.y.data();
      a.loss = loss.data();
      Point(c.op, {}, a);
      int reported = 0;
      for (int64_t i = 0; i < kN && reported < 3; ++i) {
        const double want = c.truth(c.x[i]);
        if (!(std::fabs(loss[i] - want) <= rtol * want) && !(want == 0 && loss[i] == 0)) {
          ADD_FAILURE() << "x = " << c.x[i] << ": got " << loss[i] << ", want " << want << " ("
                        << (loss[i] - want) / want / std::numeric_limits<float>::epsilon()
                        << " float32 epsilons)";
          ++reported;
        }
      }
    }
  });
}

TEST(SimdKernels, ActivationsMatchTheReference) {
  ForEachTarget([] {
    std::mt19937_64 rng(2);
    CheckUnary<float>(rng);
    CheckUnary<double>(rng);
  });
}

template <typename T>
void CheckFindOutside(std::mt19937_64& rng) {
  using L = std::numeric_limits<T>;
  std::uniform_real_distribution<double> unit(0, 1);
  // Values planted at random positions, in pairs where the first may be
  // inside one of the two modes and outside the other.
  const std::vector<std::vector<T>> plants = {
      {},
      {T(1.5)},
      {T(-0.1)},
      {L::quiet_NaN()},
      {-L::denorm_min()},
      {L::infinity()},
      {-L::infinity()},
      {T(-0.0), T(0), T(1)},  // all inside
      {L::quiet_NaN(), T(-0.1)},
      {-L::quiet_NaN(), T(1) + L::epsilon()},
      {T(1.5), L::quiet_NaN()},
  };
  for (int64_t n : kSizes) {
    for (bool nan_inside : {false, true}) {
      for (const double hi : {1.0, HUGE_VAL}) {
        for (const std::vector<T>& plant : plants) {
          std::vector<T> x = Values<T>(rng, n, 0, [&] { return unit(rng); }, false);
          std::uniform_int_distribution<int64_t> at(0, n - 1);
          for (T v : plant) x[at(rng)] = v;
          const T hi_t = static_cast<T>(hi);
          int64_t want = n;
          for (int64_t i = 0; i < n && want == n; ++i) {
            if (nan_inside ? (x[i] < 0 || x[i] > hi_t) : !(x[i] >= 0 && x[i] <= hi_t)) want = i;
          }
          EXPECT_EQ(FindOutside(x.data(), n, 0, hi, nan_inside), want)
              << "n=" << n << " nan_inside=" << nan_inside << " hi=" << hi << " plant of "
              << plant.size() << " starting " << (plant.empty() ? T(0) : plant[0]);
        }
      }
    }
  }
}

TEST(SimdKernels, FindOutsideFindsTheFirstValueOutside) {
  ForEachTarget([] {
    std::mt19937_64 rng(3);
    CheckFindOutside<float>(rng);
    CheckFindOutside<double>(rng);
  });
}

// ---- the softmax family ---------------------------------------------------------------------

// Layouts: (count, classes, stride). stride 1: contiguous rows (few classes
// go through the transposed path, many through the row path); stride S:
// count samples of one block, classes S apart.
struct Layout {
  int64_t count, classes, stride;
};

const std::vector<Layout>& Layouts() {
  static const std::vector<Layout> layouts = {
      {1, 1, 1},   {3, 2, 1},    {17, 5, 1},  {33, 10, 1},  {5, 16, 1},  {9, 31, 1},
      {4, 32, 1},  {6, 33, 1},   {3, 100, 1}, {2, 1000, 1}, {2, 3, 2},   {3, 4, 3},
      {16, 5, 16}, {17, 10, 17}, {9, 3, 40},  {33, 7, 33},  {1, 300, 5},
  };
  return layouts;
}

// Logits of a layout's span: with specials in a few samples only.
template <typename T>
std::vector<T> Logits(const Layout& l, std::mt19937_64& rng) {
  std::normal_distribution<double> normal(0, 4);
  const int64_t size = l.stride == 1 ? l.count * l.classes : (l.classes - 1) * l.stride + l.count;
  return Values<T>(rng, size, 0.01, [&] { return normal(rng); });
}

template <typename T>
void CheckIndexKernel(const Layout& l, std::mt19937_64& rng) {
  const std::vector<T> x = Logits<T>(l, rng);
  std::uniform_int_distribution<int64_t> cls(0, l.classes - 1);
  std::uniform_real_distribution<double> unit(0, 1);
  std::vector<int64_t> target(l.count);
  for (int64_t& t : target) t = unit(rng) < 0.15 ? -100 : cls(rng);
  std::vector<T> weight(l.classes), go(l.count);
  for (T& w : weight) w = static_cast<T>(0.2 + 2 * unit(rng));
  for (T& g : go) g = static_cast<T>(unit(rng) - 0.3);
  for (int variant = 0; variant < 8; ++variant) {
    const bool weighted = variant & 1, smoothed = variant & 2, per_sample = variant & 4;
    SCOPED_TRACE(::testing::Message() << "count=" << l.count << " C=" << l.classes << " S="
                                      << l.stride << " weighted=" << weighted
                                      << " smoothed=" << smoothed << " per_sample=" << per_sample);
    ClassIndexArgs<T> a;
    a.count = l.count;
    a.classes = l.classes;
    a.stride = l.stride;
    a.x = x.data();
    a.target = target.data();
    a.weight = weighted ? weight.data() : nullptr;
    a.weight_total = 0;
    for (int64_t c = 0; c < l.classes; ++c) a.weight_total += weighted ? weight[c] : 1.0;
    a.label_smoothing = smoothed ? 0.1 : 0.0;
    a.go = per_sample ? go.data() : nullptr;
    a.grad_scale = 0.25;
    std::vector<T> loss(l.count), loss_ref(l.count), grad(x.size()), grad_ref(x.size());
    ClassIndexArgs<T> v = a, r = a;
    v.loss = loss.data();
    r.loss = loss_ref.data();
    v.grad = grad.data();
    r.grad = grad_ref.data();
    CrossEntropyIndex(v);
    CrossEntropyIndexReference(r);
    ExpectAllClose(loss, loss_ref, "loss");
    ExpectAllClose(grad, grad_ref, "grad");
    v.loss = r.loss = nullptr;
    v.grad = r.grad = nullptr;
    const ClassSums s = CrossEntropyIndex(v), s_ref = CrossEntropyIndexReference(r);
    double abs_sum = 0;
    for (T li : loss_ref) abs_sum += std::fabs(static_cast<double>(li));
    ExpectSumClose<T>(s.nll, s_ref.nll, abs_sum, l.count, "nll sum");
    ExpectSumClose<T>(s.smooth, s_ref.smooth, abs_sum * l.classes, l.count, "smooth sum");
  }
}

template <typename T>
void CheckProbKernel(const Layout& l, std::mt19937_64& rng) {
  const std::vector<T> x = Logits<T>(l, rng);
  std::uniform_real_distribution<double> unit(0, 1);
  std::vector<T> target = Values<T>(rng, static_cast<int64_t>(x.size()), 0.01,
                                    [&] { return unit(rng); });
  std::vector<T> weight(l.classes), go(l.count);
  for (T& w : weight) w = static_cast<T>(0.2 + 2 * unit(rng));
  for (T& g : go) g = static_cast<T>(unit(rng) - 0.3);
  for (int variant = 0; variant < 8; ++variant) {
    const bool weighted = variant & 1, smoothed = variant & 2, per_sample = variant & 4;
    SCOPED_TRACE(::testing::Message() << "count=" << l.count << " C=" << l.classes << " S="
                                      << l.stride << " weighted=" << weighted
                                      << " smoothed=" << smoothed << " per_sample=" << per_sample);
    ClassProbArgs<T> a;
    a.count = l.count;
    a.classes = l.classes;
    a.stride = l.stride;
    a.x = x.data();
    a.target = target.data();
    a.weight = weighted ? weight.data() : nullptr;
    a.label_smoothing = smoothed ? 0.2 : 0.0;
    a.go = per_sample ? go.data() : nullptr;
    a.grad_scale = 0.5;
    std::vector<T> loss(l.count), loss_ref(l.count), grad(x.size()), grad_ref(x.size());
    ClassProbArgs<T> v = a, r = a;
    v.loss = loss.data();
    r.loss = loss_ref.data();
    v.grad = grad.data();
    r.grad = grad_ref.data();
    CrossEntropyProb(v);
    CrossEntropyProbReference(r);
    ExpectAllClose(loss, loss_ref, "loss");
    ExpectAllClose(grad, grad_ref, "grad");
    v.loss = r.loss = nullptr;
    v.grad = r.grad = nullptr;
    double abs_sum = 0;
    for (T li : loss_ref) abs_sum += std::fabs(static_cast<double>(li));
    ExpectSumClose<T>(CrossEntropyProb(v), CrossEntropyProbReference(r), abs_sum, l.count, "sum");
  }
}

template <typename T>
void CheckSoftmaxKernel(const Layout& l, std::mt19937_64& rng) {
  const std::vector<T> x = Logits<T>(l, rng);
  for (bool log : {false, true}) {
    SCOPED_TRACE(::testing::Message() << (log ? "log_softmax" : "softmax") << " count=" << l.count
                                      << " C=" << l.classes << " S=" << l.stride);
    // Outside the span's samples the output is not written: start equal.
    std::vector<T> y(x.size(), T(7)), y_ref(x.size(), T(7));
    Softmax(log, l.count, l.classes, l.stride, x.data(), y.data());
    SoftmaxReference(log, l.count, l.classes, l.stride, x.data(), y_ref.data());
    ExpectAllClose(y, y_ref, "output");
  }
}

TEST(SimdKernels, SoftmaxFamilyMatchesTheReference) {
  ForEachTarget([] {
    std::mt19937_64 rng(4);
    for (const Layout& l : Layouts()) {
      CheckIndexKernel<float>(l, rng);
      CheckIndexKernel<double>(l, rng);
      CheckProbKernel<float>(l, rng);
      CheckProbKernel<double>(l, rng);
      CheckSoftmaxKernel<float>(l, rng);
      CheckSoftmaxKernel<double>(l, rng);
    }
  });
}

// ---- the row-wise margin and embedding kernels -------------------------------------------

const std::vector<std::pair<int64_t, int64_t>>& RowShapes() {  // (rows, length)
  static const std::vector<std::pair<int64_t, int64_t>> shapes = {
      {1, 1}, {3, 2}, {4, 7}, {2, 8}, {5, 9}, {3, 16}, {2, 17}, {2, 100}, {1, 1029}, {3, 0}};
  return shapes;
}

template <typename T>
std::vector<double> Doubles(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

template <typename T>
void CheckRowKernels(std::mt19937_64& rng) {
  std::normal_distribution<double> normal(0, 2);
  std::uniform_real_distribution<double> unit(0, 1);
  const auto gauss = [&] { return normal(rng); };
  const Tolerance<double> tol{1e-12, 1e-12};
  const auto close = [&](const std::vector<double>& got, const std::vector<double>& want,
                         const char* what) {
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_TRUE(Close<double>(got[i], want[i], tol)) << what << "[" << i << "]";
    }
  };
  for (auto [n, L] : RowShapes()) {
    SCOPED_TRACE(::testing::Message() << "rows=" << n << " length=" << L);
    const std::vector<T> a = Values<T>(rng, n * L, 0.05, gauss), b = Values<T>(rng, n * L, 0.05, gauss),
                         c = Values<T>(rng, n * L, 0.05, gauss);
    std::vector<double> r1(n), r2(n), r3(n), q1(n), q2(n), q3(n);
    RowDots(a.data(), b.data(), L, n, r1.data(), r2.data(), r3.data());
    RowDotsReference(a.data(), b.data(), L, n, q1.data(), q2.data(), q3.data());
    close(r1, q1, "ab");
    close(r2, q2, "aa");
    close(r3, q3, "bb");
    std::vector<double> ca(n), cb(n);
    for (int64_t i = 0; i < n; ++i) {
      ca[i] = gauss();
      cb[i] = gauss();
    }
    std::vector<T> out(n * L), out_ref(n * L);
    RowCombine(a.data(), b.data(), L, n, ca.data(), cb.data(), out.data());
    RowCombineReference(a.data(), b.data(), L, n, ca.data(), cb.data(), out_ref.data());
    ExpectAllClose(out, out_ref, "combine");
    for (int p : {1, 2}) {
      SCOPED_TRACE(::testing::Message() << "p=" << p);
      RowNormPower(p, a.data(), b.data(), 1e-6, L, n, r1.data());
      RowNormPowerReference(p, a.data(), b.data(), 1e-6, L, n, q1.data());
      close(r1, q1, "norm power");
      // The fused norms are the three RowNormPower's.
      std::vector<double> t1(n), t2(n), t3(n), u(n);
      TripletNorms(p, a.data(), b.data(), c.data(), 1e-6, L, n, t1.data(), t2.data(), t3.data());
      RowNormPowerReference(p, a.data(), b.data(), 1e-6, L, n, u.data());
      close(t1, u, "triplet norm (a, pos)");
      RowNormPowerReference(p, a.data(), c.data(), 1e-6, L, n, u.data());
      close(t2, u, "triplet norm (a, neg)");
      RowNormPowerReference(p, b.data(), c.data(), 1e-6, L, n, u.data());
      close(t3, u, "triplet norm (pos, neg)");
      TripletGrad(p, a.data(), b.data(), c.data(), 1e-6, L, n, ca.data(), cb.data(), out.data());
      TripletGradReference(p, a.data(), b.data(), c.data(), 1e-6, L, n, ca.data(), cb.data(),
                           out_ref.data());
      ExpectAllClose(out, out_ref, "triplet grad");
    }
    // ctc's gradient row: log-probabilities with specials, acc with -inf.
    {
      std::vector<double> acc(L);
      for (int64_t k = 0; k < L; ++k) acc[k] = unit(rng) < 0.3 ? -HUGE_VAL : -std::fabs(gauss());
      std::vector<T> g(L), g_ref(L);
      const std::vector<T> lp = Values<T>(rng, L, 0.1, [&] { return -std::fabs(gauss()); });
      CtcGradRow(lp.data(), acc.data(), L, 2.5, 0.7, g.data());
      CtcGradRowReference(lp.data(), acc.data(), L, 2.5, 0.7, g_ref.data());
      ExpectAllClose(g, g_ref, "ctc grad row");
    }
    if (L == 0) continue;
    // multi_margin: random targets and weights, p = 1 and 2, with and
    // without a gradient.
    std::uniform_int_distribution<int64_t> cls(0, L - 1);
    std::vector<int64_t> target(n);
    for (int64_t& t : target) t = cls(rng);
    std::vector<T> weight(L);
    for (T& w : weight) w = static_cast<T>(0.1 + unit(rng));
    for (bool square : {false, true}) {
      MultiMarginArgs<T> m;
      m.count = n;
      m.classes = L;
      m.x = a.data();
      m.target = target.data();
      m.weight = square ? weight.data() : nullptr;
      m.margin = square ? 0.5 : 1.0;
      m.square = square;
      m.g = ca.data();
      MultiMarginArgs<T> mr = m;
      m.loss = r1.data();
      mr.loss = q1.data();
      m.grad = out.data();
      mr.grad = out_ref.data();
      MultiMargin(m);
      MultiMarginReference(mr);
      close(r1, q1, "multi_margin loss");
      ExpectAllClose(out, out_ref, "multi_margin grad");
    }
    // multilabel_margin, one row at a time: a few labels, some repeated.
    std::vector<double> is_label(L), hits(L);
    for (int64_t i = 0; i < n; ++i) {
      std::vector<int64_t> labels;
      std::fill(is_label.begin(), is_label.end(), 0.0);
      for (int64_t j = 0; j < std::min<int64_t>(L, 3); ++j) {
        labels.push_back(cls(rng));
        is_label[labels.back()] = 1;
      }
      std::vector<T> g(L), g_ref(L);
      double l = 0, l_ref = 0;
      MultiLabelMarginRow(a.data() + i * L, L, labels.data(), static_cast<int64_t>(labels.size()),
                          is_label.data(), 0.3, hits.data(), g.data(), &l);
      MultiLabelMarginRowReference(a.data() + i * L, L, labels.data(),
                                   static_cast<int64_t>(labels.size()), is_label.data(), 0.3,
                                   hits.data(), g_ref.data(), &l_ref);
      EXPECT_TRUE(Close<double>(l, l_ref, tol)) << "multilabel_margin loss, row " << i;
      ExpectAllClose(g, g_ref, "multilabel_margin grad");
    }
  }
}

// ctc's log-sum-exp step: -inf (often), +inf, NaN and finite terms.
void CheckCtcSteps(std::mt19937_64& rng) {
  std::normal_distribution<double> normal(-5, 3);
  std::uniform_real_distribution<double> unit(0, 1);
  const double inf = std::numeric_limits<double>::infinity();
  const auto draw = [&] {
    const double u = unit(rng);
    return u < 0.3 ? -inf : u < 0.32 ? inf : u < 0.34 ? std::nan("") : normal(rng);
  };
  for (int64_t n : kSizes) {
    std::vector<double> a(n), b(n), c(n), allow(n), add(n), out(n), out_ref(n);
    for (int64_t i = 0; i < n; ++i) {
      a[i] = draw();
      b[i] = draw();
      c[i] = draw();
      allow[i] = unit(rng) < 0.5 ? 1.0 : 0.0;
      add[i] = unit(rng) < 0.05 ? -inf : normal(rng);
    }
    CtcLogSumExp3(a.data(), b.data(), c.data(), allow.data(), add.data(), n, out.data());
    CtcLogSumExp3Reference(a.data(), b.data(), c.data(), allow.data(), add.data(), n,
                           out_ref.data());
    ExpectAllClose(out, out_ref, "ctc log-sum-exp");
    std::vector<double> v(n);
    for (double& x : v) x = -std::fabs(normal(rng));
    EXPECT_TRUE(Close<double>(SumExpRelative(v.data(), n, 0.5),
                              SumExpRelativeReference(v.data(), n, 0.5), {1e-12, 1e-12}))
        << "n=" << n;
  }
}

TEST(SimdKernels, CtcStepsMatchTheReference) {
  ForEachTarget([] {
    std::mt19937_64 rng(6);
    CheckCtcSteps(rng);
  });
}

TEST(SimdKernels, RowKernelsMatchTheReference) {
  ForEachTarget([] {
    std::mt19937_64 rng(5);
    CheckRowKernels<float>(rng);
    CheckRowKernels<double>(rng);
  });
}

// ---- class-index kernels --------------------------------------------------------------

// Targets in [0, C) with ignore_index at 15% of the positions; with `bad`,
// one value that is neither at a random position.
template <typename I>
std::vector<I> ClassTargets(std::mt19937_64& rng, int64_t n, int64_t C, int64_t ignore,
                            bool bad) {
  std::uniform_int_distribution<int64_t> cls(0, C - 1), pos(0, n - 1), kind(0, 3);
  std::uniform_real_distribution<double> unit(0, 1);
  std::vector<I> t(static_cast<size_t>(n));
  for (I& v : t) v = static_cast<I>(unit(rng) < 0.15 ? ignore : cls(rng));
  if (bad) {
    const int64_t values[] = {-1, C, C + 1, ignore == -100 ? -101 : -100};
    t[static_cast<size_t>(pos(rng))] = static_cast<I>(values[kind(rng)]);
  }
  return t;
}

template <typename I>
void CheckScan(std::mt19937_64& rng) {
  std::vector<int64_t> sizes = kSizes;
  sizes.push_back(4096 + 13);
  // ignore_index below, inside and above the classes; for int32 lanes, one
  // beyond int32 (the scalar path), which no int32 target equals.
  for (const int64_t ignore : {int64_t{-100}, int64_t{0}, int64_t{7}, int64_t{1} << 40}) {
    for (const int64_t C : {int64_t{1}, int64_t{5}, int64_t{1000}}) {
      for (const int64_t n : sizes) {
        for (const bool bad : {false, true}) {
          const std::vector<I> t = ClassTargets<I>(rng, n, C, ignore, bad);
          const IndexScan got = ScanClassIndices(t.data(), n, C, ignore);
          const IndexScan want = ScanClassIndicesReference(t.data(), n, C, ignore);
          EXPECT_EQ(got.first_bad, want.first_bad)
              << "n=" << n << " C=" << C << " ignore=" << ignore << " bad=" << bad;
          EXPECT_EQ(got.kept, want.kept)
              << "n=" << n << " C=" << C << " ignore=" << ignore << " bad=" << bad;
          if (!bad) {
            EXPECT_EQ(want.first_bad, n);
          }
        }
      }
    }
  }
}

TEST(SimdKernels, ClassIndexScanFindsTheFirstBadTargetAndCountsTheKept) {
  ForEachTarget([] {
    std::mt19937_64 rng(8);
    CheckScan<int64_t>(rng);
    CheckScan<int32_t>(rng);
  });
}

// The same float terms summed in another order: within n double roundings.
template <typename T>
void CheckNllSum(const Layout& l, int64_t ignore, bool weighted, std::mt19937_64& rng) {
  const std::vector<T> x = Logits<T>(l, rng);
  std::vector<int64_t> target = ClassTargets<int64_t>(rng, l.count, l.classes, ignore, false);
  std::uniform_real_distribution<double> unit(0, 1);
  std::vector<T> weight(static_cast<size_t>(l.classes));
  for (T& w : weight) w = static_cast<T>(0.2 + 2 * unit(rng));
  NllArgs<T> a{l.count, l.classes, l.stride, x.data(), target.data(), ignore,
               weighted ? weight.data() : nullptr};
  const double got = NllSum(a), want = NllSumReference(a);
  double abs_sum = 0;
  for (int64_t i = 0; i < l.count; ++i) {
    const int64_t t = target[static_cast<size_t>(i)];
    if (t == ignore) continue;
    abs_sum += std::fabs(static_cast<double>(x[static_cast<size_t>(
                   l.stride == 1 ? i * l.classes + t : t * l.stride + i)])) *
               (weighted ? static_cast<double>(weight[static_cast<size_t>(t)]) : 1.0);
  }
  const std::string what = "count=" + std::to_string(l.count) + " C=" + std::to_string(l.classes) +
                           " S=" + std::to_string(l.stride) + " ignore=" + std::to_string(ignore) +
                           " weighted=" + std::to_string(weighted);
  if (std::isfinite(want) && std::isfinite(got)) {
    EXPECT_LE(std::fabs(got - want),
              static_cast<double>(l.count) * std::numeric_limits<double>::epsilon() * abs_sum)
        << what << ": got " << got << ", want " << want;
  } else {
    EXPECT_TRUE(Close<double>(got, want, {0, 0})) << what;
  }
}

TEST(SimdKernels, NllSumMatchesTheReference) {
  ForEachTarget([] {
    std::mt19937_64 rng(9);
    std::vector<Layout> layouts = Layouts();
    layouts.push_back({kTail, 7, 1});
    layouts.push_back({kTail, 3, kTail});
    for (const Layout& l : layouts) {
      for (const int64_t ignore : {int64_t{-100}, int64_t{0}, int64_t{1} << 40}) {
        for (const bool weighted : {false, true}) {
          CheckNllSum<float>(l, ignore, weighted, rng);
          CheckNllSum<double>(l, ignore, weighted, rng);
        }
      }
    }
  });
}

TEST(SimdKernels, NllSumIgnoresWhatIgnoredSamplesWouldRead) {
  // Ignored lanes read x[0] and w[0]; a NaN there must not reach the sum.
  ForEachTarget([] {
    const int64_t n = 37, C = 4;
    std::vector<float> x(static_cast<size_t>(n * C), -0.5f);
    x[0] = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> w(static_cast<size_t>(C), 2.0f);
    w[0] = std::numeric_limits<float>::infinity();
    std::vector<int64_t> t(static_cast<size_t>(n), 1);
    t[0] = -100;
    for (int64_t i = 0; i < n; i += 3) t[static_cast<size_t>(i)] = -100;
    const int64_t kept = n - (n + 2) / 3;
    EXPECT_EQ(NllSum(NllArgs<float>{n, C, 1, x.data(), t.data(), -100, nullptr}),
              0.5 * static_cast<double>(kept));
    EXPECT_EQ(NllSum(NllArgs<float>{n, C, 1, x.data(), t.data(), -100, w.data()}),
              1.0 * static_cast<double>(kept));
  });
}

}  // namespace
}  // namespace lossservice::simd
