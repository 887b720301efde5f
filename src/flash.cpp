// Flash-style attention over tiles (FlashAttention-2, Dao 2023) for the fast backends. One
// task = one (batch, head, query tile); it walks its key segments in a fixed order, so the
// result never depends on the thread that runs it. Per key segment:
//   S = Q K^T            cblas_sgemm, beta = 0 (row chunk x keys, stays in L2)
//   [mask mixed blocks]  natten only: per-element mask from the per-axis intervals
//   P = exp(scale S - m) online softmax, simd/ (scale fused into the exponent)
//   O = alpha O + P V    rescale only rows whose max moved, then cblas_sgemm with beta = 1
// and finally O /= l, lse = m + log l.
#include "flash.hpp"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <mutex>

#include "sta/error.hpp"

namespace sta::detail {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
// A whole 384-row FastVideo tile per GEMM: OpenBLAS packs the K and V tiles once per call,
// so more rows per call amortise that copy (measured on Zen4, one thread, dense 12x32x40:
// 96 rows 75 GFLOP/s, 128: 77, 192: 82, 384: 87; the 590 KiB score block still fits L2).
constexpr int64_t kDefaultRowChunk = 384;
// Runs of contiguous dense key tiles are merged up to this many keys: no gain at 384-token
// tiles (768 measured the same), but it keeps GEMMs reasonably sized for tiny test tiles.
constexpr int64_t kDefaultMaxKeyCols = 384;

/// A run of contiguous keys (sequence indices, tiled order) handled by one pair of GEMMs.
struct KeySegment {
  int64_t first = 0;      ///< first key
  int64_t count = 0;      ///< keys
  int64_t key_tile = -1;  ///< the video key tile of a masked segment
  int64_t tiles = 0;      ///< video key tiles covered (0 for text keys)
  bool masked = false;    ///< needs the per-element mask (a mixed block)
};
using SegmentList = std::vector<KeySegment>;

/// Appends a key segment, merging it into the previous one when both are unmasked, contiguous
/// in memory and the merged run stays within `max_cols` keys (one bigger GEMM, one softmax
/// pass instead of several).
void push_segment(SegmentList& list, const KeySegment& seg, int64_t max_cols) {
  if (!seg.masked && !list.empty()) {
    KeySegment& last = list.back();
    if (!last.masked && last.first + last.count == seg.first &&
        last.count + seg.count <= max_cols && (last.tiles > 0) == (seg.tiles > 0)) {
      last.count += seg.count;
      last.tiles += seg.tiles;
      return;
    }
  }
  list.push_back(seg);
}

/// Valid text keys [V, V + text_length), cut into segments of at most max_cols keys.
void push_text_keys(SegmentList& list, const Geometry& g, int64_t max_cols) {
  const int64_t v = g.video_tokens();
  for (int64_t first = v; first < v + g.text_length; first += max_cols) {
    list.push_back({first, std::min(max_cols, v + g.text_length - first), -1, 0, false});
  }
}

/// The keys of video key tile `kt`: its real token range in tiled order (a ragged edge tile
/// is shorter, and starts at Geometry::tile_offset, not kt * tile_tokens()).
KeySegment key_tile_segment(const Geometry& g, int64_t kt, bool masked) {
  return {g.tile_offset(kt), g.tile_size(kt), kt, 1, masked};
}

/// Key segments of every video query tile for one head mask.
std::vector<SegmentList> plan_video_queries(const Geometry& g, const Mask& mask, FlashMode mode,
                                            int64_t max_cols) {
  const int64_t n = g.num_tiles();
  std::vector<SegmentList> plan(static_cast<size_t>(n));
  if (mode == FlashMode::kDense) {
    for (int64_t qt = 0; qt < n; ++qt) {
      for (int64_t kt = 0; kt < n; ++kt) push_segment(plan[qt], key_tile_segment(g, kt, false), max_cols);
    }
  } else {
    const auto visits = key_tile_visits(g, mask);
    for (int64_t qt = 0; qt < n; ++qt) {
      for (const KeyTileVisit& visit : visits[qt]) {
        if (!visit.dense && mode == FlashMode::kSta) {
          throw Error("--mask: " + to_string(mask) +
                      " has a mixed block; the sta backend computes dense blocks only");
        }
        push_segment(plan[qt], key_tile_segment(g, visit.key_tile, !visit.dense), max_cols);
      }
    }
  }
  for (SegmentList& list : plan) push_text_keys(list, g, max_cols);
  return plan;
}

/// Text queries see every valid key (SPEC section 4): all video tiles, then the text.
SegmentList plan_text_queries(const Geometry& g, int64_t max_cols) {
  SegmentList list;
  for (int64_t kt = 0; kt < g.num_tiles(); ++kt) push_segment(list, key_tile_segment(g, kt, false), max_cols);
  push_text_keys(list, g, max_cols);
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

/// The per-element mask of one mixed block as a product of per-axis tables (SPEC section 2):
/// allowed_t[i][j], allowed_h[i][j] and an additive 0 / -inf row bias_w[i][j], for query
/// offset i and key offset j inside the tiles on each axis. O(tile_t^2 + tile_h^2 + tile_w^2)
/// to build, O(keys) per query row to apply. On a ragged canvas the query and key tiles have
/// their own (possibly shorter) extents; rows and runs follow them.
class BlockMask {
 public:
  explicit BlockMask(const Geometry& g)
      : g_(g),
        intervals_(aligned_array<AxisInterval>(g.tile.t + g.tile.h + g.tile.w)),
        allowed_t_(aligned_array<uint8_t>(g.tile.t * g.tile.t)),
        allowed_h_(aligned_array<uint8_t>(g.tile.h * g.tile.h)),
        bias_w_(aligned_array<float>(g.tile.w * g.tile.w)) {}

  /// The per-axis key intervals of every query coordinate of video query tile `qt`.
  void set_query_tile(const Mask& mask, int64_t qt) {
    const Extent3 tile_coord = g_.tile_coord(qt);
    query_extent_ = g_.tile_extent(tile_coord);
    AxisInterval* iv = intervals_.get();
    for (int a = 0; a < 3; ++a) {
      for (int64_t i = 0; i < query_extent_[a]; ++i) {
        iv[i] = allowed_keys_on_axis(mask.kind, mask.window[a], g_.canvas[a], g_.tile[a],
                                     tile_coord[a] * g_.tile[a] + i);
      }
      iv += g_.tile[a];
    }
  }

  /// Builds the tables for key tile `kt` (after set_query_tile).
  void set_key_tile(int64_t kt) {
    const Extent3 tile_coord = g_.tile_coord(kt);
    key_extent_ = g_.tile_extent(tile_coord);
    const AxisInterval* iv = intervals_.get();
    for (int a = 0; a < 3; ++a) {
      const int64_t klen = key_extent_[a];
      const int64_t first_key = tile_coord[a] * g_.tile[a];
      for (int64_t i = 0; i < query_extent_[a]; ++i) {
        for (int64_t j = 0; j < klen; ++j) {
          const bool ok = interval_contains(iv[i], g_.canvas[a], first_key + j);
          if (a == 0) allowed_t_[i * klen + j] = ok;
          if (a == 1) allowed_h_[i * klen + j] = ok;
          if (a == 2) bias_w_[i * klen + j] = ok ? 0.0f : kNegInf;
        }
      }
      iv += g_.tile[a];
    }
  }

  /// Masks `rows` rows of scores (stride ld) of query offsets first_row.. in the tile.
  void apply(float* scores, int64_t ld, int64_t first_row, int64_t rows) const {
    const int64_t qh = query_extent_.h, qw = query_extent_.w;
    const int64_t tt = key_extent_.t, th = key_extent_.h, tw = key_extent_.w;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t qi = first_row + r;
      const uint8_t* at = allowed_t_.get() + (qi / (qh * qw)) * tt;
      const uint8_t* ah = allowed_h_.get() + ((qi / qw) % qh) * th;
      const float* bw = bias_w_.get() + (qi % qw) * tw;
      float* s = scores + r * ld;
      for (int64_t a = 0; a < tt; ++a) {
        for (int64_t b = 0; b < th; ++b) {
          float* run = s + (a * th + b) * tw;
          if (at[a] && ah[b]) {
            for (int64_t c = 0; c < tw; ++c) run[c] += bw[c];
          } else {
            std::fill(run, run + tw, kNegInf);
          }
        }
      }
    }
  }

 private:
  const Geometry& g_;
  Extent3 query_extent_;  ///< tokens of the current query tile per axis
  Extent3 key_extent_;    ///< tokens of the current key tile per axis
  AlignedArray<AxisInterval> intervals_;
  AlignedArray<uint8_t> allowed_t_;
  AlignedArray<uint8_t> allowed_h_;
  AlignedArray<float> bias_w_;
};

/// One thread's scratch, allocated once per call.
struct Scratch {
  Scratch(const Geometry& g, int64_t row_chunk, int64_t ld)
      : scores(aligned_array<float>(row_chunk * ld)),
        row_max(aligned_array<float>(row_chunk)),
        row_sum(aligned_array<float>(row_chunk)),
        alpha(aligned_array<float>(row_chunk)),
        mask(g) {}
  AlignedArray<float> scores;
  AlignedArray<float> row_max;
  AlignedArray<float> row_sum;
  AlignedArray<float> alpha;
  BlockMask mask;
};

/// Everything one query block needs; pointers are already offset to its (batch, head).
struct QueryBlock {
  const float* q;  ///< [S, D] of this head
  const float* k;
  const float* v;
  float* out;
  float* lse;          ///< [S]
  int64_t first = 0;   ///< first query row (sequence index)
  int64_t rows = 0;
  const SegmentList* segments = nullptr;
  const Mask* mask = nullptr;  ///< for masked segments
  int64_t query_tile = -1;     ///< video query tile, for masked segments
};

/// The flash loop of one query block (see the file comment). Returns the blocks it computed.
/// kMaskable = false (sta, dense) compiles the loop without any per-element mask code.
template <bool kMaskable>
BlockCounts run_query_block(const QueryBlock& qb, int64_t dim, float scale, int64_t row_chunk,
                            int64_t ld, const simd::SoftmaxKernels& kernels, Scratch& scratch) {
  BlockCounts did;
  float* s = scratch.scores.get();
  float* m = scratch.row_max.get();
  float* l = scratch.row_sum.get();
  float* alpha = scratch.alpha.get();
  if constexpr (kMaskable) {
    bool has_mask = false;
    for (const KeySegment& seg : *qb.segments) has_mask = has_mask || seg.masked;
    if (has_mask) scratch.mask.set_query_tile(*qb.mask, qb.query_tile);
  }

  for (int64_t r0 = 0; r0 < qb.rows; r0 += row_chunk) {
    const int64_t rows = std::min(row_chunk, qb.rows - r0);
    const float* q = qb.q + (qb.first + r0) * dim;
    float* o = qb.out + (qb.first + r0) * dim;
    std::fill(m, m + rows, kNegInf);
    std::fill(l, l + rows, 0.0f);
    bool first = true;
    for (const KeySegment& seg : *qb.segments) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows),
                  static_cast<int>(seg.count), static_cast<int>(dim), 1.0f, q,
                  static_cast<int>(dim), qb.k + seg.first * dim, static_cast<int>(dim), 0.0f, s,
                  static_cast<int>(ld));
      if constexpr (kMaskable) {
        if (seg.masked) {
          scratch.mask.set_key_tile(seg.key_tile);
          scratch.mask.apply(s, ld, r0, rows);  // video query tiles start at offset 0
        }
      }
      kernels.online_softmax(s, ld, rows, seg.count, scale, m, l, alpha);
      if (!first) {
        for (int64_t r = 0; r < rows; ++r) {
          if (alpha[r] == 1.0f) continue;  // the max did not move: nothing to rescale
          float* orow = o + r * dim;
          const float a = alpha[r];
          for (int64_t d = 0; d < dim; ++d) orow[d] *= a;
        }
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows),
                  static_cast<int>(dim), static_cast<int>(seg.count), 1.0f, s,
                  static_cast<int>(ld), qb.v + seg.first * dim, static_cast<int>(dim),
                  first ? 0.0f : 1.0f, o, static_cast<int>(dim));
      first = false;
      if (r0 == 0) {
        if (kMaskable && seg.masked) {
          did.mixed += 1;
        } else {
          did.dense += seg.tiles;
        }
      }
    }
    for (int64_t r = 0; r < rows; ++r) {
      float* orow = o + r * dim;
      if (l[r] != 0.0f) {  // NaN scores propagate (PyTorch); only "no key" gives 0
        const float inv = 1.0f / l[r];
        for (int64_t d = 0; d < dim; ++d) orow[d] *= inv;
        qb.lse[qb.first + r0 + r] = m[r] + std::log(l[r]);
      } else {  // no allowed key (SPEC section 6)
        std::fill(orow, orow + dim, 0.0f);
        qb.lse[qb.first + r0 + r] = kNegInf;
      }
    }
  }
  return did;
}

