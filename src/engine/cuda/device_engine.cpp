#include "engine/cuda/device_engine.h"

#include <cuda_fp16.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "engine/engine_env.h"
#include "ir/shape_inference.h"

namespace posert::cuda {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw Error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(e));
}

BuildTarget current_target() {
  int dev = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice (is there an NVIDIA GPU and driver?)");
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, dev), "cudaGetDeviceProperties");
  BuildTarget t;
  t.gpu_name = prop.name;
  t.cc_major = prop.major;
  t.cc_minor = prop.minor;
  check(cudaRuntimeGetVersion(&t.cuda_runtime), "cudaRuntimeGetVersion");
  t.cudnn = cudnn_runtime_version();
  return t;
}

bool uses_cudnn(const EnginePlan& plan) {
  for (const auto& l : plan.layers)
    if (l.op == OpKind::Conv2D && is_cudnn_tactic(l.tactic)) return true;
  return false;
}

std::string incompatibility(const EnginePlan& plan, const std::string& engine_name) {
  const BuildTarget here = current_target();
  const BuildTarget& b = plan.target;
  auto ver = [](int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); };
  std::string why;
  if (b.gpu_name != here.gpu_name || b.cc_major != here.cc_major || b.cc_minor != here.cc_minor)
    why = "it was built for " + b.gpu_name + " (sm_" + std::to_string(b.cc_major) + std::to_string(b.cc_minor) +
          ") but this GPU is " + here.gpu_name + " (sm_" + std::to_string(here.cc_major) + std::to_string(here.cc_minor) + ")";
  else if (b.cuda_runtime / 10 != here.cuda_runtime / 10)
    why = "it was built with CUDA " + ver(b.cuda_runtime) + " but this PoseRT uses CUDA " + ver(here.cuda_runtime);
  else if (uses_cudnn(plan) && b.cudnn != here.cudnn)
    // cuDNN's algorithms and their numerics change between versions; the tuning was for that one.
    why = "its convolutions were tuned with cuDNN " + cudnn_version_name(b.cudnn) + " but this PoseRT " +
          (here.cudnn ? "uses cuDNN " + cudnn_version_name(here.cudnn) : std::string("was built without cuDNN"));
  if (why.empty()) return "";
  return engine_name + " cannot run here: " + why + ". Rebuild it on this machine: posert build --model " + plan.model +
         " --precision " + precision_name(plan.precision) + " --max-batch " + std::to_string(plan.max_batch) + " -o <file>";
}

namespace {

Act act_of(const Attrs& a) {
  const std::string s = a.get_str("activation", "none");
  if (s == "relu") return Act::Relu;
  if (s == "relu6") return Act::Relu6;
  if (s == "sigmoid") return Act::Sigmoid;
  if (s == "none") return Act::None;
  throw Error("unknown activation '" + s + "'");
}

}  // namespace

ConvParams conv_params(const EnginePlan& p, const PlanLayer& l, int batch) {
  const Shape& xs = p.tensors[l.inputs[0]].shape;
  const Shape& ws = p.tensors[l.inputs[1]].shape;
  const Shape& os = p.tensors[l.outputs[0]].shape;
  ConvParams cp{};
  cp.n = static_cast<int>(xs[0] * batch);
  cp.h = static_cast<int>(xs[1]);
  cp.w = static_cast<int>(xs[2]);
  cp.c = static_cast<int>(xs[3]);
  cp.oh = static_cast<int>(os[1]);
  cp.ow = static_cast<int>(os[2]);
  cp.o = static_cast<int>(os[3]);
  cp.kh = static_cast<int>(ws[0]);
  cp.kw = static_cast<int>(ws[1]);
  const auto st = l.attrs.get_ints("strides", std::vector<int64_t>{1, 1});
  const auto dl = l.attrs.get_ints("dilations", std::vector<int64_t>{1, 1});
  cp.sh = static_cast<int>(st[0]);
  cp.sw = static_cast<int>(st[1]);
  cp.dh = static_cast<int>(dl[0]);
  cp.dw = static_cast<int>(dl[1]);
  const std::string pad = l.attrs.get_str("padding");
  cp.pad_top = static_cast<int>(conv_axis(cp.h, cp.kh, cp.sh, cp.dh, pad).pad_before);
  cp.pad_left = static_cast<int>(conv_axis(cp.w, cp.kw, cp.sw, cp.dw, pad).pad_before);
  cp.multiplier = l.op == OpKind::DepthwiseConv2D ? static_cast<int>(ws[3]) : 1;
  cp.act = act_of(l.attrs);
  cp.out_f32 = p.tensors[l.inputs[0]].storage == Storage::F16 && p.tensors[l.outputs[0]].storage == Storage::F32;
  return cp;
}

