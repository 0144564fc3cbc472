// Vector kernels of the softmax family, fused: cross_entropy with class
// indices or class probabilities, softmax and log_softmax. Per sample: one
// pass for the max, one pass of exp that yields the log-sum-exp (and, with
// the gradient, stores the exps in the gradient buffer), and one pass that
// scales them in place; no log-softmax tensor is written. Each kernel has a
// scalar reference beside it (PyTorch's arithmetic with <cmath>).
//
// Layouts: `stride` == 1: sample i's C classes are contiguous at x + i * C
// (vector lanes over classes). `stride` == S > 1: the span lies in one block
// of a (N, C, d1, ...) tensor, class c of sample i at x + c * S + i (vector
// lanes over consecutive samples).
#ifndef LOSSSERVICE_CORE_SIMD_SOFTMAX_H_
#define LOSSSERVICE_CORE_SIMD_SOFTMAX_H_

#include <cstdint>

namespace lossservice::simd {

/// cross_entropy with class-index targets over a span of samples.
template <typename T>
struct ClassIndexArgs {
  int64_t count = 0;          ///< samples
  int64_t classes = 0;        ///< C > 0
  int64_t stride = 1;         ///< see the layouts above
  const T* x = nullptr;       ///< logits
  T* grad = nullptr;          ///< x's layout; nullptr: no gradient
  const int64_t* target = nullptr;  ///< count indices in [0, C) or ignore_index
  int64_t ignore_index = -100;
  const T* weight = nullptr;  ///< C class weights; nullptr: all 1
  double weight_total = 0;    ///< sum of the C class weights (C without a weight)
  double label_smoothing = 0;
  const T* go = nullptr;      ///< per-sample upstream gradient; nullptr: grad_scale
  double grad_scale = 1;
  T* loss = nullptr;          ///< per-sample loss; nullptr: summed into ClassSums
};

/// Sums over a span's samples not ignored: of w_t * -log p_t, and of the
/// smoothing term -sum_c w_c log p_c.
struct ClassSums {
  double nll = 0;
  double smooth = 0;
  ClassSums& operator+=(const ClassSums& o) {
    nll += o.nll;
    smooth += o.smooth;
    return *this;
  }
};

ClassSums CrossEntropyIndex(const ClassIndexArgs<float>& a);
ClassSums CrossEntropyIndex(const ClassIndexArgs<double>& a);
ClassSums CrossEntropyIndexReference(const ClassIndexArgs<float>& a);
ClassSums CrossEntropyIndexReference(const ClassIndexArgs<double>& a);

/// cross_entropy with class-probability targets over a span of samples.
template <typename T>
struct ClassProbArgs {
  int64_t count = 0;
  int64_t classes = 0;
  int64_t stride = 1;
  const T* x = nullptr;
  T* grad = nullptr;
  const T* target = nullptr;  ///< probabilities, x's layout
  const T* weight = nullptr;  ///< C class weights; nullptr: all 1
  double label_smoothing = 0;
  const T* go = nullptr;
  double grad_scale = 1;
  T* loss = nullptr;          ///< per-sample loss; nullptr: summed, and returned
};

double CrossEntropyProb(const ClassProbArgs<float>& a);
double CrossEntropyProb(const ClassProbArgs<double>& a);
double CrossEntropyProbReference(const ClassProbArgs<float>& a);
double CrossEntropyProbReference(const ClassProbArgs<double>& a);

/// softmax (exp(x - max) / sum) or log_softmax ((x - max) - log(sum)) of
/// `count` samples of `classes` values into y (x's layout).
void Softmax(bool log, int64_t count, int64_t classes, int64_t stride, const float* x, float* y);
void Softmax(bool log, int64_t count, int64_t classes, int64_t stride, const double* x, double* y);
void SoftmaxReference(bool log, int64_t count, int64_t classes, int64_t stride, const float* x,
                      float* y);
void SoftmaxReference(bool log, int64_t count, int64_t classes, int64_t stride, const double* x,
                      double* y);

}  // namespace lossservice::simd

#endif  // LOSSSERVICE_CORE_SIMD_SOFTMAX_H_
