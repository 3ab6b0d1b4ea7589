// PoseNet decodeMultiplePoses on the GPU, as decode_posenet + the crop transform, in two kernels.
// 1: part peaks (thread per part; the sigmoid only where the logits cannot decide), appended to
// the item's list, one atomic per block, as keys whose order is the CPU's stable score order.
// 2 (block per item, launched programmatically where the GPU allows: it stages the item's heads in
// shared memory while kernel 1 finishes, then waits for the peaks): the first 32 roots from a score
// histogram (later ones by a block bitonic top-32), every warp grows one root's pose (lane per
// keypoint, tree level by level), then they are taken in order against the earlier poses.
// Positions are double as on the CPU, with _rn intrinsics (and fma only where it rounds as the
// CPU's two steps) so that every cell and coordinate is the CPU's.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "kernels/cuda/cuda_common.cuh"
#include "pose/cuda/decode_common.cuh"
#include "pose/cuda/device_decoders.h"
#include "pose/posenet.h"

namespace posert::cuda::detail {

namespace {

constexpr int kK = kPoseKeypoints;
constexpr int kEdges = 16;
constexpr double kInvStride = 1.0 / 16.0;  // v / 16 and v * (1/16) round alike: a power of two

using Key = unsigned long long;

// How keypoint `lane` of a pose grown from root keypoint rk is reached: from keypoint src along
// `edge` (forward: parent -> child), at tree distance `level` from the root (0: the root itself or
// an unused lane). The CPU's two passes over the edges reach each keypoint from its neighbour on
// the path to the root, so keypoints of one level are independent of each other.
// The grouping kernel copies the plan into shared memory: a warp reading its lanes' different
// entries from constant memory is served one address at a time (ncu: a third of the tree walk).
struct alignas(4) Step {
  signed char src, edge, forward, level;
};
__device__ Step g_plan[kK][32];
__device__ int g_depth[kK];

// A peak as one integer: score bits (score >= 0) above the inverted part index, so the unsigned
// order is the CPU's (score descending, then index ascending). 0 is never a peak.
__device__ __forceinline__ Key peak_key(float score, int index) {
  return (static_cast<Key>(__float_as_uint(score)) << 32) | (0xffffffffu - static_cast<unsigned>(index));
}
__device__ __forceinline__ float key_score(Key k) { return __uint_as_float(static_cast<unsigned>(k >> 32)); }
__device__ __forceinline__ int key_index(Key k) { return static_cast<int>(0xffffffffu - static_cast<unsigned>(k)); }

__device__ __forceinline__ float sigmoid_as_cpu(float logit) {
  return __fdiv_rn(1.0f, __fadd_rn(1.0f, exp_as_cpu(-logit)));
}

struct PoseNetArgs {
  const float *logits, *offsets, *fwd, *bwd;
  int G;
  float part_threshold;
  float cut;  // logits below this score below the threshold (see posenet_peaks_kernel)
  int local_maximum_radius;
  int refine_steps;
  int max_detections;
  double sq_radius;
  float min_pose_score;
  Key* peaks;       // [N, cap] in any order
  int* peak_count;  // [N * kCountStride]; posenet_peaks_kernel appends, posenet_group_kernel reads and resets
  int cap;          // G * G * 17
  int fwd_cells, bwd_cells;  // the displacement cells posenet_group_kernel<true> stages
  unsigned bin_lo;  // first_top32's histogram: bin = (score bits - bin_lo) >> bin_shift, clamped
  int bin_shift;
  const CropTransform* tf;
  void* out;
  int max_poses;
};

constexpr int kPeakThreads = 256;
// Items' peak counters lie 128 bytes apart, so that no two share an L2 line.
constexpr int kCountStride = 32;

// Part i is a peak when score >= threshold and no score in its window is larger. The sigmoid is
// monotone, so a logit below `cut` (0.01 under logit(threshold), as the CPU decoder) cannot reach
// the threshold, a neighbour whose logit is more than 0.01 below ours cannot score higher, and
// (radius 1, below) one 0.01 or more above ours does: only the rest need their sigmoid.
__global__ void __launch_bounds__(kPeakThreads) posenet_peaks_kernel(PoseNetArgs a) {
  // The grouping kernel (launched programmatically, see enqueue) may be scheduled from here on: its
  // blocks start their copies and wait for this grid's peaks in pdl_wait().
  pdl_release();
  const int b = blockIdx.y, G = a.G;
  const int i = blockIdx.x * kPeakThreads + threadIdx.x;
  const float* lg = a.logits + static_cast<size_t>(b) * a.cap;
  bool peak = false;
  float s = 0;
  if (i < a.cap) {
    const int k = i % kK, cell = i / kK, y = cell / G, x = cell % G, r = a.local_maximum_radius;
    // PoseNet's radius 1: the 8 neighbours' logits are loaded at once (-inf outside the grid) and
    // beside the part's own, before the cut decides whether they are needed: one round trip to
    // memory where a part above the cut took two (a warp waits for its slowest lane).
    const float l = lg[i];
    float nb[8];
    if (r == 1) {
      int u = 0;
#pragma unroll
      for (int dy = -1; dy <= 1; ++dy)
#pragma unroll
        for (int dx = -1; dx <= 1; ++dx) {
          if (dy == 0 && dx == 0) continue;
          const int yy = y + dy, xx = x + dx;
          nb[u++] = yy >= 0 && yy < G && xx >= 0 && xx < G ? lg[(yy * G + xx) * kK + k] : -HUGE_VALF;
        }
    }
    if (!(l < a.cut)) {  // NaN goes on, and fails the threshold
      // A neighbour whose logit is 0.01 or more above ours, where ours is at most 8, scores higher:
      // the sigmoid rises by a relative 3.3e-6 or more over that step (at 8; more below), ten times
      // what the float roundings of exp, 1 + e and 1 / d can take back. Such a part is no peak,
      // whatever its score, and needs no sigmoid at all.
      bool beaten = false;
      if (r == 1 && l <= 8.0f) {
        const float above = __fadd_rn(l, 0.01f);
#pragma unroll
        for (int v = 0; v < 8; ++v) beaten |= nb[v] >= above;
      }
      if (!beaten) s = sigmoid_as_cpu(l);
      if (!beaten && s >= a.part_threshold) {
        peak = true;
        const float near = __fsub_rn(l, 0.01f);
        if (r == 1) {
#pragma unroll
          for (int v = 0; v < 8; ++v)
            if (peak && nb[v] >= near && sigmoid_as_cpu(nb[v]) > s) peak = false;
        } else {
          for (int yy = max(0, y - r); yy <= min(G - 1, y + r) && peak; ++yy)
            for (int xx = max(0, x - r); xx <= min(G - 1, x + r); ++xx) {
              if (yy == y && xx == x) continue;
              const float ln = lg[(yy * G + xx) * kK + k];
              if (ln >= near && sigmoid_as_cpu(ln) > s) {
                peak = false;
                break;
              }
            }
        }
      }
    }
  }
  // Append the block's peaks with one atomic: an item's counter takes one atomic per block, not one
  // per warp (ncu: the warps' atomics on one address, waited for in turn, were half the kernel's
  // stall samples at batch 16).
  __shared__ int s_warp_base[kPeakThreads / 32];
  __shared__ int s_block_base;
  const unsigned mask = __ballot_sync(0xffffffffu, peak);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) s_warp_base[warp] = __popc(mask);
  __syncthreads();
  if (threadIdx.x == 0) {
    int total = 0;
#pragma unroll
    for (int w = 0; w < kPeakThreads / 32; ++w) {
      const int c = s_warp_base[w];
      s_warp_base[w] = total;
      total += c;
    }
    s_block_base = total > 0 ? atomicAdd(&a.peak_count[b * kCountStride], total) : 0;
  }
  __syncthreads();
  if (peak)
    a.peaks[static_cast<size_t>(b) * a.cap + s_block_base + s_warp_base[warp] + __popc(mask & ((1u << lane) - 1))] =
        peak_key(s, i);
}

// Warp bitonic sort of one key per lane, descending across the lanes.
__device__ __forceinline__ Key warp_sort_desc(Key v, int lane) {
#pragma unroll
  for (int k = 2; k <= 32; k <<= 1)
#pragma unroll
    for (int j = k >> 1; j > 0; j >>= 1) {
      const Key o = __shfl_xor_sync(0xffffffffu, v, j);
      const bool desc = (lane & k) == 0, low = (lane & j) == 0;
      v = (low == desc) ? (v > o ? v : o) : (v < o ? v : o);
    }
  return v;
}
// A bitonic sequence across the lanes -> descending.
__device__ __forceinline__ Key warp_merge_desc(Key v, int lane) {
#pragma unroll
  for (int j = 16; j > 0; j >>= 1) {
    const Key o = __shfl_xor_sync(0xffffffffu, v, j);
    v = (lane & j) == 0 ? (v > o ? v : o) : (v < o ? v : o);
  }
  return v;
}

constexpr int kGroupThreads = 512;
constexpr int kGroupWarps = kGroupThreads / 32;

// The 32 largest keys below `below`, descending, into s_list[0] (0 where fewer). All threads.
__device__ void block_top32(const Key* keys, int count, Key below, Key (*s_list)[32]) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  Key top = 0;  // this warp's 32 best so far, descending across the lanes
  Key next = warp * 32 + lane < count ? keys[warp * 32 + lane] : 0;
  for (int base = warp * 32; base < count; base += kGroupThreads) {
    Key v = next;  // loaded one step ahead: the load overlaps the sort before it
    const int j = base + kGroupThreads + lane;
    next = j < count ? keys[j] : 0;
    if (v >= below) v = 0;
    const Key least = __shfl_sync(0xffffffffu, top, 31);
    if (!__any_sync(0xffffffffu, v > least)) continue;
    v = warp_sort_desc(v, lane);
    // Best 32 of two descending lists: max against the other reversed (bitonic), then merge.
    const Key o = __shfl_sync(0xffffffffu, v, 31 - lane);
    top = warp_merge_desc(top > o ? top : o, lane);
  }
  s_list[warp][lane] = top;
  __syncthreads();
  for (int step = 1; step < kGroupWarps; step <<= 1) {
    if (warp % (2 * step) == 0) {
      const Key mine = s_list[warp][lane], o = s_list[warp + step][31 - lane];
      s_list[warp][lane] = warp_merge_desc(mine > o ? mine : o, lane);
    }
    __syncthreads();
  }
}

