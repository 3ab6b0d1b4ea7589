// Elementwise kernels: fused elementwise chains, broadcast add, dtype conversion, and bilinear
// resize (TF rules, the same as kernels/ref/resize.cpp).
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_kernels.h"

namespace posert::cuda {

namespace {

// Index type: int where the element count allows it (64-bit division and remainder cost tens of
// instructions each; at batch 1 these kernels are latency-bound, so that showed).
bool fits_int(int64_t count) { return count <= (int64_t{1} << 30); }

// The program is a __grid_constant__ parameter: its arrays are indexed by the step number, which
// would otherwise make every thread copy the whole struct to local memory first.
template <class X, class Y, class I>
__global__ void chain_kernel(const X* __restrict__ x, Y* __restrict__ y, I count, int channels,
                             const __grid_constant__ ChainProgram prog) {
  pdl_wait();
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < count; i += static_cast<I>(gridDim.x) * blockDim.x) {
    stf(y + i, chain_apply(prog, ldf(x + i), static_cast<int>(i % channels)));
  }
}

// 8 consecutive elements per thread (count % 8 == 0, x and y 16-byte aligned): all 8 loaded with
// 16-byte loads before any is computed, then stored with 16-byte stores; each element gets exactly
// chain_kernel's arithmetic. Where the chain's input is wider than its output (MoveNet's int32
// image to half) this moves the same bytes with a quarter of the memory instructions.
template <class X, class Y, class I>
__global__ void chain8_kernel(const X* __restrict__ x, Y* __restrict__ y, I groups, int channels,
                              const __grid_constant__ ChainProgram prog) {
  pdl_wait();
  for (I gi = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; gi < groups; gi += static_cast<I>(gridDim.x) * blockDim.x) {
    const I i = gi * 8;
    float v[8];
    load8(x + i, v);
    int ch[8];
    ch[0] = static_cast<int>(i % channels);
#pragma unroll
    for (int k = 1; k < 8; ++k) ch[k] = ch[k - 1] + 1 == channels ? 0 : ch[k - 1] + 1;  // (i + k) % channels
    chain_apply8(prog, v, ch);
    store8(y + i, v);
  }
}

template <class T>
__global__ void add_kernel(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ y, BroadcastShape s,
                           int64_t count) {
  pdl_wait();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t r = i, ai = 0, bi = 0;
    for (int d = s.rank - 1; d >= 0; --d) {
      const int64_t k = r % s.out[d];
      r /= s.out[d];
      ai += k * s.a_stride[d];
      bi += k * s.b_stride[d];
    }
    stf(y + i, ldf(a + ai) + ldf(b + bi));
  }
}

template <class X, class Y>
__global__ void convert_kernel(const X* __restrict__ x, Y* __restrict__ y, int64_t count) {
  pdl_wait();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    stf(y + i, ldf(x + i));
}

struct Axis {
  float scale;
  bool half_pixel;
  int in;
};

__device__ __forceinline__ void interp(const Axis& a, int o, int* lo, int* hi, float* lerp) {
  const float src = a.half_pixel ? (static_cast<float>(o) + 0.5f) * a.scale - 0.5f : static_cast<float>(o) * a.scale;
  const float f = floorf(src);
  *lo = max(static_cast<int>(f), 0);
  *hi = min(static_cast<int>(ceilf(src)), a.in - 1);
  *lerp = src - f;
}

