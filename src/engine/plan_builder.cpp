#include "engine/plan_builder.h"

#include <cstring>
#include <numeric>

#include "passes/graph_util.h"
#include "plan/memory_planner.h"

namespace posert {

bool cuda_runtime_supports(OpKind op) {
  switch (op) {
    case OpKind::Conv2D:
    case OpKind::DepthwiseConv2D:
    case OpKind::ElementwiseChain:
    case OpKind::ResizeBilinear:
    case OpKind::Add:
    case OpKind::Reshape:
    case OpKind::Cast:
      return true;
    default:
      return false;
  }
}

namespace {

// Inputs a layer reads as data rather than as parameters baked into the layer.
bool is_param_input(const Node& n, size_t k) {
  switch (n.op) {
    case OpKind::Conv2D:
    case OpKind::DepthwiseConv2D: return k == 1 || k == 2;
    case OpKind::ElementwiseChain: return k >= 1;
    case OpKind::ResizeBilinear:
    case OpKind::Reshape: return k == 1;
    default: return false;
  }
}

}  // namespace

void assign_arena(EnginePlan& p, ArenaFusions which) {
  // Buffers: a Reshape output shares its input's buffer when both have the same storage.
  const int nt = static_cast<int>(p.tensors.size());
  std::vector<int> buffer(nt);
  std::iota(buffer.begin(), buffer.end(), 0);
  for (auto& l : p.layers) {
    if (l.op != OpKind::Reshape) continue;
    const int in = l.inputs[0], out = l.outputs[0];
    if (p.tensors[in].storage == p.tensors[out].storage && p.tensors[out].kind == TensorKind::Activation)
      buffer[out] = buffer[in];
  }
  // Lifetimes per buffer: inputs live from the start, outputs to the end.
  const int steps = static_cast<int>(p.layers.size());
  std::vector<int> first(nt, steps + 1), last(nt, -1);
  auto touch = [&](int t, int step) {
    const int b = buffer[t];
    first[b] = std::min(first[b], step);
    last[b] = std::max(last[b], step);
  };
  for (int t : p.inputs) touch(t, 0);
  for (int t : p.outputs) touch(t, steps);
  for (int s = 0; s < steps; ++s) {
    for (int t : p.layers[s].inputs)
      if (p.tensors[t].kind != TensorKind::Weight) touch(t, s);
    for (int t : p.layers[s].outputs) touch(t, s);
    // A fused depthwise + pointwise kernel reads the depthwise input at the pointwise step; a
    // depthwise layer computing the expansion before it reads the expansion's input; a
    // convolution computing the chain before it reads the chain's input; a layer computing a
    // head branch reads the branch's depthwise input.
    const size_t i = static_cast<size_t>(s);
    const bool before = which == ArenaFusions::Possible
                            ? dwpw_pair_possible(p, i) || pwdw_pair_possible(p, i) || chain_conv_possible(p, i)
                            : dwpw_fused(p, i) || pwdw_fused(p, i) || chain_fused(p, i);
    if (before) touch(p.layers[i - 1].inputs[0], s);
    if (which == ArenaFusions::Possible ? dwpwpw_possible(p, i) : dwpwpw_fused(p, i))
      touch(p.layers[dwpwpw_middle(p, i) - 1].inputs[0], s);
    // A stem kernel reads the first convolution's input at the 1x1 layer's step.
    if (which == ArenaFusions::Possible ? stem_possible(p, i) : stem_fused(p, i)) touch(p.layers[i - 2].inputs[0], s);
  }
  // A group's launch at its leader's step writes every member's output there.
  std::vector<std::vector<size_t>> groups;
  if (which == ArenaFusions::Possible) {
    for (const auto& [kind, members] : candidate_groups(p)) groups.push_back(members);
  } else {
    for (size_t i = 0; i < p.layers.size(); ++i)
      if (auto g = group_of(p, i); !g.empty()) groups.push_back(std::move(g));
  }
  for (const auto& members : groups)
    for (size_t k = 1; k < members.size(); ++k)
      for (int t : p.layers[members[k]].outputs) touch(t, static_cast<int>(members[0]));
  std::vector<int> roots;
  std::vector<TensorLifetime> life;
  for (int t = 0; t < nt; ++t) {
    if (p.tensors[t].kind == TensorKind::Weight || buffer[t] != t) continue;
    int64_t bytes = p.tensors[t].bytes;
    for (int u = 0; u < nt; ++u)
      if (buffer[u] == t) bytes = std::max(bytes, p.tensors[u].bytes);
    roots.push_back(t);
    life.push_back({bytes, first[t] > last[t] ? 0 : first[t], std::max(last[t], first[t] > last[t] ? 0 : first[t])});
  }
  const MemoryPlan mp = plan_memory(life);
  std::vector<int64_t> offset_of(nt, -1);
  for (size_t i = 0; i < roots.size(); ++i) offset_of[roots[i]] = mp.offsets[i];
  for (int t = 0; t < nt; ++t)
    if (p.tensors[t].kind != TensorKind::Weight) p.tensors[t].offset = offset_of[buffer[t]];
  p.arena_bytes = mp.arena_bytes;
  p.activation_sum_bytes = mp.sum_bytes;
}

EnginePlan build_plan(const Graph& g, const std::string& model, Precision precision, int max_batch) {
  EnginePlan p;
  p.model = model;
  p.precision = precision;
  p.max_batch = max_batch;
  for (const auto& n : g.nodes)
    if (!cuda_runtime_supports(n.op))
      throw Error(g.where(n) + ": the CUDA backend has no kernel for op " + op_name(n.op));

  std::vector<int> tensor_of(g.values.size(), -1);
  auto storage_for = [&](const Value& v, TensorKind kind) {
    if (v.dtype == DType::I32) return Storage::I32;
    if (v.dtype == DType::Bool) throw Error("the CUDA backend has no bool tensors ('" + v.name + "')");
    if (kind == TensorKind::Output || kind == TensorKind::Input) return Storage::F32;
    return precision == Precision::FP16 ? Storage::F16 : Storage::F32;
  };
  auto add_tensor = [&](int id, TensorKind kind) {
    const Value& v = g.values[id];
    PlanTensor t;
    t.name = v.name;
    t.kind = kind;
    t.shape = v.shape;
    if (kind == TensorKind::Weight) {
      t.storage = v.dtype == DType::I32 ? Storage::I32 : Storage::F32;
      const auto& c = *v.constant;
      // 256-byte aligned slots, so the runtime can hand out aligned device pointers.
      p.weights.resize((p.weights.size() + 255) / 256 * 256);
      t.offset = static_cast<int64_t>(p.weights.size());
      p.weights.insert(p.weights.end(), c.raw(), c.raw() + c.nbytes());
    } else {
      t.storage = storage_for(v, kind);
    }
    t.bytes = shape_numel(t.shape) * static_cast<int64_t>(storage_size(t.storage)) *
              (kind == TensorKind::Weight ? 1 : max_batch);
    tensor_of[id] = static_cast<int>(p.tensors.size());
    p.tensors.push_back(t);
    return tensor_of[id];
  };
  for (int id : g.inputs) p.inputs.push_back(add_tensor(id, TensorKind::Input));
  for (int id : g.outputs) {
    if (g.values[id].constant) throw Error("output '" + g.values[id].name + "' is a constant; nothing to run");
    if (tensor_of[id] >= 0)
      throw Error("output '" + g.values[id].name + "' is listed twice or is also an input");
    p.outputs.push_back(add_tensor(id, TensorKind::Output));
  }
  // Compute layers read and write the engine's activation storage; where a graph input or
  // output has another storage (f32 in an fp16 engine), a Cast layer converts it.
  const Storage act = precision == Precision::FP16 ? Storage::F16 : Storage::F32;
  auto converts_itself = [](OpKind k) {
    return k == OpKind::ElementwiseChain || k == OpKind::Cast || k == OpKind::Reshape;
  };
  // Convolutions may write a float output from half inputs (the heads of fp16 engines keep their
  // fp32 accumulation); other compute layers get a Cast after them.
  std::vector<int> converted(g.values.size(), -1);  // value -> its copy in `act` storage
  auto writes_any_float = [](OpKind k) { return k == OpKind::Conv2D || k == OpKind::DepthwiseConv2D; };
  auto cast_layer = [&](int from, int to, const std::string& name) {
    PlanLayer c;
    c.op = OpKind::Cast;
    c.name = name;
    c.attrs.set("to", std::string(p.tensors[to].storage == Storage::F16 ? "f16" : "f32"));
    c.inputs = {from};
    c.outputs = {to};
    p.layers.push_back(std::move(c));
  };
  auto new_activation = [&](const PlanTensor& like, const std::string& name, Storage st) {
    PlanTensor t = like;
    t.name = name;
    t.kind = TensorKind::Activation;
    t.storage = st;
    t.offset = 0;
    t.bytes = shape_numel(t.shape) * static_cast<int64_t>(storage_size(st)) * max_batch;
    p.tensors.push_back(t);
    return static_cast<int>(p.tensors.size()) - 1;
  };
  for (const auto& n : g.nodes) {
    PlanLayer l;
    l.op = n.op;
    l.name = n.name;
    l.attrs = n.attrs;
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      const int id = n.inputs[k];
      if (tensor_of[id] < 0) {
        if (!g.values[id].constant)
          throw Error(g.where(n) + ": input '" + g.values[id].name + "' is used before it is produced");
        if (!is_param_input(n, k))
          throw Error(g.where(n) + ": the CUDA backend needs input " + std::to_string(k) + " to be computed, not a constant");
        add_tensor(id, TensorKind::Weight);
      }
      int t = tensor_of[id];
      const PlanTensor pt = p.tensors[t];  // a copy: new_activation() may reallocate p.tensors
      if (!converts_itself(n.op) && pt.kind != TensorKind::Weight && pt.storage != act) {
        if (pt.storage == Storage::I32) throw Error(g.where(n) + ": the CUDA backend cannot compute on int32 tensors");
        if (converted[id] < 0) {
          converted[id] = new_activation(pt, pt.name + "/" + (act == Storage::F16 ? "fp16" : "fp32"), act);
          cast_layer(t, converted[id], pt.name + "/cast");
        }
        t = converted[id];
      }
      l.inputs.push_back(t);
    }
    std::vector<std::pair<int, int>> casts_after;
    for (int id : n.outputs) {
      if (tensor_of[id] < 0) add_tensor(id, TensorKind::Activation);
      int t = tensor_of[id];
      if (!converts_itself(n.op) && !writes_any_float(n.op) && p.tensors[t].storage != act) {
        const PlanTensor like = p.tensors[t];
        const int tmp = new_activation(like, like.name + "/" + (act == Storage::F16 ? "fp16" : "fp32"), act);
        casts_after.emplace_back(tmp, t);
        t = tmp;
      }
      l.outputs.push_back(t);
    }
    p.layers.push_back(std::move(l));
    for (const auto& [from, to] : casts_after) cast_layer(from, to, p.tensors[to].name + "/cast");
  }
  for (int id : g.inputs)
    if (g.values[id].shape.empty() || g.values[id].shape[0] != 1)
      throw Error("the engine builder needs the graph imported at batch 1 (input '" + g.values[id].name + "')");

