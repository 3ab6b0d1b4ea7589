// The 1x1 expansion and the 3x3 depthwise layer of a MobileNetV2 block as one kernel (tactic
// kDwPwDw): the expanded tensor, six times wider than the block's input, stays in shared memory
// instead of being written by one kernel and read back by the next.
#include <algorithm>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_kernels.h"

namespace posert::cuda {

namespace {

constexpr int kPwDwThreads = 192;  // 6 warps: one thread per (8 channels, run of R outputs) of the tile
constexpr int kPwDwMC = 48;  // expanded channels per chunk (MobileNetV2's expansions are multiples of 48)

// The output tile of stride S: TH x TW depthwise outputs of one image, reached from an IH x IW
// halo of input pixels; the halo's P pixels are the GEMM's rows, in MT tiles of 16 (PR rows).
template <int S>
struct PwDwGeo {
  static constexpr int TH = 8, TW = S == 1 ? 16 : 8;
  static constexpr int R = TW / 4;            // outputs per thread along a row (4 runs per row)
  static constexpr int IH = (TH - 1) * S + 3, IW = (TW - 1) * S + 3;
  static constexpr int P = IH * IW, MT = (P + 15) / 16, PR = MT * 16;
  static constexpr int ES = kPwDwMC + 8;  // row stride (halves) of the expanded tile and the filter chunk
};

struct PwDwArgs {
  const __half* x;   // [n, h, w, c]
  const __half* we;  // [c, m]
  const float* be;   // [m] or null
  const __half* wd;  // [3, 3, m]
  const float* bd;   // [m] or null
  __half* y;         // [n, oh, ow, m]
  int n, h, w, c, m, oh, ow, pad_top, pad_left, act_e, act_d;
  int tiles_x, tiles_y, chunks_per_block;
};

// The input's channels padded to the MMA's K step, and the row stride (halves) of the staged input
// tile: 16-byte rows an odd number of 16-byte units apart, so ldmatrix reads 8 rows without bank
// conflicts.
__host__ __device__ inline int pwdw_kp(int c) { return (c + 15) / 16 * 16; }

template <int S>
size_t pwdw_smem(int c) {
  using G = PwDwGeo<S>;
  const size_t kp = static_cast<size_t>(pwdw_kp(c));
  return sizeof(__half) * (G::PR * (kp + 8) + 2 * kp * G::ES + static_cast<size_t>(G::P) * G::ES) +
         sizeof(float) * 2 * 11 * kPwDwMC;
}

// One block: a TH x TW tile of depthwise outputs of one image, for chunks_per_block chunks of
// kPwDwMC channels (blockIdx.y picks which). The block stages the input pixels of the tile's halo
// once (all c channels, zero outside the image and past c), then per chunk: the expansion on the
// tensor cores (halo pixels x chunk, K = c), act_e(acc + be) rounded to half into shared memory
// (zero for halo pixels outside the image: the depthwise layer's padding), then the depthwise
// layer from there with dw3x3_rows_kernel's arithmetic and reuse (each thread R outputs of a row,
// reading the expanded pixels they share once; float sums in the order ky, kx; + bd; act_d;
// rounded to half). The next chunk's filters are fetched while the depthwise part runs (two
// buffers). Filters go in before pdl_wait(): they were written before the graph ran.
// RELU6: both activations are ReLU6 (every MobileNetV2 block), compiled in; otherwise read from
// the arguments at run time.
template <int S, bool RELU6>
__global__ void __launch_bounds__(kPwDwThreads, S == 2 ? 4 : 3) pw_dw_kernel(const PwDwArgs a) {
  using G = PwDwGeo<S>;
  constexpr int MC = kPwDwMC, NT = MC / 8, ES = G::ES;
  extern __shared__ __align__(16) unsigned char dyn[];
  const int Kp = pwdw_kp(a.c), XS = Kp + 8;
  __half* xs = reinterpret_cast<__half*>(dyn);  // [PR][XS] the halo's input pixels
  __half* ws0 = xs + G::PR * XS;                // 2 x [Kp][ES] the expansion filter's chunk (k-major)
  __half* es = ws0 + 2 * Kp * ES;               // [P][ES] the expanded chunk
  float* fs0 = reinterpret_cast<float*>(es + G::P * ES);  // 2 x { wd [9][MC], be [MC], bd [MC] } as float
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int tiles = a.tiles_x * a.tiles_y;
  const int n = blockIdx.x / tiles, t = blockIdx.x % tiles;
  const int oy0 = t / a.tiles_x * G::TH, ox0 = t % a.tiles_x * G::TW;
  const int iy0 = oy0 * S - a.pad_top, ix0 = ox0 * S - a.pad_left;
  const int chunks = (a.m + MC - 1) / MC;
  const int act_e = RELU6 ? static_cast<int>(Act::Relu6) : a.act_e, act_d = RELU6 ? static_cast<int>(Act::Relu6) : a.act_d;
  const int c_first = blockIdx.y * a.chunks_per_block, c_end = min(chunks, c_first + a.chunks_per_block);

  // A chunk's filters: the expansion's through cp.async; the depthwise filter (as float) and the two
  // biases through registers: fetch_small() issues the loads (at most one 16-byte or one 4-byte
  // load per thread), put_small() stores them, so a chunk's loads can be issued before the
  // expansion of the chunk before it and stored after its depthwise part, their latency hidden.
  auto stage_expansion = [&](int chunk, int buf) {
    const int m0 = chunk * MC;
    __half* ws = ws0 + buf * Kp * ES;
    for (int i = tid; i < Kp * NT; i += kPwDwThreads) {
      const int k = i / NT, g = i % NT * 8;
      const bool in = k < a.c && m0 + g < a.m;
      cp_async16(ws + k * ES + g, in ? a.we + k * a.m + m0 + g : a.we, in);
    }
  };
  // Thread roles: tid < 9 * NT: 8 taps-channels of the depthwise filter; the next MC threads: be;
  // the MC after them: bd (192 threads cover 54 + 48 + 48).
  static_assert(9 * NT + 2 * MC <= kPwDwThreads, "one small filter load per thread");
  uint4 wd_next = make_uint4(0, 0, 0, 0);
  float b_next = 0.0f;
  auto fetch_small = [&](int chunk) {
    const int m0 = chunk * MC;
    if (tid < 9 * NT) {
      const int tap = tid / NT, g = tid % NT * 8;
      wd_next = m0 + g < a.m ? *reinterpret_cast<const uint4*>(a.wd + tap * a.m + m0 + g) : make_uint4(0, 0, 0, 0);
    } else if (tid < 9 * NT + MC) {
      const int m = m0 + tid - 9 * NT;
      b_next = m < a.m && a.be ? a.be[m] : 0.0f;
    } else if (tid < 9 * NT + 2 * MC) {
      const int m = m0 + tid - 9 * NT - MC;
      b_next = m < a.m && a.bd ? a.bd[m] : 0.0f;
    }
  };
  auto put_small = [&](int buf) {
    float* fs = fs0 + buf * 11 * MC;
    if (tid < 9 * NT) {
      const int tap = tid / NT, g = tid % NT * 8;
      const __half2* h2 = reinterpret_cast<const __half2*>(&wd_next);
      float4 lo, hi;
      float2 f = __half22float2(h2[0]);
      lo.x = f.x, lo.y = f.y;
      f = __half22float2(h2[1]);
      lo.z = f.x, lo.w = f.y;
      f = __half22float2(h2[2]);
      hi.x = f.x, hi.y = f.y;
      f = __half22float2(h2[3]);
      hi.z = f.x, hi.w = f.y;
      *reinterpret_cast<float4*>(fs + tap * MC + g) = lo;
      *reinterpret_cast<float4*>(fs + tap * MC + g + 4) = hi;
    } else if (tid < 9 * NT + 2 * MC) {
      fs[9 * MC + tid - 9 * NT] = b_next;  // be at 9 * MC, bd at 10 * MC: consecutive roles
    }
  };
  if (c_first < c_end) {
    stage_expansion(c_first, 0);
    fetch_small(c_first);
    put_small(0);
  }
  pdl_wait();
  if (c_first >= c_end) return;
  const int groups = Kp / 8;
  for (int i = tid; i < G::PR * groups; i += kPwDwThreads) {
    const int r = i / groups, g = i % groups * 8;
    const int iy = iy0 + r / G::IW, ix = ix0 + r % G::IW;
    const bool in = r < G::P && g < a.c && iy >= 0 && iy < a.h && ix >= 0 && ix < a.w;
    cp_async16(xs + r * XS + g, in ? a.x + ((n * a.h + iy) * a.w + ix) * a.c + g : a.x, in);
  }
  cp_async_wait_all();
  __syncthreads();

  for (int chunk = c_first; chunk < c_end; ++chunk) {
    const int buf = (chunk - c_first) & 1;
    const __half* ws = ws0 + buf * Kp * ES;
    const float* fs = fs0 + buf * 11 * MC;
    if (chunk + 1 < c_end) {  // the next chunk's filters: they land while this chunk is computed
      stage_expansion(chunk + 1, buf ^ 1);
      fetch_small(chunk + 1);
    }
    // The expansion: warp w computes the halo rows of m-tiles w, w + 6, ... for the whole chunk.
    // This lane's expansion bias: columns 2 * (lane % 4) + {0, 1} of each 8-column slice.
    float2 be2[NT];
#pragma unroll
    for (int j = 0; j < NT; ++j) be2[j] = *reinterpret_cast<const float2*>(fs + 9 * MC + j * 8 + (lane & 3) * 2);
    for (int mt = warp; mt < G::MT; mt += kPwDwThreads / 32) {
      float acc[NT][4];
#pragma unroll
      for (int j = 0; j < NT; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
      warp_gemm(acc, NT, xs + mt * 16 * XS, XS, ws, ES, Kp, lane);
      // Rows r and r + 8 of the m-tile; halo pixels outside the image store zero (the depthwise
      // layer's padding). With ReLU6 the clamp runs on the rounded half2: rounding is monotonic and
      // keeps 0 and 6, so the values are those of clamping first (a -0 for a tiny negative sum
      // instead of +0 is possible, and only ever multiplied into the depthwise sums, where it
      // changes nothing).
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int r = mt * 16 + (lane >> 2) + h * 8;
        const int iy = iy0 + r / G::IW, ix = ix0 + r % G::IW;
        const bool inside = iy >= 0 && iy < a.h && ix >= 0 && ix < a.w;
        __half2 out[NT];
#pragma unroll
        for (int j = 0; j < NT; ++j) {
          __half2 v;
          if constexpr (RELU6) {
            v = __floats2half2_rn(acc[j][2 * h] + be2[j].x, acc[j][2 * h + 1] + be2[j].y);
            v = __hmin2(__hmax2(v, __float2half2_rn(0.0f)), __float2half2_rn(6.0f));
          } else {
            v = __floats2half2_rn(apply_act(acc[j][2 * h] + be2[j].x, act_e), apply_act(acc[j][2 * h + 1] + be2[j].y, act_e));
          }
          out[j] = inside ? v : __float2half2_rn(0.0f);
        }
        if (r < G::P) {
#pragma unroll
          for (int j = 0; j < NT; ++j) *reinterpret_cast<__half2*>(es + r * ES + j * 8 + (lane & 3) * 2) = out[j];
        }
      }
    }
    __syncthreads();
    // The depthwise layer: thread = (8 channels g, row ty, run of R outputs), 6 x 8 x 4 = 192 of
    // them. Per row of taps it reads the NC expanded pixels its R outputs share once.
    {
      static_assert(NT * G::TH * 4 == kPwDwThreads, "one depthwise task per thread");
      // Runs numbered down the rows first: a warp's 32 lanes then read runs of consecutive rows,
      // 7 * S * IW 16-byte units apart (6 mod 8 at stride 1 and 2), instead of runs of one row,
      // 28 units apart (every other one on the same banks): the 16-byte loads of the expanded tile
      // spread over all 8 bank groups (4 wavefronts a load, not 5 or 6).
      const int g = tid % NT, run = tid / NT, ty = run % G::TH, tx0 = run / G::TH * G::R;
      const int m = chunk * MC + g * 8;
      float acc[G::R][8];
#pragma unroll
      for (int r = 0; r < G::R; ++r)
#pragma unroll
        for (int c = 0; c < 8; ++c) acc[r][c] = 0.0f;
      dw3x3_run8<G::R, S>(es + (ty * S * G::IW + tx0 * S) * ES + g * 8, G::IW * ES, ES, fs + g * 8, MC, acc);
      const int oy = oy0 + ty;
      if (oy < a.oh && m < a.m) {
#pragma unroll
        for (int r = 0; r < G::R; ++r) {
          const int ox = ox0 + tx0 + r;
          if (ox >= a.ow) break;
          uint4 out;
          __half2* h2 = reinterpret_cast<__half2*>(&out);
#pragma unroll
          for (int c = 0; c < 4; ++c)
            h2[c] = __floats2half2_rn(apply_act(acc[r][2 * c] + fs[10 * MC + g * 8 + 2 * c], act_d),
                                      apply_act(acc[r][2 * c + 1] + fs[10 * MC + g * 8 + 2 * c + 1], act_d));
          *reinterpret_cast<uint4*>(a.y + ((n * a.oh + oy) * a.ow + ox) * a.m + m) = out;
        }
      }
    }
    if (chunk + 1 < c_end) put_small(buf ^ 1);
    cp_async_wait_all();
    __syncthreads();
  }
}

template <int S>
void launch_pw_dw(PwDwArgs a, cudaStream_t s) {
  using G = PwDwGeo<S>;
  a.tiles_x = (a.ow + G::TW - 1) / G::TW;
  a.tiles_y = (a.oh + G::TH - 1) / G::TH;
  const int64_t tiles = static_cast<int64_t>(a.n) * a.tiles_x * a.tiles_y;
  if (tiles > (int64_t{1} << 31) - 1) throw Error("pw+dw: too many tiles");
  // All chunks of a tile in one block (its input staged once) unless that leaves the GPU with
  // fewer than about 4 blocks per SM (small images, small batches): then the chunks are spread.
  const int chunks = (a.m + kPwDwMC - 1) / kPwDwMC;
  const int64_t want = int64_t{4} * sm_count();
  const int spread = static_cast<int>(std::min<int64_t>(chunks, std::max<int64_t>(1, (want + tiles - 1) / tiles)));
  a.chunks_per_block = (chunks + spread - 1) / spread;
  const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>((chunks + a.chunks_per_block - 1) / a.chunks_per_block));
  const bool relu6 = a.act_e == static_cast<int>(Act::Relu6) && a.act_d == static_cast<int>(Act::Relu6);
  launch_smem("pw+dw (" + std::to_string(a.c) + " -> " + std::to_string(a.m) + " channels, stride " + std::to_string(S) + ")",
              relu6 ? pw_dw_kernel<S, true> : pw_dw_kernel<S, false>, grid, kPwDwThreads, pwdw_smem<S>(a.c), s, a);
}

}  // namespace