void use_single_threaded_blas() {
  // BLAS runs inside each OpenMP task: two threads on two tiles beat one 2-thread sgemm,
  // and a threaded BLAS here would oversubscribe the cores.
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

}  // namespace

BlockCounts flash_attention(const AttentionShape& shape, const Geometry& g,
                            const std::vector<Mask>& masks, float scale, FlashMode mode,
                            const float* q, const float* k, const float* v, float* out,
                            float* lse, const simd::SoftmaxKernels& kernels,
                            const FlashConfig& config, int* threads_used) {
  use_single_threaded_blas();
  const int64_t bt = g.tile_tokens();
  const int64_t n_tiles = g.num_tiles();
  const int64_t seq = shape.seq;
  const int64_t dim = shape.dim;
  const int64_t row_chunk = config.row_chunk > 0 ? config.row_chunk : std::min(kDefaultRowChunk, bt);
  const int64_t max_cols =
      std::max(config.max_key_cols > 0 ? config.max_key_cols : kDefaultMaxKeyCols, bt);
  const int64_t ld = (max_cols + 15) / 16 * 16;

  // Plans per distinct mask (one shared list when all heads use the same mask).
  std::vector<std::vector<SegmentList>> plans;
  for (const Mask& mask : masks) plans.push_back(plan_video_queries(g, mask, mode, max_cols));
  const SegmentList text_plan = plan_text_queries(g, max_cols);

  // Tasks: the (expensive) text query blocks of every head first, then the video query tiles,
  // so dynamic scheduling ends on small tasks.
  const int64_t bh_count = shape.batch * shape.heads;
  const int64_t text_blocks = (g.text_pad + bt - 1) / bt;
  const int64_t text_tasks = bh_count * text_blocks;
  const int64_t tasks = text_tasks + bh_count * n_tiles;

  const int max_threads = std::max(1, omp_get_max_threads());
  const int team = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(max_threads, tasks)));
  std::vector<BlockCounts> per_thread(static_cast<size_t>(team));
  // Scratch is allocated here, not inside the parallel region, so that a failed allocation
  // throws to the caller instead of terminating.
  std::vector<std::unique_ptr<Scratch>> scratches;
  for (int t = 0; t < team; ++t) scratches.push_back(std::make_unique<Scratch>(g, row_chunk, ld));
  int used = 1;

