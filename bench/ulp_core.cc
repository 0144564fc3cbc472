// ulp_core: the float32 vector math of the element-wise kernels on every
// float32 input of a range, against float64 <cmath>, through the kernels'
// own entry point (simd::Point, per element), on each Highway target that
// was compiled and that this CPU runs.
//
//   ulp_core                        every function, on the dispatched target
//   ulp_core --targets=all          every function, on every target
//   ulp_core --function=softplus    one function (softplus, log1p, log, exp)
//   ulp_core --stride=97 --check    every 97th input; exit 1 if a largest error
//                                   is above its bound (ctest: ulp_core_sampled)
//
// Prints, per function and target: the inputs checked, the largest error in
// ULP of the float64 value (ULP = 2^(e - 23) for a value in [2^e, 2^(e+1)),
// 2^-149 below the normal range), where it is, the mean signed error and how
// many results are more than 1 ULP off. Each function takes 5-25 s per
// target on 2 cores.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "core/simd/elementwise.h"
#include "hwy/targets.h"

namespace {

using lossservice::simd::ExpNonPositiveSpan;
using lossservice::simd::Point;
using lossservice::simd::PointArgs;
using lossservice::simd::PointOp;
using lossservice::simd::PointParams;

float FromBits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

uint32_t Bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

// A function of one float32 input, computed by one kernel: the input goes to
// x (map_x) with the target fixed at y, and the kernel's per-element loss is
// compared with truth(input).
struct Function {
  const char* name;
  const char* formula;
  PointOp op;
  float lo, hi;  // every float32 in [lo, hi], both >= 0
  float (*map_x)(float);
  float y;
  double (*truth)(double);
  double bound;               // --check: the largest error allowed, in ULP
  bool bounded_on_avx3_only;  // elsewhere ExpNonPositive gives 0 below 2^-126
  // When set, the kernel is this span function of x (op and y unused).
  void (*direct)(const float*, float*, int64_t) = nullptr;
};

const Function kFunctions[] = {
    // bce_with_logits at x = -t, y = 0: -y x + log1p(e^-|x|), the softplus
    // term that soft_margin and multilabel_soft_margin share.
    // Split where the result leaves float32's normal range (e^-87.33 >
    // 2^-126 > e^-87.34).
    {"softplus", "log1p(exp(-t)), bce_with_logits(-t, 0)", PointOp::kBceWithLogits, 0.0f, 87.33f,
     [](float t) { return -t; }, 0.0f, [](double t) { return std::log1p(std::exp(-t)); }, 2.0, false},
    {"softplus", "the same, subnormal results", PointOp::kBceWithLogits,
     std::nextafter(87.33f, 104.0f), 104.0f,
     [](float t) { return -t; }, 0.0f, [](double t) { return std::log1p(std::exp(-t)); }, 1.0,
     true},
    // bce at y = 0: -log1p(-x), x in [0, 1) (log(1 - x), clamped to -100 at 1).
    {"log1p", "-log1p(-x), bce(x, 0)", PointOp::kBce, 0.0f, 0.99999994f, [](float x) { return x; },
     0.0f, [](double x) { return -std::log1p(-x); }, 1.5, false},
    // bce at y = 1: -log(x), x in (0, 1], subnormals included; PyTorch's
    // clamp of the log at -100 makes it 100 below e^-100 (26 subnormals).
    {"log", "min(-log(x), 100), bce(x, 1)", PointOp::kBce, 1.4e-45f, 1.0f,
     [](float x) { return x; }, 1.0f, [](double x) { return std::min(-std::log(x), 100.0); }, 1.0,
     false},
    // poisson_nll (log_input) at y = 0: e^x, x in [-103, 88.7] in two runs.
    {"exp", "exp(-t), poisson_nll(-t, 0)", PointOp::kPoissonLog, 0.0f, 103.9f,
     [](float t) { return -t; }, 0.0f, [](double t) { return std::exp(-t); }, 1.05, false},
    {"exp", "exp(x), poisson_nll(x, 0)", PointOp::kPoissonLog, 0.0f, 88.7f,
     [](float x) { return x; }, 0.0f, [](double x) { return std::exp(x); }, 1.05, false},
    // The exp of cross_entropy's and softmax's exp pass (x - max <= 0) and
    // of bce_with_logits' gradient, split as softplus is.
    {"expneg", "exp(-t), the log-sum-exp exp", PointOp::kPoissonLog, 0.0f, 87.33f,
     [](float t) { return -t; }, 0.0f, [](double t) { return std::exp(-t); }, 1.05, false,
     ExpNonPositiveSpan},
    {"expneg", "the same, subnormal results", PointOp::kPoissonLog,
     std::nextafter(87.33f, 104.0f), 103.9f, [](float t) { return -t; }, 0.0f,
     [](double t) { return std::exp(-t); }, 1.0, true, ExpNonPositiveSpan},
};

struct Tally {
  uint64_t count = 0, over_one = 0;
  double max_ulp = 0, sum = 0;
  float worst = 0;

