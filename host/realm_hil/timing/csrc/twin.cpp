// Software twin of the overclocked systolic array: INT8 GEMM with the data-dependent timing-error
// model of docs/timing-error-model.md, bit-exact with realm_hil.timing.emulation.timed_dot.
//
// Output element (m, j) is accumulated by PE (m % n, j % n) in k order from a reset register.
// Lanes of a vector are consecutive output columns, so neighbouring lanes belong to different PEs
// with different L. The late mask AND_{i=1..L} (P << i) is therefore built with per-lane shift
// counts: T holds the AND over a run of c shifts, and T & (T << d) extends it to c + d for any
// d <= c (the runs overlap). Starting at c = 1 and taking d = min(c, L - c) reaches c = L for every
// L <= 30 in 5 doubling steps, 2 operations each, the same cost as a constant-shift chain. Blocks
// whose lanes all have small L need fewer steps (template STEPS). Lanes with L >= 31 get a first
// shift of 32, which yields no late bits; L = 0 lanes OR in all ones (late = C); L < 0 lanes never
// leave the reset value 0 and are zeroed on store.
//
// realm_twin_checksums runs the checksum accumulators of realm_ingress and realm_egress under the same
// model, for accelerators built with EMU_CHECKS=1 (rtl/README.md, "Overclocked checksums").

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__AVX512F__) && !defined(REALM_TWIN_PORTABLE)
#include <immintrin.h>
#define REALM_TWIN_AVX512 1
#endif

