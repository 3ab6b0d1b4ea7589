// Device helpers shared by the GPU decoders: owned workspace, launch checks, the CPU's std::min /
// std::max / argmax semantics (NaN included), exp as the CPU's expf rounds it, and writing
// PoseItemLayout records. Arithmetic that must match the CPU uses the _rn intrinsics, which nvcc
// never contracts into FMAs.
#pragma once
#include <cuda_runtime.h>

#include <climits>
#include <cstdint>
#include <string>

#include "pose/decode_launch.h"
#include "pose/pose_record.h"
#include "posert/error.h"

namespace posert::cuda::detail {

inline void cuda_check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw Error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(e));
}

// Checks the launch just made without synchronizing (safe under stream capture).
inline void launch_check(const char* kernel) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw Error(std::string("CUDA kernel ") + kernel + " failed to launch: " + cudaGetErrorString(e));
}

// The current device's SM count (at least 1).
inline int sm_count(const char* what) {
  int dev = 0, sms = 0;
  cuda_check(cudaGetDevice(&dev), what);
  cuda_check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), what);
  return sms > 0 ? sms : 1;
}

// How many blocks of `kernel` (blocks of `threads`, no dynamic shared memory) the current device
// runs at once: the most a launch can have and still run in one wave.
template <class Kernel>
inline int resident_blocks(Kernel kernel, int threads, const char* what) {
  int per_sm = 0;
  cuda_check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, 0), what);
  return per_sm > 0 ? sm_count(what) * per_sm : 1;
}

// A device allocation made at construction time, freed with its owner.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(size_t bytes, const char* what) {
    if (bytes > 0) cuda_check(cudaMalloc(&p_, bytes), what);
  }
  ~DeviceBuffer() {
    if (p_) cudaFree(p_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      if (p_) cudaFree(p_);
      p_ = o.p_;
      o.p_ = nullptr;
    }
    return *this;
  }
  template <class T> T* as() const { return static_cast<T*>(p_); }

 private:
  void* p_ = nullptr;
};

// std::min / std::max as the CPU decoders call them (the first argument wins unless the second
// compares strictly better, so NaN propagates only from the first argument).
__device__ __forceinline__ float std_min(float a, float b) { return b < a ? b : a; }
__device__ __forceinline__ float std_max(float a, float b) { return a < b ? b : a; }

// The CPU's float expf, as nearly as the GPU can: exp in double rounded once to float is the
// correctly rounded result; glibc's expf (error <= 0.502 ulp) agrees except in rare halfway
// cases, where the two differ by one ulp.
__device__ __forceinline__ float exp_as_cpu(float x) { return __double2float_rn(exp(static_cast<double>(x))); }

// Model-input pixel -> frame pixel, x * scale + offset in float without FMA (as the CPU does).
__device__ __forceinline__ float frame_x(const CropTransform& t, float x) {
  return __fadd_rn(__fmul_rn(x, t.scale_x), t.offset_x);
}
__device__ __forceinline__ float frame_y(const CropTransform& t, float y) {
  return __fadd_rn(__fmul_rn(y, t.scale_y), t.offset_y);
}

// Argmax candidate. The CPU scan `if (i == 0 || v > best) take i` returns the first index of the
// maximum over the non-NaN values, or 0 when value 0 is NaN (nothing compares greater than NaN).
// The parallel reduction orders candidates by value descending, NaN last, then index ascending;
// the caller applies the value-0-is-NaN rule. Empty slots have index INT_MAX.
struct ArgMax {
  float v;
  int i;
};
__device__ __forceinline__ ArgMax argmax_empty() { return {__int_as_float(0x7fc00000), INT_MAX}; }
__device__ __forceinline__ bool argmax_before(float va, int ia, float vb, int ib) {
  const bool na = isnan(va), nb = isnan(vb);
  if (na || nb) return na == nb ? ia < ib : nb;
  return va > vb || (va == vb && ia < ib);
}
__device__ __forceinline__ void argmax_take(ArgMax& a, float v, int i) {
  if (argmax_before(v, i, a.v, a.i)) a = {v, i};
}
// An argmax candidate as one integer whose unsigned order is the reduction's order (value
// descending with -0 == +0, NaN last, then index ascending), so blocks merge with atomicMax.
__device__ __forceinline__ unsigned long long argmax_key(ArgMax a) {
  unsigned hi = 0;  // NaN: below every number
  if (!isnan(a.v)) {
    const unsigned u = __float_as_uint(a.v == 0.0f ? 0.0f : a.v);
    hi = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
  }
  return (static_cast<unsigned long long>(hi) << 32) | (0xffffffffu - static_cast<unsigned>(a.i));
}
__device__ __forceinline__ int argmax_key_index(unsigned long long key) {
  return static_cast<int>(0xffffffffu - static_cast<unsigned>(key & 0xffffffffu));
}

