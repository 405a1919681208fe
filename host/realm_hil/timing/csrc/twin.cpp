// Software twin of the overclocked systolic array: INT8 GEMM with the data-dependent timing-error
// model of docs/timing-error-model.md, bit-exact with realm_hil.timing.emulation.timed_dot.
//
// Output element (m, j) is accumulated by PE (m % n, j % n) in k order from a reset register, so all
// elements of one (row class m % n, column class j % n) share that PE's slack L. The GEMM is computed
// class pair by class pair: a panel holds 16 columns of one column class (the lanes of a vector; a
// class's last few columns take 2 or 4 lanes each, one per row) and a register block up to 8 rows of
// one row class, so a whole block runs under one L and its cost follows that PE's own L, not the worst
// of its neighbours. A caller that already holds the exact product passes it in and only the pairs with
// L < 31 are computed: near the onset of errors that is a few of the n^2 PEs. Pairs with L < 0 never
// leave the reset value 0.
//
// The late mask. For 1 <= L <= 30, C AND (P << 1) AND ... AND (P << L) equals AND_{i=1..L} (U << i) with
// U = C AND P: where P[i-1..i-L] are all ones the carry passes through unchanged, so C[i] = 1 there
// exactly when C[i-1..i-L] are all ones too. U = P AND NOT s is one ternary-logic operation, and the
// AND of shifted copies needs no final AND with C. It is built from the run of one shift, T = U << 1,
// by steps that widen the run: T & (T << d) (two operations, up to twice the run) or
// T & (T << d1) & (T << d2) (three, up to three times); the cheapest mix reaching L costs 1 to 11
// operations for L = 1..30, and an update 5 to 15 in all.
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

#if defined(__AVX512F__) && defined(__AVX512BW__) && !defined(REALM_TWIN_PORTABLE)
#include <immintrin.h>
#define REALM_TWIN_AVX512 1
#endif

