// The convolution epilogue as a kernel of its own, for convolutions computed by a library (cuDNN)
// that cannot fuse it: out = act(conv + bias + residual), with the half -> float conversion of
// the heads of fp16 engines. Same arithmetic as the fused epilogue of conv.cu.
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_kernels.h"
#include "engine/engine_env.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace posert::cuda {

namespace {

template <class T, class TC, class TO>
__global__ void conv_epilogue_kernel(const TC* conv, const float* __restrict__ bias, const T* __restrict__ res, TO* y,
                                     int64_t count, int channels, int act) {
  pdl_wait();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float v = ldf(conv + i);
    if (bias) v += bias[i % channels];
    if (res) v += ldf(res + i);
    stf(y + i, apply_act(v, act));
  }
}

}  // namespace

void conv_epilogue(bool half, bool out_f32, const void* conv, const float* bias, const void* residual, void* y,
                   int64_t count, int channels, Act act, void* stream) {
  if (count == 0) return;
  if (channels < 1) throw Error("internal: conv_epilogue with no channels");
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  const int g = grid_for(count, 256);
  const int a = static_cast<int>(act);
  if (!half) {
    if (out_f32) throw Error("internal: conv_epilogue with float output needs a half convolution");
    launch(conv_epilogue_kernel<float, float, float>, g, 256, 0, s, static_cast<const float*>(conv), bias,
                                                               static_cast<const float*>(residual),
                                                               static_cast<float*>(y), count, channels, a);
  } else if (out_f32) {
    launch(conv_epilogue_kernel<__half, __half, float>, g, 256, 0, s, static_cast<const __half*>(conv), bias,
                                                                  static_cast<const __half*>(residual),
                                                                  static_cast<float*>(y), count, channels, a);
  } else {
    launch(conv_epilogue_kernel<__half, __half, __half>, g, 256, 0, s, static_cast<const __half*>(conv), bias,
                                                                   static_cast<const __half*>(residual),
                                                                   static_cast<__half*>(y), count, channels, a);
  }
  check_launch("conv_epilogue");
}

namespace {
std::atomic<bool> g_programmatic_launch{false};
}

bool programmatic_launch_supported() {
  if (compute_capability_major() < 9) return false;
  // The code this device runs must have the device-side wait (pdl_wait compiles it for 9.0+).
  cudaFuncAttributes a{};
  if (cudaFuncGetAttributes(&a, conv_epilogue_kernel<float, float, float>) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return a.ptxVersion >= 90 && a.binaryVersion >= 90;
}

void init_programmatic_launch() {
  static std::once_flag once;
  std::call_once(once, [] {
    set_programmatic_launch(pdl_allowed_by_env() && programmatic_launch_supported());
  });
}

void set_programmatic_launch(bool on) { g_programmatic_launch.store(on, std::memory_order_relaxed); }
bool programmatic_launch() { return g_programmatic_launch.load(std::memory_order_relaxed); }

}  // namespace posert::cuda
