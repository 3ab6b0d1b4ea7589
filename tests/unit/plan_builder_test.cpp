// build_plan (src/engine/plan_builder.cpp): lowering an optimized graph to an EnginePlan. Checks the
// arena (bounds, no sharing between tensors alive together except Reshape views), fp16 storage
// with Cast layers at the edges, the weight blob, and the graphs it must refuse.
#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <functional>
#include <cstring>
#include <iostream>
#include <numeric>
#include <random>

#include "support/graph_builder.h"
#include "engine/engine_builder.h"
#include "engine/engine_file.h"
#include "engine/plan_builder.h"
#include "engine/stream_schedule.h"
#include "ir/verifier.h"
#include "kernels/cuda/cuda_kernels.h"
#include "passes/infer_shapes.h"
#include "passes/passes.h"
#include "pose/model_spec.h"
#include "support/test_support.h"

namespace posert {
namespace {

using test::Builder;

Attrs conv_attrs(std::vector<int64_t> strides = {1, 1}) {
  Attrs a;
  a.set("strides", strides);
  a.set("padding", std::string("SAME"));
  return a;
}

Tensor rand_f32(Shape s, std::mt19937& rng) {
  std::uniform_real_distribution<float> d(-1, 1);
  std::vector<float> v(static_cast<size_t>(shape_numel(s)));
  for (auto& x : v) x = d(rng);
  return Tensor::from_floats(std::move(s), v);
}

const std::vector<std::string> kHeads = {"heat", "offsets", "up_heat"};

// A small MoveNet-like network with every op the CUDA runtime has, before optimization:
//   image i32[1,8,8,3] -> Cast, Sub(mean), Mul(scale) -> Conv s2 -> Relu6 -> Depthwise -> Relu
//   -> Conv 1x1 -> Add(residual) -> {Reshape -> Sigmoid = heat, Conv = offsets,
//   ResizeBilinear -> Conv -> Sigmoid = up_heat} -> Mul (a decoder step after the heads).
Graph small_model(DType input_dtype = DType::I32) {
  std::mt19937 rng(99);
  Builder b;
  b.g.source = "small.json";
  const int x = b.input("image", input_dtype, {1, 8, 8, 3});
  int v = x;
  if (input_dtype == DType::I32) {
    Attrs to;
    to.set("to", std::string("f32"));
    v = b.node(OpKind::Cast, "cast", {x}, to);
  }
  v = b.node(OpKind::Sub, "norm/sub", {v, b.constant("mean", Tensor::from_floats({3}, {120.0f, 110.0f, 100.0f}))});
  v = b.node(OpKind::Mul, "norm/mul", {v, b.constant("scale", Tensor::scalar_f32(1.0f / 64))});
  v = b.node(OpKind::Conv2D, "c1", {v, b.constant("w1", rand_f32({3, 3, 3, 8}, rng)), b.constant("b1", rand_f32({8}, rng))},
             conv_attrs({2, 2}));
  const int r1 = b.node(OpKind::Relu6, "r1", {v});
  v = b.node(OpKind::DepthwiseConv2D, "dw", {r1, b.constant("wd", rand_f32({3, 3, 8, 1}, rng)), b.constant("bd", rand_f32({8}, rng))},
             conv_attrs());
  v = b.node(OpKind::Relu, "r2", {v});
  v = b.node(OpKind::Conv2D, "c2", {v, b.constant("w2", rand_f32({1, 1, 8, 8}, rng)), b.constant("b2", rand_f32({8}, rng))},
             conv_attrs());
  const int res = b.node(OpKind::Add, "res", {v, r1});
  const int rs = b.node(OpKind::Reshape, "rs", {res, b.constant("rs_shape", Tensor::from_ints({4}, {1, 4, 2, 16}))});
  const int heat = b.node(OpKind::Sigmoid, "heat", {rs});
  const int off = b.node(OpKind::Conv2D, "offsets",
                         {res, b.constant("w3", rand_f32({1, 1, 8, 2}, rng)), b.constant("b3", rand_f32({2}, rng))}, conv_attrs());
  const int up = b.node(OpKind::ResizeBilinear, "up", {res, b.constant("size", Tensor::from_ints({2}, {8, 8}))});
  v = b.node(OpKind::Conv2D, "c4", {up, b.constant("w4", rand_f32({1, 1, 8, 3}, rng)), b.constant("b4", rand_f32({3}, rng))},
             conv_attrs());
  const int up_heat = b.node(OpKind::Sigmoid, "up_heat", {v});
  const int dec = b.node(OpKind::Mul, "decoder", {heat, heat});
  (void)off;
  (void)up_heat;
  return b.finish({dec});
}

Graph small_optimized(DType input_dtype = DType::I32) { return optimize_for_engine(small_model(input_dtype), kHeads); }

int tensor_named(const EnginePlan& p, const std::string& name) {
  for (size_t i = 0; i < p.tensors.size(); ++i)
    if (p.tensors[i].name == name) return static_cast<int>(i);
  return -1;
}

int layer_named(const EnginePlan& p, const std::string& name) {
  for (size_t i = 0; i < p.layers.size(); ++i)
    if (p.layers[i].name == name) return static_cast<int>(i);
  return -1;
}

std::vector<std::string> layer_names(const EnginePlan& p) {
  std::vector<std::string> v;
  for (const auto& l : p.layers) v.push_back(l.name);
  return v;
}

// The invariants every plan must keep, derived from the layer list alone.
// tuned: the plan's tactics say which fusions run (assign_arena(Chosen)); else any may.
void check_plan_invariants(const EnginePlan& p, bool tuned = false) {
  const int nt = static_cast<int>(p.tensors.size());
  const int steps = static_cast<int>(p.layers.size());
  EXPECT_LE(p.arena_bytes, p.activation_sum_bytes);
  EXPECT_NO_THROW(p.validate("plan"));
  // Bounds.
  for (int t = 0; t < nt; ++t) {
    const PlanTensor& pt = p.tensors[t];
    EXPECT_GT(pt.bytes, 0) << pt.name;
    if (pt.kind == TensorKind::Weight) {
      EXPECT_EQ(pt.offset % 256, 0) << pt.name;
      EXPECT_LE(pt.offset + pt.bytes, static_cast<int64_t>(p.weights.size())) << pt.name;
      continue;
    }
    EXPECT_GE(pt.offset, 0) << pt.name;
    EXPECT_LE(pt.offset + pt.bytes, p.arena_bytes) << pt.name;
  }
  // Lifetimes: inputs are written before the first layer, outputs read after the last one.
  std::vector<int> first(nt, INT_MAX), last(nt, INT_MIN);
  for (int t : p.inputs) first[t] = -1, last[t] = std::max(last[t], -1);
  for (int s = 0; s < steps; ++s) {
    for (int t : p.layers[s].inputs) {
      if (p.tensors[t].kind == TensorKind::Weight) continue;
      EXPECT_LT(first[t], s) << "layer " << p.layers[s].name << " reads " << p.tensors[t].name << " before it is written";
      last[t] = std::max(last[t], s);
    }
    const size_t i = static_cast<size_t>(s);
    if (!tuned) {
      // Before tuning, every fusion the tuner may choose: a fusable depthwise + pointwise pair
      // reads the depthwise input at the pointwise step, an expansion + depthwise pair the
      // expansion's input at the depthwise step, a chain + convolution pair the chain's input at
      // the convolution's, a head branch its depthwise input at its last layer, ...
      if (dwpw_pair_possible(p, i) || pwdw_pair_possible(p, i) || chain_conv_possible(p, i)) {
        const int x = p.layers[i - 1].inputs[0];
        last[x] = std::max(last[x], s);
      }
      if (dwpwpw_possible(p, i)) {
        const int x = p.layers[dwpwpw_middle(p, i) - 1].inputs[0];
        last[x] = std::max(last[x], s);
      }
      if (stem_possible(p, i)) {  // a stem its first convolution's input at the 1x1 layer
        const int x = p.layers[i - 2].inputs[0];
        last[x] = std::max(last[x], s);
      }
    } else {
      // Tuned: what each launch reads and writes by its tactics (a group leader writes its members' outputs).
      for (int t : layer_reads(p, i)) last[t] = std::max(last[t], s);
      for (int t : layer_writes(p, i)) first[t] = std::min(first[t], s);
    }
    for (int t : p.layers[s].outputs) {
      EXPECT_NE(p.tensors[t].kind, TensorKind::Weight);
      first[t] = std::min(first[t], s);
      last[t] = std::max(last[t], s);
    }
  }
  if (!tuned)  // a group's launch at its leader's step writes every member's output
    for (const auto& [kind, members] : candidate_groups(p))
      for (size_t k = 1; k < members.size(); ++k)
        for (int t : p.layers[members[k]].outputs) first[t] = std::min(first[t], static_cast<int>(members[0]));
  for (int t : p.outputs) {
    EXPECT_LT(first[t], steps) << "output " << p.tensors[t].name << " is never written";
    last[t] = steps;
  }
  // Reshape views (same storage) may share bytes with what they view.
  std::vector<int> group(nt);
  std::iota(group.begin(), group.end(), 0);
  std::function<int(int)> root = [&](int t) { return group[t] == t ? t : group[t] = root(group[t]); };
  for (const auto& l : p.layers)
    if (l.op == OpKind::Reshape && p.tensors[l.inputs[0]].storage == p.tensors[l.outputs[0]].storage)
      group[root(l.outputs[0])] = root(l.inputs[0]);
  int conflicts = 0;
  for (int a = 0; a < nt; ++a) {
    if (p.tensors[a].kind == TensorKind::Weight || first[a] == INT_MAX) continue;
    for (int b = a + 1; b < nt; ++b) {
      if (p.tensors[b].kind == TensorKind::Weight || first[b] == INT_MAX) continue;
      if (root(a) == root(b)) continue;
      const bool live_together = first[a] <= last[b] && first[b] <= last[a];
      const PlanTensor &ta = p.tensors[a], &tb = p.tensors[b];
      const bool share = ta.offset < tb.offset + tb.bytes && tb.offset < ta.offset + ta.bytes;
      if (live_together && share && conflicts++ < 5)
        ADD_FAILURE() << "'" << ta.name << "' [" << first[a] << "," << last[a] << "] and '" << tb.name << "' ["
                      << first[b] << "," << last[b] << "] are alive together and share arena bytes";
    }
  }
  EXPECT_EQ(conflicts, 0);
}

// fp16 plans: compute layers see only fp16 activations; graph inputs keep their type, outputs
// are f32, and Cast layers (or layers that convert by themselves) sit in between.
void check_fp16_storage(const EnginePlan& p) {
  for (const auto& t : p.tensors) {
    if (t.kind == TensorKind::Activation) {
      EXPECT_TRUE(t.storage == Storage::F16 || t.storage == Storage::I32) << t.name;
    }
    if (t.kind == TensorKind::Output) {
      EXPECT_EQ(t.storage, Storage::F32) << t.name;
    }
    if (t.kind == TensorKind::Input) {
      EXPECT_NE(t.storage, Storage::F16) << t.name;
    }
  }
  for (const auto& l : p.layers) {
    if (l.op == OpKind::Cast || l.op == OpKind::ElementwiseChain || l.op == OpKind::Reshape) continue;
    for (int t : l.inputs) {
      if (p.tensors[t].kind != TensorKind::Weight) {
        EXPECT_EQ(p.tensors[t].storage, Storage::F16) << l.name << " reads " << p.tensors[t].name;
      }
    }
    // Convolutions write an engine output as f32 straight from their fp32 accumulators.
    const bool conv = l.op == OpKind::Conv2D || l.op == OpKind::DepthwiseConv2D;
    for (int t : l.outputs)
      EXPECT_EQ(p.tensors[t].storage, conv && p.tensors[t].kind == TensorKind::Output ? Storage::F32 : Storage::F16)
          << l.name << " writes " << p.tensors[t].name;
  }
}

TEST(PlanBuilder, SmallModelFp32LayersTensorsAndViews) {
  const Graph g = small_optimized();
  ASSERT_EQ(g.nodes.size(), 9u);
  const EnginePlan p = build_plan(g, "small", Precision::FP32, 1);
  EXPECT_EQ(p.model, "small");
  EXPECT_EQ(p.precision, Precision::FP32);
  EXPECT_EQ(p.max_batch, 1);
  EXPECT_EQ(layer_names(p), (std::vector<std::string>{"cast...norm/mul", "c1", "dw", "c2+res", "rs", "heat", "offsets", "up", "c4"}));
  ASSERT_EQ(p.inputs.size(), 1u);
  const PlanTensor& in = p.tensors[p.inputs[0]];
  EXPECT_EQ(in.name, "image");
  EXPECT_EQ(in.kind, TensorKind::Input);
  EXPECT_EQ(in.storage, Storage::I32);
  EXPECT_EQ(in.shape, (Shape{1, 8, 8, 3}));
  EXPECT_EQ(in.bytes, 8 * 8 * 3 * 4);
  ASSERT_EQ(p.outputs.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(p.tensors[p.outputs[i]].name, kHeads[i]);
    EXPECT_EQ(p.tensors[p.outputs[i]].kind, TensorKind::Output);
    EXPECT_EQ(p.tensors[p.outputs[i]].storage, Storage::F32);
  }
  EXPECT_EQ(p.tensors[p.outputs[0]].shape, (Shape{1, 4, 2, 16}));
  EXPECT_EQ(p.tensors[p.outputs[1]].shape, (Shape{1, 4, 4, 2}));
  EXPECT_EQ(p.tensors[p.outputs[2]].shape, (Shape{1, 8, 8, 3}));
  EXPECT_EQ(p.tensors[p.outputs[2]].bytes, 8 * 8 * 3 * 4);
  // No Cast layer in an fp32 plan: the i32 image goes straight into the chain.
  for (const auto& l : p.layers) EXPECT_NE(l.op, OpKind::Cast) << l.name;
  EXPECT_EQ(p.layers[0].inputs[0], p.inputs[0]);
  for (const auto& l : p.layers) EXPECT_EQ(l.tactic, 0);
  // The Reshape output is a view of its input.
  const int res = tensor_named(p, "res"), rs = tensor_named(p, "rs");
  ASSERT_GE(res, 0);
  ASSERT_GE(rs, 0);
  EXPECT_EQ(p.tensors[rs].offset, p.tensors[res].offset);
  EXPECT_EQ(p.tensors[rs].bytes, p.tensors[res].bytes);
  for (const auto& t : p.tensors) {
    if (t.kind == TensorKind::Activation) {
      EXPECT_EQ(t.storage, Storage::F32) << t.name;
    }
  }
  check_plan_invariants(p);
}

TEST(PlanBuilder, WeightsAreCopiedIntoAlignedSlots) {
  const Graph g = small_optimized();
  const EnginePlan p = build_plan(g, "small", Precision::FP32, 1);
  int weights = 0;
  for (const auto& t : p.tensors) {
    if (t.kind != TensorKind::Weight) continue;
    ++weights;
    SCOPED_TRACE(t.name);
    const int id = g.find_value(t.name);
    ASSERT_GE(id, 0);
    ASSERT_TRUE(g.values[id].constant.has_value());
    const Tensor& c = *g.values[id].constant;
    EXPECT_EQ(t.shape, c.shape());
    EXPECT_EQ(t.storage, c.dtype() == DType::I32 ? Storage::I32 : Storage::F32);
    ASSERT_EQ(t.bytes, static_cast<int64_t>(c.nbytes()));
    EXPECT_EQ(t.offset % 256, 0);
    ASSERT_LE(t.offset + t.bytes, static_cast<int64_t>(p.weights.size()));
    EXPECT_EQ(std::memcmp(p.weights.data() + t.offset, c.raw(), c.nbytes()), 0);
  }
  // mean, scale, 5 conv filters + 5 biases, the reshape shape and the resize size.
  EXPECT_EQ(weights, 14);
  const PlanTensor& size = p.tensors[tensor_named(p, "size")];
  EXPECT_EQ(size.storage, Storage::I32);
  EXPECT_EQ(size.kind, TensorKind::Weight);
}

TEST(PlanBuilder, MaxBatchScalesActivationsNotWeights) {
  const Graph g = small_optimized();
  const EnginePlan p1 = build_plan(g, "small", Precision::FP32, 1);
  const EnginePlan p3 = build_plan(g, "small", Precision::FP32, 3);
  ASSERT_EQ(p1.tensors.size(), p3.tensors.size());
  for (size_t i = 0; i < p1.tensors.size(); ++i) {
    const bool weight = p1.tensors[i].kind == TensorKind::Weight;
    EXPECT_EQ(p3.tensors[i].bytes, p1.tensors[i].bytes * (weight ? 1 : 3)) << p1.tensors[i].name;
    EXPECT_EQ(p3.tensors[i].shape, p1.tensors[i].shape) << "shapes stay per image";
  }
  EXPECT_EQ(p3.tensors[p3.inputs[0]].bytes, 3 * 8 * 8 * 3 * 4);
  EXPECT_EQ(p3.weights, p1.weights);
  check_plan_invariants(p3);
}

TEST(PlanBuilder, Fp16StoresActivationsAsHalfAndWritesOutputsAsFloat) {
  const Graph g = small_optimized();
  const EnginePlan p = build_plan(g, "small", Precision::FP16, 2);
  EXPECT_EQ(p.precision, Precision::FP16);
  // The chain reads the i32 image and writes fp16 itself; the heat chain writes the f32 output
  // itself; the convolutions that produce outputs write them as f32 directly (no Cast layer).
  EXPECT_EQ(layer_names(p),
            (std::vector<std::string>{"cast...norm/mul", "c1", "dw", "c2+res", "rs", "heat", "offsets", "up", "c4"}));
  EXPECT_EQ(p.tensors[p.inputs[0]].storage, Storage::I32);
  for (int t : p.outputs) EXPECT_EQ(p.tensors[t].storage, Storage::F32);
  EXPECT_EQ(layer_named(p, "offsets/cast"), -1);
  const PlanLayer& off = p.layers[layer_named(p, "offsets")];
  EXPECT_EQ(off.outputs, std::vector<int32_t>{p.outputs[1]});
  EXPECT_EQ(p.tensors[off.inputs[0]].storage, Storage::F16);
  const PlanLayer& heat = p.layers[layer_named(p, "heat")];
  EXPECT_EQ(heat.outputs, std::vector<int32_t>{p.outputs[0]});
  EXPECT_EQ(p.tensors[tensor_named(p, "res")].storage, Storage::F16);
  EXPECT_EQ(p.tensors[tensor_named(p, "res")].bytes, 4 * 4 * 8 * 2 * 2);
  // Weights stay f32 in the blob.
  EXPECT_EQ(p.tensors[tensor_named(p, "w1")].storage, Storage::F32);
  check_fp16_storage(p);
  check_plan_invariants(p);
}

TEST(PlanBuilder, Fp16CastsAFloatInputBeforeTheFirstConvolution) {
  // PoseNet-like: a float image feeding a convolution directly.
  std::mt19937 rng(7);
  Builder b;
  const int x = b.input("image", DType::F32, {1, 6, 6, 3});
  const int c = b.node(OpKind::Conv2D, "conv", {x, b.constant("w", rand_f32({3, 3, 3, 4}, rng)), b.constant("b", rand_f32({4}, rng))},
                       conv_attrs());
  const Graph g = b.finish({c});
  const EnginePlan p = build_plan(g, "tiny", Precision::FP16, 1);
  EXPECT_EQ(layer_names(p), (std::vector<std::string>{"image/cast", "conv"}));
  ASSERT_EQ(p.layers.size(), 2u);
  const PlanLayer& in_cast = p.layers[0];
  EXPECT_EQ(in_cast.op, OpKind::Cast);
  EXPECT_EQ(in_cast.attrs.get_str("to"), "f16");
  EXPECT_EQ(in_cast.inputs, std::vector<int32_t>{p.inputs[0]});
  ASSERT_EQ(in_cast.outputs.size(), 1u);
  const PlanTensor& half_in = p.tensors[in_cast.outputs[0]];
  EXPECT_EQ(half_in.name, "image/fp16");
  EXPECT_EQ(half_in.storage, Storage::F16);
  EXPECT_EQ(half_in.kind, TensorKind::Activation);
  EXPECT_EQ(half_in.bytes, 6 * 6 * 3 * 2);
  EXPECT_EQ(p.layers[1].inputs[0], in_cast.outputs[0]);
  EXPECT_EQ(p.tensors[p.inputs[0]].storage, Storage::F32);
  EXPECT_EQ(p.layers[1].outputs, std::vector<int32_t>{p.outputs[0]});  // the conv writes the f32 output itself
  check_fp16_storage(p);
  check_plan_invariants(p);
}

TEST(PlanBuilder, RejectsAnOpTheCudaRuntimeLacks) {
  Builder b;
  const int x = b.input("scores", DType::F32, {1, 10});
  Attrs a;
  a.set("sorted", int64_t{1});
  const auto tk = b.node_n(OpKind::TopKV2, "decoder/top_k", {x, b.constant("k", Tensor::scalar_i32(3))}, a, 2);
  const Graph g = b.finish({tk[0], tk[1]});
  EXPECT_FALSE(cuda_runtime_supports(OpKind::TopKV2));
  try {
    build_plan(g, "m", Precision::FP32, 1);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("'decoder/top_k'"), std::string::npos) << m;
    EXPECT_NE(m.find("TopKV2"), std::string::npos) << m;
  }
}

TEST(PlanBuilder, RejectsAGraphNotImportedAtBatchOne) {
  std::mt19937 rng(8);
  Builder b;
  const int x = b.input("image", DType::F32, {2, 6, 6, 3});
  const int c = b.node(OpKind::Conv2D, "conv", {x, b.constant("w", rand_f32({1, 1, 3, 4}, rng))}, conv_attrs());
  const Graph g = b.finish({c});
  for (Precision prec : {Precision::FP32, Precision::FP16}) {
    try {
      build_plan(g, "m", prec, 2);
      ADD_FAILURE() << "expected an error";
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("batch 1"), std::string::npos) << m;
      EXPECT_NE(m.find("'image'"), std::string::npos) << m;
    }
  }
}

