// Device helpers shared by PoseRT's CUDA kernels: typed loads/stores through float, activation,
// launch-error checking.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <string>
#include <type_traits>
#include <utility>

#include "ir/elementwise_chain.h"
#include "kernels/cuda/cuda_kernels.h"
#include "posert/error.h"

namespace posert::cuda {

template <class T> __device__ __forceinline__ float ldf(const T* p);
template <> __device__ __forceinline__ float ldf<float>(const float* p) { return *p; }
template <> __device__ __forceinline__ float ldf<__half>(const __half* p) { return __half2float(*p); }
template <> __device__ __forceinline__ float ldf<int32_t>(const int32_t* p) { return static_cast<float>(*p); }

template <class T> __device__ __forceinline__ void stf(T* p, float v);
template <> __device__ __forceinline__ void stf<float>(float* p, float v) { *p = v; }
template <> __device__ __forceinline__ void stf<__half>(__half* p, float v) { *p = __float2half_rn(v); }

// v rounded to T and back (T = float: unchanged): the value a kernel reading a T buffer would see.
template <class T> __device__ __forceinline__ float round_to(float v) {
  if constexpr (std::is_same_v<T, __half>) return __half2float(__float2half_rn(v));
  else return v;
}

// The elementwise chain `prog` applied to value v of channel ch (constants scalar or per channel).
__device__ __forceinline__ float chain_apply(const ChainProgram& prog, float v, int ch) {
  for (int s = 0; s < prog.steps; ++s) {
    const float c = prog.c[s] ? prog.c[s][prog.c_len[s] == 1 ? 0 : ch] : 0.0f;
    v = chain_step(prog.op[s], v, c);
  }
  return v;
}

// chain_apply on 8 values (channels ch[k], each in [0, channels)), with chain_apply's order and
// arithmetic for each, step by step over the 8: each step's kind is branched on once per 8 values
// instead of once per value.
__device__ __forceinline__ void chain_apply8(const ChainProgram& prog, float (&v)[8], const int (&ch)[8]) {
  for (int st = 0; st < prog.steps; ++st) {
    const int op = prog.op[st];
    const float* cp = prog.c[st];
    float c[8];
#pragma unroll
    for (int k = 0; k < 8; ++k) c[k] = cp ? cp[prog.c_len[st] == 1 ? 0 : ch[k]] : 0.0f;
    switch (static_cast<ChainOp>(op)) {
      case ChainOp::Add:
#pragma unroll
        for (int k = 0; k < 8; ++k) v[k] = chain_step(static_cast<int>(ChainOp::Add), v[k], c[k]);
        break;
      case ChainOp::Sub:
#pragma unroll
        for (int k = 0; k < 8; ++k) v[k] = chain_step(static_cast<int>(ChainOp::Sub), v[k], c[k]);
        break;
      case ChainOp::Mul:
#pragma unroll
        for (int k = 0; k < 8; ++k) v[k] = chain_step(static_cast<int>(ChainOp::Mul), v[k], c[k]);
        break;
      default:
#pragma unroll
        for (int k = 0; k < 8; ++k) v[k] = chain_step(op, v[k], c[k]);
        break;
    }
  }
}

// chain_apply on N values of one channel ch, with chain_apply's order and arithmetic for each,
// step by step over the N: each step's kind and constant are read once per N values.
template <int N>
__device__ __forceinline__ void chain_apply_channel(const ChainProgram& prog, float (&v)[N], int ch) {
  for (int st = 0; st < prog.steps; ++st) {
    const int op = prog.op[st];
    const float* cp = prog.c[st];
    const float c = cp ? cp[prog.c_len[st] == 1 ? 0 : ch] : 0.0f;
    switch (static_cast<ChainOp>(op)) {
      case ChainOp::Add:
#pragma unroll
        for (int k = 0; k < N; ++k) v[k] = chain_step(static_cast<int>(ChainOp::Add), v[k], c);
        break;
      case ChainOp::Sub:
#pragma unroll
        for (int k = 0; k < N; ++k) v[k] = chain_step(static_cast<int>(ChainOp::Sub), v[k], c);
        break;
      case ChainOp::Mul:
#pragma unroll
        for (int k = 0; k < N; ++k) v[k] = chain_step(static_cast<int>(ChainOp::Mul), v[k], c);
        break;
      default:
#pragma unroll
        for (int k = 0; k < N; ++k) v[k] = chain_step(op, v[k], c);
        break;
    }
  }
}

__device__ __forceinline__ float apply_act(float v, int act) {
  switch (act) {
    case 1: return v > 0.0f ? v : 0.0f;
    case 2: return fminf(fmaxf(v, 0.0f), 6.0f);
    case 3: return 1.0f / (1.0f + expf(-v));
    default: return v;
  }
}

// 8 consecutive values (16 or 32 bytes, 16-byte aligned) as 8 floats.
template <class T>
__device__ __forceinline__ void load8(const T* p, float* v) {
  if constexpr (std::is_same_v<T, int32_t>) {
    const int4 a = *reinterpret_cast<const int4*>(p), b = *reinterpret_cast<const int4*>(p + 4);
    v[0] = static_cast<float>(a.x), v[1] = static_cast<float>(a.y), v[2] = static_cast<float>(a.z), v[3] = static_cast<float>(a.w);
    v[4] = static_cast<float>(b.x), v[5] = static_cast<float>(b.y), v[6] = static_cast<float>(b.z), v[7] = static_cast<float>(b.w);
  } else if constexpr (std::is_same_v<T, __half>) {
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

// 8 floats rounded to T (half or float) and stored as 8 consecutive values (16-byte aligned).
template <class T>
__device__ __forceinline__ void store8(T* p, const float* v) {
  if constexpr (std::is_same_v<T, __half>) {
    uint4 out;
    __half2* h2 = reinterpret_cast<__half2*>(&out);
#pragma unroll
    for (int k = 0; k < 4; ++k) h2[k] = __halves2half2(__float2half_rn(v[2 * k]), __float2half_rn(v[2 * k + 1]));
    *reinterpret_cast<uint4*>(p) = out;
  } else {
    *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
    *reinterpret_cast<float4*>(p + 4) = make_float4(v[4], v[5], v[6], v[7]);
  }
}

// A 1x1 stride-1 convolution that keeps the image size.
inline bool is_pointwise(const ConvParams& p) {
  return p.kh == 1 && p.kw == 1 && p.sh == 1 && p.sw == 1 && p.pad_top == 0 && p.pad_left == 0 && p.oh == p.h &&
         p.ow == p.w && p.o > 0;
}

inline bool fits_int32(const ConvParams& p) {
  const int64_t in = static_cast<int64_t>(p.n) * p.h * p.w * p.c;
  const int64_t out = static_cast<int64_t>(p.n) * p.oh * p.ow * p.o;
  const int64_t wt = static_cast<int64_t>(p.kh) * p.kw * p.c * p.o;
  const int64_t lim = (int64_t{1} << 31) - 1;
  return in < lim && out < lim && wt < lim;
}

// True for null (no buffer) or a 16-byte aligned address.
__host__ __device__ inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

inline int grid_for(int64_t total, int threads) {
  const int64_t blocks = (total + threads - 1) / threads;
  return static_cast<int>(blocks < 1 ? 1 : (blocks > (1 << 20) ? (1 << 20) : blocks));
}

// Programmatic dependent launch (PDL, see programmatic_launch() in cuda_kernels.h). When on, the
// engine's kernels are launched with programmatic stream serialization: a kernel may be scheduled while
// the one before it on the stream is still finishing, and its threads wait in pdl_wait() (the
// first statement of every kernel launched through launch()) until that kernel has completed and
// its memory is visible. This hides the launch gap between the many small kernels of a batch-1
// forward pass. Kernels launched otherwise (cuDNN's, the pipeline's) keep full serialization.
// Every kernel launched through launch() must call pdl_wait() before it touches memory that an
// earlier kernel may write (activations), and unconditionally (no thread may exit before it): a
// kernel that completes without waiting would let the kernel after it run before the one before
// it. Weights, written before the graph runs, may be read before it (the tile16 and direct8smem
// kernels in conv.cu load their filters first, overlapping the end of the kernel before them).
// pdl_release: the next kernel on the stream (if launched programmatically) may be scheduled once
// every block of this one has run it or exited; it still waits for this kernel's completion in its
// own pdl_wait(). A no-op before sm_90 and where nothing follows programmatically.
__device__ __forceinline__ void pdl_release() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
  // Let the next kernel on the stream be scheduled as soon as every block of this one runs: its
  // blocks fill the SMs this kernel's last wave leaves idle, then wait in their own pdl_wait().
  pdl_release();
}

// Launches `k` like k<<<grid, block, smem, s>>>(args...), with programmatic stream serialization
// when programmatic_launch() is on. Returns the launch error, which check_launch() also reports.
template <class... P, class... A>
cudaError_t launch(void (*k)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t s, A&&... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = s;
  cudaLaunchAttribute attr[1] = {};
  if (programmatic_launch()) {
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
  }
  return cudaLaunchKernelEx(&cfg, k, std::forward<A>(args)...);
}

// Lets `kernel` use `smem` bytes of dynamic shared memory (past 48 KiB a kernel must opt in, per
// device); errors name `what`.
template <class... P>
void reserve_smem(const std::string& what, void (*kernel)(P...), size_t smem) {
  if (smem > 48 * 1024 &&
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)) != cudaSuccess)
    throw Error(what + ": cannot reserve " + std::to_string(smem) + " bytes of shared memory on this GPU");
}