DeviceEngine::DeviceEngine(EnginePlan plan) : plan_(std::move(plan)) {
  const size_t n = plan_.tensors.size();
  plain_.assign(n, nullptr);
  krsc_.assign(n, nullptr);
  half_bias_.assign(n, nullptr);
  upload_weight_forms(false);
}

DeviceEngine::~DeviceEngine() { free_all(); }

void DeviceEngine::free_all() {
  for (auto* forms : {&plain_, &krsc_, &half_bias_})
    for (void*& d : *forms) {
      if (d) cudaFree(d);
      d = nullptr;
    }
  weight_bytes_ = 0;
}

namespace {

// The float values of a weight tensor, from the plan's blob (validated: inside the blob, f32).
std::vector<float> weight_values(const EnginePlan& p, int t) {
  const PlanTensor& pt = p.tensors[t];
  std::vector<float> v(static_cast<size_t>(pt.bytes / 4));
  std::memcpy(v.data(), p.weights.data() + pt.offset, v.size() * 4);
  return v;
}

std::vector<uint8_t> as_bytes(const std::vector<float>& v, bool half) {
  std::vector<uint8_t> b(v.size() * (half ? 2 : 4));
  if (!half) {
    std::memcpy(b.data(), v.data(), b.size());
    return b;
  }
  for (size_t i = 0; i < v.size(); ++i) {
    const __half h = __float2half_rn(v[i]);
    std::memcpy(b.data() + 2 * i, &h, 2);
  }
  return b;
}

// HWIO [kh,kw,c,o] -> KRSC [o,kh,kw,c].
std::vector<float> hwio_to_krsc(const std::vector<float>& w, const Shape& s) {
  const int64_t kh = s[0], kw = s[1], c = s[2], o = s[3];
  std::vector<float> r(w.size());
  for (int64_t y = 0; y < kh; ++y)
    for (int64_t x = 0; x < kw; ++x)
      for (int64_t ci = 0; ci < c; ++ci)
        for (int64_t oi = 0; oi < o; ++oi)
          r[static_cast<size_t>(((oi * kh + y) * kw + x) * c + ci)] = w[static_cast<size_t>(((y * kw + x) * c + ci) * o + oi)];
  return r;
}

// Whether cuDNN may compute layer l (static rules at the engine's max batch).
bool cudnn_may_run(const EnginePlan& p, const PlanLayer& l) {
  return l.op == OpKind::Conv2D && cudnn_runtime_version() > 0 && cudnn_conv_eligible(conv_params(p, l, p.max_batch));
}

}  // namespace