TEST(PlanBuilder, RejectsAConstantWhereTheRuntimeNeedsComputedData) {
  // Add with a full-shape constant operand is neither a chain step nor a runtime Add.
  std::mt19937 rng(9);
  Builder b;
  const int x = b.input("image", DType::F32, {1, 2, 2, 3});
  const int a = b.node(OpKind::Add, "bias_map", {x, b.constant("map", rand_f32({1, 2, 2, 3}, rng))});
  const Graph g = optimize_for_engine(b.finish({a}), {"bias_map"});
  try {
    build_plan(g, "m", Precision::FP32, 1);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'bias_map'"), std::string::npos) << e.what();
  }
}

// ---- depthwise + pointwise pairs -------------------------------------------------------------

// x -> 1x1 conv "a" -> two depthwise layers -> one 1x1 conv each (outputs): the IR order runs both
// depthwise layers before either convolution, as MoveNet's heads do.
Graph two_branch_sep_convs(int channels = 16, bool tail = false) {
  std::mt19937 rng(5);
  Builder b;
  const int x = b.input("x", DType::F32, {1, 8, 8, channels});
  Attrs pw = conv_attrs();
  pw.set("activation", std::string("relu6"));
  Attrs dw = conv_attrs({2, 2});
  dw.set("activation", std::string("relu6"));
  const int a = b.node(OpKind::Conv2D, "a", {x, b.constant("wa", rand_f32({1, 1, channels, channels}, rng)),
                                               b.constant("ba", rand_f32({channels}, rng))}, pw);
  const int d1 = b.node(OpKind::DepthwiseConv2D, "dw1", {a, b.constant("w1", rand_f32({3, 3, channels, 1}, rng)),
                                                           b.constant("b1", rand_f32({channels}, rng))}, dw);
  const int d2 = b.node(OpKind::DepthwiseConv2D, "dw2", {a, b.constant("w2", rand_f32({3, 3, channels, 1}, rng))}, dw);
  const int p1 = b.node(OpKind::Conv2D, "pw1", {d1, b.constant("wp1", rand_f32({1, 1, channels, 8}, rng)),
                                                 b.constant("bp1", rand_f32({8}, rng))}, conv_attrs());
  const int p2 = b.node(OpKind::Conv2D, "pw2", {d2, b.constant("wp2", rand_f32({1, 1, channels, 24}, rng)),
                                                 b.constant("bp2", rand_f32({24}, rng))}, conv_attrs());
  if (!tail) return b.finish({p1, p2});
  // Layers after the pairs that read their outputs (written by the group's leader when grouped).
  const int t1 = b.node(OpKind::Conv2D, "tail1", {p1, b.constant("wt1", rand_f32({1, 1, 8, 8}, rng))}, conv_attrs());
  const int t2 = b.node(OpKind::Conv2D, "tail2", {p2, b.constant("wt2", rand_f32({1, 1, 24, 8}, rng))}, conv_attrs());
  return b.finish({t1, t2});
}

