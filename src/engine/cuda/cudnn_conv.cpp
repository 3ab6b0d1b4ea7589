#include "engine/cuda/cudnn_conv.h"

#include <cstdint>

#include "engine/engine_plan.h"

#if POSERT_HAVE_CUDNN
#include <cudnn.h>
#endif

namespace posert::cuda {

namespace {

constexpr size_t align256(size_t v) { return (v + 255) / 256 * 256; }

int64_t out_elems(const ConvParams& p) { return static_cast<int64_t>(p.n) * p.oh * p.ow * p.o; }

// Output size along one axis with the same padding on both sides, as cuDNN computes it.
int symmetric_out(int in, int k, int s, int d, int pad) {
  const int64_t span = static_cast<int64_t>(k - 1) * d + 1;
  const int64_t room = static_cast<int64_t>(in) + 2 * static_cast<int64_t>(pad) - span;
  return room < 0 ? 0 : static_cast<int>(room / s + 1);
}

}  // namespace

bool cudnn_conv_eligible(const ConvParams& p) {
  constexpr int64_t kMax = int64_t{1} << 31;
  if (p.n < 1 || p.multiplier != 1 || p.sh < 1 || p.sw < 1 || p.dh < 1 || p.dw < 1) return false;
  if (static_cast<int64_t>(p.n) * p.h * p.w * p.c >= kMax || out_elems(p) >= kMax) return false;
  return symmetric_out(p.h, p.kh, p.sh, p.dh, p.pad_top) == p.oh && symmetric_out(p.w, p.kw, p.sw, p.dw, p.pad_left) == p.ow;
}

bool cudnn_fused_allowed(int tactic, const ConvParams& p, bool has_bias) {
  if (!is_cudnn_tactic(tactic) || !cudnn_tactic_fused(tactic) || p.out_f32 || !has_bias) return false;
  if (p.act == Act::Relu) return true;
  // cuDNN documents the IDENTITY activation of the fused call for IMPLICIT_PRECOMP_GEMM only.
  return p.act == Act::None && cudnn_tactic_algo(tactic) == 1;
}

#if POSERT_HAVE_CUDNN

static_assert(CUDNN_CONVOLUTION_FWD_ALGO_COUNT == kCudnnAlgoCount, "cuDNN forward algorithms changed: tactic ids too");
static_assert(CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM == 1, "cudnn_fused_allowed assumes algorithm 1");

namespace {

// For a float output of a half layer cuDNN writes the convolution in half (it has no half-in,
// float-out configuration) into the front of the workspace; the epilogue then adds bias and
// residual in float and writes the float output. That rounds the convolution to half once, which
// the 1e-2 bound of fp16 layers covers.
size_t scratch_bytes(const ConvParams& p, bool half) {
  return half && p.out_f32 ? align256(static_cast<size_t>(out_elems(p)) * 2) : 0;
}

void ck(cudnnStatus_t s, const char* call, const std::string& layer) {
  if (s == CUDNN_STATUS_SUCCESS) return;
  char detail[512] = {0};
  cudnnGetLastErrorString(detail, sizeof detail);
  std::string m = std::string("cuDNN ") + call + " failed for layer '" + layer + "': " + cudnnGetErrorString(s);
  if (detail[0]) m += std::string(" (") + detail + ")";
  if (CUDNN_STATUS_CATEGORY(s) == CUDNN_STATUS_NOT_SUPPORTED) throw CudnnUnsupported(m);
  throw Error(m);
}

}  // namespace

int cudnn_runtime_version() { return static_cast<int>(cudnnGetVersion()); }

struct CudnnConv::Impl {
  cudaStream_t stream = nullptr;
  cudnnHandle_t handle = nullptr;
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnActivationDescriptor_t act = nullptr;

  ~Impl() {
    if (act) cudnnDestroyActivationDescriptor(act);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (bias) cudnnDestroyTensorDescriptor(bias);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (x) cudnnDestroyTensorDescriptor(x);
    if (handle) cudnnDestroy(handle);
  }

  // Descriptors of the layer at p.n images. Host-only calls: no allocation, no device work.
  void set(const ConvParams& p, bool half, const std::string& layer) {
    const cudnnDataType_t dt = half ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
    ck(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NHWC, dt, p.n, p.c, p.h, p.w), "cudnnSetTensor4dDescriptor (input)", layer);
    // NHWC filters are KRSC: [output channel][kh][kw][input channel].
    ck(cudnnSetFilter4dDescriptor(w, dt, CUDNN_TENSOR_NHWC, p.o, p.c, p.kh, p.kw), "cudnnSetFilter4dDescriptor", layer);
    // TF's convolution is a cross-correlation; accumulation in float for both storage types.
    ck(cudnnSetConvolution2dDescriptor(conv, p.pad_top, p.pad_left, p.sh, p.sw, p.dh, p.dw, CUDNN_CROSS_CORRELATION,
                                       CUDNN_DATA_FLOAT),
       "cudnnSetConvolution2dDescriptor", layer);
    // fp32 layers must not use TF32 tensor cores (10-bit mantissa; the fp32 engine promises 1e-4):
    // FMA_MATH rules them out. fp16 layers use tensor cores with float accumulation.
    ck(cudnnSetConvolutionMathType(conv, half ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH), "cudnnSetConvolutionMathType", layer);
    ck(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NHWC, dt, p.n, p.o, p.oh, p.ow), "cudnnSetTensor4dDescriptor (output)", layer);
  }
};

