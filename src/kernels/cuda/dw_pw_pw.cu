// A separable head branch as one kernel (tactics kConvDwPwPw and kConvGroupDwPwPw): a 3x3
// depthwise layer, the 1x1 convolution reading it and the 1x1 convolution reading that (MoveNet's
// four head branches: 24 -> 24 -> 96 -> 17/34/1/34 channels at 48x48 or 64x64). Neither
// intermediate tensor is written: both stay in shared memory for the block's 8x8 pixels.
#include <algorithm>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_kernels.h"

namespace posert::cuda {

namespace {

constexpr int kHeadThreads = 128;  // 4 warps: one 16-pixel m-tile of the 8x8 tile each
constexpr int kHeadTile = 8;
constexpr int kHeadHalo = kHeadTile + 2;
constexpr int kHeadMaxC = 64, kHeadMaxMid = 128, kHeadMaxOut = 64;

// Shared-memory layout for a group's widest member (halves unless said): the input halo
// [100][xs], the depthwise output [64][xs], the first filter [kp][hs], the second filter
// [mp][os], then floats: the depthwise filter [9][kp], its bias [kp], the biases [mp] and
// [np], then the output tile [64][np] in the output type (written out in coalesced rows). Row
// strides are an odd number of 16-byte units (ldmatrix without bank conflicts).
struct HeadLayout {
  int kp, mp, np;  // input channels, middle channels, outputs, each rounded up to 16
  __host__ __device__ int xs() const { return kp + 8; }
  __host__ __device__ int hs() const { return mp + 8; }
  __host__ __device__ int os() const { return np + 8; }
  __host__ __device__ size_t halves() const {
    return static_cast<size_t>(kHeadHalo * kHeadHalo + 64) * xs() + static_cast<size_t>(kp) * hs() +
           static_cast<size_t>(mp) * os();
  }
  __host__ __device__ size_t bytes(size_t out_size) const {
    return 2 * halves() + 4 * static_cast<size_t>(10 * kp + mp + np) + out_size * 64 * static_cast<size_t>(np);
  }
};

struct HeadGroup {
  DwPwPwArgs a[kMaxConvGroup];
  HeadLayout L;
};

__host__ __device__ inline int round16(int v) { return (v + 15) / 16 * 16; }

// One block: 8x8 tiles of member blockIdx.z, tile blockIdx.x and every gridDim.x-th after it (the
// filters staged once per block; the next tile's input fetched as soon as the depthwise layer has
// read this one's, while the 1x1 layers run and the outputs are written: a second input buffer,
// fetched earlier, measured slower for costing a block per SM). Depthwise (3x3r1's arithmetic:
// float sums in the order ky, kx, + bias, activation, rounded to half) into shared memory, then the
// first 1x1 convolution on the tensor cores (+ bias, activation, rounded to half: what its layer
// would store) and the second from the first's registers (+ bias, activation, rounded to the
// output type), staged in shared memory and written out as whole rows of 16-byte stores where the
// row is aligned. Filters go to shared memory before pdl_wait().
// KP, MP, NP: the layout's channel counts compiled in (MoveNet's head branches), or 0: from g.L.
template <class TO, int KP, int MP, int NP>
__global__ void __launch_bounds__(kHeadThreads, 5) dw_pw_pw_kernel(const HeadGroup g) {
  const DwPwPwArgs& q = g.a[blockIdx.z];
  const HeadLayout L{KP ? KP : g.L.kp, MP ? MP : g.L.mp, NP ? NP : g.L.np};
  const ConvParams& d = q.d;
  const int tiles_x = (d.ow + kHeadTile - 1) / kHeadTile, tiles_y = (d.oh + kHeadTile - 1) / kHeadTile;
  const int tiles = tiles_x * tiles_y, all_tiles = d.n * tiles;
  if (static_cast<int>(blockIdx.x) >= all_tiles) {
    pdl_wait();
    return;
  }
  extern __shared__ __align__(16) unsigned char dyn[];
  const int XS = L.xs(), HS = L.hs(), OS = L.os();
  __half* xs = reinterpret_cast<__half*>(dyn);           // [100][XS]
  __half* ds = xs + kHeadHalo * kHeadHalo * XS;          // [64][XS]
  __half* w1s = ds + 64 * XS;                            // [kp][HS]
  __half* w2s = w1s + L.kp * HS;                         // [mp][OS]
  float* wds = reinterpret_cast<float*>(w2s + L.mp * OS);  // [9][kp]
  float* bds = wds + 9 * L.kp;                           // [kp]
  float* b1s = bds + L.kp;                               // [mp]
  float* b2s = b1s + L.mp;                               // [np]
  TO* ys = reinterpret_cast<TO*>(b2s + L.np);            // [8 rows][8 * K2]: the tile's output rows as stored
  const int C = d.c, M = q.p1.o, K2 = q.p2.o;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;

  // Filters (zero past each layer's channels: the padded K steps and outputs add nothing).
  const __half* w1 = static_cast<const __half*>(q.w1);
  const __half* w2 = static_cast<const __half*>(q.w2);
  const __half* wd = static_cast<const __half*>(q.wd);
  for (int i = tid; i < L.kp * (L.mp / 8); i += kHeadThreads) {
    const int k = i / (L.mp / 8), c8 = i % (L.mp / 8) * 8;
    const bool in = k < C && c8 < M;
    cp_async16(w1s + k * HS + c8, in ? w1 + k * M + c8 : w1, in);
  }
  // The second filter's rows (K2 values) need not be 16-byte aligned: 8 scalar loads per thread
  // and round, all issued before any is stored (one memory round trip per round, not per value).
  constexpr int kRound = 8;
  for (int base = tid; base < L.mp * L.np; base += kRound * kHeadThreads) {
    __half v[kRound];
#pragma unroll
    for (int u = 0; u < kRound; ++u) {
      const int i = base + u * kHeadThreads, k = i / L.np, o = i % L.np;
      v[u] = i < L.mp * L.np && k < M && o < K2 ? w2[k * K2 + o] : __float2half(0.0f);
    }
#pragma unroll
    for (int u = 0; u < kRound; ++u) {
      const int i = base + u * kHeadThreads;
      if (i < L.mp * L.np) w2s[i / L.np * OS + i % L.np] = v[u];
    }
  }
  for (int base = tid; base < 9 * L.kp; base += kRound * kHeadThreads) {
    float v[kRound];
#pragma unroll
    for (int u = 0; u < kRound; ++u) {
      const int i = base + u * kHeadThreads, tap = i / L.kp, c = i % L.kp;
      v[u] = i < 9 * L.kp && c < C ? __half2float(wd[tap * C + c]) : 0.0f;
    }
#pragma unroll
    for (int u = 0; u < kRound; ++u)
      if (base + u * kHeadThreads < 9 * L.kp) wds[base + u * kHeadThreads] = v[u];
  }
  for (int i = tid; i < L.kp; i += kHeadThreads) bds[i] = i < C && q.bd ? q.bd[i] : 0.0f;
  for (int i = tid; i < L.mp; i += kHeadThreads) b1s[i] = i < M && q.b1 ? q.b1[i] : 0.0f;
  for (int i = tid; i < L.np; i += kHeadThreads) b2s[i] = i < K2 && q.b2 ? q.b2[i] : 0.0f;
  pdl_wait();
  const __half* x = static_cast<const __half*>(q.x);
  const int groups = L.kp / 8;
  auto stage_input = [&](int tile) {  // the tile's 10x10 input pixels, zero outside the image and past c
    const int n = tile / tiles, t = tile % tiles;
    const int iy0 = t / tiles_x * kHeadTile - d.pad_top, ix0 = t % tiles_x * kHeadTile - d.pad_left;
    for (int i = tid; i < kHeadHalo * kHeadHalo * groups; i += kHeadThreads) {
      const int r = i / groups, c8 = i % groups * 8;
      const int iy = iy0 + r / kHeadHalo, ix = ix0 + r % kHeadHalo;
      const bool in = c8 < C && iy >= 0 && iy < d.h && ix >= 0 && ix < d.w;
      cp_async16(xs + r * XS + c8, in ? x + ((n * d.h + iy) * d.w + ix) * C + c8 : x, in);
    }
  };
  stage_input(blockIdx.x);
  const int dact = static_cast<int>(d.act), act1 = static_cast<int>(q.p1.act), act2 = static_cast<int>(q.p2.act);
  TO* y = static_cast<TO*>(q.y);
  const int run = kHeadTile * K2;  // outputs in one row of the tile (8 pixels)
  for (int tile = blockIdx.x; tile < all_tiles; tile += gridDim.x) {
    const int n = tile / tiles, t = tile % tiles;
    const int oy0 = t / tiles_x * kHeadTile, ox0 = t % tiles_x * kHeadTile;
    cp_async_wait_all();
    __syncthreads();

    // The depthwise layer: task = (8 channels, row, run of 2 outputs), reading the 4 input pixels of
    // a tap row the two share once (3x3r2's reuse and order); taps outside the image read zeros;
    // channel groups past c are zero.
    for (int i = tid; i < groups * kHeadTile * 4; i += kHeadThreads) {
      const int c8 = i % groups * 8, r4 = i / groups, ty = r4 / 4, tx0 = r4 % 4 * 2;
      uint4 out[2] = {make_uint4(0, 0, 0, 0), make_uint4(0, 0, 0, 0)};
      if (c8 < C) {
        float acc[2][8];
#pragma unroll
        for (int r = 0; r < 2; ++r)
#pragma unroll
          for (int c = 0; c < 8; ++c) acc[r][c] = 0.0f;
        dw3x3_run8<2, 1>(xs + (ty * kHeadHalo + tx0) * XS + c8, kHeadHalo * XS, XS, wds + c8, L.kp, acc);
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          __half2* h2 = reinterpret_cast<__half2*>(&out[r]);
#pragma unroll
          for (int c = 0; c < 4; ++c)
            h2[c] = __floats2half2_rn(apply_act(acc[r][2 * c] + bds[c8 + 2 * c], dact),
                                      apply_act(acc[r][2 * c + 1] + bds[c8 + 2 * c + 1], dact));
        }
      }
#pragma unroll
      for (int r = 0; r < 2; ++r) *reinterpret_cast<uint4*>(ds + (ty * kHeadTile + tx0 + r) * XS + c8) = out[r];
    }
    __syncthreads();

    if (tile + static_cast<int>(gridDim.x) < all_tiles) stage_input(tile + gridDim.x);  // xs is free: in flight during the MMAs

    // Both 1x1 layers without leaving the registers: the first layer's accumulators of column
    // tiles 2s and 2s + 1 (bias, activation, rounded to half as its layer stores them) are exactly
    // the A fragment of the second layer's k step s (the m16n8 accumulator and m16k16 A layouts
    // line up), so the middle values never go through shared memory.
    const int r0 = warp * 16 + (lane >> 2);  // this lane's accumulator rows: r0 and r0 + 8
    {
      constexpr int kMaxMidTiles = kHeadMaxMid / 8;
      float acc[kMaxMidTiles][4];
#pragma unroll
      for (int j = 0; j < kMaxMidTiles; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
      const int nt = L.mp / 8;
      warp_gemm(acc, nt, ds + warp * 16 * XS, XS, w1s, HS, L.kp, lane);
      uint32_t af[kMaxMidTiles / 2][4];
#pragma unroll
      for (int j = 0; j < kMaxMidTiles; ++j) {
        if (j >= nt) break;
        const int col = j * 8 + (lane & 3) * 2;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const __half2 v = __floats2half2_rn(apply_act(acc[j][2 * h] + b1s[col], act1),
                                              apply_act(acc[j][2 * h + 1] + b1s[col + 1], act1));
          af[j / 2][(j % 2) * 2 + h] = *reinterpret_cast<const uint32_t*>(&v);
        }
      }
      float acc2[kHeadMaxOut / 8][4];
#pragma unroll
      for (int j = 0; j < kHeadMaxOut / 8; ++j) acc2[j][0] = acc2[j][1] = acc2[j][2] = acc2[j][3] = 0.0f;
      const int nt2 = NP ? NP / 8 : (K2 + 7) / 8;  // compiled in: the padded columns (zero filters) too
      const __half* brow = w2s + (lane & 15) * OS;
#pragma unroll
      for (int ks = 0; ks < kMaxMidTiles / 2; ++ks) {
        if (2 * ks >= nt) break;  // L.mp is a multiple of 16: whole k steps
#pragma unroll
        for (int j = 0; j < kHeadMaxOut / 8; ++j) {
          if (j >= nt2) break;
          uint32_t bf[2];
          ldmatrix_x2_trans(bf, brow + ks * 16 * OS + j * 8);
          mma_16816(acc2[j], af[ks], bf);
        }
      }
#pragma unroll
      for (int j = 0; j < kHeadMaxOut / 8; ++j) {
        if (j >= nt2) break;
        const int col = j * 8 + (lane & 3) * 2;
#pragma unroll
        for (int h = 0; h < 2; ++h)
#pragma unroll
          for (int e = 0; e < 2; ++e)
            if (col + e < K2) stf(ys + (r0 + 8 * h) * K2 + col + e, apply_act(acc2[j][2 * h + e] + b2s[col + e], act2));
      }
    }
    __syncthreads();
    // Each of the tile's 8 rows is `run` consecutive outputs in y: whole rows whose start is 16-byte
    // aligned go out as 16-byte stores (the row's bytes, 16 * K2 for half, are a multiple of 16),
    // the others (the image's right edge, odd widths) one value at a time.
    const int cols = min(kHeadTile, d.ow - ox0);
    const int rows = min(kHeadTile, d.oh - oy0);
    constexpr int kVec = 16 / sizeof(TO);
    for (int ty = 0; ty < rows; ++ty) {
      TO* dst = y + (static_cast<size_t>(n * d.oh + oy0 + ty) * d.ow + ox0) * K2;
      const TO* src = ys + ty * run;
      if (cols == kHeadTile && aligned16(dst) && run % kVec == 0) {
        for (int i = tid; i < run / kVec; i += kHeadThreads)
          reinterpret_cast<uint4*>(dst)[i] = reinterpret_cast<const uint4*>(src)[i];
      } else {
        for (int i = tid; i < cols * K2; i += kHeadThreads) dst[i] = src[i];
      }
    }
  }
}

}  // namespace

