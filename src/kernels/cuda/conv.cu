// Convolution kernels: direct (any shape; one output, or 8 output channels, per thread), tiled
// SIMT GEMM and tensor-core (WMMA) GEMM for 1x1 convolutions, depthwise (1, 2 or 8 channels per
// thread). All fuse the epilogue out = act(conv + bias + residual). T is the input/filter type,
// TO the output type (half -> float for the heads of fp16 engines). Index arithmetic is 32-bit
// (launchers check the sizes fit): 64-bit division costs more than the convolution itself.
#include <mma.h>

#include <algorithm>
#include <atomic>
#include <type_traits>
#include <vector>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_kernels.h"

namespace posert::cuda {

namespace {

template <class T, class TO>
__device__ __forceinline__ void epilogue(TO* y, const T* res, int i, int o, float acc, const float* bias, int act) {
  if (bias) acc += bias[o];
  if (res) acc += ldf(res + i);
  stf(y + i, apply_act(acc, act));
}

// The epilogue of 8 consecutive outputs y[i..i+8) (channels o..o+8), i a multiple of 8 and the
// buffers 16-byte aligned: the same arithmetic as epilogue(), with vector loads and stores.
// yi: where the 8 outputs go in y (i itself, or a staging tile's index).
template <class T, class TO>
__device__ __forceinline__ void epilogue8(TO* y, const T* res, int i, int o, const float* acc, const float* bias, int act,
                                          int yi) {
  float v[8];
#pragma unroll
  for (int j = 0; j < 8; ++j) v[j] = acc[j];
  if (bias)
#pragma unroll
    for (int j = 0; j < 8; ++j) v[j] += bias[o + j];
  if (res) {
    float r[8];
    load8(res + i, r);
#pragma unroll
    for (int j = 0; j < 8; ++j) v[j] += r[j];
  }
#pragma unroll
  for (int j = 0; j < 8; ++j) v[j] = apply_act(v[j], act);
  if constexpr (std::is_same_v<TO, __half>) {
    uint4 out;
    __half2* h2 = reinterpret_cast<__half2*>(&out);
#pragma unroll
    for (int j = 0; j < 4; ++j) h2[j] = __floats2half2_rn(v[2 * j], v[2 * j + 1]);
    *reinterpret_cast<uint4*>(y + yi) = out;
  } else {
    *reinterpret_cast<float4*>(y + yi) = make_float4(v[0], v[1], v[2], v[3]);
    *reinterpret_cast<float4*>(y + yi + 4) = make_float4(v[4], v[5], v[6], v[7]);
  }
}
template <class T, class TO>
__device__ __forceinline__ void epilogue8(TO* y, const T* res, int i, int o, const float* acc, const float* bias, int act) {
  epilogue8(y, res, i, o, acc, bias, act, i);
}

// The epilogue of output channels o..o+8 of one pixel (y[i..i+8)): vectorized (VEC: 16-byte
// aligned buffers) or one value at a time; the same arithmetic either way.
template <bool VEC, class T, class TO>
__device__ __forceinline__ void epilogue_pixel8(TO* y, const T* res, int i, int o, const float* acc, const float* bias, int act) {
  if constexpr (VEC) {
    epilogue8(y, res, i, o, acc, bias, act);
  } else {
#pragma unroll
    for (int j = 0; j < 8; ++j) epilogue(y, res, i + j, o + j, acc[j], bias, act);
  }
}

// Calls fn(xp, tap) for every filter tap (ky, kx) of output pixel (n, oy, ox) that lands inside
// the input, in (ky, kx) order: xp points at the input pixel's channels, tap = ky * kw + kx.
// KS > 0: the filter is KS x KS (p.kh == p.kw == KS), and the loops unroll, so the compiler can
// issue every tap's loads before the first multiply-add (at batch 1 a depthwise layer is a few
// load round trips; with run-time loops they came one after the other).
template <int KS = 0, class T, class Fn>
__device__ __forceinline__ void for_each_tap(const T* x, const ConvParams& p, int n, int oy, int ox, Fn&& fn) {
  if constexpr (KS > 0) {
#pragma unroll
    for (int ky = 0; ky < KS; ++ky) {
      const int iy = oy * p.sh - p.pad_top + ky * p.dh;
      const bool row_in = iy >= 0 && iy < p.h;
#pragma unroll
      for (int kx = 0; kx < KS; ++kx) {
        const int ix = ox * p.sw - p.pad_left + kx * p.dw;
        if (row_in && ix >= 0 && ix < p.w) fn(x + ((n * p.h + iy) * p.w + ix) * p.c, ky * KS + kx);
      }
    }
  } else {
    for (int ky = 0; ky < p.kh; ++ky) {
      const int iy = oy * p.sh - p.pad_top + ky * p.dh;
      if (iy < 0 || iy >= p.h) continue;
      for (int kx = 0; kx < p.kw; ++kx) {
        const int ix = ox * p.sw - p.pad_left + kx * p.dw;
        if (ix < 0 || ix >= p.w) continue;
        fn(x + ((n * p.h + iy) * p.w + ix) * p.c, ky * p.kw + kx);
      }
    }
  }
}

template <class T, class TO>
__global__ void conv_direct_kernel(const T* __restrict__ x, const T* __restrict__ w, const float* __restrict__ bias,
                                   const T* __restrict__ res, TO* __restrict__ y, ConvParams p) {
  pdl_wait();
  const int total = p.n * p.oh * p.ow * p.o;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
    const int o = i % p.o;
    int t = i / p.o;
    const int ox = t % p.ow;
    t /= p.ow;
    const int oy = t % p.oh;
    const int n = t / p.oh;
    float acc = 0.0f;
    for_each_tap(x, p, n, oy, ox, [&](const T* xp, int tap) {
      const T* wp = w + tap * p.c * p.o + o;
      for (int c = 0; c < p.c; ++c) acc += ldf(xp + c) * ldf(wp + c * p.o);
    });
    epilogue(y, res, i, o, acc, bias, static_cast<int>(p.act));
  }
}

constexpr int kSmemFilterFloats = 4096;

// The 8 filter taps of input channel c at filter offset woff (see below).
template <class T, bool SMEM>
__device__ __forceinline__ void direct8_weights(const T* __restrict__ w, const float* ws, int at, float* wv) {
  if constexpr (SMEM) {
    const float4 a = *reinterpret_cast<const float4*>(ws + at);
    const float4 b = *reinterpret_cast<const float4*>(ws + at + 4);
    wv[0] = a.x, wv[1] = a.y, wv[2] = a.z, wv[3] = a.w, wv[4] = b.x, wv[5] = b.y, wv[6] = b.z, wv[7] = b.w;
  } else {
#pragma unroll
    for (int j = 0; j < 8; ++j) wv[j] = ldf(w + at + j);
  }
}

// The block's threads copy the whole filter (at most kSmemFilterFloats values) into ws as float;
// the caller synchronizes before reading it.
template <class T>
__device__ __forceinline__ void stage_filter(const T* __restrict__ w, const ConvParams& p, float* ws) {
  const int nw = p.kh * p.kw * p.c * p.o;
#pragma unroll 4
  for (int i = threadIdx.x; i < nw; i += blockDim.x) ws[i] = ldf(w + i);
}

// acc[0..8) += the taps of output pixel (n, oy, ox), channels g*8.., in (ky, kx, c) order.
// KH, KW, C > 0: compile-time filter sizes, fully unrolled, every input value loaded before the
// first multiply (a network's first convolution, 3x3 on 3 channels, is bound by the latency of
// those loads at batch 1); 0: sizes from p. The same multiply-adds in the same order either way.
template <int KH, int KW, int C, class T, bool SMEM>
__device__ __forceinline__ void direct8_taps(const T* __restrict__ x, const T* __restrict__ w, const float* ws,
                                             const ConvParams& p, int n, int oy, int ox, int g, float* acc) {
  if constexpr (KH > 0) {
    float xv[KH * KW * C];
    bool ok[KH * KW];
#pragma unroll
    for (int ky = 0; ky < KH; ++ky)
#pragma unroll
      for (int kx = 0; kx < KW; ++kx) {
        const int iy = oy * p.sh - p.pad_top + ky * p.dh, ix = ox * p.sw - p.pad_left + kx * p.dw;
        const bool in = iy >= 0 && iy < p.h && ix >= 0 && ix < p.w;
        ok[ky * KW + kx] = in;
        const T* xp = x + ((n * p.h + (in ? iy : 0)) * p.w + (in ? ix : 0)) * C;
#pragma unroll
        for (int c = 0; c < C; ++c) xv[(ky * KW + kx) * C + c] = in ? ldf(xp + c) : 0.0f;
      }
#pragma unroll
    for (int t = 0; t < KH * KW; ++t) {
      if (!ok[t]) continue;
#pragma unroll
      for (int c = 0; c < C; ++c) {
        float wv[8];
        direct8_weights<T, SMEM>(w, ws, (t * C + c) * p.o + g * 8, wv);
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[j] += xv[t * C + c] * wv[j];
      }
    }
  } else {
    for_each_tap(x, p, n, oy, ox, [&](const T* xp, int tap) {
      const int woff = tap * p.c * p.o + g * 8;
      for (int c = 0; c < p.c; ++c) {
        const float xv = ldf(xp + c);
        float wv[8];
        direct8_weights<T, SMEM>(w, ws, woff + c * p.o, wv);
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[j] += xv * wv[j];
      }
    });
  }
}

// One thread: one output pixel, 8 consecutive output channels (o % 8 == 0). Reads each input
// value once for 8 outputs; the 8 filter taps of a (ky, kx, c) are contiguous. SMEM
// (kConvDirect8Smem): the whole filter is staged once per block in shared memory as float (at most
// kSmemFilterFloats values, e.g. a network's first conv on 3 channels) and read 8 taps per two
// loads; the accumulation order is the same. VEC: the 8 outputs go through the vector epilogue.
template <class T, class TO, bool VEC, bool SMEM>
__global__ void conv_direct8_kernel(const T* __restrict__ x, const T* __restrict__ w, const float* __restrict__ bias,
                                    const T* __restrict__ res, TO* __restrict__ y, ConvParams p) {
  __shared__ __align__(16) float ws[SMEM ? kSmemFilterFloats : 4];
  if constexpr (SMEM) stage_filter(w, p, ws);  // weights: before the wait (see pdl_wait)
  pdl_wait();
  if constexpr (SMEM) __syncthreads();
  const bool k3c3 = p.kh == 3 && p.kw == 3 && p.c == 3;
  const int groups = p.o / 8;
  const int total = p.n * p.oh * p.ow * groups;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
    const int g = i % groups;
    int t = i / groups;
    const int ox = t % p.ow;
    t /= p.ow;
    const int oy = t % p.oh;
    const int n = t / p.oh;
    float acc[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[j] = 0.0f;
    if (k3c3) direct8_taps<3, 3, 3, T, SMEM>(x, w, ws, p, n, oy, ox, g, acc);
    else direct8_taps<0, 0, 0, T, SMEM>(x, w, ws, p, n, oy, ox, g, acc);
    epilogue_pixel8<VEC>(y, res, ((n * p.oh + oy) * p.ow + ox) * p.o + g * 8, g * 8, acc, bias, static_cast<int>(p.act));
  }
}

// kConvDirect8Pix: direct8smem with one thread per output pixel that computes every group of 8
// output channels in turn. The pixel's input taps are loaded once, into registers (the filter
// shape is a compile-time case: 3x3 on 3 channels, a network's first convolution, or 1x1 on
// C <= 40 channels, the first expansions), where direct8smem loads them once per group; and all
// lanes of a warp read the same filter taps together (shared-memory broadcasts), where
// direct8smem's lanes read the taps of up to 32 different groups. A block's 128 pixels are
// consecutive, so their outputs are one contiguous run of 128 * o values: VEC puts them in a
// shared-memory tile and the block writes the run with coalesced 16-byte stores (one thread's
// 8-channel stores would land 2 * o bytes apart). Per output the same multiply-adds in the same
// order and the same epilogue as direct8 / direct8smem: bit-identical results. Dynamic shared
// memory: the filter as float, then (VEC) the output tile; at most kPixSmemBytes.
constexpr int kPixThreads = 128;
constexpr size_t kPixSmemBytes = 96 * 1024;  // within every target GPU's opt-in limit (sm_86/89: 99 KiB)

template <int KH, int KW, int C, class T, class TO, bool VEC>
__global__ void __launch_bounds__(kPixThreads) conv_direct8pix_kernel(const T* __restrict__ x, const T* __restrict__ w,
                                                                      const float* __restrict__ bias,
                                                                      const T* __restrict__ res, TO* __restrict__ y,
                                                                      ConvParams p, bool vec_in) {
  extern __shared__ __align__(16) float ws_pix[];
  stage_filter(w, p, ws_pix);  // weights: before the wait (see pdl_wait)
  pdl_wait();
  __syncthreads();
  const int nw = (p.kh * p.kw * p.c * p.o + 3) / 4 * 4;  // the tile starts 16-byte aligned after the filter
  TO* tile = reinterpret_cast<TO*>(ws_pix + nw);
  const int groups = p.o / 8, total = p.n * p.oh * p.ow;
  for (int base = blockIdx.x * kPixThreads; base < total; base += gridDim.x * kPixThreads) {
    const int i = base + threadIdx.x;
    if (i < total) {
      const int ox = i % p.ow, oy = (i / p.ow) % p.oh, n = i / (p.ow * p.oh);
      float xv[KH * KW * C];
      bool ok[KH * KW];
#pragma unroll
      for (int ky = 0; ky < KH; ++ky)
#pragma unroll
        for (int kx = 0; kx < KW; ++kx) {
          const int iy = oy * p.sh - p.pad_top + ky * p.dh, ix = ox * p.sw - p.pad_left + kx * p.dw;
          const bool in = iy >= 0 && iy < p.h && ix >= 0 && ix < p.w;
          ok[ky * KW + kx] = in;
          const T* xp = x + (static_cast<int64_t>(n * p.h + (in ? iy : 0)) * p.w + (in ? ix : 0)) * C;
          float* xt = xv + (ky * KW + kx) * C;
          if constexpr (std::is_same_v<T, __half> && C % 8 == 0) {
            if (vec_in) {
#pragma unroll
              for (int c = 0; c < C; c += 8) {
                const uint4 u = in ? *reinterpret_cast<const uint4*>(xp + c) : make_uint4(0, 0, 0, 0);
                const __half2* h = reinterpret_cast<const __half2*>(&u);
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                  const float2 f = __half22float2(h[j]);
                  xt[c + 2 * j] = f.x;
                  xt[c + 2 * j + 1] = f.y;
                }
              }
              continue;
            }
          }
          if constexpr (std::is_same_v<T, float> && C % 4 == 0) {
            if (vec_in) {
#pragma unroll
              for (int c = 0; c < C; c += 4) {
                const float4 f = in ? *reinterpret_cast<const float4*>(xp + c) : make_float4(0, 0, 0, 0);
                xt[c] = f.x, xt[c + 1] = f.y, xt[c + 2] = f.z, xt[c + 3] = f.w;
              }
              continue;
            }
          }
#pragma unroll
          for (int c = 0; c < C; ++c) xt[c] = in ? ldf(xp + c) : 0.0f;
        }
      for (int g = 0; g < groups; ++g) {
        float acc[8];
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[j] = 0.0f;
#pragma unroll
        for (int t = 0; t < KH * KW; ++t) {
          if (!ok[t]) continue;
#pragma unroll
          for (int c = 0; c < C; ++c) {
            float wv[8];
            direct8_weights<T, true>(w, ws_pix, (t * C + c) * p.o + g * 8, wv);
#pragma unroll
            for (int j = 0; j < 8; ++j) acc[j] += xv[t * C + c] * wv[j];
          }
        }
        if constexpr (VEC) epilogue8(tile, res, i * p.o + g * 8, g * 8, acc, bias, static_cast<int>(p.act), threadIdx.x * p.o + g * 8);
        else epilogue_pixel8<false>(y, res, i * p.o + g * 8, g * 8, acc, bias, static_cast<int>(p.act));
      }
    }
    if constexpr (VEC) {
      __syncthreads();
      // The block's outputs y[base * o, (base + pixels) * o): 16-byte pieces, consecutive threads
      // on consecutive pieces.
      const int pixels = min(kPixThreads, total - base);
      const int pieces = pixels * p.o * static_cast<int>(sizeof(TO)) / 16;
      const uint4* src = reinterpret_cast<const uint4*>(tile);
      uint4* dst = reinterpret_cast<uint4*>(y + static_cast<int64_t>(base) * p.o);
      for (int k = threadIdx.x; k < pieces; k += kPixThreads) dst[k] = src[k];
      __syncthreads();  // the tile is rewritten by the next round
    }
  }
}