// V consecutive channels of one output pixel per thread: V = 1, or V = 8 where c % 8 == 0 and x
// and y are 16-byte aligned (the four corners loaded with 16-byte loads, the results stored with
// 16-byte stores). Each value gets the same arithmetic either way, so the same bits. One value per
// thread, each with its own index divisions and 2-byte accesses, ran at a third of the memory
// bandwidth on MoveNet's 2x upsampling at batch 64.
template <class T, int V, class I>
__global__ void resize_kernel(const T* __restrict__ x, T* __restrict__ y, int n, int h, int w, int c, int oh, int ow,
                              Axis ay, Axis ax) {
  static_assert(V == 1 || V == 8, "resize_kernel: 1 or 8 channels per thread");
  pdl_wait();
  const int cg = c / V;
  const I total = static_cast<I>(n) * oh * ow * cg;
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < total; i += static_cast<I>(gridDim.x) * blockDim.x) {
    const int ch = static_cast<int>(i % cg) * V;
    I t = i / cg;
    const int ox = static_cast<int>(t % ow);
    t /= ow;
    const int oy = static_cast<int>(t % oh);
    const int b = static_cast<int>(t / oh);
    int y0, y1, x0, x1;
    float ly, lx;
    interp(ay, oy, &y0, &y1, &ly);
    interp(ax, ox, &x0, &x1, &lx);
    const T* base = x + static_cast<int64_t>(b) * h * w * c + ch;
    const T* corner[4] = {base + (static_cast<int64_t>(y0) * w + x0) * c, base + (static_cast<int64_t>(y0) * w + x1) * c,
                          base + (static_cast<int64_t>(y1) * w + x0) * c, base + (static_cast<int64_t>(y1) * w + x1) * c};
    float v[4][V], out[V];
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      if constexpr (V == 8) load8(corner[q], v[q]);
      else v[q][0] = ldf(corner[q]);
    }
#pragma unroll
    for (int k = 0; k < V; ++k) {  // v[0..3]: top left, top right, bottom left, bottom right
      const float top = v[0][k] + (v[1][k] - v[0][k]) * lx;
      const float bot = v[2][k] + (v[3][k] - v[2][k]) * lx;
      out[k] = top + (bot - top) * ly;
    }
    if constexpr (V == 8) store8(y + static_cast<int64_t>(i) * 8, out);
    else stf(y + i, out[0]);
  }
}

template <class X, class I>
void chain_to_i(DType16 yt, const X* x, void* y, int64_t count, int channels, const ChainProgram& prog, cudaStream_t s) {
  // 8 values per thread only where that still leaves every SM full (a smaller chain, MoveNet's
  // input at batch 1, is latency-bound: more threads of one value each finish sooner).
  if (count % 8 == 0 && count / 8 >= int64_t{2048} * sm_count() && aligned16(x) && aligned16(y)) {
    const I groups = static_cast<I>(count / 8);
    const int g = grid_for(count / 8, 256);
    if (yt == DType16::F16) launch(chain8_kernel<X, __half, I>, g, 256, 0, s, x, static_cast<__half*>(y), groups, channels, prog);
    else launch(chain8_kernel<X, float, I>, g, 256, 0, s, x, static_cast<float*>(y), groups, channels, prog);
    return;
  }
  const int g = grid_for(count, 256);
  const I n = static_cast<I>(count);
  if (yt == DType16::F16) launch(chain_kernel<X, __half, I>, g, 256, 0, s, x, static_cast<__half*>(y), n, channels, prog);
  else launch(chain_kernel<X, float, I>, g, 256, 0, s, x, static_cast<float*>(y), n, channels, prog);
}
template <class X>
void chain_to(DType16 yt, const X* x, void* y, int64_t count, int channels, const ChainProgram& prog, cudaStream_t s) {
  if (fits_int(count)) chain_to_i<X, int>(yt, x, y, count, channels, prog, s);
  else chain_to_i<X, int64_t>(yt, x, y, count, channels, prog, s);
}

template <class T>
void resize_to(const T* x, T* y, int n, int h, int w, int c, int oh, int ow, Axis ay, Axis ax, cudaStream_t s) {
  const int64_t total = static_cast<int64_t>(n) * oh * ow * c;
  if (c % 8 == 0 && aligned16(x) && aligned16(y)) {
    const int g = grid_for(total / 8, 256);
    if (fits_int(total)) launch(resize_kernel<T, 8, int>, g, 256, 0, s, x, y, n, h, w, c, oh, ow, ay, ax);
    else launch(resize_kernel<T, 8, int64_t>, g, 256, 0, s, x, y, n, h, w, c, oh, ow, ay, ax);
    return;
  }
  const int g = grid_for(total, 256);
  if (fits_int(total)) launch(resize_kernel<T, 1, int>, g, 256, 0, s, x, y, n, h, w, c, oh, ow, ay, ax);
  else launch(resize_kernel<T, 1, int64_t>, g, 256, 0, s, x, y, n, h, w, c, oh, ow, ay, ax);
}