// The first round's 32 roots without sorting every peak. A shared-memory histogram of the peaks'
// scores (score bits above bin_lo, >> bin_shift; a monotone map) gives the bin where the 32 best
// begin; the peaks from that bin up are ranked by counting, where there are at most kCollect of
// them. The peaks come in registers: thread t holds peaks t, t + kGroupThreads, ... (0 past the
// count). Fills s_list[0] as block_top32(keys, count, ~0ull, s_list) does and returns true, or
// returns false (block-uniform) and leaves s_list to block_top32. All threads, after
// first_top32_clear and no other use of s_list.
constexpr int kBinsPerLane = 30;
constexpr int kBins = 32 * kBinsPerLane;
constexpr int kCollect = 64;
// Bin b's slot: each lane's 30 bins take 31 slots, so that warp 0's lanes, reading their own bins
// side by side, hit 32 different banks.
__device__ __forceinline__ int bin_slot(int b) { return b + b / kBinsPerLane; }
struct FirstRoots {
  alignas(16) Key cand[kCollect];
  int from_bin, collected, filled;
};
constexpr int kKeysPerThread = 4;  // first_top32 takes up to kGroupThreads * 4 peaks from registers
// Zeroes first_top32's histogram (in s_list), then a block barrier: all threads, before first_top32.
__device__ __forceinline__ void first_top32_clear(Key (*s_list)[32]) {
  int* hist = reinterpret_cast<int*>(s_list);
  for (int i = threadIdx.x; i < 32 * (kBinsPerLane + 1); i += kGroupThreads) hist[i] = 0;
  __syncthreads();
}
__device__ bool first_top32(const Key (&mine)[kKeysPerThread], int count, unsigned bin_lo, int bin_shift,
                            Key (*s_list)[32], FirstRoots& s) {
  if (count > kGroupThreads * kKeysPerThread) return false;
  static_assert(32 * (kBinsPerLane + 1) * sizeof(int) <= sizeof(Key) * kGroupWarps * 32, "the histogram lives in s_list");
  int* hist = reinterpret_cast<int*>(s_list);
  const int tid = threadIdx.x, lane = tid & 31;
  auto bin_of = [&](Key k) {
    const unsigned bits = static_cast<unsigned>(k >> 32);
    return bits > bin_lo ? min((bits - bin_lo) >> bin_shift, static_cast<unsigned>(kBins - 1)) : 0u;
  };
#pragma unroll
  for (int r = 0; r < kKeysPerThread; ++r)
    if (mine[r] != 0) atomicAdd(&hist[bin_slot(bin_of(mine[r]))], 1);
  __syncthreads();
  if (tid < 32) {
    // Lane l sums bins [kBins - 30 (l + 1), kBins - 30 l): lane 0 the best. The first lane whose
    // running total reaches 32 walks its bins down to the one where it does.
    const int top = kBins - kBinsPerLane * lane;
    int sum = 0;
#pragma unroll 10
    for (int j = 1; j <= kBinsPerLane; ++j) sum += hist[bin_slot(top - j)];
    int run = sum;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int v = __shfl_up_sync(0xffffffffu, run, o);
      if (lane >= o) run += v;
    }
    const unsigned reach = __ballot_sync(0xffffffffu, run >= 32);
    if (reach == 0) {  // fewer than 32 peaks: all of them
      if (lane == 0) s.from_bin = 0, s.collected = count;
    } else {
      // The crossing lane x's bins, walked down by the whole warp: lane l takes bin top_x - 1 - l;
      // a prefix sum gives each bin's running total, and the first to reach 32 is the cut.
      const int x = __ffs(reach) - 1, top_x = kBins - kBinsPerLane * x;
      const int above = __shfl_sync(0xffffffffu, run - sum, x);
      int c = lane < kBinsPerLane ? hist[bin_slot(top_x - 1 - lane)] : 0;
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {
        const int v = __shfl_up_sync(0xffffffffu, c, o);
        if (lane >= o) c += v;
      }
      const unsigned cut = __ballot_sync(0xffffffffu, above + c >= 32);  // lane x's sum reaches it
      if (lane == __ffs(cut) - 1) {
        s.from_bin = top_x - 1 - lane;
        s.collected = above + c;
      }
    }
    if (lane == 0) s.filled = 0;
  }
  __syncthreads();
  const unsigned from = static_cast<unsigned>(s.from_bin);
  const int collected = s.collected;
  if (collected > kCollect) return false;