// Dynamic shared memory of direct8pix: the filter (as float, rounded up to 16 bytes), then the
// output tile of kPixThreads pixels (VEC) in the output type.
inline size_t direct8pix_smem(const ConvParams& p, size_t out_bytes) {
  return (static_cast<size_t>(p.kh) * p.kw * p.c * p.o + 3) / 4 * 4 * sizeof(float) +
         static_cast<size_t>(kPixThreads) * p.o * out_bytes;
}

// Whether direct8pix has a compiled case for this filter shape (see conv_direct8pix_kernel).
inline bool direct8pix_shape(const ConvParams& p) {
  if (p.kh == 3 && p.kw == 3) return p.c == 3;
  return p.kh == 1 && p.kw == 1 && (p.c == 8 || p.c == 16 || p.c == 24 || p.c == 32 || p.c == 40);
}

// kConvChainDirect8Smem: a convolution (o % 8 == 0, filter of at most kSmemFilterFloats values)
// whose input is an elementwise chain's output, computed from the chain's input x (type X). A
// block computes a kChainTile x kChainTile tile of output pixels, every group of 8 channels. Its
// threads first stage the input rows and columns the tile reaches, each value loaded and put
// through the chain once and rounded to T, as the chain kernel would have stored it (zero outside
// the image: the convolution's padding), and the filter as float; then each thread computes one
// (pixel, 8 channels) at a time from shared memory with direct8_taps' multiply-adds in the same
// order, so the result is bit-identical to the chain kernel followed by direct8smem.
constexpr int kChainTile = 8;
constexpr int kChainTileFloats = 6144;

// Input rows (or columns) a tile of kChainTile outputs reaches along one axis.
__host__ __device__ constexpr int chain_tile_span(int stride, int k, int dilation) {
  return (kChainTile - 1) * stride + (k - 1) * dilation + 1;
}

// acc[0..8) += the taps of output pixel (oy, ox), channels g*8.., that land inside the image, in
// (ky, kx, c) order as direct8_taps runs them, from the staged input (xs: the tile whose first
// row and column are iy0, ix0) and filter (ws). KH, KW, C: compile-time sizes (unrolled), or 0.
template <int KH, int KW, int C>
__device__ __forceinline__ void staged_taps(const float* xs, const float* ws, const ConvParams& p, int row_len, int iy0,
                                            int ix0, int oy, int ox, int g, float* acc) {
  const int kh = KH ? KH : p.kh, kw = KW ? KW : p.kw, nc = C ? C : p.c;
#pragma unroll
  for (int ky = 0; ky < kh; ++ky) {
    const int iy = oy * p.sh - p.pad_top + ky * p.dh;
    if (iy < 0 || iy >= p.h) continue;
#pragma unroll
    for (int kx = 0; kx < kw; ++kx) {
      const int ix = ox * p.sw - p.pad_left + kx * p.dw;
      if (ix < 0 || ix >= p.w) continue;
      const float* xp = xs + (iy - iy0) * row_len + (ix - ix0) * nc;
      const int woff = (ky * kw + kx) * nc * p.o + g * 8;
#pragma unroll
      for (int c = 0; c < nc; ++c) {
        const float xv = xp[c];
        float wv[8];
        direct8_weights<float, true>(nullptr, ws, woff + c * p.o, wv);
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[j] += xv * wv[j];
      }
    }
  }
}

