// The table of the AVX-512 softplus term log1p(e^-t), t >= 0 (simd-inl.h,
// Log1pExpNeg), evaluated without an exp or a log:
// t = n log(2) + s with n = round(t / log(2)), |s| <= log(2) / 2, and
// log1p(e^-t) = 2^-n g_n(s), g_n(s) = 2^n log1p(2^-n e^-s), which is smooth
// and between 0.69 and 1.42 on each interval. Entry n (n = 0..31; n > 31
// uses entry 31, whose g differs from theirs by a relative 2^-32) holds g_n
// as a degree-6 polynomial in s, its constant term as a float pair.
//
// The coefficients are fitted here, in long double, by least squares of the
// relative error over each interval; each is rounded to float in turn
// (c1 first) and the ones after it refitted to the rounded ones, with c0
// refitted at every step, so that the rounding leaves no bias.
#ifndef LOSSSERVICE_CORE_SIMD_SOFTPLUS_TABLE_H_
#define LOSSSERVICE_CORE_SIMD_SOFTPLUS_TABLE_H_

#include <cmath>
#include <utility>

namespace lossservice::simd {

inline constexpr int kSoftplusDegree = 6;

struct SoftplusTable {
  // c[0]: c0's high part; c[1..6]: c1..c6; c[7]: c0's low part.
  alignas(64) float c[kSoftplusDegree + 2][32];
};

namespace softplus_fit {

using Real = long double;
inline constexpr int kTerms = kSoftplusDegree + 1;
inline constexpr Real kLn2 = 0.693147180559945309417232121458176568L;

// Solves a (m x m, row-major, m <= kTerms) x = b by Gaussian elimination
// with partial pivoting; b becomes x.
inline void Solve(Real (&a)[kTerms][kTerms], Real (&b)[kTerms], int m) {
  for (int col = 0; col < m; ++col) {
    int pivot = col;
    for (int r = col + 1; r < m; ++r) {
      if (std::fabs(a[r][col]) > std::fabs(a[pivot][col])) pivot = r;
    }
    for (int k = 0; k < m; ++k) std::swap(a[col][k], a[pivot][k]);
    std::swap(b[col], b[pivot]);
    for (int r = col + 1; r < m; ++r) {
      const Real f = a[r][col] / a[col][col];
      for (int k = col; k < m; ++k) a[r][k] -= f * a[col][k];
      b[r] -= f * b[col];
    }
  }
  for (int r = m - 1; r >= 0; --r) {
    for (int k = r + 1; k < m; ++k) b[r] -= a[r][k] * b[k];
    b[r] /= a[r][r];
  }
}

// Fills entry n: g_n on [lo, h] (in u = s / h, so that the normal equations
// are well scaled), sampled at kPoints midpoints.
inline void FitEntry(SoftplusTable& t, int n, Real lo, Real h) {
  constexpr int kPoints = 512;
  // moment[j] = sum of w u^j, rhs[j] = sum of w g u^j, with w = 1 / g^2.
  Real moment[2 * kTerms - 1] = {};
  Real rhs[kTerms] = {};
  for (int i = 0; i < kPoints; ++i) {
    const Real s = lo + (h - lo) * (i + 0.5L) / kPoints;
    const Real g = std::ldexp(std::log1p(std::exp(-(n * kLn2 + s))), n);
    const Real u = s / h;
    Real w = 1 / (g * g);
    for (int j = 0; j < 2 * kTerms - 1; ++j, w *= u) {
      moment[j] += w;
      if (j < kTerms) rhs[j] += w * g;
    }
  }
  Real cu[kTerms] = {};  // coefficients in u; cu[k] = c_k h^k
  float rounded[kTerms] = {};
  for (int first = 1; first <= kTerms; ++first) {
    // Unknowns: c0 and c_first..c6; c1..c_(first-1) are rounded already.
    int free[kTerms];
    int m = 0;
    free[m++] = 0;
    for (int k = first; k < kTerms; ++k) free[m++] = k;
    Real a[kTerms][kTerms], b[kTerms];
    for (int r = 0; r < m; ++r) {
      b[r] = rhs[free[r]];
      for (int k = 1; k < first; ++k) b[r] -= moment[free[r] + k] * cu[k];
      for (int c = 0; c < m; ++c) a[r][c] = moment[free[r] + free[c]];
    }
    Solve(a, b, m);
    for (int r = 0; r < m; ++r) cu[free[r]] = b[r];
    if (first < kTerms) {
      const Real scale = std::pow(h, static_cast<Real>(first));
      rounded[first] = static_cast<float>(cu[first] / scale);
      cu[first] = rounded[first] * scale;
    }
  }
  t.c[0][n] = static_cast<float>(cu[0]);
  t.c[kTerms][n] = static_cast<float>(cu[0] - t.c[0][n]);
  for (int k = 1; k < kTerms; ++k) t.c[k][n] = rounded[k];
}

}  // namespace softplus_fit

inline SoftplusTable MakeSoftplusTable() {
  SoftplusTable t{};
  // Half of log(2), widened for n = round(t log2(e)) computed in float.
  const softplus_fit::Real h = softplus_fit::kLn2 / 2 + 1e-5L;
  for (int n = 0; n < 32; ++n) softplus_fit::FitEntry(t, n, n == 0 ? 0 : -h, h);
  return t;
}

inline const SoftplusTable kSoftplusTable = MakeSoftplusTable();

}  // namespace lossservice::simd

#endif  // LOSSSERVICE_CORE_SIMD_SOFTPLUS_TABLE_H_