void DeviceEngine::upload_weight_forms(bool for_tuning) {
  const auto& p = plan_;
  const size_t n = p.tensors.size();
  // Which forms each weight needs. Filters of fp16 convolutions are stored as half (both orders);
  // everything else as in the plan (f32/i32).
  std::vector<bool> need_plain(n, false), need_krsc(n, false), need_half_bias(n, false), as_half(n, false);
  for (const auto& l : p.layers) {
    const bool conv = l.op == OpKind::Conv2D || l.op == OpKind::DepthwiseConv2D;
    const bool half = conv && p.tensors[l.inputs[0]].storage == Storage::F16;
    if (conv && half) as_half[l.inputs[1]] = true;
    const bool cudnn_now = l.op == OpKind::Conv2D && is_cudnn_tactic(l.tactic);
    const bool cudnn_maybe = cudnn_now || (for_tuning && cudnn_may_run(p, l));
    for (size_t k = 0; k < l.inputs.size(); ++k) {
      const int t = l.inputs[k];
      if (p.tensors[t].kind != TensorKind::Weight) continue;
      if (l.op == OpKind::Conv2D && k == 1) {
        if (!cudnn_now || for_tuning) need_plain[t] = true;
        if (cudnn_maybe) need_krsc[t] = true;
      } else {
        need_plain[t] = true;
      }
      if (l.op == OpKind::Conv2D && k == 2 && half && (for_tuning ? cudnn_maybe : cudnn_tactic_fused(l.tactic) && cudnn_now))
        need_half_bias[t] = true;
    }
  }
  auto upload = [&](void*& slot, const std::vector<uint8_t>& bytes, const char* what) {
    void* d = nullptr;
    check(cudaMalloc(&d, bytes.empty() ? 1 : bytes.size()), what);
    slot = d;
    weight_bytes_ += static_cast<int64_t>(bytes.size());
    check(cudaMemcpy(d, bytes.data(), bytes.size(), cudaMemcpyHostToDevice), what);
  };
  auto drop = [&](void*& slot, int64_t bytes) {
    if (!slot) return;
    cudaFree(slot);
    slot = nullptr;
    weight_bytes_ -= bytes;
  };
  try {
    for (size_t t = 0; t < n; ++t) {
      const PlanTensor& pt = p.tensors[t];
      if (pt.kind != TensorKind::Weight) continue;
      const int id = static_cast<int>(t);
      const int64_t elems = pt.bytes / static_cast<int64_t>(storage_size(pt.storage));
      const int64_t filter_bytes = as_half[t] ? elems * 2 : pt.bytes;
      if (need_plain[t] && !plain_[t]) {
        if (as_half[t]) {
          upload(plain_[t], as_bytes(weight_values(p, id), true), "cudaMalloc/cudaMemcpy (weights)");
        } else {
          const uint8_t* src = p.weights.data() + pt.offset;
          upload(plain_[t], std::vector<uint8_t>(src, src + pt.bytes), "cudaMalloc/cudaMemcpy (weights)");
        }
      }
      if (need_krsc[t] && !krsc_[t])
        upload(krsc_[t], as_bytes(hwio_to_krsc(weight_values(p, id), pt.shape), as_half[t]), "cudaMalloc/cudaMemcpy (KRSC filters)");
      if (need_half_bias[t] && !half_bias_[t]) upload(half_bias_[t], as_bytes(weight_values(p, id), true), "cudaMalloc/cudaMemcpy (half bias)");
      if (!need_plain[t]) drop(plain_[t], filter_bytes);
      if (!need_krsc[t]) drop(krsc_[t], filter_bytes);
      if (!need_half_bias[t]) drop(half_bias_[t], elems * 2);
    }
    // A pageable cudaMemcpy may return before its DMA lands, and contexts run on non-blocking
    // streams that do not wait for it.
    check(cudaDeviceSynchronize(), "weight upload");
  } catch (...) {
    free_all();
    throw;
  }
}

DeviceContext::DeviceContext(std::shared_ptr<const DeviceEngine> engine, cudaStream_t stream)
    : engine_(std::move(engine)), stream_(stream) {
  // One stream by default: on the H100 the MoveNet graphs with their head branches on 4 streams ran
  // slower than on one (lightning batch 1: 0.371 against 0.310 ms), the fork/join edges costing
  // more than the overlap gains. $POSERT_STREAMS or set_max_streams turns it on.
  // Checked (like $POSERT_PDL) before anything is allocated.
  const int streams = streams_from_env();
  init_programmatic_launch();
  if (!stream_) {
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    own_stream_ = true;
  }
  const int64_t bytes = engine_->plan().arena_bytes;
  cudaError_t e = cudaMalloc(&arena_, bytes ? bytes : 1);
  if (e != cudaSuccess) {
    if (own_stream_) cudaStreamDestroy(stream_);
    check(e, "cudaMalloc (activation arena)");
  }
  uses_cudnn_ = uses_cudnn(engine_->plan());
  try {
    build_schedule(streams);
  } catch (...) {
    free_lanes();
    cudaFree(arena_);
    if (own_stream_) cudaStreamDestroy(stream_);
    throw;
  }
  if (uses_cudnn_) {
    try {
      // The workspace for the largest and the smallest batch now; another batch size grows it
      // (rarely) at its first enqueue.
      prepare_batch(engine_->plan().max_batch);
      prepare_batch(1);
    } catch (...) {
      cudnn_.reset();
      cudaFree(workspace_);
      free_lanes();
      cudaFree(arena_);
      if (own_stream_) cudaStreamDestroy(stream_);
      throw;
    }
  }
}