size_t layer_index(const EnginePlan& p, const std::string& name) {
  for (size_t i = 0; i < p.layers.size(); ++i)
    if (p.layers[i].name == name) return i;
  ADD_FAILURE() << "no layer " << name;
  return 0;
}

TEST(PlanBuilder, DepthwiseLayerMovesRightBeforeItsPointwiseConvolution) {
  const EnginePlan p = build_plan(two_branch_sep_convs(), "sep", Precision::FP16, 3);
  check_plan_invariants(p);
  const size_t p1 = layer_index(p, "pw1"), p2 = layer_index(p, "pw2");
  EXPECT_EQ(layer_index(p, "dw1"), p1 - 1);
  EXPECT_EQ(layer_index(p, "dw2"), p2 - 1);
  EXPECT_TRUE(dwpw_pair_possible(p, p1));
  EXPECT_TRUE(dwpw_pair_possible(p, p2));
  EXPECT_FALSE(dwpw_pair_possible(p, layer_index(p, "a")));
  // The depthwise input ("a") stays alive through both convolutions: their outputs never share its bytes.
  const PlanTensor& a = p.tensors[p.layers[layer_index(p, "a")].outputs[0]];
  for (size_t i : {p1, p2}) {
    const PlanTensor& y = p.tensors[p.layers[i].outputs[0]];
    EXPECT_TRUE(a.offset + a.bytes <= y.offset || y.offset + y.bytes <= a.offset) << p.layers[i].name;
  }
  // fp32 engines and channel counts that are not multiples of 8 have no fusable pair.
  const EnginePlan f32 = build_plan(two_branch_sep_convs(), "sep", Precision::FP32, 1);
  const EnginePlan odd = build_plan(two_branch_sep_convs(12), "sep", Precision::FP16, 1);
  for (size_t i = 0; i < f32.layers.size(); ++i) EXPECT_FALSE(dwpw_pair_possible(f32, i));
  for (size_t i = 0; i < odd.layers.size(); ++i) EXPECT_FALSE(dwpw_pair_possible(odd, i));
}

