#include "engine/engine_plan.h"

#include <sstream>

#include "kernels/cuda/cuda_kernels.h"  // tactic ids and names only (plain C++)

namespace posert {

std::string cudnn_version_name(int v) {
  if (v <= 0) return "none";
  return std::to_string(v / 10000) + "." + std::to_string(v % 10000 / 100) + "." + std::to_string(v % 100);
}

namespace {

std::string tactic_label(const PlanLayer& l) {
  if (l.op == OpKind::Conv2D) return cuda::conv_tactic_label(l.tactic);
  if (l.op == OpKind::DepthwiseConv2D && l.tactic >= 0 && l.tactic < cuda::kDwTacticCount) return cuda::kDwTacticNames[l.tactic];
  if (l.op == OpKind::ElementwiseChain && l.tactic >= 0 && l.tactic < cuda::kChainTacticCount) return cuda::kChainTacticNames[l.tactic];
  return std::to_string(l.tactic);
}

}  // namespace

const char* precision_name(Precision p) { return p == Precision::FP16 ? "fp16" : "fp32"; }

Precision parse_precision(const std::string& s) {
  if (s == "fp32") return Precision::FP32;
  if (s == "fp16") return Precision::FP16;
  throw Error("precision '" + s + "' is not supported (fp32 or fp16)", ErrorKind::Usage);
}

size_t storage_size(Storage s) { return s == Storage::F16 ? 2 : 4; }

// The runtime reads shapes by position (x[1..3], w[0..3], ...); a layer whose tensors do not have
// the ranks and matching sizes its op needs would make it read out of bounds.
template <class Bad>
void EnginePlan::validate_layer_shapes(const PlanLayer& l, const std::string& ln, Bad&& bad) const {
  auto shape = [&](size_t k, bool out) -> const Shape& { return tensors[(out ? l.outputs : l.inputs)[k]].shape; };
  auto rank = [&](size_t k, bool out, size_t r) {
    if (shape(k, out).size() != r) bad(ln + ": " + (out ? "output " : "input ") + std::to_string(k) + " must have rank " + std::to_string(r));
  };
  auto numel = [&](size_t k, bool out) { return shape_numel(shape(k, out)); };
  switch (l.op) {
    case OpKind::Conv2D:
    case OpKind::DepthwiseConv2D: {
      rank(0, false, 4);
      rank(1, false, 4);
      rank(0, true, 4);
      const Shape &x = shape(0, false), &w = shape(1, false), &y = shape(0, true);
      const bool dw = l.op == OpKind::DepthwiseConv2D;
      if (w[2] != x[3] || y[3] != (dw ? x[3] * w[3] : w[3]) || x[0] != y[0])
        bad(ln + ": filter, input and output channel counts do not match");
      if (l.inputs.size() > 2 && numel(2, false) != y[3]) bad(ln + ": bias length does not match the output channels");
      if (l.inputs.size() > 3 && shape(3, false) != y) bad(ln + ": residual shape does not match the output");
      const auto st = l.attrs.get_ints("strides", std::vector<int64_t>{1, 1});
      const auto dl = l.attrs.get_ints("dilations", std::vector<int64_t>{1, 1});
      const std::string pad = l.attrs.get_str("padding", "");
      if (st.size() != 2 || dl.size() != 2 || st[0] < 1 || st[1] < 1 || dl[0] < 1 || dl[1] < 1 ||
          (pad != "SAME" && pad != "VALID"))
        bad(ln + ": bad strides, dilations or padding");
      break;
    }
    case OpKind::ResizeBilinear:
      rank(0, false, 4);
      rank(0, true, 4);
      if (shape(0, false)[3] != shape(0, true)[3] || shape(0, false)[0] != shape(0, true)[0] || shape(0, false)[1] < 1 ||
          shape(0, false)[2] < 1)
        bad(ln + ": input and output do not match");
      break;
    case OpKind::ElementwiseChain: {
      if (numel(0, false) != numel(0, true)) bad(ln + ": input and output sizes differ");
      const int64_t channels = shape(0, false).empty() ? 1 : shape(0, false).back();
      const auto prog = l.attrs.get_ints("program", std::vector<int64_t>{});
      if (prog.size() % 2 || prog.size() > 32) bad(ln + ": bad chain program");
      for (size_t i = 0; i + 1 < prog.size(); i += 2) {
        const int64_t c = prog[i + 1];
        if (prog[i] < 1 || prog[i] > 8 || c < -1 || c + 1 >= static_cast<int64_t>(l.inputs.size())) bad(ln + ": bad chain step");
        if (c >= 0) {
          const PlanTensor& ct = tensors[l.inputs[static_cast<size_t>(c + 1)]];
          const int64_t n = shape_numel(ct.shape);
          if (ct.kind != TensorKind::Weight || ct.storage != Storage::F32 || (n != 1 && n != channels))
            bad(ln + ": chain constant must be an f32 scalar or per-channel vector");
        }
      }
      break;
    }
    case OpKind::Add: {
      const Shape& y = shape(0, true);
      if (y.size() > 5) bad(ln + ": rank above 5");
      for (size_t k = 0; k < 2; ++k) {
        const Shape& a = shape(k, false);
        if (a.size() > y.size()) bad(ln + ": input rank above output rank");
        for (size_t d = 0; d < a.size(); ++d)
          if (a[d] != 1 && a[d] != y[y.size() - a.size() + d]) bad(ln + ": inputs do not broadcast to the output");
      }
      break;
    }
    case OpKind::Reshape:
    case OpKind::Cast:
      if (numel(0, false) != numel(0, true)) bad(ln + ": input and output sizes differ");
      break;
    default:
      bad(ln + ": op " + op_name(l.op) + " cannot run in an engine");
  }
  // Which inputs are data (arena) and which are parameters (weights) is fixed per op.
  for (size_t k = 0; k < l.inputs.size(); ++k) {
    const bool conv = l.op == OpKind::Conv2D || l.op == OpKind::DepthwiseConv2D;
    const bool data = k == 0 || l.op == OpKind::Add || (conv && k == 3);
    const PlanTensor& t = tensors[l.inputs[k]];
    if (data == (t.kind == TensorKind::Weight)) bad(ln + ": input " + std::to_string(k) + (data ? " must be computed" : " must be a weight"));
    if (conv && (k == 1 || k == 2) && t.storage != Storage::F32) bad(ln + ": filter and bias must be f32 weights");
  }
}

void EnginePlan::validate(const std::string& what) const {
  auto bad = [&](const std::string& m) { throw Error(what + ": " + m); };
  if (max_batch < 1 || max_batch > 4096) bad("max batch " + std::to_string(max_batch) + " is out of range");
  if (arena_bytes < 0) bad("negative arena size");
  if (target.cudnn < 0) bad("negative cuDNN version");
  const int nt = static_cast<int>(tensors.size());
  for (int i = 0; i < nt; ++i) {
    const PlanTensor& t = tensors[i];
    const std::string tn = "tensor #" + std::to_string(i) + " '" + t.name + "'";
    if (static_cast<uint8_t>(t.storage) > 2 || static_cast<uint8_t>(t.kind) > 3) bad(tn + " has an unknown type");
    if (t.shape.size() > 8) bad(tn + " has rank " + std::to_string(t.shape.size()));
    int64_t n = 1;
    for (int64_t d : t.shape) {
      if (d < 0 || d > (int64_t{1} << 31)) bad(tn + " has an invalid dimension");
      if (d != 0 && n > (int64_t{1} << 36) / d) bad(tn + " is too large");  // checked before multiplying
      n *= d;
    }
    const int64_t copies = t.kind == TensorKind::Weight ? 1 : max_batch;
    if (t.bytes != n * static_cast<int64_t>(storage_size(t.storage)) * copies) bad(tn + " has a byte size that does not match its shape");
    const int64_t limit = t.kind == TensorKind::Weight ? static_cast<int64_t>(weights.size()) : arena_bytes;
    if (t.offset < 0 || t.offset > limit || t.bytes > limit - t.offset)
      bad(tn + " lies outside the " + (t.kind == TensorKind::Weight ? "weights" : "arena") + " (offset " +
          std::to_string(t.offset) + ", " + std::to_string(t.bytes) + " bytes)");
  }
  auto check_ids = [&](const std::vector<int32_t>& ids, const std::string& ctx) {
    for (int32_t id : ids)
      if (id < 0 || id >= nt) bad(ctx + " refers to tensor #" + std::to_string(id) + " of " + std::to_string(nt));
  };
  check_ids(inputs, "the input list");
  check_ids(outputs, "the output list");
  for (size_t i = 0; i < layers.size(); ++i) {
    const PlanLayer& l = layers[i];
    const std::string ln = "layer #" + std::to_string(i) + " '" + l.name + "'";
    if (static_cast<int>(l.op) < 0 || static_cast<int>(l.op) >= op_count()) bad(ln + " has an unknown op");
    check_ids(l.inputs, ln);
    check_ids(l.outputs, ln);
    const OpInfo& info = op_info(l.op);
    if (static_cast<int>(l.inputs.size()) < info.min_inputs || static_cast<int>(l.inputs.size()) > info.max_inputs)
      bad(ln + " (" + info.name + ") has " + std::to_string(l.inputs.size()) + " inputs");
    if (l.outputs.empty()) bad(ln + " has no outputs");
    for (int32_t o : l.outputs)
      if (tensors[o].kind == TensorKind::Weight || tensors[o].kind == TensorKind::Input) bad(ln + " writes a weight or input tensor");
    try {
      validate_layer_shapes(l, ln, bad);
    } catch (const Error& e) {  // an attribute of the wrong type (Attrs' own message) gets the file and layer
      const std::string m = e.what();
      if (m.compare(0, what.size(), what) == 0) throw;
      bad(ln + ": " + m);
    }
    // Tactic ids the CUDA runtime knows (kernels/cuda/cuda_kernels.h); only convolutions and
    // elementwise chains have more than one. A cuDNN tactic is only valid with the cuDNN version
    // it was tuned on.
    const bool known = l.op == OpKind::Conv2D             ? cuda::is_conv_tactic(l.tactic)
                       : l.op == OpKind::DepthwiseConv2D  ? l.tactic >= 0 && l.tactic < cuda::kDwTacticCount
                       : l.op == OpKind::ElementwiseChain ? l.tactic >= 0 && l.tactic < cuda::kChainTacticCount
                                                          : l.tactic == 0;
    if (!known) bad(ln + " has an unknown tactic " + std::to_string(l.tactic));
    if (l.op == OpKind::Conv2D && cuda::is_cudnn_tactic(l.tactic) && target.cudnn == 0)
      bad(ln + " uses the cuDNN tactic " + cuda::conv_tactic_label(l.tactic) + " but the engine records no cuDNN version");
  }
  // Fused depthwise + pointwise pairs: both halves present, the pair fusable, and the depthwise
  // input apart from the bytes the fused kernel writes (it reads the one while writing the other).
  auto overlap = [&](int32_t a, int32_t b) {
    const PlanTensor &ta = tensors[a], &tb = tensors[b];
    return ta.offset < tb.offset + tb.bytes && tb.offset < ta.offset + ta.bytes;
  };
  for (size_t i = 0; i < layers.size(); ++i) {
    const PlanLayer& l = layers[i];
    const std::string ln = "layer #" + std::to_string(i) + " '" + l.name + "'";
    const bool dw_fused = l.op == OpKind::DepthwiseConv2D && l.tactic == cuda::kDwFused;
    const bool head_middle = i + 1 < layers.size() && layers[i + 1].op == OpKind::Conv2D && layers[i + 1].tactic == cuda::kConvPwPwMember;
    if (dw_fused && !dwpw_fused(*this, i + 1) && !head_middle && !stem_fused(*this, i + 1))
      bad(ln + " is marked fused but the layer after it is not a fused pointwise convolution");
    if (!dwpw_fused(*this, i)) continue;
    if (!dwpw_pair_possible(*this, i) || layers[i - 1].tactic != cuda::kDwFused)
      bad(ln + " has the fused tactic " + cuda::conv_tactic_label(l.tactic) + " without a depthwise layer it can fuse before it");
    const int32_t x = layers[i - 1].inputs[0];
    for (int32_t w : l.outputs)
      if (overlap(x, w)) bad(ln + ": its output overlaps the fused depthwise input in the arena");
  }
  // Fused expansion + depthwise pairs: both halves present, the pair fusable, and the expansion's
  // input apart from the depthwise output in the arena.
  for (size_t i = 0; i < layers.size(); ++i) {
    const PlanLayer& l = layers[i];
    const std::string ln = "layer #" + std::to_string(i) + " '" + l.name + "'";
    if (l.op == OpKind::Conv2D && l.tactic == cuda::kConvPwDwMember && !pwdw_fused(*this, i + 1))
      bad(ln + " is marked fused but the layer after it is not a depthwise layer that computes it");
    if (!pwdw_fused(*this, i)) continue;
    if (!pwdw_pair_possible(*this, i) || layers[i - 1].tactic != cuda::kConvPwDwMember)
      bad(ln + " has the tactic pw+dw without a 1x1 convolution it can fuse before it");
    for (int32_t w : l.outputs)
      if (overlap(layers[i - 1].inputs[0], w)) bad(ln + ": its output overlaps the fused expansion's input in the arena");
  }
  // Fused head branches: every chain whole (a depthwise layer with tactic 5, right before a middle
  // 1x1 layer with tactic 18 that only the computing layer reads), and the computing layer's
  // output apart from the depthwise input in the arena. Group leaders and members are checked
  // with the groups below.
  std::vector<bool> middle_used(layers.size(), false);
  for (size_t i = 0; i < layers.size(); ++i) {
    const PlanLayer& l = layers[i];
    if (!dwpwpw_fused(*this, i)) continue;
    const std::string ln = "layer #" + std::to_string(i) + " '" + l.name + "'";
    if (!dwpwpw_possible(*this, i)) bad(ln + " has the tactic " + cuda::conv_tactic_label(l.tactic) + " without a depthwise + 1x1 chain before it");
    const size_t k = dwpwpw_middle(*this, i);
    if (layers[k].tactic != cuda::kConvPwPwMember || layers[k - 1].tactic != cuda::kDwFused)
      bad(ln + " computes a head branch whose depthwise and middle layers are not marked fused");
    middle_used[k] = true;
    for (int32_t w : l.outputs)
      if (overlap(layers[k - 1].inputs[0], w)) bad(ln + ": its output overlaps the fused head branch's input in the arena");
  }
  for (size_t i = 0; i < layers.size(); ++i)
    if (layers[i].op == OpKind::Conv2D && layers[i].tactic == cuda::kConvPwPwMember && !middle_used[i])
      bad("layer #" + std::to_string(i) + " '" + layers[i].name + "' is marked fused but no later layer computes it");
  // Fused stems: all three layers marked, the stem fusable, and the first convolution's input apart
  // from the output in the arena.
  for (size_t i = 0; i < layers.size(); ++i) {
    const PlanLayer& l = layers[i];
    const std::string ln = "layer #" + std::to_string(i) + " '" + l.name + "'";
    if (l.op == OpKind::Conv2D && l.tactic == cuda::kConvStemMember && !stem_fused(*this, i + 2))
      bad(ln + " is marked fused but the layer two after it is not a stem kernel that computes it");
    if (!stem_fused(*this, i)) continue;
    if (!stem_possible(*this, i) || layers[i - 1].tactic != cuda::kDwFused || layers[i - 2].tactic != cuda::kConvStemMember)
      bad(ln + " has the tactic " + cuda::conv_tactic_label(l.tactic) + " without a first convolution and depthwise layer it can fuse before it");
    for (int32_t w : l.outputs)
      if (overlap(layers[i - 2].inputs[0], w)) bad(ln + ": its output overlaps the fused stem's input in the arena");
  }
  // Fused chain + convolution pairs: both halves present, the pair fusable, and the chain's input
  // apart from the convolution's output in the arena.
  for (size_t i = 0; i < layers.size(); ++i) {
    const PlanLayer& l = layers[i];
    const std::string ln = "layer #" + std::to_string(i) + " '" + l.name + "'";
    if (l.op == OpKind::ElementwiseChain && l.tactic == cuda::kChainFused && !chain_fused(*this, i + 1))
      bad(ln + " is marked fused but the layer after it is not a convolution that computes it");
    if (!chain_fused(*this, i)) continue;
    if (!chain_conv_possible(*this, i) || layers[i - 1].tactic != cuda::kChainFused)
      bad(ln + " has the tactic " + cuda::conv_tactic_label(l.tactic) + " without an elementwise chain it can fuse before it");
    for (int32_t w : l.outputs)
      if (overlap(layers[i - 1].inputs[0], w)) bad(ln + ": its output overlaps the fused chain's input in the arena");
  }
  // Horizontal groups: every member claimed by the leader before it, the group one the kernels
  // can take, and what the launch writes apart from what it reads and from itself.
  std::vector<bool> claimed(layers.size(), false);
  for (size_t i = 0; i < layers.size(); ++i) {
    const PlanLayer& l = layers[i];
    if (l.op != OpKind::Conv2D || !cuda::is_group_leader_tactic(l.tactic)) continue;
    const std::string ln = "layer #" + std::to_string(i) + " '" + l.name + "'";
    const auto g = group_of(*this, i);
    const GroupKind kind = l.tactic == cuda::kConvGroupDwPw16 ? GroupKind::DwPw : GroupKind::Pw1x1;
    if (!group_possible(*this, g, kind))
      bad(ln + " leads a group (" + cuda::conv_tactic_label(l.tactic) + ") of " + std::to_string(g.size()) +
          " layer(s) that cannot run as one launch");
    if (kind == GroupKind::DwPw && layers[i - 1].tactic != cuda::kDwFused)
      bad(ln + " leads a dw+pw group without its depthwise layer fused");
    for (size_t m : g) {
      const size_t k = dwpwpw_middle(*this, m);
      const bool head = k < layers.size() && layers[k].op == OpKind::Conv2D && layers[k].tactic == cuda::kConvPwPwMember;
      if (l.tactic == cuda::kConvGroupDwPwPw && !head)
        bad(ln + " leads a dw+pw+pw group whose member #" + std::to_string(m) + " is not a fused head branch");
      if (l.tactic != cuda::kConvGroupDwPwPw && head)  // its kernel would read a middle output nobody wrote
        bad(ln + " leads a " + cuda::conv_tactic_label(l.tactic) + " group whose member #" + std::to_string(m) +
            " computes a head branch");
    }
    for (size_t k = 1; k < g.size(); ++k) claimed[g[k]] = true;
    const auto reads = layer_reads(*this, i);
    const auto writes = layer_writes(*this, i);
    for (size_t a = 0; a < writes.size(); ++a) {
      for (int32_t r : reads)
        if (overlap(writes[a], r)) bad(ln + ": its group writes arena bytes the group reads");
      for (size_t b = a + 1; b < writes.size(); ++b)
        if (overlap(writes[a], writes[b])) bad(ln + ": two outputs of its group share arena bytes");
    }
  }
  for (size_t i = 0; i < layers.size(); ++i)
    if (layers[i].op == OpKind::Conv2D && layers[i].tactic == cuda::kConvGroupMember && !claimed[i])
      bad("layer #" + std::to_string(i) + " '" + layers[i].name + "' is a group member without a group leader before it");
}

namespace {

// Whether tensor t is an activation (not an engine output) that layer i reads as its data input
// and no layer reads otherwise: what fusing t's producer into layer i needs.
bool only_data_input_of(const EnginePlan& p, int32_t t, size_t i) {
  if (p.layers[i].inputs.empty() || p.layers[i].inputs[0] != t || p.tensors[t].kind != TensorKind::Activation) return false;
  for (size_t k = 0; k < p.layers.size(); ++k)
    for (size_t j = 0; j < p.layers[k].inputs.size(); ++j)
      if (p.layers[k].inputs[j] == t && !(k == i && j == 0)) return false;
  return true;
}

// A 1x1 stride-1 convolution on half input that keeps the image size.
bool is_pw1x1_half(const EnginePlan& p, size_t i) {
  const PlanLayer& l = p.layers[i];
  if (l.op != OpKind::Conv2D || l.inputs.size() < 2 || l.outputs.size() != 1) return false;
  const PlanTensor& x = p.tensors[l.inputs[0]];
  const PlanTensor& w = p.tensors[l.inputs[1]];
  const PlanTensor& y = p.tensors[l.outputs[0]];
  if (x.storage != Storage::F16 || x.shape.size() != 4 || y.shape.size() != 4 || w.shape.size() != 4) return false;
  const auto st = l.attrs.get_ints("strides", std::vector<int64_t>{1, 1});
  return w.shape[0] == 1 && w.shape[1] == 1 && st.size() == 2 && st[0] == 1 && st[1] == 1 &&
         x.shape[1] == y.shape[1] && x.shape[2] == y.shape[2];
}

}  // namespace

bool dwpw_pair_possible(const EnginePlan& p, size_t i) {
  if (i == 0 || i >= p.layers.size()) return false;
  const PlanLayer& pw = p.layers[i];
  const PlanLayer& dw = p.layers[i - 1];
  if (pw.op != OpKind::Conv2D || dw.op != OpKind::DepthwiseConv2D) return false;
  if (dw.inputs.size() < 2 || dw.inputs.size() > 3 || dw.outputs.size() != 1 || pw.inputs.size() < 2) return false;
  const int32_t mid = dw.outputs[0];
  if (!only_data_input_of(p, mid, i)) return false;
  const PlanTensor& x = p.tensors[dw.inputs[0]];
  const PlanTensor& wd = p.tensors[dw.inputs[1]];
  const PlanTensor& wp = p.tensors[pw.inputs[1]];
  const PlanTensor& y = p.tensors[pw.outputs[0]];
  const PlanTensor& m = p.tensors[mid];
  if (x.storage != Storage::F16 || m.storage != Storage::F16) return false;
  if (x.shape.size() != 4 || m.shape.size() != 4 || y.shape.size() != 4 || wd.shape.size() != 4 || wp.shape.size() != 4) return false;
  const int64_t c = x.shape[3];
  if (c % 8 != 0 || wd.shape[0] != 3 || wd.shape[1] != 3 || wd.shape[2] != c || wd.shape[3] != 1 || m.shape[3] != c) return false;
  if (wp.shape[0] != 1 || wp.shape[1] != 1 || wp.shape[2] != c || wp.shape[3] % 8 != 0 || y.shape[3] != wp.shape[3]) return false;
  if (y.shape[1] != m.shape[1] || y.shape[2] != m.shape[2]) return false;
  const auto ds = dw.attrs.get_ints("strides", std::vector<int64_t>{1, 1});
  const auto dd = dw.attrs.get_ints("dilations", std::vector<int64_t>{1, 1});
  const auto ps = pw.attrs.get_ints("strides", std::vector<int64_t>{1, 1});
  if (ds.size() != 2 || dd.size() != 2 || ps.size() != 2) return false;
  return ds[0] == ds[1] && (ds[0] == 1 || ds[0] == 2) && dd[0] == 1 && dd[1] == 1 && ps[0] == 1 && ps[1] == 1;
}

bool dwpw_fused(const EnginePlan& p, size_t i) {
  if (i >= p.layers.size() || p.layers[i].op != OpKind::Conv2D) return false;
  const int t = p.layers[i].tactic;
  if (cuda::is_dwpw_tactic(t) || t == cuda::kConvGroupDwPw16) return true;
  return t == cuda::kConvGroupMember && i > 0 && p.layers[i - 1].op == OpKind::DepthwiseConv2D &&
         p.layers[i - 1].tactic == cuda::kDwFused;
}

bool pwdw_pair_possible(const EnginePlan& p, size_t i) {
  if (i == 0 || i >= p.layers.size()) return false;
  const PlanLayer& dw = p.layers[i];
  const PlanLayer& pw = p.layers[i - 1];
  if (dw.op != OpKind::DepthwiseConv2D || pw.op != OpKind::Conv2D) return false;
  if (pw.inputs.size() < 2 || pw.inputs.size() > 3 || pw.outputs.size() != 1) return false;
  if (dw.inputs.size() < 2 || dw.inputs.size() > 3 || dw.outputs.size() != 1) return false;
  const int32_t mid = pw.outputs[0];
  if (!only_data_input_of(p, mid, i)) return false;
  const PlanTensor& x = p.tensors[pw.inputs[0]];
  const PlanTensor& we = p.tensors[pw.inputs[1]];
  const PlanTensor& m = p.tensors[mid];
  const PlanTensor& wd = p.tensors[dw.inputs[1]];
  const PlanTensor& y = p.tensors[dw.outputs[0]];
  if (x.storage != Storage::F16 || m.storage != Storage::F16 || y.storage != Storage::F16) return false;
  if (x.shape.size() != 4 || m.shape.size() != 4 || y.shape.size() != 4 || we.shape.size() != 4 || wd.shape.size() != 4) return false;
  const int64_t c = x.shape[3], e = m.shape[3];
  if (c % 8 != 0 || e % 8 != 0 || we.shape[0] != 1 || we.shape[1] != 1 || we.shape[2] != c || we.shape[3] != e) return false;
  if (wd.shape[0] != 3 || wd.shape[1] != 3 || wd.shape[2] != e || wd.shape[3] != 1 || y.shape[3] != e) return false;
  if (m.shape[1] != x.shape[1] || m.shape[2] != x.shape[2]) return false;
  const auto ps = pw.attrs.get_ints("strides", std::vector<int64_t>{1, 1});
  const auto ds = dw.attrs.get_ints("strides", std::vector<int64_t>{1, 1});
  const auto dd = dw.attrs.get_ints("dilations", std::vector<int64_t>{1, 1});
  if (ps.size() != 2 || ds.size() != 2 || dd.size() != 2) return false;
  return ps[0] == 1 && ps[1] == 1 && ds[0] == ds[1] && (ds[0] == 1 || ds[0] == 2) && dd[0] == 1 && dd[1] == 1;
}

bool pwdw_fused(const EnginePlan& p, size_t i) {
  return i < p.layers.size() && p.layers[i].op == OpKind::DepthwiseConv2D && p.layers[i].tactic == cuda::kDwPwDw;
}

size_t dwpwpw_middle(const EnginePlan& p, size_t i) {
  if (i >= p.layers.size() || p.layers[i].inputs.empty()) return p.layers.size();
  const int32_t t = p.layers[i].inputs[0];
  for (size_t k = 0; k < p.layers.size(); ++k)
    for (int32_t o : p.layers[k].outputs)
      if (o == t) return k;
  return p.layers.size();
}

bool dwpwpw_possible(const EnginePlan& p, size_t i) {
  if (i >= p.layers.size() || p.layers[i].inputs.size() > 3 || !is_pw1x1_half(p, i)) return false;
  const size_t k = dwpwpw_middle(p, i);
  if (k == 0 || k >= i || p.layers[k].inputs.size() > 3 || !is_pw1x1_half(p, k)) return false;
  if (!only_data_input_of(p, p.layers[i].inputs[0], i) || p.tensors[p.layers[k].outputs[0]].storage != Storage::F16) return false;
  if (!dwpw_pair_possible(p, k)) return false;
  const auto ds = p.layers[k - 1].attrs.get_ints("strides", std::vector<int64_t>{1, 1});
  return ds.size() == 2 && ds[0] == 1 && ds[1] == 1;
}

bool dwpwpw_fused(const EnginePlan& p, size_t i) {
  if (i >= p.layers.size() || p.layers[i].op != OpKind::Conv2D) return false;
  const int t = p.layers[i].tactic;
  if (t == cuda::kConvDwPwPw || t == cuda::kConvGroupDwPwPw) return true;
  if (t != cuda::kConvGroupMember) return false;
  const size_t k = dwpwpw_middle(p, i);
  return k < p.layers.size() && p.layers[k].op == OpKind::Conv2D && p.layers[k].tactic == cuda::kConvPwPwMember;
}

bool chain_conv_possible(const EnginePlan& p, size_t i) {
  if (i == 0 || i >= p.layers.size()) return false;
  const PlanLayer& cv = p.layers[i];
  const PlanLayer& ch = p.layers[i - 1];
  if (cv.op != OpKind::Conv2D || ch.op != OpKind::ElementwiseChain || ch.inputs.empty() || ch.outputs.size() != 1 ||
      cv.inputs.size() < 2)
    return false;
  const int32_t mid = ch.outputs[0];
  if (!only_data_input_of(p, mid, i)) return false;
  const PlanTensor& x = p.tensors[ch.inputs[0]];
  const PlanTensor& m = p.tensors[mid];
  if (x.kind == TensorKind::Weight || x.shape != m.shape || x.shape.size() != 4) return false;
  if (m.storage == Storage::I32) return false;
  return ch.attrs.get_ints("program", std::vector<int64_t>{}).size() <= 2 * static_cast<size_t>(cuda::kMaxChainSteps);
}

bool stem_possible(const EnginePlan& p, size_t i) {
  if (i < 2 || i >= p.layers.size() || !dwpw_pair_possible(p, i)) return false;
  const PlanLayer& pw = p.layers[i];
  const PlanLayer& dw = p.layers[i - 1];
  const PlanLayer& cv = p.layers[i - 2];
  if (pw.inputs.size() > 3 || dw.inputs.size() > 3 || cv.op != OpKind::Conv2D || cv.inputs.size() < 2 || cv.inputs.size() > 3 ||
      cv.outputs.size() != 1)
    return false;
  const auto ds = dw.attrs.get_ints("strides", std::vector<int64_t>{1, 1});
  if (ds.size() != 2 || ds[0] != 1 || ds[1] != 1) return false;
  if (!only_data_input_of(p, cv.outputs[0], i - 1)) return false;
  const PlanTensor& x = p.tensors[cv.inputs[0]];
  const PlanTensor& w = p.tensors[cv.inputs[1]];
  const PlanTensor& y = p.tensors[pw.outputs[0]];
  if (x.kind == TensorKind::Weight || x.storage != Storage::F16 || y.storage != Storage::F16 || x.shape.size() != 4 ||
      w.shape.size() != 4)
    return false;
  return x.shape[3] == 3 && w.shape[0] == 3 && w.shape[1] == 3 && w.shape[2] == 3;
}

bool stem_fused(const EnginePlan& p, size_t i) {
  return i < p.layers.size() && p.layers[i].op == OpKind::Conv2D && p.layers[i].tactic == cuda::kConvStemDwPw;
}

bool launches_nothing(OpKind op, int tactic) {
  switch (op) {
    case OpKind::DepthwiseConv2D: return tactic == cuda::kDwFused;
    case OpKind::ElementwiseChain: return tactic == cuda::kChainFused;
    case OpKind::Conv2D:
      return tactic == cuda::kConvGroupMember || tactic == cuda::kConvPwDwMember || tactic == cuda::kConvPwPwMember ||
             tactic == cuda::kConvStemMember;
    default: return false;
  }
}

bool chain_fused(const EnginePlan& p, size_t i) {
  return i < p.layers.size() && p.layers[i].op == OpKind::Conv2D && cuda::is_chain_conv_tactic(p.layers[i].tactic);
}

namespace {

// Arena tensors a layer reads itself (no group expansion).
std::vector<int32_t> own_reads(const EnginePlan& p, size_t i) {
  std::vector<int32_t> r;
  for (int32_t t : p.layers[i].inputs)
    if (p.tensors[t].kind != TensorKind::Weight) r.push_back(t);
  if ((dwpw_fused(p, i) || pwdw_fused(p, i) || chain_fused(p, i)) && i > 0) r.push_back(p.layers[i - 1].inputs[0]);
  if (stem_fused(p, i) && i > 1) r.push_back(p.layers[i - 2].inputs[0]);
  if (dwpwpw_fused(p, i)) {
    const size_t k = dwpwpw_middle(p, i);
    if (k > 0 && k < p.layers.size()) r.push_back(p.layers[k - 1].inputs[0]);
  }
  return r;
}

}  // namespace

bool group_possible(const EnginePlan& p, const std::vector<size_t>& m, GroupKind kind) {
  if (m.size() < 2 || m.size() > static_cast<size_t>(cuda::kMaxConvGroup)) return false;
  const size_t step = kind == GroupKind::DwPw ? 2 : 1;
  const size_t first = kind == GroupKind::DwPw ? m[0] - 1 : m[0];  // the group's first layer
  if (kind == GroupKind::DwPw && m[0] == 0) return false;
  for (size_t k = 0; k < m.size(); ++k) {
    const size_t i = m[k];
    if (i >= p.layers.size() || i != m[0] + k * step) return false;
    if (kind == GroupKind::DwPw ? !dwpw_pair_possible(p, i) : (!is_pw1x1_half(p, i) || dwpw_pair_possible(p, i))) return false;
    const PlanTensor& y = p.tensors[p.layers[i].outputs[0]];
    const PlanTensor& y0 = p.tensors[p.layers[m[0]].outputs[0]];
    if (y.storage != y0.storage || y.shape.size() != 4 || y0.shape.size() != 4 || y.shape[1] != y0.shape[1] ||
        y.shape[2] != y0.shape[2] || y.shape[0] != y0.shape[0])
      return false;
    // Independent: nothing the member reads is written inside the group before it.
    std::vector<int32_t> reads = p.layers[i].inputs;
    if (kind == GroupKind::DwPw) reads.push_back(p.layers[i - 1].inputs[0]);
    for (size_t j = first; j < (kind == GroupKind::DwPw ? i - 1 : i); ++j)
      for (int32_t o : p.layers[j].outputs)
        for (int32_t r : reads)
          if (r == o) return false;
  }
  return true;
}

std::vector<std::pair<GroupKind, std::vector<size_t>>> candidate_groups(const EnginePlan& p) {
  std::vector<std::pair<GroupKind, std::vector<size_t>>> out;
  const size_t n = p.layers.size();
  for (size_t i = 0; i < n; ++i) {
    for (GroupKind kind : {GroupKind::DwPw, GroupKind::Pw1x1}) {
      const size_t step = kind == GroupKind::DwPw ? 2 : 1;
      std::vector<size_t> m = {i};
      while (m.size() < static_cast<size_t>(cuda::kMaxConvGroup)) {
        std::vector<size_t> more = m;
        more.push_back(m.back() + step);
        if (!group_possible(p, more, kind)) break;
        m = std::move(more);
      }
      if (m.size() >= 2) {
        i = m.back();
        out.emplace_back(kind, std::move(m));
        break;
      }
    }
  }
  return out;
}

std::vector<size_t> group_of(const EnginePlan& p, size_t i) {
  if (i >= p.layers.size() || p.layers[i].op != OpKind::Conv2D || !cuda::is_group_leader_tactic(p.layers[i].tactic)) return {};
  const bool dwpw = p.layers[i].tactic == cuda::kConvGroupDwPw16;
  std::vector<size_t> m = {i};
  for (size_t j = i + (dwpw ? 2 : 1); j < p.layers.size() && m.size() < static_cast<size_t>(cuda::kMaxConvGroup);
       j += dwpw ? 2 : 1) {
    const PlanLayer& l = p.layers[j];
    const bool after_fused_dw = p.layers[j - 1].op == OpKind::DepthwiseConv2D && p.layers[j - 1].tactic == cuda::kDwFused;
    if (l.op != OpKind::Conv2D || l.tactic != cuda::kConvGroupMember || after_fused_dw != dwpw) break;
    m.push_back(j);
  }
  return m;
}

std::vector<int32_t> layer_reads(const EnginePlan& p, size_t i) {
  std::vector<int32_t> r = own_reads(p, i);
  const auto g = group_of(p, i);
  for (size_t k = 1; k < g.size(); ++k)
    for (int32_t t : own_reads(p, g[k])) r.push_back(t);
  return r;
}

std::vector<int32_t> layer_writes(const EnginePlan& p, size_t i) {
  std::vector<int32_t> w = p.layers[i].outputs;
  const auto g = group_of(p, i);
  for (size_t k = 1; k < g.size(); ++k)
    for (int32_t t : p.layers[g[k]].outputs) w.push_back(t);
  return w;
}

std::string describe_plan(const EnginePlan& p) {
  std::ostringstream s;
  s << "engine: model " << p.model << ", " << precision_name(p.precision) << ", max batch " << p.max_batch << ", built for "
    << p.target.gpu_name << " (sm_" << p.target.cc_major << p.target.cc_minor << ", CUDA " << p.target.cuda_runtime;
  if (p.target.cudnn) s << ", cuDNN " << cudnn_version_name(p.target.cudnn);
  s << ")\n";
  for (size_t i = 0; i < p.layers.size(); ++i) {
    const auto& l = p.layers[i];
    s << "#" << i << " " << op_name(l.op) << " tactic " << tactic_label(l);
    if (l.attrs.has("activation")) s << " act=" << l.attrs.get_str("activation");
    if ((l.op == OpKind::Conv2D || l.op == OpKind::DepthwiseConv2D) && l.inputs.size() > 3) s << " +residual";
    s << " -> " << shape_str(p.tensors[l.outputs[0]].shape) << "  '" << l.name << "'\n";
  }
  s << "activation arena: " << p.arena_bytes << " bytes per context (one buffer per tensor would need "
    << p.activation_sum_bytes << ")\nweights: " << p.weights.size() << " bytes\n";
  return s.str();
}

}  // namespace posert
