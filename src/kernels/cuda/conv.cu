// Convolution kernels: direct (any shape; one output, or 8 output channels, per thread), tiled
// SIMT GEMM and tensor-core (WMMA) GEMM for 1x1 convolutions, depthwise (1, 2 or 8 channels per
// thread). All fuse the epilogue out = act(conv + bias + residual). T is the input/filter type,
// TO the output type (half -> float for the heads of fp16 engines). Index arithmetic is 32-bit
// (launchers check the sizes fit): 64-bit division costs more than the convolution itself.
#include <mma.h>

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

// 8 loads of 16 (or 32) bytes as 8 floats.
template <class T>
__device__ __forceinline__ void load8(const T* p, float* v) {
  if constexpr (std::is_same_v<T, __half>) {
    const uint4 raw = *reinterpret_cast<const uint4*>(p);
    const __half2* h2 = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const float2 f = __half22float2(h2[j]);
      v[2 * j] = f.x;
      v[2 * j + 1] = f.y;
    }
  } else {
    const float4 a = *reinterpret_cast<const float4*>(p), b = *reinterpret_cast<const float4*>(p + 4);
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
  }
}

// The epilogue of 8 consecutive outputs y[i..i+8) (channels o..o+8), i a multiple of 8 and the
// buffers 16-byte aligned: the same arithmetic as epilogue(), with vector loads and stores.
template <class T, class TO>
__device__ __forceinline__ void epilogue8(TO* y, const T* res, int i, int o, const float* acc, const float* bias, int act) {
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
    *reinterpret_cast<uint4*>(y + i) = out;
  } else {
    *reinterpret_cast<float4*>(y + i) = make_float4(v[0], v[1], v[2], v[3]);
    *reinterpret_cast<float4*>(y + i + 4) = make_float4(v[4], v[5], v[6], v[7]);
  }
}

template <class T, class TO>
__global__ void conv_direct_kernel(const T* __restrict__ x, const T* __restrict__ w, const float* __restrict__ bias,
                                   const T* __restrict__ res, TO* __restrict__ y, ConvParams p) {
  const int total = p.n * p.oh * p.ow * p.o;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
    const int o = i % p.o;
    int t = i / p.o;
    const int ox = t % p.ow;
    t /= p.ow;
    const int oy = t % p.oh;
    const int n = t / p.oh;
    float acc = 0.0f;
    for (int ky = 0; ky < p.kh; ++ky) {
      const int iy = oy * p.sh - p.pad_top + ky * p.dh;
      if (iy < 0 || iy >= p.h) continue;
      for (int kx = 0; kx < p.kw; ++kx) {
        const int ix = ox * p.sw - p.pad_left + kx * p.dw;
        if (ix < 0 || ix >= p.w) continue;
        const T* xp = x + ((n * p.h + iy) * p.w + ix) * p.c;
        const T* wp = w + (ky * p.kw + kx) * p.c * p.o + o;
        for (int c = 0; c < p.c; ++c) acc += ldf(xp + c) * ldf(wp + c * p.o);
      }
    }
    epilogue(y, res, i, o, acc, bias, static_cast<int>(p.act));
  }
}

