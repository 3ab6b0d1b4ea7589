// CUDA runtime of an EnginePlan: DeviceEngine holds the weights on the GPU in the form each
// layer's kernels read (filters in fp16 for fp16 layers, KRSC for cuDNN); DeviceContext owns a
// stream, an activation arena, a cuDNN handle and workspace, launches the layers, and captures the
// whole forward pass as a CUDA graph per batch size. One engine can serve many contexts.
#pragma once
#include <cuda_runtime.h>

#include <map>
#include <memory>
#include <set>
#include <tuple>
#include <vector>

#include "engine/cuda/cudnn_conv.h"
#include "engine/engine_plan.h"
#include "engine/stream_schedule.h"
#include "kernels/cuda/cuda_kernels.h"

namespace posert::cuda {

// Throws posert::Error with the CUDA error string and `what`.
void check(cudaError_t e, const char* what);
// The GPU this process would run on, as a BuildTarget (name, compute capability, CUDA runtime and
// cuDNN versions; cudnn 0 in a build without cuDNN).
BuildTarget current_target();
// Whether any layer of the plan runs a cuDNN tactic.
bool uses_cudnn(const EnginePlan& plan);
// Empty when `plan` can run here, else why not and how to rebuild: another GPU, another CUDA
// runtime, or (for an engine with cuDNN tactics) another cuDNN version.
std::string incompatibility(const EnginePlan& plan, const std::string& engine_name);

// The kernel parameters of a Conv2D/DepthwiseConv2D layer for `batch` images: one definition for
// the runtime and the tuner, so both judge tactics on the same shapes.
ConvParams conv_params(const EnginePlan& plan, const PlanLayer& layer, int batch);
// The kernels' element type of a plan tensor's storage.
inline DType16 dtype16(Storage s) { return s == Storage::F16 ? DType16::F16 : s == Storage::I32 ? DType16::I32 : DType16::F32; }

class DeviceEngine {
 public:
  // Uploads the weights in the forms the plan's tactics read (upload_weight_forms(false)).
  explicit DeviceEngine(EnginePlan plan);
  ~DeviceEngine();
  DeviceEngine(const DeviceEngine&) = delete;
  DeviceEngine& operator=(const DeviceEngine&) = delete;
  const EnginePlan& plan() const { return plan_; }
  EnginePlan& mutable_plan() { return plan_; }  // the tuner writes tactics (then upload_weight_forms)
  // A weight as the plan stores it (filters HWIO [kh,kw,c,o]); null when no tactic reads that form.
  const void* weight(int tensor) const { return plain_[tensor]; }
  // A Conv2D filter in cuDNN's order KRSC [o,kh,kw,c], in the layer's type; null when not held.
  const void* krsc_filter(int tensor) const { return krsc_[tensor]; }
  // A bias in half, for the fused cuDNN call of fp16 layers; null when not held.
  const void* half_bias(int tensor) const { return half_bias_[tensor]; }
  int64_t weight_bytes() const { return weight_bytes_; }

  // Makes the device hold exactly the weight forms the plan's tactics read, so a finished engine
  // holds each filter once; for_tuning: also every form a candidate tactic may read (both filter
  // orders for the layers cuDNN may compute). Not while a context runs the engine.
  void upload_weight_forms(bool for_tuning);

 private:
  void free_all();
  EnginePlan plan_;
  std::vector<void*> plain_, krsc_, half_bias_;  // per tensor id
  int64_t weight_bytes_ = 0;
};

class DeviceContext {
 public:
  // stream: an existing cudaStream_t, or null to create one owned by the context.
  explicit DeviceContext(std::shared_ptr<const DeviceEngine> engine, cudaStream_t stream = nullptr);
  ~DeviceContext();
  DeviceContext(const DeviceContext&) = delete;
  DeviceContext& operator=(const DeviceContext&) = delete;

  // Asynchronous: launches the forward pass for `batch` items on the stream (a CUDA graph
  // replay after the first call for that batch size when use_graphs).
  void enqueue(int batch);
  void synchronize();
  void* tensor(int id) const;  // device address of an input/output/activation tensor
  cudaStream_t stream() const { return stream_; }
  void set_use_graphs(bool on) { use_graphs_ = on; }
  // Launches only layer `i` with `tactic` (for tuning and per-layer profiling). Outside stream
  // capture it grows the cuDNN workspace when `tactic` needs more.
  void launch_layer(size_t i, int batch, int tactic) { launch_layer_on(i, batch, tactic, 0); }
  // The whole forward pass: on one stream, or with independent branches on extra streams that
  // fork from and join back into the context's stream (StreamSchedule), so a captured graph holds
  // them as parallel branches.
  void launch_all(int batch);
  // Streams the forward pass may use (1: everything on the context's stream). Default 1 (measured
  // faster on MoveNet), or $POSERT_STREAMS. Drops captured graphs.
  void set_max_streams(int n);
  int streams_used() const { return schedule_.streams; }
  // Advances whenever device addresses that launches use move (the cuDNN workspace grows, the
  // streams change): graphs captured around launch_all/enqueue before then must be captured again.
  uint64_t capture_epoch() const { return capture_epoch_; }

  // The context's cuDNN handle (bound to its stream); created on first use when the plan has no
  // cuDNN layer (the tuner's context).
  CudnnConv& cudnn();
  // Grows the cuDNN workspace to at least `bytes`: synchronizes the stream and drops the captured
  // graphs (they hold the old address). Never on the run path: the constructor and the first
  // enqueue of a batch size reserve what the plan's layers need.
  void reserve_workspace(size_t bytes);

 private:
  // An extra stream of the multi-stream schedule, with the cuDNN handle and workspace of its own
  // (cuDNN layers on different streams must not share them).
  struct Lane {
    cudaStream_t stream = nullptr;
    std::unique_ptr<CudnnConv> cudnn;
    void* workspace = nullptr;
    size_t workspace_bytes = 0;
  };
  void launch_layer_on(size_t i, int batch, int tactic, int lane);
  void launch_group(size_t i, int batch, int tactic, void* stream);  // layer i leads a horizontal group
  DwPwPwArgs head_args(size_t i, int batch) const;     // the head branch layer i computes (dwpwpw_possible)
  ChainProgram chain_program(const PlanLayer& l) const;  // an ElementwiseChain layer's, constants on the device
  const float* bias_of(const PlanLayer& l) const;        // a convolution's float bias (input 2), or null
  void build_schedule(int max_streams);
  void free_lanes();
  size_t cudnn_need(size_t i, int batch, int tactic);  // workspace bytes, cached per (layer, batch, tactic)
  void prepare_batch(int batch);                        // reserves the workspace for the plan's tactics
  void capture(int batch);
  std::shared_ptr<const DeviceEngine> engine_;
  cudaStream_t stream_ = nullptr;
  bool own_stream_ = false;
  bool use_graphs_ = true;
  bool uses_cudnn_ = false;
  void* arena_ = nullptr;
  std::map<int, cudaGraphExec_t> graphs_;
  uint64_t capture_epoch_ = 0;
  void drop_graphs();  // destroys graphs_ and advances capture_epoch_
  std::unique_ptr<CudnnConv> cudnn_;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  std::map<std::tuple<size_t, int, int>, size_t> cudnn_need_;
  std::set<int> prepared_;  // batch sizes whose workspace is reserved
  StreamSchedule schedule_;
  std::vector<Lane> lanes_;           // lanes_[k - 1] is stream k of the schedule
  std::vector<cudaEvent_t> events_;   // per layer (those that signal), plus the fork event at the end
};

}  // namespace posert::cuda
