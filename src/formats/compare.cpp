#include "sta/compare.hpp"

#include <algorithm>
#include <cmath>

namespace sta {

double element_error(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b) ? 0.0 : INFINITY;
  if (std::isinf(a) || std::isinf(b)) return a == b ? 0.0 : INFINITY;
  return std::fabs(a - b);
}

bool out_of_tolerance(double e, double b, double atol, double rtol) {
  return e != 0.0 && (std::isinf(e) || !(e <= atol + rtol * std::fabs(b)));
}

ArrayDiff diff_arrays(const float* a, const float* b, int64_t n, double atol, double rtol) {
  ArrayDiff d;
  for (int64_t i = 0; i < n; ++i) {
    const double x = a[i], y = b[i];
    const double e = element_error(x, y);
    if (d.worst < 0 || e > d.max_abs) {
      d.worst = i;
      d.max_abs = e;
    }
    const double rel = e == 0.0 ? 0.0 : (y != 0.0 && std::isfinite(y) ? e / std::fabs(y) : INFINITY);
    d.max_rel = std::max(d.max_rel, rel);
    if (out_of_tolerance(e, y, atol, rtol)) {
      ++d.out_of_tolerance;
      if (std::isinf(e)) ++d.nonfinite_mismatches;
    }
  }
  return d;
}

}  // namespace sta