template <class T, class TO, bool VEC, class X>
__global__ void __launch_bounds__(128) chain_conv_kernel(const X* __restrict__ x, const T* __restrict__ w,
                                                         const float* __restrict__ bias, const T* __restrict__ res,
                                                         TO* __restrict__ y, ConvParams p,
                                                         const __grid_constant__ ChainProgram prog) {
  __shared__ __align__(16) float ws[kSmemFilterFloats];
  __shared__ float xs[kChainTileFloats];
  stage_filter(w, p, ws);  // weights: before the wait (see pdl_wait)
  pdl_wait();
  const int tiles_x = (p.ow + kChainTile - 1) / kChainTile, tiles_y = (p.oh + kChainTile - 1) / kChainTile;
  const int tx = blockIdx.x % tiles_x, ty = (blockIdx.x / tiles_x) % tiles_y, n = blockIdx.x / (tiles_x * tiles_y);
  const int oy0 = ty * kChainTile, ox0 = tx * kChainTile;
  const int iy0 = oy0 * p.sh - p.pad_top, ix0 = ox0 * p.sw - p.pad_left;
  const int rows = chain_tile_span(p.sh, p.kh, p.dh), cols = chain_tile_span(p.sw, p.kw, p.dw);
  const int row_len = cols * p.c, tile = rows * row_len;
  // kStage values per thread per round, all loaded before any is chained: one memory round trip
  // per round instead of one per value (a lightning 8x8 tile is a single round).
  constexpr int kStage = 8;
  for (int base = threadIdx.x; base < tile; base += kStage * blockDim.x) {
    float v[kStage];
    int ch[kStage];  // the value's channel; -1: outside the image (padding) or past the tile
#pragma unroll
    for (int u = 0; u < kStage; ++u) {
      const int i = base + u * blockDim.x;
      const int r = i / row_len, k = i - r * row_len;  // k: column * c + channel, contiguous in x
      const int col = k / p.c, c = k - col * p.c;
      const int iy = iy0 + r, ix = ix0 + col;
      const bool in = i < tile && iy >= 0 && iy < p.h && ix >= 0 && ix < p.w;
      ch[u] = in ? c : -1;
      v[u] = in ? ldf(x + ((n * p.h + iy) * p.w + ix) * p.c + c) : 0.0f;
    }
#pragma unroll
    for (int u = 0; u < kStage; ++u) {
      const int i = base + u * blockDim.x;
      if (i < tile) xs[i] = ch[u] >= 0 ? round_to<T>(chain_apply(prog, v[u], ch[u])) : 0.0f;
    }
  }
  __syncthreads();
  const int groups = p.o / 8;
  for (int item = threadIdx.x; item < kChainTile * kChainTile * groups; item += blockDim.x) {
    const int g = item % groups, px = item / groups;
    const int ly = px / kChainTile, lx = px % kChainTile;
    const int oy = oy0 + ly, ox = ox0 + lx;
    if (oy >= p.oh || ox >= p.ow) continue;
    float acc[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[j] = 0.0f;
    if (p.kh == 3 && p.kw == 3 && p.c == 3) staged_taps<3, 3, 3>(xs, ws, p, row_len, iy0, ix0, oy, ox, g, acc);
    else staged_taps<0, 0, 0>(xs, ws, p, row_len, iy0, ix0, oy, ox, g, acc);
    epilogue_pixel8<VEC>(y, res, ((n * p.oh + oy) * p.ow + ox) * p.o + g * 8, g * 8, acc, bias, static_cast<int>(p.act));
  }
}

template <class T, class TO, int BM, int BN, int BK, int TM, int TN>
__global__ void __launch_bounds__(256) gemm_kernel(const T* __restrict__ A, const T* __restrict__ B,
                                                   const float* __restrict__ bias, const T* __restrict__ R,
                                                   TO* __restrict__ Y, int M, int N, int K, int act) {
  pdl_wait();
  static_assert((BM / TM) * (BN / TN) == 256, "256 threads");
  __shared__ float As[BK][BM + 4];
  __shared__ float Bs[BK][BN + 4];
  const int tid = threadIdx.x;
  const int tx = tid % (BN / TN), ty = tid / (BN / TN);
  const int m0 = blockIdx.x * BM, n0 = blockIdx.y * BN;  // M on x: up to 2^31-1 tiles
  float acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;
  for (int k0 = 0; k0 < K; k0 += BK) {
    for (int i = tid; i < BM * BK; i += 256) {
      const int mm = i / BK, kk = i % BK, gm = m0 + mm, gk = k0 + kk;
      As[kk][mm] = (gm < M && gk < K) ? ldf(A + gm * K + gk) : 0.0f;
    }
    for (int i = tid; i < BK * BN; i += 256) {
      const int kk = i / BN, nn = i % BN, gk = k0 + kk, gn = n0 + nn;
      Bs[kk][nn] = (gk < K && gn < N) ? ldf(B + gk * N + gn) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      float a[TM], b[TN];
#pragma unroll
      for (int i = 0; i < TM; ++i) a[i] = As[kk][ty * TM + i];
#pragma unroll
      for (int j = 0; j < TN; ++j) b[j] = Bs[kk][tx * TN + j];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int gm = m0 + ty * TM + i;
    if (gm >= M) continue;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int gn = n0 + tx * TN + j;
      if (gn < N) epilogue(Y, R, gm * N + gn, gn, acc[i][j], bias, act);
    }
  }
}

using AccFrag = nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float>;

// One BK-wide step of a warp's 32x32 output tile (2x2 WMMA 16x16x16 fragments, fp32 accumulation):
// acc += As[rows][0..BK) x Bs[0..BK)[cols]; the 16-wide halves from K on are all zeros and skipped.
template <int BM, int BN, int BK>
__device__ __forceinline__ void warp_mma_32x32(AccFrag (&acc)[2][2], const __half (&As)[BM][BK + 8],
                                               const __half (&Bs)[BK][BN + 8], int wm, int wn, int k0, int K) {
  using namespace nvcuda;
#pragma unroll
  for (int kk = 0; kk < BK; kk += 16) {
    if (k0 + kk >= K) break;
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> a[2];
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::row_major> b[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(a[i], &As[wm * 32 + i * 16][kk], BK + 8);
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(b[j], &Bs[kk][wn * 32 + j * 16], BN + 8);
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
  }
}

// The warp's 32x32 tile into the block's float tile Cs (for the epilogue).
template <int BM, int BN>
__device__ __forceinline__ void warp_store_32x32(float (&Cs)[BM][BN + 4], AccFrag (&acc)[2][2], int wm, int wn) {
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j)
      nvcuda::wmma::store_matrix_sync(&Cs[wm * 32 + i * 16][wn * 32 + j * 16], acc[i][j], BN + 4, nvcuda::wmma::mem_row_major);
}

// Tensor-core GEMM for half: warps of 32x32 outputs (2x2 WMMA 16x16x16 fragments), fp32 accumulation.
// VEC: K and N are multiples of 8, so tiles load as 16-byte vectors (8 halves).
template <class TO, int BM, int BN, bool VEC>
__device__ __forceinline__ void wmma_gemm_tile(const __half* __restrict__ A, const __half* __restrict__ B,
                                               const float* __restrict__ bias, const __half* __restrict__ R,
                                               TO* __restrict__ Y, int M, int N, int K, int act, int bx, int by) {
  using namespace nvcuda;
  constexpr int BK = 32;
  constexpr int WARPS_N = BN / 32;
  constexpr int THREADS = (BM / 32) * (BN / 32) * 32;
  __shared__ __align__(32) __half As[BM][BK + 8];
  __shared__ __align__(32) __half Bs[BK][BN + 8];
  __shared__ __align__(32) float Cs[BM][BN + 4];
  const int tid = threadIdx.x, warp = tid / 32;
  const int wm = warp / WARPS_N, wn = warp % WARPS_N;
  const int m0 = bx * BM, n0 = by * BN;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
  const __half zero = __float2half(0.0f);
  for (int k0 = 0; k0 < K; k0 += BK) {
    if constexpr (VEC) {
      for (int i = tid; i < BM * BK / 8; i += THREADS) {
        const int mm = i / (BK / 8), kk = (i % (BK / 8)) * 8, gm = m0 + mm, gk = k0 + kk;
        uint4 v = make_uint4(0, 0, 0, 0);
        if (gm < M && gk < K) v = *reinterpret_cast<const uint4*>(A + gm * K + gk);
        *reinterpret_cast<uint4*>(&As[mm][kk]) = v;
      }
      for (int i = tid; i < BK * BN / 8; i += THREADS) {
        const int kk = i / (BN / 8), nn = (i % (BN / 8)) * 8, gk = k0 + kk, gn = n0 + nn;
        uint4 v = make_uint4(0, 0, 0, 0);
        if (gk < K && gn < N) v = *reinterpret_cast<const uint4*>(B + gk * N + gn);
        *reinterpret_cast<uint4*>(&Bs[kk][nn]) = v;
      }
    } else {
      for (int i = tid; i < BM * BK; i += THREADS) {
        const int mm = i / BK, kk = i % BK, gm = m0 + mm, gk = k0 + kk;
        As[mm][kk] = (gm < M && gk < K) ? A[gm * K + gk] : zero;
      }
      for (int i = tid; i < BK * BN; i += THREADS) {
        const int kk = i / BN, nn = i % BN, gk = k0 + kk, gn = n0 + nn;
        Bs[kk][nn] = (gk < K && gn < N) ? B[gk * N + gn] : zero;
      }
    }
    __syncthreads();
    warp_mma_32x32<BM, BN, BK>(acc, As, Bs, wm, wn, k0, K);
    __syncthreads();
  }
  warp_store_32x32<BM, BN>(Cs, acc, wm, wn);
  __syncthreads();
  if constexpr (VEC) {
    // N % 8 == 0: 8 consecutive outputs per thread, 16-byte stores.
    for (int i = tid; i < BM * BN / 8; i += THREADS) {
      const int mm = i / (BN / 8), nn = (i % (BN / 8)) * 8, gm = m0 + mm, gn = n0 + nn;
      if (gm < M && gn < N) epilogue8(Y, R, gm * N + gn, gn, &Cs[mm][nn], bias, act);
    }
  } else {
    for (int i = tid; i < BM * BN; i += THREADS) {
      const int mm = i / BN, nn = i % BN, gm = m0 + mm, gn = n0 + nn;
      if (gm < M && gn < N) epilogue(Y, R, gm * N + gn, gn, Cs[mm][nn], bias, act);
    }
  }
}

template <class TO, int BM, int BN, bool VEC>
__global__ void wmma_gemm_kernel(const __half* __restrict__ A, const __half* __restrict__ B,
                                 const float* __restrict__ bias, const __half* __restrict__ R,
                                 TO* __restrict__ Y, int M, int N, int K, int act) {
  pdl_wait();
  wmma_gemm_tile<TO, BM, BN, VEC>(A, B, bias, R, Y, M, N, K, act, blockIdx.x, blockIdx.y);
}

// Up to kMaxConvGroup independent 1x1 convolutions in one launch (kConvGroupWmma): blockIdx.z
// picks the problem, which runs the 64x64 tile of wmma_gemm_kernel (the same arithmetic). Blocks
// past a smaller problem's tiles return at once.
struct Pw1x1Group {
  Conv1x1Args p[kMaxConvGroup];
};
template <class TO, bool VEC>
__global__ void wmma_gemm_group_kernel(Pw1x1Group g) {
  pdl_wait();
  const Conv1x1Args& q = g.p[blockIdx.z];
  const int M = q.p.n * q.p.h * q.p.w;
  if (static_cast<int>(blockIdx.x) * 64 >= M || static_cast<int>(blockIdx.y) * 64 >= q.p.o) return;
  wmma_gemm_tile<TO, 64, 64, VEC>(static_cast<const __half*>(q.x), static_cast<const __half*>(q.w), q.bias,
                                  static_cast<const __half*>(q.res), static_cast<TO*>(q.y), M, q.p.o, q.p.c,
                                  static_cast<int>(q.p.act), blockIdx.x, blockIdx.y);
}

// 8 channels (c0..c0+8) of one 3x3 depthwise output pixel whose window starts at (iy0, ix0) of image
// n, as half: float accumulation in the order ky, kx, + bias, activation (the arithmetic of
// dw3x3_rows_kernel, so the values are those the unfused layer writes).
__device__ __forceinline__ uint4 dw3x3_8(const __half* __restrict__ x, const __half* __restrict__ wd,
                                         const float* __restrict__ bd, const ConvParams& d, int n, int iy0, int ix0,
                                         int c0, int act) {
  const int K = d.c;
  float a[8];
#pragma unroll
  for (int c = 0; c < 8; ++c) a[c] = 0.0f;
#pragma unroll
  for (int ky = 0; ky < 3; ++ky) {
    const int iy = iy0 + ky;
    if (iy < 0 || iy >= d.h) continue;
    const __half* row = x + (static_cast<size_t>(n) * d.h + iy) * d.w * K + c0;
#pragma unroll
    for (int kx = 0; kx < 3; ++kx) {
      const int ix = ix0 + kx;
      if (ix < 0 || ix >= d.w) continue;
      float xv[8], wv[8];
      load8(row + static_cast<size_t>(ix) * K, xv);
      load8(wd + (ky * 3 + kx) * K + c0, wv);
#pragma unroll
      for (int c = 0; c < 8; ++c) a[c] += xv[c] * wv[c];
    }
  }
  uint4 out;
  __half2* h2 = reinterpret_cast<__half2*>(&out);
#pragma unroll
  for (int c = 0; c < 4; ++c) {
    const float v0 = a[2 * c] + (bd ? bd[c0 + 2 * c] : 0.0f), v1 = a[2 * c + 1] + (bd ? bd[c0 + 2 * c + 1] : 0.0f);
    h2[c] = __floats2half2_rn(apply_act(v0, act), apply_act(v1, act));
  }
  return out;
}

// Depthwise 3x3 + pointwise 1x1 in one kernel (kConvDwPw64): the tensor-core GEMM of
// wmma_gemm_kernel whose A tile (BM pixels x BK channels of the depthwise output) is computed in
// shared memory from the depthwise input instead of being read from a buffer, so the depthwise
// output never goes to memory. The depthwise part has the arithmetic of dw3x3_rows_kernel (float
// accumulation in the order ky, kx; + bias; activation; rounded to half), so the A tile holds the
// very values the unfused depthwise layer would write. Needs half, K % 8 == 0 and N % 8 == 0.
template <class TO, int BM, int BN>
__global__ void dwpw_kernel(const __half* __restrict__ x, const __half* __restrict__ wd, const float* __restrict__ bd,
                            ConvParams d, const __half* __restrict__ B, const float* __restrict__ bias,
                            const __half* __restrict__ R, TO* __restrict__ Y, int N, int act) {
  pdl_wait();
  using namespace nvcuda;
  constexpr int BK = 32;
  constexpr int WARPS_N = BN / 32;
  constexpr int THREADS = (BM / 32) * (BN / 32) * 32;
  constexpr int ITEMS = BM * (BK / 8) / THREADS;  // (pixel, 8 channels) items of the A tile per thread
  static_assert(ITEMS * THREADS == BM * (BK / 8), "A tile items");
  __shared__ __align__(32) __half As[BM][BK + 8];
  __shared__ __align__(32) __half Bs[BK][BN + 8];
  __shared__ __align__(32) float Cs[BM][BN + 4];
  const int M = d.n * d.oh * d.ow, K = d.c;
  const int tid = threadIdx.x, warp = tid / 32;
  const int wm = warp / WARPS_N, wn = warp % WARPS_N;
  const int m0 = blockIdx.x * BM, n0 = blockIdx.y * BN;
  // Each thread's items keep their pixel over the K loop: decode it once.
  int it_m[ITEMS], it_g[ITEMS], it_n[ITEMS], it_y[ITEMS], it_x[ITEMS];
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int item = tid + k * THREADS;
    it_m[k] = item / (BK / 8);
    it_g[k] = (item % (BK / 8)) * 8;
    const int gm = m0 + it_m[k];
    const int ox = gm % d.ow, t = gm / d.ow;
    it_x[k] = ox * d.sw - d.pad_left;
    it_y[k] = (t % d.oh) * d.sh - d.pad_top;
    it_n[k] = gm < M ? t / d.oh : -1;
  }
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
  const int dact = static_cast<int>(d.act);
  for (int k0 = 0; k0 < K; k0 += BK) {
#pragma unroll
    for (int k = 0; k < ITEMS; ++k) {
      const int gk = k0 + it_g[k];
      const uint4 out = (it_n[k] >= 0 && gk < K) ? dw3x3_8(x, wd, bd, d, it_n[k], it_y[k], it_x[k], gk, dact)
                                                 : make_uint4(0, 0, 0, 0);
      *reinterpret_cast<uint4*>(&As[it_m[k]][it_g[k]]) = out;
    }
    for (int i = tid; i < BK * BN / 8; i += THREADS) {
      const int kk = i / (BN / 8), nn = (i % (BN / 8)) * 8, gk = k0 + kk, gn = n0 + nn;
      uint4 v = make_uint4(0, 0, 0, 0);
      if (gk < K && gn < N) v = *reinterpret_cast<const uint4*>(B + gk * N + gn);
      *reinterpret_cast<uint4*>(&Bs[kk][nn]) = v;
    }
    __syncthreads();
    warp_mma_32x32<BM, BN, BK>(acc, As, Bs, wm, wn, k0, K);
    __syncthreads();
  }
  warp_store_32x32<BM, BN>(Cs, acc, wm, wn);
  __syncthreads();
  for (int i = tid; i < BM * BN / 8; i += THREADS) {
    const int mm = i / (BN / 8), nn = (i % (BN / 8)) * 8, gm = m0 + mm, gn = n0 + nn;
    if (gm < M && gn < N) epilogue8(Y, R, gm * N + gn, gn, &Cs[mm][nn], bias, act);
  }
}

