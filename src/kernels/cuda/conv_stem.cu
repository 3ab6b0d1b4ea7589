// A MobileNetV2 network's stem in one kernel: the first convolution (3x3 on the 3 image channels),
// the 3x3 depthwise layer after it and the 1x1 projection after that (tactic kConvStemDwPw, see
// cuda_kernels.h). Apart, the three layers write and read the first convolution's output and the
// depthwise output, the largest tensors of the network (lightning: 96x96x32 half per image, twice
// each); here neither leaves the SM.
//
// A block of 8 warps computes a tile of 14x14 output pixels of one image. Per tile:
//  1. Its threads stage the input rows and columns that the 16x16 first-convolution outputs of the
//     tile and its one-pixel rim reach, as half, zero outside the image (the convolution's padding).
//  2. The first convolution as an implicit GEMM on the tensor cores (as mma3x3 in conv_mma3x3.cu:
//     K = 27 taps padded to 32, two m16n8k16 steps): each warp computes two rows of 16 pixels,
//     adds the bias, applies the activation, zeroes the pixels outside the image (the depthwise
//     layer's padding) and stores them as half (the value the layer would have stored) in shared
//     memory, rows of the channels padded to a multiple of 16 (the padding zero).
//  3. Each warp takes 16 output pixels at a time (13 fragments of rows cover the 196) through the
//     depthwise layer and the projection without leaving its registers:
//     - the depthwise layer on the tensor cores: for each of the 9 taps and each 16 channels, an
//       ldmatrix of the 16 pixels' shifted inputs (one row address per lane, so the pixels need
//       not be evenly spaced) times a diagonal filter fragment (channel c of the tap on the
//       diagonal, built once per block in shared memory): two m16n8k16 MMAs, fp32 sums, half the
//       MMA's products zero, yet far fewer instructions than 8 conversions and 8 FMAs per tap on
//       the CUDA cores;
//     - bias, activation, rounding to half (the value the depthwise layer would have stored), and
//       the accumulators of channel tiles 2s and 2s + 1 are exactly the A fragment of the
//       projection's k step s (the MMA's accumulator and A layouts line up);
//     - the projection's MMAs and epilogue (bias, activation) into an output tile in shared
//     memory, which the block stores to y with 16-byte stores.
// The filters (transposed, or as diagonal fragments) and the biases stay in shared memory for the
// block's life (it loops over tiles). Rows of every shared-memory tile are a number of 32-bit
// words that is 4 mod 8 apart, so the fragment loads and stores (8 rows x 4 words) and the
// ldmatrix rows (8 consecutive pixels) fall on distinct banks.
//
// The sums are the unfused layers' products in another order (the tensor cores'), so the results
// are close to, not bit-identical with, the three layers apart; the tests compare them with the
// reference.
#include <algorithm>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_kernels.h"

