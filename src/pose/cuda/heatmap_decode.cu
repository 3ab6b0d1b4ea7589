// The generic heatmap decoder of src/pose/heatmap_decode.h on the GPU: an upsampling kernel (one
// thread per output value, written planar [n, k, out_h, out_w] so that the peak scan reads rows),
// then one block per (item, keypoint) that finds the peaks, keeps the top_k (score descending,
// raster index ascending) and refines them. The spec's float operations, in its order, with _rn
// intrinsics so that nothing is contracted into FMAs.
#include <cuda_runtime.h>

#include <string>

#include "pose/cuda/decode_common.cuh"
#include "pose/cuda/gpu_decode.h"

namespace posert::cuda {

namespace {

using detail::cuda_check;
using detail::frame_x;
using detail::frame_y;
using detail::launch_check;

struct HeatmapArgs {
  const float* heat;  // [n, h, w, k]
  float* up;          // [n, k, out_h, out_w]
  int h, w, k, out_h, out_w;
  int radius, top_k;
  float threshold;
  const CropTransform* tf;
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

__global__ void heatmap_upsample_kernel(HeatmapArgs a, int64_t total) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= total) return;
  const int x = static_cast<int>(idx % a.out_w);
  const int y = static_cast<int>((idx / a.out_w) % a.out_h);
  const int c = static_cast<int>((idx / (static_cast<int64_t>(a.out_w) * a.out_h)) % a.k);
  const int64_t b = idx / (static_cast<int64_t>(a.out_w) * a.out_h * a.k);
  const Tap ty = tap(y, a.h, a.out_h), tx = tap(x, a.w, a.out_w);
  const float* H = a.heat + b * a.h * a.w * a.k;
  auto at = [&](int yy, int xx) { return H[(static_cast<int64_t>(yy) * a.w + xx) * a.k + c]; };
  const float t0 = at(ty.lo, tx.lo), t1 = at(ty.lo, tx.hi), b0 = at(ty.hi, tx.lo), b1 = at(ty.hi, tx.hi);
  const float top = __fadd_rn(t0, __fmul_rn(__fsub_rn(t1, t0), tx.f));
  const float bot = __fadd_rn(b0, __fmul_rn(__fsub_rn(b1, b0), tx.f));
  a.up[idx] = __fadd_rn(top, __fmul_rn(__fsub_rn(bot, top), ty.f));
}

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kBatch = 8;  // pixels per thread loaded together in the peak scan

// Strict order of peaks: score descending, raster index ascending. Empty slots: index INT_MAX.
__device__ __forceinline__ bool peak_before(float va, int ia, float vb, int ib) {
  return va > vb || (va == vb && ia < ib);
}

// Offset of the quadratic through (-1, l), (0, c), (1, r), as the spec writes it.
__device__ __forceinline__ float refine(float l, float c, float r) {
  const float den = __fadd_rn(__fsub_rn(l, __fmul_rn(2.0f, c)), r);
  if (!(den < 0.0f)) return 0.0f;
  const float d = __fdiv_rn(__fmul_rn(0.5f, __fsub_rn(l, r)), den);
  return d < -0.5f ? -0.5f : (0.5f < d ? 0.5f : d);  // std::clamp
}

__global__ void __launch_bounds__(kThreads) heatmap_peaks_kernel(HeatmapArgs a) {
  const int c = blockIdx.x, b = blockIdx.y, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int W = a.out_w, Hh = a.out_h, pixels = W * Hh, r = a.radius, top_k = a.top_k;
  const float* U = a.up + (static_cast<size_t>(b) * a.k + c) * pixels;
  // Each thread's best top_k peaks, sorted ([slot][thread]: no bank conflicts).
  __shared__ float s_v[kMaxHeatmapPeaks][kThreads];
  __shared__ int s_i[kMaxHeatmapPeaks][kThreads];
  __shared__ float s_wv[kWarps];
  __shared__ int s_wi[kWarps];
  __shared__ int s_sel[kMaxHeatmapPeaks];
  __shared__ int s_nsel;

  // The scan is latency-bound (one block per item and keypoint): each thread loads kBatch of its
  // pixels at once, then takes them in the same ascending order as a one-at-a-time loop.
  int cnt = 0;
  for (int p0 = tid; p0 < pixels; p0 += kThreads * kBatch) {
    float vb[kBatch];
#pragma unroll
    for (int j = 0; j < kBatch; ++j) {
      const int p = p0 + j * kThreads;
      vb[j] = p < pixels ? U[p] : 0.0f;
    }
#pragma unroll
    for (int q = 0; q < kBatch; ++q) {
      const int p = p0 + q * kThreads;
      if (p >= pixels) continue;
      const float v = vb[q];
      if (!(v >= a.threshold)) continue;  // also NaN
      if (cnt == top_k && !(v > s_v[top_k - 1][tid])) continue;  // an earlier index wins ties
      const int y = p / W, x = p % W;
      bool peak = true;
      for (int yy = max(0, y - r); yy <= min(Hh - 1, y + r) && peak; ++yy)
        for (int xx = max(0, x - r); xx <= min(W - 1, x + r); ++xx)
          if (U[yy * W + xx] > v) {
            peak = false;
            break;
          }
      if (!peak) continue;
      int j = cnt < top_k ? cnt++ : top_k - 1;
      for (; j > 0 && v > s_v[j - 1][tid]; --j) {
        s_v[j][tid] = s_v[j - 1][tid];
        s_i[j][tid] = s_i[j - 1][tid];
      }
      s_v[j][tid] = v;
      s_i[j][tid] = p;
    }
  }

  // Merge: top_k rounds of a block argmax over each thread's best remaining peak.
  int head = 0, nsel = 0;
  for (int round = 0; round < top_k; ++round) {
    float bv = -HUGE_VALF;
    int bi = INT_MAX;
    if (head < cnt) bv = s_v[head][tid], bi = s_i[head][tid];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float v = __shfl_xor_sync(0xffffffffu, bv, o);
      const int i = __shfl_xor_sync(0xffffffffu, bi, o);
      if (peak_before(v, i, bv, bi)) bv = v, bi = i;
    }
    if (lane == 0) s_wv[warp] = bv, s_wi[warp] = bi;
    __syncthreads();
    if (tid == 0) {
      for (int w = 1; w < kWarps; ++w)
        if (peak_before(s_wv[w], s_wi[w], s_wv[0], s_wi[0])) s_wv[0] = s_wv[w], s_wi[0] = s_wi[w];
      s_sel[round] = s_wi[0];
    }
    __syncthreads();
    const int win = s_sel[round];
    if (win == INT_MAX) break;  // fewer peaks than top_k (the same for every thread)
    if (head < cnt && s_i[head][tid] == win) ++head;
    nsel = round + 1;
    __syncthreads();  // s_wv / s_wi are rewritten by the next round
  }
  if (tid == 0) s_nsel = nsel;
  __syncthreads();

