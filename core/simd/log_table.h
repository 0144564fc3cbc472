// The tables of the AVX-512 logarithms and exp (simd-inl.h). The one on [1, 2]
// (Log1pUnit):
// y in [1 + i / 16, 1 + (i + 1) / 16) is written y = c (1 + r) with
// 1 / c = invc[16 + i], so that log(y) = -log(invc) + log1p(r), |r| <= 1/16;
// y = 2 has entry 0. The interval next to 1 has c = 1 (r = y - 1 exactly,
// so small logarithms keep their relative accuracy); the others are centred.
// -log(invc) is computed in double and kept as a float pair (hi + lo), so
// no interval carries the bias of a rounded constant.
//
// The general one (LogPositive) splits x = m 2^e with m in [0.75, 1.5)
// (vgetmantps): m's exponent bit and next four bits index 16 intervals of
// width 1/64 on [0.75, 1) (entries 16-31) and 16 of width 1/32 on [1, 1.5)
// (entries 0-15); the two next to 1 have c = 1, |r| <= 1/32.
//
// The exp of non-positive arguments (ExpNonPositive): 2^(j/16) for j = 0..15
// as float pairs (hi + lo equals 2^(j/16) to 48 bits), from long double.
#ifndef LOSSSERVICE_CORE_SIMD_LOG_TABLE_H_
#define LOSSSERVICE_CORE_SIMD_LOG_TABLE_H_

#include <cmath>

namespace lossservice::simd {

struct LogTable {
  alignas(64) float invc[32];
  alignas(64) float log_hi[32];
  alignas(64) float log_lo[32];
};

// -log(invc) of each entry, as hi + lo.
inline void FillLogs(LogTable& t) {
  for (int i = 0; i < 32; ++i) {
    if (t.invc[i] == 0) continue;  // an index that is never formed
    const double log_c = -std::log(static_cast<double>(t.invc[i]));
    t.log_hi[i] = static_cast<float>(log_c);
    t.log_lo[i] = static_cast<float>(log_c - t.log_hi[i]);
  }
}

inline LogTable MakeUnitLogTable() {
  LogTable t{};
  t.invc[0] = 0.5f;  // y = 2: the exponent field's carry lands on index 0
  for (int i = 0; i < 16; ++i) {
    const double c = i == 0 ? 1.0 : 1.0 + (i + 0.5) / 16;
    t.invc[16 + i] = static_cast<float>(1.0 / c);
  }
  FillLogs(t);  // indices 1-15 stay 0
  return t;
}

inline LogTable MakeLogTable() {
  LogTable t{};
  for (int i = 0; i < 32; ++i) {
    const double c = i == 0 || i == 31 ? 1.0
                     : i >= 16         ? 0.75 + (i - 16 + 0.5) / 64
                                       : 1.0 + (i + 0.5) / 32;
    t.invc[i] = static_cast<float>(1.0 / c);
  }
  FillLogs(t);
  return t;
}

inline const LogTable kUnitLogTable = MakeUnitLogTable();
inline const LogTable kLogTable = MakeLogTable();

struct Exp2Table {
  alignas(64) float hi[16];
  alignas(64) float lo[16];
};

inline Exp2Table MakeExp2Table() {
  Exp2Table t{};
  for (int j = 0; j < 16; ++j) {
    const long double v = std::exp2(static_cast<long double>(j) / 16);
    t.hi[j] = static_cast<float>(v);
    t.lo[j] = static_cast<float>(v - static_cast<long double>(t.hi[j]));
  }
  return t;
}

inline const Exp2Table kExp2Table = MakeExp2Table();

}  // namespace lossservice::simd

#endif  // LOSSSERVICE_CORE_SIMD_LOG_TABLE_H_
