// FlashAttention-2's backward (Dao 2023, Algorithm 2) over tiles. One task = one query block
// (a video query tile, or 384 rows of it, or 384 text rows against a run of key blocks); it
// walks its key blocks in a fixed order and, per block in steps of kKeyChunk keys
// (compute_step and apply_step, on the packed-panel fp32 families):
//   P  = exp(scale Q K^T - lse)     simd/grad.hpp probs_qk: a qk GEMM (K packed as K) with
//                                   the exp in its epilogue; masked and padding keys -> 0
//   dS = scale P (dO V^T - Delta)   simd/grad.hpp grad_scores_qk (V packed as K; Delta_i =
//                                   <dO_i, O_i>, once per task)
//   dQ += dS K                      the family's pv (K packed as V) into the task's own rows
//                                   (text tasks: into a partial, summed at the end)
//   dV += P^T dO, dK += dS^T Q      simd/grad.hpp add_transposed_pv (dO, Q packed as V),
//                                   reading P and dS as stored: no transpose
// Five GEMMs per block, each block once (FlashAttention-2's 2.5x the forward's FLOPs); S and
// dP never go to memory. bf16 mode (SPEC 8, rounded where FlashAttention-2's bf16 kernels
// round) on these fp32 kernels: dS unscaled, P and dS of a step rounded to bf16 values before
// dQ, dV and dK read them, the scale applied to dq and dk at the end; with a bf16 family
// (compute_step_bf16) the same steps on its qk and pv, P^T and dS^T transposed into the slots
// as bf16. OpenBLAS's row layout (visit_transposing) visits whole blocks with its qk and pv,
// the element-wise kernels between them and P, dS transposed by hand.
// dV and dK write rows other tasks write too: they are applied in task order (each task
// knows its rank among the key block's visitors and waits for the previous one, per step's
// chunk of rows), so every sum has one fixed order whatever thread runs what. A step whose
// turn has not come keeps its P and dS in a scratch slot while the task computes its next
// steps (kPendingSlots). Several heads are computed side by side, their tasks interleaved
// (kPackBudgetBytes of packed K and V): a head's ranks only order its own tasks.
#include "backward.hpp"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <thread>

#include "sta/buffer.hpp"
#include "sta/error.hpp"
#include "tile_mask.hpp"