// Launches `kernel` as launch() does, its shared memory already reserved; a launch error names `what`.
template <class... P, class... A>
void launch_reserved(const std::string& what, void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t s,
                     A&&... args) {
  const cudaError_t e = launch(kernel, grid, block, smem, s, std::forward<A>(args)...);
  if (e != cudaSuccess)
    throw Error("CUDA kernel " + what + " (" + std::to_string(smem) + " bytes of shared memory) failed to launch: " +
                cudaGetErrorString(e));
}

// reserve_smem, then launch_reserved.
template <class... P, class... A>
void launch_smem(const std::string& what, void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t s,
                 A&&... args) {
  reserve_smem(what, kernel, smem);
  launch_reserved(what, kernel, grid, block, smem, s, std::forward<A>(args)...);
}

// Blocks of `kernel` (`threads` each, `smem` bytes of dynamic shared memory, reserved first with
// reserve_smem: the query counts with it) that one multiprocessor of the current device runs at
// once; 1 when the query fails. For kernels whose blocks loop over tiles: a grid of this times
// sm_count() fills the GPU in one wave.
template <class... P>
int blocks_per_sm(void (*kernel)(P...), int threads, size_t smem) {
  int per_sm = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, smem) != cudaSuccess || per_sm < 1) {
    cudaGetLastError();
    per_sm = 1;
  }
  return per_sm;
}