DeviceContext::~DeviceContext() {
  for (auto& [b, g] : graphs_) cudaGraphExecDestroy(g);
  cudnn_.reset();
  cudaFree(workspace_);
  free_lanes();
  cudaFree(arena_);
  if (own_stream_) cudaStreamDestroy(stream_);
}

void DeviceContext::free_lanes() {
  for (auto& l : lanes_) {
    l.cudnn.reset();
    if (l.workspace) cudaFree(l.workspace);
    if (l.stream) cudaStreamDestroy(l.stream);
  }
  lanes_.clear();
  for (cudaEvent_t e : events_)
    if (e) cudaEventDestroy(e);
  events_.clear();
}

void DeviceContext::build_schedule(int max_streams) {
  free_lanes();
  schedule_ = schedule_streams(engine_->plan(), max_streams, [](const PlanLayer&) { return false; });
  const auto& layers = engine_->plan().layers;
  events_.assign(layers.size() + 1, nullptr);
  if (schedule_.streams <= 1) return;
  for (size_t i = 0; i <= layers.size(); ++i)
    if (i == layers.size() || schedule_.signals[i]) check(cudaEventCreateWithFlags(&events_[i], cudaEventDisableTiming), "cudaEventCreate");
  lanes_.resize(static_cast<size_t>(schedule_.streams - 1));
  for (auto& l : lanes_) {
    check(cudaStreamCreateWithFlags(&l.stream, cudaStreamNonBlocking), "cudaStreamCreate (extra stream)");
    if (uses_cudnn_) l.cudnn = std::make_unique<CudnnConv>(l.stream);
    if (workspace_bytes_) {
      check(cudaMalloc(&l.workspace, workspace_bytes_), "cudaMalloc (cuDNN workspace)");
      l.workspace_bytes = workspace_bytes_;
    }
  }
}

void DeviceContext::drop_graphs() {
  for (auto& [b, g] : graphs_) cudaGraphExecDestroy(g);
  graphs_.clear();
  ++capture_epoch_;
}

void DeviceContext::set_max_streams(int n) {
  synchronize();
  drop_graphs();
  build_schedule(std::clamp(n, 1, 8));
}

CudnnConv& DeviceContext::cudnn() {
  if (!cudnn_) cudnn_ = std::make_unique<CudnnConv>(stream_);
  return *cudnn_;
}

void DeviceContext::reserve_workspace(size_t bytes) {
  if (bytes <= workspace_bytes_) return;
  synchronize();
  drop_graphs();
  cudaFree(workspace_);
  workspace_ = nullptr;
  workspace_bytes_ = 0;
  check(cudaMalloc(&workspace_, bytes), "cudaMalloc (cuDNN workspace)");
  workspace_bytes_ = bytes;
  for (auto& l : lanes_) {  // every stream's layers may need as much
    check(cudaStreamSynchronize(l.stream), "cudaStreamSynchronize");
    if (l.workspace) cudaFree(l.workspace);
    l.workspace = nullptr;
    l.workspace_bytes = 0;
    check(cudaMalloc(&l.workspace, bytes), "cudaMalloc (cuDNN workspace)");
    l.workspace_bytes = bytes;
  }
}

void DeviceContext::launch_group(size_t i, int batch, int tactic, void* stream) {
  const EnginePlan& p = engine_->plan();
  const auto g = group_of(p, i);
  if (g.size() < 2 || p.layers[i].tactic != tactic)
    throw Error("internal: layer '" + p.layers[i].name + "': group tactic " + conv_tactic_label(tactic) + " without its members in the plan");
  auto res_of = [&](const PlanLayer& l) { return l.inputs.size() > 3 ? static_cast<const void*>(tensor(l.inputs[3])) : nullptr; };
  if (tactic == kConvGroupDwPwPw) {
    std::vector<DwPwPwArgs> a;
    for (size_t m : g) a.push_back(head_args(m, batch));
    dw_pw_pw_conv2d(a.data(), static_cast<int>(a.size()), stream);
  } else if (tactic == kConvGroupWmma || tactic == kConvGroupPw16) {
    std::vector<Conv1x1Args> a;
    for (size_t m : g) {
      const PlanLayer& l = p.layers[m];
      a.push_back({tensor(l.inputs[0]), tensor(l.inputs[1]), bias_of(l), res_of(l), tensor(l.outputs[0]), conv_params(p, l, batch)});
    }
    conv1x1_group(tactic, a.data(), static_cast<int>(a.size()), stream);
  } else {
    std::vector<DwPwArgs> a;
    for (size_t m : g) {
      const PlanLayer& l = p.layers[m];
      const PlanLayer& d = p.layers[m - 1];
      a.push_back({tensor(d.inputs[0]), tensor(d.inputs[1]), bias_of(d), conv_params(p, d, batch), tensor(l.inputs[1]), bias_of(l),
                   res_of(l), tensor(l.outputs[0]), conv_params(p, l, batch)});
    }
    dw_pw_group(a.data(), static_cast<int>(a.size()), stream);
  }
}