  // A depthwise layer whose output only a 1x1 convolution reads moves right before that
  // convolution (MoveNet's heads run four depthwise layers, then their four convolutions), so the
  // pair can be fused (dwpw_pair_possible); so does an elementwise chain whose output only a
  // convolution reads (chain_conv_possible; a Cast of the convolution's residual may sit between
  // them). Its inputs are computed earlier still, and nothing in between reads its output, so the
  // order stays valid.
  for (size_t j = 0; j < p.layers.size(); ++j) {
    const OpKind op = p.layers[j].op;
    if ((op != OpKind::DepthwiseConv2D && op != OpKind::ElementwiseChain) || p.layers[j].outputs.size() != 1) continue;
    const int32_t out = p.layers[j].outputs[0];
    size_t consumer = 0;
    int readers = 0;
    for (size_t k = 0; k < p.layers.size(); ++k)
      for (int32_t t : p.layers[k].inputs)
        if (t == out) ++readers, consumer = k;
    if (readers != 1 || consumer <= j + 1 || p.layers[consumer].op != OpKind::Conv2D || p.layers[consumer].inputs[0] != out)
      continue;
    PlanLayer moved = std::move(p.layers[j]);
    p.layers.erase(p.layers.begin() + static_cast<std::ptrdiff_t>(j));
    p.layers.insert(p.layers.begin() + static_cast<std::ptrdiff_t>(consumer - 1), std::move(moved));
    --j;  // the layer now at j has not been looked at
  }

  assign_arena(p, ArenaFusions::Possible);
  p.validate("engine plan for " + model);
  return p;
}

}  // namespace posert
