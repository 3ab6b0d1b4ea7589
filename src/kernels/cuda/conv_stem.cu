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
//     memory.
//  3. The depthwise layer on the CUDA cores: one thread per pixel and 8 channels, fp32 sums of
//     the 9 taps, the bias, the activation, stored as half (as the depthwise layer would) in
//     shared memory, rows of K = the channels padded to a multiple of 16 (the padding zero).
//  4. The projection as a GEMM on the tensor cores (M = the 196 pixels, padded to 208, N = the
//     output channels, K as above); its epilogue (bias, activation) writes the tile to shared
//     memory, and the block stores it to y with 16-byte stores.
// The filters, transposed for the MMA fragments, and the depthwise weights stay in shared memory
// for the block's life (it loops over tiles). Rows of every shared-memory tile are a number of
// 32-bit words that is 4 mod 8 apart, so the fragment loads and stores (8 rows x 4 words) and the
// depthwise layer's 16-byte loads (8 consecutive pixels) fall on distinct banks.
//
// The sums are the unfused layers' products in another order (the tensor cores' for the 1x1), so
// the results are close to, not bit-identical with, the three layers apart; the tests compare them
// with the reference.
#include <algorithm>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_kernels.h"

namespace posert::cuda {

namespace {

constexpr int kTile = 14;                 // output tile: kTile x kTile pixels
constexpr int kC1Side = kTile + 2;        // first-convolution outputs per tile side (with the rim)
constexpr int kC1Pix = kC1Side * kC1Side; // 256
constexpr int kOutPix = kTile * kTile;    // 196
constexpr int kOutRows = 208;             // kOutPix padded to whole m16 fragments
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
  int w1t, wpt, wd, xs, c1, dwo;  // byte offsets
  int total;
};

__host__ __device__ constexpr int align16(int b) { return (b + 15) / 16 * 16; }

__host__ __device__ inline StemSmem stem_smem_layout(int c1, int o, int stride) {
  const int kp = round16(c1);
  StemSmem s{};
  int at = 0;
  s.w1t = at, at = align16(at + c1 * row_halves(kTapsPadded) * 2);  // [c1][k]: conv1 filter, k-contiguous
  s.wpt = at, at = align16(at + o * row_halves(kp) * 2);             // [o][k]: projection filter, k-contiguous
  s.wd = at, at = align16(at + 9 * c1 * 2);                          // [tap][c1]: depthwise filter
  s.xs = at, at = align16(at + stem_span(stride) * stem_span(stride) * 3 * 2);
  s.c1 = at;
  // The first convolution's tile; later in the tile the projection's output tile, which is smaller.
  const int c1_bytes = kC1Pix * row_halves(c1) * 2, out_bytes = kOutPix * row_halves(o) * 2;
  at = align16(at + (c1_bytes > out_bytes ? c1_bytes : out_bytes));
  s.dwo = at, at = align16(at + kOutRows * row_halves(kp) * 2);
  s.total = at;
  return s;
}

__device__ __forceinline__ uint32_t ld32(const __half* p) { return *reinterpret_cast<const uint32_t*>(p); }

template <int NJ1, int NO>
__global__ void __launch_bounds__(kThreads, 3) conv_stem_kernel(const StemArgs a, bool vec_out) {
  constexpr int C1 = 8 * NJ1, O = 8 * NO, KP = round16(C1), KS = KP / 16;
  constexpr int S1 = row_halves(C1), S2 = row_halves(KP), SO = row_halves(O), SW1 = row_halves(kTapsPadded), SWP = row_halves(KP);
  extern __shared__ __align__(16) unsigned char smem_stem[];
  const ConvParams& c = a.c;  // first convolution
  const StemSmem L = stem_smem_layout(C1, O, c.sh);
  __half* w1t = reinterpret_cast<__half*>(smem_stem + L.w1t);
  __half* wpt = reinterpret_cast<__half*>(smem_stem + L.wpt);
  __half* wds = reinterpret_cast<__half*>(smem_stem + L.wd);
  __half* xs = reinterpret_cast<__half*>(smem_stem + L.xs);
  __half* c1s = reinterpret_cast<__half*>(smem_stem + L.c1);
  __half* ot = c1s;  // the projection's output tile reuses the first convolution's
  __half* dwo = reinterpret_cast<__half*>(smem_stem + L.dwo);
  const __half* x = static_cast<const __half*>(a.x);
  const __half* w1 = static_cast<const __half*>(a.w1);
  const __half* wd = static_cast<const __half*>(a.wd);
  const __half* wp = static_cast<const __half*>(a.wp);
  __half* y = static_cast<__half*>(a.y);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  const __half zero = __float2half_rn(0.0f);

  // Weights (written before the graph runs): loaded before the wait.
  for (int q = tid; q < C1 * kTapsPadded; q += kThreads) {
    const int oc = q / kTapsPadded, k = q - oc * kTapsPadded;
    w1t[oc * SW1 + k] = k < kTaps ? w1[k * C1 + oc] : zero;
  }
  for (int q = tid; q < O * KP; q += kThreads) {
    const int oc = q / KP, k = q - oc * KP;
    wpt[oc * SWP + k] = k < C1 ? wp[k * O + oc] : zero;
  }
  for (int q = tid; q < 9 * C1; q += kThreads) wds[q] = wd[q];
  // The depthwise output's padding (rows past the tile's pixels, columns past C1): zero for good.
  for (int q = tid; q < kOutRows * KP; q += kThreads) {
    const int r = q / KP, k = q - r * KP;
    if (r >= kOutPix || k >= C1) dwo[r * S2 + k] = zero;
  }
  // Where this thread's 8 k indices of the first convolution (16s + 8r + 2t + e) sit in the staged
  // input relative to a pixel's first value; -1: past the 27 taps.
  const int span = stem_span(c.sh), row_len = span * 3;
  int koff[2][2][2];
#pragma unroll
  for (int s = 0; s < 2; ++s)
#pragma unroll
    for (int r = 0; r < 2; ++r)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int k = 16 * s + 8 * r + 2 * t + e, tap = k / 3, ch = k - tap * 3, ky = tap / 3, kx = tap - ky * 3;
        koff[s][r][e] = k < kTaps ? ky * row_len + kx * 3 + ch : -1;
      }
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
      for (int q = tid; q < span * row_len; q += kThreads) {
        const int r = q / row_len, k = q - r * row_len, col = k / 3, ch = k - col * 3;
        const int iy = iy0 + r, ix = ix0 + col;
        xs[q] = (iy >= 0 && iy < c.h && ix >= 0 && ix < c.w) ? xn[(iy * c.w + ix) * 3 + ch] : zero;
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
        auto val = [&](const __half* px, int r, int e) { return koff[s][r][e] >= 0 ? px[koff[s][r][e]] : zero; };
        auto pk = [](__half lo, __half hi) {
          return static_cast<uint32_t>(__half_as_ushort(lo)) | (static_cast<uint32_t>(__half_as_ushort(hi)) << 16);
        };
        const uint32_t af[4] = {pk(val(p0, 0, 0), val(p0, 0, 1)), pk(val(p1, 0, 0), val(p1, 0, 1)), pk(val(p0, 1, 0), val(p0, 1, 1)),
                                pk(val(p1, 1, 0), val(p1, 1, 1))};
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
          const float b0 = a.b1 ? __ldg(a.b1 + oc) : 0.0f, b1 = a.b1 ? __ldg(a.b1 + oc + 1) : 0.0f;
          const float v0 = in ? apply_act(acc[j][2 * hh] + b0, act1) : 0.0f;
          const float v1 = in ? apply_act(acc[j][2 * hh + 1] + b1, act1) : 0.0f;
          *reinterpret_cast<__half2*>(c1s + (cy * kC1Side + cx) * S1 + oc) = __floats2half2_rn(v0, v1);
        }
      }
    }
    __syncthreads();
    // 3. The depthwise layer: item q = one pixel of the 14x14 tile and 8 channels (8 consecutive
    // threads: 8 consecutive pixels, one channel group).
    for (int q = tid; q < kOutPix * NJ1; q += kThreads) {
      const int grp = q / kOutPix, px = q - grp * kOutPix, ly = px / kTile, lx = px - ly * kTile;
      float acc[8];
#pragma unroll
      for (int k = 0; k < 8; ++k) acc[k] = a.bd ? __ldg(a.bd + 8 * grp + k) : 0.0f;
#pragma unroll
      for (int dy = 0; dy < 3; ++dy)
#pragma unroll
        for (int dx = 0; dx < 3; ++dx) {
          const uint4 xv = *reinterpret_cast<const uint4*>(c1s + ((ly + dy) * kC1Side + lx + dx) * S1 + 8 * grp);
          const uint4 wv = *reinterpret_cast<const uint4*>(wds + (dy * 3 + dx) * C1 + 8 * grp);
          const __half2* xh = reinterpret_cast<const __half2*>(&xv);
          const __half2* wh = reinterpret_cast<const __half2*>(&wv);
#pragma unroll
          for (int k = 0; k < 4; ++k) {
            const float2 xf = __half22float2(xh[k]), wf = __half22float2(wh[k]);
            acc[2 * k] = fmaf(xf.x, wf.x, acc[2 * k]);
            acc[2 * k + 1] = fmaf(xf.y, wf.y, acc[2 * k + 1]);
          }
        }
      uint4 ov;
      __half2* oh2 = reinterpret_cast<__half2*>(&ov);
#pragma unroll
      for (int k = 0; k < 4; ++k) oh2[k] = __floats2half2_rn(apply_act(acc[2 * k], actd), apply_act(acc[2 * k + 1], actd));
      *reinterpret_cast<uint4*>(dwo + px * S2 + 8 * grp) = ov;
    }
    __syncthreads();
    // 4. The projection: warp w computes fragment rows 16w.. and 16(w + 8).. (13 fragments).
    for (int m = warp; m < kOutRows / 16; m += kWarps) {
      float acc[NO][4];
#pragma unroll
      for (int j = 0; j < NO; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
      const __half* ar0 = dwo + (16 * m + g) * S2 + 2 * t;
      const __half* ar1 = ar0 + 8 * S2;
#pragma unroll
      for (int s = 0; s < KS; ++s) {
        const uint32_t af[4] = {ld32(ar0 + 16 * s), ld32(ar1 + 16 * s), ld32(ar0 + 16 * s + 8), ld32(ar1 + 16 * s + 8)};
#pragma unroll
        for (int j = 0; j < NO; ++j) {
          const __half* bp = wpt + (8 * j + g) * SWP + 16 * s + 2 * t;
          const uint32_t bf[2] = {ld32(bp), ld32(bp + 8)};
          mma_16816(acc[j], af, bf);
        }
      }
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        const int px = 16 * m + g + 8 * hh;
        if (px >= kOutPix) continue;
#pragma unroll
        for (int j = 0; j < NO; ++j) {
          const int oc = 8 * j + 2 * t;
          const float b0 = a.bp ? __ldg(a.bp + oc) : 0.0f, b1 = a.bp ? __ldg(a.bp + oc + 1) : 0.0f;
          *reinterpret_cast<__half2*>(ot + px * SO + oc) =
              __floats2half2_rn(apply_act(acc[j][2 * hh] + b0, actp), apply_act(acc[j][2 * hh + 1] + b1, actp));
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
    // The next tile writes xs before its first barrier (nothing reads xs after this tile's second)
    // and the output tile (c1s) only after it, when every thread has finished this store loop.
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