namespace sta::detail {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
// Rows of a query block and keys of a text key block: a FastVideo tile (384 tokens) per
// GEMM, as in the forward; bigger tiles are cut so the score blocks stay in L2.
constexpr int64_t kBlockRows = 384;

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

/// A run of keys whose dK/dV rows one accumulation updates: a video key tile or a chunk of
/// valid text keys. `packed` is its first padded key in the packed head (simd/gemm.hpp).
struct KeyBlock {
  int64_t first = 0;
  int64_t count = 0;
  int64_t packed = 0;
  int64_t key_tile = -1;  ///< video key tile, -1 for text
};

/// One key block a query block visits; `rank` orders the visitors of that key block.
struct Visit {
  int64_t key_block = 0;
  int64_t rank = 0;
  bool masked = false;  ///< a mixed block: needs the per-element mask
};

/// One task: `rows` query rows from `first`, rows [row0, row0 + rows) of video query tile
/// `query_tile` (-1 for text rows), and the key blocks it visits in order.
struct QueryBlock {
  int64_t first = 0;
  int64_t rows = 0;
  int64_t query_tile = -1;
  int64_t row0 = 0;
  std::vector<Visit> visits;
  /// Text rows only: the dQ partial this task accumulates into (its share of the key blocks;
  /// see plan_query_blocks), -1 for a task that owns its dQ rows.
  int64_t partial = -1;
};

/// Key blocks per text task. Text rows visit every key block, and they are every key block's
/// first visitor (text tasks come first); as one task per 384 rows they were a convoy on many
/// threads: a video task waits for the text task to reach its key blocks, and that task sweeps
/// them all (measured on the 16-core server, Table2 shape with Hunyuan's text, 16 threads:
/// waiting 3.3 -> 10.9 thread-seconds for sta 3,3,3 and 12 -> 26 for natten 19,25,25 against
/// no text; backward 1.30 -> 1.79 s and 4.07 -> 5.25 s while the forward stayed within 10 %).
/// So a text row block's visits are cut into runs of this many key blocks, one task each, run
/// first and side by side; each adds its dQ terms into a partial of its own, and the partials
/// are summed in run order once the head's tasks are done (a fixed order: the same bits for
/// any thread count). With the video tasks visiting the text keys first (plan_query_blocks),
/// measured there in alternating runs: sta 3,3,3 backward 1.47-1.79 -> 1.23-1.28 s, waiting
/// 8.0-11.6 -> 2.8-3.0 thread-seconds (the level without text); natten 4.31-5.01 -> 4.02-4.20
/// s, waiting 16-28 -> 11.4-11.7. Neutral on 2 cores (no convoy with 2 threads).
constexpr int64_t kTextTaskKeyBlocks = 24;

/// Video key tiles, then the valid text keys in chunks. Shared by every head.
std::vector<KeyBlock> plan_key_blocks(const Geometry& g, int64_t* padded_total) {
  std::vector<KeyBlock> blocks;
  int64_t packed = 0;
  auto push = [&](int64_t first, int64_t count, int64_t kt) {
    blocks.push_back({first, count, packed, kt});
    packed += simd::padded_keys(count);
  };
  for (int64_t kt = 0; kt < g.num_tiles(); ++kt) push(g.tile_offset(kt), g.tile_size(kt), kt);
  const int64_t v = g.video_tokens();
  for (int64_t first = v; first < v + g.text_length; first += kBlockRows)
    push(first, std::min(kBlockRows, v + g.text_length - first), -1);
  *padded_total = packed;
  return blocks;
}

/// 0..n-1 cut into kInterleave runs and dealt round-robin (0, r, 2r, ..., 1, r+1, ...), so
/// tasks handed out together are far apart on the canvas: with a sliding window they share
/// no key tile, and a key tile's previous visitor has usually finished when the next one
/// needs it (fewer waits). A fixed order, independent of the thread count.
std::vector<int64_t> interleaved_order(int64_t n) {
  constexpr int64_t kInterleave = 8;
  const int64_t run = (n + kInterleave - 1) / kInterleave;
  std::vector<int64_t> order;
  for (int64_t i = 0; i < run; ++i)
    for (int64_t c = 0; c < kInterleave; ++c)
      if (c * run + i < n) order.push_back(c * run + i);
  return order;
}

/// The tasks of one head mask in task order (text rows first, cut into runs of key blocks
/// (kTextTaskKeyBlocks) with a dQ partial each; then the video query tiles, interleaved),
/// with each visit's rank among the visitors of its key block (a video key tile's video
/// visitors are its inverse window, query_tile_visits, ranked in task order).
std::vector<QueryBlock> plan_query_blocks(const Geometry& g, const Mask& mask, FlashMode mode,
                                          const std::vector<KeyBlock>& keys) {
  const int64_t n = g.num_tiles(), v = g.video_tokens();
  std::vector<QueryBlock> plan;
  std::vector<int64_t> visitors(keys.size(), 0);
  auto visit = [&](QueryBlock& qb, int64_t kb, bool masked) {
    qb.visits.push_back({kb, visitors[static_cast<size_t>(kb)]++, masked});
  };
  auto visit_text_keys = [&](QueryBlock& qb) {
    for (size_t kb = static_cast<size_t>(n); kb < keys.size(); ++kb) visit(qb, static_cast<int64_t>(kb), false);
  };
  int64_t partials = 0;
  for (int64_t first = v; first < g.seq_len(); first += kBlockRows) {
    const int64_t rows = std::min(kBlockRows, g.seq_len() - first);
    const int64_t blocks = static_cast<int64_t>(keys.size());  // text sees every valid key
    for (int64_t b0 = 0; b0 < blocks; b0 += kTextTaskKeyBlocks) {
      QueryBlock qb{first, rows, -1, 0, {}, partials++};
      for (int64_t kb = b0; kb < std::min(blocks, b0 + kTextTaskKeyBlocks); ++kb) visit(qb, kb, false);
      plan.push_back(std::move(qb));
    }
  }
  std::vector<std::vector<KeyTileVisit>> windows;
  if (mode != FlashMode::kDense) windows = key_tile_visits(g, mask);
  for (int64_t qt : interleaved_order(n)) {
    for (int64_t row0 = 0; row0 < g.tile_size(qt); row0 += kBlockRows) {
      QueryBlock qb{g.tile_offset(qt) + row0, std::min(kBlockRows, g.tile_size(qt) - row0), qt, row0, {}};
      // The text keys first: every video task visits them, one after another in task order,
      // so a task that reached them last (as its final visit) would wait at its end for all
      // earlier tasks still running; first, it waits (if at all) while its later steps run
      // ahead in the slots.
      visit_text_keys(qb);
      if (mode == FlashMode::kDense) {
        for (int64_t kt = 0; kt < n; ++kt) visit(qb, kt, false);
      } else {
        for (const KeyTileVisit& w : windows[static_cast<size_t>(qt)]) {
          if (!w.dense && mode == FlashMode::kSta) {
            throw Error("--mask: " + to_string(mask) +
                        " has a mixed block; the sta backend computes dense blocks only");
          }
          visit(qb, w.key_tile, !w.dense);
        }
      }
      plan.push_back(std::move(qb));
    }
  }
  return plan;
}

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
using FloatArray = std::unique_ptr<float[], FreeDeleter>;
FloatArray float_array(int64_t n) {
  const size_t bytes = (static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(float) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes);
  if (p == nullptr) throw std::bad_alloc();
  return FloatArray(static_cast<float*>(p));
}

/// One head's packed K and V (simd/gemm.hpp layouts) and its outputs.
struct PackedHead {
  const void* k_as_k;
  const void* v_as_k;
  const void* k_as_v;
  int64_t v_stride;  ///< column-panel stride of k_as_v
};

/// Everything shared by the tasks of one head; pointers offset to its (batch, head).
struct HeadJob {
  const float* q;
  const float* out;
  const float* lse;
  const float* dout;
  float* dq;
  float* dk;
  float* dv;
  const Mask* mask;
  const std::vector<KeyBlock>* keys;
  PackedHead packed;
  std::atomic<int64_t>* done;  ///< per key block and chunk: accumulations applied so far
  int64_t chunks = 1;          ///< chunks per key block (done[block * chunks + chunk])
  bool bf16 = false;           ///< SPEC 8's bf16 mode (flash_attention_backward)
  float* dq_partials = nullptr;  ///< text tasks' dQ partials, kBlockRows x D each
};

/// The factor folded into dS: the softmax scale in fp32 (dq = dS K, dk = dS^T Q need no
/// more), 1 in bf16 mode (dS is rounded unscaled, and the scale multiplies dq and dk at the
/// end, as FlashAttention-2's and FlexAttention's bf16 kernels do).
float ds_scale(const HeadJob& job, float scale) { return job.bf16 ? 1.0f : scale; }

/// Whether the backward visits whole blocks with the family's own kernels and transposes P and
/// dS by hand for its pv (visit_transposing): the row-major layout (OpenBLAS). The packed fp32
/// panels (the fused kernels) and the bf16 families work in steps of kKeyChunk keys.
bool transposes(const simd::GemmKernels& gemm) { return gemm.layout == simd::PackedLayout::kF32Rows; }

/// One thread's scratch, allocated once per call.
struct Scratch {
  Scratch(const Geometry& g, const simd::GemmKernels& gemm, int64_t rp, int64_t kc, int64_t dim,
          int64_t slots)
      : q(float_array(rp * dim)), dout(float_array(rp * dim)),
        q_as_v(float_array(simd::packed_v_elements(gemm.layout, rp, dim))),
        dout_as_v(float_array(simd::packed_v_elements(gemm.layout, rp, dim))),
        lse(float_array(rp)), delta(float_array(rp)),
        p(float_array(slots * rp * kc)), ds(float_array(slots * rp * kc)), slot_elems(rp * kc),
        pt(float_array(transposes(gemm) ? kc * rp : 0)),
        dst(float_array(transposes(gemm) ? kc * rp : 0)),
        ones(float_array(std::max(rp, kc))), mask(g),
        q16(bf16_array(gemm, rp * simd::padded_dim_bf16(dim))),
        dout16(bf16_array(gemm, rp * simd::padded_dim_bf16(dim))), ds16(bf16_array(gemm, rp * kc)),
        s32(float_array(gemm.bf16() ? rp * kc : 0)), dp32(float_array(gemm.bf16() ? rp * kc : 0)) {
    std::fill(ones.get(), ones.get() + std::max(rp, kc), 1.0f);
  }
  /// Room for `n` bf16 values with a bf16 family, none otherwise.
  static FloatArray bf16_array(const simd::GemmKernels& gemm, int64_t n) {
    return float_array(gemm.bf16() ? (n + 1) / 2 : 0);
  }
  static simd::bf16_t* bits(const FloatArray& a) { return reinterpret_cast<simd::bf16_t*>(a.get()); }
  FloatArray q, dout, q_as_v, dout_as_v, lse, delta, p, ds;
  int64_t slot_elems;  ///< floats of one P (or dS) slot
  FloatArray pt, dst, ones;
  TileMask mask;
  /// bf16 families (compute_step_bf16): Q and dO rows as bf16 (D padded to 32), a step's dS
  /// rows as bf16, its P and dP in fp32 (its P^T and dS^T go to the slots, as bf16).
  FloatArray q16, dout16, ds16, s32, dp32;
};

/// Waits until `rank` earlier visitors have updated the key block. They belong to tasks
/// handed out before this one, which never wait on later tasks: no deadlock.
void wait_for_turn(const std::atomic<int64_t>& done, int64_t rank) {
  while (done.load(std::memory_order_acquire) != rank) std::this_thread::yield();
}

/// Where a task adds its dQ terms: its own rows of dq, or its partial (text tasks).
float* dq_rows(const HeadJob& job, const QueryBlock& qb, int64_t dim) {
  return qb.partial >= 0 ? job.dq_partials + qb.partial * kBlockRows * dim : job.dq + qb.first * dim;
}

/// Loads the task's rows: Q and dO copied with zero padding rows (the kernels may read up
/// to a multiple of 32 rows) and, in bf16 mode, rounded to bf16 values, packed as V for dK
/// and dV, lse, and Delta_i = <dO_i, O_i> (of the rounded dO).
void load_query_rows(const HeadJob& job, const QueryBlock& qb, int64_t dim, int64_t rp,
                     const simd::GemmKernels& gemm, const simd::BackwardKernels& kernels,
                     Scratch& sc) {
  std::copy(job.q + qb.first * dim, job.q + (qb.first + qb.rows) * dim, sc.q.get());
  std::copy(job.dout + qb.first * dim, job.dout + (qb.first + qb.rows) * dim, sc.dout.get());
  if (job.bf16) {
    kernels.round_bf16(sc.q.get(), dim, qb.rows, dim);
    kernels.round_bf16(sc.dout.get(), dim, qb.rows, dim);
  }
  std::fill(sc.q.get() + qb.rows * dim, sc.q.get() + rp * dim, 0.0f);
  std::fill(sc.dout.get() + qb.rows * dim, sc.dout.get() + rp * dim, 0.0f);
  simd::pack_v(gemm.layout, sc.q.get(), dim, qb.rows, dim, 0, rp, sc.q_as_v.get());
  simd::pack_v(gemm.layout, sc.dout.get(), dim, qb.rows, dim, 0, rp, sc.dout_as_v.get());
  if (gemm.bf16()) {  // the Q operand of the bf16 qk: bf16 rows, D padded with zeros
    const int64_t dp = simd::padded_dim_bf16(dim);
    simd::rows_to_bf16(sc.q.get(), dim, rp, dim, dp, Scratch::bits(sc.q16), dp);
    simd::rows_to_bf16(sc.dout.get(), dim, rp, dim, dp, Scratch::bits(sc.dout16), dp);
  }
  for (int64_t r = 0; r < qb.rows; ++r) {
    const float* o = job.out + (qb.first + r) * dim;
    const float* d = sc.dout.get() + r * dim;
    float acc = 0.0f;
    for (int64_t c = 0; c < dim; ++c) acc += o[c] * d[c];
    sc.delta[r] = acc;
    sc.lse[r] = job.lse[qb.first + r];
  }
}

/// The packed operands of one visit: the key block's K as K, V as K, K as V, and its dK/dV rows.
/// (Floats, or bf16 values in the bf16 layout: `elements` of them from `base`.)
struct KeyOperands {
  const void* k_as_k;
  const void* v_as_k;
  const void* k_as_v;
  int64_t kc;  ///< padded keys
  float* dk;
  float* dv;
};

/// `base` advanced by `elements` elements of `layout` (floats, or bf16 values).
const void* advance(const void* base, int64_t elements, simd::PackedLayout layout) {
  const size_t size = layout == simd::PackedLayout::kBf16Panels ? sizeof(simd::bf16_t) : sizeof(float);
  return static_cast<const char*>(base) + static_cast<size_t>(elements) * size;
}

KeyOperands key_operands(const HeadJob& job, const KeyBlock& kb, int64_t dim, simd::PackedLayout layout) {
  const int64_t koff = simd::packed_k_offset(layout, kb.packed, dim);
  return {advance(job.packed.k_as_k, koff, layout), advance(job.packed.v_as_k, koff, layout),
          advance(job.packed.k_as_v, simd::packed_v_offset(layout, kb.packed, dim), layout),
          simd::padded_keys(kb.count), job.dk + kb.first * dim, job.dv + kb.first * dim};
}

/// Keys of a key block that one step of a visit handles (the fused path): a chunk's P and dS
/// (rows x chunk each), its K/V panels and its dK/dV rows make a working set that stays in
/// L2, and each chunk of dK/dV rows has its own turn counter, so tasks queue on a third of a
/// tile instead of a whole one. Results are the same bits as with whole blocks (each output
/// sums the same terms in the same order). Measured on the 16-core server (Table2-backward,
/// 16 threads, two runs each, one lease, before the run-ahead below): sta 5,5,5 backward
/// 5.85 / 5.70 s with whole 384-key blocks, 4.63 s with 192, 4.11 / 4.04 s with 96; sta 3,3,3
/// 1.22 / 1.05 -> 1.03 / 1.03 s; natten 19,25,25 3.99 / 3.87 -> 4.21 / 3.59 s. Neutral on the
/// 2-core machine. 128 rather than 96: the fused score GEMMs then run on the 6 x 64 tile (two
/// column blocks of 32 KB of K panels, each within L1) instead of a 4 x 96 tile over 48 KB
/// (all of L1), and dQ += dS K makes 3 passes over the task's dQ rows per tile instead of 4.
/// Measured on the 2-core Xeon: the five kernels of a step over cold key blocks, one process
/// alternating widths, medians of 9: 150.0-167.3 -> 159.1-178.2 GFLOP/s (+3 to +6 %); the
/// Table2-backward rows, 2 threads, old and new binaries alternating, three rounds: natten
/// 19,25,25 15.6 / 15.1 / 14.9 -> 15.0 / 14.6 / 15.0 s, sta 3,3,3 4.91 / 4.97 / 4.87 -> 4.87 /
/// 4.88 / 4.56 s. On the 16-core server (16 threads, alternating, three rounds) neutral within
/// its +-15 % spread: medians natten 3.93 -> 3.76 s, sta 5,5,5 5.41 -> 5.50 s, sta 3,3,3 1.25
/// -> 1.14 s.
constexpr int64_t kKeyChunk = 128;

/// One step of a visit on the packed-panel layout, with the backward's own kernels: P and dS
/// of keys [c0, c0 + cols) of the key block (`valid` of them real keys), from GEMMs with the
/// element-wise step fused (S and dP stay in registers), into the slot `p`, `ds` (stride
/// ld), and dQ += dS K (the task's own rows: no wait). (Row chunks of 128 or 192 rows
/// measured no faster: the fused GEMMs lose on short row counts what the others gain.)
void compute_step(const HeadJob& job, const QueryBlock& qb, const Visit& visit,
                  const KeyOperands& ko, int64_t c0, int64_t cols, int64_t valid, int64_t dim,
                  float scale, int64_t ld, const simd::GemmKernels& gemm,
                  const simd::BackwardKernels& kernels, Scratch& sc, float* p, float* ds) {
  const float* k_as_k = static_cast<const float*>(ko.k_as_k) + simd::packed_k_offset(gemm.layout, c0, dim);
  const float* v_as_k = static_cast<const float*>(ko.v_as_k) + simd::packed_k_offset(gemm.layout, c0, dim);
  const float* k_as_v = static_cast<const float*>(ko.k_as_v) + simd::packed_v_offset(gemm.layout, c0, dim);
  kernels.probs_qk(sc.q.get(), dim, qb.rows, dim, k_as_k, cols, scale, sc.lse.get(), p, ld);
  if (visit.masked) sc.mask.apply(p, ld, qb.row0, qb.rows, 0.0f, c0, c0 + cols);  // p = 0
  for (int64_t r = 0; r < qb.rows; ++r) std::fill(p + r * ld + valid, p + r * ld + cols, 0.0f);
  kernels.grad_scores_qk(sc.dout.get(), dim, qb.rows, dim, v_as_k, cols, p, ld,
                         sc.delta.get(), ds_scale(job, scale), ds, ld);
  if (job.bf16) {  // SPEC 8: P and dS to bf16 values, after dS took the unrounded P
    kernels.round_bf16(p, ld, qb.rows, cols);
    kernels.round_bf16(ds, ld, qb.rows, cols);
  }
  gemm.pv(ds, ld, qb.rows, cols, k_as_v, job.packed.v_stride, dim, sc.ones.get(),
          dq_rows(job, qb, dim), dim);
}

/// The second half of a step, once the chunk's earlier visitors are done: dV += P^T dO and
/// dK += dS^T Q for the chunk's `valid` key rows, reading P and dS transposed in place.
/// With a bf16 family the slot holds P^T and dS^T as bf16 (compute_step_bf16), and the
/// family's pv adds them (rows rp apart).
void apply_step(const QueryBlock& qb, const KeyOperands& ko, int64_t c0, int64_t valid,
                int64_t dim, int64_t ld, int64_t rp, int64_t q_stride,
                const simd::GemmKernels& gemm, const simd::BackwardKernels& kernels, Scratch& sc,
                const float* p, const float* ds) {
  if (gemm.bf16()) {
    gemm.pv(p, rp, valid, rp, sc.dout_as_v.get(), q_stride, dim, sc.ones.get(), ko.dv + c0 * dim, dim);
    gemm.pv(ds, rp, valid, rp, sc.q_as_v.get(), q_stride, dim, sc.ones.get(), ko.dk + c0 * dim, dim);
    return;
  }
  kernels.add_transposed_pv(p, ld, valid, qb.rows, sc.dout_as_v.get(), q_stride, dim,
                            ko.dv + c0 * dim, dim);
  kernels.add_transposed_pv(ds, ld, valid, qb.rows, sc.q_as_v.get(), q_stride, dim,
                            ko.dk + c0 * dim, dim);
}

/// P of keys [c0, c0 + cols) of a key block from the raw scores in `p` (stride ld; the first
/// `valid` of them real keys, the rest padding): masked entries and padding keys -inf, then
/// exp(scale s - lse) by `probs` (simd/grad.hpp). (The paths on the family's own qk: whole
/// blocks, or a bf16 step.)
void block_probs(const QueryBlock& qb, const Visit& visit, int64_t c0, int64_t cols,
                 int64_t valid, float scale, simd::ProbsFromLseFn probs, Scratch& sc, float* p,
                 int64_t ld) {
  if (visit.masked) sc.mask.apply(p, ld, qb.row0, qb.rows, kNegInf, c0, c0 + cols);
  for (int64_t r = 0; r < qb.rows; ++r) std::fill(p + r * ld + valid, p + r * ld + cols, kNegInf);
  probs(p, ld, qb.rows, cols, scale, sc.lse.get());
}

/// One visit on other layouts (OpenBLAS rows): the family's qk and pv, P and dS transposed by
/// hand for dV and dK; the whole block at once (the BLAS call is the unit of work).
void visit_transposing(const HeadJob& job, const QueryBlock& qb, const KeyBlock& kb,
                       const Visit& visit, const KeyOperands& ko, int64_t dim, float scale,
                       int64_t ld, int64_t rp, int64_t q_stride, const simd::GemmKernels& gemm,
                       const simd::BackwardKernels& kernels, Scratch& sc) {
  float* p = sc.p.get();
  float* ds = sc.ds.get();
  gemm.qk(sc.q.get(), dim, qb.rows, dim, ko.k_as_k, ko.kc, p, ld);
  block_probs(qb, visit, 0, ko.kc, kb.count, scale, kernels.probs_from_lse, sc, p, ld);
  gemm.qk(sc.dout.get(), dim, qb.rows, dim, ko.v_as_k, ko.kc, ds, ld);
  kernels.grad_scores(ds, ld, p, ld, qb.rows, ko.kc, sc.delta.get(), ds_scale(job, scale));
  if (job.bf16) {
    kernels.round_bf16(p, ld, qb.rows, ko.kc);
    kernels.round_bf16(ds, ld, qb.rows, ko.kc);
  }
  gemm.pv(ds, ld, qb.rows, ko.kc, ko.k_as_v, job.packed.v_stride, dim, sc.ones.get(),
          dq_rows(job, qb, dim), dim);
  kernels.transpose(p, ld, qb.rows, kb.count, sc.pt.get(), rp, rp);
  kernels.transpose(ds, ld, qb.rows, kb.count, sc.dst.get(), rp, rp);
  wait_for_turn(job.done[visit.key_block * job.chunks], visit.rank);
  gemm.pv(sc.pt.get(), rp, kb.count, rp, sc.dout_as_v.get(), q_stride, dim, sc.ones.get(), ko.dv, dim);
  gemm.pv(sc.dst.get(), rp, kb.count, rp, sc.q_as_v.get(), q_stride, dim, sc.ones.get(), ko.dk, dim);
  job.done[visit.key_block * job.chunks].store(visit.rank + 1, std::memory_order_release);
}

/// One step of a visit with a bf16 family (bf16 mode, SPEC 8; amx-bf16, avx512bf16-bf16), the
/// counterpart of compute_step: S and dP by the family's qk on bf16 Q, dO and packed K, V; P
/// in fp32 (probs_bf16: the exp of the forward's bf16 softmax on these families), dS from it
/// and dP in fp32 stored as bf16 rows (grad_scores_bf16, the scale left for the end): the A
/// operand of the family's pv for dQ += dS K. P^T (rounded as it is transposed) and the dS
/// rows transposed go to the slot (`pt`, `dst`: `valid` rows of rp) for apply_step's dV +=
/// P^T dO and dK += dS^T Q. The same rounding points as the emulation on fp32 kernels;
/// products of bf16 values are exact in fp32 either way, only the order of the fp32 sums
/// (and, with AVX512-BF16, the exp's last bits, as in the forward) differ. The shorter exp
/// measured on the 2-core Xeon (one thread, Quick shape, backward alone, three alternating
/// rounds): dense 439 / 422 / 437 -> 407 / 424 / 406 ms, sta 3,3,3 204 / 204 / 211 -> 200 /
/// 194 / 205 ms.
void compute_step_bf16(const HeadJob& job, const QueryBlock& qb, const Visit& visit,
                       const KeyOperands& ko, int64_t c0, int64_t cols, int64_t valid, int64_t dim,
                       float scale, int64_t ld, int64_t rp, const simd::GemmKernels& gemm,
                       const simd::BackwardKernels& kernels, Scratch& sc, simd::bf16_t* pt,
                       simd::bf16_t* dst) {
  const simd::PackedLayout layout = gemm.layout;
  const int64_t dp = simd::padded_dim_bf16(dim);
  float* p = sc.s32.get();
  float* dpv = sc.dp32.get();
  simd::bf16_t* ds16 = Scratch::bits(sc.ds16);
  gemm.qk(sc.q16.get(), dp, qb.rows, dim, advance(ko.k_as_k, simd::packed_k_offset(layout, c0, dim), layout),
          cols, p, ld);
  block_probs(qb, visit, c0, cols, valid, scale, kernels.probs_bf16, sc, p, ld);
  gemm.qk(sc.dout16.get(), dp, qb.rows, dim, advance(ko.v_as_k, simd::packed_k_offset(layout, c0, dim), layout),
          cols, dpv, ld);
  kernels.grad_scores_bf16(dpv, ld, p, ld, qb.rows, cols, sc.delta.get(), ds_scale(job, scale), ds16, cols);
  gemm.pv(ds16, cols, qb.rows, cols, advance(ko.k_as_v, simd::packed_v_offset(layout, c0, dim), layout),
          job.packed.v_stride, dim, sc.ones.get(), dq_rows(job, qb, dim), dim);
  kernels.transpose_bf16(p, ld, qb.rows, valid, pt, rp, rp);
  kernels.transpose_16(ds16, cols, qb.rows, valid, dst, rp, rp);
}

// P/dS slots per thread for steps computed ahead of their turn (run_query_block). Measured
// on the 16-core server (Table2-backward, 16 threads, one run each, whole 384-key blocks):
// thread time spent waiting for a key block's turn was 30 % (dense), 18 % (natten 19,25,25)
// and 21 % (sta 3,3,3) with one slot; dense backward/forward 3.88x -> 3.59x (4 slots) /
// 3.57x (8), sta 5,5,5 3.42x -> 3.05x / 3.07x, sta 3,3,3 and natten unchanged within the
// host's noise. With 128-key steps a slot holds a third of a tile: 8 slots, 3.1 MB per
// thread at 384-token tiles.
constexpr int64_t kPendingSlots = 8;

// The heads of a group (kPackBudgetBytes of packed K as K, V as K, K as V: about five
// Hunyuan heads in fp32) are computed side by side, their tasks interleaved round by round
// (the t-th task of each head in turn), so the tasks running together belong to several heads
// and share fewer key blocks: one head's tasks that run together form a chain (each needs the
// previous one's dK/dV on every shared block) that moves at the pace of its slowest thread.
// Measured on the 16-core server, 16 threads, 4 heads of the Quick shape (12x32x40, D = 128),
// backward / forward, old (one head at a time) and new alternating, two rounds: fp32 dense
// 3.66 / 3.91x -> 2.75 / 2.80x (backward 1506 / 1448 -> 1021 / 977 ms), sta 3,3,3 3.49 /
// 3.57x -> 2.74 / 2.85x (645 / 598 -> 418 / 476 ms). One head (Table 2) is unchanged.

/// The backward of one query block (see the file comment). Returns the video blocks it
/// computed (counted on the first row block of a video query tile only).
/// On the packed-panel layout each visit is done in steps of `chunk` keys. A step whose
/// chunk of dK/dV rows is not yet free (an earlier task has still to add there) does not
/// wait: its P and dS stay in one of the scratch's slots and the task computes its next steps
/// meanwhile, applying each pending step as soon as its turn comes (and waiting only when
/// every slot is taken). The results do not depend on this timing: each chunk of dK/dV rows
/// still receives its updates in rank order, and dQ its terms in step order. `defer` holds
/// every step back until the slots run out (BackwardConfig::defer_applies).
BlockCounts run_query_block(const HeadJob& job, const QueryBlock& qb, const Geometry& g,
                            int64_t dim, float scale, int64_t ld, const simd::GemmKernels& gemm,
                            const simd::BackwardKernels& kernels, int64_t slots, bool defer,
                            Scratch& sc) {
  const int64_t rp = round_up(qb.rows, simd::kKeyPanel);
  load_query_rows(job, qb, dim, rp, gemm, kernels, sc);
  if (std::any_of(qb.visits.begin(), qb.visits.end(), [](const Visit& v) { return v.masked; }))
    sc.mask.set_query_tile(*job.mask, qb.query_tile);
  const int64_t q_stride = simd::packed_v_panel_stride(gemm.layout, rp, dim);
  const int64_t chunks = job.chunks, chunk = ld;  // fused path: ld is the step width
  BlockCounts did;
  // Pending steps (computed, dK/dV not yet added): step number visit * chunks + chunk per
  // slot, -1 when free. Step numbers grow in the order steps are computed.
  std::vector<int64_t> pending(static_cast<size_t>(slots), -1);
  auto slot_p = [&](int64_t i) { return sc.p.get() + i * sc.slot_elems; };
  auto slot_ds = [&](int64_t i) { return sc.ds.get() + i * sc.slot_elems; };
  auto apply_slot = [&](int64_t i, bool wait) {
    const int64_t step = pending[static_cast<size_t>(i)];
    const Visit& visit = qb.visits[static_cast<size_t>(step / chunks)];
    const int64_t ci = step % chunks;
    std::atomic<int64_t>& done = job.done[visit.key_block * chunks + ci];
    if (!wait && done.load(std::memory_order_acquire) != visit.rank) return;
    wait_for_turn(done, visit.rank);
    const KeyBlock& kb = (*job.keys)[static_cast<size_t>(visit.key_block)];
    const int64_t c0 = ci * chunk;
    apply_step(qb, key_operands(job, kb, dim, gemm.layout), c0, std::min(chunk, kb.count - c0),
               dim, ld, rp, q_stride, gemm, kernels, sc, slot_p(i), slot_ds(i));
    done.store(visit.rank + 1, std::memory_order_release);
    pending[static_cast<size_t>(i)] = -1;
  };
  auto oldest = [&]() {
    int64_t best = -1;
    for (int64_t i = 0; i < slots; ++i) {
      const int64_t v = pending[static_cast<size_t>(i)];
      if (v >= 0 && (best < 0 || v < pending[static_cast<size_t>(best)])) best = i;
    }
    return best;
  };
  for (size_t vi = 0; vi < qb.visits.size(); ++vi) {
    const Visit& visit = qb.visits[vi];
    const KeyBlock& kb = (*job.keys)[static_cast<size_t>(visit.key_block)];
    const KeyOperands ko = key_operands(job, kb, dim, gemm.layout);
    if (visit.masked) sc.mask.set_key_tile(kb.key_tile);
    if (transposes(gemm)) {
      visit_transposing(job, qb, kb, visit, ko, dim, scale, ld, rp, q_stride, gemm, kernels, sc);
    } else {
      for (int64_t ci = 0; ci * chunk < ko.kc; ++ci) {
        const int64_t c0 = ci * chunk;
        const auto free_slot = std::find(pending.begin(), pending.end(), int64_t{-1});
        int64_t slot = free_slot == pending.end() ? -1 : free_slot - pending.begin();
        if (slot < 0) {  // every slot pending: wait for the oldest
          slot = oldest();
          apply_slot(slot, true);
        }
        const int64_t cols = std::min(chunk, ko.kc - c0), valid = std::min(chunk, kb.count - c0);
        if (gemm.bf16()) {
          compute_step_bf16(job, qb, visit, ko, c0, cols, valid, dim, scale, ld, rp, gemm, kernels, sc,
                            reinterpret_cast<simd::bf16_t*>(slot_p(slot)),
                            reinterpret_cast<simd::bf16_t*>(slot_ds(slot)));
        } else {
          compute_step(job, qb, visit, ko, c0, cols, valid, dim, scale, ld, gemm, kernels, sc,
                       slot_p(slot), slot_ds(slot));
        }
        pending[static_cast<size_t>(slot)] = static_cast<int64_t>(vi) * chunks + ci;
        if (defer) continue;
        apply_slot(slot, false);  // this step first: its P and dS are hot in L2
        for (int64_t i = 0; i < slots; ++i)  // then whatever else may go now
          if (pending[static_cast<size_t>(i)] >= 0) apply_slot(i, false);
      }
    }
    if (kb.key_tile >= 0 && qb.query_tile >= 0 && qb.row0 == 0) (visit.masked ? did.mixed : did.dense) += 1;
  }
  for (int64_t i = oldest(); i >= 0; i = oldest()) apply_slot(i, true);
  if (qb.query_tile >= 0 && qb.row0 == 0) did.empty = g.num_tiles() - did.dense - did.mixed;
  return did;
}

/// Packs one key block of a head: K as K (for S), V as K (for dP), K as V (for dQ). In bf16
/// mode the values are rounded to bf16: by the bf16 layout's packing itself, or in place in
/// the fp32 layouts (the exact emulation), as the forward's packing does.
void pack_key_block(const simd::GemmKernels& gemm, const simd::BackwardKernels& kernels,
                    bool bf16, const KeyBlock& kb, const float* k, const float* v, int64_t dim,
                    int64_t kp, float* k_as_k, float* v_as_k, float* k_as_v) {
  const simd::PackedLayout layout = gemm.layout;
  simd::pack_k(layout, k + kb.first * dim, dim, kb.count, dim, kb.packed, kp, k_as_k);
  simd::pack_k(layout, v + kb.first * dim, dim, kb.count, dim, kb.packed, kp, v_as_k);
  if (k_as_v != nullptr) simd::pack_v(layout, k + kb.first * dim, dim, kb.count, dim, kb.packed, kp, k_as_v);
  if (!bf16 || gemm.bf16()) return;
  auto round_in = [&](float* packed, bool as_k) {
    simd::for_each_packed_run(layout, as_k, kb.packed, kb.count, dim, kp,
                              [&](int64_t from, int64_t n) { kernels.round_bf16(packed + from, n, 1, n); });
  };
  round_in(k_as_k, true);
  round_in(v_as_k, true);
  if (k_as_v != nullptr) round_in(k_as_v, false);  // (the row layout shares K as K)
}

/// A text row block's dQ partials (its tasks' `partial` indices count, from p0 on).
struct TextRows {
  int64_t first, rows, p0, count;
};

/// Key blocks and the tasks of every head mask, with the scratch sizes they need.
struct BackwardPlan {
  std::vector<KeyBlock> keys;
  std::vector<std::vector<QueryBlock>> queries;  ///< one task list per mask
  std::vector<TextRows> text;                    ///< the same for every mask
  int64_t partials = 0;                          ///< dQ partials of a head
  int64_t padded_keys = 0;  ///< packed keys of a head
  int64_t max_rows = 0;     ///< rows of the largest query block, rounded up to 32
  int64_t max_keys = 0;     ///< padded keys of the largest key block
};

BackwardPlan plan_backward(const Geometry& g, const std::vector<Mask>& masks, FlashMode mode) {
  BackwardPlan bp;
  bp.keys = plan_key_blocks(g, &bp.padded_keys);
  for (const Mask& mask : masks) bp.queries.push_back(plan_query_blocks(g, mask, mode, bp.keys));
  for (const QueryBlock& qb : bp.queries.front()) {
    if (qb.partial < 0) continue;
    if (bp.text.empty() || bp.text.back().first != qb.first) bp.text.push_back({qb.first, qb.rows, qb.partial, 0});
    ++bp.text.back().count;
    bp.partials = qb.partial + 1;
  }
  int64_t rows = 1, keys = 1;
  for (const auto& plan : bp.queries)
    for (const QueryBlock& qb : plan) rows = std::max(rows, qb.rows);
  for (const KeyBlock& kb : bp.keys) keys = std::max(keys, kb.count);
  bp.max_rows = round_up(rows, simd::kKeyPanel);
  bp.max_keys = simd::padded_keys(keys);
  return bp;
}

}  // namespace