Axis make_axis(int in, int out, bool align, bool half_pixel) {
  Axis a;
  a.in = in;
  a.half_pixel = half_pixel;
  a.scale = (align && out > 1) ? static_cast<float>(in - 1) / static_cast<float>(out - 1)
                               : static_cast<float>(in) / static_cast<float>(out);
  return a;
}

// One thread spins until `ns` nanoseconds of the GPU's global timer have passed.
__global__ void spin_kernel(long long ns) {
  long long start, now;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
  for (now = start; now - start < ns;) {  // ns = 0: an empty kernel
    __nanosleep(1000);
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  }
}

}  // namespace

void spin(int64_t ns, void* stream) {
  spin_kernel<<<1, 1, 0, static_cast<cudaStream_t>(stream)>>>(static_cast<long long>(ns));
  check_launch("spin");
}

void elementwise_chain(DType16 xt, const void* x, DType16 yt, void* y, int64_t count, int channels,
                       const ChainProgram& prog, void* stream) {
  if (count == 0) return;
  if (channels < 1 || yt == DType16::I32) throw Error("internal: bad elementwise chain");
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (xt) {
    case DType16::F32: chain_to(yt, static_cast<const float*>(x), y, count, channels, prog, s); break;
    case DType16::F16: chain_to(yt, static_cast<const __half*>(x), y, count, channels, prog, s); break;
    case DType16::I32: chain_to(yt, static_cast<const int32_t*>(x), y, count, channels, prog, s); break;
  }
  check_launch("elementwise_chain");
}

void add_broadcast(bool half, const void* a, const void* b, void* y, const BroadcastShape& s, void* stream) {
  int64_t count = 1;
  for (int d = 0; d < s.rank; ++d) count *= s.out[d];
  if (count == 0) return;
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (half)
    launch(add_kernel<__half>, grid_for(count, 256), 256, 0, st, static_cast<const __half*>(a), static_cast<const __half*>(b),
                                                               static_cast<__half*>(y), s, count);
  else
    launch(add_kernel<float>, grid_for(count, 256), 256, 0, st, static_cast<const float*>(a), static_cast<const float*>(b),
                                                              static_cast<float*>(y), s, count);
  check_launch("add");
}

void resize_bilinear(bool half, const void* x, void* y, int n, int h, int w, int c, int oh, int ow, bool align_corners,
                     bool half_pixel_centers, void* stream) {
  const int64_t total = static_cast<int64_t>(n) * oh * ow * c;
  if (total == 0) return;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  const Axis ay = make_axis(h, oh, align_corners, half_pixel_centers), ax = make_axis(w, ow, align_corners, half_pixel_centers);
  if (half)
    resize_to(static_cast<const __half*>(x), static_cast<__half*>(y), n, h, w, c, oh, ow, ay, ax, s);
  else
    resize_to(static_cast<const float*>(x), static_cast<float*>(y), n, h, w, c, oh, ow, ay, ax, s);
  check_launch("resize_bilinear");
}

void convert(DType16 xt, const void* x, DType16 yt, void* y, int64_t count, void* stream) {
  if (count == 0) return;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  const int g = grid_for(count, 256);
  if (xt == DType16::F16 && yt == DType16::F32)
    launch(convert_kernel<__half, float>, g, 256, 0, s, static_cast<const __half*>(x), static_cast<float*>(y), count);
  else if (xt == DType16::F32 && yt == DType16::F16)
    launch(convert_kernel<float, __half>, g, 256, 0, s, static_cast<const float*>(x), static_cast<__half*>(y), count);
  else if (xt == DType16::I32 && yt == DType16::F32)
    launch(convert_kernel<int32_t, float>, g, 256, 0, s, static_cast<const int32_t*>(x), static_cast<float*>(y), count);
  else if (xt == DType16::I32 && yt == DType16::F16)
    launch(convert_kernel<int32_t, __half>, g, 256, 0, s, static_cast<const int32_t*>(x), static_cast<__half*>(y), count);
  else if (xt == yt)
    cudaMemcpyAsync(y, x, count * (xt == DType16::F16 ? 2 : 4), cudaMemcpyDeviceToDevice, s);
  else
    throw Error("internal: unsupported conversion");
  check_launch("convert");
}

}  // namespace posert::cuda