DwPwPwArgs DeviceContext::head_args(size_t i, int batch) const {
  const EnginePlan& p = engine_->plan();
  if (!dwpwpw_possible(p, i))
    throw Error("layer '" + p.layers[i].name + "': tactic " + conv_tactic_label(p.layers[i].tactic) +
                " needs a depthwise + 1x1 chain it can compute before it");
  const PlanLayer& l = p.layers[i];
  const PlanLayer& m = p.layers[dwpwpw_middle(p, i)];
  const PlanLayer& d = p.layers[dwpwpw_middle(p, i) - 1];
  return {tensor(d.inputs[0]), tensor(d.inputs[1]), bias_of(d), conv_params(p, d, batch),
          tensor(m.inputs[1]), bias_of(m), conv_params(p, m, batch),
          tensor(l.inputs[1]), bias_of(l), tensor(l.outputs[0]), conv_params(p, l, batch)};
}

const float* DeviceContext::bias_of(const PlanLayer& l) const {
  return l.inputs.size() > 2 ? static_cast<const float*>(tensor(l.inputs[2])) : nullptr;
}

ChainProgram DeviceContext::chain_program(const PlanLayer& l) const {
  const EnginePlan& p = engine_->plan();
  const auto prog = l.attrs.get_ints("program");
  ChainProgram cp{};
  cp.steps = static_cast<int>(prog.size() / 2);
  if (cp.steps > kMaxChainSteps) throw Error("layer '" + l.name + "': elementwise chain longer than 16 steps");
  for (int k = 0; k < cp.steps; ++k) {
    cp.op[k] = static_cast<int>(prog[2 * k]);
    const int64_t ci = prog[2 * k + 1];
    cp.c[k] = nullptr;
    cp.c_len[k] = 1;
    if (ci >= 0) {
      if (ci + 1 >= static_cast<int64_t>(l.inputs.size())) throw Error("layer '" + l.name + "': chain constant index out of range");
      const int t = l.inputs[static_cast<size_t>(ci + 1)];
      cp.c[k] = static_cast<const float*>(tensor(t));
      cp.c_len[k] = static_cast<int>(shape_numel(p.tensors[t].shape));
    }
  }
  return cp;
}

size_t DeviceContext::cudnn_need(size_t i, int batch, int tactic) {
  const auto key = std::make_tuple(i, batch, tactic);
  auto it = cudnn_need_.find(key);
  if (it != cudnn_need_.end()) return it->second;
  const EnginePlan& p = engine_->plan();
  const PlanLayer& l = p.layers[i];
  const bool half = p.tensors[l.inputs[0]].storage == Storage::F16;
  const size_t need = cudnn().workspace_bytes(tactic, conv_params(p, l, batch), half, l.name);
  cudnn_need_.emplace(key, need);
  return need;
}

void DeviceContext::prepare_batch(int batch) {
  if (prepared_.count(batch)) return;
  const auto& layers = engine_->plan().layers;
  size_t need = 0;
  for (size_t i = 0; i < layers.size(); ++i)
    if (layers[i].op == OpKind::Conv2D && is_cudnn_tactic(layers[i].tactic))
      need = std::max(need, cudnn_need(i, batch, layers[i].tactic));
  reserve_workspace(need);
  prepared_.insert(batch);
}

void* DeviceContext::tensor(int id) const {
  const PlanTensor& t = engine_->plan().tensors.at(static_cast<size_t>(id));
  if (t.kind == TensorKind::Weight) {
    const void* w = engine_->weight(id);
    // A filter read only by cuDNN tactics is held in KRSC order only (DeviceEngine::upload_weight_forms).
    if (!w) throw Error("weight '" + t.name + "' is not on the device in the plan's layout (its layer runs a cuDNN tactic)");
    return const_cast<void*>(w);
  }
  return static_cast<uint8_t*>(arena_) + t.offset;
}