// The same pair for small layers (batch 1), where latency rules (kConvDwPw16), and the plain 1x1
// convolution on the same tiles (kConvPw16, DW false: the A tile is the input's rows): 16 pixels x
// 32 output channels per block, so even a 12x12 layer spreads over many blocks. Everything a block
// needs goes to shared memory in one pass with every load in flight at once (the A tile, 16 pixels
// x all K channels, and the filter panel, K x 32), then its WARPS warps split K on the tensor cores
// and the partial sums are added in a fixed order (deterministic). Wide K gets 16 warps, so each
// thread's chain of loads stays short.
// The filter panel is loaded before pdl_wait(): the weights were written before the graph ran, so
// the loads may overlap the end of the kernel before this one. N % 8 != 0 (kConvPw16 only: heads
// of 17 or 34 channels) loads the panel and stores the outputs one value at a time.
constexpr int kDwPw16MaxK = 2048;  // and the tile must fit the device's shared memory (tile16_fits)
inline int dwpw16_warps(int k) { return k >= 128 ? 16 : 4; }
size_t dwpw16_smem(int k) {
  const size_t kc = (static_cast<size_t>(k) + 15) / 16 * 16;
  return sizeof(__half) * (16 * (kc + 8) + kc * (32 + 8)) + sizeof(float) * dwpw16_warps(k) * 16 * (32 + 4);
}
// Whether a tile16 kernel over k input channels fits this device.
bool tile16_fits(int k) { return k > 0 && k <= kDwPw16MaxK && dwpw16_smem(k) <= max_smem_optin(); }
// d: the depthwise layer (DW), or the 1x1 convolution itself (its n, oh, ow and c give M and K).
template <class TO, int WARPS, bool DW>
__device__ __forceinline__ void tile16(const __half* __restrict__ x, const __half* __restrict__ wd,
                                       const float* __restrict__ bd, const ConvParams& d, const __half* __restrict__ B,
                                       const float* __restrict__ bias, const __half* __restrict__ R,
                                       TO* __restrict__ Y, int N, int act, int bx, int by) {
  using namespace nvcuda;
  constexpr int BM = 16, BN = 32, THREADS = WARPS * 32;
  extern __shared__ __align__(32) unsigned char dyn[];
  const int M = d.n * d.oh * d.ow, K = d.c;
  const int KC = (K + 15) / 16 * 16, KP = KC + 8;
  __half* As = reinterpret_cast<__half*>(dyn);             // [BM][KP]
  __half* Bs = As + BM * KP;                               // [KC][BN + 8]
  float* Cw = reinterpret_cast<float*>(Bs + KC * (BN + 8)); // [WARPS][BM][BN + 4]
  const int tid = threadIdx.x, warp = tid / 32;
  const int m0 = bx * BM, n0 = by * BN;
  const int groups = KC / 8;
  const bool vecn = N % 8 == 0;
  // The filter panel first (zero past K and N), as asynchronous copies where rows are 16-byte
  // aligned: they land while the A tile is loaded or computed.
  if (vecn) {
    for (int i = tid; i < KC * (BN / 8); i += THREADS) {
      const int kk = i / (BN / 8), nn = (i % (BN / 8)) * 8, gn = n0 + nn;
      const bool in = kk < K && gn < N;
      cp_async16(Bs + kk * (BN + 8) + nn, in ? B + kk * N + gn : B, in);
    }
  } else {
    for (int i = tid; i < KC * BN; i += THREADS) {
      const int kk = i / BN, nn = i % BN, gn = n0 + nn;
      Bs[kk * (BN + 8) + nn] = kk < K && gn < N ? B[kk * N + gn] : __float2half(0.0f);
    }
  }
  pdl_wait();
  if constexpr (DW) {
    const int dact = static_cast<int>(d.act);
#pragma unroll 4
    for (int item = tid; item < BM * groups; item += THREADS) {
      const int mm = item / groups, gk = (item % groups) * 8, gm = m0 + mm;
      uint4 v = make_uint4(0, 0, 0, 0);
      if (gm < M && gk < K) {
        const int ox = gm % d.ow, t = gm / d.ow;
        v = dw3x3_8(x, wd, bd, d, t / d.oh, (t % d.oh) * d.sh - d.pad_top, ox * d.sw - d.pad_left, gk, dact);
      }
      *reinterpret_cast<uint4*>(As + mm * KP + gk) = v;
    }
  } else {
    for (int item = tid; item < BM * groups; item += THREADS) {
      const int mm = item / groups, gk = (item % groups) * 8, gm = m0 + mm;
      const bool in = gm < M && gk < K;
      cp_async16(As + mm * KP + gk, in ? x + gm * K + gk : x, in);
    }
  }
  cp_async_wait_all();
  __syncthreads();
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2];
  wmma::fill_fragment(acc[0], 0.0f);
  wmma::fill_fragment(acc[1], 0.0f);
  for (int k = warp * 16; k < KC; k += WARPS * 16) {
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> a;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::row_major> b0, b1;
    wmma::load_matrix_sync(a, As + k, KP);
    wmma::load_matrix_sync(b0, Bs + k * (BN + 8), BN + 8);
    wmma::load_matrix_sync(b1, Bs + k * (BN + 8) + 16, BN + 8);
    wmma::mma_sync(acc[0], a, b0, acc[0]);
    wmma::mma_sync(acc[1], a, b1, acc[1]);
  }
  float* cw = Cw + warp * BM * (BN + 4);
  wmma::store_matrix_sync(cw, acc[0], BN + 4, wmma::mem_row_major);
  wmma::store_matrix_sync(cw + 16, acc[1], BN + 4, wmma::mem_row_major);
  __syncthreads();
  for (int i = tid; i < BM * BN / 8; i += THREADS) {
    const int mm = i / (BN / 8), nn = (i % (BN / 8)) * 8, gm = m0 + mm, gn = n0 + nn;
    if (gm >= M || gn >= N) continue;
    float sum[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) sum[j] = Cw[mm * (BN + 4) + nn + j];
#pragma unroll
    for (int w = 1; w < WARPS; ++w)
#pragma unroll
      for (int j = 0; j < 8; ++j) sum[j] += Cw[(w * BM + mm) * (BN + 4) + nn + j];
    if (vecn) {
      epilogue8(Y, R, gm * N + gn, gn, sum, bias, act);
    } else {
#pragma unroll
      for (int j = 0; j < 8; ++j)
        if (gn + j < N) epilogue(Y, R, gm * N + gn + j, gn + j, sum[j], bias, act);
    }
  }
}