// validate() must refuse q, naming the file.
void refused(const EnginePlan& q, const std::string& what) {
  try {
    q.validate("engine file 'x.engine'");
    ADD_FAILURE() << "accepted: " << what;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("engine file 'x.engine'"), std::string::npos) << e.what();
  }
}

TEST(PlanBuilder, ValidateChecksFusedDepthwisePointwiseTactics) {
  EnginePlan p = build_plan(two_branch_sep_convs(), "sep", Precision::FP16, 1);
  const size_t p1 = layer_index(p, "pw1"), p2 = layer_index(p, "pw2");
  p.layers[p1 - 1].tactic = cuda::kDwFused;
  p.layers[p1].tactic = cuda::kConvDwPw64;
  p.layers[p2 - 1].tactic = cuda::kDwFused;
  p.layers[p2].tactic = cuda::kConvDwPw16;
  EXPECT_NO_THROW(p.validate("plan"));
  EXPECT_EQ(layer_reads(p, p1).back(), p.layers[p1 - 1].inputs[0]);
  EXPECT_NE(describe_plan(p).find("tactic dw+pw64x64"), std::string::npos) << describe_plan(p);
  EXPECT_NE(describe_plan(p).find("tactic fused"), std::string::npos);
  EnginePlan q = p;
  q.layers[p1].tactic = cuda::kConvWmma64;  // the depthwise layer would never be computed
  refused(q, "a fused depthwise layer before an unfused convolution");
  q = p;
  q.layers[p1 - 1].tactic = cuda::kDw3x3R4;  // the convolution would read a depthwise output nobody wrote... or both run
  refused(q, "a fused convolution after an unfused depthwise layer");
  q = p;
  const size_t a = layer_index(q, "a");
  q.layers[a].tactic = cuda::kConvDwPw64;  // no depthwise layer before it
  refused(q, "a fused tactic on a convolution without a depthwise layer before it");
  q = p;
  q.tensors[q.layers[p1].outputs[0]].offset = q.tensors[q.layers[p1 - 1].inputs[0]].offset;
  q.arena_bytes = std::max(q.arena_bytes, q.tensors[q.layers[p1 - 1].inputs[0]].offset + q.tensors[q.layers[p1].outputs[0]].bytes);
  refused(q, "a fused output over the depthwise input");
}

TEST(PlanBuilder, HorizontalGroupsArePlannedAndValidated) {
  EnginePlan p = build_plan(two_branch_sep_convs(), "sep", Precision::FP16, 2);
  check_plan_invariants(p);
  const size_t p1 = layer_index(p, "pw1"), p2 = layer_index(p, "pw2");
  const auto groups = candidate_groups(p);
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups[0].first, GroupKind::DwPw);
  EXPECT_EQ(groups[0].second, (std::vector<size_t>{p1, p2}));
  EXPECT_FALSE(group_possible(p, {p1, p2}, GroupKind::Pw1x1));  // they are fusable pairs, not plain 1x1 layers
  // pw2's output is written at pw1's step: it shares no bytes with anything the group reads.
  p.layers[p1 - 1].tactic = cuda::kDwFused;
  p.layers[p1].tactic = cuda::kConvGroupDwPw16;
  p.layers[p2 - 1].tactic = cuda::kDwFused;
  p.layers[p2].tactic = cuda::kConvGroupMember;
  EXPECT_NO_THROW(p.validate("plan"));
  EXPECT_EQ(group_of(p, p1), (std::vector<size_t>{p1, p2}));
  EXPECT_TRUE(group_of(p, p2).empty());
  EXPECT_TRUE(dwpw_fused(p, p2));
  const auto w = layer_writes(p, p1);
  EXPECT_EQ(w.size(), 2u);
  EXPECT_NE(describe_plan(p).find("tactic group:dw+pw16x32"), std::string::npos);
  EXPECT_NE(describe_plan(p).find("tactic grouped"), std::string::npos);
  EnginePlan q = p;
  q.layers[p1].tactic = cuda::kConvDwPw16;  // pw2 would never be computed
  refused(q, "a group member without a leader");
  q = p;
  q.layers[p2].tactic = cuda::kConvDwPw16;  // a group of one
  refused(q, "a group leader without members");
  q = p;
  q.layers[p1].tactic = cuda::kConvGroupWmma;  // the wrong kind for fused pairs
  refused(q, "a 1x1 group over depthwise + pointwise pairs");
  q = p;
  const int32_t y2 = q.layers[p2].outputs[0], x1 = q.layers[p1 - 1].inputs[0];
  q.tensors[y2].offset = q.tensors[x1].offset;
  q.arena_bytes = std::max(q.arena_bytes, q.tensors[x1].offset + q.tensors[y2].bytes);
  refused(q, "a member output over a tensor the group reads");
}