void DeviceContext::launch_layer_on(size_t i, int batch, int tactic, int lane) {
  const EnginePlan& p = engine_->plan();
  const PlanLayer& l = p.layers[i];
  const PlanTensor& out = p.tensors[l.outputs[0]];
  const PlanTensor& in = p.tensors[l.inputs[0]];
  Lane* ln = lane > 0 ? &lanes_.at(static_cast<size_t>(lane - 1)) : nullptr;
  if (ln && !ln->cudnn && l.op == OpKind::Conv2D && is_cudnn_tactic(tactic)) ln->cudnn = std::make_unique<CudnnConv>(ln->stream);
  void* s = ln ? ln->stream : stream_;
  const int64_t per_image = shape_numel(out.shape);
  switch (l.op) {
    case OpKind::Conv2D:
    case OpKind::DepthwiseConv2D: {
      if (launches_nothing(l.op, tactic)) break;  // another layer computes it
      if (l.op == OpKind::Conv2D && tactic == kConvDwPwPw) {
        const DwPwPwArgs a = head_args(i, batch);
        dw_pw_pw_conv2d(&a, 1, s);
        break;
      }
      if (l.op == OpKind::Conv2D && is_group_leader_tactic(tactic)) {
        launch_group(i, batch, tactic, s);
        break;
      }
      const ConvParams cp = conv_params(p, l, batch);
      const bool half = in.storage == Storage::F16;
      const float* bias = bias_of(l);
      const void* res = l.inputs.size() > 3 ? tensor(l.inputs[3]) : nullptr;
      if (l.op == OpKind::Conv2D && is_cudnn_tactic(tactic)) {
        const size_t need = cudnn_need(i, batch, tactic);
        if (need > workspace_bytes_) {
          cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
          check(cudaStreamIsCapturing(stream_, &st), "cudaStreamIsCapturing");
          if (st != cudaStreamCaptureStatusNone)
            throw Error("internal: layer '" + l.name + "': the cuDNN workspace was not reserved before stream capture");
          reserve_workspace(need);
        }
        CudnnConvArgs a;
        a.x = tensor(l.inputs[0]);
        a.w = engine_->krsc_filter(l.inputs[1]);
        if (!a.w)
          throw Error("layer '" + l.name + "': tactic " + conv_tactic_label(tactic) +
                      " needs the filter in KRSC order, which this engine did not upload (DeviceEngine::upload_weight_forms)");
        a.bias = bias;
        a.bias_t = l.inputs.size() > 2 ? (half ? engine_->half_bias(l.inputs[2]) : static_cast<const void*>(bias)) : nullptr;
        a.residual = res;
        a.y = tensor(l.outputs[0]);
        a.workspace = ln ? ln->workspace : workspace_;
        a.workspace_bytes = ln ? ln->workspace_bytes : workspace_bytes_;
        (ln ? *ln->cudnn : cudnn()).run(tactic, cp, half, a, l.name);
        break;
      }
      if (l.op == OpKind::Conv2D && is_dwpw_tactic(tactic)) {
        if (!dwpw_pair_possible(p, i))
          throw Error("layer '" + l.name + "': tactic " + conv_tactic_label(tactic) + " needs the depthwise layer it fuses right before it");
        const PlanLayer& d = p.layers[i - 1];
        dw_pw_conv2d(tactic, tensor(d.inputs[0]), tensor(d.inputs[1]), bias_of(d), conv_params(p, d, batch), tensor(l.inputs[1]),
                     bias, res, tensor(l.outputs[0]), cp, s);
        break;
      }
      if (l.op == OpKind::Conv2D && tactic == kConvStemDwPw) {
        if (!stem_possible(p, i))
          throw Error("layer '" + l.name + "': tactic " + conv_tactic_label(tactic) +
                      " needs the first convolution and depthwise layer it fuses right before it");
        const PlanLayer& d = p.layers[i - 1];
        const PlanLayer& c = p.layers[i - 2];
        const StemArgs a{tensor(c.inputs[0]), tensor(c.inputs[1]), bias_of(c), conv_params(p, c, batch),
                         tensor(d.inputs[1]), bias_of(d), conv_params(p, d, batch),
                         tensor(l.inputs[1]), bias, cp, tensor(l.outputs[0])};
        if (!stem_applies(a.c, a.d, a.q, half))
          throw Error("layer '" + l.name + "': tactic " + conv_tactic_label(tactic) + " does not apply to '" + c.name + "', '" +
                      d.name + "' and this layer (it needs half layers, a 3x3 stride-1 or -2 convolution on 3 channels with " +
                      "16/24/32/48/56 outputs, a 3x3 stride-1 SAME depthwise layer and 8/16/16/24/32 outputs); rebuild the engine");
        stem_conv2d(a, s);
        break;
      }
      if (l.op == OpKind::Conv2D && is_chain_conv_tactic(tactic)) {
        if (!chain_conv_possible(p, i))
          throw Error("layer '" + l.name + "': tactic " + conv_tactic_label(tactic) + " needs the elementwise chain it fuses right before it");
        const PlanLayer& c = p.layers[i - 1];
        const ChainProgram prog = chain_program(c);
        const DType16 xt = dtype16(p.tensors[c.inputs[0]].storage);
        if (tactic == kConvChainMma3x3)
          mma3x3_conv2d(xt, tensor(c.inputs[0]), &prog, half, tensor(l.inputs[1]), bias, res, tensor(l.outputs[0]), cp, s);
        else
          chain_conv2d(xt, tensor(c.inputs[0]), prog, half, tensor(l.inputs[1]), bias, res, tensor(l.outputs[0]), cp, s);
        break;
      }
      if (l.op == OpKind::DepthwiseConv2D && tactic == kDwPwDw) {
        if (!pwdw_pair_possible(p, i))
          throw Error("layer '" + l.name + "': tactic pw+dw needs the 1x1 convolution it fuses right before it");
        const PlanLayer& e = p.layers[i - 1];
        pw_dw_conv2d(tensor(e.inputs[0]), tensor(e.inputs[1]), bias_of(e), conv_params(p, e, batch), tensor(l.inputs[1]), bias, cp,
                     tensor(l.outputs[0]), s);
        break;
      }
      if (l.op == OpKind::Conv2D)
        conv2d(tactic, half, tensor(l.inputs[0]), tensor(l.inputs[1]), bias, res, tensor(l.outputs[0]), cp, s);
      else
        depthwise_conv2d(tactic, half, tensor(l.inputs[0]), tensor(l.inputs[1]), bias, res, tensor(l.outputs[0]), cp, s);
      break;
    }
    case OpKind::ElementwiseChain: {
      if (launches_nothing(l.op, tactic)) break;  // the convolution after it computes it
      const int channels = in.shape.empty() ? 1 : static_cast<int>(in.shape.back());
      elementwise_chain(dtype16(in.storage), tensor(l.inputs[0]), dtype16(out.storage), tensor(l.outputs[0]), per_image * batch,
                        channels, chain_program(l), s);
      break;
    }
    case OpKind::ResizeBilinear:
      resize_bilinear(out.storage == Storage::F16, tensor(l.inputs[0]), tensor(l.outputs[0]),
                      static_cast<int>(in.shape[0] * batch), static_cast<int>(in.shape[1]), static_cast<int>(in.shape[2]),
                      static_cast<int>(in.shape[3]), static_cast<int>(out.shape[1]), static_cast<int>(out.shape[2]),
                      l.attrs.get_int("align_corners", 0) != 0, l.attrs.get_int("half_pixel_centers", 0) != 0, s);
      break;
    case OpKind::Add: {
      // Every tensor gets a leading batch dim; then numpy broadcasting over right-aligned dims.
      const Shape& as = in.shape;
      const Shape& bs = p.tensors[l.inputs[1]].shape;
      BroadcastShape b{};
      b.rank = static_cast<int>(out.shape.size()) + 1;
      if (b.rank > 6) throw Error("layer '" + l.name + "': Add of rank > 5 is not supported on CUDA");
      auto strides = [&](const Shape& sh, int64_t* dst) {
        int64_t stride = 1;
        for (int d = b.rank - 1; d >= 1; --d) {
          const int k = d - 1 - (static_cast<int>(out.shape.size()) - static_cast<int>(sh.size()));
          const int64_t dim = k >= 0 ? sh[k] : 1;
          dst[d] = dim == 1 ? 0 : stride;
          stride *= dim;
        }
        dst[0] = stride;
      };
      for (int d = 1; d < b.rank; ++d) b.out[d] = out.shape[d - 1];
      b.out[0] = batch;
      strides(as, b.a_stride);
      strides(bs, b.b_stride);
      add_broadcast(out.storage == Storage::F16, tensor(l.inputs[0]), tensor(l.inputs[1]), tensor(l.outputs[0]), b, s);
      break;
    }
    case OpKind::Reshape:
    case OpKind::Cast:
      if (tensor(l.inputs[0]) != tensor(l.outputs[0]))
        convert(dtype16(in.storage), tensor(l.inputs[0]), dtype16(out.storage), tensor(l.outputs[0]), per_image * batch, s);
      break;
    default:
      throw Error("layer '" + l.name + "': op " + op_name(l.op) + " has no CUDA kernel");
  }
}