namespace {

constexpr int kExact = 31;
constexpr int kLanes = 16;    // columns of one class per panel: one vector of int32
constexpr int kMaxRows = 8;   // rows of one class per register block: independent update chains
constexpr int kMaxSteps = 4;  // widening steps that reach L = 30

// How the elements of one PE are computed: kPlain for L >= 31, kCarry for L = 0 (late = C), otherwise
// an index into kPlans.
enum Kind : int { kPlain = -2, kCarry = -1 };

// Widening steps, tripling ones first, in order of cost (1 + 3 triples + 2 doubles operations) and so
// of the longest run they reach.
struct Plan {
  int triples, doubles, reach;
};
constexpr Plan kPlans[] = {{0, 0, 1},  {0, 1, 2},  {1, 0, 3},  {0, 2, 4},  {1, 1, 6},
                           {2, 0, 9},  {1, 2, 12}, {2, 1, 18}, {3, 0, 27}, {2, 2, 36}};

struct Slack {
  int L;
  int kind;
  uint32_t d[kMaxSteps][2];  // the shifts of each step (one for a doubling step)
};

// Each step widens the run from c to min(c * factor, L): shifts that overlap the run (d1 <= c,
// d2 <= c + d1) and end at the new width. The first step always has d = 1 (and d2 = 2), which the
// kernel computes as additions.
Slack slack_plan(int L) {
  Slack s{L, 0, {}};
  if (L >= kExact) {
    s.kind = kPlain;
    return s;
  }
  if (L == 0) {
    s.kind = kCarry;
    return s;
  }
  while (kPlans[s.kind].reach < L) ++s.kind;
  const Plan& plan = kPlans[s.kind];
  int c = 1;
  for (int i = 0; i < plan.triples + plan.doubles; ++i) {
    const int next = std::min(c * (i < plan.triples ? 3 : 2), L);
    const int d = next - c;
    if (i < plan.triples) {
      s.d[i][0] = static_cast<uint32_t>((d + 1) / 2);
      s.d[i][1] = static_cast<uint32_t>(d);
    } else {
      s.d[i][0] = static_cast<uint32_t>(d);
    }
    c = next;
  }
  return s;
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

inline int32_t pack16(int8_t v) { return static_cast<int32_t>(static_cast<uint16_t>(static_cast<int16_t>(v))); }

// A register block: R vectors of G rows of x (xp as pack_rows lays them out, sign-extended int32) times
// one panel (wp, K x kLanes, each value in the low half of an int32 with the high half zero, so pmaddwd
// yields the plain product) under one PE's slack; out is R x kLanes.
#ifdef REALM_TWIN_AVX512

// AND_{i=1..L} (U << i) for the L of plan KIND.
template <int KIND>
__attribute__((always_inline)) inline __m512i late_mask(__m512i u, const __m512i (*d)[2]) {
  constexpr Plan plan = kPlans[KIND];
  // shifts by 1 and 2 as additions: those are not limited to the one port that shifts 512-bit vectors
  __m512i t = _mm512_add_epi32(u, u);
  for (int i = 0; i < plan.triples + plan.doubles; ++i) {
    const __m512i s1 = i == 0 ? _mm512_add_epi32(t, t) : _mm512_sllv_epi32(t, d[i][0]);
    if (i < plan.triples) {
      const __m512i s2 = i == 0 ? _mm512_add_epi32(s1, s1) : _mm512_sllv_epi32(t, d[i][1]);
      t = _mm512_ternarylogic_epi32(t, s1, s2, 0x80);
    } else {
      t = _mm512_and_si512(t, s1);
    }
  }
  return t;
}

// vpternlogd overwrites its first operand, so each one takes a value that dies there: otherwise the
// compiler copies it first, and copies cost issue slots like the logic.
template <int KIND>
__attribute__((always_inline)) inline __m512i update(__m512i a, __m512i xv, __m512i wv, const __m512i (*d)[2]) {
  if constexpr (KIND == kPlain) {
#ifdef __AVX512VNNI__
    return _mm512_dpwssd_epi32(a, xv, wv);
#else
    return _mm512_add_epi32(a, _mm512_madd_epi16(xv, wv));
#endif
  } else {
    const __m512i p = _mm512_madd_epi16(xv, wv);
    const __m512i s = _mm512_add_epi32(a, p);
    if constexpr (KIND == kCarry) {
      return _mm512_ternarylogic_epi32(a, s, p, 0xD8);  // (a ^ s ^ p) = C ? a : s
    } else {
      const __m512i u = _mm512_ternarylogic_epi32(p, a, s, 0x14);  // (p ^ a) & ~s = P & C
      // late ? a : s, bit by bit, in a's own register: from the intrinsic GCC computes it into another
      // register and copies it back, two copies per update in blocks of more than 4 rows
      const __m512i late = late_mask<KIND>(u, d);
      asm("vpternlogd $0xE4, %2, %1, %0" : "+v"(a) : "v"(s), "v"(late));
      return a;
    }
  }
}

// G rows of x per vector, one 32-bit lane each (see Job::group), broadcast in one load.
template <int G>
inline __m512i broadcast_rows(const int32_t* v) {
  static_assert(G == 1 || G == 2 || G == 4);
  if constexpr (G == 1)
    return _mm512_set1_epi32(*v);
  else if constexpr (G == 2)
    return _mm512_set1_epi64(*reinterpret_cast<const long long*>(v));
  else
    return _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v)));
}

template <int KIND, int R, int G>
void run_block(const int32_t* wp, const int32_t* xp, int64_t K, const Slack& sl, int32_t* out) {
  __m512i d[kMaxSteps][2];
  for (int i = 0; i < kMaxSteps; ++i)
    for (int j = 0; j < 2; ++j) d[i][j] = _mm512_set1_epi32(static_cast<int32_t>(sl.d[i][j]));
  __m512i acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_si512();
  for (int64_t k = 0; k < K; ++k) {
    const __m512i wv = _mm512_loadu_si512(wp + k * kLanes);
    for (int r = 0; r < R; ++r) acc[r] = update<KIND>(acc[r], broadcast_rows<G>(xp + (r * K + k) * G), wv, d);
  }
  for (int r = 0; r < R; ++r) _mm512_storeu_si512(out + r * kLanes, acc[r]);
}

#else