// ---- elementwise chain + convolution pairs --------------------------------------------------

// x (int32, an image) -> chain "norm" ((x - mean) * scale) -> 3x3 conv "c1" with a residual from a
// second input -> output; with `also_read`, a second convolution reads the chain's output too.
Graph chain_then_conv(bool also_read = false) {
  std::mt19937 rng(9);
  Builder b;
  const int x = b.input("x", DType::I32, {1, 10, 9, 3});
  const int res = b.input("res", DType::F32, {1, 5, 5, 8});
  Attrs ca;
  ca.set("program", std::vector<int64_t>{2, 0, 4, 1});
  const int n = b.node(OpKind::ElementwiseChain, "norm",
                       {x, b.constant("mean", Tensor::from_floats({3}, {120.f, 110.f, 100.f})),
                        b.constant("scale", Tensor::scalar_f32(1 / 127.5f))},
                       ca);
  const int c1 = b.node(OpKind::Conv2D, "c1", {n, b.constant("w1", rand_f32({3, 3, 3, 8}, rng)), b.constant("b1", rand_f32({8}, rng)), res},
                        conv_attrs({2, 2}));
  if (!also_read) return b.finish({c1});
  const int c2 = b.node(OpKind::Conv2D, "c2", {n, b.constant("w2", rand_f32({1, 1, 3, 8}, rng))}, conv_attrs());
  return b.finish({c1, c2});
}

TEST(PlanBuilder, ChainRightBeforeItsConvolutionAndValidated) {
  EnginePlan p = build_plan(chain_then_conv(), "chain", Precision::FP16, 2);
  check_plan_invariants(p);
  const size_t c1 = layer_index(p, "c1");
  // The residual's Cast to half would sit between them in graph order; the chain moves after it.
  EXPECT_EQ(layer_index(p, "norm"), c1 - 1) << describe_plan(p);
  ASSERT_TRUE(chain_conv_possible(p, c1));
  EXPECT_FALSE(chain_conv_possible(p, c1 - 1));
  // The chain's input stays alive through the convolution: the output never shares its bytes.
  const PlanTensor& x = p.tensors[p.layers[c1 - 1].inputs[0]];
  const PlanTensor& y = p.tensors[p.layers[c1].outputs[0]];
  EXPECT_TRUE(x.offset + x.bytes <= y.offset || y.offset + y.bytes <= x.offset);
  p.layers[c1 - 1].tactic = cuda::kChainFused;
  p.layers[c1].tactic = cuda::kConvChainDirect8Smem;
  EXPECT_NO_THROW(p.validate("plan"));
  EXPECT_TRUE(chain_fused(p, c1));
  EXPECT_EQ(layer_reads(p, c1).back(), p.layers[c1 - 1].inputs[0]);
  EXPECT_NE(describe_plan(p).find("tactic chain+direct8smem"), std::string::npos) << describe_plan(p);
  EXPECT_NE(describe_plan(p).find("tactic fused"), std::string::npos);
  EnginePlan q = p;
  q.layers[c1].tactic = cuda::kConvDirect8Smem;  // the chain would never be computed
  refused(q, "a fused chain before a convolution that does not compute it");
  q = p;
  q.layers[c1 - 1].tactic = cuda::kChainKernel;  // both would compute it: harmless, but not a plan the tuner makes
  refused(q, "a chain-computing convolution after a chain that runs its own kernel");
  q = p;
  q.layers[c1 - 1].tactic = 2;
  refused(q, "an unknown chain tactic");
  // The tensor-core variant (chain+mma3x3) is held to the same rules.
  q = p;
  q.layers[c1].tactic = cuda::kConvChainMma3x3;
  EXPECT_NO_THROW(q.validate("plan"));
  EXPECT_TRUE(chain_fused(q, c1));
  EXPECT_NE(describe_plan(q).find("tactic chain+mma3x3"), std::string::npos) << describe_plan(q);
  q.layers[c1 - 1].tactic = cuda::kChainKernel;
  refused(q, "chain+mma3x3 after a chain that runs its own kernel");
  q = p;
  q.layers[c1].tactic = cuda::kConvMma3x3;
  refused(q, "a fused chain before mma3x3, which does not compute it");
  q = p;
  q.tensors[q.layers[c1].outputs[0]].offset = x.offset;
  q.arena_bytes = std::max(q.arena_bytes, x.offset + y.bytes);
  refused(q, "a fused output over the chain's input");
  // A chain whose output another layer reads, and fp32 engines' chains, as the check sees them.
  const EnginePlan two = build_plan(chain_then_conv(true), "chain", Precision::FP16, 1);
  check_plan_invariants(two);
  for (size_t i = 0; i < two.layers.size(); ++i) EXPECT_FALSE(chain_conv_possible(two, i)) << two.layers[i].name;
  const EnginePlan f32 = build_plan(chain_then_conv(), "chain", Precision::FP32, 1);
  EXPECT_TRUE(chain_conv_possible(f32, layer_index(f32, "c1")));
}

// A MobileNetV2 stem: x -> 3x3 stride-2 convolution on 3 channels "c1" -> 3x3 depthwise "d" ->
// 1x1 projection "p" -> 1x1 "e"; with `second_reader`, another 1x1 convolution also reads c1.
Graph stem_block(bool second_reader = false) {
  std::mt19937 rng(13);
  Builder b;
  const int x = b.input("x", DType::F32, {1, 20, 18, 3});
  const int c1 = b.node(OpKind::Conv2D, "c1", {x, b.constant("w1", rand_f32({3, 3, 3, 32}, rng)), b.constant("b1", rand_f32({32}, rng))},
                        conv_attrs({2, 2}));
  const int d = b.node(OpKind::DepthwiseConv2D, "d", {c1, b.constant("wd", rand_f32({3, 3, 32, 1}, rng))}, conv_attrs());
  const int pr = b.node(OpKind::Conv2D, "p", {d, b.constant("wp", rand_f32({1, 1, 32, 16}, rng))}, conv_attrs());
  const int e = b.node(OpKind::Conv2D, "e", {pr, b.constant("we", rand_f32({1, 1, 16, 24}, rng))}, conv_attrs());
  if (!second_reader) return b.finish({e});
  const int o = b.node(OpKind::Conv2D, "o", {c1, b.constant("wo", rand_f32({1, 1, 32, 8}, rng))}, conv_attrs());
  return b.finish({e, o});
}