namespace posert::cuda {

namespace {

constexpr int kTile = 14;                 // output tile: kTile x kTile pixels
constexpr int kC1Side = kTile + 2;        // first-convolution outputs per tile side (with the rim)
constexpr int kC1Pix = kC1Side * kC1Side; // 256
constexpr int kOutPix = kTile * kTile;    // 196
constexpr int kOutRows = 208;             // kOutPix padded to whole m16 fragments (13)
constexpr int kWarps = 8;
constexpr int kThreads = 32 * kWarps;
constexpr int kTaps = 27;                 // 3x3 x 3 channels
constexpr int kTapsPadded = 32;

// Halves per shared-memory row holding n (a multiple of 8) halves: n + 8 or n + 16, whichever
// makes the row 4 mod 8 words long.
__host__ __device__ constexpr int row_halves(int n) { return (n / 8) % 2 == 0 ? n + 8 : n + 16; }
__host__ __device__ constexpr int round16(int n) { return (n + 15) / 16 * 16; }
// Input rows (columns) the first convolution's kC1Side outputs reach at stride s (3x3, no dilation).
__host__ __device__ constexpr int stem_span(int s) { return (kC1Side - 1) * s + 3; }

// The (first-convolution outputs / 8, projection outputs / 8) pairs compiled: MobileNetV2's stems
// at width multipliers 0.35-0.5 (16 -> 8), 0.75 (24 -> 16), 1.0 (32 -> 16), 1.3-1.4 (48 -> 24),
// 1.75 (56 -> 32; MoveNet Thunder).
constexpr bool stem_compiled(int c1, int o) {
  return (c1 == 16 && o == 8) || (c1 == 24 && o == 16) || (c1 == 32 && o == 16) || (c1 == 48 && o == 24) || (c1 == 56 && o == 32);
}

struct StemSmem {
  int w1t, wpt, wdb, bias, xs, c1, ot;  // byte offsets
  int total;
};

__host__ __device__ constexpr int align16(int b) { return (b + 15) / 16 * 16; }

__host__ __device__ inline StemSmem stem_smem_layout(int c1, int o, int stride) {
  const int kp = round16(c1);
  StemSmem s{};
  int at = 0;
  s.w1t = at, at = align16(at + c1 * row_halves(kTapsPadded) * 2);  // [c1][k]: conv1 filter, k-contiguous
  s.wpt = at, at = align16(at + o * row_halves(kp) * 2);             // [o][k]: projection filter, k-contiguous
  s.wdb = at, at = align16(at + 9 * (kp / 16) * 2 * 32 * 4);         // [tap][k16][2][lane]: diagonal B fragments
  s.bias = at, at = align16(at + (2 * kp + o) * 4);                  // float: conv1 [kp], depthwise [kp], projection [o]
  s.xs = at, at = align16(at + stem_span(stride) * stem_span(stride) * 3 * 2);
  s.c1 = at, at = align16(at + kC1Pix * row_halves(kp) * 2);         // the first convolution's 16x16 tile
  s.ot = at, at = align16(at + kOutPix * row_halves(o) * 2);         // the projection's 14x14 tile
  s.total = at;
  return s;
}

__device__ __forceinline__ uint32_t ld32(const __half* p) { return *reinterpret_cast<const uint32_t*>(p); }
__device__ __forceinline__ uint32_t pack_half2(float lo, float hi) {
  const __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}

template <int NJ1, int NO>
__global__ void __launch_bounds__(kThreads, 3) conv_stem_kernel(const StemArgs a, bool vec_out) {
  constexpr int C1 = 8 * NJ1, O = 8 * NO, KP = round16(C1), KS = KP / 16;
  constexpr int S1 = row_halves(KP), SO = row_halves(O), SW1 = row_halves(kTapsPadded), SWP = row_halves(KP);
  extern __shared__ __align__(16) unsigned char smem_stem[];
  const ConvParams& c = a.c;  // first convolution
  const StemSmem L = stem_smem_layout(C1, O, c.sh);
  __half* w1t = reinterpret_cast<__half*>(smem_stem + L.w1t);
  __half* wpt = reinterpret_cast<__half*>(smem_stem + L.wpt);
  uint32_t* wdb = reinterpret_cast<uint32_t*>(smem_stem + L.wdb);
  float* b1s = reinterpret_cast<float*>(smem_stem + L.bias);
  float* bds = b1s + KP;
  float* bps = bds + KP;
  __half* xs = reinterpret_cast<__half*>(smem_stem + L.xs);
  __half* c1s = reinterpret_cast<__half*>(smem_stem + L.c1);
  __half* ot = reinterpret_cast<__half*>(smem_stem + L.ot);
  const __half* x = static_cast<const __half*>(a.x);
  const __half* w1 = static_cast<const __half*>(a.w1);
  const __half* wd = static_cast<const __half*>(a.wd);
  const __half* wp = static_cast<const __half*>(a.wp);
  __half* y = static_cast<__half*>(a.y);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  const __half zero = __float2half_rn(0.0f);

  // Weights and biases (written before the graph runs): loaded before the wait.
  for (int q = tid; q < C1 * kTapsPadded; q += kThreads) {
    const int oc = q / kTapsPadded, k = q - oc * kTapsPadded;
    w1t[oc * SW1 + k] = k < kTaps ? w1[k * C1 + oc] : zero;
  }
  for (int q = tid; q < O * KP; q += kThreads) {
    const int oc = q / KP, k = q - oc * KP;
    wpt[oc * SWP + k] = k < C1 ? wp[k * O + oc] : zero;
  }
  // The depthwise filter as B fragments of m16n8k16 for channel block h (16 channels) and tap:
  // jj = 0 is the n tile of channels 16h..16h+7, jj = 1 that of 16h+8..16h+15. B[k][n] is the
  // tap's weight of channel k where k == n, else 0; lane (g, t) holds rows 2t, 2t+1 (jj = 0, b0)
  // or 8 + 2t, +1 (jj = 1, b1) of column g, so only lanes with g - 2t in {0, 1} hold a weight.
  for (int q = tid; q < 9 * KS * 2 * 32; q += kThreads) {
    const int l = q & 31, jj = (q >> 5) & 1, h = (q >> 6) % KS, tap = q / (64 * KS);
    const int lg = l >> 2, lt = l & 3, e = lg - 2 * lt, ch = 16 * h + 8 * jj + lg;
    const __half v = (e == 0 || e == 1) && ch < C1 ? wd[tap * C1 + ch] : zero;
    const uint32_t bits = __half_as_ushort(v);
    wdb[q] = e == 0 ? bits : e == 1 ? bits << 16 : 0u;
  }
  for (int q = tid; q < KP; q += kThreads) {
    b1s[q] = a.b1 && q < C1 ? a.b1[q] : 0.0f;
    bds[q] = a.bd && q < C1 ? a.bd[q] : 0.0f;
  }
  for (int q = tid; q < O; q += kThreads) bps[q] = a.bp ? a.bp[q] : 0.0f;
  // The first convolution's tile past C1 channels (read by the depthwise MMAs): zero for good.
  if constexpr (KP > C1)
    for (int q = tid; q < kC1Pix * (KP - C1); q += kThreads) {
      const int px = q / (KP - C1), k = q - px * (KP - C1);
      c1s[px * S1 + C1 + k] = zero;
    }
  const int span = stem_span(c.sh), row_len = span * 3, staged = span * row_len;
  int koff[2][2][2];  // this thread's k indices of the first convolution in the staged input
  conv3x3c3_koff(koff, t, row_len, 1, 1);
  // Staging walks the staged values q = tid, tid + 256, ...: row r0 + i * dr (+1 on a carry), value k.
  const int r0 = tid / row_len, k0 = tid - r0 * row_len, dr = kThreads / row_len, dk = kThreads - dr * row_len;
  // This lane's ldmatrix row within a fragment of 16 output pixels, and its 8-channel offset.
  const int lrow = (lane & 7) + ((lane >> 3) & 1) * 8, lkof = (lane >> 4) * 8;
  pdl_wait();

  const int oh = a.q.oh, ow = a.q.ow;  // the projection's output = the depthwise layer's = the first convolution's
  const int tiles_x = (ow + kTile - 1) / kTile, tiles_y = (oh + kTile - 1) / kTile, tiles = c.n * tiles_x * tiles_y;
  const int act1 = static_cast<int>(c.act), actd = static_cast<int>(a.d.act), actp = static_cast<int>(a.q.act);
  for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const int tx = tile % tiles_x, ty = (tile / tiles_x) % tiles_y, n = tile / (tiles_x * tiles_y);
    const int oy0 = ty * kTile, ox0 = tx * kTile;
    // 1. The input the tile's first-convolution outputs (rows and columns oy0 - 1 .. oy0 + 14) reach.
    {
      const int iy0 = (oy0 - 1) * c.sh - c.pad_top, ix0 = (ox0 - 1) * c.sw - c.pad_left;
      const __half* xn = x + static_cast<size_t>(n) * c.h * c.w * 3;
      int r = r0, k = k0;
      for (int q = tid; q < staged; q += kThreads) {
        const int col = k / 3, ch = k - col * 3, iy = iy0 + r, ix = ix0 + col;
        xs[q] = (iy >= 0 && iy < c.h && ix >= 0 && ix < c.w) ? xn[(iy * c.w + ix) * 3 + ch] : zero;
        r += dr, k += dk;
        if (k >= row_len) k -= row_len, ++r;
      }
    }
    __syncthreads();
    // 2. The first convolution: warp w computes rows w and w + 8 of the 16x16 tile.
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int cy = warp + 8 * h;
      float acc[NJ1][4];
#pragma unroll
      for (int j = 0; j < NJ1; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
      const __half* p0 = xs + cy * c.sh * row_len + g * c.sw * 3;  // fragment rows g and g + 8: columns g, g + 8
      const __half* p1 = p0 + 8 * c.sw * 3;
#pragma unroll
      for (int s = 0; s < 2; ++s) {
        uint32_t af[4];
        conv3x3c3_afrag(af, p0, p1, koff, s);
#pragma unroll
        for (int j = 0; j < NJ1; ++j) {
          const __half* bp = w1t + (8 * j + g) * SW1 + 16 * s + 2 * t;
          const uint32_t bf[2] = {ld32(bp), ld32(bp + 8)};
          mma_16816(acc[j], af, bf);
        }
      }
      const int Y = oy0 - 1 + cy;
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        const int cx = g + 8 * hh, X = ox0 - 1 + cx;
        const bool in = Y >= 0 && Y < oh && X >= 0 && X < ow;
#pragma unroll
        for (int j = 0; j < NJ1; ++j) {
          const int oc = 8 * j + 2 * t;
          const float v0 = in ? apply_act(acc[j][2 * hh] + b1s[oc], act1) : 0.0f;
          const float v1 = in ? apply_act(acc[j][2 * hh + 1] + b1s[oc + 1], act1) : 0.0f;
          *reinterpret_cast<uint32_t*>(c1s + (cy * kC1Side + cx) * S1 + oc) = pack_half2(v0, v1);
        }
      }
    }
    __syncthreads();
    // 3. Per fragment of 16 output pixels: the depthwise layer, then the projection, in registers.
    for (int m = warp; m < kOutRows / 16; m += kWarps) {
      const int p = min(16 * m + lrow, kOutPix - 1), ly = p / kTile, lx = p - ly * kTile;  // rows past 195: copies, dropped
      const __half* arow = c1s + (ly * kC1Side + lx) * S1 + lkof;
      float acc[2 * KS][4];
#pragma unroll
      for (int j = 0; j < 2 * KS; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
#pragma unroll
      for (int tap = 0; tap < 9; ++tap) {
        const int dy = tap / 3, dx = tap - dy * 3;
#pragma unroll
        for (int h = 0; h < KS; ++h) {
          uint32_t af[4];
          ldmatrix_x4(af, arow + (dy * kC1Side + dx) * S1 + 16 * h);
          const uint32_t* bq = wdb + ((tap * KS + h) * 2) * 32 + lane;
          const uint32_t d0[2] = {bq[0], 0u}, d1[2] = {0u, bq[32]};
          mma_16816(acc[2 * h], af, d0);
          mma_16816(acc[2 * h + 1], af, d1);
        }
      }
      float accp[NO][4];
#pragma unroll
      for (int j = 0; j < NO; ++j) accp[j][0] = accp[j][1] = accp[j][2] = accp[j][3] = 0.0f;
#pragma unroll
      for (int s = 0; s < KS; ++s) {
        // The depthwise outputs of channels 16s + 2t, +1 (tile 2s) and 16s + 8 + 2t, +1 (tile 2s + 1),
        // rows g and g + 8, as half: the A fragment of the projection's k step s.
        const int c0 = 16 * s + 2 * t, c8 = c0 + 8;
        const uint32_t af[4] = {pack_half2(apply_act(acc[2 * s][0] + bds[c0], actd), apply_act(acc[2 * s][1] + bds[c0 + 1], actd)),
                                pack_half2(apply_act(acc[2 * s][2] + bds[c0], actd), apply_act(acc[2 * s][3] + bds[c0 + 1], actd)),
                                pack_half2(apply_act(acc[2 * s + 1][0] + bds[c8], actd), apply_act(acc[2 * s + 1][1] + bds[c8 + 1], actd)),
                                pack_half2(apply_act(acc[2 * s + 1][2] + bds[c8], actd), apply_act(acc[2 * s + 1][3] + bds[c8 + 1], actd))};
#pragma unroll
        for (int j = 0; j < NO; ++j) {
          const __half* bp = wpt + (8 * j + g) * SWP + 16 * s + 2 * t;
          const uint32_t bf[2] = {ld32(bp), ld32(bp + 8)};
          mma_16816(accp[j], af, bf);
        }
      }
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        const int px = 16 * m + g + 8 * hh;
        if (px >= kOutPix) continue;
#pragma unroll
        for (int j = 0; j < NO; ++j) {
          const int oc = 8 * j + 2 * t;
          *reinterpret_cast<uint32_t*>(ot + px * SO + oc) =
              pack_half2(apply_act(accp[j][2 * hh] + bps[oc], actp), apply_act(accp[j][2 * hh + 1] + bps[oc + 1], actp));
        }
      }
    }
    __syncthreads();
    // The tile's outputs: each output row's in-image pixels are one contiguous run of y.
    __half* yn = y + static_cast<size_t>(n) * oh * ow * O;
    if (vec_out) {
      for (int q = tid; q < kOutPix * NO; q += kThreads) {
        const int px = q / NO, part = q - px * NO, ly = px / kTile, lx = px - ly * kTile;
        const int oy = oy0 + ly, ox = ox0 + lx;
        if (oy < oh && ox < ow)
          reinterpret_cast<uint4*>(yn + (oy * ow + ox) * O)[part] = *reinterpret_cast<const uint4*>(ot + px * SO + 8 * part);
      }
    } else {
      for (int q = tid; q < kOutPix * O; q += kThreads) {
        const int px = q / O, oc = q - px * O, ly = px / kTile, lx = px - ly * kTile;
        const int oy = oy0 + ly, ox = ox0 + lx;
        if (oy < oh && ox < ow) yn[(oy * ow + ox) * O + oc] = ot[px * SO + oc];
      }
    }
    // The next tile writes xs before its first barrier (nothing reads xs after this tile's second),
    // c1s after it (the ldmatrix reads ended before this tile's third) and ot after its second
    // (when every thread has finished this store loop).
  }
}