#pragma unroll
  for (int r = 0; r < kKeysPerThread; ++r)
    if (mine[r] != 0 && bin_of(mine[r]) >= from) s.cand[atomicAdd(&s.filled, 1)] = mine[r];
  if (tid >= collected && tid < kCollect) s.cand[tid] = 0;  // 0 ranks no one
  __syncthreads();
  // Keys are distinct: a candidate's rank is the number of larger ones. Eight threads per
  // candidate count an eighth of the list each (four 16-byte reads), then add up by shuffles
  // (clock64, batch 16, barrier to barrier: about 1,350 cycles, where one thread per candidate
  // walking the whole list took 1,500-1,900).
  static_assert(kCollect * 8 == kGroupThreads && kCollect % 16 == 0, "eight threads per candidate, two keys a read");
  {
    const int c = tid / 8, part = tid % 8;
    const Key k = s.cand[c];
    int rank = 0;
#pragma unroll
    for (int j = 0; j < kCollect / 8; j += 2) {
      const ulonglong2 v = *reinterpret_cast<const ulonglong2*>(&s.cand[part * (kCollect / 8) + j]);
      rank += (v.x > k) + (v.y > k);
    }
#pragma unroll
    for (int o = 1; o < 8; o <<= 1) rank += __shfl_xor_sync(0xffffffffu, rank, o);
    if (part == 0 && c < collected && rank < 32) s_list[0][rank] = k;
    if (tid >= collected && tid < 32) s_list[0][tid] = 0;
  }
  __syncthreads();
  return true;
}

struct Point {
  double y, x;
};

struct Grouping {
  const float *logits, *offsets, *fwd, *bwd;
  int G;
  // The displacements of cells [0, fwd_cells) and [0, bwd_cells) in shared memory (kStaged).
  const float *s_fwd, *s_bwd;
  int fwd_cells, bwd_cells;

  __device__ float score(int y, int x, int k) const { return sigmoid_as_cpu(logits[(y * G + x) * kK + k]); }
  // The cell's position times the stride (exact in double: y * 16 as an integer) plus the offset.
  __device__ Point image_coords(int y, int x, int k) const {
    const float* o = offsets + (y * G + x) * 2 * kK;
    return {__dadd_rn(static_cast<double>(y * 16), static_cast<double>(o[k])),
            __dadd_rn(static_cast<double>(x * 16), static_cast<double>(o[kK + k]))};
  }
  // JS Math.round to a cell, clamped, NaN -> 0, as the CPU's floor(v / 16 + 0.5) then clamp.
  // v / 16 is exact (a power of two; where it underflows, + 0.5 rounds to 0.5 either way), so one
  // fma rounds as the CPU's divide-then-add. The floor-convert saturates out-of-range values and
  // maps NaN to 0 (PTX cvt.rmi.s32.f64), and the clamp is then on integers: an fma, a convert and
  // two integer min/max on the tree walk's chain, where a clamp in double put two double compares
  // and four selects before the convert.
  __device__ int nearest_index(double v) const {
    return min(max(__double2int_rd(__fma_rn(v, kInvStride, 0.5)), 0), G - 1);
  }
  // Where keypoint `target` lies reached from `source` along `edge`: the displacement, then
  // refine_steps offset refinements. Its score (score_at) is left off this dependent chain.
  __device__ Point traverse(int edge, Point source, int target, bool forward, int refine_steps) const {
    const int cell = nearest_index(source.y) * G + nearest_index(source.x);
    float dy, dx;
    if (cell < (forward ? fwd_cells : bwd_cells)) {
      const float* d = (forward ? s_fwd : s_bwd) + cell * 2 * kEdges;
      dy = d[edge];
      dx = d[kEdges + edge];
    } else {
      const float* d = (forward ? fwd : bwd) + cell * 2 * kEdges;
      dy = d[edge];
      dx = d[kEdges + edge];
    }
    Point t{__dadd_rn(source.y, static_cast<double>(dy)), __dadd_rn(source.x, static_cast<double>(dx))};
    for (int i = 0; i < refine_steps; ++i) t = image_coords(nearest_index(t.y), nearest_index(t.x), target);
    return t;
  }
  __device__ float score_at(Point t, int k) const { return score(nearest_index(t.y), nearest_index(t.x), k); }
};