void DeviceContext::launch_all(int batch) {
  const auto& layers = engine_->plan().layers;
  if (schedule_.streams <= 1) {
    for (size_t i = 0; i < layers.size(); ++i) launch_layer(i, batch, layers[i].tactic);
    return;
  }
  // Fork: the extra streams start after what the context's stream holds so far (inputs, earlier
  // work, or the start of a capture, which they thereby join).
  cudaEvent_t fork = events_.back();
  check(cudaEventRecord(fork, stream_), "cudaEventRecord (fork)");
  for (auto& l : lanes_) check(cudaStreamWaitEvent(l.stream, fork, 0), "cudaStreamWaitEvent (fork)");
  for (size_t i = 0; i < layers.size(); ++i) {
    const int k = schedule_.stream[i];
    const cudaStream_t s = k == 0 ? stream_ : lanes_[static_cast<size_t>(k - 1)].stream;
    for (int d : schedule_.waits[i]) check(cudaStreamWaitEvent(s, events_[static_cast<size_t>(d)], 0), "cudaStreamWaitEvent");
    launch_layer_on(i, batch, layers[i].tactic, k);
    if (schedule_.signals[i]) check(cudaEventRecord(events_[i], s), "cudaEventRecord");
  }
  // Join: the context's stream waits for every extra stream's last layer.
  for (int k = 1; k < schedule_.streams; ++k) {
    const int last = schedule_.last_on_stream[static_cast<size_t>(k)];
    if (last >= 0) check(cudaStreamWaitEvent(stream_, events_[static_cast<size_t>(last)], 0), "cudaStreamWaitEvent (join)");
  }
}