// One thread: one output pixel, 8 consecutive output channels (o % 8 == 0). Reads each input
// value once for 8 outputs; the 8 filter taps of a (ky, kx, c) are contiguous. SMEM
// (kConvDirect8Smem): the whole filter is staged once per block in shared memory as float (at most
// kSmemFilterFloats values, e.g. a network's first conv on 3 channels) and read 8 taps per two
// loads; the accumulation order is the same. VEC: the 8 outputs go through the vector epilogue.
constexpr int kSmemFilterFloats = 4096;
template <class T, class TO, bool VEC, bool SMEM>
__global__ void conv_direct8_kernel(const T* __restrict__ x, const T* __restrict__ w, const float* __restrict__ bias,
                                    const T* __restrict__ res, TO* __restrict__ y, ConvParams p) {
  __shared__ __align__(16) float ws[SMEM ? kSmemFilterFloats : 4];
  if constexpr (SMEM) {
    const int nw = p.kh * p.kw * p.c * p.o;
    for (int i = threadIdx.x; i < nw; i += blockDim.x) ws[i] = ldf(w + i);
    __syncthreads();
  }
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
    for (int ky = 0; ky < p.kh; ++ky) {
      const int iy = oy * p.sh - p.pad_top + ky * p.dh;
      if (iy < 0 || iy >= p.h) continue;
      for (int kx = 0; kx < p.kw; ++kx) {
        const int ix = ox * p.sw - p.pad_left + kx * p.dw;
        if (ix < 0 || ix >= p.w) continue;
        const T* xp = x + ((n * p.h + iy) * p.w + ix) * p.c;
        const int woff = (ky * p.kw + kx) * p.c * p.o + g * 8;
        for (int c = 0; c < p.c; ++c) {
          const float xv = ldf(xp + c);
          float wv[8];
          if constexpr (SMEM) {
            const float4 a = *reinterpret_cast<const float4*>(ws + woff + c * p.o);
            const float4 b = *reinterpret_cast<const float4*>(ws + woff + c * p.o + 4);
            wv[0] = a.x, wv[1] = a.y, wv[2] = a.z, wv[3] = a.w, wv[4] = b.x, wv[5] = b.y, wv[6] = b.z, wv[7] = b.w;
          } else {
#pragma unroll
            for (int j = 0; j < 8; ++j) wv[j] = ldf(w + woff + c * p.o + j);
          }
#pragma unroll
          for (int j = 0; j < 8; ++j) acc[j] += xv * wv[j];
        }
      }
    }
    const int base = ((n * p.oh + oy) * p.ow + ox) * p.o + g * 8;
    if constexpr (VEC) {
      epilogue8(y, res, base, g * 8, acc, bias, static_cast<int>(p.act));
    } else {
#pragma unroll
      for (int j = 0; j < 8; ++j) epilogue(y, res, base + j, g * 8 + j, acc[j], bias, static_cast<int>(p.act));
    }
  }
}

// C[M,N] = A[M,K] * B[K,N] (row-major), 256 threads, each computing TM x TN outputs.
template <class T, class TO, int BM, int BN, int BK, int TM, int TN>
__global__ void __launch_bounds__(256) gemm_kernel(const T* __restrict__ A, const T* __restrict__ B,
                                                   const float* __restrict__ bias, const T* __restrict__ R,
                                                   TO* __restrict__ Y, int M, int N, int K, int act) {
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

// Tensor-core GEMM for half: warps of 32x32 outputs (2x2 WMMA 16x16x16 fragments), fp32 accumulation.
// VEC: K and N are multiples of 8, so tiles load as 16-byte vectors (8 halves).
template <class TO, int BM, int BN, bool VEC>
__global__ void wmma_gemm_kernel(const __half* __restrict__ A, const __half* __restrict__ B,
                                 const float* __restrict__ bias, const __half* __restrict__ R,
                                 TO* __restrict__ Y, int M, int N, int K, int act) {
  using namespace nvcuda;
  constexpr int BK = 32;
  constexpr int WARPS_N = BN / 32;
  constexpr int THREADS = (BM / 32) * (BN / 32) * 32;
  __shared__ __align__(32) __half As[BM][BK + 8];
  __shared__ __align__(32) __half Bs[BK][BN + 8];
  __shared__ __align__(32) float Cs[BM][BN + 4];
  const int tid = threadIdx.x, warp = tid / 32;
  const int wm = warp / WARPS_N, wn = warp % WARPS_N;
  const int m0 = blockIdx.x * BM, n0 = blockIdx.y * BN;
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
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      if (k0 + kk >= K) break;  // the second half of a K=16 tile is all zeros
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
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j)
      wmma::store_matrix_sync(&Cs[wm * 32 + i * 16][wn * 32 + j * 16], acc[i][j], BN + 4, wmma::mem_row_major);
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

template <class T, class TO>
__global__ void depthwise_kernel(const T* __restrict__ x, const T* __restrict__ w, const float* __restrict__ bias,
                                 const T* __restrict__ res, TO* __restrict__ y, ConvParams p) {
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
    for (int ky = 0; ky < p.kh; ++ky) {
      const int iy = oy * p.sh - p.pad_top + ky * p.dh;
      if (iy < 0 || iy >= p.h) continue;
      for (int kx = 0; kx < p.kw; ++kx) {
        const int ix = ox * p.sw - p.pad_left + kx * p.dw;
        if (ix < 0 || ix >= p.w) continue;
        acc += ldf(x + ((n * p.h + iy) * p.w + ix) * p.c + c) * ldf(w + (ky * p.kw + kx) * p.o + oc);
      }
    }
    epilogue(y, res, i, oc, acc, bias, static_cast<int>(p.act));
  }
}