struct RawPose {
  Point pos[kK];
  float kscore[kK];
  float score;
};

__device__ __forceinline__ bool within(Point q, Point p, double sq_radius) {
  const double dy = __dsub_rn(q.y, p.y), dx = __dsub_rn(q.x, p.x);
  return __dadd_rn(__dmul_rn(dy, dy), __dmul_rn(dx, dx)) <= sq_radius;
}

// The pose grown from root `key` by the calling warp, lane k computing keypoint k.
__device__ void grow_pose(const Grouping& g, Key key, int refine_steps, const Step (*plan)[32], const int* depths,
                          RawPose* out) {
  const int lane = threadIdx.x & 31;
  const int index = key_index(key), rk = index % kK, cell = index / kK;
  Point p{0, 0};
  float ks = 0;
  if (lane == rk) {
    p = g.image_coords(cell / g.G, cell % g.G, rk);
    ks = key_score(key);
  }
  const Step st = plan[rk][lane];
  const int depth = depths[rk];
  for (int level = 1; level <= depth; ++level) {
    const double sy = __shfl_sync(0xffffffffu, p.y, st.src), sx = __shfl_sync(0xffffffffu, p.x, st.src);
    if (st.level == level) p = g.traverse(st.edge, {sy, sx}, lane, st.forward != 0, refine_steps);
  }
  // Every reached keypoint's score at once, after the positions.
  if (lane < kK && st.level > 0) ks = g.score_at(p, lane);
  if (lane < kK) {
    out->pos[lane] = p;
    out->kscore[lane] = ks;
  }
}

// Where posenet_group_kernel<true> puts an item's heads in its dynamic shared memory: the offsets,
// then the displacements of forward cells [0, fwd_cells) and backward cells [0, bwd_cells). Each
// region starts at a 16-byte boundary plus its source's address mod 16 (so that the copy engine's
// 16-byte-aligned middle lines up) and has 16 spare bytes: staged_bytes gives the total.
struct StagedHeads {
  float *offsets, *fwd, *bwd;
  unsigned offset_bytes, fwd_bytes, bwd_bytes;
};
__host__ __device__ inline size_t staged_region(size_t bytes) { return (bytes + 15) / 16 * 16 + 16; }
inline size_t staged_bytes(int cells, int fwd_cells, int bwd_cells) {
  const size_t cell_bytes = 2 * kEdges * sizeof(float);
  return staged_region(static_cast<size_t>(cells) * 2 * kK * sizeof(float)) + staged_region(fwd_cells * cell_bytes) +
         staged_region(bwd_cells * cell_bytes);
}
extern __shared__ __align__(16) unsigned char s_staged[];
__device__ StagedHeads staged_heads(const float* offsets, const float* fwd, const float* bwd, int cells, int fwd_cells,
                                    int bwd_cells) {
  StagedHeads h;
  h.offset_bytes = static_cast<unsigned>(cells) * 2 * kK * sizeof(float);
  h.fwd_bytes = static_cast<unsigned>(fwd_cells) * 2 * kEdges * sizeof(float);
  h.bwd_bytes = static_cast<unsigned>(bwd_cells) * 2 * kEdges * sizeof(float);
  unsigned char* p = s_staged;
  auto place = [&](const float* src, unsigned bytes) {
    float* dst = reinterpret_cast<float*>(p + (reinterpret_cast<size_t>(src) & 15));
    p += staged_region(bytes);
    return dst;
  };
  h.offsets = place(offsets, h.offset_bytes);
  h.fwd = place(fwd, h.fwd_bytes);
  h.bwd = place(bwd, h.bwd_bytes);
  return h;
}
// Starts the copies (all threads call it). sm_90: thread 0 has the copy engine move each region's
// 16-byte-aligned middle (one instruction per region, completing on *bar); the ragged ends, under
// 16 bytes each, go word by word (BulkSplit). Older GPUs: cp.async by every thread, 8 bytes at a time where the
// region starts 8-byte aligned (as it does from an aligned tensor: cells times 136 or 128 bytes
// per item), else 4.
__device__ void stage_heads(const StagedHeads& h, const float* offsets, const float* fwd, const float* bwd,
                            unsigned long long* bar) {
  const float* src[3] = {offsets, fwd, bwd};
  float* dst[3] = {h.offsets, h.fwd, h.bwd};
  const unsigned bytes[3] = {h.offset_bytes, h.fwd_bytes, h.bwd_bytes};
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  BulkSplit sp[3];
#pragma unroll
  for (int r = 0; r < 3; ++r) sp[r] = bulk_split(src[r], bytes[r]);
  if (threadIdx.x == 0) {
    mbarrier_init_one(bar);
    mbarrier_arrive_expect_tx(bar, sp[0].bulk + sp[1].bulk + sp[2].bulk);  // 0 bytes: completes on this arrival
#pragma unroll
    for (int r = 0; r < 3; ++r) bulk_copy_middle(dst[r], src[r], sp[r], bar);
  }
  // Threads 0..23: region tid / 8's ragged words, helper tid % 8. The region is picked by selects,
  // not by indexing the arrays with r (which would put them in local memory: a stack frame).
  if (threadIdx.x < 24) {
    const int r = threadIdx.x / 8;
    auto pick = [r](auto v0, auto v1, auto v2) { return r == 0 ? v0 : r == 1 ? v1 : v2; };
    const BulkSplit s{pick(sp[0].head, sp[1].head, sp[2].head), pick(sp[0].bulk, sp[1].bulk, sp[2].bulk)};
    copy_ragged_word(pick(dst[0], dst[1], dst[2]), pick(src[0], src[1], src[2]), pick(bytes[0], bytes[1], bytes[2]), s,
                     threadIdx.x % 8);
  }
#else
  (void)bar;
#pragma unroll
  for (int r = 0; r < 3; ++r) {
    if ((reinterpret_cast<size_t>(src[r]) & 7) == 0 && bytes[r] % 8 == 0) {
      const float2* s = reinterpret_cast<const float2*>(src[r]);
      float2* d = reinterpret_cast<float2*>(dst[r]);
      for (unsigned i = threadIdx.x; i < bytes[r] / 8; i += blockDim.x) cp_async8(&d[i], &s[i]);
    } else {
      for (unsigned i = threadIdx.x; i < bytes[r] / 4; i += blockDim.x) cp_async4(&dst[r][i], &src[r][i]);
    }
  }
#endif
}
// Every thread: the copies stage_heads started have landed (the caller synchronizes the block before
// reading what other threads copied).
__device__ __forceinline__ void staged_wait(unsigned long long* bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  cp_async_wait_all();  // the ragged words (threads 0..23)
  mbarrier_wait_phase0(bar);
#else
  (void)bar;
  cp_async_wait_all();
#endif
}