#pragma omp parallel num_threads(team)
  {
    Scratch& scratch = *scratches[static_cast<size_t>(omp_get_thread_num())];
    BlockCounts did;
#pragma omp single
    used = omp_get_num_threads();
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      QueryBlock qb;
      int64_t bh = 0;
      if (task < text_tasks) {
        bh = task / text_blocks;
        const int64_t block = task % text_blocks;
        qb.first = g.video_tokens() + block * bt;
        qb.rows = std::min(bt, seq - qb.first);
        qb.segments = &text_plan;
      } else {
        bh = (task - text_tasks) / n_tiles;
        const int64_t qt = (task - text_tasks) % n_tiles;
        const int64_t head = bh % shape.heads;
        qb.first = g.tile_offset(qt);  // qt * bt unless ragged
        qb.rows = g.tile_size(qt);
        qb.segments = &plans[masks.size() == 1 ? 0 : static_cast<size_t>(head)][qt];
        qb.mask = &mask_for_head(masks, head);
        qb.query_tile = qt;
      }
      qb.q = q + bh * seq * dim;
      qb.k = k + bh * seq * dim;
      qb.v = v + bh * seq * dim;
      qb.out = out + bh * seq * dim;
      qb.lse = lse + bh * seq;
      BlockCounts block =
          mode == FlashMode::kNatten
              ? run_query_block<true>(qb, dim, scale, row_chunk, ld, kernels, scratch)
              : run_query_block<false>(qb, dim, scale, row_chunk, ld, kernels, scratch);
      if (qb.query_tile >= 0) {
        block.empty = n_tiles - block.dense - block.mixed;
        did += block;
      }
    }
    per_thread[static_cast<size_t>(omp_get_thread_num())] = did;
  }

  BlockCounts total;
  for (const BlockCounts& c : per_thread) total += c;
  if (threads_used != nullptr) *threads_used = used;
  return total;
}

}  // namespace sta::detail
