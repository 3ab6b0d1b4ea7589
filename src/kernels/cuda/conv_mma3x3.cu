// A network's first convolution (3x3 on 3 input channels, the image) on the tensor cores: tactics
// kConvMma3x3 and kConvChainMma3x3 (see cuda_kernels.h).
//
// The layer is an implicit GEMM with K = 27 (3x3 taps x 3 channels, zero-padded to 32: two k16
// steps of mma.sync m16n8k16, fp16 inputs, fp32 accumulation) and N = the output channels. A block
// of 4 warps computes a tile of 4 output rows x 16 columns, one row per warp (the 16 pixels of one
// MMA fragment). Its threads stage the input rows and columns the tile reaches in shared memory as
// half, zero outside the image (the padding); with CHAIN, each value is loaded from the elementwise
// chain's input, put through the chain once and rounded to half as the chain kernel would have
// stored it. Each thread builds its A fragments from the staged tile (its 8 k indices' offsets
// computed once) and keeps the whole filter's B fragments in registers, loaded once per block
// before the wait on the previous kernel. The epilogue (bias, residual, activation, rounding)
// writes the tile's outputs to shared memory, and the block stores them with 16-byte stores.
//
// direct8pix computes the same layer with 27 FFMA per output value on the CUDA cores (FFMA was 41%
// of its instructions under Nsight Compute, lightning batch 64); here those are 2 MMAs per 16
// pixels and 8 channels. The sums are the same products (half times half is exact in fp32) added
// in the tensor cores' order, so the results are not bit-identical to direct8pix: the tuner
// weighs them like cuDNN's algorithms, and the tests compare them with the reference. The chain
// variant is bit-identical to the chain kernel followed by the plain variant.
#include <algorithm>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_kernels.h"

namespace posert::cuda {

namespace {

constexpr int kRows = 4;   // output rows per tile: one per warp
constexpr int kCols = 16;  // output columns per tile: the 16 rows of one MMA fragment
constexpr int kThreads = 32 * kRows;
constexpr int kTaps = 27;  // 3x3 x 3 channels
constexpr int kMaxRows = 11;  // staged input rows at most: (kRows - 1) * 2 + 2 * 2 + 1

// Input rows (columns) a tile of `tile` output rows (columns) reaches.
__host__ __device__ constexpr int mma3x3_span(int tile, int stride, int dilation) { return (tile - 1) * stride + 2 * dilation + 1; }

// Halves between output pixels in the shared-memory output tile: 8 more than the channels, so a
// warp's epilogue stores (8 pixels x 4 channel pairs) land on 32 different banks.
__host__ __device__ constexpr int out_stride(int o) { return o + 8; }

// The compiled output-channel counts (o = 8 * NJ).
constexpr bool nj_compiled(int nj) { return nj == 1 || nj == 2 || nj == 3 || nj == 4 || nj == 6 || nj == 7 || nj == 8; }

__device__ __forceinline__ uint32_t pack2(__half lo, __half hi) {
  return static_cast<uint32_t>(__half_as_ushort(lo)) | (static_cast<uint32_t>(__half_as_ushort(hi)) << 16);
}

template <class TO>
__device__ __forceinline__ void store_pair(TO* p, float a, float b) {
  if constexpr (std::is_same_v<TO, __half>) *reinterpret_cast<__half2*>(p) = __floats2half2_rn(a, b);
  else *reinterpret_cast<float2*>(p) = make_float2(a, b);
}

// X: the type read from x (the chain's input with CHAIN, else the layer's half input).
template <int NJ, class X, bool CHAIN, class TO>
__global__ void __launch_bounds__(kThreads) conv_mma3x3_kernel(const X* __restrict__ x, const __half* __restrict__ w,
                                                                const float* __restrict__ bias, const __half* __restrict__ res,
                                                                TO* __restrict__ y, ConvParams p, bool vec_out,
                                                                const __grid_constant__ ChainProgram prog) {
  constexpr int O = 8 * NJ, OS = out_stride(O);
  extern __shared__ __align__(16) unsigned char smem_mma3x3[];
  TO* ot = reinterpret_cast<TO*>(smem_mma3x3);
  __half* xs = reinterpret_cast<__half*>(smem_mma3x3 + kRows * kCols * OS * sizeof(TO));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
  const int rows = mma3x3_span(kRows, p.sh, p.dh), cols = mma3x3_span(kCols, p.sw, p.dw);
  const int row_len = cols * 3;  // < kThreads (mma3x3_applies: strides and dilations at most 2)

  // The filter's B fragments (k-major HWIO: k = (ky * 3 + kx) * 3 + c, rows k of o values): b[s][j]
  // holds rows 16s + 2t, +1 and 16s + 8 + 2t, +1 of column 8j + g; rows past 26 are zero. Weights
  // are written before the graph runs: loaded before the wait.
  uint32_t b[2][NJ][2];
  const __half zero = __float2half_rn(0.0f);
#pragma unroll
  for (int s = 0; s < 2; ++s)
#pragma unroll
    for (int j = 0; j < NJ; ++j)
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const int k = 16 * s + 8 * r + 2 * t, col = 8 * j + g;
        b[s][j][r] = pack2(k < kTaps ? w[k * O + col] : zero, k + 1 < kTaps ? w[(k + 1) * O + col] : zero);
      }
  int koff[2][2][2];  // this thread's k indices in the staged tile
  conv3x3c3_koff(koff, t, row_len, p.dh, p.dw);
  float bv[NJ][2];
#pragma unroll
  for (int j = 0; j < NJ; ++j) {
    bv[j][0] = bias ? bias[8 * j + 2 * t] : 0.0f;
    bv[j][1] = bias ? bias[8 * j + 2 * t + 1] : 0.0f;
  }
  pdl_wait();

