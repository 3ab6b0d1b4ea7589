// MoveNet SinglePose on the GPU: movenet_single_raw + decode_movenet_single + the crop transform,
// one launch of (cell chunk, item) blocks, bit for bit equal to the CPU (same float operations,
// same order, first index on argmax ties). The centre weights are an fp16 table uploaded once.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/engine_env.h"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_kernels.h"
#include "pose/cuda/decode_common.cuh"
#include "pose/cuda/device_decoders.h"
#include "pose/movenet_single.h"

namespace posert::cuda::detail {

namespace {

constexpr int kK = kPoseKeypoints;
constexpr int kThreads = 32 * kK;  // warp k takes keypoint k
constexpr int kMinCellsPerLane = 2;

struct SingleArgs {
  const float* centre;  // [N, G, G, 1]
  const float* heat;    // [N, G, G, 17]
  const float* reg;     // [N, G, G, 34]
  const float* off;     // [N, G, G, 34]
  const __half* weight;  // [G, G] movenet_centre_weight (fp16 values: exact as __half)
  int G;
  int chunk;         // cells per block; gridDim.x = ceil(G * G / chunk) blocks per item
  float out_scale;   // movenet_output_scale(G)
  float input_size;  // keypoints = raw * input_size
  const CropTransform* tf;
  void* out;
  int max_poses;
  unsigned long long* keys;  // [max_batch, 17] best (value, cell) so far, 0 = none; reset by the item's last block
  unsigned* done;            // [max_batch] blocks of the item finished; reset by the item's last block
  bool exhaustive;           // $POSERT_DECODE_EXHAUSTIVE: every cell's exact value, no screen
  // poll: an item has at most kMaxPollBlocks blocks and every block of the launch is resident at
  // once (the host checks both), so each item's last block (blockIdx.x = gridDim.x - 1) waits for
  // the others' keys in slots[linear block id][17] (0 = not yet written; a block with no
  // candidate writes kNoKey), reads and clears them, and assembles the pose; keys and done are
  // unused. Otherwise the last block to count in done assembles it from keys. Either way one
  // decoder's launches must not overlap (one stream): two launches at once would share keys and
  // counters, or slots (where a waiting block could then wait for ever).
  bool poll;
  unsigned long long* slots;
};
// A poll slot's value for a warp with no candidate: nonzero (written), below every argmax key (whose
// low word, 0xffffffff - cell, is at least 2^31).
constexpr unsigned long long kNoKey = 1;
// Items of more blocks than this take the counter: the waiting block's warps then poll too many
// slots (at batch 1, 36 blocks an item on lightning's grid, polling measured 0.0065 -> 0.0070 ms,
// H100, twenty-fourth session). With at most 8 (H100, twenty-fifth session, against the counter in
// the same call): lightning batch 16 0.0075 either way, batch 256 (one block an item) 0.0308 ->
// 0.0299; thunder batch 16 0.0080-0.0081 -> 0.0078-0.0079, batch 64 0.0174 -> 0.0169.
constexpr int kMaxPollBlocks = 8;

// Greatest common divisor, for compile-time constants.
constexpr int gcd_int(int a, int b) { return b == 0 ? a : gcd_int(b, a % b); }

// i / G and i % G: G a compile-time constant (GT > 0: multiply and shift, no division) or a.G.
template <int GT>
__device__ __forceinline__ int cell_y(int i, int G) { return GT > 0 ? i / GT : i / G; }
template <int GT>
__device__ __forceinline__ int cell_x(int i, int G) { return GT > 0 ? i % GT : i % G; }

template <int GT>
__device__ __forceinline__ float keypoint_d2(int i, int G, float ry, float rx) {
  const float dy = __fsub_rn(static_cast<float>(cell_y<GT>(i, G)), ry);
  const float dx = __fsub_rn(static_cast<float>(cell_x<GT>(i, G)), rx);
  return __fadd_rn(__fmul_rn(dy, dy), __fmul_rn(dx, dx));
}

// The CPU's value of a cell, bit for bit: h / (sqrt(d2) + eps), IEEE square root and division.
__device__ __forceinline__ float keypoint_value_exact(float h, float d2) {
  return __fdiv_rn(h, __fadd_rn(__fsqrt_rn(d2), kMoveNetKeypointDistEps));
}
template <int GT>
__device__ __forceinline__ float keypoint_value(float h, int i, int G, float ry, float rx) {
  return keypoint_value_exact(h, keypoint_d2<GT>(i, G, ry, rx));
}

// An estimate of the same value from the hardware's approximate square root and reciprocal (a
// few instructions where the IEEE operations take dozens). For finite h, a regressed position
// within kScreenMaxPosition of the grid and a result above kEstimateFloor, it is within 2^-20 of
// the exact value, relatively: the approximations are each within about 2^-22, the denominator
// is at least eps = 1.8, and the sum with eps and the product add half an ulp each. (The
// reciprocal is rcp.approx itself: __fdividef's extra steps for denominators under 2^-126 never
// apply to one of at least 1.8, or to NaN.)
__device__ __forceinline__ float keypoint_value_estimate(float h, float d2) {
  float s, r;
  asm("sqrt.approx.ftz.f32 %0, %1;" : "=f"(s) : "f"(d2));
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(s + kMoveNetKeypointDistEps));
  return __fmul_rn(h, r);
}

// The screen: a lane whose largest estimate so far is E >= kEstimateFloor computes the exact
// value only of cells whose estimate is at least E * kEstimateCut. The lane's argmax cell passes:
// its estimate is at least v * (1 - 2^-20), where v is the largest exact value of the lane's
// cells, and E is at most v * (1 + 2^-20) (E is one of them's estimate), so the
// argmax's estimate is at least E * (1 - 2^-20) / (1 + 2^-20) > E * (1 - 2^-14) rounded down.
// So are cells tying with it (the same value), and NaN estimates (!(NaN < cut)), which the
// exact path then handles as before. Below the floor (all values tiny, zero or negative, where
// the relative bound need not hold) every cell is computed exactly.
constexpr float kEstimateCut = 1.0f - 1.0f / 16384.0f;
constexpr float kEstimateFloor = 1e-30f;
constexpr float kScreenMaxPosition = 1048576.0f;  // grid units

// The keypoint heat values are staged through shared memory, kTileCells cells (x 17 keypoints,
// contiguous in memory) at a time: the block loads a tile with coalesced loads (consecutive
// threads, consecutive floats), then warp k reads keypoint k's values from shared memory (stride
// 17 words: no bank conflicts). (Read straight from global memory, as before, each warp's load
// touched 32 cells 68 bytes apart: 32 sectors in 17 cache lines for 128 useful bytes.)
constexpr int kTileCells = 128;
constexpr int kTileFloats = kTileCells * kK;
constexpr int kTileLoads = (kTileFloats + kThreads - 1) / kThreads;  // per thread and tile
constexpr int kLaneCells = kTileCells / 32;  // a lane's cells of a tile

// Staged chunks (sm_90+, chunks of at most kStageMaxCells cells): the block's whole chunk of heat
// values (contiguous in memory) is copied into dynamic shared memory by the copy engine at the
// kernel's start, while the centre is found, in place of the tile-by-tile loads. The region starts
// at the source's address mod 16 past a 16-byte boundary (so that the copy's 16-byte-aligned
// middle lines up) and has 16 spare bytes. 640 cells: 43,520 bytes, under the 48 KB a launch may
// ask for without opting in.
constexpr int kStageMaxCells = 640;
inline size_t stage_bytes(int cells) { return (static_cast<size_t>(cells) * kK * sizeof(float) + 15) / 16 * 16 + 16; }
extern __shared__ __align__(16) unsigned char s_chunk[];

// Starts copying `words` floats from src to shared memory; returns where src[0] lands. sm_90:
// thread 0 has the copy engine move the 16-byte-aligned middle (completing on *bar), threads 0..7
// the ragged ends (BulkSplit, cp.async: every thread runs cp_async_wait_all() before a block
// barrier); every thread calls chunk_wait before reading. Older GPUs (the host does not
// launch it there): plain loads by every thread.
__device__ __forceinline__ const float* stage_chunk(const float* src, unsigned words, unsigned long long* bar) {
  float* dst = reinterpret_cast<float*>(s_chunk + (reinterpret_cast<size_t>(src) & 15));
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  const BulkSplit sp = bulk_split(src, words * 4);
  if (threadIdx.x == 0) {
    mbarrier_init_one(bar);
    mbarrier_arrive_expect_tx(bar, sp.bulk);  // 0 bytes: phase 0 completes on this arrival
    bulk_copy_middle(dst, src, sp, bar);
  }
  if (threadIdx.x < 8) copy_ragged_word(dst, src, words * 4, sp, threadIdx.x);
#else
  (void)bar;
  for (unsigned i = threadIdx.x; i < words; i += blockDim.x) dst[i] = src[i];
#endif
  return dst;
}
__device__ __forceinline__ void chunk_wait(unsigned long long* bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  mbarrier_wait_phase0(bar);
#else
  (void)bar;
#endif
}

// Block (chunk, item): every block finds the item's centre (cheap), then warp k takes the
// weighted argmax of keypoint k over the block's cells (exact values only where the estimate
// screen passes a cell) and merges it into the item's key: by atomicMax, after which the item's
// last block to finish writes the pose and resets the keys and counter, or (a.poll) by storing it
// in a slot that the item's last block in x waits for, reads and clears before it writes the
// pose. The heat values do not depend on the
// centre: the staged chunk's copy (or, tile by tile, the first tile's loads into registers)
// starts first, so its latency overlaps the centre's; each next tile loads while the current one
// is searched. Candidates are compared as argmax keys (one 64-bit max; the order is total, so the
// order in which cells are visited does not change the result).
// GT: the grid side as a compile-time constant (48: lightning, 64: thunder), or 0. kStaged: the
// chunk staged whole (stage_chunk; dynamic shared memory of stage_bytes(chunk)), else tile by tile.
// At most 40 registers: three blocks of 544 threads an SM (the tile-by-tile kernel's occupancy,
// which resident_blocks measures, sets how many blocks a batch gets).
template <int GT, bool kStaged>
__global__ void __maxnreg__(40) movenet_single_kernel(SingleArgs a) {
  const int b = blockIdx.y;
  const int G = GT > 0 ? GT : a.G, cells = G * G;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const float* centre = a.centre + static_cast<size_t>(b) * cells;
  const float* heat = a.heat + static_cast<size_t>(b) * cells * kK;
  const float* reg = a.reg + static_cast<size_t>(b) * cells * 2 * kK;
  const float* off = a.off + static_cast<size_t>(b) * cells * 2 * kK;

  __shared__ unsigned long long s_key[kK];
  __shared__ int s_centre;
  __shared__ float s_kp[kK][3];  // x, y, score in model-input pixels
  // What only the tail (in the block that assembles the pose) reads, gathered early so that the
  // tail waits for none of it:
  // keypoint k's regressed position (y, x; warp k's ry, rx) and cell 0's heat values (the CPU's
  // NaN rule; copied by cp.async at the start).
  __shared__ float s_rk[kK][2];
  __shared__ float s_h0[kK];
  // kRowsEarly (lightning's grid only): warp w's centre candidate's regression row (34 floats),
  // copied by cp.async while the candidates are merged; [kK]: cell 0's (the centre where the CPU's
  // NaN rule picks it or no cell has a number). s_reg_row: the row of the merged centre. Measured
  // (H100, session 24): lightning 0.0076 -> 0.0075 ms at batch 16 and 0.0107 -> 0.0102 at 64;
  // thunder 0.0079 -> 0.0082 at 16 and 0.0172 -> 0.0175 at 64, so thunder's grid reads the row
  // after the merge instead.
  constexpr bool kRowsEarly = GT == 48;
  __shared__ float s_reg[kRowsEarly ? kK + 1 : 1][2 * kK];
  __shared__ int s_reg_row;
  // Not gathered early: the item's crop, which the tail copies itself, first (see step 3).
  __shared__ CropTransform s_tf;

  __shared__ float s_heat[kStaged ? 1 : kTileFloats];  // [cell of the tile][keypoint]
  __shared__ unsigned long long s_copied;               // kStaged: the copy's mbarrier

  const int k = warp;
  const int lo = blockIdx.x * a.chunk, hi = min(lo + a.chunk, cells);
  float hv[kTileLoads];  // this thread's share of the next tile
  auto load_tile = [&](int t0) {
    const int n = min(kTileCells, hi - t0) * kK;
    const float* src = heat + static_cast<size_t>(t0) * kK;
#pragma unroll
    for (int u = 0; u < kTileLoads; ++u) {
      const int j = tid + u * kThreads;
      hv[u] = j < n ? src[j] : 0.0f;
    }
  };
  const float* staged = nullptr;  // kStaged: cell lo's values in shared memory
  if (kStaged)
    staged = stage_chunk(heat + static_cast<size_t>(lo) * kK, static_cast<unsigned>(hi - lo) * kK, &s_copied);
  else if (lo < hi) load_tile(lo);
  static_assert(kK <= 32, "one lane a keypoint");
  if (warp == 1 && lane < kK) cp_async4(&s_h0[lane], heat + lane);

  // 1. Centre: argmax of centre * weight. Each thread scans its cells in increasing order keeping
  // the first largest non-NaN value (a strict compare: ties and -0 == +0 keep the earlier cell),
  // then forms one argmax key. NaN values are skipped: the CPU's scan ends on a NaN only where
  // cell 0 is NaN, which the merge below handles, and otherwise returns the first largest number.
  float cbv = 0.0f;
  int cbi = -1;  // none yet
  auto centre_take = [&](float v, int i) {
    if (cbi < 0 ? v == v : v > cbv) cbv = v, cbi = i;
  };
  auto centre_take4 = [&](const float4& cv, const uint2& wv, int i) {
    const float2 w01 = __half22float2(*reinterpret_cast<const __half2*>(&wv.x));
    const float2 w23 = __half22float2(*reinterpret_cast<const __half2*>(&wv.y));
    centre_take(__fmul_rn(cv.x, w01.x), i);
    centre_take(__fmul_rn(cv.y, w01.y), i + 1);
    centre_take(__fmul_rn(cv.z, w23.x), i + 2);
    centre_take(__fmul_rn(cv.w, w23.y), i + 3);
  };
  if (cells % 4 == 0 && reinterpret_cast<uintptr_t>(centre) % 16 == 0 && reinterpret_cast<uintptr_t>(a.weight) % 8 == 0) {
    const float4* c4 = reinterpret_cast<const float4*>(centre);
    const uint2* w4 = reinterpret_cast<const uint2*>(a.weight);
    if constexpr (GT > 0) {
      // A compile-time grid: every load of the thread issued before the first is used (the loop
      // below starts its second trip to memory only after the first one's values are taken).
      constexpr int kQuads = GT * GT / 4, kIters = (kQuads + kThreads - 1) / kThreads;
      float4 cv[kIters];
      uint2 wv[kIters];
#pragma unroll
      for (int u = 0; u < kIters; ++u)
        if (tid + u * kThreads < kQuads) cv[u] = c4[tid + u * kThreads], wv[u] = w4[tid + u * kThreads];
#pragma unroll
      for (int u = 0; u < kIters; ++u)
        if (tid + u * kThreads < kQuads) centre_take4(cv[u], wv[u], 4 * (tid + u * kThreads));
    } else {
      for (int q = tid; q < cells / 4; q += kThreads) centre_take4(c4[q], w4[q], 4 * q);
    }
  } else {
    for (int i = tid; i < cells; i += kThreads) centre_take(__fmul_rn(centre[i], __half2float(a.weight[i])), i);
  }
  unsigned long long c = cbi < 0 ? 0ull : argmax_key({cbv, cbi});
  c = warp_max_key(c);
  if (lane == 0) s_key[warp] = c;
  if constexpr (kRowsEarly) {
    // The candidate's regression row on its way (the merged centre is one warp's candidate, or
    // cell 0): the regressed positions then wait for no trip to memory after the merge.
    static_assert(2 * kK > 32 && 2 * kK <= 64, "a row in two copies a lane");
    const float* row = reg + static_cast<size_t>(c != 0 ? argmax_key_index(c) : 0) * 2 * kK;
    cp_async4(&s_reg[warp][lane], row + lane);
    if (lane < 2 * kK - 32) cp_async4(&s_reg[warp][32 + lane], row + 32 + lane);
    if (warp == 2) {
      cp_async4(&s_reg[kK][lane], reg + lane);
      if (lane < 2 * kK - 32) cp_async4(&s_reg[kK][32 + lane], reg + 32 + lane);
    }
  }
  __syncthreads();
  if (warp == 0) {  // the 17 warps' candidates merged by one warp (the order is total: any merge order)
    const unsigned long long mine = lane < kK ? s_key[lane] : 0ull;
    const unsigned long long m = warp_max_key(mine);
    const unsigned won = __ballot_sync(0xffffffffu, lane < kK && mine == m);  // the warp whose candidate it is
    if (lane == 0) {
      const bool cell0 = isnan(__fmul_rn(centre[0], __half2float(a.weight[0]))) || m == 0;
      s_centre = cell0 ? 0 : argmax_key_index(m);
      if (kRowsEarly) s_reg_row = cell0 ? kK : __ffs(won) - 1;
    }
  }
  cp_async_wait_all();  // s_h0, s_reg and stage_chunk's ragged words: before the barrier
  __syncthreads();
  const int best = s_centre;

  // 2. Keypoint k = warp: the regressed position from the centre cell (grid units), then the
  // argmax of heat / (distance + eps) over this block's cells.
  const float* rrow = kRowsEarly ? s_reg[s_reg_row] : reg + static_cast<size_t>(best) * 2 * kK;
  const float ry = __fadd_rn(static_cast<float>(cell_y<GT>(best, G)), rrow[2 * k]);
  const float rx = __fadd_rn(static_cast<float>(cell_x<GT>(best, G)), rrow[2 * k + 1]);
  // The screen needs a regressed position of sane size (so every denominator is far below the
  // 2^126 past which the approximate reciprocal is flushed to 0); a NaN position fails the test too.
  if (lane == 0) s_rk[k][0] = ry, s_rk[k][1] = rx;
  const bool screen = !a.exhaustive && fabsf(ry) < kScreenMaxPosition && fabsf(rx) < kScreenMaxPosition;
  unsigned long long m = 0;
  float best_est = -HUGE_VALF;  // the lane's largest estimate so far (the screen's E)
  if (kStaged) chunk_wait(&s_copied);  // the ragged words landed before the centre's barriers
  if constexpr (kStaged && GT >= 32) {
    // The staged chunk in one pass: the lane's cells (lane, lane + 32, ...), keeping the three
    // largest estimates E1 >= E2 >= E3 (the cells of the first two, first cell on ties) and
    // whether any estimate was NaN or infinite (est * 0 is then NaN). Where the screen applies and
    // E3 < E1 * kEstimateCut, no cell but the first two passes the screen, so only their exact
    // values are computed: the first's always, the second's where it passes too (a near-tie: one
    // lane in 3,000 to 40,000 on the decode bench's random heads, lightning and thunder at batch 1
    // and 16; with only the first's on the fast path, such a lane sent its warp round the whole
    // slow loop below, and at batch 16 one lightning block in ten had one). Otherwise (three-way
    // near-ties, NaN, tiny or unscreened values) the lane's cells are taken again with the tile
    // loop's rule: the exact value of every cell whose estimate is not below E1 * kEstimateCut.
    // Positions: kP of a lane's cells in a row (32 kP cells) span kQ whole grid rows, so cell
    // j + kP is kQ rows below cell j, in its column. The lane takes its cells kP at a time, with
    // each of the kP columns' dx^2 computed once and its row stepped by kQ (small integers,
    // exact): d2 is keypoint_d2's value, bit for bit, from 4 operations a cell (the row's step,
    // dy, dy * dy, the sum) where the x and y stepped with their wrap and the distance took 11
    // instructions in the old loop's SASS.
    constexpr int kP = GT / gcd_int(GT, 32), kQ = 32 / gcd_int(GT, 32);  // lightning 3, 2; thunder 2, 1
    const int n = hi - lo;
    float e1 = -HUGE_VALF, e2 = -HUGE_VALF, e3 = -HUGE_VALF, bad = 0.0f;
    int c1 = 0, c2 = 0;
    float row[kP], dx2[kP];
#pragma unroll
    for (int u = 0; u < kP; ++u) {
      const int i = lo + lane + 32 * u;
      row[u] = static_cast<float>(cell_y<GT>(i, G));
      const float dx = __fsub_rn(static_cast<float>(cell_x<GT>(i, G)), rx);
      dx2[u] = __fmul_rn(dx, dx);
    }
    auto take = [&](int u, int c) {
      const float dy = __fsub_rn(row[u], ry);
      const float est = keypoint_value_estimate(staged[c * kK + k], __fadd_rn(__fmul_rn(dy, dy), dx2[u]));
      // Into the top three by selects (a NaN estimate is greater than none of them: fmaxf keeps
      // E3, and bad catches it).
      const bool above1 = est > e1, above2 = est > e2;
      e3 = fmaxf(e3, above2 ? e2 : est);  // = E2 where est passes E2 (E3 <= E2): no branch in the PTX
      e2 = above1 ? e1 : (above2 ? est : e2);
      c2 = above1 ? c1 : (above2 ? c : c2);
      e1 = above1 ? est : e1;
      c1 = above1 ? c : c1;
      bad = __fmaf_rn(est, 0.0f, bad);
    };
    int c = lane;
    for (; c + 32 * (kP - 1) < n; c += 32 * kP) {  // kP cells at a time
#pragma unroll
      for (int u = 0; u < kP; ++u) {
        take(u, c + 32 * u);
        row[u] = __fadd_rn(row[u], static_cast<float>(kQ));
      }
    }
#pragma unroll
    for (int u = 0; u + 1 < kP; ++u)  // the rest: under kP cells
      if (c + 32 * u < n) take(u, c + 32 * u);
    const bool ok = screen && e1 >= kEstimateFloor;
    if (ok && e3 < e1 * kEstimateCut && bad == 0.0f) {
      m = argmax_key({keypoint_value<GT>(staged[c1 * kK + k], lo + c1, G, ry, rx), lo + c1});
      if (!(e2 < e1 * kEstimateCut))  // E2 is an estimate of a cell (not the initial -inf) here
        m = max(m, argmax_key({keypoint_value<GT>(staged[c2 * kK + k], lo + c2, G, ry, rx), lo + c2}));
    } else {
      const float cut = ok ? e1 * kEstimateCut : -HUGE_VALF;
      for (int c = lane; c < n; c += 32) {
        const float h = staged[c * kK + k];
        if (!(keypoint_value_estimate(h, keypoint_d2<GT>(lo + c, G, ry, rx)) < cut))
          m = max(m, argmax_key({keypoint_value<GT>(h, lo + c, G, ry, rx), lo + c}));
      }
    }
  } else
  for (int t0 = lo; t0 < hi; t0 += kTileCells) {
    const int tn = min(kTileCells, hi - t0);
    const float* tile = kStaged ? staged + static_cast<size_t>(t0 - lo) * kK : s_heat;
    if (!kStaged) {
#pragma unroll
      for (int u = 0; u < kTileLoads; ++u) {
        const int j = tid + u * kThreads;
        if (j < tn * kK) s_heat[j] = hv[u];
      }
      __syncthreads();
      if (t0 + kTileCells < hi) load_tile(t0 + kTileCells);  // in flight while this tile is searched
    }
    // Estimates of the lane's (up to kLaneCells) cells of the tile, then exact values of those
    // that pass the screen, taken one at a time in a loop the warp runs as often as its lane
    // with the most such cells needs (usually once: the lane's best cell).
    float est[kLaneCells];
#pragma unroll
    for (int u = 0; u < kLaneCells; ++u) {
      const int c = lane + 32 * u;
      est[u] = c < tn ? keypoint_value_estimate(tile[c * kK + k], keypoint_d2<GT>(t0 + c, G, ry, rx)) : -HUGE_VALF;
      best_est = fmaxf(best_est, est[u]);  // fmaxf ignores NaN
    }
    const float cut = screen && best_est >= kEstimateFloor ? best_est * kEstimateCut : -HUGE_VALF;
    unsigned pass = 0;
#pragma unroll
    for (int u = 0; u < kLaneCells; ++u)
      if (lane + 32 * u < tn && !(est[u] < cut)) pass |= 1u << u;
    for (; pass != 0; pass &= pass - 1) {
      const int c = lane + 32 * (__ffs(pass) - 1);
      m = max(m, argmax_key({keypoint_value<GT>(tile[c * kK + k], t0 + c, G, ry, rx), t0 + c}));
    }
    if (!kStaged) __syncthreads();  // every warp done with the tile before the next one overwrites it
  }
  m = warp_max_key(m);

  // 3. One block of the item assembles the pose, in warp 0 (lane j takes keypoint j).
  if (a.poll) {
    // The item's last block (blockIdx.x = gridDim.x - 1), once every other block of the item has
    // stored its keys: no counter, no fence (a slot holds the whole result, one 64-bit word that
    // is written once), so the pose waits for the last store to land and the next load of it,
    // where the counter took the keys' atomics, a release, the count and the keys' read back,
    // each a trip to L2. The last block waits: where the GPU starts blocks in order, the blocks it
    // waits for have all started before it, whatever else holds the GPU (the host's check that
    // the launch fits at once does not see other work).
    const unsigned last = gridDim.x - 1;
    unsigned long long* slot = a.slots + static_cast<size_t>(b) * gridDim.x * kK + k;  // block 0's, keypoint k
    if (blockIdx.x != last) {
      if (lane == 0) st_relaxed_gpu(slot + blockIdx.x * kK, m != 0 ? m : kNoKey);
      return;
    }
    zero_item_records(a.out, b, a.max_poses, 1);
    // Warp k: lane x takes blocks x, x + 32, ...; each slot read until written, then cleared for
    // the next launch (which the stream orders after this one).
    for (unsigned x = lane; x < last; x += 32) {
      unsigned long long v;
      while ((v = ld_relaxed_gpu(slot + x * kK)) == 0) {
      }
      st_relaxed_gpu(slot + x * kK, 0);
      m = max(m, v);
    }
    m = warp_max_key(m);
    if (lane == 0) s_key[k] = m == kNoKey ? 0 : m;  // s_key: free since the centre's merge
    __syncthreads();
    if (warp != 0) return;
  } else {
    if (lane == 0 && m != 0) atomicMax(&a.keys[static_cast<size_t>(b) * kK + k], m);
    if (!last_block_of_item(&a.done[b], gridDim.x)) return;  // the whole block
    zero_item_records(a.out, b, a.max_poses, 1);
    if (warp != 0) return;
  }
  // The crop, copied first (cp.async, no register held; waited for below): in the pipeline's
  // mapped modes it is host memory, a trip over PCIe that then overlaps the keys' and offsets'
  // trips. (Copied at the start, every block's copy would sit on its first barrier or its
  // handshake; measured in the e2e bench's mapped mode: +0.0013 ms.)
  static_assert(sizeof(CropTransform) == 4 * sizeof(float), "the crop's four words");
  if (lane < 4) cp_async4(reinterpret_cast<float*>(&s_tf) + lane, reinterpret_cast<const float*>(a.tf + b) + lane);
  float kx = 0, ky = 0, ks = 0;
  if (lane < kK) {
    const unsigned long long key = a.poll ? s_key[lane] : atomicExch(&a.keys[static_cast<size_t>(b) * kK + lane], 0ull);
    // The CPU's scan keeps cell 0 when its value is NaN (nothing compares greater).
    const int kb = isnan(keypoint_value<GT>(s_h0[lane], 0, G, s_rk[lane][0], s_rk[lane][1])) ? 0 : argmax_key_index(key);
    const float y = __fadd_rn(static_cast<float>(cell_y<GT>(kb, G)), off[kb * 2 * kK + 2 * lane]);
    const float x = __fadd_rn(static_cast<float>(cell_x<GT>(kb, G)), off[kb * 2 * kK + 2 * lane + 1]);
    kx = __fmul_rn(__fmul_rn(x, a.out_scale), a.input_size);
    ky = __fmul_rn(__fmul_rn(y, a.out_scale), a.input_size);
    ks = heat[kb * kK + lane];
    s_kp[lane][0] = kx, s_kp[lane][1] = ky, s_kp[lane][2] = ks;
  }
  if (!a.poll && lane == 0) a.done[b] = 0;  // every block of this launch has counted: ready for the next one

  // 4. The pose: score = mean keypoint score, bbox = min/max of the keypoints, then frame pixels.
  PoseRecord* rec = item_records(a.out, b, a.max_poses);
  cp_async_wait_all();  // the crop (lanes 0..3)
  __syncwarp();         // the crop and s_kp, for the whole warp
  const CropTransform t = s_tf;
  if (lane < kK) {
    rec->kpt[lane][0] = frame_x(t, kx);
    rec->kpt[lane][1] = frame_y(t, ky);
    rec->kpt[lane][2] = ks;
  }
  if (lane == 0) {
    float sum = 0, x0 = 0, y0 = 0, x1 = 0, y1 = 0;
    for (int j = 0; j < kK; ++j) {
      const float jx = s_kp[j][0], jy = s_kp[j][1];
      sum = __fadd_rn(sum, s_kp[j][2]);
      x0 = j == 0 ? jx : std_min(x0, jx);
      y0 = j == 0 ? jy : std_min(y0, jy);
      x1 = j == 0 ? jx : std_max(x1, jx);
      y1 = j == 0 ? jy : std_max(y1, jy);
    }
    rec->score = __fdiv_rn(sum, static_cast<float>(kK));
    rec->bbox[0] = frame_x(t, x0);
    rec->bbox[1] = frame_y(t, y0);
    rec->bbox[2] = __fmul_rn(__fsub_rn(x1, x0), t.scale_x);
    rec->bbox[3] = __fmul_rn(__fsub_rn(y1, y0), t.scale_y);
    write_item_header(a.out, b, a.max_poses, 1);
  }
}

class MoveNetSingleDecoder : public DeviceDecoder {
 public:
  MoveNetSingleDecoder(const ModelSpec& spec, int max_batch, const PoseItemLayout& layout)
      : G_(spec.input_size / 4),
        input_size_(static_cast<float>(spec.input_size)),
        max_poses_(layout.max_poses),
        weight_(static_cast<size_t>(G_) * G_ * sizeof(__half), "MoveNet centre weight table"),
        keys_(static_cast<size_t>(max_batch) * kK * sizeof(unsigned long long), "MoveNet keypoint workspace"),
        done_(static_cast<size_t>(max_batch) * sizeof(unsigned), "MoveNet keypoint workspace") {
    if (G_ < 1) throw Error(spec.name + ": input size " + std::to_string(spec.input_size) + " gives an empty grid");
    // The kernel indexes a head with int (cell * 34 + channel).
    if (static_cast<long long>(G_) * G_ * 2 * kK > INT_MAX)
      throw Error(spec.name + ": input size " + std::to_string(spec.input_size) + " gives a " + std::to_string(G_) +
                  "x" + std::to_string(G_) + " grid, too large for the GPU decoder (at most 7947 cells a side)");
    // The weights are fp16 values (the model's constants), so an fp16 table holds them exactly, in
    // half the bytes every block reads. A weight fp16 cannot hold (below 2^-14, from a grid of
    // over about 23,000 cells a side) is refused rather than rounded.
    std::vector<__half> w(static_cast<size_t>(G_) * G_);
    for (int y = 0; y < G_; ++y)
      for (int x = 0; x < G_; ++x) {
        const float v = movenet_centre_weight(G_, y, x);
        const __half h = __float2half_rn(v);
        if (__half2float(h) != v)
          throw Error(spec.name + ": the centre weight of cell (" + std::to_string(y) + ", " + std::to_string(x) +
                      ") of a " + std::to_string(G_) + "x" + std::to_string(G_) +
                      " grid is not an fp16 value; the GPU decoder's table cannot hold it");
        w[static_cast<size_t>(y) * G_ + x] = h;
      }
    cuda_check(cudaMemcpy(weight_.as<__half>(), w.data(), w.size() * sizeof(__half), cudaMemcpyHostToDevice),
               "uploading the MoveNet centre weight table");
    // The kernel expects zero keys and counters and leaves them so.
    cuda_check(cudaMemset(keys_.as<void>(), 0, static_cast<size_t>(max_batch) * kK * sizeof(unsigned long long)),
               "clearing the MoveNet keypoint workspace");
    cuda_check(cudaMemset(done_.as<void>(), 0, static_cast<size_t>(max_batch) * sizeof(unsigned)),
               "clearing the MoveNet keypoint workspace");
    cuda_check(cudaDeviceSynchronize(), "clearing the MoveNet keypoint workspace");
    out_scale_ = movenet_output_scale(G_);
    kernel_ = G_ == 48   ? movenet_single_kernel<48, false>
              : G_ == 64 ? movenet_single_kernel<64, false>
                         : movenet_single_kernel<0, false>;
    staged_kernel_ = G_ == 48   ? movenet_single_kernel<48, true>
                     : G_ == 64 ? movenet_single_kernel<64, true>
                                : movenet_single_kernel<0, true>;
    resident_ = resident_blocks(kernel_, kThreads, "MoveNet decoder occupancy");
    // Launches of at most this many blocks poll: every block resident at once, whichever kernel
    // (the staged one with its largest chunk's shared memory, too) and however the blocks are
    // placed, so that no waiting block waits for a block that cannot start.
    int staged_per_sm = 0;
    cuda_check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&staged_per_sm, staged_kernel_, kThreads,
                                                             stage_bytes(kStageMaxCells)),
               "MoveNet decoder occupancy");
    poll_blocks_ = decode_poll_from_env() ? std::min(resident_, staged_per_sm * sm_count("MoveNet decoder occupancy")) : 0;
    if (poll_blocks_ > 0) {
      slots_ = DeviceBuffer(static_cast<size_t>(poll_blocks_) * kK * sizeof(unsigned long long), "MoveNet keypoint workspace");
      cuda_check(cudaMemset(slots_.as<void>(), 0, static_cast<size_t>(poll_blocks_) * kK * sizeof(unsigned long long)),
                 "clearing the MoveNet keypoint workspace");
      cuda_check(cudaDeviceSynchronize(), "clearing the MoveNet keypoint workspace");
    }
    sms_ = sm_count("MoveNet decoder setup");
    can_stage_ = compute_capability_major() >= 9 && decode_staged_from_env();
    lanes_override_ = decode_cells_per_lane_from_env();
    exhaustive_ = decode_exhaustive_from_env();
  }

  void enqueue(const std::vector<const float*>& heads, int n, const CropTransform* transforms, void* out,
               void* stream) override {
    // Small batches: many blocks per item, kMinCellsPerLane cells per lane, at most one block per
    // SM; larger batches: fewer blocks per item, as many as run in one wave (the centre argmax each
    // block repeats stays a small share, and no block waits for a second wave). See
    // movenet_single_cells_per_lane for the measurements.
    const int cells = G_ * G_;
    const int per_lane = lanes_override_ > 0 ? std::min(lanes_override_, (cells + 31) / 32)
                                             : movenet_single_cells_per_lane(cells, n, sms_, resident_, kMinCellsPerLane);
    const auto [blocks, chunk] = split_cells(cells, per_lane);
    SingleArgs a{heads[0],   heads[1], heads[2],    heads[3],          weight_.as<__half>(),
                 G_,         chunk,    out_scale_,  input_size_,       transforms,
                 out,        max_poses_, keys_.as<unsigned long long>(), done_.as<unsigned>(), exhaustive_,
                 blocks <= kMaxPollBlocks && static_cast<long long>(blocks) * n <= poll_blocks_,
                 slots_.as<unsigned long long>()};
    // Staged where the chunk fits (the staged kernel's occupancy is the same: at most 43.5 KB of
    // shared memory a block, 3 blocks an SM, as registers allow).
    if (can_stage_ && chunk <= kStageMaxCells)
      staged_kernel_<<<dim3(blocks, n), kThreads, stage_bytes(chunk), static_cast<cudaStream_t>(stream)>>>(a);
    else
      kernel_<<<dim3(blocks, n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(a);
    launch_check("movenet_single_kernel");
  }

 private:
  int G_;
  float input_size_;
  int max_poses_;
  float out_scale_ = 0;
  void (*kernel_)(SingleArgs) = nullptr;         // movenet_single_kernel for this grid side, tile by tile
  void (*staged_kernel_)(SingleArgs) = nullptr;  // the same with the chunk staged whole
  bool can_stage_ = false;                       // sm_90+ and $POSERT_DECODE_STAGED not 0
  int resident_ = 1;  // blocks of the kernel the GPU runs at once
  int poll_blocks_ = 0;  // launches of at most this many blocks poll (0: $POSERT_DECODE_POLL=0)
  int sms_ = 1;       // the GPU's SMs
  int lanes_override_ = 0;  // $POSERT_DECODE_CELLS_PER_LANE, or 0: movenet_single_cells_per_lane's choice
  bool exhaustive_ = false;  // $POSERT_DECODE_EXHAUSTIVE
  DeviceBuffer weight_, keys_, done_, slots_;
};

}  // namespace

std::unique_ptr<DeviceDecoder> make_movenet_single_decoder(const ModelSpec& spec, int max_batch,
                                                           const PoseItemLayout& layout) {
  return std::make_unique<MoveNetSingleDecoder>(spec, max_batch, layout);
}

}  // namespace posert::cuda::detail