// V adjacent channels per thread (multiplier 1): V = 2 with half2/float2 loads, V = 8 with 16-byte
// loads of half.
template <class T, class TO, int V>
__global__ void depthwise_vec_kernel(const T* __restrict__ x, const T* __restrict__ w, const float* __restrict__ bias,
                                     const T* __restrict__ res, TO* __restrict__ y, ConvParams p) {
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
    for (int ky = 0; ky < p.kh; ++ky) {
      const int iy = oy * p.sh - p.pad_top + ky * p.dh;
      if (iy < 0 || iy >= p.h) continue;
      for (int kx = 0; kx < p.kw; ++kx) {
        const int ix = ox * p.sw - p.pad_left + kx * p.dw;
        if (ix < 0 || ix >= p.w) continue;
        const Pack xv = reinterpret_cast<const Pack*>(x + ((n * p.h + iy) * p.w + ix) * p.c)[cg];
        const Pack wv = reinterpret_cast<const Pack*>(w + (ky * p.kw + kx) * p.o)[cg];
#pragma unroll
        for (int j = 0; j < V; ++j) acc[j] += ldf(&xv.v[j]) * ldf(&wv.v[j]);
      }
    }
    const int oi = i * V;
#pragma unroll
    for (int j = 0; j < V; ++j) epilogue(y, res, oi + j, cg * V + j, acc[j], bias, static_cast<int>(p.act));
  }
}