// Block per item: roots in score order, 32 at a time; each warp grows one root's pose at once
// (speculatively: whether a root is taken depends only on the poses before it); then every grown
// keypoint is checked against the earlier poses at once (bit masks), warp 0 walks the
// candidates in order as the CPU's queue walk does, on the masks alone, and a warp per taken
// candidate computes its instance score. Records: a warp per pose.
static_assert(kMaxPosesPerItem + kGroupWarps <= 32, "the earlier-pose masks are 32-bit");
template <bool kStaged>
__global__ void __launch_bounds__(kGroupThreads, 1) posenet_group_kernel(PoseNetArgs a) {
  const int b = blockIdx.x, G = a.G, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const size_t cells = static_cast<size_t>(G) * G;
  const float* offsets = a.offsets + static_cast<size_t>(b) * cells * 2 * kK;
  const float* fwd = a.fwd + static_cast<size_t>(b) * cells * 2 * kEdges;
  const float* bwd = a.bwd + static_cast<size_t>(b) * cells * 2 * kEdges;
  // kStaged: the item's offsets (read by every refinement step of the tree walk, a chain of
  // dependent loads), then as many cells' forward and backward displacements as fit (each tree
  // level reads one), go to shared memory while the first roots are chosen (StagedHeads). Thread 0
  // issues the copies first: its barrier's init fence would otherwise wait for its loads below.
  __shared__ unsigned long long s_copied;  // the copy engine's barrier (sm_90)
  const StagedHeads st = staged_heads(offsets, fwd, bwd, static_cast<int>(cells), a.fwd_cells, a.bwd_cells);
  if (kStaged) stage_heads(st, offsets, fwd, bwd, &s_copied);
  // The tree plan, the crop (read by the records at the end) and the depths are loaded into
  // registers now and stored to shared memory once the first keys have come (below): a store now
  // would wait for its load, and the keys' loads after it (clock64, batch 16: the start took
  // 2,200-2,800 cycles with the copy here, 1,450-1,700 without it and with the ragged words as
  // cp.async).
  static_assert(kK * 32 <= 2 * kGroupThreads, "two plan entries per thread at most");
  __shared__ Step s_plan[kK][32];
  __shared__ int s_depth[kK];
  __shared__ CropTransform s_tf;
  // As 32-bit words: loaded as Steps, the four bytes were unpacked (and waited for) at once.
  static_assert(sizeof(Step) == sizeof(int), "a plan entry is one word");
  const int* plan_words = reinterpret_cast<const int*>(&g_plan[0][0]);
  const int plan0 = plan_words[tid];
  const int plan1 = tid + kGroupThreads < kK * 32 ? plan_words[tid + kGroupThreads] : 0;
  const int depth = tid < kK ? g_depth[tid] : 0;
  static_assert(sizeof(CropTransform) == 4 * sizeof(float), "the crop is four floats");
  const float tf = warp == 1 && lane < 4 ? reinterpret_cast<const float*>(a.tf + b)[lane] : 0.0f;
  __shared__ Key s_list[kGroupWarps][32];
  first_top32_clear(s_list);  // the first round's histogram, ready before the peaks are
  const Grouping g{a.logits + static_cast<size_t>(b) * cells * kK,
                   kStaged ? st.offsets : offsets,
                   fwd,
                   bwd,
                   G,
                   st.fwd,
                   st.bwd,
                   kStaged ? a.fwd_cells : 0,
                   kStaged ? a.bwd_cells : 0};
  // Everything above reads what was written before the peaks kernel ran (the engine's heads, the
  // plan); with programmatic launch it overlaps that kernel's end. The peaks come after it.
  pdl_wait();
  // The first keys are loaded beside their count, not after it (the list's slots past the count
  // hold earlier launches' keys, or the zeros of setup), then masked.
  const Key* keys = a.peaks + static_cast<size_t>(b) * a.cap;
  const int count = a.peak_count[b * kCountStride];
  Key mine[kKeysPerThread];
#pragma unroll
  for (int r = 0; r < kKeysPerThread; ++r) {
    const int j = tid + r * kGroupThreads;
    mine[r] = j < a.cap ? keys[j] : 0;
  }
#pragma unroll
  for (int r = 0; r < kKeysPerThread; ++r)
    if (tid + r * kGroupThreads >= count) mine[r] = 0;
  // Read after the first round's barriers.
  reinterpret_cast<int*>(&s_plan[0][0])[tid] = plan0;
  if (tid + kGroupThreads < kK * 32) reinterpret_cast<int*>(&s_plan[0][0])[tid + kGroupThreads] = plan1;
  if (tid < kK) s_depth[tid] = depth;
  if (warp == 1 && lane < 4) reinterpret_cast<float*>(&s_tf)[lane] = tf;
  __shared__ RawPose s_grown[kGroupWarps];
  __shared__ RawPose s_poses[kMaxPosesPerItem];
  __shared__ int s_slot[kMaxPosesPerItem];
  __shared__ unsigned s_near[kGroupWarps][kK];  // see below
  __shared__ int s_rank[kGroupWarps];            // a taken candidate's slot in s_poses, or -1
  __shared__ int s_root_kp[kGroupWarps];         // the keypoint of each candidate's root
  __shared__ unsigned s_taken;
  __shared__ int s_npose, s_written;

  int npose = 0;  // block-uniform
  Key below = ~0ull;
  __shared__ FirstRoots s_first;
  while (npose < a.max_detections) {
    if (below != ~0ull || !first_top32(mine, count, a.bin_lo, a.bin_shift, s_list, s_first))
      block_top32(keys, count, below, s_list);  // both end with __syncthreads
    if (kStaged && below == ~0ull) {  // the first round: the staged heads are needed from here
      staged_wait(&s_copied);
      __syncthreads();
    }
    const int nroots = __syncthreads_count(lane < 32 && warp == 0 && s_list[0][lane] != 0);
    if (nroots == 0) break;
    for (int first = 0; first < nroots && npose < a.max_detections; first += kGroupWarps) {
      for (int i = tid; i < kGroupWarps * kK; i += kGroupThreads) (&s_near[0][0])[i] = 0;  // ORed into below
      if (first + warp < nroots) grow_pose(g, s_list[0][first + warp], a.refine_steps, s_plan, s_depth, &s_grown[warp]);
      __syncthreads();
      // Which earlier poses each grown keypoint lies within the radius of: bits 0..P-1 the poses
      // taken before this round, P + j' this round's candidate j' < j (taken or not: the scan
      // below masks the ones not taken). A thread per (candidate, keypoint) tests the earlier
      // poses and candidates q < kSplit, and for candidates j > kSplit a second thread tests
      // candidates kSplit <= q < j: the longest thread tests P + 8 where it tested P + 15 (its
      // block waited for it).
      const int C = min(kGroupWarps, nroots - first), P = npose;
      constexpr int kSplit = 8;
      const int items = C * kK + max(0, C - (kSplit + 1)) * kK;
      for (int it = tid; it < items; it += kGroupThreads) {
        const bool second = it >= C * kK;
        const int pair = second ? it - C * kK + (kSplit + 1) * kK : it;
        const int j = pair / kK, k = pair % kK;
        const Point pj = s_grown[j].pos[k];
        unsigned mask = 0;
        if (!second)
          for (int q = 0; q < P; ++q)
            if (within(s_poses[q].pos[k], pj, a.sq_radius)) mask |= 1u << q;
        const int q1 = second ? j : min(j, kSplit);
#pragma unroll 4
        for (int q = second ? kSplit : 0; q < q1; ++q)
          if (within(s_grown[q].pos[k], pj, a.sq_radius)) mask |= 1u << (P + q);
        if (mask != 0) atomicOr(&s_near[j][k], mask);
      }
      if (tid < C) s_root_kp[tid] = key_index(s_list[0][first + tid]) % kK;
      __syncthreads();
      // The CPU's queue walk: a candidate is taken unless its root lies within the radius of the
      // same keypoint of a pose taken before it. Warp 0: lane j loads candidate j's root mask, then
      // every lane walks the candidates in order on registers (the same walk in every lane; lane j
      // keeps candidate j's slot). One thread loading and walking took 1,200 cycles (ncu).
      if (warp == 0) {
        const unsigned mine = lane < C ? s_near[lane][s_root_kp[lane]] : 0u;
        unsigned taken = (1u << P) - 1;
        int np = P, my_rank = -1;
#pragma unroll
        for (int j = 0; j < kGroupWarps; ++j) {
          const unsigned root_near = __shfl_sync(0xffffffffu, mine, j);
          if (j < C && np < a.max_detections && !(root_near & taken)) {
            if (lane == j) my_rank = np;
            ++np;
            taken |= 1u << (P + j);
          }
        }
        if (lane < kGroupWarps) s_rank[lane] = my_rank;
        if (lane == 0) {
          s_taken = taken;
          s_npose = np;
        }
      }
      __syncthreads();
      // Warp j: candidate j, if taken, into its slot with its instance score.
      if (warp < C && s_rank[warp] >= 0) {
        const int j = warp;
        const RawPose& c = s_grown[j];
        // Instance score: keypoints already claimed by a pose taken before this one do not count.
        const unsigned before = s_taken & ((1u << (P + j)) - 1);
        const bool claimed = lane < kK && (s_near[j][lane] & before) != 0;
        const unsigned claimed_mask = __ballot_sync(0xffffffffu, claimed);
        RawPose& dst = s_poses[s_rank[j]];
        if (lane < kK) {
          dst.pos[lane] = c.pos[lane];
          dst.kscore[lane] = c.kscore[lane];
        }
        // The CPU adds the unclaimed scores one after the other in double. Where every score
        // is 0 or in [2^-24, 1], all of them and every partial sum are multiples of 2^-47 below
        // 2^6: exact, so a warp tree gives the same sum (0 + ... restores the CPU's +0 start).
        const float fv = lane < kK && !claimed ? c.kscore[lane] : 0.0f;
        double sum = static_cast<double>(fv);
        if (__all_sync(0xffffffffu, fv == 0.0f || (fv >= 0x1p-24f && fv <= 1.0f))) {
#pragma unroll
          for (int o = 16; o > 0; o >>= 1) sum = __dadd_rn(sum, __shfl_xor_sync(0xffffffffu, sum, o));
          sum = __dadd_rn(0.0, sum);
        } else if (lane == 0) {
          sum = 0;
          for (int k = 0; k < kK; ++k)
            if (!((claimed_mask >> k) & 1u)) sum = __dadd_rn(sum, static_cast<double>(c.kscore[k]));
        }
        if (lane == 0) dst.score = __double2float_rn(__ddiv_rn(sum, static_cast<double>(kK)));
      }
      __syncthreads();
      npose = s_npose;
    }
    if (nroots < 32) break;  // every peak has been a root
    below = s_list[0][31];
    __syncthreads();  // s_list is rebuilt by the next round
  }
  if (kStaged) staged_wait(&s_copied);  // no copy may outlive the block (max_detections 0: no round ran)
  if (tid == 0) a.peak_count[b * kCountStride] = 0;  // for the next launch; everyone has read it

  // Poses scoring at least min_pose_score -> records in frame pixels, a warp per pose.
  static_assert(kMaxPosesPerItem <= 32, "warp 0 numbers the poses");
  if (warp == 0) {
    const bool keep = lane < npose && !(s_poses[lane].score < a.min_pose_score);
    const unsigned kept = __ballot_sync(0xffffffffu, keep);
    if (lane < npose) s_slot[lane] = keep ? __popc(kept & ((1u << lane) - 1)) : -1;
    if (lane == 0) {
      write_item_header(a.out, b, a.max_poses, __popc(kept));
      s_written = __popc(kept);
    }
  }
  __syncthreads();
  zero_item_records(a.out, b, a.max_poses, s_written);  // the records past the poses; the warps write the rest
  {
    const CropTransform t = s_tf;
    PoseRecord* recs = item_records(a.out, b, a.max_poses);
    for (int p = warp; p < npose; p += kGroupWarps) {
      const int slot = s_slot[p];
      if (slot < 0) continue;
      const RawPose& rp = s_poses[p];
      PoseRecord& r = recs[slot];
      // PoseNet puts pixel centres on integers; model-input pixels put them at i + 0.5.
      float kx = 0, ky = 0;
      if (lane < kK) {
        kx = __double2float_rn(__dadd_rn(rp.pos[lane].x, 0.5));
        ky = __double2float_rn(__dadd_rn(rp.pos[lane].y, 0.5));
        r.kpt[lane][0] = frame_x(t, kx);
        r.kpt[lane][1] = frame_y(t, ky);
        r.kpt[lane][2] = rp.kscore[lane];
      }
      // The box: the CPU's running std_min / std_max over the keypoints in order, which keeps the
      // first of equal values. Without NaN that is the first index holding the extreme value, which
      // a warp tree over (value, index) finds too; with a NaN, lane 0 walks them as the CPU.
      float x0 = kx, y0 = ky, x1 = kx, y1 = ky;
      if (!__any_sync(0xffffffffu, lane < kK && (isnan(kx) || isnan(ky)))) {
        int ix0 = lane, iy0 = lane, ix1 = lane, iy1 = lane;
        if (lane >= kK) x0 = y0 = HUGE_VALF, x1 = y1 = -HUGE_VALF;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
          auto take = [&](float& v, int& i, bool smaller) {
            const float ov = __shfl_xor_sync(0xffffffffu, v, o);
            const int oi = __shfl_xor_sync(0xffffffffu, i, o);
            if ((smaller ? ov < v : ov > v) || (ov == v && oi < i)) v = ov, i = oi;
          };
          take(x0, ix0, true);
          take(y0, iy0, true);
          take(x1, ix1, false);
          take(y1, iy1, false);
        }
      } else if (lane == 0) {
        for (int k = 0; k < kK; ++k) {
          const float px = __double2float_rn(__dadd_rn(rp.pos[k].x, 0.5));
          const float py = __double2float_rn(__dadd_rn(rp.pos[k].y, 0.5));
          x0 = k == 0 ? px : std_min(x0, px);
          y0 = k == 0 ? py : std_min(y0, py);
          x1 = k == 0 ? px : std_max(x1, px);
          y1 = k == 0 ? py : std_max(y1, py);
        }
      }
      if (lane == 0) {
        r.score = rp.score;
        r.bbox[0] = frame_x(t, x0);
        r.bbox[1] = frame_y(t, y0);
        r.bbox[2] = __fmul_rn(__fsub_rn(x1, x0), t.scale_x);
        r.bbox[3] = __fmul_rn(__fsub_rn(y1, y0), t.scale_y);
      }
    }
  }
}

