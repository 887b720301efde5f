// Timing and usability checks of the bf16 peak probes (baseline flags: the instruction loops
// live in probe_bf16_avx512bf16.cpp and probe_bf16_amx.cpp, called only where usable).
#include "probe_bf16.hpp"

#include <time.h>

#include <algorithm>

#include "gemm.hpp"

namespace sta::simd {
namespace {

/// CPU time of the calling thread: the machine may be shared, and wall time would count the
/// time other programs hold this core.
double thread_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

/// Best GFLOP/s of `loop` over a few runs of at least `seconds` each (the first runs also
/// size the iteration count and warm the unit up: AVX-512 and AMX clocks settle first).
double best_rate(double (*loop)(long), double seconds) {
  long iters = 1024;
  double best = 0.0;
  for (int run = 0; run < 4;) {
    const double t0 = thread_seconds();
    const double flops = loop(iters);
    const double dt = thread_seconds() - t0;
    if (dt < seconds) {
      iters *= 2;
      continue;
    }
    best = std::max(best, flops / dt * 1e-9);
    ++run;
  }
  return best;
}

}  // namespace

double probe_avx512bf16_gflops(double seconds) {
  if (find_gemm_kernels("avx512bf16-bf16") == nullptr) return 0.0;
  return best_rate(detail::dpbf16_loop, seconds);
}

double probe_amx_bf16_gflops(double seconds) {
  if (find_gemm_kernels("amx-bf16") == nullptr) return 0.0;  // also requests the permission
  return best_rate(detail::tdpbf16_loop, seconds);
}

}  // namespace sta::simd