template <int NJ1, int NO>
void launch_stem(const StemArgs& a, cudaStream_t s) {
  const StemSmem L = stem_smem_layout(8 * NJ1, 8 * NO, a.c.sh);
  auto kernel = conv_stem_kernel<NJ1, NO>;
  reserve_smem("conv+dw+pw", kernel, static_cast<size_t>(L.total));
  // Blocks that fit the GPU at once (each loads the filters once and loops over tiles), at most
  // one per tile.
  const int per_sm = blocks_per_sm(kernel, kThreads, static_cast<size_t>(L.total));
  const int64_t tiles = static_cast<int64_t>(a.q.n) * ((a.q.oh + kTile - 1) / kTile) * ((a.q.ow + kTile - 1) / kTile);
  const int grid = static_cast<int>(std::min<int64_t>(std::max<int64_t>(tiles, 1), int64_t{per_sm} * sm_count()));
  launch_reserved("conv+dw+pw", kernel, grid, kThreads, static_cast<size_t>(L.total), s, a, aligned16(a.y));
}

}  // namespace

bool stem_applies(const ConvParams& c, const ConvParams& d, const ConvParams& q, bool half) {
  if (!half || c.out_f32 || d.out_f32 || q.out_f32 || !fits_int32(c) || !fits_int32(q)) return false;
  // The first convolution: 3x3 on 3 channels, stride 1 or 2 both ways, no dilation.
  if (c.kh != 3 || c.kw != 3 || c.c != 3 || c.dh != 1 || c.dw != 1 || c.sh != c.sw || (c.sh != 1 && c.sh != 2)) return false;
  if (!stem_compiled(c.o, q.o)) return false;
  // The depthwise layer: 3x3 stride 1, multiplier 1, padding 1 on every side (its output the size of its input).
  if (d.kh != 3 || d.kw != 3 || d.sh != 1 || d.sw != 1 || d.dh != 1 || d.dw != 1 || d.multiplier != 1 || d.pad_top != 1 ||
      d.pad_left != 1 || d.c != c.o || d.h != c.oh || d.w != c.ow || d.oh != d.h || d.ow != d.w || d.n != c.n)
    return false;
  // The projection: 1x1 stride 1 on the depthwise output.
  return is_pointwise(q) && q.c == c.o && q.h == d.oh && q.w == d.ow && q.n == c.n;
}

void stem_conv2d(const StemArgs& a, void* stream) {
  if (!stem_applies(a.c, a.d, a.q, true))
    throw Error("conv tactic conv+dw+pw does not apply to these layers (it needs a half 3x3 convolution on 3 channels at stride "
                "1 or 2 with 16/24/32/48/56 outputs, a 3x3 stride-1 depthwise layer with SAME padding and a 1x1 convolution "
                "with 8/16/16/24/32 outputs)");
  if (a.q.n < 1 || a.q.oh < 1 || a.q.ow < 1) return;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (a.c.o) {
    case 16: launch_stem<2, 1>(a, s); break;
    case 24: launch_stem<3, 2>(a, s); break;
    case 32: launch_stem<4, 2>(a, s); break;
    case 48: launch_stem<6, 3>(a, s); break;
    default: launch_stem<7, 4>(a, s); break;
  }
}

}  // namespace posert::cuda
