#pragma once
// The vector kernel of the fast attention paths: the online (flash) softmax update of one
// block of scores. Compiled once per instruction set (softmax_scalar.cpp, softmax_avx2.cpp,
// softmax_avx512.cpp from the body in softmax-inl.hpp); dispatch.cpp picks one at run time.
#include <cstdint>

namespace sta::simd {

/// Online softmax update (FlashAttention-2, Dao 2023, Algorithm 1) of a block of raw scores.
/// `scores` holds `rows` rows of `cols` unscaled scores s = <q, k>, row stride `ld` floats;
/// masked entries are -inf. `row_max[r]` is the running max of scale*s over the keys seen so
/// far (-inf before the first block) and `row_sum[r]` the running sum of exp(scale*s - max).
/// On return: scores hold p = exp(scale*s - new_max) (0 where masked), row_max and row_sum
/// are updated, and `alpha[r] = exp(old_max - new_max)` is the factor the caller applies to
/// its output accumulator before adding p V (alpha = 1 when the max did not change). A row
/// with no finite score so far keeps max = -inf, sum = 0, p = 0, alpha = 1. `scale` > 0.
/// Results depend only on the inputs (fixed summation order), never on the thread.
using OnlineSoftmaxFn = void (*)(float* scores, int64_t ld, int64_t rows, int64_t cols,
                                 float scale, float* row_max, float* row_sum, float* alpha);

/// The same update for the bf16 precision mode (SPEC 6): the row sum takes the unrounded p,
/// then p is rounded to bf16 (nearest even) and written as bf16 bits to `p_out` (row stride
/// `ldp` values; scores are left unspecified), or, if p_out is null, written back into
/// `scores` as the floats those bf16 values represent (the emulation on fp32 GEMMs).
using OnlineSoftmaxBf16Fn = void (*)(float* scores, int64_t ld, int64_t rows, int64_t cols,
                                     float scale, float* row_max, float* row_sum, float* alpha,
                                     uint16_t* p_out, int64_t ldp);

void online_softmax_scalar(float* scores, int64_t ld, int64_t rows, int64_t cols, float scale,
                           float* row_max, float* row_sum, float* alpha);
void online_softmax_avx2(float* scores, int64_t ld, int64_t rows, int64_t cols, float scale,
                         float* row_max, float* row_sum, float* alpha);
void online_softmax_avx512(float* scores, int64_t ld, int64_t rows, int64_t cols, float scale,
                           float* row_max, float* row_sum, float* alpha);

void online_softmax_bf16_scalar(float* scores, int64_t ld, int64_t rows, int64_t cols,
                                float scale, float* row_max, float* row_sum, float* alpha,
                                uint16_t* p_out, int64_t ldp);
void online_softmax_bf16_avx2(float* scores, int64_t ld, int64_t rows, int64_t cols,
                              float scale, float* row_max, float* row_sum, float* alpha,
                              uint16_t* p_out, int64_t ldp);
void online_softmax_bf16_avx512(float* scores, int64_t ld, int64_t rows, int64_t cols,
                                float scale, float* row_max, float* row_sum, float* alpha,
                                uint16_t* p_out, int64_t ldp);
/// AVX-512 with AVX512-BF16 (P rounded by vcvtneps2bf16); chosen with kAvx512 where usable.
void online_softmax_bf16_avx512bf16(float* scores, int64_t ld, int64_t rows, int64_t cols,
                                    float scale, float* row_max, float* row_sum, float* alpha,
                                    uint16_t* p_out, int64_t ldp);

/// Instruction sets with a compiled kernel, best last.
enum class Isa { kScalar, kAvx2, kAvx512 };
const char* isa_name(Isa isa);
/// True if this CPU (and OS) can run the kernels compiled for `isa`.
bool isa_supported(Isa isa);

/// The kernels of one instruction set.
struct SoftmaxKernels {
  Isa isa;
  OnlineSoftmaxFn online_softmax;
  OnlineSoftmaxBf16Fn online_softmax_bf16;
};
/// Kernels of `isa` (which must be supported).
SoftmaxKernels softmax_kernels_for(Isa isa);
/// The kernels chosen once per process: the best supported instruction set, or the one named
/// by the environment variable STA_ISA ("scalar", "avx2", "avx512") if this CPU supports it
/// (for testing the fallbacks on a bigger machine).
const SoftmaxKernels& softmax_kernels();

}  // namespace sta::simd