namespace {

constexpr int kExact = 31;
constexpr int kLanes = 16;
constexpr int kVecs = 2;
constexpr int kPanel = kLanes * kVecs;  // output columns per panel
constexpr int kMaxSteps = 5;
// 4 rows x kVecs vectors = 8 independent accumulators, enough to hide the ~15-operation dependency
// chain of one timed update.
constexpr int kRowBlock = 4;

enum Kind : int { kZero = -1, kPlain = 0 };  // > 0: timed with that many doubling steps

// Per-lane shift counts for one row class and one panel (see the header comment).
struct PanelParams {
  uint32_t s0[kPanel];            // first shift: 1, or 32 on lanes that can never be late
  uint32_t d[kMaxSteps][kPanel];  // doubling-step shifts
  uint32_t z0[kPanel];            // all ones on L = 0 lanes
  uint32_t valid[kPanel];    // column exists (panels pad N up to a multiple of kPanel)
  uint32_t nonneg[kPanel];   // L >= 0
  int kind;
};

PanelParams make_params(const int8_t* lrow, int n, int64_t col0, int64_t N) {
  PanelParams p{};
  bool any_plain = false;
  int steps = 0;
  bool any_timed = false;
  for (int lane = 0; lane < kPanel; ++lane) {
    const int64_t j = col0 + lane;
    const bool valid = j < N;
    const int L = valid ? lrow[j % n] : kExact;
    p.valid[lane] = valid ? ~0u : 0u;
    p.nonneg[lane] = L >= 0 ? ~0u : 0u;
    p.s0[lane] = (L >= 1 && L < kExact) ? 1u : 32u;
    p.z0[lane] = L == 0 ? ~0u : 0u;
    if (!valid || L < 0) continue;
    if (L >= kExact) {
      any_plain = true;
      continue;
    }
    any_timed = true;
    int need = 1;
    while ((1 << need) < L) ++need;
    steps = std::max(steps, need);
    int c = 1;
    for (int k = 0; k < kMaxSteps; ++k) {
      const int dk = L >= 1 ? std::min(c, L - c) : 0;
      p.d[k][lane] = static_cast<uint32_t>(dk);
      c += dk;
    }
  }
  p.kind = any_timed ? steps : (any_plain ? kPlain : kZero);
  return p;
}

inline int32_t pack16(int8_t v) { return static_cast<int32_t>(static_cast<uint16_t>(static_cast<int16_t>(v))); }

struct Problem {
  const int8_t* x;  // (M, K) row-major
  int64_t K, N;
  int32_t* y;
};

#ifdef REALM_TWIN_AVX512

template <int STEPS>
inline __m512i timed_update(__m512i a, __m512i prod, __m512i s0, const __m512i* d, __m512i z0) {
  const __m512i s = _mm512_add_epi32(a, prod);
  const __m512i carry = _mm512_ternarylogic_epi32(s, a, prod, 0x96);
  const __m512i prop = _mm512_xor_si512(a, prod);
  __m512i t = _mm512_sllv_epi32(prop, s0);
  __m512i late;
  if constexpr (STEPS == 1) {
    t = _mm512_ternarylogic_epi32(t, _mm512_sllv_epi32(t, d[0]), z0, 0xEA);
    late = _mm512_and_si512(carry, t);
  } else {
    t = _mm512_ternarylogic_epi32(t, _mm512_sllv_epi32(t, d[0]), z0, 0xEA);
    for (int i = 1; i < STEPS - 1; ++i) t = _mm512_and_si512(t, _mm512_sllv_epi32(t, d[i]));
    late = _mm512_ternarylogic_epi32(carry, t, _mm512_sllv_epi32(t, d[STEPS - 1]), 0x80);
  }
  return _mm512_ternarylogic_epi32(s, a, late, 0xD8);  // late ? a : s, bit by bit
}

template <int STEPS, int ROWS>
void run_block(const Problem& pr, const PanelParams& pp, const int32_t* wpanel, int64_t col0,
               const int64_t* rows) {
  __m512i s0[kVecs], z0[kVecs], d[kVecs][kMaxSteps];
  for (int v = 0; v < kVecs; ++v) {
    s0[v] = _mm512_loadu_si512(pp.s0 + v * kLanes);
    z0[v] = _mm512_loadu_si512(pp.z0 + v * kLanes);
    for (int i = 0; i < kMaxSteps; ++i) d[v][i] = _mm512_loadu_si512(pp.d[i] + v * kLanes);
  }
  const int8_t* xr[ROWS];
  for (int r = 0; r < ROWS; ++r) xr[r] = pr.x + rows[r] * pr.K;
  __m512i acc[ROWS][kVecs];
  for (int r = 0; r < ROWS; ++r)
    for (int v = 0; v < kVecs; ++v) acc[r][v] = _mm512_setzero_si512();
  for (int64_t k = 0; k < pr.K; ++k) {
    __m512i wv[kVecs];
    for (int v = 0; v < kVecs; ++v) wv[v] = _mm512_loadu_si512(wpanel + k * kPanel + v * kLanes);
    for (int r = 0; r < ROWS; ++r) {
      const __m512i xv = _mm512_set1_epi32(pack16(xr[r][k]));
      for (int v = 0; v < kVecs; ++v) {
        const __m512i prod = _mm512_madd_epi16(xv, wv[v]);
        if constexpr (STEPS == kPlain)
          acc[r][v] = _mm512_add_epi32(acc[r][v], prod);
        else
          acc[r][v] = timed_update<STEPS>(acc[r][v], prod, s0[v], d[v], z0[v]);
      }
    }
  }
  for (int v = 0; v < kVecs; ++v) {
    const __mmask16 valid = _mm512_test_epi32_mask(_mm512_loadu_si512(pp.valid + v * kLanes),
                                                   _mm512_set1_epi32(-1));
    const __mmask16 nonneg = _mm512_test_epi32_mask(_mm512_loadu_si512(pp.nonneg + v * kLanes),
                                                    _mm512_set1_epi32(-1));
    for (int r = 0; r < ROWS; ++r)
      _mm512_mask_storeu_epi32(pr.y + rows[r] * pr.N + col0 + v * kLanes, valid,
                               _mm512_maskz_mov_epi32(nonneg, acc[r][v]));
  }
}

#else

inline uint32_t shl(uint32_t x, uint32_t s) { return s >= 32 ? 0u : x << s; }

template <int STEPS, int ROWS>
void run_block(const Problem& pr, const PanelParams& pp, const int32_t* wpanel, int64_t col0,
               const int64_t* rows) {
  uint32_t acc[ROWS][kPanel] = {};
  for (int64_t k = 0; k < pr.K; ++k) {
    const int32_t* wk = wpanel + k * kPanel;
    for (int r = 0; r < ROWS; ++r) {
      const int32_t x = pr.x[rows[r] * pr.K + k];
      for (int lane = 0; lane < kPanel; ++lane) {
        const uint32_t prod = static_cast<uint32_t>(x * static_cast<int16_t>(wk[lane]));
        const uint32_t a = acc[r][lane];
        const uint32_t s = a + prod;
        if constexpr (STEPS == kPlain) {
          acc[r][lane] = s;
        } else {
          const uint32_t prop = a ^ prod;
          uint32_t t = shl(prop, pp.s0[lane]);
          t = (t & shl(t, pp.d[0][lane])) | pp.z0[lane];
          for (int i = 1; i < STEPS; ++i) t &= shl(t, pp.d[i][lane]);
          const uint32_t late = (s ^ prop) & t;
          acc[r][lane] = (s & ~late) | (a & late);
        }
      }
    }
  }
  for (int r = 0; r < ROWS; ++r)
    for (int lane = 0; lane < kPanel; ++lane)
      if (pp.valid[lane])
        pr.y[rows[r] * pr.N + col0 + lane] = static_cast<int32_t>(acc[r][lane] & pp.nonneg[lane]);
}

#endif

template <int ROWS>
void dispatch_steps(const Problem& pr, const PanelParams& pp, const int32_t* wpanel, int64_t col0,
                    const int64_t* rows) {
  switch (pp.kind) {
    case kPlain: return run_block<kPlain, ROWS>(pr, pp, wpanel, col0, rows);
    case 1: return run_block<1, ROWS>(pr, pp, wpanel, col0, rows);
    case 2: return run_block<2, ROWS>(pr, pp, wpanel, col0, rows);
    case 3: return run_block<3, ROWS>(pr, pp, wpanel, col0, rows);
    case 4: return run_block<4, ROWS>(pr, pp, wpanel, col0, rows);
    default: return run_block<5, ROWS>(pr, pp, wpanel, col0, rows);
  }
}

void dispatch(const Problem& pr, const PanelParams& pp, const int32_t* wpanel, int64_t col0,
              const int64_t* rows, int count) {
  if (pp.kind == kZero) {
    for (int r = 0; r < count; ++r)
      for (int64_t j = col0; j < std::min<int64_t>(col0 + kPanel, pr.N); ++j) pr.y[rows[r] * pr.N + j] = 0;
    return;
  }
  switch (count) {
    case 1: return dispatch_steps<1>(pr, pp, wpanel, col0, rows);
    case 2: return dispatch_steps<2>(pr, pp, wpanel, col0, rows);
    case 3: return dispatch_steps<3>(pr, pp, wpanel, col0, rows);
    default: return dispatch_steps<4>(pr, pp, wpanel, col0, rows);
  }
}

// One panel of w, (K, kPanel), each value in the low half of a 32-bit word (pmaddwd operand),
// columns past N zero.
void pack_panel(const int8_t* w, int64_t K, int64_t N, int64_t col0, int32_t* out) {
  const int64_t width = std::min<int64_t>(kPanel, N - col0);
  for (int64_t k = 0; k < K; ++k) {
    int32_t* row = out + k * kPanel;
    for (int64_t lane = 0; lane < width; ++lane) row[lane] = pack16(w[k * N + col0 + lane]);
    for (int64_t lane = width; lane < kPanel; ++lane) row[lane] = 0;
  }
}

struct Block {
  int row_class;
  int64_t first;  // index of the block's first row within its row class
  int count;
};

// One GEMM split into tasks (a panel times a run of row blocks) that workers claim from a shared
// counter. Helper threads co-own the job, so one that the OS schedules late, after every task is
// claimed, touches nothing of the caller's and the caller never waits for it to start: the call is
// never slower than single-threaded, even on an oversubscribed machine (a fork-join barrier there
// costs a scheduler time slice per call).
struct Job {
  const int8_t* x;
  const int8_t* w;
  const int8_t* L;
  int64_t K, N;
  int n;
  int32_t* y;
  std::vector<Block> blocks;
  int64_t panels, chunks, per_task;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};