TEST(PlanBuilder, StemPlannedAndValidated) {
  EnginePlan p = build_plan(stem_block(), "stem", Precision::FP16, 2);
  check_plan_invariants(p);
  const size_t pw = layer_index(p, "p");
  ASSERT_EQ(layer_index(p, "d"), pw - 1) << describe_plan(p);
  ASSERT_EQ(layer_index(p, "c1"), pw - 2) << describe_plan(p);
  ASSERT_TRUE(stem_possible(p, pw));
  for (size_t i = 0; i < p.layers.size(); ++i) {
    if (i == pw) continue;
    EXPECT_FALSE(stem_possible(p, i)) << p.layers[i].name;
  }
  // The first convolution's input stays alive through the projection: the output never shares its bytes.
  const int32_t xin = p.layers[pw - 2].inputs[0];
  const PlanTensor& x = p.tensors[xin];
  const PlanTensor& y = p.tensors[p.layers[pw].outputs[0]];
  EXPECT_TRUE(x.offset + x.bytes <= y.offset || y.offset + y.bytes <= x.offset);
  p.layers[pw - 2].tactic = cuda::kConvStemMember;
  p.layers[pw - 1].tactic = cuda::kDwFused;
  p.layers[pw].tactic = cuda::kConvStemDwPw;
  EXPECT_NO_THROW(p.validate("plan"));
  EXPECT_TRUE(stem_fused(p, pw));
  EXPECT_FALSE(dwpw_fused(p, pw));
  EXPECT_TRUE(launches_nothing(OpKind::Conv2D, cuda::kConvStemMember));
  const auto reads = layer_reads(p, pw);
  EXPECT_NE(std::find(reads.begin(), reads.end(), xin), reads.end());
  EXPECT_NE(describe_plan(p).find("tactic conv+dw+pw"), std::string::npos) << describe_plan(p);
  EXPECT_NE(describe_plan(p).find("tactic in-conv+dw+pw"), std::string::npos) << describe_plan(p);
  EnginePlan q = p;
  q.layers[pw].tactic = cuda::kConvWmma64;  // nobody would compute the first two layers
  refused(q, "a stem member and a fused depthwise layer before a 1x1 layer that does not compute them");
  q = p;
  q.layers[pw - 2].tactic = cuda::kConvMma3x3;  // both would compute it: not a plan the tuner makes
  refused(q, "a stem kernel after a first convolution that runs its own kernel");
  q = p;
  q.layers[pw - 1].tactic = cuda::kDw3x3R1;
  refused(q, "a stem kernel after a depthwise layer that runs its own kernel");
  q = p;
  q.layers[pw].tactic = cuda::kConvDwPw16;  // the dw+pw kernel would read a first-convolution output nobody wrote
  refused(q, "a stem member before a dw+pw pair");
  q = p;
  q.tensors[q.layers[pw].outputs[0]].offset = x.offset;
  q.arena_bytes = std::max(q.arena_bytes, x.offset + y.bytes);
  refused(q, "a stem output over the first convolution's input");
  // Planned for the fusions chosen: the input stays alive only where the stem is fused.
  assign_arena(p, ArenaFusions::Chosen);
  check_plan_invariants(p, true);
  // A first convolution whose output another layer reads, and fp32 engines, cannot fuse.
  const EnginePlan two = build_plan(stem_block(true), "stem", Precision::FP16, 1);
  for (size_t i = 0; i < two.layers.size(); ++i) EXPECT_FALSE(stem_possible(two, i)) << two.layers[i].name;
  const EnginePlan f32 = build_plan(stem_block(), "stem", Precision::FP32, 1);
  for (size_t i = 0; i < f32.layers.size(); ++i) EXPECT_FALSE(stem_possible(f32, i)) << f32.layers[i].name;
}

TEST(PlanBuilder, StreamScheduleWaitsForTheGroupLeader) {
  EnginePlan p = build_plan(two_branch_sep_convs(16, true), "sep", Precision::FP16, 1);
  const size_t p1 = layer_index(p, "pw1"), p2 = layer_index(p, "pw2"), t = layer_index(p, "tail2");
  ASSERT_FALSE(candidate_groups(p).empty());
  ASSERT_EQ(candidate_groups(p)[0].second, (std::vector<size_t>{p1, p2}));
  p.layers[p1 - 1].tactic = cuda::kDwFused;
  p.layers[p1].tactic = cuda::kConvGroupDwPw16;
  p.layers[p2 - 1].tactic = cuda::kDwFused;
  p.layers[p2].tactic = cuda::kConvGroupMember;
  ASSERT_NO_THROW(p.validate("plan"));
  const StreamSchedule s = schedule_streams(p, 4, [](const PlanLayer&) { return false; });
  std::cout << "[ schedule ] streams " << s.streams << ": leader on " << s.stream[p1] << ", member on " << s.stream[p2]
            << ", tail2 on " << s.stream[t] << "\n";
  // "tail2" reads what the leader writes for pw2: it runs after it on its stream, or waits for
  // the leader or a later layer of the leader's stream.
  EXPECT_GT(t, p1);
  if (s.stream[t] != s.stream[p1]) {
    bool waits = false;
    for (int w : s.waits[t]) waits = waits || (s.stream[w] == s.stream[p1] && w >= static_cast<int>(p1));
    EXPECT_TRUE(waits) << "tail2 on stream " << s.stream[t] << " does not wait for the leader's stream " << s.stream[p1];
  }
}

// ---- 1x1 expansion + depthwise pairs ---------------------------------------------------------

// A MobileNetV2 block: x -> 1x1 expansion "e" (relu6) -> 3x3 depthwise "d" (stride 2, relu6) ->
// 1x1 projection "p"; with `second_reader`, another 1x1 convolution also reads the expansion.
Graph expansion_block(bool second_reader = false) {
  std::mt19937 rng(8);
  Builder b;
  const int x = b.input("x", DType::F32, {1, 9, 7, 16});
  Attrs r6 = conv_attrs();
  r6.set("activation", std::string("relu6"));
  Attrs dw = conv_attrs({2, 2});
  dw.set("activation", std::string("relu6"));
  const int e = b.node(OpKind::Conv2D, "e", {x, b.constant("we", rand_f32({1, 1, 16, 96}, rng)),
                                             b.constant("be", rand_f32({96}, rng))}, r6);
  const int d = b.node(OpKind::DepthwiseConv2D, "d", {e, b.constant("wd", rand_f32({3, 3, 96, 1}, rng)),
                                                      b.constant("bd", rand_f32({96}, rng))}, dw);
  const int p = b.node(OpKind::Conv2D, "p", {d, b.constant("wp", rand_f32({1, 1, 96, 24}, rng))}, conv_attrs());
  if (!second_reader) return b.finish({p});
  const int q = b.node(OpKind::Conv2D, "q", {e, b.constant("wq", rand_f32({1, 1, 96, 8}, rng))}, conv_attrs());
  return b.finish({p, q});
}

TEST(PlanBuilder, ExpansionDepthwisePairPlannedAndValidated) {
  EnginePlan p = build_plan(expansion_block(), "block", Precision::FP16, 2);
  check_plan_invariants(p);
  const size_t e = layer_index(p, "e"), d = layer_index(p, "d"), pr = layer_index(p, "p");
  ASSERT_EQ(d, e + 1);
  EXPECT_TRUE(pwdw_pair_possible(p, d));
  EXPECT_FALSE(pwdw_pair_possible(p, e));
  EXPECT_FALSE(pwdw_pair_possible(p, pr));
  EXPECT_TRUE(dwpw_pair_possible(p, pr));  // the depthwise layer could go either way, not both
  // The expansion's input stays alive through the depthwise layer: its output never shares those bytes.
  const PlanTensor& x = p.tensors[p.layers[e].inputs[0]];
  const PlanTensor& y = p.tensors[p.layers[d].outputs[0]];
  EXPECT_TRUE(x.offset + x.bytes <= y.offset || y.offset + y.bytes <= x.offset);
  p.layers[e].tactic = cuda::kConvPwDwMember;
  p.layers[d].tactic = cuda::kDwPwDw;
  EXPECT_NO_THROW(p.validate("plan"));
  EXPECT_TRUE(pwdw_fused(p, d));
  EXPECT_EQ(layer_reads(p, d).back(), p.layers[e].inputs[0]);
  EXPECT_NE(describe_plan(p).find("tactic pw+dw"), std::string::npos) << describe_plan(p);
  EXPECT_NE(describe_plan(p).find("tactic in-pw+dw"), std::string::npos) << describe_plan(p);
  EnginePlan q = p;
  q.layers[d].tactic = cuda::kDw3x3R1;  // the expansion would never be computed
  refused(q, "a fused expansion before an unfused depthwise layer");
  q = p;
  q.layers[e].tactic = cuda::kConvWmma64;  // both would run, the depthwise layer reading the input as well
  refused(q, "a pw+dw depthwise layer after an unfused expansion");
  q = p;
  q.layers[pr].tactic = cuda::kConvDwPw64;  // the depthwise layer cannot also be computed by the projection
  refused(q, "a depthwise layer in two fused pairs");
  q = p;
  q.tensors[q.layers[d].outputs[0]].offset = x.offset;
  q.arena_bytes = std::max(q.arena_bytes, x.offset + y.bytes);
  try {
    q.validate("engine file 'x.engine'");
    ADD_FAILURE() << "accepted a pw+dw output over the expansion's input";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("overlaps the fused expansion's input"), std::string::npos) << err.what();
  }
  // Planned again for the chosen fusions only: with the pair fused the expansion's input still
  // stays apart from the depthwise output; with nothing fused the arena needs no more bytes than
  // the plan made for every possible fusion, and no bytes for the pair's lifetime extension.
  EnginePlan chosen = p;
  assign_arena(chosen, ArenaFusions::Chosen);
  EXPECT_NO_THROW(chosen.validate("chosen"));
  check_plan_invariants(chosen, true);
  EnginePlan none = build_plan(expansion_block(), "block", Precision::FP16, 2);
  const int64_t possible_bytes = none.arena_bytes;
  assign_arena(none, ArenaFusions::Chosen);
  EXPECT_NO_THROW(none.validate("none fused"));
  check_plan_invariants(none, true);
  EXPECT_LE(none.arena_bytes, possible_bytes);
  // fp32 engines, and an expansion something else reads too, have no such pair.
  const EnginePlan f32 = build_plan(expansion_block(), "block", Precision::FP32, 1);
  const EnginePlan shared = build_plan(expansion_block(true), "block", Precision::FP16, 1);
  for (size_t i = 0; i < f32.layers.size(); ++i) EXPECT_FALSE(pwdw_pair_possible(f32, i));
  for (size_t i = 0; i < shared.layers.size(); ++i) EXPECT_FALSE(pwdw_pair_possible(shared, i));
}