CudnnConv::CudnnConv(cudaStream_t stream) : impl_(std::make_unique<Impl>()) {
  const std::string what = "(cuDNN handle)";
  const int v = cudnn_runtime_version();
  if (v / 10000 != CUDNN_MAJOR)
    throw Error("the cuDNN library loaded at run time is " + cudnn_version_name(v) + " but this PoseRT was built for cuDNN " +
                std::to_string(CUDNN_MAJOR) + ".x; install cuDNN " + std::to_string(CUDNN_MAJOR) + " or rebuild PoseRT");
  impl_->stream = stream;
  ck(cudnnCreate(&impl_->handle), "cudnnCreate", what);
  ck(cudnnSetStream(impl_->handle, stream), "cudnnSetStream", what);
  ck(cudnnCreateTensorDescriptor(&impl_->x), "cudnnCreateTensorDescriptor", what);
  ck(cudnnCreateTensorDescriptor(&impl_->y), "cudnnCreateTensorDescriptor", what);
  ck(cudnnCreateTensorDescriptor(&impl_->bias), "cudnnCreateTensorDescriptor", what);
  ck(cudnnCreateFilterDescriptor(&impl_->w), "cudnnCreateFilterDescriptor", what);
  ck(cudnnCreateConvolutionDescriptor(&impl_->conv), "cudnnCreateConvolutionDescriptor", what);
  ck(cudnnCreateActivationDescriptor(&impl_->act), "cudnnCreateActivationDescriptor", what);
}

CudnnConv::~CudnnConv() = default;

std::vector<int> CudnnConv::candidates(const ConvParams& p, bool half, bool has_bias, const std::string& layer) {
  std::vector<int> out;
  if (!cudnn_conv_eligible(p)) return out;
  Impl& m = *impl_;
  m.set(p, half, layer);
  int n = 0, c = 0, h = 0, w = 0;
  ck(cudnnGetConvolution2dForwardOutputDim(m.conv, m.x, m.w, &n, &c, &h, &w), "cudnnGetConvolution2dForwardOutputDim", layer);
  if (n != p.n || c != p.o || h != p.oh || w != p.ow) return out;  // cudnn_conv_eligible should have said so
  int max_count = 0;
  ck(cudnnGetConvolutionForwardAlgorithmMaxCount(m.handle, &max_count), "cudnnGetConvolutionForwardAlgorithmMaxCount", layer);
  if (max_count < 1) return out;
  std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(static_cast<size_t>(max_count));
  int returned = 0;
  ck(cudnnGetConvolutionForwardAlgorithm_v7(m.handle, m.x, m.w, m.conv, m.y, max_count, &returned, perf.data()),
     "cudnnGetConvolutionForwardAlgorithm_v7", layer);
  bool seen[kCudnnAlgoCount] = {};
  for (int i = 0; i < returned && i < max_count; ++i) {
    const cudnnConvolutionFwdAlgoPerf_t& r = perf[static_cast<size_t>(i)];
    const int algo = static_cast<int>(r.algo);
    if (r.status != CUDNN_STATUS_SUCCESS || algo < 0 || algo >= kCudnnAlgoCount || seen[algo]) continue;
    // Deterministic only: a saved engine must give the outputs the built one gave.
    if (r.determinism != CUDNN_DETERMINISTIC) continue;
    if (!half && (r.mathType == CUDNN_TENSOR_OP_MATH || r.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)) continue;
    size_t ws = 0;
    if (cudnnGetConvolutionForwardWorkspaceSize(m.handle, m.x, m.w, m.conv, m.y, r.algo, &ws) != CUDNN_STATUS_SUCCESS ||
        ws > kMaxWorkspace)
      continue;
    seen[algo] = true;
    out.push_back(kConvCudnnBase + algo);
    if (cudnn_fused_allowed(kConvCudnnFusedBase + algo, p, has_bias)) out.push_back(kConvCudnnFusedBase + algo);
  }
  return out;
}