  int64_t tasks() const { return panels * chunks; }
};

void work(Job& job) {
  const Problem pr{job.x, job.K, job.N, job.y};
  const int64_t nblocks = static_cast<int64_t>(job.blocks.size());
  std::vector<int32_t> wpanel;
  int64_t packed = -1;
  // Tasks are numbered panel-major and a worker keeps its packed panel, so consecutive tasks of one
  // panel reuse it from L2.
  for (int64_t t = job.next.fetch_add(1); t < job.tasks(); t = job.next.fetch_add(1)) {
    const int64_t panel = t / job.chunks;
    const int64_t col0 = panel * kPanel;
    if (packed != panel) {
      wpanel.resize(static_cast<size_t>(job.K * kPanel));
      pack_panel(job.w, job.K, job.N, col0, wpanel.data());
      packed = panel;
    }
    const int64_t end = std::min(nblocks, (t % job.chunks + 1) * job.per_task);
    for (int64_t b = (t % job.chunks) * job.per_task; b < end; ++b) {
      const Block& blk = job.blocks[b];
      int64_t rows[kRowBlock];
      for (int r = 0; r < blk.count; ++r) rows[r] = blk.row_class + (blk.first + r) * job.n;
      const PanelParams pp = make_params(job.L + blk.row_class * job.n, job.n, col0, job.N);
      dispatch(pr, pp, wpanel.data(), col0, rows, blk.count);
    }
    job.done.fetch_add(1, std::memory_order_release);
  }
}