template <class TO, int WARPS>
__global__ void __launch_bounds__(WARPS * 32) dwpw16_kernel(const __half* __restrict__ x, const __half* __restrict__ wd,
                                                     const float* __restrict__ bd, ConvParams d,
                                                     const __half* __restrict__ B, const float* __restrict__ bias,
                                                     const __half* __restrict__ R, TO* __restrict__ Y, int N, int act) {
  tile16<TO, WARPS, true>(x, wd, bd, d, B, bias, R, Y, N, act, blockIdx.x, blockIdx.y);  // pdl_wait() inside
}

template <class TO, int WARPS>
__global__ void __launch_bounds__(WARPS * 32) pw16_kernel(const __half* __restrict__ x, ConvParams p,
                                                   const __half* __restrict__ B, const float* __restrict__ bias,
                                                   const __half* __restrict__ R, TO* __restrict__ Y, int act) {
  tile16<TO, WARPS, false>(x, nullptr, nullptr, p, B, bias, R, Y, p.o, act, blockIdx.x, blockIdx.y);  // pdl_wait() inside
}

// Up to kMaxConvGroup independent layers in one launch, blockIdx.z picking the member: depthwise +
// pointwise pairs (Args = DwPwArgs, kConvGroupDwPw16), each the tile of dwpw16_kernel, or 1x1
// convolutions (Args = Conv1x1Args, kConvGroupPw16), each the tile of pw16_kernel. Blocks past a
// smaller member's tiles only wait (pdl_wait) and return.
template <class Args>
struct Group16 {
  Args p[kMaxConvGroup];
};
template <class TO, int WARPS, class Args>
__global__ void __launch_bounds__(WARPS * 32) tile16_group_kernel(Group16<Args> g) {
  constexpr bool DW = std::is_same_v<Args, DwPwArgs>;
  const Args& q = g.p[blockIdx.z];
  const ConvParams* tp;  // the tile's M and K: the depthwise layer, or the 1x1 convolution itself
  const void* w;         // the 1x1 filter
  if constexpr (DW) tp = &q.d, w = q.wp;
  else tp = &q.p, w = q.w;
  if (static_cast<int>(blockIdx.x) * 16 >= tp->n * tp->oh * tp->ow || static_cast<int>(blockIdx.y) * 32 >= q.p.o) {
    pdl_wait();
    return;
  }
  const __half* wd = nullptr;
  const float* bd = nullptr;
  if constexpr (DW) wd = static_cast<const __half*>(q.wd), bd = q.bd;
  tile16<TO, WARPS, DW>(static_cast<const __half*>(q.x), wd, bd, *tp, static_cast<const __half*>(w), q.bias,
                        static_cast<const __half*>(q.res), static_cast<TO*>(q.y), q.p.o, static_cast<int>(q.p.act), blockIdx.x,
                        blockIdx.y);
}

template <class T, class TO, int KS>
__global__ void depthwise_kernel(const T* __restrict__ x, const T* __restrict__ w, const float* __restrict__ bias,
                                 const T* __restrict__ res, TO* __restrict__ y, ConvParams p) {
  pdl_wait();
  const int total = p.n * p.oh * p.ow * p.o;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
    const int oc = i % p.o;
    int t = i / p.o;
    const int ox = t % p.ow;
    t /= p.ow;
    const int oy = t % p.oh;
    const int n = t / p.oh;
    const int c = oc / p.multiplier;
    float acc = 0.0f;
    for_each_tap<KS>(x, p, n, oy, ox, [&](const T* xp, int tap) { acc += ldf(xp + c) * ldf(w + tap * p.o + oc); });
    epilogue(y, res, i, oc, acc, bias, static_cast<int>(p.act));
  }
}

// V adjacent channels per thread (multiplier 1): V = 2 with half2/float2 loads, V = 8 with 16-byte
// loads of half. KS: as for_each_tap (3 for 3x3 filters, else 0).
template <class T, class TO, int V, int KS>
__global__ void depthwise_vec_kernel(const T* __restrict__ x, const T* __restrict__ w, const float* __restrict__ bias,
                                     const T* __restrict__ res, TO* __restrict__ y, ConvParams p) {
  pdl_wait();
  struct alignas(sizeof(T) * V) Pack {
    T v[V];
  };
  const int groups = p.o / V;
  const int total = p.n * p.oh * p.ow * groups;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
    const int cg = i % groups;
    int t = i / groups;
    const int ox = t % p.ow;
    t /= p.ow;
    const int oy = t % p.oh;
    const int n = t / p.oh;
    float acc[V];
#pragma unroll
    for (int j = 0; j < V; ++j) acc[j] = 0.0f;
    for_each_tap<KS>(x, p, n, oy, ox, [&](const T* xp, int tap) {
      const Pack xv = reinterpret_cast<const Pack*>(xp)[cg];
      const Pack wv = reinterpret_cast<const Pack*>(w + tap * p.o)[cg];
#pragma unroll
      for (int j = 0; j < V; ++j) acc[j] += ldf(&xv.v[j]) * ldf(&wv.v[j]);
    });
    const int oi = i * V;
#pragma unroll
    for (int j = 0; j < V; ++j) epilogue(y, res, oi + j, cg * V + j, acc[j], bias, static_cast<int>(p.act));
  }
}