BlockCounts flash_attention_backward(const AttentionShape& shape, const Geometry& g,
                                     const std::vector<Mask>& masks, float scale, FlashMode mode,
                                     bool bf16, const float* q, const float* k, const float* v,
                                     const float* out, const float* lse, const float* dout,
                                     float* dq, float* dk, float* dv,
                                     const simd::GemmKernels& gemm,
                                     const simd::BackwardKernels& kernels, int* threads_used,
                                     const BackwardConfig& config) {
  if (gemm.bf16() && !bf16) throw Error(std::string("gemm: '") + gemm.name + "' is a bf16 family; fp32 needs an fp32 one");
  const int64_t seq = shape.seq, dim = shape.dim;
  const BackwardPlan bp = plan_backward(g, masks, mode);
  const std::vector<KeyBlock>& keys = bp.keys;
  const int64_t kp = bp.padded_keys, rp = bp.max_rows, kc = bp.max_keys;
  // The fused path and the bf16 families work in steps of kKeyChunk keys (a step's P and dS,
  // or P and dP: stride ld); the transposing path (OpenBLAS) in whole blocks.
  const int64_t ld = transposes(gemm) ? kc : std::min(kc, kKeyChunk);
  const int64_t chunks = (kc + ld - 1) / ld;

  // dq, dk, dv accumulate (pv with alpha = 1); padded text keys are never visited and stay 0.
  // Zeroed by the team: three [B,H,S,D] arrays (177 MB at the Table 2 shape) are not free.
  const int64_t n = shape.elements();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) dq[i] = dk[i] = dv[i] = 0.0f;

  // In the row-major layout K packed as V is K packed as K: share it.
  const bool share_k = gemm.layout == simd::PackedLayout::kF32Rows;
  // LargeArray (sta/buffer.hpp), as the forward's packed K and V: huge pages, first touched
  // by the packing threads. With 4 KiB pages the three packed heads (177 MB at the Table 2
  // shape) cost 43,000 page faults per call (measured: 160,480 -> 117,358 minor faults for
  // one forward + backward of sta 3,3,3), taken by all threads at once while packing. On
  // two cores the time measured the same within noise.
  //
  // Heads are computed in groups, their tasks side by side (see above): each head's
  // tasks keep their own order and ranks, so the results are the same bits for any group.
  const int64_t bh_count = shape.batch * shape.heads;
  // Sizes in floats (the arrays' type); a bf16 layout's elements take half a float each
  // (its element counts are even: whole panels of 32 keys).
  const int64_t elem_bytes = gemm.bf16() ? 2 : 4;
  auto floats_of = [&](int64_t elements) { return (elements * elem_bytes + 3) / 4; };
  const int64_t k_floats = floats_of(simd::packed_k_elements(gemm.layout, kp, dim));
  const int64_t kv_floats = share_k ? 0 : floats_of(simd::packed_v_elements(gemm.layout, kp, dim));
  const int64_t head_floats = 2 * k_floats + kv_floats;
  const int64_t group = std::clamp<int64_t>(
      config.head_group > 0 ? config.head_group
                            : kPackBudgetBytes / std::max<int64_t>(1, head_floats * static_cast<int64_t>(sizeof(float))),
      1, bh_count);
  LargeArray<float> packed_heads(group * head_floats, "packed K and V");
  const int64_t n_keys = static_cast<int64_t>(keys.size());
  std::unique_ptr<std::atomic<int64_t>[]> done(new std::atomic<int64_t>[static_cast<size_t>(group * n_keys * chunks)]);
  const int64_t partial_elems = kBlockRows * dim;
  FloatArray partials = float_array(group * bp.partials * partial_elems);

  int64_t most_tasks = 0;
  for (const auto& plan : bp.queries) most_tasks = std::max(most_tasks, static_cast<int64_t>(plan.size()));
  const int team = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(omp_get_max_threads(), group * most_tasks)));
  std::vector<std::unique_ptr<Scratch>> scratches;
  const int64_t slots = transposes(gemm) ? 1 : config.slots > 0 ? config.slots : kPendingSlots;
  for (int t = 0; t < team; ++t) scratches.push_back(std::make_unique<Scratch>(g, gemm, rp, ld, dim, slots));
  std::vector<BlockCounts> per_thread(static_cast<size_t>(team));
  std::atomic<int64_t> next_task{0};
  int used = 1;

  // The tasks of a group in the order they are handed out: round by round, the t-th task of
  // each head in turn (each head's own order kept, which its key-block ranks rely on).
  std::vector<std::pair<int64_t, int64_t>> order;  // (head in group, task)
  auto plan_of = [&](int64_t bh) -> const std::vector<QueryBlock>& {
    return bp.queries[masks.size() == 1 ? 0 : static_cast<size_t>(bh % shape.heads)];
  };