// 3x3 depthwise, half input, multiplier 1, channels % 8 == 0 (kDw3x3R4 / kDw3x3R2): thread = 8
// channels x R outputs of one row. Per input row it loads the (R - 1) * S + 3 columns the R
// outputs need once (16 bytes each) and accumulates in float in the reference order (ky, then kx).
template <class TO, int S, int R>
__global__ void dw3x3_rows_kernel(const __half* __restrict__ x, const __half* __restrict__ w, const float* __restrict__ bias,
                                  const __half* __restrict__ res, TO* __restrict__ y, ConvParams p) {
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

bool is_pointwise(const ConvParams& p) {
  return p.kh == 1 && p.kw == 1 && p.sh == 1 && p.sw == 1 && p.pad_top == 0 && p.pad_left == 0 && p.oh == p.h &&
         p.ow == p.w && p.o > 0;
}

bool fits_int32(const ConvParams& p) {
  const int64_t in = static_cast<int64_t>(p.n) * p.h * p.w * p.c;
  const int64_t out = static_cast<int64_t>(p.n) * p.oh * p.ow * p.o;
  const int64_t wt = static_cast<int64_t>(p.kh) * p.kw * p.c * p.o;
  const int64_t lim = (int64_t{1} << 31) - 1;
  return in < lim && out < lim && wt < lim;
}

// True for null (no buffer) or a 16-byte aligned address.
inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <class T, class TO>
void launch_conv(int tactic, const T* x, const T* w, const float* bias, const T* r, TO* y, const ConvParams& p,
                 cudaStream_t s) {
  const int act = static_cast<int>(p.act);
  const int M = p.n * p.h * p.w, N = p.o, K = p.c;
  switch (tactic) {
    case kConvDirect:
      conv_direct_kernel<T, TO><<<grid_for(static_cast<int64_t>(p.n) * p.oh * p.ow * p.o, 256), 256, 0, s>>>(x, w, bias, r, y, p);
      break;
    case kConvDirect8:
    case kConvDirect8Smem: {
      const int64_t work = static_cast<int64_t>(p.n) * p.oh * p.ow * (p.o / 8);
      const bool vec = aligned16(y) && aligned16(r);
      if (tactic == kConvDirect8) {
        const int grid = grid_for(work, 128);
        if (vec) conv_direct8_kernel<T, TO, true, false><<<grid, 128, 0, s>>>(x, w, bias, r, y, p);
        else conv_direct8_kernel<T, TO, false, false><<<grid, 128, 0, s>>>(x, w, bias, r, y, p);
      } else {
        // Enough blocks to fill the GPU, few enough that each stages the filter for many pixels.
        const int grid = static_cast<int>(std::min<int64_t>((work + 127) / 128, 132 * 16));
        if (vec) conv_direct8_kernel<T, TO, true, true><<<grid, 128, 0, s>>>(x, w, bias, r, y, p);
        else conv_direct8_kernel<T, TO, false, true><<<grid, 128, 0, s>>>(x, w, bias, r, y, p);
      }
      break;
    }
    case kConvGemm64:
      gemm_kernel<T, TO, 64, 64, 16, 4, 4><<<dim3((M + 63) / 64, (N + 63) / 64), 256, 0, s>>>(x, w, bias, r, y, M, N, K, act);
      break;
    case kConvGemm32:
      gemm_kernel<T, TO, 32, 64, 16, 2, 4><<<dim3((M + 31) / 32, (N + 63) / 64), 256, 0, s>>>(x, w, bias, r, y, M, N, K, act);
      break;
    case kConvWmma64:
    case kConvWmma32:
      if constexpr (std::is_same_v<T, __half>) {
        const bool vec = K % 8 == 0 && N % 8 == 0 && aligned16(x) && aligned16(w) && aligned16(y) && aligned16(r);
        if (tactic == kConvWmma64) {
          const dim3 grid((M + 63) / 64, (N + 63) / 64);
          if (vec) wmma_gemm_kernel<TO, 64, 64, true><<<grid, 128, 0, s>>>(x, w, bias, r, y, M, N, K, act);
          else wmma_gemm_kernel<TO, 64, 64, false><<<grid, 128, 0, s>>>(x, w, bias, r, y, M, N, K, act);
        } else {
          const dim3 grid((M + 31) / 32, (N + 63) / 64);
          if (vec) wmma_gemm_kernel<TO, 32, 64, true><<<grid, 64, 0, s>>>(x, w, bias, r, y, M, N, K, act);
          else wmma_gemm_kernel<TO, 32, 64, false><<<grid, 64, 0, s>>>(x, w, bias, r, y, M, N, K, act);
        }
      }
      break;
  }
}

template <class T, class TO>
void launch_dw(int tactic, const T* x, const T* w, const float* bias, const T* r, TO* y, const ConvParams& p,
               cudaStream_t s) {
  const int64_t total = static_cast<int64_t>(p.n) * p.oh * p.ow * p.o;
  if (tactic == kDw3x3R4 || tactic == kDw3x3R2) {
    if constexpr (std::is_same_v<T, __half>) {
      const int R = tactic == kDw3x3R4 ? 4 : 2;
      const int64_t threads = static_cast<int64_t>(p.n) * p.oh * ((p.ow + R - 1) / R) * (p.c / 8);
      const int grid = grid_for(threads, 128);
      if (p.sh == 1 && R == 4) dw3x3_rows_kernel<TO, 1, 4><<<grid, 128, 0, s>>>(x, w, bias, r, y, p);
      else if (p.sh == 1) dw3x3_rows_kernel<TO, 1, 2><<<grid, 128, 0, s>>>(x, w, bias, r, y, p);
      else if (R == 4) dw3x3_rows_kernel<TO, 2, 4><<<grid, 128, 0, s>>>(x, w, bias, r, y, p);
      else dw3x3_rows_kernel<TO, 2, 2><<<grid, 128, 0, s>>>(x, w, bias, r, y, p);
    }
    return;
  }
  if (tactic == kDwVec2)
    depthwise_vec_kernel<T, TO, 2><<<grid_for(total / 2, 256), 256, 0, s>>>(x, w, bias, r, y, p);
  else if (tactic == kDwVec8)
    depthwise_vec_kernel<T, TO, 8><<<grid_for(total / 8, 128), 128, 0, s>>>(x, w, bias, r, y, p);
  else
    depthwise_kernel<T, TO><<<grid_for(total, 256), 256, 0, s>>>(x, w, bias, r, y, p);
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
    default: return false;
  }
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

bool dw_tactic_applies(int tactic, const ConvParams& p, bool half) {
  if (!fits_int32(p)) return false;
  if (tactic == kDwScalar) return true;
  if (tactic == kDwVec2) return p.multiplier == 1 && p.c % 2 == 0;
  if (tactic == kDwVec8) return half && p.multiplier == 1 && p.c % 8 == 0;
  if (tactic == kDw3x3R4 || tactic == kDw3x3R2)
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

}  // namespace posert::cuda