  const int tiles_x = (p.ow + kCols - 1) / kCols, tiles_y = (p.oh + kRows - 1) / kRows;
  const int tiles = p.n * tiles_y * tiles_x;
  const int act = static_cast<int>(p.act);
  // Staging, row by row: a staged row is row_len (< kThreads) consecutive values of x, one image
  // row from column ix0, so thread k loads value k of every row; its column and channel are fixed
  // (no division per value), and with CHAIN all its values share one channel. The next tile's
  // values are loaded into registers while this tile is computed.
  const int kq = threadIdx.x, qcol = kq / 3, qc = kq - qcol * 3;
  const bool qactive = kq < row_len;
  X v[kMaxRows];
  bool vin[kMaxRows];
  auto load_tile = [&](int tl) {
    const int tx = tl % tiles_x, ty = (tl / tiles_x) % tiles_y, n = tl / (tiles_x * tiles_y);
    const int iy0 = ty * kRows * p.sh - p.pad_top, ix = tx * kCols * p.sw - p.pad_left + qcol;
    const bool col_in = qactive && ix >= 0 && ix < p.w;
#pragma unroll
    for (int r = 0; r < kMaxRows; ++r) {
      const int iy = iy0 + r;
      vin[r] = col_in && r < rows && iy >= 0 && iy < p.h;
      v[r] = vin[r] ? x[((n * p.h + iy) * p.w + ix) * 3 + qc] : X{};
    }
  };
  if (blockIdx.x < tiles) load_tile(blockIdx.x);
  for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const int tx = tile % tiles_x, ty = (tile / tiles_x) % tiles_y, n = tile / (tiles_x * tiles_y);
    const int oy0 = ty * kRows, ox0 = tx * kCols;
    if (qactive) {
      if constexpr (CHAIN) {
        float f[kMaxRows];
#pragma unroll
        for (int r = 0; r < kMaxRows; ++r) f[r] = ldf(&v[r]);
        chain_apply_channel(prog, f, qc);
#pragma unroll
        for (int r = 0; r < kMaxRows; ++r)
          if (r < rows) xs[r * row_len + kq] = vin[r] ? __float2half_rn(f[r]) : zero;
      } else {
#pragma unroll
        for (int r = 0; r < kMaxRows; ++r)
          if (r < rows) xs[r * row_len + kq] = vin[r] ? v[r] : zero;
      }
    }
    __syncthreads();
    if (tile + static_cast<int>(gridDim.x) < tiles) load_tile(tile + gridDim.x);  // in flight during the MMAs
    float acc[NJ][4];
#pragma unroll
    for (int j = 0; j < NJ; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
    // This warp's row; fragment rows g and g + 8 are output columns g and g + 8.
    const __half* p0 = xs + warp * p.sh * row_len + g * p.sw * 3;
    const __half* p1 = p0 + 8 * p.sw * 3;
#pragma unroll
    for (int s = 0; s < 2; ++s) {
      uint32_t a[4];
      conv3x3c3_afrag(a, p0, p1, koff, s);
#pragma unroll
      for (int j = 0; j < NJ; ++j) mma_16816(acc[j], a, b[s][j]);
    }
    // Epilogue into the output tile: acc[j][0..1] are column g, channels 8j + 2t, +1; [2..3] column g + 8.
    const int oy = oy0 + warp;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int lx = g + 8 * h, ox = ox0 + lx;
      const bool in = oy < p.oh && ox < p.ow;
#pragma unroll
      for (int j = 0; j < NJ; ++j) {
        const int oc = 8 * j + 2 * t;
        float v0 = acc[j][2 * h] + bv[j][0], v1 = acc[j][2 * h + 1] + bv[j][1];
        if (res && in) {
          const int at = ((n * p.oh + oy) * p.ow + ox) * O + oc;
          v0 += __half2float(res[at]);
          v1 += __half2float(res[at + 1]);
        }
        store_pair(ot + (warp * kCols + lx) * OS + oc, apply_act(v0, act), apply_act(v1, act));
      }
    }
    __syncthreads();
    // The tile's outputs: each output row's in-image pixels are one contiguous run of y.
    if (vec_out) {
      constexpr int kPieces = O * static_cast<int>(sizeof(TO)) / 16;  // 16-byte pieces per pixel
      for (int q = threadIdx.x; q < kRows * kCols * kPieces; q += kThreads) {
        const int px = q / kPieces, part = q - px * kPieces, ly = px / kCols, lx = px - ly * kCols;
        const int oyy = oy0 + ly, oxx = ox0 + lx;
        if (oyy < p.oh && oxx < p.ow)
          reinterpret_cast<uint4*>(y + ((n * p.oh + oyy) * p.ow + oxx) * O)[part] =
              reinterpret_cast<const uint4*>(ot + px * OS)[part];
      }
    } else {
      for (int q = threadIdx.x; q < kRows * kCols * O; q += kThreads) {
        const int px = q / O, oc = q - px * O, ly = px / kCols, lx = px - ly * kCols;
        const int oyy = oy0 + ly, oxx = ox0 + lx;
        if (oyy < p.oh && oxx < p.ow) y[((n * p.oh + oyy) * p.ow + oxx) * O + oc] = ot[px * OS + oc];
      }
    }
    // The next tile's staging and epilogue rewrite xs and ot only after the __syncthreads() that
    // follows its staging, which every thread reaches after its copy above.
  }
}