  void Merge(const Tally& o) {
    count += o.count;
    over_one += o.over_one;
    sum += o.sum;
    if (o.max_ulp > max_ulp) {
      max_ulp = o.max_ulp;
      worst = o.worst;
    }
  }
};

double Ulp(double v) {
  int e;
  std::frexp(v, &e);  // v in [2^(e-1), 2^e)
  return std::ldexp(1.0, std::max(e - 24, -149));
}

// Inputs with bit patterns begin, begin + stride, ... below end, in blocks
// through the kernel.
Tally Run(const Function& f, uint32_t begin, uint32_t end, uint32_t stride) {
  constexpr uint32_t kBlock = 1 << 16;
  std::vector<float> input(kBlock), x(kBlock), y(kBlock, f.y), loss(kBlock);
  Tally t;
  for (uint64_t b = begin; b < end;) {
    const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(kBlock, (end - b + stride - 1) / stride));
    for (uint32_t i = 0; i < n; ++i) {
      input[i] = FromBits(static_cast<uint32_t>(b + uint64_t{i} * stride));
      x[i] = f.map_x(input[i]);
    }
    PointArgs<float> a;
    a.n = n;
    a.x = x.data();
    a.y = y.data();
    a.loss = loss.data();
    if (f.direct != nullptr) {
      f.direct(x.data(), loss.data(), n);
    } else {
      Point(f.op, PointParams{}, a);
    }
    for (uint32_t i = 0; i < n; ++i) {
      const double want = f.truth(input[i]);
      const double err = (loss[i] - want) / Ulp(want);
      ++t.count;
      t.sum += err;
      if (!(std::fabs(err) <= 1)) ++t.over_one;
      if (!(std::fabs(err) <= t.max_ulp)) {
        t.max_ulp = std::isnan(err) ? INFINITY : std::fabs(err);
        t.worst = input[i];
      }
    }
    b += uint64_t{n} * stride;
  }
  return t;
}

Tally RunAll(const Function& f, uint32_t stride) {
  const uint32_t begin = Bits(f.lo), end = Bits(f.hi) + 1;
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<Tally> parts(threads);
  std::vector<std::thread> pool;
  // Each thread's share a multiple of the stride, so that together they
  // take every stride-th input.
  const uint32_t steps = (end - begin + stride - 1) / stride;
  const uint32_t share = (steps + threads - 1) / threads * stride;
  for (unsigned i = 0; i < threads; ++i) {
    const uint32_t b = begin + std::min(end - begin, i * share);
    const uint32_t e = begin + std::min(end - begin, (i + 1) * share);
    pool.emplace_back([&, i, b, e] { parts[i] = Run(f, b, e, stride); });
  }
  for (std::thread& th : pool) th.join();
  Tally all;
  for (const Tally& p : parts) all.Merge(p);
  return all;
}

}  // namespace

int main(int argc, char** argv) {
  bool all_targets = false, check = false;
  uint32_t stride = 1;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--targets=all") {
      all_targets = true;
    } else if (arg == "--check") {
      check = true;
    } else if (arg.rfind("--function=", 0) == 0) {
      only = arg.substr(11);
    } else if (arg.rfind("--stride=", 0) == 0 && std::atol(arg.c_str() + 9) > 0) {
      stride = static_cast<uint32_t>(std::atol(arg.c_str() + 9));
    } else {
      std::fprintf(stderr,
                   "usage: %s [--targets=all] [--function=softplus|log1p|log|exp|expneg] "
                   "[--stride=N] [--check]\n",
                   argv[0]);
      return 2;
    }
  }
  std::vector<int64_t> targets;
  if (all_targets) {
    targets = hwy::SupportedAndGeneratedTargets();
  } else {
    targets.push_back(hwy::SupportedAndGeneratedTargets().front());  // the best
  }
  std::printf("%-9s %-7s %-40s %11s %9s %-14s %9s %9s\n", "function", "target", "computed as",
              "inputs", "max ulp", "at", "mean ulp", "> 1 ulp");
  bool any = false;
  int over_bound = 0;
  for (int64_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    for (const Function& f : kFunctions) {
      if (!only.empty() && only != f.name) continue;
      any = true;
      const Tally t = RunAll(f, stride);
      const bool bounded = !f.bounded_on_avx3_only || target == HWY_AVX3;
      const bool over = check && bounded && !(t.max_ulp <= f.bound);
      over_bound += over;
      std::printf("%-9s %-7s %-40s %11llu %9.3f %-14.9g %9.5f %9llu%s\n", f.name,
                  hwy::TargetName(target), f.formula, static_cast<unsigned long long>(t.count),
                  t.max_ulp, t.worst, t.sum / static_cast<double>(t.count),
                  static_cast<unsigned long long>(t.over_one),
                  over ? "  ABOVE ITS BOUND" : "");
      std::fflush(stdout);
    }
  }
  hwy::SetSupportedTargetsForTest(0);
  if (!any) {
    std::fprintf(stderr, "no function named %s\n", only.c_str());
    return 2;
  }
  if (check) {
    std::printf("%d above their bound\n", over_bound);
  }
  return over_bound == 0 ? 0 : 1;
}