template <int KIND, int R, int G>
void run_block(const int32_t* wp, const int32_t* xp, int64_t K, const Slack& sl, int32_t* out) {
  uint32_t acc[R][kLanes] = {};
  for (int64_t k = 0; k < K; ++k) {
    const int32_t* wk = wp + k * kLanes;
    for (int r = 0; r < R; ++r) {
      const int32_t* xk = xp + (r * K + k) * G;
      for (int lane = 0; lane < kLanes; ++lane) {
        const uint32_t prod = static_cast<uint32_t>(xk[lane % G] * static_cast<int16_t>(wk[lane]));
        acc[r][lane] = KIND == kPlain ? acc[r][lane] + prod : timed_add(acc[r][lane], prod, sl.L);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int lane = 0; lane < kLanes; ++lane) out[r * kLanes + lane] = static_cast<int32_t>(acc[r][lane]);
}

#endif

template <int R, int G>
void run_kind(const int32_t* wp, const int32_t* xp, int64_t K, const Slack& sl, int32_t* out) {
  switch (sl.kind) {
    case kPlain: return run_block<kPlain, R, G>(wp, xp, K, sl, out);
    case kCarry: return run_block<kCarry, R, G>(wp, xp, K, sl, out);
    case 0: return run_block<0, R, G>(wp, xp, K, sl, out);
    case 1: return run_block<1, R, G>(wp, xp, K, sl, out);
    case 2: return run_block<2, R, G>(wp, xp, K, sl, out);
    case 3: return run_block<3, R, G>(wp, xp, K, sl, out);
    case 4: return run_block<4, R, G>(wp, xp, K, sl, out);
    case 5: return run_block<5, R, G>(wp, xp, K, sl, out);
    case 6: return run_block<6, R, G>(wp, xp, K, sl, out);
    case 7: return run_block<7, R, G>(wp, xp, K, sl, out);
    case 8: return run_block<8, R, G>(wp, xp, K, sl, out);
    default: return run_block<9, R, G>(wp, xp, K, sl, out);
  }
}

// `vectors` vectors of G rows of x each; the narrow panels (G > 1) always run full blocks, padded
// with copies of the last row.
void run(int vectors, int group, const int32_t* wp, const int32_t* xp, int64_t K, const Slack& sl, int32_t* out) {
  if (group == 2) return run_kind<kMaxRows / 2, 2>(wp, xp, K, sl, out);
  if (group == 4) return run_kind<kMaxRows / 4, 4>(wp, xp, K, sl, out);
  switch (vectors) {
    case 1: return run_kind<1, 1>(wp, xp, K, sl, out);
    case 2: return run_kind<2, 1>(wp, xp, K, sl, out);
    case 3: return run_kind<3, 1>(wp, xp, K, sl, out);
    case 4: return run_kind<4, 1>(wp, xp, K, sl, out);
    case 5: return run_kind<5, 1>(wp, xp, K, sl, out);
    case 6: return run_kind<6, 1>(wp, xp, K, sl, out);
    case 7: return run_kind<7, 1>(wp, xp, K, sl, out);
    default: return run_kind<8, 1>(wp, xp, K, sl, out);
  }
}

// A block of up to kMaxRows rows of row class rc times panel `panel` of column class cc: rows
// rc + (first + r) n, columns cc + (panel kLanes + t) n for t below the panel's width.
struct Item {
  int cc, rc;
  int64_t panel;
  int64_t first;
  int rows;
};

// One GEMM split into tasks (runs of consecutive items) that workers claim from a shared counter.
// Helper threads co-own the job, so one that the OS schedules late, after every task is claimed,
// touches nothing of the caller's and the caller never waits for it to start: the call is never
// slower than single-threaded, even on an oversubscribed machine (a fork-join barrier there costs a
// scheduler time slice per call).
struct Job {
  Job(const int8_t* x_, const int8_t* w_, const int8_t* L_, int64_t K_, int64_t N_, int n_, int32_t* y_)
      : x(x_), w(w_), L(L_), K(K_), N(N_), n(n_), y(y_) {}
  const int8_t* x;
  const int8_t* w;
  const int8_t* L;
  int64_t K, N;
  int n;
  int32_t* y;
  std::vector<Item> items;
  std::vector<size_t> bounds;  // task t runs items [bounds[t], bounds[t + 1])
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};

  int64_t tasks() const { return static_cast<int64_t>(bounds.size()) - 1; }
  int64_t first_col(const Item& it) const { return it.cc + n * it.panel * kLanes; }
  int64_t cols_left(const Item& it) const { return (N - first_col(it) + n - 1) / n; }
  // Rows of x per vector. The last panel of a column class often holds only a few columns (72 per
  // class for N = 576 on an 8 x 8 array: 4.5 panels); there each column takes G lanes, one per row of
  // a group of G rows, so the vector stays full.
  int group(const Item& it) const { return cols_left(it) > kLanes / 2 ? 1 : cols_left(it) > kLanes / 4 ? 2 : 4; }
  int width(const Item& it) const {  // columns in the item's panel
    return static_cast<int>(std::min<int64_t>(kLanes / group(it), cols_left(it)));
  }
};

// The item's panel of w, (K, kLanes): lane t G + h holds column t, lanes past the last column zero.
void pack_panel(const Job& job, const Item& it, int32_t* out) {
  const int64_t j0 = job.first_col(it);
  const int group = job.group(it);
  const int width = job.width(it);
  int64_t k = 0;
#ifdef REALM_TWIN_AVX512
  // A gather per step instead of 16 byte loads: at 64 rows the panels cost a tenth of the run. Each
  // lane reads the 4 bytes at its column, so the last rows, where that would run past w, are left to
  // the loop below.
  alignas(64) int32_t offsets[kLanes];
  for (int lane = 0; lane < kLanes; ++lane) offsets[lane] = lane / group < width ? lane / group * job.n : 0;
  const __m512i idx = _mm512_load_si512(offsets);
  const __mmask16 valid = static_cast<__mmask16>((1u << (width * group)) - 1);
  const int64_t last_byte = (width - 1) * static_cast<int64_t>(job.n) + 3;  // the last one read, from the first
  for (; k < job.K && k * job.N + j0 + last_byte < job.K * job.N; ++k) {
    const __m512i bytes = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), valid, idx, job.w + k * job.N + j0, 1);
    const __m512i words = _mm512_srai_epi32(_mm512_slli_epi32(bytes, 24), 24);  // the low byte, sign-extended
    _mm512_storeu_si512(out + k * kLanes, _mm512_and_si512(words, _mm512_set1_epi32(0xFFFF)));
  }
