// Flash-style attention over tiles (FlashAttention-2, Dao 2023) for the fast backends. K and
// V of a group of (batch, head)s are packed once into the GEMM family's layout (simd/gemm.hpp)
// and shared read-only. One task = the rows of one video query tile (or a slice of text rows)
// of one head; it walks its key segments in a fixed order, so the result never depends on the
// thread that runs it. Per key segment (consecutive key blocks, padded to 32 keys each):
//   S = Q K^T            GemmKernels::qk (row chunk x keys, stays in L2)
//   [padding, mask]      -inf for padding keys; natten: per-element mask of mixed blocks
//   P = exp(scale S - m) online softmax, simd/ (scale fused into the exponent); in bf16 mode
//                        the row sum takes the fp32 p, then P is rounded to bf16
//   O = alpha O + P V    GemmKernels::pv, rescale fused
// and finally O /= l, lse = m + log l.
#include "flash.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>

#include "sta/buffer.hpp"
#include "sta/error.hpp"
#include "tile_mask.hpp"

namespace sta::detail {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
// Query rows per S chunk: a whole 384-row FastVideo tile. With OpenBLAS (which repacks K and
// V per call) more rows per call paid; with the packed families 96, 128, 192 and 384 rows
// measured the same on one Xeon core (dense 12x32x40, fp32 and bf16), so the simplest wins.
constexpr int64_t kDefaultRowChunk = 384;
// Runs of contiguous dense key tiles are merged up to this many keys: no gain at 384-token
// tiles (768 measured the same), but it keeps GEMMs reasonably sized for tiny test tiles.
constexpr int64_t kDefaultMaxKeyCols = 384;
// Text queries see every key: 256 text rows of one head are ~10x a video tile's work, the
// critical path beyond ~40 threads. Tasks of 64 text rows keep it below 3 video tiles.
constexpr int64_t kDefaultTextRows = 64;

/// The keys of one packed head, cut into key blocks: every video key tile (its real token
/// range, shorter at a ragged edge), then the valid text keys in chunks of at most max_cols.
/// Each block starts on a panel boundary of the packed "padded key" space (simd/gemm.hpp).
struct KeyBlock {
  int64_t first = 0;    ///< first key (sequence index, tiled order)
  int64_t count = 0;    ///< keys
  int64_t padded = 0;   ///< first padded key of the block in the packed head
};

struct KeySpace {
  std::vector<KeyBlock> blocks;  ///< video key tiles 0..n-1, then text chunks
  int64_t padded_keys = 0;       ///< kp: padded keys of the whole packed head
  int64_t widest = 0;            ///< padded width of the widest block
};

KeySpace make_key_space(const Geometry& g, int64_t max_cols) {
  KeySpace ks;
  auto add = [&ks](int64_t first, int64_t count) {
    ks.blocks.push_back({first, count, ks.padded_keys});
    ks.padded_keys += simd::padded_keys(count);
    ks.widest = std::max(ks.widest, simd::padded_keys(count));
  };
  for (int64_t kt = 0; kt < g.num_tiles(); ++kt) add(g.tile_offset(kt), g.tile_size(kt));
  const int64_t v = g.video_tokens();
  for (int64_t first = v; first < v + g.text_length; first += max_cols) {
    add(first, std::min(max_cols, v + g.text_length - first));
  }
  return ks;
}

/// A run of consecutive key blocks handled by one pair of GEMMs (contiguous in padded keys).
struct KeySegment {
  int64_t block = 0;      ///< first key block
  int64_t blocks = 0;     ///< key blocks
  int64_t key_tile = -1;  ///< the video key tile of a masked segment
  int64_t tiles = 0;      ///< video key tiles covered (0 for text keys)
  bool masked = false;    ///< needs the per-element mask (a mixed block)
};
using SegmentList = std::vector<KeySegment>;

/// Appends key block `b`, merging it into the previous segment when both are unmasked,
/// consecutive, of the same kind (video or text) and the merged run stays within `max_cols`
/// padded keys (one bigger GEMM, one softmax pass instead of several).
void push_segment(SegmentList& list, const KeySpace& ks, int64_t b, bool video, bool masked,
                  int64_t max_cols) {
  const int64_t width = simd::padded_keys(ks.blocks[static_cast<size_t>(b)].count);
  if (!masked && !list.empty()) {
    KeySegment& last = list.back();
    const KeyBlock& first = ks.blocks[static_cast<size_t>(last.block)];
    const KeyBlock& end = ks.blocks[static_cast<size_t>(b)];
    if (!last.masked && last.block + last.blocks == b && (last.tiles > 0) == video &&
        end.padded + width - first.padded <= max_cols) {
      last.blocks += 1;
      last.tiles += video ? 1 : 0;
      return;
    }
  }
  list.push_back({b, 1, video ? b : -1, video ? 1 : 0, masked});
}

/// Valid text keys: the key blocks after the video tiles.
void push_text_keys(SegmentList& list, const KeySpace& ks, const Geometry& g, int64_t max_cols) {
  for (int64_t b = g.num_tiles(); b < static_cast<int64_t>(ks.blocks.size()); ++b) {
    push_segment(list, ks, b, false, false, max_cols);
  }
}

/// Key segments of every video query tile for one head mask.
std::vector<SegmentList> plan_video_queries(const Geometry& g, const KeySpace& ks,
                                            const Mask& mask, FlashMode mode, int64_t max_cols) {
  const int64_t n = g.num_tiles();
  std::vector<SegmentList> plan(static_cast<size_t>(n));
  if (mode == FlashMode::kDense) {
    for (int64_t qt = 0; qt < n; ++qt) {
      for (int64_t kt = 0; kt < n; ++kt) push_segment(plan[qt], ks, kt, true, false, max_cols);
    }
  } else {
    const auto visits = key_tile_visits(g, mask);
    for (int64_t qt = 0; qt < n; ++qt) {
      for (const KeyTileVisit& visit : visits[qt]) {
        if (!visit.dense && mode == FlashMode::kSta) {
          throw Error("--mask: " + to_string(mask) +
                      " has a mixed block; the sta backend computes dense blocks only");
        }
        push_segment(plan[qt], ks, visit.key_tile, true, !visit.dense, max_cols);
      }
    }
  }
  for (SegmentList& list : plan) push_text_keys(list, ks, g, max_cols);
  return plan;
}

/// Text queries see every valid key (SPEC section 4): all video tiles, then the text.
SegmentList plan_text_queries(const Geometry& g, const KeySpace& ks, int64_t max_cols) {
  SegmentList list;
  for (int64_t kt = 0; kt < g.num_tiles(); ++kt) push_segment(list, ks, kt, true, false, max_cols);
  push_text_keys(list, ks, g, max_cols);
  return list;
}

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
template <class T>
using AlignedArray = std::unique_ptr<T[], FreeDeleter>;
template <class T>
AlignedArray<T> aligned_array(int64_t n) {
  const size_t bytes = (static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(T) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes);
  if (p == nullptr) throw std::bad_alloc();
  return AlignedArray<T>(static_cast<T*>(p));
}

/// Padded rows of the operand buffers (simd/gemm.hpp: kernels may work in whole 32-row blocks).
int64_t padded_rows(int64_t rows) { return (rows + 31) / 32 * 32; }

/// How the GEMMs see this call: the family, its packed layout and the operand formats.
struct GemmPlan {
  const simd::GemmKernels* gemm = nullptr;
  bool bf16 = false;      ///< SPEC 6's bf16 mode
  bool native = false;    ///< bf16 operands (a bf16 family); else fp32 (maybe emulating bf16)
  int64_t dim = 0;
  int64_t ldq = 0;        ///< Q operand row stride (elements)
  int64_t k_elems = 0;    ///< packed K elements per head
  int64_t v_elems = 0;    ///< packed V elements per head
  int64_t v_stride = 0;   ///< packed V column-panel stride
  size_t elem_bytes = 4;  ///< 2 for bf16 operands
};

/// One thread's scratch, allocated once per call: Q, O and the softmax statistics of a whole
/// task (`task_rows`), S and P of one row chunk.
struct Scratch {
  Scratch(const Geometry& g, const GemmPlan& gp, int64_t task_rows, int64_t row_chunk, int64_t ld)
      : rows_alloc(padded_rows(task_rows)),
        chunk_alloc(padded_rows(row_chunk)),
        scores(aligned_array<float>(chunk_alloc * ld)),
        q(aligned_array<uint8_t>(rows_alloc * gp.ldq * static_cast<int64_t>(gp.elem_bytes))),
        p(aligned_array<simd::bf16_t>(gp.native ? chunk_alloc * ld : 1)),
        o(aligned_array<float>(rows_alloc * gp.dim)),
        row_max(aligned_array<float>(rows_alloc)),
        row_sum(aligned_array<float>(rows_alloc)),
        alpha(aligned_array<float>(rows_alloc)),
        mask(g) {
    // Padding rows are read by the kernels (never stored): keep them finite and defined.
    std::memset(scores.get(), 0, static_cast<size_t>(chunk_alloc * ld) * sizeof(float));
    std::memset(q.get(), 0, static_cast<size_t>(rows_alloc * gp.ldq) * gp.elem_bytes);
    if (gp.native) std::memset(p.get(), 0, static_cast<size_t>(chunk_alloc * ld) * sizeof(simd::bf16_t));
  }
  int64_t rows_alloc;
  int64_t chunk_alloc;
  AlignedArray<float> scores;
  AlignedArray<uint8_t> q;  ///< Q rows in the operand format (float or bf16)
  AlignedArray<simd::bf16_t> p;
  AlignedArray<float> o;    ///< O accumulator rows (stride dim)
  AlignedArray<float> row_max;
  AlignedArray<float> row_sum;
  AlignedArray<float> alpha;
  TileMask mask;
};

/// K and V of one (batch, head) in the family's packed layout.
struct PackedHead {
  const void* k = nullptr;
  const void* v = nullptr;
};

/// Everything one query block needs; pointers are already offset to its (batch, head).
struct QueryBlock {
  const float* q;  ///< [S, D] of this head
  PackedHead packed;
  float* out;
  float* lse;          ///< [S]
  int64_t first = 0;   ///< first query row (sequence index)
  int64_t rows = 0;
  const SegmentList* segments = nullptr;
  const Mask* mask = nullptr;  ///< for masked segments
  int64_t query_tile = -1;     ///< video query tile, for masked segments
};

/// Loads `rows` query rows into the Q operand buffer: a copy (fp32), a copy rounded to bf16
/// values (bf16 emulated on fp32 kernels), or bf16 bits with D padded to 32 (bf16 kernels).
void load_queries(const GemmPlan& gp, const float* q, int64_t rows, Scratch& scratch) {
  if (gp.native) {
    simd::rows_to_bf16(q, gp.dim, rows, gp.dim, gp.ldq,
                       reinterpret_cast<simd::bf16_t*>(scratch.q.get()), gp.ldq);
    return;
  }
  float* dst = reinterpret_cast<float*>(scratch.q.get());
  std::memcpy(dst, q, static_cast<size_t>(rows * gp.dim) * sizeof(float));
  if (gp.bf16) {
    round_inputs(dst, rows * gp.dim, InputRounding::kBf16);
  }
}

/// The flash loop of one query block (see the file comment). Returns the blocks it computed.
/// kMaskable = false (sta, dense) compiles the loop without any per-element mask code.
template <bool kMaskable>
BlockCounts run_query_block(const QueryBlock& qb, const GemmPlan& gp, const KeySpace& ks,
                            float scale, int64_t row_chunk, int64_t ld,
                            const simd::SoftmaxKernels& kernels, Scratch& scratch) {
  BlockCounts did;
  const int64_t dim = gp.dim;
  float* s = scratch.scores.get();
  float* m = scratch.row_max.get();
  float* l = scratch.row_sum.get();
  float* alpha = scratch.alpha.get();
  float* o = scratch.o.get();
  const simd::GemmKernels& gemm = *gp.gemm;
  const void* p_operand = gp.native ? static_cast<const void*>(scratch.p.get()) : s;
  if constexpr (kMaskable) {
    bool has_mask = false;
    for (const KeySegment& seg : *qb.segments) has_mask = has_mask || seg.masked;
    if (has_mask) scratch.mask.set_query_tile(*qb.mask, qb.query_tile);
  }

  // Key segments outside, row chunks inside: a key tile's packed K and V are loaded into L2
  // once for the whole query tile, and a chunk's S (row_chunk x keys) stays in L2 between
  // the GEMMs and the softmax.
  const int64_t rows_all = qb.rows;
  load_queries(gp, qb.q + qb.first * dim, rows_all, scratch);
  std::fill(m, m + rows_all, kNegInf);
  std::fill(l, l + rows_all, 0.0f);
  const size_t q_row_bytes = static_cast<size_t>(gp.ldq) * gp.elem_bytes;
  bool first = true;
  for (const KeySegment& seg : *qb.segments) {
    const KeyBlock& b0 = ks.blocks[static_cast<size_t>(seg.block)];
    const KeyBlock& bn = ks.blocks[static_cast<size_t>(seg.block + seg.blocks - 1)];
    const int64_t ncols = bn.padded + simd::padded_keys(bn.count) - b0.padded;
    const uint8_t* k_seg = static_cast<const uint8_t*>(qb.packed.k) +
                           simd::packed_k_offset(gemm.layout, b0.padded, dim) * gp.elem_bytes;
    const uint8_t* v_seg = static_cast<const uint8_t*>(qb.packed.v) +
                           simd::packed_v_offset(gemm.layout, b0.padded, dim) * gp.elem_bytes;
    if constexpr (kMaskable) {
      if (seg.masked) scratch.mask.set_key_tile(seg.key_tile);
    }
    for (int64_t r0 = 0; r0 < rows_all; r0 += row_chunk) {
      const int64_t rows = std::min(row_chunk, rows_all - r0);
      gemm.qk(scratch.q.get() + r0 * q_row_bytes, gp.ldq, rows, dim, k_seg, ncols, s, ld);
      // Padding keys of each block get score -inf (p = 0): they are not keys.
      for (int64_t b = seg.block; b < seg.block + seg.blocks; ++b) {
        const KeyBlock& kb = ks.blocks[static_cast<size_t>(b)];
        const int64_t c0 = kb.padded - b0.padded + kb.count;
        const int64_t c1 = kb.padded - b0.padded + simd::padded_keys(kb.count);
        if (c0 == c1) continue;
        for (int64_t r = 0; r < rows; ++r) std::fill(s + r * ld + c0, s + r * ld + c1, kNegInf);
      }
      if constexpr (kMaskable) {
        if (seg.masked) scratch.mask.apply(s, ld, r0, rows, kNegInf);  // video query tiles start at 0
      }
      if (gp.native) {
        kernels.online_softmax_bf16(s, ld, rows, ncols, scale, m + r0, l + r0, alpha + r0,
                                    scratch.p.get(), ld);
      } else if (gp.bf16) {
        kernels.online_softmax_bf16(s, ld, rows, ncols, scale, m + r0, l + r0, alpha + r0,
                                    nullptr, 0);
      } else {
        kernels.online_softmax(s, ld, rows, ncols, scale, m + r0, l + r0, alpha + r0);
      }
      gemm.pv(p_operand, ld, rows, ncols, v_seg, gp.v_stride, dim, first ? nullptr : alpha + r0,
              o + r0 * dim, dim);
    }
    first = false;
    if (kMaskable && seg.masked) {
      did.mixed += 1;
    } else {
      did.dense += seg.tiles;
    }
  }
  float* out = qb.out + qb.first * dim;
  for (int64_t r = 0; r < rows_all; ++r) {
    float* orow = out + r * dim;
    const float* acc = o + r * dim;
    if (l[r] != 0.0f) {  // NaN scores propagate (PyTorch); only "no key" gives 0
      const float inv = 1.0f / l[r];
      for (int64_t d = 0; d < dim; ++d) orow[d] = acc[d] * inv;
      qb.lse[qb.first + r] = m[r] + std::log(l[r]);
    } else {  // no allowed key (SPEC section 6)
      std::fill(orow, orow + dim, 0.0f);
      qb.lse[qb.first + r] = kNegInf;
    }
  }
  return did;
}

/// Packs one key block of head `bh` (K or V) into its packed head.
void pack_block(const GemmPlan& gp, const KeySpace& ks, bool is_k, const float* src, int64_t b,
                void* dst) {
  const KeyBlock& kb = ks.blocks[static_cast<size_t>(b)];
  const simd::PackedLayout layout = gp.gemm->layout;
  const float* first = src + kb.first * gp.dim;
  (is_k ? simd::pack_k : simd::pack_v)(layout, first, gp.dim, kb.count, gp.dim, kb.padded,
                                       ks.padded_keys, dst);
  if (gp.bf16 && !gp.native) {  // emulation: the packed fp32 values rounded to bf16 values
    float* f = static_cast<float*>(dst);
    simd::for_each_packed_run(layout, is_k, kb.padded, kb.count, gp.dim, ks.padded_keys,
                              [f](int64_t from, int64_t n) { round_inputs(f + from, n, InputRounding::kBf16); });
  }
}

/// One unit of work: query rows [first, first + rows) of head bh, with their key plan.
struct Task {
  int64_t bh = 0;
  int64_t first = 0;
  int64_t rows = 0;
  int64_t query_tile = -1;  ///< -1 for text query rows
  const SegmentList* segments = nullptr;
  int64_t cost = 0;         ///< rows x padded keys visited (for largest-first scheduling)
};

}  // namespace

