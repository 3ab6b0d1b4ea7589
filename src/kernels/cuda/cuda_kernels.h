// Host-side launchers of PoseRT's own CUDA kernels (NHWC, T = float or half; arithmetic in
// float). Header is plain C++ (no CUDA types): streams are passed as void*.
#pragma once
#include <cstdint>
#include <string>

namespace posert::cuda {

enum class Act : int { None = 0, Relu = 1, Relu6 = 2, Sigmoid = 3 };
enum class DType16 : int { F32 = 0, F16 = 1, I32 = 2 };  // element type of a device buffer

// An ElementwiseChain layer's program (ir/elementwise_chain.h): steps applied in order, each with
// a scalar or per-channel (last dim) constant.
constexpr int kMaxChainSteps = 16;
struct ChainProgram {
  int steps = 0;
  int op[kMaxChainSteps];
  const float* c[kMaxChainSteps];  // device pointer or null
  int c_len[kMaxChainSteps];       // 1 (scalar) or channels
};
// Tactics of an ElementwiseChain layer: its own kernel, or none (kChainFused: the convolution
// after it, tactic kConvChainDirect8Smem, applies the chain to the values it loads).
enum ChainTactic : int { kChainKernel = 0, kChainFused = 1, kChainTacticCount = 2 };
inline constexpr const char* kChainTacticNames[kChainTacticCount] = {"chain", "fused"};

struct ConvParams {
  int n, h, w, c;        // input
  int oh, ow, o;         // output (o = output channels; depthwise: c * multiplier)
  int kh, kw, sh, sw, dh, dw, pad_top, pad_left;
  int multiplier;        // depthwise only
  Act act;
  bool out_f32;          // half input with a float output (the heads of fp16 engines)
};

// Tactics for Conv2D. Which apply depends on the layer (see conv_tactic_applies).
enum ConvTactic : int {
  kConvDirect = 0,      // any shape: one thread per output element
  kConvGemm64 = 1,      // 1x1 stride 1: tiled SIMT GEMM, 64x64 tiles
  kConvGemm32 = 2,      // 1x1 stride 1: tiled SIMT GEMM, 32x64 tiles (small M)
  kConvWmma64 = 3,      // 1x1 stride 1, half: tensor-core GEMM, 64x64 tiles
  kConvWmma32 = 4,      // 1x1 stride 1, half: tensor-core GEMM, 32x64 tiles
  kConvDirect8 = 5,     // output channels % 8 == 0: one thread per pixel and 8 output channels
  kConvDirect8Smem = 6, // as direct8 with the whole filter in shared memory as float (small filters,
                        // such as a network's first conv on 3 channels), read 8 taps per 2 loads
  kConvDwPw64 = 7,      // 1x1 stride 1, half, o % 8 == 0, fed by a 3x3 depthwise layer (the layer just
  kConvDwPw16 = 8,      // before it, tactic kDwFused) computed inside the tensor-core GEMM: 64x64 tiles
                        // with K in chunks, or 16x32 tiles with all of K staged at once and split over
                        // warps (small layers) (dw_pw_conv2d; chosen per pair by the tuner, never alone)
  kConvGroupWmma = 9,     // horizontal groups: this 1x1 convolution and the independent ones right after
  kConvGroupDwPw16 = 10,  // it (tactic kConvGroupMember) in one launch, each as wmma64x64 (conv1x1_group);
  kConvGroupMember = 11,  // or this fused dw+pw pair and the pairs after it, each as dw+pw16x32
                          // (dw_pw_group). A member launches nothing. Chosen by the tuner per group.
  kConvChainDirect8Smem = 12,  // direct8smem's arithmetic on 8x8-pixel tiles staged in shared memory from
                               // the input of the elementwise chain right before it (tactic kChainFused
                               // there), each value put through the chain once (chain_conv2d; chosen per
                               // pair by the tuner, never alone)
  kConvPw16 = 13,        // 1x1 stride 1, half, c % 8 == 0, the c-channel tile fits the GPU's shared memory
                         // (c up to 560 on sm_86/89, 1152 on sm_80, 1744 on sm_90): the tiles of dw+pw16x32 (16 pixels x 32
                         // output channels, all of K staged at once and split over warps) on the input
                         // itself; any o (o % 8 != 0 loads the filter and stores one value at a time)
  kConvGroupPw16 = 14,   // horizontal group of 1x1 convolutions (as kConvGroupWmma), each as pw16x32
  kConvDirect8Pix = 15,  // direct8smem's arithmetic with one thread per output pixel doing every group of
                         // 8 channels (inputs loaded once, filter reads broadcast); 3x3 on 3 channels or
                         // 1x1 on 8/16/24/32/40 channels, o % 8 == 0; the filter (float) and a
                         // 128-pixel output tile in shared memory, at most 96 KiB
  kConvPwDwMember = 16,  // a 1x1 expansion computed by the 3x3 depthwise layer right after it (tactic kDwPwDw
                         // there, pw_dw_conv2d); launches nothing. Chosen per pair by the tuner, never alone
  kConvDwPwPw = 17,       // 1x1, fed by a 1x1 convolution (tactic kConvPwPwMember) fed by a 3x3 depthwise layer right
                          // before that one (kDwFused): the three in one kernel (dw_pw_pw_conv2d; a head branch)
  kConvPwPwMember = 18,   // the middle 1x1 of such a chain: launches nothing
  kConvGroupDwPwPw = 19,  // horizontal group of such chains (as kConvGroupWmma, each member a kConvDwPwPw chain)
  kConvChainMma3x3 = 20,  // mma3x3 whose input is the elementwise chain right before it (tactic kChainFused there),
                          // each staged value put through the chain once (mma3x3_conv2d; chosen per pair by the
                          // tuner, never alone)
  kConvMma3x3 = 21,       // half, 3x3 on 3 input channels (a network's first convolution), 8/16/24/32/48/56/64
                          // outputs, strides and dilations 1 or 2: an implicit GEMM on the tensor cores
                          // (K = 27 padded to 32), 4x16-pixel tiles (conv_mma3x3.cu)
  kConvStemDwPw = 22,     // 1x1 stride 1 (the projection of a MobileNetV2 stem), fed by a 3x3 stride-1 depthwise layer
                          // right before it (kDwFused) fed by a half 3x3 convolution on 3 channels right before that
                          // (kConvStemMember): the three in one kernel, neither intermediate tensor written
                          // (stem_conv2d, conv_stem.cu; chosen by the tuner, never alone)
  kConvStemMember = 23,   // the first convolution of such a stem: launches nothing
  kConvTacticCount = 24,
  // cuDNN (src/engine/cuda/cudnn_conv.h), one tactic per forward algorithm (cudnnConvolutionFwdAlgo_t
  // 0..7) and epilogue. Base + algo: cudnnConvolutionForward, then PoseRT's epilogue kernel;
  // fused base + algo: cudnnConvolutionBiasActivationForward (bias, residual and ReLU in cuDNN).
  kConvCudnnBase = 100,
  kConvCudnnFusedBase = 200,
};
// Tactic ids are stored in engine files: never renumber them.
constexpr int kCudnnAlgoCount = 8;
inline constexpr const char* kConvTacticNames[kConvTacticCount] = {"direct",    "gemm64x64", "gemm32x64",
                                                                   "wmma64x64", "wmma32x64", "direct8",
                                                                   "direct8smem", "dw+pw64x64", "dw+pw16x32", "group:wmma64x64",
                                                                   "group:dw+pw16x32", "grouped", "chain+direct8smem",
                                                                   "pw16x32", "group:pw16x32", "direct8pix", "in-pw+dw", "dw+pw+pw", "in-dw+pw+pw", "group:dw+pw+pw",
                                                                   "chain+mma3x3", "mma3x3", "conv+dw+pw", "in-conv+dw+pw"};
constexpr bool is_dwpw_tactic(int t) { return t == kConvDwPw64 || t == kConvDwPw16; }
constexpr bool is_group_leader_tactic(int t) {
  return t == kConvGroupWmma || t == kConvGroupDwPw16 || t == kConvGroupPw16 || t == kConvGroupDwPwPw;
}
// The convolution tactics that compute the elementwise chain before them (kChainFused there).
constexpr bool is_chain_conv_tactic(int t) { return t == kConvChainDirect8Smem || t == kConvChainMma3x3; }
constexpr int kMaxConvGroup = 4;
inline constexpr const char* kCudnnAlgoNames[kCudnnAlgoCount] = {
    "IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT", "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
constexpr bool is_cudnn_tactic(int t) {
  return (t >= kConvCudnnBase && t < kConvCudnnBase + kCudnnAlgoCount) ||
         (t >= kConvCudnnFusedBase && t < kConvCudnnFusedBase + kCudnnAlgoCount);
}
constexpr bool cudnn_tactic_fused(int t) { return t >= kConvCudnnFusedBase; }
constexpr int cudnn_tactic_algo(int t) { return cudnn_tactic_fused(t) ? t - kConvCudnnFusedBase : t - kConvCudnnBase; }
// Any Conv2D tactic id the runtime knows (ours or cuDNN's), whether or not it applies to a layer.
constexpr bool is_conv_tactic(int t) { return (t >= 0 && t < kConvTacticCount) || is_cudnn_tactic(t); }
// "direct8", "cudnn:IMPLICIT_PRECOMP_GEMM+fused", "cudnn:GEMM+epilogue"; "?" for an unknown id.
// Plain C++, so engine listings work in builds without CUDA.
inline std::string conv_tactic_label(int t) {
  if (t >= 0 && t < kConvTacticCount) return kConvTacticNames[t];
  if (is_cudnn_tactic(t))
    return std::string("cudnn:") + kCudnnAlgoNames[cudnn_tactic_algo(t)] + (cudnn_tactic_fused(t) ? "+fused" : "+epilogue");
  return "?";
}
// PoseRT's own tactics only (cuDNN's are judged by cuDNN, see cudnn_conv.h). Whether a tactic
// applies never depends on p.n: an engine tuned at its max batch runs every smaller batch.
bool conv_tactic_applies(int tactic, const ConvParams& p, bool half);
// Whether the tuner times the tactic for a layer at the batch it tunes for (p.n = max batch):
// applies, and is not one that measures well alone but runs badly at that size in the graph.
bool conv_tactic_offered(int tactic, const ConvParams& p, bool half);
const char* conv_tactic_name(int tactic);

// x, residual: T; y: T, or float when p.out_f32; w: T, TF HWIO [kh,kw,c,o]; bias: float [o]
// (may be null); residual may be null.
void conv2d(int tactic, bool half, const void* x, const void* w, const float* bias, const void* residual, void* y,
            const ConvParams& p, void* stream);
// A convolution whose data input is an elementwise chain's output, computed from the chain's
// input x (type xt, the shape of the convolution's input). A block stages the input an 8x8 tile
// of outputs reaches, each value put through `prog` (channel = last dim) once and rounded to the
// layer's type, as the chain kernel would have stored it; the multiply-adds are direct8smem's in
// its order, so the result is bit-identical to the chain then direct8smem. Tactic
// kConvChainDirect8Smem; applies where direct8smem does and the staged tile fits shared memory.
bool chain_conv_applies(const ConvParams& p, DType16 xt);
void chain_conv2d(DType16 xt, const void* x, const ChainProgram& prog, bool half, const void* w, const float* bias,
                  const void* residual, void* y, const ConvParams& p, void* stream);
// kConvMma3x3 (prog null: x is the layer's half input) and kConvChainMma3x3 (x is the chain's
// input, of type xt, and prog the chain; each staged value goes through the chain once and is
// rounded to half as the chain kernel stores it, so the result is bit-identical to the chain then
// mma3x3). Not bit-identical to the CUDA-core tactics: the tensor cores add the same products in
// their own order. Applies to half layers only (mma3x3_applies).
bool mma3x3_applies(const ConvParams& p, bool half);
void mma3x3_conv2d(DType16 xt, const void* x, const ChainProgram* prog, bool half, const void* w, const float* bias,
                   const void* residual, void* y, const ConvParams& p, void* stream);

// Depthwise: w: T [kh,kw,c,multiplier]; tactic 0 scalar, 1 two channels per thread (half2/float2),
// 2 eight channels per thread (16-byte loads, half, channels % 8 == 0).
// 3, 4: 3x3 kernels (stride 1 or 2, no dilation), half, channels % 8 == 0: one thread computes 8
// channels of 4 (or 2) neighbouring outputs of a row, reusing the input columns they share from
// registers, with 16-byte loads and stores and the epilogue vectorized.
// 5 (kDwFused): the layer launches nothing; the pointwise layer after it computes it (kConvDwPw*).
// 6 (kDw3x3R1): as 3 and 4 with one output per thread.
// 7 (kDwPwDw): the layer computes the 1x1 expansion before it too (kConvPwDwMember there; pw_dw_conv2d).
enum DwTactic : int {
  kDwScalar = 0,
  kDwVec2 = 1,
  kDwVec8 = 2,
  kDw3x3R4 = 3,
  kDw3x3R2 = 4,
  kDwFused = 5,
  kDw3x3R1 = 6,
  kDwPwDw = 7,
  kDwTacticCount = 8
};
inline constexpr const char* kDwTacticNames[kDwTacticCount] = {"scalar", "vec2", "vec8", "3x3r4", "3x3r2", "fused", "3x3r1", "pw+dw"};
bool dw_tactic_applies(int tactic, const ConvParams& p, bool half);
const char* dw_tactic_name(int tactic);
void depthwise_conv2d(int tactic, bool half, const void* x, const void* w, const float* bias, const void* residual,
                      void* y, const ConvParams& p, void* stream);

// A 3x3 depthwise layer (d: multiplier 1, no residual, half output) and the 1x1 convolution that
// reads it (p: o % 8 == 0) in one kernel: y = act(dw(x) * wp + bias + residual), where dw(x) is the
// depthwise layer's half output (never written). wd: half [3,3,c]; wp: half [c,o]; y: half, or
// float when p.out_f32. tactic: kConvDwPw64 or kConvDwPw16.
bool dwpw_applies(int tactic, const ConvParams& d, const ConvParams& p, bool half);
void dw_pw_conv2d(int tactic, const void* x, const void* wd, const float* bd, const ConvParams& d, const void* wp,
                  const float* bias, const void* residual, void* y, const ConvParams& p, void* stream);

// A 1x1 convolution (e: stride 1, half, c % 8 == 0, o % 8 == 0, bias may be null, no residual, half
// output) and the 3x3 depthwise layer that reads it (d: multiplier 1, stride 1 or 2, no dilation, no
// residual, half output) in one kernel (tactic kDwPwDw): y = act_d(dw(act_e(x * we + be)) + bd),
// the expanded tensor never written: a block computes it for the input pixels its output tile
// reaches (zero outside the image: the depthwise layer's padding), rounded to half as the 1x1 layer
// would store it, in shared memory, chunk by chunk of channels, on the tensor cores.
// we: half [c, o]; wd: half [3, 3, o]; be, bd: float [o] or null.
bool pwdw_applies(const ConvParams& e, const ConvParams& d, bool half);
void pw_dw_conv2d(const void* x, const void* we, const float* be, const ConvParams& e, const void* wd, const float* bd,
                  const ConvParams& d, void* y, void* stream);
// Whether the tuner times pw+dw for a pair at the batch it tunes for: applies, and its tiles alone
// give every SM two blocks (each computing all of its tile's channels). With fewer, at batch 1,
// thunder's forward pass measured 0.2806 -> 0.2866 ms with the pairs the tuner's per-layer timing
// chose fused (H100), so smaller pairs stay apart.
bool pwdw_offered(const ConvParams& e, const ConvParams& d, bool half);

// A head branch in one kernel: a 3x3 depthwise layer (d: stride 1, multiplier 1, at most 64 channels,
// a multiple of 8, half output, no residual), the 1x1 convolution that reads it (p1: half output,
// at most 128 channels, a multiple of 8, no residual) and the 1x1 convolution that reads that
// (p2: at most 64 outputs, half or float, no residual). Neither intermediate tensor is written;
// each is rounded to half as its layer would store it. count 1 (tactic kConvDwPwPw) or 2..4
// independent chains in one launch (kConvGroupDwPwPw), all with float or all with half outputs.
struct DwPwPwArgs {
  const void* x;   // the depthwise input
  const void* wd;  // half [3, 3, c]
  const float* bd; // or null
  ConvParams d;
  const void* w1;  // half [c, m]
  const float* b1;
  ConvParams p1;
  const void* w2;  // half [m, k]
  const float* b2;
  void* y;
  ConvParams p2;
};
bool dwpwpw_applies(const ConvParams& d, const ConvParams& p1, const ConvParams& p2);
// Whether count (1..4) chains can be one launch: each applies, the outputs all float or all half,
// and the widest member's tiles fit the GPU's shared memory.
bool dwpwpw_group_applies(const DwPwPwArgs* a, int count);
void dw_pw_pw_conv2d(const DwPwPwArgs* a, int count, void* stream);

// Horizontal groups: 2..kMaxConvGroup independent layers of one kind in one launch (blockIdx.z
// picks the layer); each computes exactly what its single-layer kernel computes.
// conv1x1_group: 1x1 stride-1 half convolutions, all with half or all with float output: tactic
// kConvGroupWmma runs each as wmma64x64, kConvGroupPw16 each as pw16x32. dw_pw_group: fused depthwise + pointwise pairs (dw+pw16x32 each), as dw_pw_conv2d.
struct Conv1x1Args {
  const void* x;
  const void* w;
  const float* bias;
  const void* res;
  void* y;
  ConvParams p;
};
struct DwPwArgs {
  const void* x;
  const void* wd;
  const float* bd;
  ConvParams d;
  const void* wp;
  const float* bias;
  const void* res;
  void* y;
  ConvParams p;
};
// A MobileNetV2 stem in one kernel (tactic kConvStemDwPw): c, the first convolution (half, 3x3 on 3
// channels, stride 1 or 2, no dilation, any padding and activation, no residual); d, the 3x3 stride-1
// depthwise layer reading its output (multiplier 1, padding 1 on every side, no residual); q, the
// 1x1 convolution reading the depthwise output (no residual, half output). y = act_q(pw(act_d(dw(
// act_c(conv(x) + b1)) + bd)) + bp), the two intermediate tensors never written: a block computes
// a 14x14 output tile from the first convolution's outputs over the tile and its rim, rounding each
// intermediate value to half as the layers apart store it. Compiled for (c.o, q.o) = (16, 8),
// (24, 16), (32, 16), (48, 24), (56, 32): MobileNetV2's stems at its usual widths.
struct StemArgs {
  const void* x;   // the first convolution's input, half NHWC
  const void* w1;  // half [3,3,3,c.o]
  const float* b1; // float [c.o] or null
  ConvParams c;
  const void* wd;  // half [3,3,c.o,1]
  const float* bd;
  ConvParams d;
  const void* wp;  // half [1,1,c.o,q.o]
  const float* bp;
  ConvParams q;
  void* y;         // half NHWC, q's output
};
bool stem_applies(const ConvParams& c, const ConvParams& d, const ConvParams& q, bool half);
void stem_conv2d(const StemArgs& a, void* stream);

bool conv1x1_group_applies(int tactic, const ConvParams* p, int count);
bool dw_pw_group_applies(const ConvParams* d, const ConvParams* p, int count);
void conv1x1_group(int tactic, const Conv1x1Args* a, int count, void* stream);
void dw_pw_group(const DwPwArgs* a, int count, void* stream);

// The epilogue of a convolution computed by someone else (cuDNN): y = act(conv + bias + residual)
// per element, channels = last dim. conv: T, or half when out_f32 (y then float); y may be conv
// (in place). bias: float [channels] or null; residual: T or null.
void conv_epilogue(bool half, bool out_f32, const void* conv, const float* bias, const void* residual, void* y,
                   int64_t count, int channels, Act act, void* stream);

// The shared memory one block may opt in to on the current device (227 KiB on sm_90, 163 KiB on
// sm_80, 99 KiB on sm_86/89), asked once per device; 48 KiB when there is no device to ask.
size_t max_smem_optin();
// The current GPU's multiprocessor count (132 when there is no device to ask).
int sm_count();
// The current GPU's compute capability major version, asked once per device (0 when there is no
// device to ask): 9 and up have the sm_90 features (bulk copies, programmatic launch).
int compute_capability_major();

// Programmatic dependent launch (process-wide): when on, PoseRT's kernels are launched so that each
// may be scheduled while the kernel before it on the stream finishes, waiting on the device for
// its results (hides the launch gap between the small kernels of a batch-1 pass). Supported when
// the current device has compute capability 9.0+ and runs kernels compiled for it (sm_90 SASS or
// compute_90 PTX; older code lacks the device-side wait). init_programmatic_launch() turns it on
// once per process where supported unless $POSERT_PDL is 0; set_programmatic_launch overrides.
bool programmatic_launch_supported();
void init_programmatic_launch();
void set_programmatic_launch(bool on);
bool programmatic_launch();

// y = program(f32(x)); x of type xt, y of type yt; channels = last dim.
void elementwise_chain(DType16 xt, const void* x, DType16 yt, void* y, int64_t count, int channels,
                       const ChainProgram& prog, void* stream);

// y = a + b with numpy broadcasting, ranks <= 6 (dims already right-aligned to rank).
struct BroadcastShape {
  int rank;
  int64_t out[6], a_stride[6], b_stride[6];  // stride 0 on broadcast dims
};
void add_broadcast(bool half, const void* a, const void* b, void* y, const BroadcastShape& s, void* stream);

void resize_bilinear(bool half, const void* x, void* y, int n, int h, int w, int c, int oh, int ow,
                     bool align_corners, bool half_pixel_centers, void* stream);

void convert(DType16 xt, const void* x, DType16 yt, void* y, int64_t count, void* stream);

// Keeps `stream` busy for about ns nanoseconds (one thread reading the GPU's timer). Benchmarks
// put it before the first event, so that the event and the work after it are queued before the
// GPU reaches them and the events time the GPU's work, not the host's launch calls. ns = 0: one
// empty kernel (the floor of a measurement).
void spin(int64_t ns, void* stream);

}  // namespace posert::cuda
