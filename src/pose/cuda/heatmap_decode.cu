// The generic heatmap decoder of src/pose/heatmap_decode.h on the GPU, in two kernels and without
// writing the upsampled maps to memory:
// 1. block per (output tile, keypoint, item): one thread per upsampled value of the tile and its
//    NMS halo, into shared memory; then the tile's peaks (window maximum, threshold), their
//    refinement and frame pixels, and the tile's best top_k as candidates [n, k, tiles, top_k].
// 2. warp per (item, keypoint): the best top_k of all its tiles' candidates.
// The spec's float operations, in its order, with _rn intrinsics so that nothing is contracted
// into FMAs: equal to the reference bit for bit. Order of peaks: score descending, raster index
// ascending, as one 64-bit key (detail::argmax_key; 0 = empty slot).
#include <cuda_runtime.h>

#include <string>

#include "pose/cuda/decode_common.cuh"
#include "pose/cuda/gpu_decode.h"

namespace posert::cuda {

namespace {

using detail::argmax_key;
using detail::cuda_check;
using detail::frame_x;
using detail::frame_y;
using detail::launch_check;

constexpr int kTileW = 32, kTileH = 32;  // output pixels per tile
constexpr int kThreads = 256;
constexpr int kRows = kTileH * kTileW / kThreads;  // pixels per thread (rows ty, ty + 8, ...)
constexpr int kMaxR = 3;                            // check_heatmap_params: radius 1..3
constexpr int kPitch = kTileW + 2 * kMaxR;
constexpr int kSpan = kTileH + 2 * kMaxR;           // upsampled rows (and columns) with the halo
constexpr int kSrcMax = 40 * 40;                    // source cells staged in shared memory at most

struct Candidate {
  unsigned long long key;  // 0: empty
  float x, y, score;       // frame pixels; score = U at the peak
  float pad;
};

struct HeatmapArgs {
  const float* heat;  // [n, h, w, k]
  int h, w, k, out_h, out_w;
  int radius, top_k;
  float threshold;
  int tiles_x, tiles;  // tiles per map
  const CropTransform* tf;
  Candidate* cand;  // [n, k, tiles, top_k]
  HeatmapPeak* peaks;
  int32_t* counts;
};

// Half-pixel source taps of output index i along an axis of `in` cells upsampled to `out`.
struct Tap {
  int lo, hi;
  float f;
};
__device__ __forceinline__ Tap tap(int i, int in, int out) {
  const float s = __fsub_rn(__fmul_rn(__fadd_rn(static_cast<float>(i), 0.5f), __fdiv_rn(static_cast<float>(in),
                                                                                       static_cast<float>(out))),
                            0.5f);
  const float fl = floorf(s);
  return {max(static_cast<int>(fl), 0), min(static_cast<int>(ceilf(s)), in - 1), __fsub_rn(s, fl)};
}

// Offset of the quadratic through (-1, l), (0, c), (1, r), as the spec writes it.
__device__ __forceinline__ float refine(float l, float c, float r) {
  const float den = __fadd_rn(__fsub_rn(l, __fmul_rn(2.0f, c)), r);
  if (!(den < 0.0f)) return 0.0f;
  const float d = __fdiv_rn(__fmul_rn(0.5f, __fsub_rn(l, r)), den);
  return d < -0.5f ? -0.5f : (0.5f < d ? 0.5f : d);  // std::clamp
}

__global__ void __launch_bounds__(kThreads) heatmap_tile_kernel(HeatmapArgs a) {
  const int tile = blockIdx.x, c = blockIdx.y, b = blockIdx.z, tid = threadIdx.x;
  const int W = a.out_w, Hh = a.out_h, r = a.radius, top_k = a.top_k;
  const int x0 = (tile % a.tiles_x) * kTileW, y0 = (tile / a.tiles_x) * kTileH;
  __shared__ float s_u[kSpan][kPitch];
  __shared__ Tap s_ty[kSpan], s_tx[kSpan];
  __shared__ float s_src[kSrcMax];
  __shared__ unsigned long long s_best;

  // 1. Upsample the tile and its halo of r pixels; outside the map -inf, which is never greater
  // than a peak (the spec's window is clipped at the borders). The taps of each row and column
  // first; then the source cells they reach (a rectangle: taps are monotone), staged in shared
  // memory when they fit (upsampling), else read from global memory (strong downsampling).
  const float* H = a.heat + static_cast<size_t>(b) * a.h * a.w * a.k + c;
  const int hw = kTileW + 2 * r, hh = kTileH + 2 * r;
  const int ylo = max(y0 - r, 0), yhi = min(y0 - r + hh, Hh) - 1;  // output rows in the map
  const int xlo = max(x0 - r, 0), xhi = min(x0 - r + hw, W) - 1;
  if (tid < hh) {
    const int y = min(max(y0 - r + tid, ylo), yhi);
    s_ty[tid] = tap(y, a.h, Hh);
  } else if (tid >= 64 && tid < 64 + hw) {
    const int x = min(max(x0 - r + tid - 64, xlo), xhi);
    s_tx[tid - 64] = tap(x, a.w, W);
  }
  if (tid == 0) s_best = 0;
  __syncthreads();
  const int sy0 = s_ty[ylo - (y0 - r)].lo, sy1 = s_ty[yhi - (y0 - r)].hi;
  const int sx0 = s_tx[xlo - (x0 - r)].lo, sx1 = s_tx[xhi - (x0 - r)].hi;
  const int sw = sx1 - sx0 + 1, sh = sy1 - sy0 + 1;
  const bool staged = sw * sh <= kSrcMax;
  if (staged) {
    for (int i = tid; i < sw * sh; i += kThreads)
      s_src[i] = __ldg(H + (static_cast<size_t>(sy0 + i / sw) * a.w + sx0 + i % sw) * a.k);
    __syncthreads();
  }
  for (int i = tid; i < hw * hh; i += kThreads) {
    const int ly = i / hw, lx = i % hw, y = y0 - r + ly, x = x0 - r + lx;
    float u = -HUGE_VALF;
    if (y >= 0 && y < Hh && x >= 0 && x < W) {
      const Tap ty = s_ty[ly], tx = s_tx[lx];
      float t0, t1, b0, b1;
      if (staged) {
        const float* row0 = s_src + (ty.lo - sy0) * sw - sx0;
        const float* row1 = s_src + (ty.hi - sy0) * sw - sx0;
        t0 = row0[tx.lo], t1 = row0[tx.hi], b0 = row1[tx.lo], b1 = row1[tx.hi];
      } else {
        auto at = [&](int yy, int xx) { return __ldg(H + (static_cast<size_t>(yy) * a.w + xx) * a.k); };
        t0 = at(ty.lo, tx.lo), t1 = at(ty.lo, tx.hi), b0 = at(ty.hi, tx.lo), b1 = at(ty.hi, tx.hi);
      }
      const float top = __fadd_rn(t0, __fmul_rn(__fsub_rn(t1, t0), tx.f));
      const float bot = __fadd_rn(b0, __fmul_rn(__fsub_rn(b1, b0), tx.f));
      u = __fadd_rn(top, __fmul_rn(__fsub_rn(bot, top), ty.f));
    }
    s_u[ly + kMaxR - r][lx + kMaxR - r] = u;
  }
  __syncthreads();

  // 2. This thread's pixels: peak test, refinement, frame pixels, key.
  const int tx = tid % kTileW, ty0 = tid / kTileW;
  unsigned long long key[kRows];
  float px[kRows], py[kRows], ps[kRows];
  const CropTransform t = a.tf[b];
#pragma unroll
  for (int j = 0; j < kRows; ++j) {
    key[j] = 0;
    const int ly = ty0 + j * (kThreads / kTileW), x = x0 + tx, y = y0 + ly;
    if (x >= W || y >= Hh) continue;
    const int sy = ly + kMaxR, sx = tx + kMaxR;
    const float v = s_u[sy][sx];
    if (!(v >= a.threshold)) continue;  // also NaN
    bool peak = true;
    for (int dy = -r; dy <= r && peak; ++dy)
      for (int dx = -r; dx <= r; ++dx)
        if (s_u[sy + dy][sx + dx] > v) {
          peak = false;
          break;
        }
    if (!peak) continue;
    const float ddx = (x == 0 || x == W - 1) ? 0.0f : refine(s_u[sy][sx - 1], v, s_u[sy][sx + 1]);
    const float ddy = (y == 0 || y == Hh - 1) ? 0.0f : refine(s_u[sy - 1][sx], v, s_u[sy + 1][sx]);
    px[j] = frame_x(t, __fadd_rn(__fadd_rn(static_cast<float>(x), 0.5f), ddx));
    py[j] = frame_y(t, __fadd_rn(__fadd_rn(static_cast<float>(y), 0.5f), ddy));
    ps[j] = v;
    key[j] = argmax_key({v, y * W + x});
  }

  // 3. The tile's best top_k, one round each: every thread offers its best key below the last
  // winner, the block keeps the largest, its owner writes the candidate. Empty slots get key 0.
  Candidate* out = a.cand + ((static_cast<size_t>(b) * a.k + c) * a.tiles + tile) * top_k;
  unsigned long long prev = ~0ull;
  for (int round = 0; round < top_k; ++round) {
    unsigned long long mine = 0;
#pragma unroll
    for (int j = 0; j < kRows; ++j)
      if (key[j] < prev && key[j] > mine) mine = key[j];
    if (mine) atomicMax(&s_best, mine);
    __syncthreads();
    const unsigned long long best = s_best;
    if (best == 0) {
      if (tid < top_k - round) out[round + tid] = Candidate{0, 0, 0, 0, 0};
      break;  // the same for every thread
    }
#pragma unroll
    for (int j = 0; j < kRows; ++j)
      if (key[j] == best) out[round] = Candidate{best, px[j], py[j], ps[j], 0};
    prev = best;
    __syncthreads();  // everyone has read s_best
    if (tid == 0) s_best = 0;
    __syncthreads();
  }
}

constexpr int kMergeWarps = 4;

// Warp per (item, keypoint): top_k rounds of a warp maximum over the tiles' candidate keys.
__global__ void __launch_bounds__(kMergeWarps * 32) heatmap_merge_kernel(HeatmapArgs a, int maps) {
  const int map = blockIdx.x * kMergeWarps + static_cast<int>(threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (map >= maps) return;  // the whole warp
  const int top_k = a.top_k, n = a.tiles * top_k;
  const Candidate* cand = a.cand + static_cast<size_t>(map) * n;
  HeatmapPeak* out = a.peaks + static_cast<size_t>(map) * top_k;
  unsigned long long prev = ~0ull;
  int count = 0;
  for (; count < top_k; ++count) {
    unsigned long long mine = 0;
    int at = -1;
    for (int i = lane; i < n; i += 32) {
      const unsigned long long k = cand[i].key;
      if (k < prev && k > mine) mine = k, at = i;
    }
    unsigned long long best = mine;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const unsigned long long other = __shfl_xor_sync(0xffffffffu, best, o);
      best = other > best ? other : best;
    }
    if (best == 0) break;  // the same for every lane
    if (mine == best) out[count] = HeatmapPeak{cand[at].x, cand[at].y, cand[at].score};
    prev = best;
  }
  for (int i = count + lane; i < top_k; i += 32) out[i] = HeatmapPeak{0, 0, 0};
  if (lane == 0) a.counts[map] = count;
}

}  // namespace

GpuHeatmapDecoder::GpuHeatmapDecoder(int max_batch, int h, int w, int k, const HeatmapDecodeParams& p)
    : max_batch_(max_batch), h_(h), w_(w), k_(k), p_(p) {
  check_heatmap_params(p, h, w, k);
  if (max_batch < 1 || max_batch > 65535)
    throw Error("GPU heatmap decoder: max_batch must be 1..65535, got " + std::to_string(max_batch));
  tiles_x_ = (p.out_w + kTileW - 1) / kTileW;
  tiles_ = tiles_x_ * ((p.out_h + kTileH - 1) / kTileH);
  const size_t bytes = static_cast<size_t>(max_batch) * k * tiles_ * p.top_k * sizeof(Candidate);
  cuda_check(cudaMalloc(&candidates_, bytes), "allocating the heatmap peak candidates");
}

GpuHeatmapDecoder::~GpuHeatmapDecoder() {
  if (candidates_) cudaFree(candidates_);
}

void GpuHeatmapDecoder::enqueue(const float* d_heatmaps, int n, const CropTransform* d_transforms, HeatmapPeak* d_peaks,
                                int32_t* d_counts, void* stream) {
  if (n < 1 || n > max_batch_)
    throw Error("GPU heatmap decoder: batch " + std::to_string(n) + " is not in 1.." + std::to_string(max_batch_));
  if (!d_heatmaps || !d_transforms || !d_peaks || !d_counts) throw Error("GPU heatmap decoder: null device buffer");
  HeatmapArgs a{d_heatmaps,   h_,      w_,     k_,          p_.out_h,     p_.out_w,
                p_.nms_radius, p_.top_k, p_.threshold, tiles_x_, tiles_, d_transforms,
                static_cast<Candidate*>(candidates_), d_peaks, d_counts};
  const auto s = static_cast<cudaStream_t>(stream);
  heatmap_tile_kernel<<<dim3(tiles_, k_, n), kThreads, 0, s>>>(a);
  launch_check("heatmap_tile_kernel");
  const int maps = n * k_;
  heatmap_merge_kernel<<<(maps + kMergeWarps - 1) / kMergeWarps, kMergeWarps * 32, 0, s>>>(a, maps);
  launch_check("heatmap_merge_kernel");
}

}  // namespace posert::cuda
