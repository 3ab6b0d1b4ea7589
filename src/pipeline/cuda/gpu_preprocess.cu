// The preprocessing kernel: one thread per output pixel of one batch item (grid.y = item). The
// float arithmetic is written with round-to-nearest intrinsics so that nvcc cannot contract it into
// FMAs: the result equals the CPU's preprocess_crop_into bit for bit.
#include <cuda_runtime.h>

#include <string>

#include "pipeline/cuda/gpu_preprocess.h"
#include "posert/error.h"

namespace posert::cuda {

namespace {

struct Tap {
  int lo, hi;
  float w;
};

// TF half-pixel source coordinate of output index i, clamped to the crop: as taps() on the CPU.
__device__ __forceinline__ Tap tap(int i, int in_size, int out_size) {
  const float scale = __fdiv_rn(static_cast<float>(in_size), static_cast<float>(out_size));
  const float in = __fsub_rn(__fmul_rn(__fadd_rn(static_cast<float>(i), 0.5f), scale), 0.5f);
  const float f = floorf(in);
  Tap t;
  t.lo = max(static_cast<int>(f), 0);
  t.hi = min(static_cast<int>(ceilf(in)), in_size - 1);
  t.w = __fsub_rn(in, f);
  return t;
}

__device__ __forceinline__ float lerp(float a, float b, float w) { return __fadd_rn(a, __fmul_rn(__fsub_rn(b, a), w)); }

// One output pixel's three channels from its four taps. px(cx, bottom, c): channel c of crop
// pixel cx in the top (ty.lo) or bottom (ty.hi) source row, 0 outside the frame.
template <PreprocessOut Enc, class Px>
__device__ __forceinline__ void resample_pixel(const Px& px, Tap tx, Tap ty, void* __restrict__ out, size_t o) {
#pragma unroll
  for (int c = 0; c < 3; ++c) {
    const float top = lerp(px(tx.lo, false, c), px(tx.hi, false, c), tx.w);
    const float bot = lerp(px(tx.lo, true, c), px(tx.hi, true, c), tx.w);
    const float v = fminf(fmaxf(roundf(lerp(top, bot, ty.w)), 0.0f), 255.0f);
    if constexpr (Enc == PreprocessOut::RoundedInt32) static_cast<int32_t*>(out)[o + c] = static_cast<int32_t>(v);
    else static_cast<float*>(out)[o + c] = __fsub_rn(__fdiv_rn(v, 127.5f), 1.0f);
  }
}

template <PreprocessOut Enc>
__global__ void preprocess_kernel(const uint8_t* __restrict__ frames, const FrameDesc* __restrict__ desc, int out_w,
                                  int out_h, void* __restrict__ out) {
  const int b = blockIdx.y;
  const int p = blockIdx.x * blockDim.x + threadIdx.x;
  if (p >= out_w * out_h) return;
  const FrameDesc d = desc[b];
  const int y = p / out_w, x = p % out_w;
  const Tap ty = tap(y, d.crop_h, out_h), tx = tap(x, d.crop_w, out_w);
  const uint8_t* f = frames + d.offset;
  // Crop pixel (cx, cy) -> frame pixel (crop_x + cx, crop_y + cy), zero outside the frame.
  auto px = [&](int cx, bool bottom, int c) -> float {
    const int ix = d.crop_x + cx, iy = d.crop_y + (bottom ? ty.hi : ty.lo);
    if (ix < 0 || iy < 0 || ix >= d.width || iy >= d.height) return 0.0f;
    const int ch = d.bgr ? 2 - c : c;
    return static_cast<float>(f[static_cast<int64_t>(iy) * d.pitch + ix * 3 + ch]);
  };
  resample_pixel<Enc>(px, tx, ty, out, (static_cast<size_t>(b) * out_h * out_w + p) * 3);
}

// The mapped variant: block per (output row, item). The frames and descriptors are pinned host
// memory read through their mapped device addresses, so only what is read crosses PCIe: the block
// stages the one or two source rows its output row samples, from the first to the last column the
// crop reaches, with 16-byte loads (the segment widened to 16-byte boundaries, which stay inside
// the frame's 256-byte aligned slot), then resamples from shared memory. A segment over
// kMappedRowBytes (not expected: the pipeline checks the frame widths) is read pixel by pixel.
constexpr int kRowThreads = 256;

template <PreprocessOut Enc>
__global__ void __launch_bounds__(kRowThreads) preprocess_rows_kernel(const uint8_t* __restrict__ frames,
                                                                       const FrameDesc* __restrict__ desc, int out_w,
                                                                       int out_h, void* __restrict__ out) {
  const int y = blockIdx.x, b = blockIdx.y;
  __shared__ FrameDesc s_desc;
  __shared__ __align__(16) uint8_t s_rows[2][kMappedRowBytes];
  static_assert(sizeof(FrameDesc) % 4 == 0 && sizeof(FrameDesc) / 4 <= kRowThreads);
  if (threadIdx.x < sizeof(FrameDesc) / 4)
    reinterpret_cast<int32_t*>(&s_desc)[threadIdx.x] = reinterpret_cast<const int32_t*>(desc + b)[threadIdx.x];
  __syncthreads();
  const FrameDesc d = s_desc;
  const Tap ty = tap(y, d.crop_h, out_h);
  // Frame columns the row's taps reach (taps are monotone in the output index), inside the frame.
  const int ix0 = max(d.crop_x + tap(0, d.crop_w, out_w).lo, 0);
  const int ix1 = min(d.crop_x + tap(out_w - 1, d.crop_w, out_w).hi, d.width - 1);
  int64_t start[2];  // byte offset in `frames` of each staged segment's first byte; -1: not staged
  int iy[2];
  bool in_frame[2];
  int chunks[2] = {0, 0};
  for (int r = 0; r < 2; ++r) {
    iy[r] = d.crop_y + (r ? ty.hi : ty.lo);
    in_frame[r] = iy[r] >= 0 && iy[r] < d.height && ix0 <= ix1;
    start[r] = -1;
    if (!in_frame[r] || (r == 1 && iy[1] == iy[0])) continue;
    const int64_t row = d.offset + static_cast<int64_t>(iy[r]) * d.pitch;
    const int64_t a = (row + ix0 * 3) & ~int64_t{15}, e = (row + ix1 * 3 + 3 + 15) & ~int64_t{15};
    if (e - a > kMappedRowBytes) continue;
    start[r] = a;
    chunks[r] = static_cast<int>((e - a) / 16);
  }
  // Both rows' loads issued before any is waited on.
  for (int i = threadIdx.x; i < chunks[0] + chunks[1]; i += kRowThreads) {
    const int r = i < chunks[0] ? 0 : 1, j = r ? i - chunks[0] : i;
    reinterpret_cast<uint4*>(s_rows[r])[j] = reinterpret_cast<const uint4*>(frames + start[r])[j];
  }
  __syncthreads();
  auto px = [&](int cx, bool bottom, int c) -> float {
    const int r = bottom ? 1 : 0;
    const int ix = d.crop_x + cx;
    if (!in_frame[r] || ix < 0 || ix >= d.width) return 0.0f;
    const int64_t at = d.offset + static_cast<int64_t>(iy[r]) * d.pitch + ix * 3 + (d.bgr ? 2 - c : c);
    const int sr = (r == 1 && iy[1] == iy[0]) ? 0 : r;  // the bottom row is the top row
    if (start[sr] < 0) return static_cast<float>(frames[at]);
    return static_cast<float>(s_rows[sr][at - start[sr]]);
  };
  const size_t row_out = (static_cast<size_t>(b) * out_h + y) * out_w;
  for (int x = threadIdx.x; x < out_w; x += kRowThreads)
    resample_pixel<Enc>(px, tap(x, d.crop_w, out_w), ty, out, (row_out + x) * 3);
}

}  // namespace

void preprocess_frames(const uint8_t* frames, const FrameDesc* desc, int n, int out_w, int out_h, PreprocessOut enc,
                       void* out, void* stream) {
  if (n <= 0 || out_w <= 0 || out_h <= 0) throw Error("preprocess_frames: empty batch or output size");
  const int threads = 256;
  const dim3 grid((out_w * out_h + threads - 1) / threads, n);
  auto s = static_cast<cudaStream_t>(stream);
  if (enc == PreprocessOut::RoundedInt32)
    preprocess_kernel<PreprocessOut::RoundedInt32><<<grid, threads, 0, s>>>(frames, desc, out_w, out_h, out);
  else
    preprocess_kernel<PreprocessOut::FloatMinus1To1><<<grid, threads, 0, s>>>(frames, desc, out_w, out_h, out);
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw Error(std::string("preprocess kernel launch: ") + cudaGetErrorString(e));
}

void preprocess_frames_mapped(const uint8_t* frames, const FrameDesc* desc, int n, int out_w, int out_h,
                              PreprocessOut enc, void* out, void* stream) {
  if (n <= 0 || out_w <= 0 || out_h <= 0) throw Error("preprocess_frames_mapped: empty batch or output size");
  if (n > 65535) throw Error("preprocess_frames_mapped: batch " + std::to_string(n) + " is above 65535");
  const dim3 grid(out_h, n);
  auto s = static_cast<cudaStream_t>(stream);
  if (enc == PreprocessOut::RoundedInt32)
    preprocess_rows_kernel<PreprocessOut::RoundedInt32><<<grid, kRowThreads, 0, s>>>(frames, desc, out_w, out_h, out);
  else
    preprocess_rows_kernel<PreprocessOut::FloatMinus1To1><<<grid, kRowThreads, 0, s>>>(frames, desc, out_w, out_h, out);
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw Error(std::string("mapped preprocess kernel launch: ") + cudaGetErrorString(e));
}

}  // namespace posert::cuda