#endif
  for (; k < job.K; ++k) {
    const int8_t* src = job.w + k * job.N + j0;
    int32_t* row = out + k * kLanes;
    for (int lane = 0; lane < kLanes; ++lane) {
      const int t = lane / group;
      row[lane] = t < width ? pack16(src[t * job.n]) : 0;
    }
  }
}

// Rows row0 + r n of x for `vectors` vectors of G rows: vector v, step k holds rows v G .. v G + G - 1
// at out[(v K + k) G + h]. Rows past `rows` repeat the last one (their results are not stored).
template <int G>
void pack_rows(const Job& job, int64_t row0, int rows, int vectors, int32_t* out) {
  for (int v = 0; v < vectors; ++v) {
    const int8_t* src[G];
    for (int h = 0; h < G; ++h) src[h] = job.x + (row0 + std::min(v * G + h, rows - 1) * job.n) * job.K;
    int32_t* dst = out + v * job.K * G;
    for (int64_t k = 0; k < job.K; ++k)
      for (int h = 0; h < G; ++h) dst[k * G + h] = src[h][k];
  }
}

void work(Job& job) {
  std::vector<int32_t> wpanel, xrows;
  int32_t out[kMaxRows * kLanes];
  const Item* packed = nullptr;
  // Items are ordered panel-major and a worker keeps its packed panel, so consecutive items of one
  // panel reuse it from L2.
  for (int64_t t = job.next.fetch_add(1); t < job.tasks(); t = job.next.fetch_add(1)) {
    if (wpanel.empty()) {
      wpanel.resize(static_cast<size_t>(job.K * kLanes) + 1);
      xrows.resize(static_cast<size_t>(job.K * kMaxRows) + 1);
    }
    for (size_t i = job.bounds[t]; i < job.bounds[t + 1]; ++i) {
      const Item& it = job.items[i];
      if (packed == nullptr || packed->cc != it.cc || packed->panel != it.panel) {
        pack_panel(job, it, wpanel.data());
        packed = &it;
      }
      const int64_t row0 = it.rc + it.first * job.n;
      const int group = job.group(it);
      const int vectors = group == 1 ? it.rows : kMaxRows / group;
      if (group == 1)
        pack_rows<1>(job, row0, it.rows, vectors, xrows.data());
      else if (group == 2)
        pack_rows<2>(job, row0, it.rows, vectors, xrows.data());
      else
        pack_rows<4>(job, row0, it.rows, vectors, xrows.data());
      run(vectors, group, wpanel.data(), xrows.data(), job.K, slack_plan(job.L[it.rc * job.n + it.cc]), out);
      const int width = job.width(it);
      for (int r = 0; r < it.rows; ++r) {
        int32_t* dst = job.y + (row0 + r * job.n) * job.N + job.first_col(it);
        const int32_t* src = out + (r / group) * kLanes + r % group;
        for (int t = 0; t < width; ++t) dst[t * job.n] = src[t * group];
      }
    }
    job.done.fetch_add(1, std::memory_order_release);
  }
}