// A shared-memory pointer as the 32-bit shared-window address that PTX's shared operands take.
__device__ __forceinline__ unsigned smem_u32(const void* p) { return static_cast<unsigned>(__cvta_generic_to_shared(p)); }

// Global -> shared copies that bypass the registers (cp.async, sm_80+). cp_async16: 16 bytes, both
// ends 16-byte aligned; with valid false the 16 bytes are zero-filled and nothing is read.
// cp_async8: 8 bytes, 8-byte aligned; cp_async4: 4 bytes, 4-byte aligned. cp_async_wait_all:
// this thread's copies have landed (the block still synchronizes before reading what other
// threads copied).
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  const unsigned dst = smem_u32(smem);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem), "r"(valid ? 16 : 0) : "memory");
}
__device__ __forceinline__ void cp_async8(void* smem, const void* gmem) {
  const unsigned dst = smem_u32(smem);
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8;\n" ::"r"(dst), "l"(gmem) : "memory");
}
__device__ __forceinline__ void cp_async4(void* smem, const void* gmem) {
  const unsigned dst = smem_u32(smem);
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(dst), "l"(gmem) : "memory");
}
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_all;\n" ::: "memory"); }

// Bulk global -> shared copies by the copy engine (TMA, sm_90+) that complete on an mbarrier in
// shared memory: one thread inits the barrier (count 1), announces the bytes and issues the copies
// (16-byte aligned ends, sizes a multiple of 16); every thread that reads the data waits on the
// barrier's phase 0. A handful of instructions instead of a copy instruction per 8 or 16 bytes per
// thread, which queue in the load pipeline ahead of the block's own loads.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
__device__ __forceinline__ void mbarrier_init_one(unsigned long long* bar) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" ::"r"(smem_u32(bar)) : "memory");
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
__device__ __forceinline__ void mbarrier_arrive_expect_tx(unsigned long long* bar, unsigned bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(bytes) : "memory");
}
__device__ __forceinline__ void bulk_copy_to_shared(void* smem, const void* gmem, unsigned bytes, unsigned long long* bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(
                   smem_u32(smem)),
               "l"(gmem), "r"(bytes), "r"(smem_u32(bar))
               : "memory");
}
// How a region of `bytes` (a multiple of 4) is staged when its shared-memory copy starts at its
// source's address mod 16 past a 16-byte boundary: the 16-byte-aligned middle, bytes [head,
// head + bulk), goes to the copy engine (bulk_copy_middle, thread 0, after the barrier's
// expect_tx counted bulk); the ragged head and tail, under 16 bytes each, go word by word
// (copy_ragged_word, eight threads) as 4-byte cp.async copies, so that no thread waits for them
// where it issues them (a load and a store would hold the thread, and its warp's next loads,
// for a whole trip to memory). The issuing threads run cp_async_wait_all() before a block barrier
// that comes before the words are read.
struct BulkSplit {
  unsigned head, bulk;
};
__device__ __forceinline__ BulkSplit bulk_split(const void* src, unsigned bytes) {
  const unsigned mis = static_cast<unsigned>(reinterpret_cast<size_t>(src) & 15);
  const unsigned head = mis != 0 ? min(16 - mis, bytes) : 0;
  return {head, (bytes - head) & ~15u};
}
__device__ __forceinline__ void bulk_copy_middle(float* dst, const float* src, BulkSplit s, unsigned long long* bar) {
  if (s.bulk > 0) bulk_copy_to_shared(dst + s.head / 4, src + s.head / 4, s.bulk, bar);
}
// Helper w (0..7): w 0..2 copy head words 0..2, w 4..6 tail words 0..2, where the region has them.
__device__ __forceinline__ void copy_ragged_word(float* dst, const float* src, unsigned bytes, BulkSplit s, unsigned w) {
  const unsigned tail_from = (s.head + s.bulk) / 4;
  if (w < 3 && w < s.head / 4) cp_async4(dst + w, src + w);
  if (w >= 4 && w < 7 && tail_from + (w - 4) < bytes / 4) cp_async4(dst + tail_from + (w - 4), src + tail_from + (w - 4));
}
__device__ __forceinline__ void mbarrier_wait_phase0(unsigned long long* bar) {
  unsigned done = 0;
  while (!done)
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], 0;\n selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(smem_u32(bar))
        : "memory");
}
#endif