bool dwpwpw_applies(const ConvParams& d, const ConvParams& p1, const ConvParams& p2) {
  if (!fits_int32(d) || !fits_int32(p1) || !fits_int32(p2)) return false;
  if (d.multiplier != 1 || d.kh != 3 || d.kw != 3 || d.sh != 1 || d.sw != 1 || d.dh != 1 || d.dw != 1 || d.out_f32) return false;
  if (d.c % 8 != 0 || d.c > kHeadMaxC || d.o != d.c) return false;
  if (!is_pointwise(p1) || !is_pointwise(p2) || p1.out_f32) return false;
  if (p1.c != d.c || p1.n != d.n || p1.h != d.oh || p1.w != d.ow || p1.o % 8 != 0 || p1.o > kHeadMaxMid) return false;
  if (p2.c != p1.o || p2.n != p1.n || p2.h != p1.h || p2.w != p1.w || p2.o < 1 || p2.o > kHeadMaxOut) return false;
  const HeadLayout L{round16(d.c), round16(p1.o), round16(p2.o)};
  return L.bytes(p2.out_f32 ? 4 : 2) <= max_smem_optin();
}

namespace {
HeadLayout group_layout(const DwPwPwArgs* a, int count) {
  HeadLayout L{16, 16, 16};
  for (int i = 0; i < count; ++i) {
    L.kp = std::max(L.kp, round16(a[i].d.c));
    L.mp = std::max(L.mp, round16(a[i].p1.o));
    L.np = std::max(L.np, round16(a[i].p2.o));
  }
  return L;
}
}  // namespace

