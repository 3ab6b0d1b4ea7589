// EnginePlan: everything an optimized engine is, in host memory: the fused layer list, the
// tensors with their arena offsets, the chosen tactics, the weights, and what it was built for.
// The CUDA runtime executes it; engine_file.h writes and reads it.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ir/graph.h"

namespace posert {

enum class Precision : uint8_t { FP32 = 0, FP16 = 1 };
const char* precision_name(Precision p);
Precision parse_precision(const std::string& s);  // usage Error for anything but fp32|fp16

// Storage type of a tensor on the device.
enum class Storage : uint8_t { F32 = 0, F16 = 1, I32 = 2 };
size_t storage_size(Storage s);

enum class TensorKind : uint8_t { Activation = 0, Input = 1, Output = 2, Weight = 3 };

struct PlanTensor {
  std::string name;
  Storage storage = Storage::F32;
  TensorKind kind = TensorKind::Activation;
  Shape shape;              // per-image dims as imported at batch 1 (weights: their own shape)
  int64_t offset = 0;       // Activation/Input/Output: byte offset in the arena; Weight: in the weight blob
  int64_t bytes = 0;        // weights: numel * size; others: numel * size * max_batch (images back to back)
};

struct PlanLayer {
  OpKind op = OpKind::Identity;
  std::string name;
  Attrs attrs;
  std::vector<int32_t> inputs;   // tensor ids (weights included, in IR input order)
  std::vector<int32_t> outputs;  // tensor ids
  int32_t tactic = 0;            // kernel variant chosen by the builder
};

struct BuildTarget {
  std::string gpu_name;
  int cc_major = 0, cc_minor = 0;
  int cuda_runtime = 0;  // cudaRuntimeGetVersion
  int cudnn = 0;         // cudnnGetVersion (9.14.0 -> 91400); in a tuned plan 0 when no layer uses cuDNN
};
std::string cudnn_version_name(int v);  // "9.14.0"; "none" for 0

struct EnginePlan {
  std::string model;
  Precision precision = Precision::FP32;
  int max_batch = 1;
  BuildTarget target;
  std::vector<PlanTensor> tensors;
  std::vector<PlanLayer> layers;
  std::vector<int32_t> inputs, outputs;  // tensor ids
  int64_t arena_bytes = 0;
  int64_t activation_sum_bytes = 0;      // one buffer per tensor, for reports
  std::vector<uint8_t> weights;          // blob that Weight tensors index

  // Throws posert::Error if any id, offset or size is inconsistent, a layer's tensors do not have
  // the ranks and sizes its op needs, or its tactic is unknown (a cuDNN tactic without a cuDNN
  // version) (used after reading a file).
  void validate(const std::string& what) const;