// ---- head branches (depthwise -> 1x1 -> 1x1) --------------------------------------------------

// x -> two branches, each a 3x3 depthwise layer, a 1x1 convolution (relu) and a 1x1 head (the
// outputs, float in fp16 engines); the IR runs both depthwise layers, then both middle layers,
// then both heads, as MoveNet's graph does.
Graph two_heads(int dw_stride = 1) {
  std::mt19937 rng(13);
  Builder b;
  const int x = b.input("x", DType::F32, {1, 8, 8, 24});
  Attrs dw = conv_attrs({dw_stride, dw_stride});
  Attrs relu = conv_attrs();
  relu.set("activation", std::string("relu"));
  std::vector<int> d, m, h;
  for (int k = 0; k < 2; ++k) {
    const std::string s = std::to_string(k);
    d.push_back(b.node(OpKind::DepthwiseConv2D, "dw" + s, {x, b.constant("wd" + s, rand_f32({3, 3, 24, 1}, rng))}, dw));
  }
  for (int k = 0; k < 2; ++k) {
    const std::string s = std::to_string(k);
    m.push_back(b.node(OpKind::Conv2D, "mid" + s, {d[k], b.constant("wm" + s, rand_f32({1, 1, 24, 96}, rng)),
                                                    b.constant("bm" + s, rand_f32({96}, rng))}, relu));
  }
  for (int k = 0; k < 2; ++k) {
    const std::string s = std::to_string(k);
    h.push_back(b.node(OpKind::Conv2D, "head" + s, {m[k], b.constant("wh" + s, rand_f32({1, 1, 96, 17 + k}, rng)),
                                                     b.constant("bh" + s, rand_f32({17 + k}, rng))}, conv_attrs()));
  }
  return b.finish(h);
}

TEST(PlanBuilder, HeadBranchesPlannedAndValidated) {
  EnginePlan p = build_plan(two_heads(), "heads", Precision::FP16, 2);
  check_plan_invariants(p);
  const size_t h0 = layer_index(p, "head0"), h1 = layer_index(p, "head1");
  const size_t m0 = layer_index(p, "mid0"), m1 = layer_index(p, "mid1");
  EXPECT_TRUE(dwpwpw_possible(p, h0));
  EXPECT_TRUE(dwpwpw_possible(p, h1));
  EXPECT_FALSE(dwpwpw_possible(p, m0));
  EXPECT_EQ(dwpwpw_middle(p, h0), m0);
  EXPECT_EQ(dwpwpw_middle(p, h1), m1);
  EXPECT_EQ(layer_index(p, "dw0"), m0 - 1);
  EXPECT_GT(h0, m1);  // the heads come after both middle layers: the fused kernel need not follow its middle layer
  // The depthwise input stays alive until the last head: no head writes its bytes.
  const PlanTensor& x = p.tensors[p.layers[m0 - 1].inputs[0]];
  for (size_t i : {h0, h1}) {
    const PlanTensor& y = p.tensors[p.layers[i].outputs[0]];
    EXPECT_TRUE(x.offset + x.bytes <= y.offset || y.offset + y.bytes <= x.offset) << p.layers[i].name;
  }
  for (size_t i : {h0, h1}) {
    const size_t m = dwpwpw_middle(p, i);
    p.layers[m - 1].tactic = cuda::kDwFused;
    p.layers[m].tactic = cuda::kConvPwPwMember;
    p.layers[i].tactic = cuda::kConvDwPwPw;
  }
  EXPECT_NO_THROW(p.validate("plan"));
  EXPECT_TRUE(dwpwpw_fused(p, h0));
  EXPECT_EQ(layer_reads(p, h0).back(), x.offset == p.tensors[p.layers[m0 - 1].inputs[0]].offset ? p.layers[m0 - 1].inputs[0] : -1);
  EXPECT_NE(describe_plan(p).find("tactic dw+pw+pw"), std::string::npos) << describe_plan(p);
  // As a group: the heads are consecutive 1x1 layers.
  EnginePlan g = p;
  ASSERT_EQ(h1, h0 + 1);
  g.layers[h0].tactic = cuda::kConvGroupDwPwPw;
  g.layers[h1].tactic = cuda::kConvGroupMember;
  EXPECT_NO_THROW(g.validate("grouped"));
  EXPECT_EQ(group_of(g, h0).size(), 2u);
  EXPECT_TRUE(dwpwpw_fused(g, h1));
  const auto reads = layer_reads(g, h0);
  EXPECT_NE(std::find(reads.begin(), reads.end(), p.layers[m0 - 1].inputs[0]), reads.end());
  EnginePlan q = p;
  q.layers[h0].tactic = cuda::kConvWmma64;  // the middle layer would never be computed
  refused(q, "a fused middle layer no later layer computes");
  q = p;
  q.layers[m0 - 1].tactic = cuda::kDw3x3R1;  // the head would compute a depthwise layer that also runs
  refused(q, "a head branch whose depthwise layer is not marked fused");
  q = p;
  q.layers[m0].tactic = cuda::kConvDwPw64;  // the middle layer would run (as a dw+pw pair) too
  refused(q, "a head branch whose middle layer runs");
  q = g;
  q.layers[m1].tactic = cuda::kConvWmma64;
  q.layers[m1 - 1].tactic = cuda::kDw3x3R1;
  refused(q, "a dw+pw+pw group with a member that is not a fused head branch");
  q = g;  // a plain 1x1 group whose second member is a head branch: its kernel would read mid1, which nobody writes
  q.layers[h0].tactic = cuda::kConvGroupWmma;
  q.layers[m0].tactic = cuda::kConvWmma64;
  q.layers[m0 - 1].tactic = cuda::kDw3x3R1;
  try {
    q.validate("engine file 'x.engine'");
    ADD_FAILURE() << "accepted a wmma64x64 group over fused head branches";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("computes a head branch"), std::string::npos) << err.what();
  }
  q = p;
  q.tensors[q.layers[h0].outputs[0]].offset = x.offset;
  q.arena_bytes = std::max(q.arena_bytes, x.offset + q.tensors[q.layers[h0].outputs[0]].bytes);
  try {
    q.validate("engine file 'x.engine'");
    ADD_FAILURE() << "accepted a head output over the branch's input";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("overlaps the fused head branch's input"), std::string::npos) << err.what();
  }
  // A strided depthwise layer, and fp32 engines, have no such chain.
  const EnginePlan s2 = build_plan(two_heads(2), "heads", Precision::FP16, 1);
  const EnginePlan f32 = build_plan(two_heads(), "heads", Precision::FP32, 1);
  for (size_t i = 0; i < s2.layers.size(); ++i) EXPECT_FALSE(dwpwpw_possible(s2, i));
  for (size_t i = 0; i < f32.layers.size(); ++i) EXPECT_FALSE(dwpwpw_possible(f32, i));
}