// The warp's largest argmax key (argmax_key's order is the CPU scan's: value descending, NaN
// last, then index ascending; 0 = no candidate, below every key): the largest high word, then the
// largest low word among the lanes holding it, each one warp reduction (redux.sync, sm_80+), where
// a butterfly of 64-bit shuffles took five dependent rounds. Every lane of the warp calls it.
__device__ __forceinline__ unsigned long long warp_max_key(unsigned long long k) {
  const unsigned hi = static_cast<unsigned>(k >> 32), lo = static_cast<unsigned>(k);
  const unsigned top = __reduce_max_sync(0xffffffffu, hi);
  const unsigned low = __reduce_max_sync(0xffffffffu, hi == top ? lo : 0u);
  return (static_cast<unsigned long long>(top) << 32) | low;
}

// atomicAdd on a global counter with acquire-release semantics at device scope (PTX
// atom.acq_rel.gpu). After a block barrier, one thread's add orders the whole block's earlier
// writes and atomics before it (release is cumulative through the barrier), and the block's later
// reads after it (acquire, then a barrier): the "last block" handshake with one thread's ordering
// in place of a __threadfence() (fence.sc) by every thread before and after.
__device__ __forceinline__ unsigned atomic_add_acq_rel_gpu(unsigned* p, unsigned v) {
  unsigned old;
  asm volatile("atom.acq_rel.gpu.global.add.u32 %0, [%1], %2;" : "=r"(old) : "l"(p), "r"(v) : "memory");
  return old;
}

// Relaxed 64-bit load and store at device scope (PTX ld/st.relaxed.gpu): through L2, never an
// SM's L1, so that a block polling a word another block stores sees the store once it lands.
__device__ __forceinline__ unsigned long long ld_relaxed_gpu(const unsigned long long* p) {
  unsigned long long v;
  asm volatile("ld.relaxed.gpu.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
  return v;
}
__device__ __forceinline__ void st_relaxed_gpu(unsigned long long* p, unsigned long long v) {
  asm volatile("st.relaxed.gpu.global.u64 [%0], %1;" ::"l"(p), "l"(v) : "memory");
}

// The "last block" handshake of a decoder whose blocks split one item: every thread of the block
// calls it once, after its writes and atomics for the item; it returns true (in every thread) in
// the one block that counts last, which may then read what every other block wrote. The block's
// writes are ordered before its count by a barrier and one thread's release add, the other blocks'
// before the last block's later reads by the same add's acquire and a second barrier. The counter
// is left at `blocks` for the last block to reset.
__device__ __forceinline__ bool last_block_of_item(unsigned* done, unsigned blocks) {
  __shared__ bool s_last;
  __syncthreads();
  if (threadIdx.x == 0) s_last = atomic_add_acq_rel_gpu(done, 1u) == blocks - 1;
  __syncthreads();
  return s_last;
}

// Start of item b's records and its header, in a PoseItemLayout buffer.
__device__ __forceinline__ char* item_ptr(void* out, int b, int max_poses) {
  return static_cast<char*>(out) + static_cast<size_t>(b) * (16 + static_cast<size_t>(max_poses) * sizeof(PoseRecord));
}
__device__ __forceinline__ PoseRecord* item_records(void* out, int b, int max_poses) {
  return reinterpret_cast<PoseRecord*>(item_ptr(out, b, max_poses) + 16);
}
// Writes the 16-byte header (count and three zero words).
__device__ __forceinline__ void write_item_header(void* out, int b, int max_poses, int count) {
  int32_t* h = reinterpret_cast<int32_t*>(item_ptr(out, b, max_poses));
  h[0] = count;
  h[1] = h[2] = h[3] = 0;
}
// Zeroes records [from, max_poses) of item b with the calling block's threads.
__device__ __forceinline__ void zero_item_records(void* out, int b, int max_poses, int from) {
  float* r = reinterpret_cast<float*>(item_records(out, b, max_poses) + from);
  const int words = (max_poses - from) * static_cast<int>(sizeof(PoseRecord) / sizeof(float));
  for (int i = threadIdx.x; i < words; i += blockDim.x) r[i] = 0.0f;
}

}  // namespace posert::cuda::detail