 private:
  template <class Bad>
  void validate_layer_shapes(const PlanLayer& l, const std::string& ln, Bad&& bad) const;
};

// Depthwise + pointwise fusion. Layer i (a 1x1 stride-1 Conv2D) and layer i - 1 (a 3x3 depthwise
// layer, multiplier 1, no dilation, stride 1 or 2, no residual) can run as one kernel when the
// depthwise output is the convolution's data input and nothing else reads it (no other layer, not
// an engine output), both are half, and the channel counts are multiples of 8. The plan builder
// places such depthwise layers right before their convolution and keeps the depthwise input alive
// through the convolution (the fused kernel reads it there); the tuner fuses a pair where that
// measures faster (tactics kDwFused + kConvDwPw*, kernels/cuda/cuda_kernels.h).
bool dwpw_pair_possible(const EnginePlan& p, size_t i);
// Whether layer i runs fused with layer i - 1 (a dw+pw tactic, or a member of a dw+pw group).
bool dwpw_fused(const EnginePlan& p, size_t i);

// Expansion + depthwise fusion. Layer i (a 3x3 depthwise layer, multiplier 1, no dilation, stride
// 1 or 2, no residual) and layer i - 1 (a 1x1 stride-1 convolution, no residual: a MobileNetV2
// block's expansion) can run as one kernel when the convolution's output is the depthwise layer's
// data input and nothing else reads it (no other layer, not an engine output), all three tensors
// are half and the channel counts are multiples of 8. The depthwise layer then computes the
// expansion from the convolution's input (tactics kConvPwDwMember + kDwPwDw, chosen by the tuner
// where that measures faster); the plan builder keeps that input alive through the depthwise layer.
bool pwdw_pair_possible(const EnginePlan& p, size_t i);
// Whether layer i is a depthwise layer that computes the 1x1 expansion before it (kDwPwDw).
bool pwdw_fused(const EnginePlan& p, size_t i);

// Head branch fusion: a 3x3 depthwise layer, the 1x1 convolution reading it and the 1x1
// convolution reading that (MoveNet's heads). Layer i (a 1x1 stride-1 half convolution, no
// residual) whose data input is written by an earlier 1x1 stride-1 convolution k (no residual,
// half output, nothing else reading it) that forms a fusable depthwise + pointwise pair with the
// stride-1 depthwise layer right before it (dwpw_pair_possible(k)): the three can run as one
// kernel at layer i (tactics kDwFused, kConvPwPwMember at k, kConvDwPwPw at i; or i a member of a
// horizontal group of such chains, kConvGroupDwPwPw). Layer i need not follow k: the kernel runs
// at i, reading the depthwise input, which the plan builder keeps alive until then.
bool dwpwpw_possible(const EnginePlan& p, size_t i);
// The middle layer k of layer i's chain, or p.layers.size() when layer i's input has no producer.
size_t dwpwpw_middle(const EnginePlan& p, size_t i);
// Whether layer i computes such a chain (kConvDwPwPw, or a leader or member of a kConvGroupDwPwPw group).
bool dwpwpw_fused(const EnginePlan& p, size_t i);

// Elementwise chain + convolution fusion. Layer i (a Conv2D) and layer i - 1 (an ElementwiseChain
// of at most 16 steps, such as MoveNet's input normalization) can run as one kernel when the
// chain's output is the convolution's data input and nothing else reads it (no other layer, not
// an engine output), the chain's input has the output's shape (rank 4) and is i32, f32 or f16,
// and the convolution's input is f32 or f16. The convolution then applies the chain to each value
// it loads (tactics kChainFused + kConvChainDirect8Smem or kConvChainMma3x3, chosen by the tuner where that measures
// faster); the plan builder keeps the chain's input alive through the convolution.
bool chain_conv_possible(const EnginePlan& p, size_t i);
// Whether layer i is a convolution that computes the chain before it (kConvChainDirect8Smem,
// kConvChainMma3x3).
bool chain_fused(const EnginePlan& p, size_t i);

// MobileNetV2 stem fusion. Layer i (a 1x1 stride-1 Conv2D, no residual) and layer i - 1 (a 3x3
// stride-1 depthwise layer) form a fusable depthwise + pointwise pair (dwpw_pair_possible), and layer
// i - 2 is a Conv2D with a 3x3 filter on 3 channels, no residual, whose half output is the depthwise
// layer's data input and nothing else reads it; the first convolution's input is half and the 1x1
// layer's output half. The three can run as one kernel at layer i (tactics kConvStemMember at i - 2,
// kDwFused at i - 1, kConvStemDwPw at i; stem_conv2d in kernels/cuda/cuda_kernels.h checks the
// shapes it was compiled for), chosen by the tuner where that measures faster; the plan builder keeps
// the first convolution's input alive through layer i.
bool stem_possible(const EnginePlan& p, size_t i);
// Whether layer i computes such a stem (kConvStemDwPw).
bool stem_fused(const EnginePlan& p, size_t i);

// Horizontal groups: independent layers of one kind run as one launch by the first of them (the
// leader, tactic kConvGroupWmma or kConvGroupDwPw16; the others kConvGroupMember). Pw1x1: 2..4
// consecutive 1x1 stride-1 half convolutions (MoveNet's four head outputs); DwPw: 2..4
// consecutive fusable depthwise + pointwise pairs (the four head branches). Every member has the
// same pixel count and output type as the leader and reads nothing another member of the group
// writes. The plan builder keeps the members' outputs apart from everything alive at the
// leader's step (they are written there); the tuner groups where one launch measures faster.
enum class GroupKind { Pw1x1, DwPw };
// Whether `members` (the leader first, ascending; for DwPw the pointwise layers) can be a group.
bool group_possible(const EnginePlan& p, const std::vector<size_t>& members, GroupKind kind);
// The maximal groups, found greedily from the start of the plan: what the builder plans for.
std::vector<std::pair<GroupKind, std::vector<size_t>>> candidate_groups(const EnginePlan& p);
// The layers of the group layer i leads, by the plan's tactics (i first); empty if it leads none.
std::vector<size_t> group_of(const EnginePlan& p, size_t i);

// Whether a layer of this op with this tactic launches nothing because another layer computes it
// (a fused depthwise layer or elementwise chain, a group member, the 1x1 layer inside a fused
// expansion + depthwise pair or head branch).
bool launches_nothing(OpKind op, int tactic);

// The arena tensors layer i reads / writes when it runs: its own data inputs and outputs, plus
// the depthwise input when it is fused, the expansion's input when a depthwise layer computes the
// expansion before it, the depthwise input of the head branch it computes, the chain's input when
// it computes the chain before it,
// plus every member's when it leads a group.
std::vector<int32_t> layer_reads(const EnginePlan& p, size_t i);
std::vector<int32_t> layer_writes(const EnginePlan& p, size_t i);

// Human-readable listing: what it was built for, one line per layer (op, tactic by name,
// activation, residual, output shape, name), the arena against one buffer per tensor, the weights.
std::string describe_plan(const EnginePlan& p);

}  // namespace posert