// Engine files carrying the new fused forms: read back exactly; tampered (a valid checksum over an
// inconsistent plan) refused with a message naming the file and the layer.
TEST(PlanBuilder, FusedFormsInEngineFiles) {
  EnginePlan p = build_plan(expansion_block(), "block", Precision::FP16, 2);
  const size_t e = layer_index(p, "e"), d = layer_index(p, "d");
  p.layers[e].tactic = cuda::kConvPwDwMember;
  p.layers[d].tactic = cuda::kDwPwDw;
  EnginePlan h = build_plan(two_heads(), "heads", Precision::FP16, 2);
  const size_t h0 = layer_index(h, "head0"), h1 = layer_index(h, "head1");
  for (size_t i : {h0, h1}) {
    const size_t m = dwpwpw_middle(h, i);
    h.layers[m - 1].tactic = cuda::kDwFused;
    h.layers[m].tactic = cuda::kConvPwPwMember;
  }
  h.layers[h0].tactic = cuda::kConvGroupDwPwPw;
  h.layers[h1].tactic = cuda::kConvGroupMember;
  for (const EnginePlan* q : {&p, &h}) {
    const auto bytes = serialize_engine(*q);
    const EnginePlan back = deserialize_engine(bytes, "engine file 'x.engine'");
    EXPECT_EQ(serialize_engine(back), bytes);
  }
  auto refused_as = [](const EnginePlan& q, const std::string& part) {
    try {
      deserialize_engine(serialize_engine(q), "engine file 'x.engine'");
      ADD_FAILURE() << "accepted: " << part;
    } catch (const Error& err) {
      const std::string m = err.what();
      EXPECT_NE(m.find("engine file 'x.engine'"), std::string::npos) << m;
      EXPECT_NE(m.find(part), std::string::npos) << m;
    }
  };
  EnginePlan q = p;
  q.layers[d].tactic = cuda::kDw3x3R1;
  refused_as(q, "'e' is marked fused");
  q = h;
  q.layers[h1].tactic = cuda::kConvWmma64;  // the member's middle layer would never run
  refused_as(q, "is marked fused but no later layer computes it");
  EXPECT_EQ(cuda::kConvPwDwMember, 16);  // ids stored in engine files (docs/engine-format.md)
  EXPECT_EQ(cuda::kConvDwPwPw, 17);
  EXPECT_EQ(cuda::kConvPwPwMember, 18);
  EXPECT_EQ(cuda::kConvGroupDwPwPw, 19);
  EXPECT_EQ(cuda::kDwPwDw, 7);
}

// ---- the real models ------------------------------------------------------------------------

void check_model_plan(const std::string& name) {
  const ModelSpec& spec = find_model_spec(name);
  if (!test::have_model(spec.file_stem))
    GTEST_SKIP() << "model " << spec.file_stem << " is not installed in " << test::models_dir()
                 << " (run scripts/fetch_models.sh)";
  for (Precision prec : {Precision::FP32, Precision::FP16}) {
    SCOPED_TRACE(precision_name(prec));
    const PlannedEngine pe = plan_engine(spec.name, test::models_dir(), prec, 2);
    const EnginePlan& p = pe.plan;
    ASSERT_EQ(p.outputs.size(), spec.head_values.size());
    for (size_t i = 0; i < p.outputs.size(); ++i) EXPECT_EQ(p.tensors[p.outputs[i]].name, spec.head_values[i]);
    check_plan_invariants(p);
    if (prec == Precision::FP16) check_fp16_storage(p);
    int pairs = 0;
    for (size_t i = 0; i < p.layers.size(); ++i) pairs += dwpw_pair_possible(p, i);
    if (prec == Precision::FP32) {
      EXPECT_EQ(pairs, 0);
    } else if (spec.name == "movenet-lightning") {
      EXPECT_EQ(pairs, 24);  // every depthwise layer
    }
    int expansions = 0;
    for (size_t i = 0; i < p.layers.size(); ++i) expansions += pwdw_pair_possible(p, i);
    if (prec == Precision::FP32) {
      EXPECT_EQ(expansions, 0);
    } else if (spec.name == "movenet-lightning" || spec.name == "movenet-thunder") {
      EXPECT_EQ(expansions, 16);  // blocks 1 to 16 of the MobileNetV2 backbone
    }
    int heads = 0;
    for (size_t i = 0; i < p.layers.size(); ++i) heads += dwpwpw_possible(p, i);
    if (prec == Precision::FP32) {
      EXPECT_EQ(heads, 0);
    } else if (spec.name == "movenet-lightning" || spec.name == "movenet-thunder") {
      // The four head branches, and two chains in the backbone: the first block's depthwise layer,
      // projection and the next block's expansion, and the last block's depthwise layer,
      // projection and the 1x1 layer after it (wider than the kernel takes: the tuner skips them).
      EXPECT_EQ(heads, 6);
    }
    if (prec == Precision::FP16) {
      // Tuned as the H100 tunes batch 64 (some expansion pairs fused, the rest apart), the arena
      // planned again for those fusions alone: consistent, and no larger than before tuning.
      EnginePlan t = p;
      int fused = 0;
      for (size_t i = 0; i < t.layers.size(); ++i)
        if (pwdw_pair_possible(t, i) && fused++ % 2 == 0) t.layers[i - 1].tactic = cuda::kConvPwDwMember, t.layers[i].tactic = cuda::kDwPwDw;
      assign_arena(t, ArenaFusions::Chosen);
      check_plan_invariants(t, true);
      EXPECT_LE(t.arena_bytes, p.arena_bytes);
      std::cout << "[ plan     ] " << spec.name << " fp16: arena " << p.arena_bytes << " bytes before tuning, " << t.arena_bytes
                << " with every other expansion pair fused\n";
    }
    int chains = 0;
    for (size_t i = 0; i < p.layers.size(); ++i) chains += chain_conv_possible(p, i);
    // MoveNet's input normalization feeds its first convolution, in both precisions.
    if (spec.name.rfind("movenet", 0) == 0) {
      EXPECT_EQ(chains, 1);
    }
    int stems = 0;
    for (size_t i = 0; i < p.layers.size(); ++i) stems += stem_possible(p, i);
    // MoveNet's first convolution, first depthwise layer and first projection, in fp16 engines.
    if (spec.name.rfind("movenet", 0) == 0) {
      EXPECT_EQ(stems, prec == Precision::FP16 ? 1 : 0);
    }
    const auto groups = candidate_groups(p);
    if (prec == Precision::FP16 && spec.name == "movenet-lightning") {
      // The four head branches (dw+pw pairs) and the four head outputs (1x1 convolutions).
      ASSERT_EQ(groups.size(), 2u);
      EXPECT_EQ(groups[0].first, GroupKind::DwPw);
      EXPECT_EQ(groups[0].second.size(), 4u);
      EXPECT_EQ(groups[1].first, GroupKind::Pw1x1);
      EXPECT_EQ(groups[1].second.size(), 4u);
    }
    std::cout << "[ plan     ] " << spec.name << " " << precision_name(prec) << ": " << pairs
              << " fusable depthwise + pointwise pairs, " << expansions << " fusable expansion + depthwise pairs, " << heads << " fusable head branches, "
              << groups.size() << " horizontal groups, " << chains
              << " fusable chain + convolution pairs\n";
    std::cout << "[ plan     ] " << spec.name << " " << precision_name(prec) << ": " << p.layers.size() << " layers, "
              << p.tensors.size() << " tensors, arena " << p.arena_bytes << " bytes of " << p.activation_sum_bytes
              << " (batch 2), weights " << p.weights.size() << " bytes\n";
  }
}

TEST(PlanBuilder, MoveNetLightningPlan) { check_model_plan("movenet-lightning"); }
TEST(PlanBuilder, MoveNetThunderPlan) { check_model_plan("movenet-thunder"); }
TEST(PlanBuilder, MoveNetMultiPosePlan) { check_model_plan("movenet-multipose"); }
TEST(PlanBuilder, PoseNetPlan) { check_model_plan("posenet"); }

}  // namespace
}  // namespace posert