// Relative cost of one row of an item: vector operations per update.
int row_cost(int L) {
  const Slack s = slack_plan(L);
  if (s.kind == kPlain) return 1;
  if (s.kind == kCarry) return 3;
  const Plan& plan = kPlans[s.kind];
  return 5 + 3 * plan.triples + 2 * plan.doubles;
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
// already clamped to [-1, 31]). With keep_exact != 0, y holds the exact product on entry and the
// elements of PEs with L >= 31 are left as they are. threads <= 0 uses every hardware thread.
// Returns 0, or -1 on bad sizes.
int realm_twin_gemm(const int8_t* x, const int8_t* w, const int8_t* L, int64_t M, int64_t K, int64_t N,
                    int32_t n, int32_t threads, int32_t keep_exact, int32_t* y) {
  if (M < 0 || K < 0 || N < 0 || n < 1) return -1;
  if (M == 0 || N == 0) return 0;
  const auto job = std::make_shared<Job>(x, w, L, K, N, n, y);
  const int row_classes = static_cast<int>(std::min<int64_t>(n, M));
  const int col_classes = static_cast<int>(std::min<int64_t>(n, N));
  std::vector<int64_t> costs;
  int64_t total = 0;
  for (int cc = 0; cc < col_classes; ++cc) {
    const int64_t panels = ((N - cc + n - 1) / n + kLanes - 1) / kLanes;
    for (int64_t panel = 0; panel < panels; ++panel) {
      for (int rc = 0; rc < row_classes; ++rc) {
        const int l = L[rc * n + cc];
        if (l < 0 || (l >= kExact && keep_exact)) continue;
        const int64_t rows_in_class = (M - rc + n - 1) / n;
        for (int64_t first = 0; first < rows_in_class; first += kMaxRows) {
          const int rows = static_cast<int>(std::min<int64_t>(kMaxRows, rows_in_class - first));
          job->items.push_back({cc, rc, panel, first, rows});
          costs.push_back(rows * row_cost(l));
          total += costs.back();
        }
      }
    }
  }
  // PEs whose every bit is late keep the reset value
  for (int rc = 0; rc < row_classes; ++rc)
    for (int cc = 0; cc < col_classes; ++cc)
      if (L[rc * n + cc] < 0)
        for (int64_t m = rc; m < M; m += n)
          for (int64_t j = cc; j < N; j += n) y[m * N + j] = 0;
  if (job->items.empty()) return 0;

  const int64_t team = threads > 0 ? threads : std::max(1u, std::thread::hardware_concurrency());
  // A few tasks per thread balance uneven item costs; runs of items keep a panel with one worker.
  const int64_t target = std::max<int64_t>(1, total / (4 * team));
  job->bounds.push_back(0);
  int64_t run_cost = 0;
  for (size_t i = 0; i < job->items.size(); ++i) {
    run_cost += costs[i];
    if (run_cost >= target || i + 1 == job->items.size()) {
      job->bounds.push_back(i + 1);
      run_cost = 0;
    }
  }

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