unsigned host_float_bits(float v) {
  unsigned u;
  std::memcpy(&u, &v, sizeof u);
  return u;
}

class PoseNetDecoder : public DeviceDecoder {
 public:
  PoseNetDecoder(const ModelSpec& spec, int max_batch, const PoseItemLayout& layout, const PoseNetParams& params)
      : G_((spec.input_size - 1) / 16 + 1),
        cap_(G_ * G_ * kK),
        params_(params),
        max_poses_(layout.max_poses),
        peaks_(static_cast<size_t>(max_batch) * cap_ * sizeof(Key), "PoseNet peak workspace"),
        count_(static_cast<size_t>(max_batch) * kCountStride * sizeof(int), "PoseNet peak workspace") {
    if (params.max_detections < 0 || params.max_detections > layout.max_poses)
      throw Error(spec.name + ": max_detections " + std::to_string(params.max_detections) + " is not in 0.." +
                  std::to_string(layout.max_poses));
    if (params.local_maximum_radius < 0 || params.refine_steps < 0)
      throw Error(spec.name + ": negative local_maximum_radius or refine_steps");
    if (max_batch > 65535) throw Error(spec.name + " GPU decoder: max_batch " + std::to_string(max_batch) + " is above 65535");
    // The traversal plan of every root keypoint, by running the CPU's two passes over the edges.
    Step plan[kK][32] = {};
    int depth[kK] = {};
    for (int rk = 0; rk < kK; ++rk) {
      bool have[kK] = {};
      have[rk] = true;
      auto reach = [&](int e, int src, int dst, bool forward) {
        if (!have[src] || have[dst]) return;
        const int level = plan[rk][src].level + 1;
        plan[rk][dst] = {static_cast<signed char>(src), static_cast<signed char>(e), static_cast<signed char>(forward),
                         static_cast<signed char>(level)};
        have[dst] = true;
        depth[rk] = std::max(depth[rk], level);
      };
      for (int e = kEdges - 1; e >= 0; --e) reach(e, kPoseNetEdges[e][1], kPoseNetEdges[e][0], false);
      for (int e = 0; e < kEdges; ++e) reach(e, kPoseNetEdges[e][0], kPoseNetEdges[e][1], true);
    }
    cuda_check(cudaMemcpyToSymbol(g_plan, plan, sizeof(plan)), "uploading the PoseNet tree");
    cuda_check(cudaMemcpyToSymbol(g_depth, depth, sizeof(depth)), "uploading the PoseNet tree");
    // Kernel 2 leaves the peak counts at zero for the next launch; start them so. It reads the
    // first keys' slots before it knows the count, so those are defined from the start too.
    cuda_check(cudaMemset(count_.as<void>(), 0, static_cast<size_t>(max_batch) * kCountStride * sizeof(int)), "clearing the PoseNet peak counts");
    cuda_check(cudaMemset(peaks_.as<void>(), 0, static_cast<size_t>(max_batch) * cap_ * sizeof(Key)), "clearing the PoseNet peak workspace");
    sm_count_ = sm_count("PoseNet decoder setup");
    init_programmatic_launch();  // on for sm_90+ unless $POSERT_PDL is 0
    cuda_check(cudaDeviceSynchronize(), "clearing the PoseNet peak counts");
    // Stage the offsets in shared memory where they fit next to the kernel's own (the opt-in
    // limit: 227 KiB on sm_90, 163 on sm_80, 99 on sm_86/89).
    {
      cudaFuncAttributes attr{};
      cuda_check(cudaFuncGetAttributes(&attr, posenet_group_kernel<true>), "PoseNet decoder setup");
      const int cells = G_ * G_;
      const size_t limit = max_smem_optin();
      if (staged_bytes(cells, 0, 0) + attr.sharedSizeBytes <= limit) {
        auto fits = [&](int f, int w) { return staged_bytes(cells, f, w) + attr.sharedSizeBytes <= limit; };
        while (fwd_cells_ < cells && fits(fwd_cells_ + 1, 0)) ++fwd_cells_;
        while (fwd_cells_ == cells && bwd_cells_ < cells && fits(cells, bwd_cells_ + 1)) ++bwd_cells_;
        const size_t bytes = staged_bytes(cells, fwd_cells_, bwd_cells_);
        if (cudaFuncSetAttribute(posenet_group_kernel<true>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 static_cast<int>(bytes)) == cudaSuccess) {
          stage_bytes_ = bytes;
          offsets_only_bytes_ = staged_bytes(cells, 0, 0);
        } else {
          fwd_cells_ = bwd_cells_ = 0;
        }
      }
      cudaGetLastError();  // a refused attribute leaves the kernel reading the heads in place
    }
    // Peak scores lie in [max(threshold, 0), 1]: first_top32's histogram spreads that range of
    // float bits over its bins.
    {
      const float lo = std::max(params.part_threshold, 0.0f);
      bin_lo_ = lo <= 1.0f ? host_float_bits(lo) : host_float_bits(1.0f);
      const unsigned range = host_float_bits(1.0f) - bin_lo_;
      while ((range >> bin_shift_) >= static_cast<unsigned>(kBins)) ++bin_shift_;
    }
    // As the CPU decoder: a logit 0.01 below logit(threshold) scores below the threshold.
    const float thr = params.part_threshold;
    cut_ = -HUGE_VALF;
    if (thr > 1e-6f && thr < 0.999f)
      cut_ = static_cast<float>(std::log(static_cast<double>(thr) / (1.0 - thr)) - 0.01);
  }

