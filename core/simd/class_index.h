// Vector kernels over class-index targets, shared by nll and cross_entropy:
// the check's scan of the targets and nll's forward gather. Each has a
// scalar reference beside it.
//
// Both were serial loops bound by the latency of one double addition per
// sample (a sum of weights or of losses); in vector lanes they are bound by
// the loads instead.
#ifndef LOSSSERVICE_CORE_SIMD_CLASS_INDEX_H_
#define LOSSSERVICE_CORE_SIMD_CLASS_INDEX_H_

#include <cstdint>

namespace lossservice::simd {

/// What a scan of class-index targets found.
struct IndexScan {
  int64_t first_bad = 0;  ///< the first position that is neither ignore_index nor in [0, C); count if none
  int64_t kept = 0;       ///< positions before first_bad whose value is not ignore_index
};

/// Scans `count` targets for values that are neither `ignore_index` nor in
/// [0, classes).
IndexScan ScanClassIndices(const int64_t* target, int64_t count, int64_t classes,
                           int64_t ignore_index);
IndexScan ScanClassIndices(const int32_t* target, int64_t count, int64_t classes,
                           int64_t ignore_index);
IndexScan ScanClassIndicesReference(const int64_t* target, int64_t count, int64_t classes,
                                    int64_t ignore_index);
IndexScan ScanClassIndicesReference(const int32_t* target, int64_t count, int64_t classes,
                                    int64_t ignore_index);

/// nll's forward over a span of samples, layouts as in softmax.h: `stride`
/// == 1: sample i's classes at x + i * C; `stride` == S > 1: class c of
/// sample i at x + c * S + i.
template <typename T>
struct NllArgs {
  int64_t count = 0;
  int64_t classes = 0;
  int64_t stride = 1;
  const T* x = nullptr;             ///< log-probabilities
  const int64_t* target = nullptr;  ///< count indices in [0, C) or ignore_index
  int64_t ignore_index = -100;
  const T* weight = nullptr;        ///< C class weights; nullptr: all 1
};

/// The sum over the samples not ignored of -w_t x_t (the product in T, as
/// PyTorch forms it, summed in double).
double NllSum(const NllArgs<float>& a);
double NllSum(const NllArgs<double>& a);
double NllSumReference(const NllArgs<float>& a);
double NllSumReference(const NllArgs<double>& a);

}  // namespace lossservice::simd

#endif  // LOSSSERVICE_CORE_SIMD_CLASS_INDEX_H_