bool pwdw_applies(const ConvParams& e, const ConvParams& d, bool half) {
  if (!half || !fits_int32(e) || !fits_int32(d) || !is_pointwise(e) || e.c % 8 != 0 || e.o % 8 != 0 || e.out_f32) return false;
  if (d.multiplier != 1 || d.kh != 3 || d.kw != 3 || d.dh != 1 || d.dw != 1 || d.sh != d.sw || (d.sh != 1 && d.sh != 2) ||
      d.out_f32)
    return false;
  if (d.c != e.o || d.o != d.c || d.n != e.n || d.h != e.oh || d.w != e.ow || d.oh <= 0 || d.ow <= 0) return false;
  return (d.sh == 1 ? pwdw_smem<1>(e.c) : pwdw_smem<2>(e.c)) <= max_smem_optin();
}

bool pwdw_offered(const ConvParams& e, const ConvParams& d, bool half) {
  if (!pwdw_applies(e, d, half)) return false;
  const int tw = d.sh == 1 ? PwDwGeo<1>::TW : PwDwGeo<2>::TW, th = d.sh == 1 ? PwDwGeo<1>::TH : PwDwGeo<2>::TH;
  const int64_t tiles = static_cast<int64_t>(d.n) * ((d.oh + th - 1) / th) * ((d.ow + tw - 1) / tw);
  return tiles >= int64_t{2} * sm_count();
}

void pw_dw_conv2d(const void* x, const void* we, const float* be, const ConvParams& e, const void* wd, const float* bd,
                  const ConvParams& d, void* y, void* stream) {
  if (!pwdw_applies(e, d, true)) throw Error("depthwise tactic pw+dw does not apply to this 1x1 + depthwise pair");
  if (!aligned16(x) || !aligned16(we) || !aligned16(wd) || !aligned16(y)) throw Error("internal: pw+dw buffers must be 16-byte aligned");
  PwDwArgs a{};
  a.x = static_cast<const __half*>(x);
  a.we = static_cast<const __half*>(we);
  a.be = be;
  a.wd = static_cast<const __half*>(wd);
  a.bd = bd;
  a.y = static_cast<__half*>(y);
  a.n = e.n, a.h = e.h, a.w = e.w, a.c = e.c, a.m = e.o;
  a.oh = d.oh, a.ow = d.ow, a.pad_top = d.pad_top, a.pad_left = d.pad_left;
  a.act_e = static_cast<int>(e.act), a.act_d = static_cast<int>(d.act);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (d.sh == 1) launch_pw_dw<1>(a, s);
  else launch_pw_dw<2>(a, s);
  check_launch("pw_dw_conv2d");
}

}  // namespace posert::cuda
