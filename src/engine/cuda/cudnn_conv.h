// cuDNN as a tactic for dense convolutions (NHWC, fp32 or fp16 storage, fp32 compute): which of
// cuDNN's forward algorithms apply to a layer, their workspace, and running one, either fused
// (cudnnConvolutionBiasActivationForward) or followed by PoseRT's epilogue kernel.
#pragma once
#include <cuda_runtime.h>

#include <memory>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_kernels.h"
#include "posert/error.h"

namespace posert::cuda {

// cudnnGetVersion() of the library loaded at run time (9.14.0 -> 91400); 0 in a build without
// cuDNN. cudnn_version_name (engine_plan.h) writes it as "9.14.0".
int cudnn_runtime_version();

// Whether cuDNN can compute the layer at all: cuDNN pads both sides of an axis by the same amount,
// so a layer whose output size needs more padding at the bottom/right than at the top/left
// (asymmetric SAME padding, e.g. an even input with stride 2) is left to PoseRT's kernels. When the
// output sizes agree, cuDNN's indexing is the same as ours (rows past the end read as zeros).
bool cudnn_conv_eligible(const ConvParams& p);
// The static rules of the fused path (the cuDNN call decides the rest when tuning): a bias,
// activation ReLU or none (none only with IMPLICIT_PRECOMP_GEMM), the output in the input's type.
bool cudnn_fused_allowed(int tactic, const ConvParams& p, bool has_bias);

// cuDNN said a tactic does not support a layer (a NOT_SUPPORTED status): the tuner skips the tactic.
class CudnnUnsupported : public Error {
 public:
  using Error::Error;
};

// Device buffers of one launch. w: filter in KRSC order [o][kh][kw][c] (cuDNN's NHWC filter
// layout), in the layer's type; bias: float [o]; bias_t: the bias in the layer's type, for the
// fused path (cuDNN wants the bias in the output's type); residual may be null.
struct CudnnConvArgs {
  const void* x = nullptr;
  const void* w = nullptr;
  const float* bias = nullptr;
  const void* bias_t = nullptr;
  const void* residual = nullptr;
  void* y = nullptr;
  void* workspace = nullptr;  // at least workspace_bytes(tactic, ...) bytes
  size_t workspace_bytes = 0;
};

// One cuDNN handle bound to one stream, with descriptors reused by every call. One per
// DeviceContext; not thread-safe. Every call names the layer in its errors.
class CudnnConv {
 public:
  explicit CudnnConv(cudaStream_t stream);
  ~CudnnConv();
  CudnnConv(const CudnnConv&) = delete;
  CudnnConv& operator=(const CudnnConv&) = delete;

  // The cuDNN tactics for the layer at p.n images: every forward algorithm cuDNN reports as
  // supported and deterministic, with a workspace of at most kMaxWorkspace; each as an epilogue
  // tactic and, where cudnn_fused_allowed, as a fused one. Empty when !cudnn_conv_eligible.
  std::vector<int> candidates(const ConvParams& p, bool half, bool has_bias, const std::string& layer);
  // Device bytes a launch of `tactic` needs at p.n images: for a float output of a half layer
  // (out_f32) a half buffer for the convolution, then cuDNN's workspace. Throws CudnnUnsupported.
  size_t workspace_bytes(int tactic, const ConvParams& p, bool half, const std::string& layer);
  // Enqueues the layer on the stream: no allocation and no synchronization, so it can be captured
  // into a CUDA graph once the same call has run outside capture (cuDNN builds its plans lazily).
  void run(int tactic, const ConvParams& p, bool half, const CudnnConvArgs& a, const std::string& layer);

  static constexpr size_t kMaxWorkspace = size_t{256} << 20;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace posert::cuda