// Tensor-core helpers (sm_80+): ldmatrix of four 8x8 b16 matrices (lane l gives the address of
// row l % 8 of matrix l / 8), of two transposed (lanes 0-15), and the m16n8k16 MMA with fp16
// inputs and fp32 accumulation: d += a (16x16, row-major) * b (16x8, column-major).
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const __half* p) {
  const unsigned a = smem_u32(p);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}
__device__ __forceinline__ void ldmatrix_x2_trans(uint32_t (&r)[2], const __half* p) {
  const unsigned a = smem_u32(p);
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(a));
}
__device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
               "{%0, %1, %2, %3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

// A 3x3 convolution on 3 channels as an implicit GEMM (K = 27 taps, k = (ky * 3 + kx) * 3 + c,
// zero-padded to 32: two m16n8k16 k steps), its input staged in shared memory as half, image rows
// row_len values apart (conv_mma3x3.cu, conv_stem.cu). conv3x3c3_koff: where lane t's 8 k
// indices (16s + 8r + 2t + e) sit relative to a pixel's first staged value (dilations dh, dw);
// -1 past the 27 taps. conv3x3c3_afrag: the A fragment of k step s for the fragment's rows g (at
// p0) and g + 8 (at p1).
__device__ __forceinline__ void conv3x3c3_koff(int (&koff)[2][2][2], int t, int row_len, int dh, int dw) {
#pragma unroll
  for (int s = 0; s < 2; ++s)
#pragma unroll
    for (int r = 0; r < 2; ++r)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int k = 16 * s + 8 * r + 2 * t + e, tap = k / 3, c = k - tap * 3, ky = tap / 3, kx = tap - ky * 3;
        koff[s][r][e] = k < 27 ? ky * dh * row_len + kx * dw * 3 + c : -1;
      }
}
__device__ __forceinline__ void conv3x3c3_afrag(uint32_t (&a)[4], const __half* p0, const __half* p1, const int (&koff)[2][2][2],
                                                int s) {
  const __half zero = __float2half_rn(0.0f);
  auto val = [&](const __half* px, int r, int e) { return koff[s][r][e] >= 0 ? px[koff[s][r][e]] : zero; };
  auto pk = [](__half lo, __half hi) {
    return static_cast<uint32_t>(__half_as_ushort(lo)) | (static_cast<uint32_t>(__half_as_ushort(hi)) << 16);
  };
  a[0] = pk(val(p0, 0, 0), val(p0, 0, 1));
  a[1] = pk(val(p1, 0, 0), val(p1, 0, 1));
  a[2] = pk(val(p0, 1, 0), val(p0, 1, 1));
  a[3] = pk(val(p1, 1, 0), val(p1, 1, 1));
}