#pragma omp parallel num_threads(team)
  {
    Scratch& sc = *scratches[static_cast<size_t>(omp_get_thread_num())];
    BlockCounts did;
#pragma omp single
    used = omp_get_num_threads();
    for (int64_t bh0 = 0; bh0 < bh_count; bh0 += group) {
      const int64_t heads_in_group = std::min(group, bh_count - bh0);
      auto k_as_k = [&](int64_t i) { return packed_heads.data() + i * head_floats; };
      auto v_as_k = [&](int64_t i) { return k_as_k(i) + k_floats; };
      auto k_as_v = [&](int64_t i) { return share_k ? k_as_k(i) : k_as_k(i) + 2 * k_floats; };
#pragma omp for schedule(static)
      for (int64_t job_i = 0; job_i < heads_in_group * n_keys; ++job_i) {
        const int64_t i = job_i / n_keys, b = job_i % n_keys, off = (bh0 + i) * seq * dim;
        pack_key_block(gemm, kernels, bf16, keys[static_cast<size_t>(b)], k + off, v + off, dim, kp,
                       k_as_k(i), v_as_k(i), share_k ? nullptr : k_as_v(i));
        for (int64_t c = 0; c < chunks; ++c)
          done[(i * n_keys + b) * chunks + c].store(0, std::memory_order_relaxed);
      }
#pragma omp for schedule(static)
      for (int64_t i = 0; i < heads_in_group * bp.partials * partial_elems; ++i) partials[i] = 0.0f;
#pragma omp single
      {
        next_task.store(0);
        order.clear();
        for (int64_t t = 0; t < most_tasks; ++t)
          for (int64_t i = 0; i < heads_in_group; ++i)
            if (t < static_cast<int64_t>(plan_of(bh0 + i).size())) order.emplace_back(i, t);
      }
      // (implicit barriers: every block packed, every counter reset, the order made)
      auto job_of = [&](int64_t i) {
        const int64_t bh = bh0 + i, off = bh * seq * dim;
        return HeadJob{q + off, out + off, lse + bh * seq, dout + off, dq + off, dk + off, dv + off,
                       &mask_for_head(masks, bh % shape.heads), &keys,
                       {k_as_k(i), v_as_k(i), k_as_v(i), simd::packed_v_panel_stride(gemm.layout, kp, dim)},
                       done.get() + i * n_keys * chunks, chunks, bf16,
                       partials.get() + i * bp.partials * partial_elems};
      };
      // Tasks are handed out in increasing order (one shared counter), which the key-block
      // ranks rely on: a task only ever waits for earlier tasks of its head.
      for (int64_t t = next_task.fetch_add(1); t < static_cast<int64_t>(order.size()); t = next_task.fetch_add(1)) {
        const auto [i, task] = order[static_cast<size_t>(t)];
        did += run_query_block(job_of(i), plan_of(bh0 + i)[static_cast<size_t>(task)], g, dim, scale, ld,
                               gemm, kernels, slots, config.defer_applies, sc);
      }
#pragma omp barrier
      // The text rows' dQ: their tasks' partials summed in task order.
      for (int64_t i = 0; i < heads_in_group; ++i) {
        const float* head_partials = partials.get() + i * bp.partials * partial_elems;
        const int64_t off = (bh0 + i) * seq * dim;
        for (const TextRows& tr : bp.text) {
#pragma omp for schedule(static)
          for (int64_t e = 0; e < tr.rows * dim; ++e) {
            float acc = 0.0f;
            for (int64_t p = tr.p0; p < tr.p0 + tr.count; ++p) acc += head_partials[p * partial_elems + e];
            dq[off + tr.first * dim + e] = acc;
          }
        }
      }
    }
    per_thread[static_cast<size_t>(omp_get_thread_num())] = did;
  }

  if (bf16) {  // dq = scale (dS K), dk = scale (dS^T Q): the scale after the fp32 sums
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      dq[i] *= scale;
      dk[i] *= scale;
    }
  }
  BlockCounts total;
  for (const BlockCounts& c : per_thread) total += c;
  if (threads_used != nullptr) *threads_used = used;
  return total;
}

}  // namespace sta::detail