// One accumulator update a <- a + b of the model, built exactly as rtl/realm_timed_add.v builds it
// (L clamped to [-1, 31]); branch-free, so loops over lanes with per-lane L vectorise.
inline uint32_t timed_add(uint32_t a, uint32_t b, int32_t L) {
  const uint32_t s = a + b;
  const uint32_t prop = a ^ b;
  const uint32_t run1 = prop << 1;
  const uint32_t run2 = run1 & (run1 << 1);
  const uint32_t run4 = run2 & (run2 << 2);
  const uint32_t run8 = run4 & (run4 << 4);
  const uint32_t run16 = run8 & (run8 << 8);
  uint32_t run = (L & 1) ? run1 : ~0u;
  run = (L & 2) ? run2 & (run << 2) : run;
  run = (L & 4) ? run4 & (run << 4) : run;
  run = (L & 8) ? run8 & (run << 8) : run;
  run = (L & 16) ? run16 & (run << 16) : run;
  const uint32_t late = L >= kExact ? 0u : (L < 0 ? ~0u : (s ^ prop) & run);
  return (s & ~late) | (a & late);
}

// Accumulates acc[i] <- acc[i] + scale * v[i] under the model for every lane i with its own L[i].
inline void timed_mac(uint32_t* acc, int32_t scale, const int32_t* v, const int32_t* L, int64_t lanes) {
  for (int64_t i = 0; i < lanes; ++i) acc[i] = timed_add(acc[i], static_cast<uint32_t>(scale * v[i]), L[i]);
}

}  // namespace