// 3x3 depthwise, half input, multiplier 1, channels % 8 == 0 (kDw3x3R4 / kDw3x3R2 / kDw3x3R1): thread
// = 8 channels x R outputs of one row. Per input row it loads the (R - 1) * S + 3 columns the R
// outputs need once (16 bytes each) and accumulates in float in the reference order (ky, then kx).
template <class TO, int S, int R>
__global__ void dw3x3_rows_kernel(const __half* __restrict__ x, const __half* __restrict__ w, const float* __restrict__ bias,
                                  const __half* __restrict__ res, TO* __restrict__ y, ConvParams p) {
  pdl_wait();
  constexpr int NC = (R - 1) * S + 3;
  const int groups = p.c / 8;
  const int xblocks = (p.ow + R - 1) / R;
  const int total = p.n * p.oh * xblocks * groups;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
    const int cg = i % groups;
    int t = i / groups;
    const int xb = t % xblocks;
    t /= xblocks;
    const int oy = t % p.oh;
    const int n = t / p.oh;
    const int ox0 = xb * R;
    float acc[R][8];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int c = 0; c < 8; ++c) acc[r][c] = 0.0f;
#pragma unroll
    for (int ky = 0; ky < 3; ++ky) {
      const int iy = oy * S - p.pad_top + ky;
      if (iy < 0 || iy >= p.h) continue;
      float wv[3][8];
#pragma unroll
      for (int kx = 0; kx < 3; ++kx) {
        const uint4 raw = *reinterpret_cast<const uint4*>(w + (ky * 3 + kx) * p.c + cg * 8);
        const __half2* h2 = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          const float2 f = __half22float2(h2[c]);
          wv[kx][2 * c] = f.x;
          wv[kx][2 * c + 1] = f.y;
        }
      }
      const __half* row = x + (static_cast<size_t>(n) * p.h + iy) * p.w * p.c + cg * 8;
#pragma unroll
      for (int j = 0; j < NC; ++j) {
        const int ix = ox0 * S - p.pad_left + j;
        if (ix < 0 || ix >= p.w) continue;
        const uint4 raw = *reinterpret_cast<const uint4*>(row + static_cast<size_t>(ix) * p.c);
        const __half2* h2 = reinterpret_cast<const __half2*>(&raw);
        float xv[8];
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          const float2 f = __half22float2(h2[c]);
          xv[2 * c] = f.x;
          xv[2 * c + 1] = f.y;
        }
#pragma unroll
        for (int r = 0; r < R; ++r) {
          const int kx = j - r * S;  // compile-time after unrolling
          if (kx < 0 || kx > 2) continue;
#pragma unroll
          for (int c = 0; c < 8; ++c) acc[r][c] += xv[c] * wv[kx][c];
        }
      }
    }
    float b[8];
#pragma unroll
    for (int c = 0; c < 8; ++c) b[c] = bias ? bias[cg * 8 + c] : 0.0f;
    const int act = static_cast<int>(p.act);
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int ox = ox0 + r;
      if (ox >= p.ow) break;
      const size_t o = ((static_cast<size_t>(n) * p.oh + oy) * p.ow + ox) * p.c + cg * 8;
      float v[8];
#pragma unroll
      for (int c = 0; c < 8; ++c) v[c] = acc[r][c] + b[c];
      if (res) {
        const uint4 raw = *reinterpret_cast<const uint4*>(res + o);
        const __half2* h2 = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          const float2 f = __half22float2(h2[c]);
          v[2 * c] += f.x;
          v[2 * c + 1] += f.y;
        }
      }
#pragma unroll
      for (int c = 0; c < 8; ++c) v[c] = apply_act(v[c], act);
      if constexpr (std::is_same_v<TO, __half>) {
        uint4 out;
        __half2* h2 = reinterpret_cast<__half2*>(&out);
#pragma unroll
        for (int c = 0; c < 4; ++c) h2[c] = __floats2half2_rn(v[2 * c], v[2 * c + 1]);
        *reinterpret_cast<uint4*>(y + o) = out;
      } else {
        *reinterpret_cast<float4*>(y + o) = make_float4(v[0], v[1], v[2], v[3]);
        *reinterpret_cast<float4*>(y + o + 4) = make_float4(v[4], v[5], v[6], v[7]);
      }
    }
  }
}

// Launches a horizontal group of tile16 members (g: count members; mt x nt tiles of the largest;
// kmax: the widest member's K, whose warps and shared memory every member runs with).
template <class Args>
void launch_group16(const std::string& what, const Group16<Args>& g, int count, int mt, int nt, int kmax, bool out_f32,
                    cudaStream_t s) {
  const int warps = dwpw16_warps(kmax);
  const size_t smem = dwpw16_smem(kmax);
  const dim3 grid(mt, nt, count);
  if (out_f32)
    launch_smem(what, warps == 16 ? tile16_group_kernel<float, 16, Args> : tile16_group_kernel<float, 4, Args>, grid, warps * 32, smem, s,
                g);
  else
    launch_smem(what, warps == 16 ? tile16_group_kernel<__half, 16, Args> : tile16_group_kernel<__half, 4, Args>, grid, warps * 32, smem, s,
             g);
}

template <class T, class TO>
void launch_conv(int tactic, const T* x, const T* w, const float* bias, const T* r, TO* y, const ConvParams& p,
                 cudaStream_t s) {
  const int act = static_cast<int>(p.act);
  const int M = p.n * p.h * p.w, N = p.o, K = p.c;
  switch (tactic) {
    case kConvDirect:
      launch(conv_direct_kernel<T, TO>, grid_for(static_cast<int64_t>(p.n) * p.oh * p.ow * p.o, 256), 256, 0, s, x, w, bias, r, y, p);
      break;
    case kConvDirect8:
    case kConvDirect8Smem: {
      const int64_t work = static_cast<int64_t>(p.n) * p.oh * p.ow * (p.o / 8);
      const bool vec = aligned16(y) && aligned16(r);
      if (tactic == kConvDirect8) {
        const int grid = grid_for(work, 128);
        if (vec) launch(conv_direct8_kernel<T, TO, true, false>, grid, 128, 0, s, x, w, bias, r, y, p);
        else launch(conv_direct8_kernel<T, TO, false, false>, grid, 128, 0, s, x, w, bias, r, y, p);
      } else {
        // Enough blocks to fill the GPU, few enough that each stages the filter for many pixels.
        const int grid = static_cast<int>(std::min<int64_t>((work + 127) / 128, 132 * 16));
        if (vec) launch(conv_direct8_kernel<T, TO, true, true>, grid, 128, 0, s, x, w, bias, r, y, p);
        else launch(conv_direct8_kernel<T, TO, false, true>, grid, 128, 0, s, x, w, bias, r, y, p);
      }
      break;
    }
    case kConvDirect8Pix: {
      const int64_t work = static_cast<int64_t>(p.n) * p.oh * p.ow;
      // Enough blocks to fill the GPU, few enough that each stages the filter for many pixels.
      const int grid = static_cast<int>(std::min<int64_t>((work + kPixThreads - 1) / kPixThreads, 132 * 8));
      const bool vec = aligned16(y) && aligned16(r), vec_in = aligned16(x);
      const size_t smem = direct8pix_smem(p, vec ? sizeof(TO) : 0);
      auto go = [&](auto kernel_vec, auto kernel_scalar) {
        launch_smem("direct8pix", vec ? kernel_vec : kernel_scalar, grid, kPixThreads, smem, s, x, w, bias, r, y, p, vec_in);
      };
      if (p.kh == 3) go(conv_direct8pix_kernel<3, 3, 3, T, TO, true>, conv_direct8pix_kernel<3, 3, 3, T, TO, false>);
      else if (p.c == 8) go(conv_direct8pix_kernel<1, 1, 8, T, TO, true>, conv_direct8pix_kernel<1, 1, 8, T, TO, false>);
      else if (p.c == 16) go(conv_direct8pix_kernel<1, 1, 16, T, TO, true>, conv_direct8pix_kernel<1, 1, 16, T, TO, false>);
      else if (p.c == 24) go(conv_direct8pix_kernel<1, 1, 24, T, TO, true>, conv_direct8pix_kernel<1, 1, 24, T, TO, false>);
      else if (p.c == 32) go(conv_direct8pix_kernel<1, 1, 32, T, TO, true>, conv_direct8pix_kernel<1, 1, 32, T, TO, false>);
      else go(conv_direct8pix_kernel<1, 1, 40, T, TO, true>, conv_direct8pix_kernel<1, 1, 40, T, TO, false>);
      break;
    }
    case kConvMma3x3:
      if constexpr (std::is_same_v<T, __half>) mma3x3_conv2d(DType16::F16, x, nullptr, true, w, bias, r, y, p, s);
      break;
    case kConvGemm64:
      launch(gemm_kernel<T, TO, 64, 64, 16, 4, 4>, dim3((M + 63) / 64, (N + 63) / 64), 256, 0, s, x, w, bias, r, y, M, N, K, act);
      break;
    case kConvGemm32:
      launch(gemm_kernel<T, TO, 32, 64, 16, 2, 4>, dim3((M + 31) / 32, (N + 63) / 64), 256, 0, s, x, w, bias, r, y, M, N, K, act);
      break;
    case kConvWmma64:
    case kConvWmma32:
      if constexpr (std::is_same_v<T, __half>) {
        const bool vec = K % 8 == 0 && N % 8 == 0 && aligned16(x) && aligned16(w) && aligned16(y) && aligned16(r);
        if (tactic == kConvWmma64) {
          const dim3 grid((M + 63) / 64, (N + 63) / 64);
          if (vec) launch(wmma_gemm_kernel<TO, 64, 64, true>, grid, 128, 0, s, x, w, bias, r, y, M, N, K, act);
          else launch(wmma_gemm_kernel<TO, 64, 64, false>, grid, 128, 0, s, x, w, bias, r, y, M, N, K, act);
        } else {
          const dim3 grid((M + 31) / 32, (N + 63) / 64);
          if (vec) launch(wmma_gemm_kernel<TO, 32, 64, true>, grid, 64, 0, s, x, w, bias, r, y, M, N, K, act);
          else launch(wmma_gemm_kernel<TO, 32, 64, false>, grid, 64, 0, s, x, w, bias, r, y, M, N, K, act);
        }
      }
      break;
    case kConvPw16:
      if constexpr (std::is_same_v<T, __half>) {
        if (!aligned16(x) || !aligned16(w) || (N % 8 == 0 && (!aligned16(y) || !aligned16(r))))
          throw Error("internal: pw16x32 buffers must be 16-byte aligned");
        const int warps = dwpw16_warps(K);
        launch_smem("pw16x32 (" + std::to_string(K) + " channels)", warps == 16 ? pw16_kernel<TO, 16> : pw16_kernel<TO, 4>,
                    dim3((M + 15) / 16, (N + 31) / 32), warps * 32, dwpw16_smem(K), s, x, p, w, bias, r, y, act);
      }
      break;
  }
}