void DeviceContext::enqueue(int batch) {
  const int max = engine_->plan().max_batch;
  if (batch < 1 || batch > max)
    throw Error("batch " + std::to_string(batch) + " is outside the engine's range 1.." + std::to_string(max));
  if (uses_cudnn_) prepare_batch(batch);
  if (!use_graphs_) {
    launch_all(batch);
    return;
  }
  auto it = graphs_.find(batch);
  if (it == graphs_.end()) {
    if (uses_cudnn_) {
      // cuDNN builds and caches an execution plan at the first call for a shape, with host work
      // that stream capture forbids. So the first forward pass at a batch size runs outside
      // capture (it computes this call's result) and the graph, captured after it, runs from the
      // next call on. (Running it twice instead would be wrong: the arena reuses the inputs' bytes.)
      launch_all(batch);
      capture(batch);
      return;
    }
    capture(batch);
    it = graphs_.find(batch);
  }
  check(cudaGraphLaunch(it->second, stream_), "cudaGraphLaunch");
}

void DeviceContext::capture(int batch) {
  cudaGraph_t graph = nullptr;
  check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
  try {
    launch_all(batch);
  } catch (...) {
    cudaStreamEndCapture(stream_, &graph);
    if (graph) cudaGraphDestroy(graph);
    throw;
  }
  check(cudaStreamEndCapture(stream_, &graph), "cudaStreamEndCapture");
  cudaGraphExec_t exec = nullptr;
  const cudaError_t e = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  check(e, "cudaGraphInstantiate");
  graphs_.emplace(batch, exec);
}

void DeviceContext::synchronize() { check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize"); }

}  // namespace posert::cuda
