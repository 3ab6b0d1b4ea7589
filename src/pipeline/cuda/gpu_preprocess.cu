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
  auto px = [&](int cx, int cy, int c) -> float {
    const int ix = d.crop_x + cx, iy = d.crop_y + cy;
    if (ix < 0 || iy < 0 || ix >= d.width || iy >= d.height) return 0.0f;
    const int ch = d.bgr ? 2 - c : c;
    return static_cast<float>(f[static_cast<int64_t>(iy) * d.pitch + ix * 3 + ch]);
  };
  const size_t o = (static_cast<size_t>(b) * out_h * out_w + p) * 3;
#pragma unroll
  for (int c = 0; c < 3; ++c) {
    const float top = lerp(px(tx.lo, ty.lo, c), px(tx.hi, ty.lo, c), tx.w);
    const float bot = lerp(px(tx.lo, ty.hi, c), px(tx.hi, ty.hi, c), tx.w);
    const float v = fminf(fmaxf(roundf(lerp(top, bot, ty.w)), 0.0f), 255.0f);
    if constexpr (Enc == PreprocessOut::RoundedInt32) static_cast<int32_t*>(out)[o + c] = static_cast<int32_t>(v);
    else static_cast<float*>(out)[o + c] = __fsub_rn(__fdiv_rn(v, 127.5f), 1.0f);
  }
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

}  // namespace posert::cuda