size_t mma3x3_smem(const ConvParams& p) {
  const size_t out = static_cast<size_t>(kRows) * kCols * out_stride(p.o) * (p.out_f32 ? sizeof(float) : sizeof(__half));
  const size_t in = static_cast<size_t>(mma3x3_span(kRows, p.sh, p.dh)) * mma3x3_span(kCols, p.sw, p.dw) * 3 * sizeof(__half);
  return out + in;
}

template <class X, bool CHAIN, class TO>
void launch_mma3x3(const X* x, const __half* w, const float* bias, const __half* res, TO* y, const ConvParams& p,
                   const ChainProgram& prog, cudaStream_t s) {
  const int64_t tiles = static_cast<int64_t>(p.n) * ((p.oh + kRows - 1) / kRows) * ((p.ow + kCols - 1) / kCols);
  // Enough blocks to fill the GPU several times over; each loads the filter's fragments once.
  const int grid = static_cast<int>(std::min<int64_t>(std::max<int64_t>(tiles, 1), int64_t{16} * sm_count()));
  const size_t smem = mma3x3_smem(p);
  const bool vec = aligned16(y);
  const char* what = CHAIN ? "chain+mma3x3" : "mma3x3";
  switch (p.o / 8) {
    case 1: launch_smem(what, conv_mma3x3_kernel<1, X, CHAIN, TO>, grid, kThreads, smem, s, x, w, bias, res, y, p, vec, prog); break;
    case 2: launch_smem(what, conv_mma3x3_kernel<2, X, CHAIN, TO>, grid, kThreads, smem, s, x, w, bias, res, y, p, vec, prog); break;
    case 3: launch_smem(what, conv_mma3x3_kernel<3, X, CHAIN, TO>, grid, kThreads, smem, s, x, w, bias, res, y, p, vec, prog); break;
    case 4: launch_smem(what, conv_mma3x3_kernel<4, X, CHAIN, TO>, grid, kThreads, smem, s, x, w, bias, res, y, p, vec, prog); break;
    case 6: launch_smem(what, conv_mma3x3_kernel<6, X, CHAIN, TO>, grid, kThreads, smem, s, x, w, bias, res, y, p, vec, prog); break;
    case 7: launch_smem(what, conv_mma3x3_kernel<7, X, CHAIN, TO>, grid, kThreads, smem, s, x, w, bias, res, y, p, vec, prog); break;
    default: launch_smem(what, conv_mma3x3_kernel<8, X, CHAIN, TO>, grid, kThreads, smem, s, x, w, bias, res, y, p, vec, prog); break;
  }
}

}  // namespace