// One warp's 16-row tile on the tensor cores: acc[j] (j < nt <= NT) += A[0..16)[0..K) x B[0..K)[8j..8j+8),
// A row-major with row stride as, B k-major with row stride bs (halves, shared memory, rows
// 16-byte aligned), K a multiple of 16.
template <int NT>
__device__ __forceinline__ void warp_gemm(float (&acc)[NT][4], int nt, const __half* A, int as, const __half* B, int bs, int K,
                                          int lane) {
  const __half* arow = A + ((lane & 7) + ((lane >> 3) & 1) * 8) * as + (lane >> 4) * 8;
  const __half* brow = B + (lane & 15) * bs;
  for (int k0 = 0; k0 < K; k0 += 16) {
    uint32_t af[4];
    ldmatrix_x4(af, arow + k0);
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      if (j >= nt) break;
      uint32_t bf[2];
      ldmatrix_x2_trans(bf, brow + k0 * bs + j * 8);
      mma_16816(acc[j], af, bf);
    }
  }
}

// R outputs of a 3x3 depthwise row, 8 channels, from a tile in shared memory: acc[r] += the taps
// of output r in the order ky, kx (dw3x3_rows_kernel's arithmetic and reuse: each of the
// (R - 1) * S + 3 input pixels of a tap row is loaded once for the R outputs). x: the first input
// pixel (row 0, column 0 of output 0's window) at this thread's 8 channels; xrow, xpix: strides
// (halves) between input rows and pixels; w: the filter as float, tap t's 8 channels at w + t * wtap.
template <int R, int S>
__device__ __forceinline__ void dw3x3_run8(const __half* x, int xrow, int xpix, const float* w, int wtap, float (&acc)[R][8]) {
#pragma unroll
  for (int ky = 0; ky < 3; ++ky) {
    float wv[3][8];
#pragma unroll
    for (int kx = 0; kx < 3; ++kx) {
      const float4 w0 = *reinterpret_cast<const float4*>(w + (ky * 3 + kx) * wtap);
      const float4 w1 = *reinterpret_cast<const float4*>(w + (ky * 3 + kx) * wtap + 4);
      wv[kx][0] = w0.x, wv[kx][1] = w0.y, wv[kx][2] = w0.z, wv[kx][3] = w0.w;
      wv[kx][4] = w1.x, wv[kx][5] = w1.y, wv[kx][6] = w1.z, wv[kx][7] = w1.w;
    }
#pragma unroll
    for (int j = 0; j < (R - 1) * S + 3; ++j) {
      float xv[8];
      load8(x + ky * xrow + j * xpix, xv);
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const int kx = j - r * S;  // compile-time after unrolling
        if (kx < 0 || kx > 2) continue;
#pragma unroll
        for (int c = 0; c < 8; ++c) acc[r][c] += xv[c] * wv[kx][c];
      }
    }
  }
}

inline void check_launch(const char* what) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw Error(std::string("CUDA kernel ") + what + " failed to launch: " + cudaGetErrorString(e));
}

}  // namespace posert::cuda