BlockCounts flash_attention(const AttentionShape& shape, const Geometry& g,
                            const std::vector<Mask>& masks, float scale, FlashMode mode,
                            const float* q, const float* k, const float* v, float* out,
                            float* lse, const simd::SoftmaxKernels& kernels,
                            const FlashConfig& config, int* threads_used) {
  const int64_t bt = g.tile_tokens();
  const int64_t n_tiles = g.num_tiles();
  const int64_t seq = shape.seq;
  const int64_t dim = shape.dim;
  const int64_t row_chunk = config.row_chunk > 0 ? config.row_chunk : std::min(kDefaultRowChunk, bt);
  int64_t max_task_rows = 0;  // the largest tile (ragged edge tiles are smaller)
  for (int64_t t = 0; t < g.num_tiles(); ++t) max_task_rows = std::max(max_task_rows, g.tile_size(t));
  const int64_t max_cols = simd::padded_keys(
      std::max(config.max_key_cols > 0 ? config.max_key_cols : kDefaultMaxKeyCols, int64_t{1}));
  const int64_t text_rows = config.text_rows > 0 ? config.text_rows : kDefaultTextRows;

  GemmPlan gp;
  gp.gemm = config.gemm != nullptr ? config.gemm : &simd::gemm_kernels(config.bf16);
  gp.bf16 = config.bf16;
  gp.native = gp.gemm->bf16();
  if (gp.native && !gp.bf16) throw Error("precision: a bf16 GEMM family cannot compute fp32");
  gp.dim = dim;
  gp.ldq = gp.native ? simd::padded_dim_bf16(dim) : dim;
  gp.elem_bytes = gp.native ? sizeof(simd::bf16_t) : sizeof(float);

  const KeySpace ks = make_key_space(g, max_cols);
  const int64_t ld = (std::max(max_cols, ks.widest) + 15) / 16 * 16;
  gp.k_elems = simd::packed_k_elements(gp.gemm->layout, ks.padded_keys, dim);
  gp.v_elems = simd::packed_v_elements(gp.gemm->layout, ks.padded_keys, dim);
  gp.v_stride = simd::packed_v_panel_stride(gp.gemm->layout, ks.padded_keys, dim);

  // Plans per distinct mask (one shared list when all heads use the same mask).
  std::vector<std::vector<SegmentList>> plans;
  for (const Mask& mask : masks) plans.push_back(plan_video_queries(g, ks, mask, mode, max_cols));
  const SegmentList text_plan = plan_text_queries(g, ks, max_cols);
  auto plan_cost = [&ks](const SegmentList& list) {
    int64_t keys = 0;
    for (const KeySegment& seg : list) {
      const KeyBlock& bn = ks.blocks[static_cast<size_t>(seg.block + seg.blocks - 1)];
      keys += bn.padded + simd::padded_keys(bn.count) -
              ks.blocks[static_cast<size_t>(seg.block)].padded;
    }
    return keys;
  };

  // Heads are packed and computed in groups whose packed K and V fit the budget.
  const int64_t bh_count = shape.batch * shape.heads;
  const int64_t head_bytes = (gp.k_elems + gp.v_elems) * static_cast<int64_t>(gp.elem_bytes);
  const int64_t budget = config.pack_budget_bytes > 0 ? config.pack_budget_bytes : kPackBudgetBytes;
  const int64_t group = std::max<int64_t>(1, std::min(bh_count, budget / std::max<int64_t>(head_bytes, 1)));

  // Tasks of one group (relative bh), largest first: the text rows (every key) and natten's
  // busiest tiles start early, so dynamic scheduling ends on small tasks. Any order gives the
  // same bits: a task is computed by one thread in a fixed order.
  auto group_tasks = [&](int64_t heads_in_group, int64_t bh0) {
    std::vector<Task> tasks;
    for (int64_t i = 0; i < heads_in_group; ++i) {
      const int64_t bh = bh0 + i;
      const int64_t head = bh % shape.heads;
      const auto& plan = plans[masks.size() == 1 ? 0 : static_cast<size_t>(head)];
      for (int64_t first = g.video_tokens(); first < seq; first += text_rows) {
        const int64_t rows = std::min(text_rows, seq - first);
        tasks.push_back({bh, first, rows, -1, &text_plan, rows * plan_cost(text_plan)});
      }
      for (int64_t qt = 0; qt < n_tiles; ++qt) {
        const SegmentList* segs = &plan[static_cast<size_t>(qt)];
        tasks.push_back({bh, g.tile_offset(qt), g.tile_size(qt), qt, segs,
                         g.tile_size(qt) * plan_cost(*segs)});
      }
    }
    std::stable_sort(tasks.begin(), tasks.end(),
                     [](const Task& a, const Task& b) { return a.cost > b.cost; });
    return tasks;
  };

  const int max_threads = std::max(1, omp_get_max_threads());
  const int64_t max_tasks = group * (n_tiles + (g.text_pad + text_rows - 1) / text_rows);
  const int team = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(max_threads, max_tasks)));
  std::vector<BlockCounts> per_thread(static_cast<size_t>(team));
  // Scratch and packed heads are allocated here, not inside the parallel region, so that a
  // failed allocation throws to the caller instead of terminating.
  std::vector<std::unique_ptr<Scratch>> scratches;
  for (int t = 0; t < team; ++t) {
    scratches.push_back(std::make_unique<Scratch>(g, gp, std::max(max_task_rows, text_rows),
                                                  row_chunk, ld));
  }
  LargeArray<uint8_t> packed(group * head_bytes, "packed keys and values");
  auto packed_k = [&](int64_t i) { return packed.data() + i * head_bytes; };
  auto packed_v = [&](int64_t i) {
    return packed.data() + i * head_bytes + gp.k_elems * static_cast<int64_t>(gp.elem_bytes);
  };
  const int64_t n_blocks = static_cast<int64_t>(ks.blocks.size());
  int used = 1;

  for (int64_t bh0 = 0; bh0 < bh_count; bh0 += group) {
    const int64_t heads_in_group = std::min(group, bh_count - bh0);
    const std::vector<Task> tasks = group_tasks(heads_in_group, bh0);
    const int64_t pack_jobs = heads_in_group * n_blocks * 2;
#pragma omp parallel num_threads(team)
    {
      Scratch& scratch = *scratches[static_cast<size_t>(omp_get_thread_num())];
      BlockCounts did;
#pragma omp single
      used = omp_get_num_threads();
      // K and V of the group, packed once and shared read-only by every task.
#pragma omp for schedule(dynamic, 1)
      for (int64_t job = 0; job < pack_jobs; ++job) {
        const int64_t i = job / (n_blocks * 2);
        const int64_t b = (job / 2) % n_blocks;
        const bool is_k = job % 2 == 0;
        const float* src = (is_k ? k : v) + (bh0 + i) * seq * dim;
        pack_block(gp, ks, is_k, src, b, is_k ? packed_k(i) : packed_v(i));
      }
#pragma omp for schedule(dynamic, 1)
      for (size_t t = 0; t < tasks.size(); ++t) {
        const Task& task = tasks[t];
        const int64_t i = task.bh - bh0;
        QueryBlock qb;
        qb.first = task.first;
        qb.rows = task.rows;
        qb.segments = task.segments;
        qb.query_tile = task.query_tile;
        qb.mask = &mask_for_head(masks, task.bh % shape.heads);
        qb.q = q + task.bh * seq * dim;
        qb.packed = {packed_k(i), packed_v(i)};
        qb.out = out + task.bh * seq * dim;
        qb.lse = lse + task.bh * seq;
        const int64_t chunk = row_chunk;
        BlockCounts block =
            mode == FlashMode::kNatten
                ? run_query_block<true>(qb, gp, ks, scale, chunk, ld, kernels, scratch)
                : run_query_block<false>(qb, gp, ks, scale, chunk, ld, kernels, scratch);
        if (qb.query_tile >= 0) {
          block.empty = n_tiles - block.dense - block.mixed;
          did += block;
        }
      }
      per_thread[static_cast<size_t>(omp_get_thread_num())] += did;
    }
  }

  BlockCounts total;
  for (const BlockCounts& c : per_thread) total += c;
  if (threads_used != nullptr) *threads_used = used;
  return total;
}

}  // namespace sta::detail