bool mma3x3_applies(const ConvParams& p, bool half) {
  if (!half || !fits_int32(p)) return false;
  if (p.kh != 3 || p.kw != 3 || p.c != 3 || p.o % 8 != 0 || !nj_compiled(p.o / 8)) return false;
  return p.sh >= 1 && p.sh <= 2 && p.sw >= 1 && p.sw <= 2 && p.dh >= 1 && p.dh <= 2 && p.dw >= 1 && p.dw <= 2;
}

void mma3x3_conv2d(DType16 xt, const void* x, const ChainProgram* prog, bool half, const void* w, const float* bias,
                   const void* residual, void* y, const ConvParams& p, void* stream) {
  const char* what = prog ? "chain+mma3x3" : "mma3x3";
  if (!mma3x3_applies(p, half))
    throw Error(std::string("conv tactic ") + what + " does not apply to this layer (it needs a half 3x3 convolution on 3 channels "
                "with 8, 16, 24, 32, 48, 56 or 64 outputs, strides and dilations of 1 or 2)");
  if (prog && (prog->steps < 0 || prog->steps > kMaxChainSteps)) throw Error(std::string(what) + ": bad chain program");
  if (!prog && xt != DType16::F16) throw Error("mma3x3: the input must be half");
  if (p.n < 1 || p.oh < 1 || p.ow < 1) return;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  const __half* ww = static_cast<const __half*>(w);
  const __half* rr = static_cast<const __half*>(residual);
  const ChainProgram none{};
  auto go = [&](auto yy) {
    using TO = std::remove_pointer_t<decltype(yy)>;
    if (!prog) launch_mma3x3<__half, false, TO>(static_cast<const __half*>(x), ww, bias, rr, yy, p, none, s);
    else if (xt == DType16::I32) launch_mma3x3<int32_t, true, TO>(static_cast<const int32_t*>(x), ww, bias, rr, yy, p, *prog, s);
    else if (xt == DType16::F16) launch_mma3x3<__half, true, TO>(static_cast<const __half*>(x), ww, bias, rr, yy, p, *prog, s);
    else launch_mma3x3<float, true, TO>(static_cast<const float*>(x), ww, bias, rr, yy, p, *prog, s);
  };
  if (p.out_f32) go(static_cast<float*>(y));
  else go(static_cast<__half*>(y));  // launch_smem has checked the launch
}

}  // namespace posert::cuda