template <class T, class TO>
void launch_dw(int tactic, const T* x, const T* w, const float* bias, const T* r, TO* y, const ConvParams& p,
               cudaStream_t s) {
  const int64_t total = static_cast<int64_t>(p.n) * p.oh * p.ow * p.o;
  if (tactic == kDw3x3R4 || tactic == kDw3x3R2 || tactic == kDw3x3R1) {
    if constexpr (std::is_same_v<T, __half>) {
      const int R = tactic == kDw3x3R4 ? 4 : tactic == kDw3x3R2 ? 2 : 1;
      const int64_t threads = static_cast<int64_t>(p.n) * p.oh * ((p.ow + R - 1) / R) * (p.c / 8);
      const int grid = grid_for(threads, 128);
      if (p.sh == 1 && R == 4) launch(dw3x3_rows_kernel<TO, 1, 4>, grid, 128, 0, s, x, w, bias, r, y, p);
      else if (p.sh == 1 && R == 2) launch(dw3x3_rows_kernel<TO, 1, 2>, grid, 128, 0, s, x, w, bias, r, y, p);
      else if (p.sh == 1) launch(dw3x3_rows_kernel<TO, 1, 1>, grid, 128, 0, s, x, w, bias, r, y, p);
      else if (R == 4) launch(dw3x3_rows_kernel<TO, 2, 4>, grid, 128, 0, s, x, w, bias, r, y, p);
      else if (R == 2) launch(dw3x3_rows_kernel<TO, 2, 2>, grid, 128, 0, s, x, w, bias, r, y, p);
      else launch(dw3x3_rows_kernel<TO, 2, 1>, grid, 128, 0, s, x, w, bias, r, y, p);
    }
    return;
  }
  // 3x3 filters (every depthwise layer of the MoveNet and PoseNet models) with unrolled taps.
  const bool k3 = p.kh == 3 && p.kw == 3;
  if (tactic == kDwVec2)
    launch(k3 ? depthwise_vec_kernel<T, TO, 2, 3> : depthwise_vec_kernel<T, TO, 2, 0>, grid_for(total / 2, 256), 256, 0, s, x, w,
           bias, r, y, p);
  else if (tactic == kDwVec8)
    launch(k3 ? depthwise_vec_kernel<T, TO, 8, 3> : depthwise_vec_kernel<T, TO, 8, 0>, grid_for(total / 8, 128), 128, 0, s, x, w,
           bias, r, y, p);
  else
    launch(k3 ? depthwise_kernel<T, TO, 3> : depthwise_kernel<T, TO, 0>, grid_for(total, 256), 256, 0, s, x, w, bias, r, y, p);
}

// Calls fn(x, w, r, y) with the buffers cast to the layer's input and output types.
template <class Fn>
void with_types(bool half, bool out_f32, const void* x, const void* w, const void* r, void* y, Fn&& fn) {
  if (!half) {
    fn(static_cast<const float*>(x), static_cast<const float*>(w), static_cast<const float*>(r), static_cast<float*>(y));
  } else if (out_f32) {
    fn(static_cast<const __half*>(x), static_cast<const __half*>(w), static_cast<const __half*>(r), static_cast<float*>(y));
  } else {
    fn(static_cast<const __half*>(x), static_cast<const __half*>(w), static_cast<const __half*>(r), static_cast<__half*>(y));
  }
}

}  // namespace

namespace {
// Attribute `what` of the current device, asked once per device (cache: one slot per device, 0
// until asked); `fallback` when there is no device to ask or the answer is not positive.
int device_attribute(cudaDeviceAttr what, std::atomic<int>* cache, int devices, int fallback) {
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) {
    cudaGetLastError();
    return fallback;
  }
  int v = dev >= 0 && dev < devices ? cache[dev].load(std::memory_order_relaxed) : 0;
  if (v > 0) return v;
  if (cudaDeviceGetAttribute(&v, what, dev) != cudaSuccess || v <= 0) {
    cudaGetLastError();
    v = fallback;
  }
  if (dev >= 0 && dev < devices) cache[dev].store(v, std::memory_order_relaxed);
  return v;
}
constexpr int kDevices = 64;
}  // namespace

size_t max_smem_optin() {
  static std::atomic<int> asked[kDevices] = {};
  return static_cast<size_t>(device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin, asked, kDevices, 48 * 1024));
}

int sm_count() {
  static std::atomic<int> asked[kDevices] = {};
  return device_attribute(cudaDevAttrMultiProcessorCount, asked, kDevices, 132);
}

int compute_capability_major() {
  static std::atomic<int> asked[kDevices] = {};
  return device_attribute(cudaDevAttrComputeCapabilityMajor, asked, kDevices, 0);
}

bool conv_tactic_applies(int tactic, const ConvParams& p, bool half) {
  if (!fits_int32(p)) return false;
  switch (tactic) {
    case kConvDirect: return true;
    case kConvDirect8: return p.o % 8 == 0;
    case kConvDirect8Smem: return p.o % 8 == 0 && static_cast<int64_t>(p.kh) * p.kw * p.c * p.o <= kSmemFilterFloats;
    case kConvGemm64:
    case kConvGemm32: return is_pointwise(p);
    case kConvWmma64:
    case kConvWmma32: return half && is_pointwise(p);
    case kConvPw16: return half && is_pointwise(p) && p.c % 8 == 0 && tile16_fits(p.c);
    case kConvDirect8Pix:  // the filter and an output tile of float (the larger type) fit kPixSmemBytes
      return p.o % 8 == 0 && direct8pix_shape(p) && direct8pix_smem(p, sizeof(float)) <= kPixSmemBytes;
    case kConvMma3x3: return mma3x3_applies(p, half);
    default: return false;
  }
}

bool conv_tactic_offered(int tactic, const ConvParams& p, bool half) {
  if (!conv_tactic_applies(tactic, p, half)) return false;
  // direct8pix from 65,536 output pixels at the batch tuned for (512 blocks, about 4 per SM of an
  // H100): on fewer, each thread's serial walk over the channel groups leaves the GPU idle, and in
  // the engine's graph it measured slower than its time alone suggested (thunder batch 1, 16,384
  // pixels: 9.3 us alone against direct8's 10.0, yet the forward pass 0.284 -> 0.293 ms with it).
  if (tactic == kConvDirect8Pix) return static_cast<int64_t>(p.n) * p.oh * p.ow >= int64_t{512} * kPixThreads;
  return true;
}

const char* conv_tactic_name(int tactic) {
  return tactic >= 0 && tactic < kConvTacticCount ? kConvTacticNames[tactic] : "?";
}

void conv2d(int tactic, bool half, const void* x, const void* w, const float* bias, const void* residual, void* y,
            const ConvParams& p, void* stream) {
  if (!conv_tactic_applies(tactic, p, half))
    throw Error(std::string("conv tactic ") + conv_tactic_name(tactic) + " does not apply to this layer (or it is too large)");
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  with_types(half, p.out_f32, x, w, residual, y, [&](auto xx, auto ww, auto rr, auto yy) { launch_conv(tactic, xx, ww, bias, rr, yy, p, s); });
  check_launch("conv2d");
}

bool chain_conv_applies(const ConvParams& p, DType16 xt) {
  if (xt != DType16::F32 && xt != DType16::F16 && xt != DType16::I32) return false;
  if (!conv_tactic_applies(kConvDirect8Smem, p, false)) return false;
  if (p.sh > 8 || p.sw > 8 || p.kh > 16 || p.kw > 16 || p.dh > 8 || p.dw > 8) return false;  // keeps the spans small
  const int64_t tile = static_cast<int64_t>(chain_tile_span(p.sh, p.kh, p.dh)) * chain_tile_span(p.sw, p.kw, p.dw) * p.c;
  return tile <= kChainTileFloats;
}

void chain_conv2d(DType16 xt, const void* x, const ChainProgram& prog, bool half, const void* w, const float* bias,
                  const void* residual, void* y, const ConvParams& p, void* stream) {
  if (!chain_conv_applies(p, xt))
    throw Error("conv tactic chain+direct8smem does not apply to this layer (or its input tile is too large)");
  if (prog.steps < 0 || prog.steps > kMaxChainSteps) throw Error("chain+direct8smem: bad chain program");
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  const int64_t tiles = static_cast<int64_t>(p.n) * ((p.oh + kChainTile - 1) / kChainTile) * ((p.ow + kChainTile - 1) / kChainTile);
  if (tiles > (int64_t{1} << 31) - 1) throw Error("chain+direct8smem: too many tiles");
  const int grid = static_cast<int>(tiles);
  with_types(half, p.out_f32, nullptr, w, residual, y, [&](auto, auto ww, auto rr, auto yy) {
    using T = std::remove_cv_t<std::remove_pointer_t<decltype(ww)>>;
    using TO = std::remove_pointer_t<decltype(yy)>;
    auto go = [&](auto xx) {
      using X = std::remove_cv_t<std::remove_pointer_t<decltype(xx)>>;
      if (aligned16(yy) && aligned16(rr))
        launch(chain_conv_kernel<T, TO, true, X>, grid, 128, 0, s, xx, ww, bias, rr, yy, p, prog);
      else
        launch(chain_conv_kernel<T, TO, false, X>, grid, 128, 0, s, xx, ww, bias, rr, yy, p, prog);
    };
    if (xt == DType16::I32) go(static_cast<const int32_t*>(x));
    else if (xt == DType16::F16) go(static_cast<const __half*>(x));
    else go(static_cast<const float*>(x));
  });
  check_launch("chain_conv2d");
}