  // Refinement and frame pixels for the kept peaks; empty slots are zeroed.
  HeatmapPeak* out = a.peaks + (static_cast<size_t>(b) * a.k + c) * top_k;
  if (tid < top_k) {
    HeatmapPeak pk{0, 0, 0};
    if (tid < s_nsel) {
      const int p = s_sel[tid], y = p / W, x = p % W;
      const float C = U[p];
      const float dx = (x == 0 || x == W - 1) ? 0.0f : refine(U[p - 1], C, U[p + 1]);
      const float dy = (y == 0 || y == Hh - 1) ? 0.0f : refine(U[p - W], C, U[p + W]);
      const CropTransform t = a.tf[b];
      pk.x = frame_x(t, __fadd_rn(__fadd_rn(static_cast<float>(x), 0.5f), dx));
      pk.y = frame_y(t, __fadd_rn(__fadd_rn(static_cast<float>(y), 0.5f), dy));
      pk.score = C;
    }
    out[tid] = pk;
  }
  if (tid == 0) a.counts[static_cast<size_t>(b) * a.k + c] = s_nsel;
}

}  // namespace

GpuHeatmapDecoder::GpuHeatmapDecoder(int max_batch, int h, int w, int k, const HeatmapDecodeParams& p)
    : max_batch_(max_batch), h_(h), w_(w), k_(k), p_(p) {
  check_heatmap_params(p, h, w, k);
  if (max_batch < 1) throw Error("GPU heatmap decoder: max_batch must be at least 1, got " + std::to_string(max_batch));
  if (static_cast<int64_t>(p.out_h) * p.out_w >= (int64_t{1} << 31) / 2)
    throw Error("GPU heatmap decoder: output size " + std::to_string(p.out_w) + "x" + std::to_string(p.out_h) +
                " is too large");
  const size_t bytes = static_cast<size_t>(max_batch) * k * p.out_h * p.out_w * sizeof(float);
  cuda_check(cudaMalloc(reinterpret_cast<void**>(&upsampled_), bytes), "allocating the upsampled heatmaps");
}

GpuHeatmapDecoder::~GpuHeatmapDecoder() {
  if (upsampled_) cudaFree(upsampled_);
}

void GpuHeatmapDecoder::enqueue(const float* d_heatmaps, int n, const CropTransform* d_transforms, HeatmapPeak* d_peaks,
                                int32_t* d_counts, void* stream) {
  if (n < 1 || n > max_batch_)
    throw Error("GPU heatmap decoder: batch " + std::to_string(n) + " is not in 1.." + std::to_string(max_batch_));
  if (!d_heatmaps || !d_transforms || !d_peaks || !d_counts) throw Error("GPU heatmap decoder: null device buffer");
  HeatmapArgs a{d_heatmaps, upsampled_, h_, w_, k_, p_.out_h, p_.out_w, p_.nms_radius, p_.top_k, p_.threshold,
                d_transforms, d_peaks, d_counts};
  const auto s = static_cast<cudaStream_t>(stream);
  const int64_t total = static_cast<int64_t>(n) * k_ * p_.out_h * p_.out_w;
  heatmap_upsample_kernel<<<static_cast<unsigned>((total + 255) / 256), 256, 0, s>>>(a, total);
  launch_check("heatmap_upsample_kernel");
  heatmap_peaks_kernel<<<dim3(k_, n), kThreads, 0, s>>>(a);
  launch_check("heatmap_peaks_kernel");
}

}  // namespace posert::cuda
