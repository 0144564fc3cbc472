// The table of the AVX-512 exp of non-positive arguments (simd-inl.h,
// ExpNonPositive): 2^(j/16) for j = 0..15 as float pairs (hi + lo equals
// 2^(j/16) to 48 bits), computed in long double at start-up.
#ifndef LOSSSERVICE_CORE_SIMD_EXP_TABLE_H_
#define LOSSSERVICE_CORE_SIMD_EXP_TABLE_H_

#include <cmath>

namespace lossservice::simd {

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

#endif  // LOSSSERVICE_CORE_SIMD_EXP_TABLE_H_
