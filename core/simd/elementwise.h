// Vector kernels of the element-wise losses and activations, with runtime
// dispatch (the best of AVX-512, AVX2, SSE4 and EMU128 on the running CPU),
// each beside a scalar reference in plain C++ that the tests hold every
// compiled target to.
//
// A kernel works on one span of n elements; the caller splits a tensor into
// chunks and gathers broadcast or converted operands into spans first.
#ifndef LOSSSERVICE_CORE_SIMD_ELEMENTWISE_H_
#define LOSSSERVICE_CORE_SIMD_ELEMENTWISE_H_

#include <cstdint>

namespace lossservice::simd {

/// The element-wise losses. "double" marks those that evaluate float32 data
/// in double lanes, as the scalar code does, so that float32 results are
/// PyTorch's float64 results rounded once (where float32 arithmetic would
/// overflow early or cancel digits).
enum class PointOp : uint8_t {
  kMse,             ///< (x - y)^2;                  grad 2 (x - y)
  kL1,              ///< |x - y|;                    grad sign(x - y), sign(NaN) = 0
  kDiff,            ///< no loss;                    grad x - y (rmse's gradient)
  kHuber,           ///< a = delta
  kHuberWide,       ///< kHuber in double (a delta so large that d^2 / 2 may overflow float)
  kSmoothL1,        ///< a = beta (0 is L1's loss)
  kSmoothL1Wide,    ///< kSmoothL1 in double
  kBce,             ///< logs clamped at -100; grad (x - y) / max(x (1 - x), 1e-12f); w
  kBceWithLogits,   ///< PyTorch's stable form, its m = -x folded into -y x below 0; w, pw
  kKlDiv,           ///< double; xlogy(y, y) - y x, grad -y
  kKlDivLogTarget,  ///< double; e^y (y - x), grad -e^y
  kPoissonLog,      ///< e^x - y x, fused (double when full: + Stirling), grad e^x - y
  kPoisson,         ///< double; x - y log(x + a) (+ Stirling), grad 1 - y / (x + a)
  kGaussian,        ///< double; z = var, a = eps; (log v + (x - y)^2 / v) / 2 (+ log(2 pi) / 2)
  kSoftMargin,      ///< log1p(e^v), v = -y x, as softplus; inf (NaN grad) past float64's
                    ///< overflow of e^v, v > 709.78, as PyTorch's float64; grad -y sigmoid(v)
  kMultiLabelSoftMargin,  ///< -(y logsigmoid(x) + (1 - y) logsigmoid(-x)) (w: class weights);
                          ///< grad (1 - y) sigmoid(x) - y sigmoid(-x)
  kHingeEmbedding,  ///< double; a = margin; PyTorch's where() composition
  kMarginRanking,   ///< double; z = input2, a = margin; max(0, -y (x - z) + a)
};

struct PointParams {
  double a = 0;       ///< the op's parameter (see PointOp)
  bool full = false;  ///< poisson / gaussian: the constant terms
};

/// One span of an element-wise loss. Operands hold n values each, aligned
/// for T; absent ones are nullptr.
template <typename T>
struct PointArgs {
  int64_t n = 0;
  const T* x = nullptr;   ///< the input
  const T* y = nullptr;   ///< the target
  const T* z = nullptr;   ///< gaussian: var; margin_ranking: input2
  const T* w = nullptr;   ///< weight (multiplies loss and gradient)
  const T* pw = nullptr;  ///< bce_with_logits: pos_weight
  T* loss = nullptr;      ///< per-element loss (reduction none); nullptr: summed
  T* grad = nullptr;      ///< gradient times the upstream gradient; nullptr: none
  const T* go = nullptr;  ///< per-element upstream gradient; nullptr: grad_scale
  double grad_scale = 1;  ///< the uniform upstream gradient when go is nullptr
};

/// Runs `op` on the span; returns the sum of the element losses when
/// args.loss is nullptr (else 0), summed as Summer does.
double Point(PointOp op, const PointParams& p, const PointArgs<float>& args);
double Point(PointOp op, const PointParams& p, const PointArgs<double>& args);
/// The scalar reference: the same formulas with <cmath>, one element at a
/// time, summed in double in index order.
double PointReference(PointOp op, const PointParams& p, const PointArgs<float>& args);
double PointReference(PointOp op, const PointParams& p, const PointArgs<double>& args);

/// Element-wise activations.
enum class UnaryOp : uint8_t {
  kSigmoid,     ///< 1 / (1 + e^-x)
  kLogit,       ///< log(x / (1 - x))
  kLogitClamp,  ///< log(p / (1 - p)), p = x clamped to [a, 1 - a]
};

void Unary(UnaryOp op, double a, const float* x, float* y, int64_t n);
void Unary(UnaryOp op, double a, const double* x, double* y, int64_t n);
void UnaryReference(UnaryOp op, double a, const float* x, float* y, int64_t n);
void UnaryReference(UnaryOp op, double a, const double* x, double* y, int64_t n);

/// The index of the first of the n values outside [lo, hi] (a NaN is
/// outside unless `nan_inside`), or n when there is none. For the domain
/// checks of bce and gaussian_nll.
int64_t FindOutside(const float* x, int64_t n, double lo, double hi, bool nan_inside);
int64_t FindOutside(const double* x, int64_t n, double lo, double hi, bool nan_inside);

/// y = e^x for x <= 0 (or NaN), by the exp that cross_entropy's and
/// softmax's exp pass and bce_with_logits' gradient use (ExpNonPositive),
/// so that bench/ulp_core can measure it on every float32 input.
void ExpNonPositiveSpan(const float* x, float* y, int64_t n);

/// The Highway target (HWY_AVX3, HWY_AVX2, ...) that the kernels dispatch to
/// on this CPU now (tests change it with hwy::SetSupportedTargetsForTest).
int64_t DispatchedTarget();

}  // namespace lossservice::simd

#endif  // LOSSSERVICE_CORE_SIMD_ELEMENTWISE_H_