bool dwpwpw_group_applies(const DwPwPwArgs* a, int count) {
  if (count < 1 || count > kMaxConvGroup) return false;
  for (int i = 0; i < count; ++i)
    if (!dwpwpw_applies(a[i].d, a[i].p1, a[i].p2) || a[i].p2.out_f32 != a[0].p2.out_f32) return false;
  return group_layout(a, count).bytes(a[0].p2.out_f32 ? 4 : 2) <= max_smem_optin();
}

void dw_pw_pw_conv2d(const DwPwPwArgs* a, int count, void* stream) {
  if (!dwpwpw_group_applies(a, count))
    throw Error(std::string("conv tactic ") + (count > 1 ? "group:dw+pw+pw" : "dw+pw+pw") +
                " does not apply to these depthwise + 1x1 + 1x1 chains");
  HeadGroup g{};
  g.L = group_layout(a, count);
  int tiles = 1;
  for (int i = 0; i < count; ++i) {
    const DwPwPwArgs& q = a[i];
    if (!aligned16(q.x) || !aligned16(q.w1)) throw Error("internal: dw+pw+pw buffers must be 16-byte aligned");
    g.a[i] = q;
    tiles = std::max(tiles, q.d.n * ((q.d.oh + kHeadTile - 1) / kHeadTile) * ((q.d.ow + kHeadTile - 1) / kHeadTile));
  }
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  const std::string what = count > 1 ? "group:dw+pw+pw" : "dw+pw+pw";
  auto go = [&](auto kernel) {
    // As many blocks as the GPU holds at once (each stages the filters once and walks its tiles),
    // never more than a member has tiles.
    const size_t smem = g.L.bytes(a[0].p2.out_f32 ? 4 : 2);
    reserve_smem(what, kernel, smem);  // before the occupancy query, which counts with it
    const int resident = std::max(1, blocks_per_sm(kernel, kHeadThreads, smem) * sm_count() / count);
    const dim3 grid(static_cast<unsigned>(std::min(tiles, resident)), 1, static_cast<unsigned>(count));
    launch_reserved(what, kernel, grid, kHeadThreads, smem, s, g);
  };
  // MoveNet's branches (24 -> 96 -> 17, 34 or 1 channels; a group: the widest) compiled for their
  // layout; any other through the general kernel.
  const bool f32 = a[0].p2.out_f32;
  const HeadLayout& L = g.L;
  if (L.kp == 32 && L.mp == 96 && L.np == 16) f32 ? go(dw_pw_pw_kernel<float, 32, 96, 16>) : go(dw_pw_pw_kernel<__half, 32, 96, 16>);
  else if (L.kp == 32 && L.mp == 96 && L.np == 32) f32 ? go(dw_pw_pw_kernel<float, 32, 96, 32>) : go(dw_pw_pw_kernel<__half, 32, 96, 32>);
  else if (L.kp == 32 && L.mp == 96 && L.np == 48) f32 ? go(dw_pw_pw_kernel<float, 32, 96, 48>) : go(dw_pw_pw_kernel<__half, 32, 96, 48>);
  else f32 ? go(dw_pw_pw_kernel<float, 0, 0, 0>) : go(dw_pw_pw_kernel<__half, 0, 0, 0>);
  check_launch("dw_pw_pw_conv2d");
}

}  // namespace posert::cuda
