// Every CUDA kernel (and every tactic of it, cuDNN's included) against the reference kernels, on
// random inputs over many shapes: odd sizes, stride 2, asymmetric SAME padding, channel counts
// that are not multiples of 8, batch 1 and many. FP32 within 1e-4 relative L2 error, FP16 within
// 1e-2. Runs on the GPU machine; skips with the reason elsewhere.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "gpu/gpu_test_util.h"

#if POSERT_HAVE_CUDA
#include <cstdio>
#include <cstring>
#include <map>

#include "engine/cuda/cudnn_conv.h"
#include "engine/cuda/device_engine.h"
#include "engine/plan_builder.h"
#include "engine/ref_executor.h"
#include "passes/infer_shapes.h"
#include "support/graph_builder.h"
#endif

namespace posert {
namespace {

#if POSERT_HAVE_CUDA

struct OpCase {
  std::string label;
  OpKind op;
  Attrs attrs;
  std::vector<Shape> data_shapes;  // per-image shapes (dim 0 == 1) of the computed inputs
  std::vector<DType> data_types;
  std::vector<Tensor> consts;      // constant inputs after the data inputs
  bool consts_first = false;       // ElementwiseChain/Conv: consts follow data input 0 (see make_graph)
  // Non-empty: the node's output goes through a Reshape to this shape before the graph output, so
  // in fp16 engines the node writes half (not the float of a head).
  std::vector<int> reshape_to;
};

// Graph: data inputs -> node -> output. For Conv the order is x, w, b, [residual]; residual is a
// data input. For ElementwiseChain/ResizeBilinear the constants follow x.
Graph make_graph(const OpCase& c, int batch) {
  Graph g;
  std::vector<int> data;
  for (size_t i = 0; i < c.data_shapes.size(); ++i) {
    Value v;
    v.name = "in" + std::to_string(i);
    v.dtype = c.data_types[i];
    v.shape = c.data_shapes[i];
    v.shape[0] = batch;
    v.shape_known = true;
    data.push_back(g.add_value(v));
    g.inputs.push_back(data.back());
  }
  Node n;
  n.name = c.label;
  n.op = c.op;
  n.attrs = c.attrs;
  n.inputs.push_back(data[0]);
  for (size_t k = 0; k < c.consts.size(); ++k) n.inputs.push_back(g.add_constant("c" + std::to_string(k), c.consts[k]));
  for (size_t i = 1; i < data.size(); ++i) n.inputs.push_back(data[i]);
  Value out;
  out.name = "out";
  out.producer = 0;
  n.outputs.push_back(g.add_value(out));
  g.nodes.push_back(n);
  if (c.reshape_to.empty()) {
    g.outputs.push_back(n.outputs[0]);
  } else {
    Node r;
    r.name = c.label + "/reshape";
    r.op = OpKind::Reshape;
    const int64_t rank = static_cast<int64_t>(c.reshape_to.size());
    r.inputs = {n.outputs[0], g.add_constant("reshape_to", Tensor::from_ints({rank}, c.reshape_to))};
    Value out2;
    out2.name = "out2";
    out2.producer = 1;
    r.outputs.push_back(g.add_value(out2));
    g.nodes.push_back(r);
    g.outputs.push_back(r.outputs[0]);
  }
  infer_shapes_and_fold(g);
  return g;
}

// The engine plan of a case with `tactic` for its layer (the tactic is set before the DeviceEngine
// uploads the weights: a cuDNN tactic reads its filters in KRSC order).
EnginePlan case_plan(const OpCase& c, int batch, Precision prec, int tactic) {
  EnginePlan plan = build_plan(make_graph(c, 1), "test", prec, batch);
  plan.target = cuda::current_target();
  for (auto& l : plan.layers)
    if (l.op == c.op) l.tactic = tactic;
  return plan;
}

// Runs the case on the GPU with the given tactic for its layer; returns the f32 output for `batch`
// images. graphs: through enqueue's CUDA graph path (twice: the graph itself runs the second time).
std::vector<Tensor> run_plan_cuda(EnginePlan plan, int batch, const std::vector<Tensor>& inputs,
                                  const std::vector<Shape>& out_shapes, bool graphs);

Tensor run_cuda(const OpCase& c, int batch, Precision prec, int tactic, const std::vector<Tensor>& inputs,
                bool graphs = false) {
  const Graph gb = make_graph(c, batch);
  return run_plan_cuda(case_plan(c, batch, prec, tactic), batch, inputs, {gb.values[gb.outputs[0]].shape}, graphs)[0];
}

// Runs a plan (tactics already set) on `batch` images; returns its outputs (f32, out_shapes).
std::vector<Tensor> run_plan_cuda(EnginePlan plan, int batch, const std::vector<Tensor>& inputs,
                                  const std::vector<Shape>& out_shapes, bool graphs) {
  auto eng = std::make_shared<cuda::DeviceEngine>(std::move(plan));
  cuda::DeviceContext ctx(eng);
  const auto& outs = eng->plan().outputs;
  // Poison the outputs so unwritten ones cannot pass.
  // On the context's stream: it is a non-blocking stream, so a plain cudaMemset (legacy default
  // stream) would race with the forward pass instead of preceding it.
  auto poison = [&] {
    for (int id : outs)
      cuda::check(cudaMemsetAsync(ctx.tensor(id), 0xFF, eng->plan().tensors[id].bytes, ctx.stream()), "memset");
    ctx.synchronize();
  };
  auto upload = [&] {
    for (size_t i = 0; i < inputs.size(); ++i)
      cuda::check(cudaMemcpy(ctx.tensor(eng->plan().inputs[i]), inputs[i].raw(), inputs[i].nbytes(), cudaMemcpyHostToDevice),
                  "upload");
    // A pageable cudaMemcpy may return before its DMA lands, and the context's stream is
    // non-blocking: without this the kernels could read half-uploaded inputs.
    cuda::check(cudaDeviceSynchronize(), "upload");
  };
  poison();
  upload();
  ctx.set_use_graphs(graphs);
  ctx.enqueue(batch);
  ctx.synchronize();
  if (graphs) {
    // The first run may have reused the inputs' bytes for other tensors (the arena plans them by
    // lifetime), so the replay gets fresh inputs, as every real run does.
    poison();
    upload();
    ctx.enqueue(batch);
    ctx.synchronize();
  }
  std::vector<Tensor> r;
  for (size_t k = 0; k < out_shapes.size(); ++k) {
    Tensor out(DType::F32, out_shapes[k]);
    cuda::check(cudaMemcpy(out.raw(), ctx.tensor(outs.at(k)), out.nbytes(), cudaMemcpyDeviceToHost), "download");
    r.push_back(std::move(out));
  }
  return r;
}

void check_case(const OpCase& c, const std::vector<int>& tactics) {
  std::mt19937 rng(std::hash<std::string>{}(c.label));
  for (int batch : {1, 5}) {
    const Graph gb = make_graph(c, batch);
    std::vector<Tensor> inputs;
    for (int id : gb.inputs) inputs.push_back(test::random_tensor(gb.values[id].dtype, gb.values[id].shape, rng));
    const Tensor ref = RefExecutor(gb).run(inputs)[0];
    for (Precision prec : {Precision::FP32, Precision::FP16}) {
      for (int t : tactics) {
        const bool half_only = (c.op == OpKind::Conv2D && (t == cuda::kConvWmma64 || t == cuda::kConvWmma32 || t == cuda::kConvPw16 ||
                                                           t == cuda::kConvMma3x3)) ||
                               (c.op == OpKind::DepthwiseConv2D &&
                                (t == cuda::kDwVec8 || t == cuda::kDw3x3R4 || t == cuda::kDw3x3R2 || t == cuda::kDw3x3R1));
        if (half_only && prec != Precision::FP16) continue;
        SCOPED_TRACE(c.label + " batch " + std::to_string(batch) + " " + precision_name(prec) + " tactic " + std::to_string(t));
        const Tensor got = run_cuda(c, batch, prec, t, inputs);
        const double err = test::rel_l2(got, ref);
        EXPECT_LE(err, prec == Precision::FP32 ? 1e-4 : 1e-2);
      }
    }
  }
}

Tensor rand_const(const Shape& s, uint32_t seed, float scale = 0.5f) {
  std::mt19937 rng(seed);
  return test::random_tensor(DType::F32, s, rng, -scale, scale);
}

OpCase conv_case(const std::string& label, bool depthwise, int h, int w, int c, int o_or_mult, int k, int stride,
                 const std::string& pad, const std::string& act, bool residual, bool intermediate = false) {
  OpCase oc;
  oc.label = label;
  oc.op = depthwise ? OpKind::DepthwiseConv2D : OpKind::Conv2D;
  oc.attrs.set("strides", std::vector<int64_t>{stride, stride});
  oc.attrs.set("dilations", std::vector<int64_t>{1, 1});
  oc.attrs.set("padding", pad);
  oc.attrs.set("activation", act);
  oc.data_shapes.push_back({1, h, w, c});
  oc.data_types.push_back(DType::F32);
  const int outc = depthwise ? c * o_or_mult : o_or_mult;
  oc.consts.push_back(rand_const({k, k, c, o_or_mult}, 11 + h + c, 1.0f / std::sqrt(static_cast<float>(k * k * (depthwise ? 1 : c)))));
  oc.consts.push_back(rand_const({outc}, 7 + c));
  // residual is output-shaped; the graph infers the output shape, so compute it here
  const int oh = pad == "SAME" ? (h + stride - 1) / stride : (h - k + stride) / stride;
  const int ow = pad == "SAME" ? (w + stride - 1) / stride : (w - k + stride) / stride;
  if (residual) {
    oc.data_shapes.push_back({1, oh, ow, outc});
    oc.data_types.push_back(DType::F32);
  }
  if (intermediate) {
    oc.label += "_mid";
    oc.reshape_to = {-1, oh, ow, outc};
  }
  return oc;
}

std::vector<int> conv_tactics(const OpCase& c) {
  // All tactics; the ones that do not apply to a shape are filtered with the same rule the tuner uses.
  cuda::ConvParams p{};
  p.n = 5;
  const Shape& x = c.data_shapes[0];
  const Shape& w = c.consts[0].shape();
  p.h = static_cast<int>(x[1]);
  p.w = static_cast<int>(x[2]);
  p.c = static_cast<int>(x[3]);
  p.kh = static_cast<int>(w[0]);
  p.kw = static_cast<int>(w[1]);
  p.sh = p.sw = static_cast<int>(c.attrs.get_ints("strides")[0]);
  p.oh = p.sh == 1 && p.kh == 1 ? p.h : -1;
  p.ow = p.sw == 1 && p.kw == 1 ? p.w : -1;
  p.o = static_cast<int>(w[3]);
  p.multiplier = static_cast<int>(w[3]);
  p.dh = p.dw = 1;  // the cases use no dilation
  std::vector<int> r;
  if (c.op == OpKind::Conv2D) {
    for (int t = 0; t < cuda::kConvTacticCount; ++t)
      if (cuda::conv_tactic_applies(t, p, true)) r.push_back(t);
  } else {
    for (int t = 0; t < cuda::kDwTacticCount; ++t)
      if (cuda::dw_tactic_applies(t, p, true)) r.push_back(t);
  }
  return r;
}

// The Conv2D cases, each also as an intermediate layer (fp16: half output) instead of a head
// (fp16: float output of half inputs).
std::vector<OpCase> dense_conv_cases() {
  std::vector<OpCase> r;
  for (bool mid : {false, true}) {
    r.push_back(conv_case("pw_odd_7x9_c13_o21_relu6", false, 7, 9, 13, 21, 1, 1, "SAME", "relu6", false, mid));
    r.push_back(conv_case("pw_16x16_c64_o128_res", false, 16, 16, 64, 128, 1, 1, "SAME", "none", true, mid));
    r.push_back(conv_case("pw_5x3_c8_o8_sigmoid", false, 5, 3, 8, 8, 1, 1, "VALID", "sigmoid", false, mid));
    r.push_back(conv_case("pw_12x12_c96_o24_relu", false, 12, 12, 96, 24, 1, 1, "SAME", "relu", false, mid));
    // pw16x32: a head's 17 channels (filter and outputs one value at a time), and wide K (16 warps,
    // over 48 KiB of shared memory) with a residual
    r.push_back(conv_case("pw_12x12_c96_o17_sigmoid", false, 12, 12, 96, 17, 1, 1, "SAME", "sigmoid", false, mid));
    r.push_back(conv_case("pw_6x5_c576_o96_res", false, 6, 5, 576, 96, 1, 1, "SAME", "relu6", true, mid));
    r.push_back(conv_case("pw_3x4_c1280_o64", false, 3, 4, 1280, 64, 1, 1, "SAME", "none", false, mid));  // MoveNet's last 1x1
    r.push_back(conv_case("k3_s2_same_odd_9x7_c3_o16", false, 9, 7, 3, 16, 3, 2, "SAME", "relu6", false, mid));
    r.push_back(conv_case("k3_s1_same_10x9_c3_o8_res", false, 10, 9, 3, 8, 3, 1, "SAME", "relu", true, mid));
    r.push_back(conv_case("k3_s2_same_even_8x8_c5_o7", false, 8, 8, 5, 7, 3, 2, "SAME", "none", false, mid));
    r.push_back(conv_case("k3_s1_valid_6x5_c5_o7_res", false, 6, 5, 5, 7, 3, 1, "VALID", "relu", true, mid));
    r.push_back(conv_case("k3_s1_same_11x11_c17_o9", false, 11, 11, 17, 9, 3, 1, "SAME", "sigmoid", false, mid));
    r.push_back(conv_case("k3_s1_same_16x16_c32_o32_relu_res", false, 16, 16, 32, 32, 3, 1, "SAME", "relu", true, mid));
    r.push_back(conv_case("k3_s1_same_10x10_c16_o24_none", false, 10, 10, 16, 24, 3, 1, "SAME", "none", false, mid));
    // mma3x3's other compiled widths (24, 32, 48, 64 outputs; 8 and 16 above; 56 in
    // Mma3x3MatchesDirect8Smem), partial tiles
    r.push_back(conv_case("k3_s2_same_37x29_c3_o32_relu6", false, 37, 29, 3, 32, 3, 2, "SAME", "relu6", false, mid));
    r.push_back(conv_case("k3_s2_valid_20x18_c3_o24", false, 20, 18, 3, 24, 3, 2, "VALID", "none", false, mid));
    r.push_back(conv_case("k3_s1_same_13x21_c3_o48_res", false, 13, 21, 3, 48, 3, 1, "SAME", "relu", true, mid));
    r.push_back(conv_case("k3_s2_same_17x40_c3_o64_sigmoid", false, 17, 40, 3, 64, 3, 2, "SAME", "sigmoid", false, mid));
    // direct8pix's 1x1 cases: a first expansion (16 -> 96) and 40 channels with a residual
    r.push_back(conv_case("pw_9x7_c16_o96_relu6", false, 9, 7, 16, 96, 1, 1, "SAME", "relu6", false, mid));
    r.push_back(conv_case("pw_5x6_c40_o48_res", false, 5, 6, 40, 48, 1, 1, "SAME", "none", true, mid));
  }
  return r;
}

TEST(CudaOps, Conv2D) {
  POSERT_REQUIRE_GPU();
  for (const auto& c : dense_conv_cases()) check_case(c, conv_tactics(c));
}

// direct8pix runs direct8smem's multiply-adds per output in the same order: the same bits. Cases
// as large as the tuner offers it for (65,536 output pixels and up): a network's first convolution
// (32 and 56 channels, odd sizes: a partial last tile), a first expansion, and 40 channels with a
// residual; heads (float output) and intermediate layers. (CudaOps.Conv2D runs it on small shapes
// against the reference.)
TEST(CudaOps, Direct8PixEqualsDirect8Smem) {
  POSERT_REQUIRE_GPU();
  std::vector<OpCase> cases;
  for (bool mid : {false, true}) {
    cases.push_back(conv_case("k3_s2_512x512_c3_o32_relu6", false, 512, 512, 3, 32, 3, 2, "SAME", "relu6", false, mid));
    cases.push_back(conv_case("k3_s2_515x513_c3_o56", false, 515, 513, 3, 56, 3, 2, "SAME", "none", false, mid));
    cases.push_back(conv_case("pw_256x256_c16_o96_relu6", false, 256, 256, 16, 96, 1, 1, "SAME", "relu6", false, mid));
    cases.push_back(conv_case("pw_260x253_c40_o48_res", false, 260, 253, 40, 48, 1, 1, "SAME", "none", true, mid));
  }
  int compared = 0;
  for (const auto& c : cases) {
    std::mt19937 rng(std::hash<std::string>{}(c.label) + 1);
    for (int batch : {1, 3}) {
      const Graph gb = make_graph(c, batch);
      std::vector<Tensor> inputs;
      for (int id : gb.inputs) inputs.push_back(test::random_tensor(gb.values[id].dtype, gb.values[id].shape, rng));
      for (Precision prec : {Precision::FP32, Precision::FP16}) {
        const Tensor a = run_cuda(c, batch, prec, cuda::kConvDirect8Pix, inputs);
        const Tensor b = run_cuda(c, batch, prec, cuda::kConvDirect8Smem, inputs);
        ASSERT_EQ(a.nbytes(), b.nbytes());
        EXPECT_EQ(0, std::memcmp(a.raw(), b.raw(), a.nbytes())) << c.label << " batch " << batch << " " << precision_name(prec);
        ++compared;
      }
    }
  }
  EXPECT_EQ(compared, 8 * 2 * 2);
  // Below 65,536 output pixels the tuner does not offer it, yet it applies (an engine tuned at a
  // larger max batch runs it at batch 1).
  cuda::ConvParams p{};
  p.n = 1;
  p.h = p.w = 192;
  p.oh = p.ow = 96;
  p.c = 3;
  p.kh = p.kw = 3;
  p.sh = p.sw = 2;
  p.dh = p.dw = 1;
  p.o = p.multiplier = 32;
  EXPECT_FALSE(cuda::conv_tactic_offered(cuda::kConvDirect8Pix, p, true));
  EXPECT_TRUE(cuda::conv_tactic_applies(cuda::kConvDirect8Pix, p, true));
  p.n = 8;
  EXPECT_TRUE(cuda::conv_tactic_offered(cuda::kConvDirect8Pix, p, true));
}

// mma3x3 (tensor cores) adds the same products as direct8smem (half inputs and filter, exact in
// fp32) in another order: on first layers as large as MoveNet's, fp16 engines, it must agree with
// direct8smem far more closely than the fp16 tolerance against the reference (which both meet).
TEST(CudaOps, Mma3x3MatchesDirect8Smem) {
  POSERT_REQUIRE_GPU();
  std::vector<OpCase> cases;
  for (bool mid : {false, true}) {
    cases.push_back(conv_case("k3_s2_192x192_c3_o32_relu6", false, 192, 192, 3, 32, 3, 2, "SAME", "relu6", false, mid));
    cases.push_back(conv_case("k3_s2_257x255_c3_o56", false, 257, 255, 3, 56, 3, 2, "SAME", "none", false, mid));  // thunder's
  }
  int compared = 0;
  for (const auto& c : cases) {
    std::mt19937 rng(std::hash<std::string>{}(c.label) + 3);
    for (int batch : {1, 3}) {
      const Graph gb = make_graph(c, batch);
      std::vector<Tensor> inputs;
      for (int id : gb.inputs) inputs.push_back(test::random_tensor(gb.values[id].dtype, gb.values[id].shape, rng));
      const Tensor ref = RefExecutor(gb).run(inputs)[0];
      const Tensor a = run_cuda(c, batch, Precision::FP16, cuda::kConvMma3x3, inputs);
      const Tensor b = run_cuda(c, batch, Precision::FP16, cuda::kConvDirect8Smem, inputs);
      SCOPED_TRACE(c.label + " batch " + std::to_string(batch));
      EXPECT_LE(test::rel_l2(a, ref), 1e-2);
      EXPECT_LE(test::rel_l2(a, b), 1e-3);
      ++compared;
    }
  }
  EXPECT_EQ(compared, 4 * 2);
}

// cuDNN's tactics for the case's layer, as the tuner asks for them (empty when cuDNN cannot compute
// the layer, e.g. asymmetric SAME padding).
std::vector<int> cudnn_tactics(cuda::CudnnConv& cudnn, const OpCase& c, int batch, Precision prec) {
  const EnginePlan plan = case_plan(c, batch, prec, cuda::kConvDirect);
  for (const auto& l : plan.layers)
    if (l.op == OpKind::Conv2D)
      return cudnn.candidates(cuda::conv_params(plan, l, batch), plan.tensors[l.inputs[0]].storage == Storage::F16,
                              l.inputs.size() > 2, l.name);
  return {};
}

// Every cuDNN tactic of every Conv2D case against the reference. A tactic cuDNN refuses when it
// runs (NOT_SUPPORTED) is reported as not applicable; what did run is counted, per path and
// precision, and the standard paths must have run.
TEST(CudaOps, Conv2DCudnn) {
  POSERT_REQUIRE_GPU();
  if (cuda::cudnn_runtime_version() == 0) GTEST_SKIP() << "no GPU test: this build has no cuDNN";
  cudaStream_t stream;
  cuda::check(cudaStreamCreate(&stream), "cudaStreamCreate");
  cuda::CudnnConv cudnn(stream);
  std::map<std::string, int> ran;  // "fp32 fused" -> count
  int not_applicable = 0;
  for (const OpCase& c : dense_conv_cases()) {
    std::mt19937 rng(std::hash<std::string>{}(c.label));
    for (int batch : {1, 5}) {
      const Graph gb = make_graph(c, batch);
      std::vector<Tensor> inputs;
      for (int id : gb.inputs) inputs.push_back(test::random_tensor(gb.values[id].dtype, gb.values[id].shape, rng));
      const Tensor ref = RefExecutor(gb).run(inputs)[0];
      for (Precision prec : {Precision::FP32, Precision::FP16}) {
        const std::vector<int> tactics = cudnn_tactics(cudnn, c, batch, prec);
        const std::string where = c.label + " batch " + std::to_string(batch) + " " + precision_name(prec);
        if (tactics.empty()) {
          std::printf("[cudnn] %s: not applicable (cuDNN cannot compute this layer)\n", where.c_str());
          ++not_applicable;
          continue;
        }
        for (int t : tactics) {
          SCOPED_TRACE(where + " tactic " + cuda::conv_tactic_label(t));
          Tensor got;
          try {
            got = run_cuda(c, batch, prec, t, inputs);
          } catch (const cuda::CudnnUnsupported& e) {
            std::printf("[cudnn] %s %s: not applicable (%s)\n", where.c_str(), cuda::conv_tactic_label(t).c_str(), e.what());
            ++not_applicable;
            continue;
          } catch (const Error& e) {  // any other failure: report it and go on with the other tactics
            ADD_FAILURE() << e.what();
            continue;
          }
          const double err = test::rel_l2(got, ref);
          EXPECT_LE(err, prec == Precision::FP32 ? 1e-4 : 1e-2);
          ran[std::string(precision_name(prec)) + (cuda::cudnn_tactic_fused(t) ? " fused" : " epilogue")]++;
        }
      }
    }
  }
  // Asymmetric SAME padding (even input, stride 2) is not cuDNN's to compute.
  for (Precision prec : {Precision::FP32, Precision::FP16})
    EXPECT_TRUE(cudnn_tactics(cudnn, conv_case("asym", false, 8, 8, 5, 7, 3, 2, "SAME", "none", false), 1, prec).empty());
  std::printf("[cudnn] cuDNN %s: ", cudnn_version_name(cuda::cudnn_runtime_version()).c_str());
  for (const auto& [k, n] : ran) std::printf("%s %d, ", k.c_str(), n);
  std::printf("not applicable %d\n", not_applicable);
  for (const char* k : {"fp32 epilogue", "fp32 fused", "fp16 epilogue", "fp16 fused"}) EXPECT_GT(ran[k], 0) << k << " never ran";
  cudaStreamDestroy(stream);
}

// A cuDNN tactic through the CUDA-graph path of enqueue (the first call runs outside capture, the
// second replays the graph), and the engine holds its filter once, in KRSC order.
TEST(CudaOps, Conv2DCudnnInCudaGraph) {
  POSERT_REQUIRE_GPU();
  if (cuda::cudnn_runtime_version() == 0) GTEST_SKIP() << "no GPU test: this build has no cuDNN";
  cudaStream_t stream;
  cuda::check(cudaStreamCreate(&stream), "cudaStreamCreate");
  cuda::CudnnConv cudnn(stream);
  int ran = 0;
  for (const OpCase& c : {conv_case("k3_s1_same_16x16_c32_o32_relu_res", false, 16, 16, 32, 32, 3, 1, "SAME", "relu", true, true),
                          conv_case("pw_odd_7x9_c13_o21_relu6", false, 7, 9, 13, 21, 1, 1, "SAME", "relu6", false)}) {
    std::mt19937 rng(3);
    const int batch = 5;
    const Graph gb = make_graph(c, batch);
    std::vector<Tensor> inputs;
    for (int id : gb.inputs) inputs.push_back(test::random_tensor(gb.values[id].dtype, gb.values[id].shape, rng));
    const Tensor ref = RefExecutor(gb).run(inputs)[0];
    for (Precision prec : {Precision::FP32, Precision::FP16}) {
      for (int t : cudnn_tactics(cudnn, c, batch, prec)) {
        SCOPED_TRACE(c.label + " " + precision_name(prec) + " tactic " + cuda::conv_tactic_label(t));
        {
          const cuda::DeviceEngine eng(case_plan(c, batch, prec, t));
          for (const auto& l : eng.plan().layers)
            if (l.op == OpKind::Conv2D) {
              EXPECT_EQ(eng.weight(l.inputs[1]), nullptr);
              EXPECT_NE(eng.krsc_filter(l.inputs[1]), nullptr);
            }
        }
        Tensor got;
        try {
          got = run_cuda(c, batch, prec, t, inputs, true);
        } catch (const cuda::CudnnUnsupported& e) {
          std::printf("[cudnn] %s %s: not applicable (%s)\n", c.label.c_str(), cuda::conv_tactic_label(t).c_str(), e.what());
          continue;
        }
        EXPECT_LE(test::rel_l2(got, ref), prec == Precision::FP32 ? 1e-4 : 1e-2);
        ++ran;
      }
    }
  }
  EXPECT_GT(ran, 0);
  cudaStreamDestroy(stream);
}

// An engine whose convolutions were tuned with another cuDNN is refused with the rebuild command;
// the same engine without cuDNN tactics does not care about the cuDNN version.
TEST(CudaOps, RefusesCudnnTacticsTunedWithAnotherCudnn) {
  POSERT_REQUIRE_GPU();
  const OpCase c = conv_case("pw_12x12_c96_o24_relu", false, 12, 12, 96, 24, 1, 1, "SAME", "relu", false);
  EnginePlan plan = case_plan(c, 1, Precision::FP32, cuda::kConvCudnnFusedBase + 1);
  plan.target.cudnn = cuda::cudnn_runtime_version() + 100;
  const std::string why = cuda::incompatibility(plan, "engine file 'x.engine'");
  EXPECT_NE(why.find("cuDNN " + cudnn_version_name(plan.target.cudnn)), std::string::npos) << why;
  EXPECT_NE(why.find("posert build --model"), std::string::npos) << why;
  for (auto& l : plan.layers) l.tactic = cuda::kConvDirect;
  EXPECT_EQ(cuda::incompatibility(plan, "engine file 'x.engine'"), "");
}

TEST(CudaOps, DepthwiseConv2D) {
  POSERT_REQUIRE_GPU();
  std::vector<OpCase> cases = {
      conv_case("dw_k3_s2_same_odd_9x11_c13", true, 9, 11, 13, 1, 3, 2, "SAME", "none", false),
      conv_case("dw_k5_s1_valid_9x9_c6_mult2", true, 9, 9, 6, 2, 5, 1, "VALID", "relu", false),
      conv_case("dw_k3_s1_same_7x5_c2", true, 7, 5, 2, 1, 3, 1, "SAME", "sigmoid", false),
  };
  // Cases the 3x3 row tactics take (channels % 8 == 0), as heads (fp16: float output) and as
  // intermediate layers (half output), with widths that leave partial row blocks.
  for (bool mid : {false, true}) {
    cases.push_back(conv_case("dw_k3_s1_same_12x12_c24_relu6", true, 12, 12, 24, 1, 3, 1, "SAME", "relu6", false, mid));
    cases.push_back(conv_case("dw_k3_s2_same_even_10x10_c32_res", true, 10, 10, 32, 1, 3, 2, "SAME", "none", true, mid));
    cases.push_back(conv_case("dw_k3_s1_same_9x7_c16_res_relu", true, 9, 7, 16, 1, 3, 1, "SAME", "relu", true, mid));
    cases.push_back(conv_case("dw_k3_s2_same_odd_11x13_c8_relu6", true, 11, 13, 8, 1, 3, 2, "SAME", "relu6", false, mid));
    cases.push_back(conv_case("dw_k3_s1_valid_6x10_c40", true, 6, 10, 40, 1, 3, 1, "VALID", "none", false, mid));
  }
  int row_tactic_runs = 0;
  for (const auto& c : cases) {
    const auto tactics = conv_tactics(c);
    for (int t : tactics) row_tactic_runs += t == cuda::kDw3x3R4 || t == cuda::kDw3x3R2 || t == cuda::kDw3x3R1;
    check_case(c, tactics);
  }
  EXPECT_EQ(row_tactic_runs, 30) << "the 3x3 row tactics must apply to the 10 channel-multiple-of-8 cases";
}

// A 3x3 depthwise layer and the 1x1 convolution after it, as one fused kernel (kDwFused +
// kConvDwPw64/16), against the reference. dw+pw64x64 also bit for bit against the same pair
// unfused (3x3 row depthwise tactic, then the tensor-core GEMM with the same tile: it computes the
// very half values the depthwise layer writes and runs the same MMA sequence on them); dw+pw16x32
// splits K over warps, so it sums in another order.
struct DwPwCase {
  int h, w, c, o, stride;
  std::string pad, dw_act, pw_act;
  bool dw_bias, residual, mid;  // mid: the convolution writes half (an intermediate layer), else float (a head)
};

Graph dwpw_graph(const DwPwCase& k, int batch) {
  std::mt19937 rng(static_cast<uint32_t>(k.h * 131 + k.c * 7 + k.o + k.stride));
  auto rnd = [&](Shape s, float scale) { return test::random_tensor(DType::F32, s, rng, -scale, scale); };
  test::Builder b;
  const int x = b.input("x", DType::F32, {batch, k.h, k.w, k.c});
  Attrs da;
  da.set("strides", std::vector<int64_t>{k.stride, k.stride});
  da.set("dilations", std::vector<int64_t>{1, 1});
  da.set("padding", k.pad);
  da.set("activation", k.dw_act);
  std::vector<int> din = {x, b.constant("wd", rnd({3, 3, k.c, 1}, 0.4f))};
  if (k.dw_bias) din.push_back(b.constant("bd", rnd({k.c}, 0.5f)));
  const int d = b.node(OpKind::DepthwiseConv2D, "dw", din, da);
  Attrs pa;
  pa.set("strides", std::vector<int64_t>{1, 1});
  pa.set("dilations", std::vector<int64_t>{1, 1});
  pa.set("padding", std::string("VALID"));
  pa.set("activation", k.pw_act);
  std::vector<int> pin = {d, b.constant("wp", rnd({1, 1, k.c, k.o}, 1.0f / std::sqrt(static_cast<float>(k.c)))),
                          b.constant("bp", rnd({k.o}, 0.5f))};
  const int oh = k.pad == "SAME" ? (k.h + k.stride - 1) / k.stride : (k.h - 3 + k.stride) / k.stride;
  const int ow = k.pad == "SAME" ? (k.w + k.stride - 1) / k.stride : (k.w - 3 + k.stride) / k.stride;
  if (k.residual) pin.push_back(b.input("res", DType::F32, {batch, oh, ow, k.o}));
  int y = b.node(OpKind::Conv2D, "pw", pin, pa);
  if (k.mid) y = b.node(OpKind::Reshape, "pw/reshape", {y, b.constant("shape", Tensor::from_ints({4}, {-1, oh, ow, k.o}))});
  return b.finish({y});
}

TEST(CudaOps, DepthwisePointwiseFused) {
  POSERT_REQUIRE_GPU();
  const std::vector<DwPwCase> cases = {
      {12, 12, 24, 96, 1, "SAME", "none", "relu", false, false, true},     // MoveNet's head branches
      {9, 11, 32, 16, 2, "SAME", "relu6", "none", true, false, true},      // odd sizes, stride 2
      {10, 10, 48, 24, 2, "SAME", "relu6", "none", true, true, true},      // even size, stride 2, residual
      {7, 5, 40, 24, 1, "VALID", "relu6", "none", true, true, false},      // VALID, float output, residual
      {6, 6, 160, 320, 1, "SAME", "relu6", "none", true, false, true},     // K over several tiles, N over 5
      {5, 13, 8, 8, 1, "SAME", "relu", "sigmoid", true, false, false},     // K and N of one vector
      {4, 4, 960, 160, 1, "SAME", "relu6", "none", true, true, true},      // > 48 KiB of shared memory (dw+pw16)
      {3, 5, 576, 96, 2, "SAME", "relu6", "none", true, false, true},      // K of 36 x 16, N of 3 x 32
      {6, 7, 1024, 40, 1, "SAME", "none", "relu", false, false, false},    // the largest K dw+pw16 takes
  };
  int ran = 0;
  for (const auto& k : cases) {
    for (int batch : {1, 5}) {
      const Graph gb = dwpw_graph(k, batch);
      std::mt19937 rng(static_cast<uint32_t>(17 + batch + k.c));
      std::vector<Tensor> inputs;
      for (int id : gb.inputs) inputs.push_back(test::random_tensor(gb.values[id].dtype, gb.values[id].shape, rng));
      const Tensor ref = RefExecutor(gb).run(inputs)[0];
      const Shape out_shape = gb.values[gb.outputs[0]].shape;
      EnginePlan plan = build_plan(dwpw_graph(k, 1), "dwpw", Precision::FP16, batch);
      plan.target = cuda::current_target();
      size_t pw = 0;
      while (pw < plan.layers.size() && plan.layers[pw].op != OpKind::Conv2D) ++pw;
      ASSERT_TRUE(dwpw_pair_possible(plan, pw)) << describe_plan(plan);
      for (int t : {cuda::kConvDwPw64, cuda::kConvDwPw16}) {
        const std::string label = "dwpw " + std::to_string(k.h) + "x" + std::to_string(k.w) + " c" + std::to_string(k.c) +
                                  " o" + std::to_string(k.o) + " s" + std::to_string(k.stride) + " " + k.pad +
                                  (k.residual ? " res" : "") + (k.mid ? " half-out" : " float-out") + " batch " +
                                  std::to_string(batch) + " " + cuda::conv_tactic_label(t);
        SCOPED_TRACE(label);
        EnginePlan fused = plan, apart = plan;
        fused.layers[pw - 1].tactic = cuda::kDwFused;
        fused.layers[pw].tactic = t;
        apart.layers[pw - 1].tactic = cuda::kDw3x3R4;
        apart.layers[pw].tactic = cuda::kConvWmma64;
        ASSERT_NO_THROW(fused.validate("fused plan"));
        for (bool graphs : {false, true}) {
          const Tensor got = run_plan_cuda(fused, batch, inputs, {out_shape}, graphs)[0];
          EXPECT_LE(test::rel_l2(got, ref), 1e-2) << (graphs ? "graph" : "direct");
          if (t != cuda::kConvDwPw64) continue;
          const Tensor two = run_plan_cuda(apart, batch, inputs, {out_shape}, graphs)[0];
          EXPECT_EQ(0, std::memcmp(got.raw(), two.raw(), got.nbytes())) << "fused differs from the unfused pair";
        }
        ++ran;
      }
    }
  }
  EXPECT_EQ(ran, 36);
}

// A 1x1 expansion and the 3x3 depthwise layer after it as one kernel (kConvPwDwMember + kDwPwDw),
// against the reference, and bit for bit against the same pair unfused as wmma64x64 then 3x3r1:
// the fused kernel runs the same MMA sequence per output (k steps of 16 in order, zero-padded past
// c), rounds act(acc + bias) to half as wmma64x64's epilogue does, and runs 3x3r1's depthwise
// arithmetic on those values (padding taps add 0 * w, which leaves the sum unchanged).
struct PwDwCase {
  int h, w, c, m, stride;
  std::string pad, e_act, d_act;
  bool e_bias, d_bias;
  std::vector<int> batches;
};

Graph pwdw_graph(const PwDwCase& k, int batch) {
  std::mt19937 rng(static_cast<uint32_t>(k.h * 37 + k.c * 5 + k.m + k.stride));
  auto rnd = [&](Shape s, float scale) { return test::random_tensor(DType::F32, s, rng, -scale, scale); };
  test::Builder b;
  const int x = b.input("x", DType::F32, {batch, k.h, k.w, k.c});
  Attrs ea;
  ea.set("strides", std::vector<int64_t>{1, 1});
  ea.set("dilations", std::vector<int64_t>{1, 1});
  ea.set("padding", std::string("SAME"));
  ea.set("activation", k.e_act);
  std::vector<int> ein = {x, b.constant("we", rnd({1, 1, k.c, k.m}, 2.0f / std::sqrt(static_cast<float>(k.c))))};
  if (k.e_bias) ein.push_back(b.constant("be", rnd({k.m}, 0.5f)));
  const int e = b.node(OpKind::Conv2D, "expand", ein, ea);
  Attrs da;
  da.set("strides", std::vector<int64_t>{k.stride, k.stride});
  da.set("dilations", std::vector<int64_t>{1, 1});
  da.set("padding", k.pad);
  da.set("activation", k.d_act);
  std::vector<int> din = {e, b.constant("wd", rnd({3, 3, k.m, 1}, 0.4f))};
  if (k.d_bias) din.push_back(b.constant("bd", rnd({k.m}, 0.5f)));
  const int d = b.node(OpKind::DepthwiseConv2D, "dw", din, da);
  const int oh = k.pad == "SAME" ? (k.h + k.stride - 1) / k.stride : (k.h - 3 + k.stride) / k.stride;
  const int ow = k.pad == "SAME" ? (k.w + k.stride - 1) / k.stride : (k.w - 3 + k.stride) / k.stride;
  // A reshape after the depthwise layer keeps its output half (an intermediate layer, as in the models).
  const int y = b.node(OpKind::Reshape, "dw/reshape", {d, b.constant("shape", Tensor::from_ints({4}, {-1, oh, ow, k.m}))});
  return b.finish({y});
}

TEST(CudaOps, PointwiseDepthwiseFused) {
  POSERT_REQUIRE_GPU();
  const std::vector<PwDwCase> cases = {
      {13, 11, 16, 96, 2, "SAME", "relu6", "relu6", true, true, {1, 5}},       // a block's first expansion, odd sizes
      {12, 12, 24, 144, 1, "SAME", "relu6", "relu6", true, true, {1, 5}},      // c % 16 == 8 (K padded), 3 chunks
      {10, 9, 40, 240, 1, "SAME", "relu6", "none", true, false, {1, 3}},       // no depthwise bias
      {8, 8, 32, 104, 2, "SAME", "relu", "relu6", false, true, {1, 4}},        // no expansion bias, a partial chunk
      {7, 6, 168, 1008, 1, "SAME", "relu6", "relu6", true, true, {1, 2}},      // wide K, 21 chunks
      {20, 17, 8, 16, 1, "VALID", "none", "sigmoid", true, true, {1, 3}},      // VALID, one partial chunk
      {33, 35, 16, 48, 2, "VALID", "relu6", "relu6", true, true, {1, 2}},      // VALID stride 2, partial tiles
      {32, 32, 24, 1008, 1, "SAME", "relu6", "relu6", true, true, {5}},        // chunks spread over blocks, 2 each
      {96, 96, 16, 96, 2, "SAME", "relu6", "relu6", true, true, {16}},         // every chunk of a tile in one block
  };
  int ran = 0;
  for (const auto& k : cases) {
    for (int batch : k.batches) {
      const Graph gb = pwdw_graph(k, batch);
      std::mt19937 rng(static_cast<uint32_t>(29 + batch + k.c + k.m));
      std::vector<Tensor> inputs;
      for (int id : gb.inputs) inputs.push_back(test::random_tensor(gb.values[id].dtype, gb.values[id].shape, rng));
      const Tensor ref = RefExecutor(gb).run(inputs)[0];
      const Shape out_shape = gb.values[gb.outputs[0]].shape;
      EnginePlan plan = build_plan(pwdw_graph(k, 1), "pwdw", Precision::FP16, batch);
      plan.target = cuda::current_target();
      size_t d = 0;
      while (d < plan.layers.size() && plan.layers[d].op != OpKind::DepthwiseConv2D) ++d;
      ASSERT_TRUE(pwdw_pair_possible(plan, d)) << describe_plan(plan);
      const std::string label = "pw+dw " + std::to_string(k.h) + "x" + std::to_string(k.w) + " c" + std::to_string(k.c) + " m" +
                                std::to_string(k.m) + " s" + std::to_string(k.stride) + " " + k.pad + " batch " +
                                std::to_string(batch);
      SCOPED_TRACE(label);
      ASSERT_TRUE(cuda::pwdw_applies(cuda::conv_params(plan, plan.layers[d - 1], batch), cuda::conv_params(plan, plan.layers[d], batch),
                                     true));
      EnginePlan fused = plan, apart = plan;
      fused.layers[d - 1].tactic = cuda::kConvPwDwMember;
      fused.layers[d].tactic = cuda::kDwPwDw;
      apart.layers[d - 1].tactic = cuda::kConvWmma64;
      apart.layers[d].tactic = cuda::kDw3x3R1;
      ASSERT_NO_THROW(fused.validate("fused plan"));
      for (bool graphs : {false, true}) {
        const Tensor got = run_plan_cuda(fused, batch, inputs, {out_shape}, graphs)[0];
        EXPECT_LE(test::rel_l2(got, ref), 1e-2) << (graphs ? "graph" : "direct");
        const Tensor two = run_plan_cuda(apart, batch, inputs, {out_shape}, graphs)[0];
        EXPECT_EQ(0, std::memcmp(got.raw(), two.raw(), got.nbytes())) << "fused differs from wmma64x64 + 3x3r1";
      }
      ++ran;
    }
  }
  EXPECT_EQ(ran, 16);
}

// Horizontal groups: three head-like branches (1x1 -> 3x3 depthwise -> 1x1 per branch, then a
// 1x1 convolution with float output per branch) as one dw+pw launch and one 1x1 launch, bit for
// bit equal to the same kernels launched one layer at a time, and within fp16 of the reference.
Graph branches_graph(int batch, int h, int w, int c, const std::vector<int>& mid, const std::vector<int>& out) {
  std::mt19937 rng(static_cast<uint32_t>(h * 31 + c + out[0]));
  auto rnd = [&](Shape s, float scale) { return test::random_tensor(DType::F32, s, rng, -scale, scale); };
  auto attrs = [](const std::string& act) {
    Attrs a;
    a.set("strides", std::vector<int64_t>{1, 1});
    a.set("dilations", std::vector<int64_t>{1, 1});
    a.set("padding", std::string("SAME"));
    a.set("activation", act);
    return a;
  };
  test::Builder b;
  const int x = b.input("x", DType::F32, {batch, h, w, c});
  const float sc = 1.0f / std::sqrt(static_cast<float>(c));
  const int a = b.node(OpKind::Conv2D, "a", {x, b.constant("wa", rnd({1, 1, c, c}, sc)), b.constant("ba", rnd({c}, 0.3f))},
                       attrs("relu6"));
  std::vector<int> dws, heads;
  for (size_t k = 0; k < mid.size(); ++k)
    dws.push_back(b.node(OpKind::DepthwiseConv2D, "dw" + std::to_string(k),
                         {a, b.constant("wd" + std::to_string(k), rnd({3, 3, c, 1}, 0.4f)),
                          b.constant("bd" + std::to_string(k), rnd({c}, 0.3f))},
                         attrs("relu")));
  std::vector<int> pws;
  for (size_t k = 0; k < mid.size(); ++k)
    pws.push_back(b.node(OpKind::Conv2D, "pw" + std::to_string(k),
                         {dws[k], b.constant("wp" + std::to_string(k), rnd({1, 1, c, mid[k]}, sc)),
                          b.constant("bp" + std::to_string(k), rnd({mid[k]}, 0.3f))},
                         attrs("relu")));
  for (size_t k = 0; k < out.size(); ++k) {
    const float so = 1.0f / std::sqrt(static_cast<float>(mid[k]));
    heads.push_back(b.node(OpKind::Conv2D, "head" + std::to_string(k),
                           {pws[k], b.constant("wh" + std::to_string(k), rnd({1, 1, mid[k], out[k]}, so)),
                            b.constant("bh" + std::to_string(k), rnd({out[k]}, 0.3f))},
                           attrs(k % 2 ? "none" : "sigmoid")));
  }
  return b.finish(heads);
}

TEST(CudaOps, HorizontalGroups) {
  POSERT_REQUIRE_GPU();
  struct Case {
    int h, w, c;
    std::vector<int> mid, out;
  };
  const std::vector<Case> cases = {
      {12, 12, 24, {96, 96, 96}, {17, 34, 1}},  // MoveNet's heads, smaller: N not a multiple of 8
      {9, 7, 32, {32, 16, 48}, {16, 24, 8}},    // odd sizes, other widths per branch, vector epilogues
  };
  int ran = 0;
  for (const auto& k : cases) {
    for (int batch : {1, 3}) {
      const Graph gb = branches_graph(batch, k.h, k.w, k.c, k.mid, k.out);
      std::mt19937 rng(static_cast<uint32_t>(5 + batch));
      std::vector<Tensor> inputs;
      for (int id : gb.inputs) inputs.push_back(test::random_tensor(gb.values[id].dtype, gb.values[id].shape, rng));
      const auto ref = RefExecutor(gb).run(inputs);
      std::vector<Shape> shapes;
      for (int id : gb.outputs) shapes.push_back(gb.values[id].shape);
      EnginePlan plan = build_plan(branches_graph(1, k.h, k.w, k.c, k.mid, k.out), "groups", Precision::FP16, batch);
      plan.target = cuda::current_target();
      const auto groups = candidate_groups(plan);
      ASSERT_EQ(groups.size(), 2u) << describe_plan(plan);
      ASSERT_EQ(groups[0].first, GroupKind::DwPw);
      ASSERT_EQ(groups[1].first, GroupKind::Pw1x1);
      // The 1x1 group as wmma64x64 tiles or as pw16x32 tiles, against its layers apart on the same tiles.
      for (const int lead1x1 : {cuda::kConvGroupWmma, cuda::kConvGroupPw16}) {
      EnginePlan apart = plan;
      for (size_t i = 0; i < apart.layers.size(); ++i) {
        PlanLayer& l = apart.layers[i];
        if (l.op == OpKind::DepthwiseConv2D) l.tactic = cuda::kDwFused;
        else if (dwpw_pair_possible(apart, i)) l.tactic = cuda::kConvDwPw16;
        else if (l.op == OpKind::Conv2D) l.tactic = lead1x1 == cuda::kConvGroupWmma ? cuda::kConvWmma64 : cuda::kConvPw16;
      }
      EnginePlan grouped = apart;
      for (const auto& [kind, m] : groups)
        for (size_t j = 0; j < m.size(); ++j)
          grouped.layers[m[j]].tactic = j ? cuda::kConvGroupMember : kind == GroupKind::DwPw ? cuda::kConvGroupDwPw16 : lead1x1;
      ASSERT_NO_THROW(apart.validate("apart"));
      ASSERT_NO_THROW(grouped.validate("grouped"));
      for (bool graphs : {false, true}) {
        SCOPED_TRACE("groups c" + std::to_string(k.c) + " " + std::to_string(k.h) + "x" + std::to_string(k.w) + " batch " +
                     std::to_string(batch) + (graphs ? " graph " : " direct ") + cuda::conv_tactic_label(lead1x1));
        const auto one = run_plan_cuda(apart, batch, inputs, shapes, graphs);
        const auto all = run_plan_cuda(grouped, batch, inputs, shapes, graphs);
        for (size_t o = 0; o < shapes.size(); ++o) {
          EXPECT_LE(test::rel_l2(all[o], ref[o]), 1e-2) << "output " << o;
          EXPECT_EQ(0, std::memcmp(all[o].raw(), one[o].raw(), all[o].nbytes())) << "output " << o << ": grouped differs";
        }
        ++ran;
      }
      }
    }
  }
  EXPECT_EQ(ran, 16);
  // pw16x32 members split K over 4 warps below 128 channels and 16 from 128: a group of both would
  // run one of them with the other's count, adding its partial sums in another order than alone,
  // so such a group is refused (the wmma64x64 group has no such split).
  cuda::ConvParams a{}, b{};
  a.n = b.n = 1;
  a.h = a.w = a.oh = a.ow = b.h = b.w = b.oh = b.ow = 12;
  a.kh = a.kw = a.sh = a.sw = a.dh = a.dw = b.kh = b.kw = b.sh = b.sw = b.dh = b.dw = 1;
  a.o = b.o = 32;
  a.c = 96;
  b.c = 256;
  const cuda::ConvParams mixed[2] = {a, b}, same[2] = {a, a};
  EXPECT_FALSE(cuda::conv1x1_group_applies(cuda::kConvGroupPw16, mixed, 2));
  EXPECT_TRUE(cuda::conv1x1_group_applies(cuda::kConvGroupPw16, same, 2));
  EXPECT_TRUE(cuda::conv1x1_group_applies(cuda::kConvGroupWmma, mixed, 2));
}

// Head branches (depthwise -> 1x1 -> 1x1, as MoveNet's heads) as one kernel per branch
// (kConvDwPwPw) and as one launch for all branches (kConvGroupDwPwPw), against the reference and
// bit for bit against the same layers apart as 3x3r1, wmma64x64 and wmma64x64: the depthwise sums
// in 3x3r1's order, both 1x1 layers run wmma's MMA sequence (k steps of 16 in order, zero-padded),
// and the middle values are rounded to half as its layer stores them.
TEST(CudaOps, HeadBranchesFused) {
  POSERT_REQUIRE_GPU();
  struct Case {
    int h, w, c;
    std::vector<int> mid, out;
  };
  const std::vector<Case> cases = {
      {12, 12, 24, {96, 96, 96}, {17, 34, 1}},  // MoveNet's heads, smaller: outputs not a multiple of 8
      {9, 7, 32, {32, 16, 48}, {16, 24, 8}},    // odd sizes (partial tiles), other widths per branch
      {21, 18, 64, {128, 8}, {64, 3}},          // the widest the kernel takes
      {48, 48, 24, {96, 96, 96}, {17, 34, 1}},  // MoveNet's size: at batch 24, more tiles than resident blocks
  };
  int ran = 0;
  for (const auto& k : cases) {
    for (int batch : {1, k.h == 48 ? 24 : 3}) {
      const Graph gb = branches_graph(batch, k.h, k.w, k.c, k.mid, k.out);
      std::mt19937 rng(static_cast<uint32_t>(11 + batch + k.c));
      std::vector<Tensor> inputs;
      for (int id : gb.inputs) inputs.push_back(test::random_tensor(gb.values[id].dtype, gb.values[id].shape, rng));
      const auto ref = RefExecutor(gb).run(inputs);
      std::vector<Shape> shapes;
      for (int id : gb.outputs) shapes.push_back(gb.values[id].shape);
      EnginePlan plan = build_plan(branches_graph(1, k.h, k.w, k.c, k.mid, k.out), "heads", Precision::FP16, batch);
      plan.target = cuda::current_target();
      std::vector<size_t> heads;
      for (size_t i = 0; i < plan.layers.size(); ++i)
        if (dwpwpw_possible(plan, i)) heads.push_back(i);
      ASSERT_EQ(heads.size(), k.out.size()) << describe_plan(plan);
      EnginePlan apart = plan;
      for (PlanLayer& l : apart.layers)
        l.tactic = l.op == OpKind::DepthwiseConv2D ? cuda::kDw3x3R1 : l.op == OpKind::Conv2D ? cuda::kConvWmma64 : l.tactic;
      EnginePlan one = apart;
      for (size_t i : heads) {
        const size_t m = dwpwpw_middle(one, i);
        one.layers[m - 1].tactic = cuda::kDwFused;
        one.layers[m].tactic = cuda::kConvPwPwMember;
        one.layers[i].tactic = cuda::kConvDwPwPw;
      }
      EnginePlan grouped = one;
      for (size_t j = 0; j < heads.size(); ++j) grouped.layers[heads[j]].tactic = j ? cuda::kConvGroupMember : cuda::kConvGroupDwPwPw;
      ASSERT_NO_THROW(one.validate("one per branch"));
      ASSERT_NO_THROW(grouped.validate("grouped"));
      ASSERT_EQ(group_of(grouped, heads[0]).size(), heads.size());
      for (bool graphs : {false, true}) {
        SCOPED_TRACE("heads c" + std::to_string(k.c) + " " + std::to_string(k.h) + "x" + std::to_string(k.w) + " batch " +
                     std::to_string(batch) + (graphs ? " graph" : " direct"));
        const auto two = run_plan_cuda(apart, batch, inputs, shapes, graphs);
        for (const EnginePlan* fp : {&one, &grouped}) {
          const auto got = run_plan_cuda(*fp, batch, inputs, shapes, graphs);
          for (size_t o = 0; o < shapes.size(); ++o) {
            EXPECT_LE(test::rel_l2(got[o], ref[o]), 1e-2) << "output " << o;
            EXPECT_EQ(0, std::memcmp(got[o].raw(), two[o].raw(), got[o].nbytes()))
                << "output " << o << (fp == &one ? " (one launch per branch)" : " (grouped)") << " differs from the layers apart";
          }
        }
        ++ran;
      }
    }
  }
  EXPECT_EQ(ran, 16);
}

// An elementwise chain and the convolution that reads it, as one kernel (kChainFused +
// kConvChainDirect8Smem: the convolution applies the chain to each value it loads), against the
// reference, and bit for bit against the same pair apart (the chain's kernel, then direct8smem):
// the fused kernel rounds each chained value to the layer's type as the chain kernel stores it,
// then runs the same multiply-adds in the same order. Int32 input (MoveNet's) and float input;
// the unrolled 3x3 3-channel path and the generic one (5x5, 4 channels); half and float output.
struct ChainConvCase {
  int h, w, c, o, k, stride;
  std::string pad, act;
  DType in;
  bool residual, mid;  // mid: the convolution writes half in fp16 engines (an intermediate layer)
};

Graph chain_conv_graph(const ChainConvCase& k, int batch) {
  std::mt19937 rng(static_cast<uint32_t>(k.h * 31 + k.c * 7 + k.o + k.k));
  auto rnd = [&](Shape s, float scale) { return test::random_tensor(DType::F32, s, rng, -scale, scale); };
  test::Builder b;
  const int x = b.input("x", k.in, {batch, k.h, k.w, k.c});
  Attrs ca;
  // (x - mean_c) * scale - 1 with a per-channel mean, then relu: MoveNet's normalization and more
  ca.set("program", std::vector<int64_t>{2, 0, 4, 1, 2, 2, 7, -1});
  std::vector<float> mean(static_cast<size_t>(k.c));
  for (int i = 0; i < k.c; ++i) mean[static_cast<size_t>(i)] = k.in == DType::I32 ? 100.0f + 13.0f * i : 0.1f * i - 0.2f;
  const float scale = k.in == DType::I32 ? 1.0f / 127.5f : 1.7f;
  const int ch = b.node(OpKind::ElementwiseChain, "chain",
                        {x, b.constant("mean", Tensor::from_floats({k.c}, mean)), b.constant("scale", Tensor::scalar_f32(scale)),
                         b.constant("one", Tensor::scalar_f32(1.0f))},
                        ca);
  Attrs a;
  a.set("strides", std::vector<int64_t>{k.stride, k.stride});
  a.set("dilations", std::vector<int64_t>{1, 1});
  a.set("padding", k.pad);
  a.set("activation", k.act);
  std::vector<int> in = {ch, b.constant("w", rnd({k.k, k.k, k.c, k.o}, 1.0f / std::sqrt(static_cast<float>(k.k * k.k * k.c)))),
                         b.constant("b", rnd({k.o}, 0.5f))};
  const int oh = k.pad == "SAME" ? (k.h + k.stride - 1) / k.stride : (k.h - k.k + k.stride) / k.stride;
  const int ow = k.pad == "SAME" ? (k.w + k.stride - 1) / k.stride : (k.w - k.k + k.stride) / k.stride;
  if (k.residual) in.push_back(b.input("res", DType::F32, {batch, oh, ow, k.o}));
  int y = b.node(OpKind::Conv2D, "conv", in, a);
  if (k.mid) y = b.node(OpKind::Reshape, "conv/reshape", {y, b.constant("shape", Tensor::from_ints({4}, {-1, oh, ow, k.o}))});
  return b.finish({y});
}

TEST(CudaOps, ElementwiseChainIntoConvolutionFused) {
  POSERT_REQUIRE_GPU();
  const std::vector<ChainConvCase> cases = {
      {192, 192, 3, 32, 3, 2, "SAME", "relu6", DType::I32, false, true},  // MoveNet-Lightning's first layer
      {9, 7, 3, 16, 3, 2, "SAME", "relu6", DType::I32, false, true},      // odd sizes, stride 2
      {10, 9, 3, 8, 3, 1, "SAME", "relu", DType::F32, true, true},        // float input, residual
      {11, 13, 4, 24, 5, 2, "SAME", "none", DType::I32, false, false},    // generic path, float output
      {8, 6, 4, 8, 3, 1, "VALID", "sigmoid", DType::F32, true, false},    // VALID, residual, float output
  };
  int ran = 0, ran_mma = 0;
  for (const auto& k : cases) {
    for (int batch : {1, 3}) {
      const Graph gb = chain_conv_graph(k, batch);
      std::mt19937 rng(static_cast<uint32_t>(29 + batch + k.h));
      std::vector<Tensor> inputs;
      for (int id : gb.inputs) inputs.push_back(test::random_tensor(gb.values[id].dtype, gb.values[id].shape, rng));
      const Tensor ref = RefExecutor(gb).run(inputs)[0];
      const Shape out_shape = gb.values[gb.outputs[0]].shape;
      for (Precision prec : {Precision::FP32, Precision::FP16}) {
        EnginePlan plan = build_plan(chain_conv_graph(k, 1), "chain+conv", prec, batch);
        plan.target = cuda::current_target();
        size_t cv = 0;
        while (cv < plan.layers.size() && plan.layers[cv].op != OpKind::Conv2D) ++cv;
        ASSERT_TRUE(chain_conv_possible(plan, cv)) << describe_plan(plan);
        SCOPED_TRACE("chain+conv " + std::to_string(k.h) + "x" + std::to_string(k.w) + " c" + std::to_string(k.c) + " o" +
                     std::to_string(k.o) + " k" + std::to_string(k.k) + " s" + std::to_string(k.stride) + " " + k.pad +
                     (k.in == DType::I32 ? " i32" : " f32") + (k.residual ? " res" : "") + (k.mid ? " mid" : " head") +
                     " batch " + std::to_string(batch) + " " + precision_name(prec));
        EnginePlan fused = plan, apart = plan;
        fused.layers[cv - 1].tactic = cuda::kChainFused;
        fused.layers[cv].tactic = cuda::kConvChainDirect8Smem;
        apart.layers[cv - 1].tactic = cuda::kChainKernel;
        apart.layers[cv].tactic = cuda::kConvDirect8Smem;
        ASSERT_NO_THROW(fused.validate("fused plan"));
        for (bool graphs : {false, true}) {
          const Tensor got = run_plan_cuda(fused, batch, inputs, {out_shape}, graphs)[0];
          EXPECT_LE(test::rel_l2(got, ref), prec == Precision::FP32 ? 1e-4 : 1e-2) << (graphs ? "graph" : "direct");
          const Tensor two = run_plan_cuda(apart, batch, inputs, {out_shape}, graphs)[0];
          EXPECT_EQ(0, std::memcmp(got.raw(), two.raw(), got.nbytes())) << "fused differs from the chain and convolution apart";
        }
        ++ran;
        // The tensor-core first layer (fp16, 3x3 on 3 channels): chain+mma3x3 against the
        // reference, and bit for bit against the chain's kernel then mma3x3.
        if (prec == Precision::FP16 && k.k == 3 && k.c == 3) {
          fused.layers[cv].tactic = cuda::kConvChainMma3x3;
          apart.layers[cv].tactic = cuda::kConvMma3x3;
          ASSERT_NO_THROW(fused.validate("fused plan"));
          for (bool graphs : {false, true}) {
            const Tensor got = run_plan_cuda(fused, batch, inputs, {out_shape}, graphs)[0];
            EXPECT_LE(test::rel_l2(got, ref), 1e-2) << "chain+mma3x3 " << (graphs ? "graph" : "direct");
            const Tensor two = run_plan_cuda(apart, batch, inputs, {out_shape}, graphs)[0];
            EXPECT_EQ(0, std::memcmp(got.raw(), two.raw(), got.nbytes())) << "chain+mma3x3 differs from the chain then mma3x3";
          }
          ++ran_mma;
        }
      }
    }
  }
  EXPECT_EQ(ran, 20);
  EXPECT_EQ(ran_mma, 6);
}

// Large element counts that are a multiple of 8 (480x480x3 at batch 5: 3.5M values, enough to
// fill a GPU of up to 211 SMs with 8 values per thread) run the 8-per-thread kernel, the others
// (9x7x3, 8x8x3, 480x480x3 at batch 1) one value per thread; with a Reshape after the chain its
// output is half in fp16 engines (a graph output is float), so both output types of both kernels
// are checked.
TEST(CudaOps, ElementwiseChainFromInt32) {
  POSERT_REQUIRE_GPU();
  for (const Shape& shape : {Shape{1, 9, 7, 3}, Shape{1, 8, 8, 3}, Shape{1, 480, 480, 3}}) {
    for (bool to_half : {false, true}) {
      for (DType in : {DType::I32, DType::F32}) {
        OpCase c;
        c.label = std::string("chain_") + (in == DType::I32 ? "i32" : "f32") + shape_str(shape) + (to_half ? "_reshaped" : "");
        c.op = OpKind::ElementwiseChain;
        c.data_shapes = {shape};
        c.data_types = {in};
        c.consts = {Tensor::from_floats({3}, {120.f, 110.f, 100.f}), Tensor::scalar_f32(1 / 64.f), Tensor::scalar_f32(1.0f)};
        // (x - mean_c) * (1/64), then 1 - v, sigmoid, relu6
        c.attrs.set("program", std::vector<int64_t>{2, 0, 4, 1, 3, 2, 6, -1, 8, -1});
        if (to_half) c.reshape_to = {-1, static_cast<int>(shape[1] * shape[2]), 3};
        check_case(c, {0});
      }
    }
  }
}

// A MobileNetV2 stem (3x3 convolution on 3 channels, 3x3 stride-1 depthwise layer, 1x1
// projection) as one kernel (kConvStemMember + kDwFused + kConvStemDwPw), against the reference,
// and against the three layers apart (mma3x3, 3x3r1, wmma64x64): the stem computes the first
// convolution with mma3x3's MMA sequence and rounds both intermediate tensors to half as the
// layers apart store them, but sums the depthwise taps and the projection in its own order, so the
// two agree far more closely than the fp16 tolerance, not bit for bit.
struct StemCase {
  int h, w, c1, o, stride;
  std::string pad, act1, actd, actp;
  bool bias;
};

Graph stem_graph(const StemCase& k, int batch) {
  std::mt19937 rng(static_cast<uint32_t>(k.h * 29 + k.w * 3 + k.c1 + k.o + k.stride));
  auto rnd = [&](Shape s, float scale) { return test::random_tensor(DType::F32, s, rng, -scale, scale); };
  test::Builder b;
  const int x = b.input("x", DType::F32, {batch, k.h, k.w, 3});
  auto attrs = [](int stride, const std::string& pad, const std::string& act) {
    Attrs a;
    a.set("strides", std::vector<int64_t>{stride, stride});
    a.set("dilations", std::vector<int64_t>{1, 1});
    a.set("padding", pad);
    a.set("activation", act);
    return a;
  };
  std::vector<int> cin = {x, b.constant("w1", rnd({3, 3, 3, k.c1}, 0.5f))};
  if (k.bias) cin.push_back(b.constant("b1", rnd({k.c1}, 0.5f)));
  const int c = b.node(OpKind::Conv2D, "conv1", cin, attrs(k.stride, k.pad, k.act1));
  std::vector<int> din = {c, b.constant("wd", rnd({3, 3, k.c1, 1}, 0.4f))};
  if (k.bias) din.push_back(b.constant("bd", rnd({k.c1}, 0.5f)));
  const int d = b.node(OpKind::DepthwiseConv2D, "dw", din, attrs(1, "SAME", k.actd));
  std::vector<int> pin = {d, b.constant("wp", rnd({1, 1, k.c1, k.o}, 1.0f / std::sqrt(static_cast<float>(k.c1))))};
  if (k.bias) pin.push_back(b.constant("bp", rnd({k.o}, 0.5f)));
  const int y = b.node(OpKind::Conv2D, "pw", pin, attrs(1, "VALID", k.actp));
  const int oh = k.pad == "SAME" ? (k.h + k.stride - 1) / k.stride : (k.h - 3 + k.stride) / k.stride;
  const int ow = k.pad == "SAME" ? (k.w + k.stride - 1) / k.stride : (k.w - 3 + k.stride) / k.stride;
  // A reshape after it, so the projection writes half (an intermediate tensor), as in a network.
  return b.finish({b.node(OpKind::Reshape, "pw/reshape", {y, b.constant("shape", Tensor::from_ints({4}, {-1, oh, ow, k.o}))})});
}

TEST(CudaOps, StemFused) {
  POSERT_REQUIRE_GPU();
  const std::vector<StemCase> cases = {
      {192, 192, 32, 16, 2, "SAME", "relu6", "relu6", "none", true},     // MoveNet Lightning's stem
      {65, 63, 56, 32, 2, "SAME", "relu6", "relu6", "none", true},       // Thunder's widths, odd sizes (asymmetric padding)
      {30, 34, 16, 8, 1, "VALID", "relu", "none", "relu", false},        // stride 1, VALID, no biases
      {29, 31, 24, 16, 2, "VALID", "none", "relu6", "none", true},       // partial tiles both ways
      {17, 40, 48, 24, 1, "SAME", "relu6", "relu", "sigmoid", true},     // one tile row, K of 3 x 16
  };
  int ran = 0;
  for (const auto& k : cases) {
    for (int batch : {1, 3}) {
      const Graph gb = stem_graph(k, batch);
      std::mt19937 rng(static_cast<uint32_t>(41 + batch + k.c1));
      std::vector<Tensor> inputs;
      for (int id : gb.inputs) inputs.push_back(test::random_tensor(gb.values[id].dtype, gb.values[id].shape, rng));
      const Tensor ref = RefExecutor(gb).run(inputs)[0];
      const Shape out_shape = gb.values[gb.outputs[0]].shape;
      EnginePlan plan = build_plan(stem_graph(k, 1), "stem", Precision::FP16, batch);
      plan.target = cuda::current_target();
      size_t pw = 0;
      while (pw < plan.layers.size() && plan.layers[pw].op != OpKind::DepthwiseConv2D) ++pw;
      ++pw;  // the 1x1 layer after the depthwise layer
      ASSERT_TRUE(stem_possible(plan, pw)) << describe_plan(plan);
      const cuda::ConvParams c = cuda::conv_params(plan, plan.layers[pw - 2], batch), d = cuda::conv_params(plan, plan.layers[pw - 1], batch),
                             q = cuda::conv_params(plan, plan.layers[pw], batch);
      ASSERT_TRUE(cuda::stem_applies(c, d, q, true));
      SCOPED_TRACE("stem " + std::to_string(k.h) + "x" + std::to_string(k.w) + " c" + std::to_string(k.c1) + " o" +
                   std::to_string(k.o) + " s" + std::to_string(k.stride) + " " + k.pad + " batch " + std::to_string(batch));
      EnginePlan fused = plan, apart = plan;
      fused.layers[pw - 2].tactic = cuda::kConvStemMember;
      fused.layers[pw - 1].tactic = cuda::kDwFused;
      fused.layers[pw].tactic = cuda::kConvStemDwPw;
      apart.layers[pw - 2].tactic = cuda::kConvMma3x3;
      apart.layers[pw - 1].tactic = cuda::kDw3x3R1;
      apart.layers[pw].tactic = cuda::kConvWmma64;
      ASSERT_NO_THROW(fused.validate("fused plan"));
      for (bool graphs : {false, true}) {
        const Tensor got = run_plan_cuda(fused, batch, inputs, {out_shape}, graphs)[0];
        const Tensor three = run_plan_cuda(apart, batch, inputs, {out_shape}, graphs)[0];
        EXPECT_LE(test::rel_l2(got, ref), 1e-2) << (graphs ? "graph" : "direct");
        EXPECT_LE(test::rel_l2(got, three), 2e-3) << (graphs ? "graph" : "direct");
      }
      ++ran;
    }
  }
  EXPECT_EQ(ran, 10);
}

TEST(CudaOps, ResizeBilinear) {
  POSERT_REQUIRE_GPU();
  struct R {
    int h, w, c, oh, ow;
    bool align, half;
  };
  for (const R r : {R{6, 6, 5, 12, 12, false, true}, R{5, 7, 3, 11, 3, true, false}, R{4, 9, 16, 8, 18, false, false},
                    R{3, 3, 1, 7, 5, false, true},
                    // channels a multiple of 8: 8 channels per thread (MoveNet's 2x upsampling)
                    R{6, 6, 64, 12, 12, false, true}, R{5, 7, 8, 11, 3, true, false}, R{7, 5, 24, 13, 9, false, false},
                    R{12, 12, 40, 24, 24, false, true}}) {
    OpCase c;
    c.label = "resize_" + std::to_string(r.h) + "x" + std::to_string(r.w) + "_to_" + std::to_string(r.oh) + "x" + std::to_string(r.ow);
    c.op = OpKind::ResizeBilinear;
    c.attrs.set("align_corners", int64_t{r.align});
    c.attrs.set("half_pixel_centers", int64_t{r.half});
    c.data_shapes = {{1, r.h, r.w, r.c}};
    c.data_types = {DType::F32};
    c.consts = {Tensor::from_ints({2}, {r.oh, r.ow})};
    check_case(c, {0});
  }
}

TEST(CudaOps, AddWithBroadcast) {
  POSERT_REQUIRE_GPU();
  for (const Shape& b : {Shape{1, 4, 5, 6}, Shape{1, 1, 1, 6}, Shape{1, 4, 1, 1}}) {
    OpCase c;
    c.label = "add_b" + shape_str(b);
    c.op = OpKind::Add;
    c.data_shapes = {{1, 4, 5, 6}, b};
    c.data_types = {DType::F32, DType::F32};
    check_case(c, {0});
  }
}

#else

TEST(CudaOps, NotBuilt) { GTEST_SKIP() << "no GPU test: this build has no CUDA backend (nvcc not found at configure time)"; }

#endif

}  // namespace
}  // namespace posert
