// The table of the AVX-512 logarithm on [1, 2] (simd-inl.h's Log1pUnit):
// y in [1 + i / 16, 1 + (i + 1) / 16) is written y = c (1 + r) with
// 1 / c = invc[16 + i], so that log(y) = -log(invc) + log1p(r), |r| <= 1/16;
// y = 2 has entry 0. The interval next to 1 has c = 1 (r = y - 1 exactly,
// so small logarithms keep their relative accuracy); the others are centred.
// -log(invc) is computed in double and kept as a float pair (hi + lo), so
// no interval carries the bias of a rounded constant.
#ifndef LOSSSERVICE_CORE_SIMD_LOG_TABLE_H_
#define LOSSSERVICE_CORE_SIMD_LOG_TABLE_H_

#include <cmath>

namespace lossservice::simd {

struct UnitLogTable {
  alignas(64) float invc[32];
  alignas(64) float log_hi[32];
  alignas(64) float log_lo[32];
};

inline UnitLogTable MakeUnitLogTable() {
  UnitLogTable t{};
  t.invc[0] = 0.5f;  // y = 2: the exponent field's carry lands on index 0
  for (int i = 0; i < 16; ++i) {
    const double c = i == 0 ? 1.0 : 1.0 + (i + 0.5) / 16;
    t.invc[16 + i] = static_cast<float>(1.0 / c);
  }
  for (int i = 0; i < 32; ++i) {
    if (t.invc[i] == 0) continue;  // indices 1-15 are never formed
    const double log_c = -std::log(static_cast<double>(t.invc[i]));
    t.log_hi[i] = static_cast<float>(log_c);
    t.log_lo[i] = static_cast<float>(log_c - t.log_hi[i]);
  }
  return t;
}

inline const UnitLogTable kUnitLogTable = MakeUnitLogTable();

}  // namespace lossservice::simd

#endif  // LOSSSERVICE_CORE_SIMD_LOG_TABLE_H_