bool dw_tactic_applies(int tactic, const ConvParams& p, bool half) {
  if (!fits_int32(p)) return false;
  if (tactic == kDwScalar) return true;
  if (tactic == kDwVec2) return p.multiplier == 1 && p.c % 2 == 0;
  if (tactic == kDwVec8) return half && p.multiplier == 1 && p.c % 8 == 0;
  if (tactic == kDw3x3R4 || tactic == kDw3x3R2 || tactic == kDw3x3R1)
    return half && p.multiplier == 1 && p.c % 8 == 0 && p.kh == 3 && p.kw == 3 && p.dh == 1 && p.dw == 1 &&
           p.sh == p.sw && (p.sh == 1 || p.sh == 2);
  return false;
}

const char* dw_tactic_name(int tactic) {
  return tactic >= 0 && tactic < kDwTacticCount ? kDwTacticNames[tactic] : "?";
}

void depthwise_conv2d(int tactic, bool half, const void* x, const void* w, const float* bias, const void* residual,
                      void* y, const ConvParams& p, void* stream) {
  if (!dw_tactic_applies(tactic, p, half)) throw Error("depthwise tactic does not apply to this layer (or it is too large)");
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  with_types(half, p.out_f32, x, w, residual, y, [&](auto xx, auto ww, auto rr, auto yy) { launch_dw(tactic, xx, ww, bias, rr, yy, p, s); });
  check_launch("depthwise_conv2d");
}

bool dwpw_applies(int tactic, const ConvParams& d, const ConvParams& p, bool half) {
  if (tactic != kConvDwPw64 && tactic != kConvDwPw16) return false;
  if (tactic == kConvDwPw16 && !tile16_fits(d.c)) return false;
  return half && fits_int32(d) && fits_int32(p) && d.multiplier == 1 && d.kh == 3 && d.kw == 3 && d.dh == 1 &&
         d.dw == 1 && d.sh == d.sw && (d.sh == 1 || d.sh == 2) && d.c % 8 == 0 && d.o == d.c && !d.out_f32 &&
         is_pointwise(p) && p.c == d.c && p.n == d.n && p.h == d.oh && p.w == d.ow && p.o % 8 == 0;
}

void dw_pw_conv2d(int tactic, const void* x, const void* wd, const float* bd, const ConvParams& d, const void* wp,
                  const float* bias, const void* residual, void* y, const ConvParams& p, void* stream) {
  if (!dwpw_applies(tactic, d, p, true))
    throw Error(std::string("conv tactic ") + conv_tactic_name(tactic) + " does not apply to this depthwise + pointwise pair");
  if (!aligned16(x) || !aligned16(wd) || !aligned16(wp) || !aligned16(residual) || !aligned16(y))
    throw Error("internal: dw+pw buffers must be 16-byte aligned");
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  const int M = d.n * d.oh * d.ow, N = p.o, act = static_cast<int>(p.act);
  auto run = [&](auto* yy) {
    using TO = std::remove_pointer_t<decltype(yy)>;
    const auto* xh = static_cast<const __half*>(x);
    const auto* wdh = static_cast<const __half*>(wd);
    const auto* wph = static_cast<const __half*>(wp);
    const auto* rh = static_cast<const __half*>(residual);
    if (tactic == kConvDwPw64) {
      const cudaError_t e =
          launch(dwpw_kernel<TO, 64, 64>, dim3((M + 63) / 64, (N + 63) / 64), 128, 0, s, xh, wdh, bd, d, wph, bias, rh, yy, N, act);
      if (e != cudaSuccess)
        throw Error(std::string("CUDA kernel dw+pw64x64 (") + std::to_string(d.c) + " channels) failed to launch: " + cudaGetErrorString(e));
    } else {
      const int warps = dwpw16_warps(d.c);
      launch_smem("dw+pw16x32 (" + std::to_string(d.c) + " channels)", warps == 16 ? dwpw16_kernel<TO, 16> : dwpw16_kernel<TO, 4>,
                  dim3((M + 15) / 16, (N + 31) / 32), warps * 32, dwpw16_smem(d.c), s, xh, wdh, bd, d, wph, bias, rh, yy, N, act);
    }
  };
  if (p.out_f32) run(static_cast<float*>(y));
  else run(static_cast<__half*>(y));
  check_launch("dw_pw_conv2d");
}

bool conv1x1_group_applies(int tactic, const ConvParams* p, int count) {
  if (count < 2 || count > kMaxConvGroup || (tactic != kConvGroupWmma && tactic != kConvGroupPw16)) return false;
  const int each = tactic == kConvGroupWmma ? kConvWmma64 : kConvPw16;
  for (int i = 0; i < count; ++i) {
    if (!conv_tactic_applies(each, p[i], true) || p[i].out_f32 != p[0].out_f32) return false;
    // pw16x32 splits K over dwpw16_warps(K) warps: a member run with another count would add its
    // partial sums in another order than alone.
    if (tactic == kConvGroupPw16 && dwpw16_warps(p[i].c) != dwpw16_warps(p[0].c)) return false;
  }
  return true;
}

void conv1x1_group(int tactic, const Conv1x1Args* a, int count, void* stream) {
  std::vector<ConvParams> ps;
  for (int i = 0; i < count; ++i) ps.push_back(a[i].p);
  if (!conv1x1_group_applies(tactic, ps.data(), count))
    throw Error("conv tactic " + conv_tactic_label(tactic) + " does not apply to these layers");
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (tactic == kConvGroupPw16) {
    Group16<Conv1x1Args> g{};
    int mt = 1, nt = 1, kmax = 0;
    for (int i = 0; i < count; ++i) {
      const ConvParams& p = a[i].p;
      if (!aligned16(a[i].x) || !aligned16(a[i].w) || (p.o % 8 == 0 && (!aligned16(a[i].y) || !aligned16(a[i].res))))
        throw Error("internal: pw16x32 buffers must be 16-byte aligned");
      g.p[i] = a[i];
      mt = std::max(mt, (p.n * p.h * p.w + 15) / 16);
      nt = std::max(nt, (p.o + 31) / 32);
      kmax = std::max(kmax, p.c);
    }
    // Every member has the same warp count (conv1x1_group_applies) and runs with the widest
    // member's shared memory (tile16 lays out its own K inside).
    launch_group16("group:pw16x32", g, count, mt, nt, kmax, a[0].p.out_f32, s);
    check_launch("conv1x1_group");
    return;
  }
  Pw1x1Group g{};
  bool vec = true;
  int mt = 1, nt = 1;
  for (int i = 0; i < count; ++i) {
    const ConvParams& p = a[i].p;
    const int M = p.n * p.h * p.w, N = p.o, K = p.c;
    g.p[i] = a[i];
    vec = vec && K % 8 == 0 && N % 8 == 0 && aligned16(a[i].x) && aligned16(a[i].w) && aligned16(a[i].y) && aligned16(a[i].res);
    mt = std::max(mt, (M + 63) / 64);
    nt = std::max(nt, (N + 63) / 64);
  }
  const dim3 grid(mt, nt, count);
  cudaError_t e;
  if (a[0].p.out_f32) e = vec ? launch(wmma_gemm_group_kernel<float, true>, grid, 128, 0, s, g)
                              : launch(wmma_gemm_group_kernel<float, false>, grid, 128, 0, s, g);
  else e = vec ? launch(wmma_gemm_group_kernel<__half, true>, grid, 128, 0, s, g)
               : launch(wmma_gemm_group_kernel<__half, false>, grid, 128, 0, s, g);
  if (e != cudaSuccess) throw Error(std::string("CUDA kernel group:wmma64x64 failed to launch: ") + cudaGetErrorString(e));
  check_launch("conv1x1_group");
}

bool dw_pw_group_applies(const ConvParams* d, const ConvParams* p, int count) {
  if (count < 2 || count > kMaxConvGroup) return false;
  for (int i = 0; i < count; ++i)
    if (!dwpw_applies(kConvDwPw16, d[i], p[i], true) || p[i].out_f32 != p[0].out_f32 ||
        dwpw16_warps(d[i].c) != dwpw16_warps(d[0].c))
      return false;
  return true;
}

void dw_pw_group(const DwPwArgs* a, int count, void* stream) {
  std::vector<ConvParams> ds, ps;
  for (int i = 0; i < count; ++i) ds.push_back(a[i].d), ps.push_back(a[i].p);
  if (!dw_pw_group_applies(ds.data(), ps.data(), count)) throw Error("conv tactic group:dw+pw16x32 does not apply to these layers");
  Group16<DwPwArgs> g{};
  int mt = 1, nt = 1, kmax = 0;
  for (int i = 0; i < count; ++i) {
    const DwPwArgs& q = a[i];
    if (!aligned16(q.x) || !aligned16(q.wd) || !aligned16(q.wp) || !aligned16(q.res) || !aligned16(q.y))
      throw Error("internal: dw+pw buffers must be 16-byte aligned");
    g.p[i] = q;
    mt = std::max(mt, (q.d.n * q.d.oh * q.d.ow + 15) / 16);
    nt = std::max(nt, (q.p.o + 31) / 32);
    kmax = std::max(kmax, q.d.c);
  }
  launch_group16("group:dw+pw16x32", g, count, mt, nt, kmax, a[0].p.out_f32, static_cast<cudaStream_t>(stream));
  check_launch("dw_pw_group");
}

}  // namespace posert::cuda
