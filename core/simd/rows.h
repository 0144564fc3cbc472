// Vector kernels of the row-wise margin and embedding losses (rows of the
// input's last dimension, contiguous): cosine_embedding's dot products,
// triplet_margin's 1- and 2-norms, multi_margin and multilabel_margin. Each
// computes in double lanes (float32 data promoted), as the scalar code did,
// so that comparisons with 0 decide as PyTorch's float64 reference does; each
// has a scalar reference beside it.
#ifndef LOSSSERVICE_CORE_SIMD_ROWS_H_
#define LOSSSERVICE_CORE_SIMD_ROWS_H_

#include <cstdint>

namespace lossservice::simd {

/// Per row i of `count` rows of `length` values: sum a b, sum a^2, sum b^2.
void RowDots(const float* a, const float* b, int64_t length, int64_t count, double* ab,
             double* aa, double* bb);
void RowDots(const double* a, const double* b, int64_t length, int64_t count, double* ab,
             double* aa, double* bb);
void RowDotsReference(const float* a, const float* b, int64_t length, int64_t count, double* ab,
                      double* aa, double* bb);
void RowDotsReference(const double* a, const double* b, int64_t length, int64_t count,
                      double* ab, double* aa, double* bb);

/// out = b * cb[i] - a * ca[i] per row i (cosine_embedding's gradient).
void RowCombine(const float* a, const float* b, int64_t length, int64_t count, const double* ca,
                const double* cb, float* out);
void RowCombine(const double* a, const double* b, int64_t length, int64_t count,
                const double* ca, const double* cb, double* out);
void RowCombineReference(const float* a, const float* b, int64_t length, int64_t count,
                         const double* ca, const double* cb, float* out);
void RowCombineReference(const double* a, const double* b, int64_t length, int64_t count,
                         const double* ca, const double* cb, double* out);

/// Per row: sum |a - b + eps| (p = 1) or sum (a - b + eps)^2 (p = 2).
void RowNormPower(int p, const float* a, const float* b, double eps, int64_t length,
                  int64_t count, double* out);
void RowNormPower(int p, const double* a, const double* b, double eps, int64_t length,
                  int64_t count, double* out);
void RowNormPowerReference(int p, const float* a, const float* b, double eps, int64_t length,
                           int64_t count, double* out);
void RowNormPowerReference(int p, const double* a, const double* b, double eps, int64_t length,
                           int64_t count, double* out);

/// triplet_margin's norms in one pass: per row, RowNormPower of (a, pos)
/// and (a, neg) into npos and nneg, and of (pos, neg) into nswap when not
/// nullptr.
void TripletNorms(int p, const float* a, const float* pos, const float* neg, double eps,
                  int64_t length, int64_t count, double* npos, double* nneg, double* nswap);
void TripletNorms(int p, const double* a, const double* pos, const double* neg, double eps,
                  int64_t length, int64_t count, double* npos, double* nneg, double* nswap);

/// triplet_margin's gradient for p = 1 or 2, per row i, with d1 = a - pos +
/// eps and d2 = a - neg + eps: p = 2: d1 c1[i] + d2 c2[i]; p = 1:
/// sign(d1) c1[i] + sign(d2) c2[i] (sign(NaN) = 0).
void TripletGrad(int p, const float* a, const float* pos, const float* neg, double eps,
                 int64_t length, int64_t count, const double* c1, const double* c2, float* out);
void TripletGrad(int p, const double* a, const double* pos, const double* neg, double eps,
                 int64_t length, int64_t count, const double* c1, const double* c2, double* out);
void TripletGradReference(int p, const float* a, const float* pos, const float* neg, double eps,
                          int64_t length, int64_t count, const double* c1, const double* c2,
                          float* out);
void TripletGradReference(int p, const double* a, const double* pos, const double* neg,
                          double eps, int64_t length, int64_t count, const double* c1,
                          const double* c2, double* out);

/// multi_margin over `count` rows of C scores: per row, with y = target[i],
/// z_c = margin - x_y + x_c for c != y, loss[i] = sum_{z_c > 0} z_c^p w_y
/// (not yet divided by C) and, when grad, grad_c = (p == 2 ? 2 z_c : 1) g[i]
/// for z_c > 0 (else 0), grad_y = -sum of those.
template <typename T>
struct MultiMarginArgs {
  int64_t count = 0;
  int64_t classes = 0;
  const T* x = nullptr;
  const int64_t* target = nullptr;  ///< in [0, C)
  const T* weight = nullptr;        ///< C class weights (w_y); nullptr: 1
  double margin = 1;
  bool square = false;              ///< p = 2
  const double* g = nullptr;        ///< per-row gradient factor (upstream w_y / C)
  double* loss = nullptr;           ///< per row
  T* grad = nullptr;                ///< nullptr: none
};
void MultiMargin(const MultiMarginArgs<float>& a);
void MultiMargin(const MultiMarginArgs<double>& a);
void MultiMarginReference(const MultiMarginArgs<float>& a);
void MultiMarginReference(const MultiMarginArgs<double>& a);

/// multilabel_margin of one row of C scores with its `labels` (count
/// `num_labels`, each in [0, C)) and is_label[c] (1 for a label, else 0):
/// returns sum over labels j and non-labels c of max(0, 1 - x_j + x_c)
/// (terms > 0 only), and, when grad, grad_c = g * hits_c where hits_c counts
/// the active terms c enters (+1 as a non-label, -1 per term as the label).
/// `hits` is scratch of C doubles.
void MultiLabelMarginRow(const float* x, int64_t C, const int64_t* labels, int64_t num_labels,
                         const double* is_label, double g, double* hits, float* grad,
                         double* loss);
void MultiLabelMarginRow(const double* x, int64_t C, const int64_t* labels, int64_t num_labels,
                         const double* is_label, double g, double* hits, double* grad,
                         double* loss);
void MultiLabelMarginRowReference(const float* x, int64_t C, const int64_t* labels,
                                  int64_t num_labels, const double* is_label, double g,
                                  double* hits, float* grad, double* loss);
void MultiLabelMarginRowReference(const double* x, int64_t C, const int64_t* labels,
                                  int64_t num_labels, const double* is_label, double g,
                                  double* hits, double* grad, double* loss);

/// ctc's recursion step over n states, in PyTorch's CPU kernel's log-sum-exp
/// (relative to the largest term, which contributes exactly 1; -inf terms 0;
/// a largest term of -inf taken as 0 unless all are -inf; +inf gives NaN):
/// out[s] = LSE(a[s], b[s], allow_c[s] != 0 ? c[s] : -inf) + add[s].
void CtcLogSumExp3(const double* a, const double* b, const double* c, const double* allow_c,
                   const double* add, int64_t n, double* out);
void CtcLogSumExp3Reference(const double* a, const double* b, const double* c,
                            const double* allow_c, const double* add, int64_t n, double* out);

/// sum_i exp(v[i] - m) for n values (n > 0), m finite.
double SumExpRelative(const double* v, int64_t n, double m);
double SumExpRelativeReference(const double* v, int64_t n, double m);

/// ctc's gradient row of one frame: g[c] = (exp(lp[c]) - exp(acc[c] + nll -
/// lp[c])) * scale for c < C (acc[c] = -inf for classes no state has).
void CtcGradRow(const float* lp, const double* acc, int64_t C, double nll, double scale,
                float* g);
void CtcGradRow(const double* lp, const double* acc, int64_t C, double nll, double scale,
                double* g);
void CtcGradRowReference(const float* lp, const double* acc, int64_t C, double nll, double scale,
                         float* g);
void CtcGradRowReference(const double* lp, const double* acc, int64_t C, double nll,
                         double scale, double* g);

}  // namespace lossservice::simd

#endif  // LOSSSERVICE_CORE_SIMD_ROWS_H_