size_t CudnnConv::workspace_bytes(int tactic, const ConvParams& p, bool half, const std::string& layer) {
  if (!is_cudnn_tactic(tactic)) throw Error("internal: layer '" + layer + "': tactic " + std::to_string(tactic) + " is not cuDNN's");
  if (!cudnn_conv_eligible(p))
    throw Error("layer '" + layer + "': tactic " + conv_tactic_label(tactic) +
                " does not apply (cuDNN pads symmetrically and this layer needs more padding at the bottom/right)");
  Impl& m = *impl_;
  m.set(p, half, layer);
  size_t ws = 0;
  ck(cudnnGetConvolutionForwardWorkspaceSize(m.handle, m.x, m.w, m.conv, m.y,
                                             static_cast<cudnnConvolutionFwdAlgo_t>(cudnn_tactic_algo(tactic)), &ws),
     "cudnnGetConvolutionForwardWorkspaceSize", layer);
  return scratch_bytes(p, half) + align256(ws);
}

void CudnnConv::run(int tactic, const ConvParams& p, bool half, const CudnnConvArgs& a, const std::string& layer) {
  if (!is_cudnn_tactic(tactic)) throw Error("internal: layer '" + layer + "': tactic " + std::to_string(tactic) + " is not cuDNN's");
  if (!cudnn_conv_eligible(p))
    throw Error("layer '" + layer + "': tactic " + conv_tactic_label(tactic) +
                " does not apply (cuDNN pads symmetrically and this layer needs more padding at the bottom/right)");
  Impl& m = *impl_;
  m.set(p, half, layer);
  const size_t scratch = scratch_bytes(p, half);
  if (a.workspace_bytes < scratch || (scratch && !a.workspace))
    throw Error("internal: layer '" + layer + "': the workspace is smaller than the float head's scratch buffer");
  uint8_t* ws = static_cast<uint8_t*>(a.workspace);
  void* cudnn_ws = a.workspace_bytes > scratch ? ws + scratch : nullptr;
  const size_t cudnn_ws_bytes = a.workspace_bytes - scratch;
  const auto algo = static_cast<cudnnConvolutionFwdAlgo_t>(cudnn_tactic_algo(tactic));
  const float one = 1.0f, zero = 0.0f;  // scaling factors are float for float and half data
  if (cudnn_tactic_fused(tactic)) {
    if (!cudnn_fused_allowed(tactic, p, a.bias_t != nullptr))
      throw Error("layer '" + layer + "': tactic " + conv_tactic_label(tactic) +
                  " does not apply (the fused cuDNN call needs a bias, ReLU or no activation (none only with "
                  "IMPLICIT_PRECOMP_GEMM) and an output in the input's type)");
    const cudnnDataType_t dt = half ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
    ck(cudnnSetTensor4dDescriptor(m.bias, CUDNN_TENSOR_NHWC, dt, 1, p.o, 1, 1), "cudnnSetTensor4dDescriptor (bias)", layer);
    ck(cudnnSetActivationDescriptor(m.act, p.act == Act::Relu ? CUDNN_ACTIVATION_RELU : CUDNN_ACTIVATION_IDENTITY,
                                    CUDNN_NOT_PROPAGATE_NAN, 0.0),
       "cudnnSetActivationDescriptor", layer);
    // y = act(conv(x) + alpha2 * z + bias): the residual is z with alpha2 = 1; without one z is y,
    // which alpha2 = 0 leaves unread.
    const float alpha2 = a.residual ? 1.0f : 0.0f;
    ck(cudnnConvolutionBiasActivationForward(m.handle, &one, m.x, a.x, m.w, a.w, m.conv, algo, cudnn_ws, cudnn_ws_bytes,
                                             &alpha2, m.y, a.residual ? a.residual : a.y, m.bias, a.bias_t, m.act, m.y, a.y),
       "cudnnConvolutionBiasActivationForward", layer);
    return;
  }
  void* conv_out = scratch ? static_cast<void*>(ws) : a.y;
  ck(cudnnConvolutionForward(m.handle, &one, m.x, a.x, m.w, a.w, m.conv, algo, cudnn_ws, cudnn_ws_bytes, &zero, m.y, conv_out),
     "cudnnConvolutionForward", layer);
  if (a.bias || a.residual || p.act != Act::None || scratch)
    conv_epilogue(half, scratch != 0, conv_out, a.bias, a.residual, a.y, out_elems(p), p.o, p.act, m.stream);
}

#else  // !POSERT_HAVE_CUDNN

int cudnn_runtime_version() { return 0; }

struct CudnnConv::Impl {};

namespace {
[[noreturn]] void no_cudnn() {
  throw Error("this PoseRT was built without cuDNN (cudnn.h or libcudnn was not found at configure time); "
              "rebuild the engine here with 'posert build --model ...' to use PoseRT's own kernels");
}
}  // namespace

CudnnConv::CudnnConv(cudaStream_t) { no_cudnn(); }
CudnnConv::~CudnnConv() = default;
std::vector<int> CudnnConv::candidates(const ConvParams&, bool, bool, const std::string&) { no_cudnn(); }
size_t CudnnConv::workspace_bytes(int, const ConvParams&, bool, const std::string&) { no_cudnn(); }
void CudnnConv::run(int, const ConvParams&, bool, const CudnnConvArgs&, const std::string&) { no_cudnn(); }

#endif

}  // namespace posert::cuda
