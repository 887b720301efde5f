#pragma once
// Element-wise agreement of two arrays: the rules of `sta compare` (SPEC section 7), shared by
// every tool that judges outputs against golden or recomputed ones.
#include <cstdint>

namespace sta {

/// |a - b|, except: NaN vs NaN and equal infinities agree (0); NaN vs a number, or an
/// infinity vs anything else, is +inf.
double element_error(double a, double b);

/// Whether an element with error `e` = element_error(a, b) is out of tolerance:
/// e > atol + rtol * |b|. A non-finite error is always out (rtol * |inf| excuses nothing).
bool out_of_tolerance(double e, double b, double atol, double rtol);

/// Summary of element_error over two arrays of `n` floats (`b` is the reference).
struct ArrayDiff {
  double max_abs = 0.0;              ///< largest element error (+inf for a NaN/inf mismatch)
  double max_rel = 0.0;              ///< largest error / |b| (inf where b == 0 and a != b)
  int64_t worst = -1;                ///< flat index of the first element with max_abs; -1 if n = 0
  int64_t out_of_tolerance = 0;      ///< elements out of tolerance
  int64_t nonfinite_mismatches = 0;  ///< of which NaN/inf mismatches
};
ArrayDiff diff_arrays(const float* a, const float* b, int64_t n, double atol, double rtol);

}  // namespace sta