  void enqueue(const std::vector<const float*>& heads, int n, const CropTransform* transforms, void* out,
               void* stream) override {
    PoseNetArgs a{};
    a.logits = heads[0];
    a.offsets = heads[1];
    a.fwd = heads[2];
    a.bwd = heads[3];
    a.G = G_;
    a.part_threshold = params_.part_threshold;
    a.cut = cut_;
    a.local_maximum_radius = params_.local_maximum_radius;
    a.refine_steps = params_.refine_steps;
    a.max_detections = params_.max_detections;
    a.sq_radius = static_cast<double>(params_.nms_radius) * params_.nms_radius;
    a.min_pose_score = params_.min_pose_score;
    a.peaks = peaks_.as<Key>();
    a.peak_count = count_.as<int>();
    a.cap = cap_;
    // The displacements are staged where every item has an SM of its own; with more items the
    // copies' extra traffic cost more than they saved (batch 256 0.067 -> 0.077 ms on the H100).
    const bool one_wave = n <= sm_count_;
    a.fwd_cells = one_wave ? fwd_cells_ : 0;
    a.bwd_cells = one_wave ? bwd_cells_ : 0;
    a.bin_lo = bin_lo_;
    a.bin_shift = bin_shift_;
    a.tf = transforms;
    a.out = out;
    a.max_poses = max_poses_;
    const auto s = static_cast<cudaStream_t>(stream);
    posenet_peaks_kernel<<<dim3((cap_ + kPeakThreads - 1) / kPeakThreads, n), kPeakThreads, 0, s>>>(a);
    launch_check("posenet_peaks_kernel");
    // Launched programmatically where the GPU supports it (programmatic_launch()): its blocks are
    // scheduled as the peaks kernel's retire and stage the heads while it finishes.
    // launch() returns the launch error, which launch_check reports (as the engine's check_launch).
    if (stage_bytes_ > 0)
      launch(posenet_group_kernel<true>, dim3(n), dim3(kGroupThreads), one_wave ? stage_bytes_ : offsets_only_bytes_, s, a);
    else
      launch(posenet_group_kernel<false>, dim3(n), dim3(kGroupThreads), 0, s, a);
    launch_check("posenet_group_kernel");
  }

 private:
  int G_, cap_;
  size_t stage_bytes_ = 0;  // dynamic shared memory of posenet_group_kernel: the staged heads, or 0
  size_t offsets_only_bytes_ = 0;  // the same with no displacements staged
  int fwd_cells_ = 0, bwd_cells_ = 0;
  int sm_count_ = 1;
  PoseNetParams params_;
  int max_poses_;
  float cut_ = 0;
  unsigned bin_lo_ = 0;
  int bin_shift_ = 0;
  DeviceBuffer peaks_, count_;
};

}  // namespace

std::unique_ptr<DeviceDecoder> make_posenet_decoder(const ModelSpec& spec, int max_batch, const PoseItemLayout& layout,
                                                    const PoseNetParams& params) {
  return std::make_unique<PoseNetDecoder>(spec, max_batch, layout, params);
}

}  // namespace posert::cuda::detail