extern "C" {

// 16 when the AVX-512 kernel is compiled in, 1 for the portable one.
int realm_twin_lanes() {
#ifdef REALM_TWIN_AVX512
  return kLanes;
#else
  return 1;
#endif
}

// y (M, N) int32 = timed x (M, K) int8 @ w (K, N) int8 with the n x n slack table L (int8, row-major,
// already clamped to [-1, 31]). threads <= 0 uses every hardware thread. Returns 0, or -1 on bad sizes.
int realm_twin_gemm(const int8_t* x, const int8_t* w, const int8_t* L, int64_t M, int64_t K, int64_t N,
                    int32_t n, int32_t threads, int32_t* y) {
  if (M < 0 || K < 0 || N < 0 || n < 1) return -1;
  if (M == 0 || N == 0) return 0;
  const std::shared_ptr<Job> job(new Job{x, w, L, K, N, n, y, {}, (N + kPanel - 1) / kPanel, 0, 0});
  for (int rc = 0; rc < std::min<int64_t>(n, M); ++rc) {
    const int64_t rows_in_class = (M - rc + n - 1) / n;
    for (int64_t first = 0; first < rows_in_class; first += kRowBlock)
      job->blocks.push_back({rc, first, static_cast<int>(std::min<int64_t>(kRowBlock, rows_in_class - first))});
  }
  const int64_t nblocks = static_cast<int64_t>(job->blocks.size());
  const int64_t team = threads > 0 ? threads : std::max(1u, std::thread::hardware_concurrency());
  // Panels are split into row chunks only when there are too few of them to keep every thread
  // busy, since each task packs its own copy of the panel.
  const int64_t splits = std::min(nblocks, std::max<int64_t>(1, (4 * team + job->panels - 1) / job->panels));
  job->per_task = (nblocks + splits - 1) / splits;
  job->chunks = (nblocks + job->per_task - 1) / job->per_task;

  for (int64_t i = 1; i < std::min(team, job->tasks()); ++i) {
    try {
      std::thread([job] { work(*job); }).detach();
    } catch (const std::system_error&) {
      break;  // no more threads available: the remaining workers take all tasks
    }
  }
  work(*job);
  // Only tasks a helper has already claimed can be outstanding here.
  while (job->done.load(std::memory_order_acquire) < job->tasks()) std::this_thread::yield();
  return 0;
}

// Column and row deviations d, e (tiles, n) int32, row-major tile order, of an (M, K) x (K, N) GEMM
// whose checksum accumulators follow the model with the (3, n) table L (int8, already clamped to
// [-1, 31]); y (M, N) is what the array produced. Returns 0, or -1 on bad sizes. Single-threaded: the
// checksums cost 2/n of the GEMM's MACs. The accumulators of all tiles along a row (or column) of
// tiles run as one long vector, so the lane loops vectorise whatever n is.
int realm_twin_checksums(const int8_t* x, const int8_t* w, const int32_t* y, const int8_t* L, int64_t M,
                         int64_t K, int64_t N, int32_t n, int32_t* d, int32_t* e) {
  if (M < 1 || K < 1 || N < 1 || n < 1) return -1;
  const int64_t tiles_m = (M + n - 1) / n, tiles_n = (N + n - 1) / n;
  const int64_t Mp = tiles_m * n, Np = tiles_n * n;
  // zero-padded operands as the ingress sees them, lane-major: xt (K, Mp), wp (K, Np), and the negated
  // byte sums of each beat per tile row, xneg (tiles_m, K), and per tile column, wneg (tiles_n, K)
  std::vector<int32_t> xt(K * Mp, 0), wp(K * Np, 0), xneg(tiles_m * K, 0), wneg(tiles_n * K, 0);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < K; ++k) xt[k * Mp + m] = x[m * K + k];
  for (int64_t k = 0; k < K; ++k) {
    std::copy(w + k * N, w + (k + 1) * N, wp.begin() + k * Np);
    for (int64_t tm = 0; tm < tiles_m; ++tm)
      for (int r = 0; r < n; ++r) xneg[tm * K + k] -= xt[k * Mp + tm * n + r];
    for (int64_t tn = 0; tn < tiles_n; ++tn)
      for (int c = 0; c < n; ++c) wneg[tn * K + k] -= wp[k * Np + tn * n + c];
  }
  std::vector<int32_t> ypad(Mp * Np, 0);
  for (int64_t m = 0; m < M; ++m) std::copy(y + m * N, y + (m + 1) * N, ypad.begin() + m * Np);
  std::vector<int32_t> lc(Np), lr(Mp), lo(Np);
  for (int64_t j = 0; j < Np; ++j) lc[j] = L[j % n], lo[j] = L[2 * n + j % n];
  for (int64_t m = 0; m < Mp; ++m) lr[m] = L[n + m % n];

  // -r_c per tile row, then d_c: the egress folds the N result rows into the loaded -r_c
  std::vector<uint32_t> col(Np);
  for (int64_t tm = 0; tm < tiles_m; ++tm) {
    std::fill(col.begin(), col.end(), 0u);
    for (int64_t k = 0; k < K; ++k)
      timed_mac(col.data(), xneg[tm * K + k], wp.data() + k * Np, lc.data(), Np);
    for (int64_t m = tm * n; m < (tm + 1) * n; ++m)
      timed_mac(col.data(), 1, ypad.data() + m * Np, lo.data(), Np);
    for (int64_t tn = 0; tn < tiles_n; ++tn)
      for (int c = 0; c < n; ++c) d[(tm * tiles_n + tn) * n + c] = static_cast<int32_t>(col[tn * n + c]);
  }
  // -q_r per tile column; e_r is one exact adder tree per row
  std::vector<uint32_t> row(Mp);
  for (int64_t tn = 0; tn < tiles_n; ++tn) {
    std::fill(row.begin(), row.end(), 0u);
    for (int64_t k = 0; k < K; ++k)
      timed_mac(row.data(), wneg[tn * K + k], xt.data() + k * Mp, lr.data(), Mp);
    for (int64_t m = 0; m < Mp; ++m) {
      uint32_t sum = row[m];
      for (int c = 0; c < n; ++c) sum += static_cast<uint32_t>(ypad[m * Np + tn * n + c]);
      e[((m / n) * tiles_n + tn) * n + m % n] = static_cast<int32_t>(sum);
    }
  }
  return 0;
}

}  // extern "C"
