// The engine file (src/engine/engine_file.cpp, docs/engine-format.md): exact round trips through
// bytes and files, and refusal of every kind of bad file with a message a user can act on,
// never a crash or an allocation the file's size does not justify.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <new>
#include <random>
#include <typeinfo>

#include "support/graph_builder.h"
#include "engine/engine_builder.h"
#include "engine/engine_file.h"
#include "engine/plan_builder.h"
#include "kernels/cuda/cuda_kernels.h"
#include "ir/verifier.h"
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

// A small network with every layer kind the runtime has: chain, conv (+activation, +residual),
// depthwise, reshape view, resize, and in fp16 the Cast layers.
Graph small_optimized() {
  std::mt19937 rng(5);
  Builder b;
  const int x = b.input("image", DType::I32, {1, 8, 8, 3});
  Attrs to;
  to.set("to", std::string("f32"));
  int v = b.node(OpKind::Cast, "cast", {x}, to);
  v = b.node(OpKind::Sub, "sub", {v, b.constant("mean", Tensor::from_floats({3}, {127.5f, 120.0f, 110.0f}))});
  v = b.node(OpKind::Mul, "mul", {v, b.constant("scale", Tensor::scalar_f32(1.0f / 128))});
  v = b.node(OpKind::Conv2D, "c1", {v, b.constant("w1", rand_f32({3, 3, 3, 8}, rng)), b.constant("b1", rand_f32({8}, rng))},
             conv_attrs({2, 2}));
  const int r1 = b.node(OpKind::Relu6, "r1", {v});
  v = b.node(OpKind::DepthwiseConv2D, "dw", {r1, b.constant("wd", rand_f32({3, 3, 8, 1}, rng))}, conv_attrs());
  const int res = b.node(OpKind::Add, "res", {v, r1});
  const int rs = b.node(OpKind::Reshape, "rs", {res, b.constant("rs_shape", Tensor::from_ints({3}, {1, 16, 8}))});
  const int heat = b.node(OpKind::Sigmoid, "heat", {rs});
  Attrs ra;
  ra.set("half_pixel_centers", int64_t{1});
  const int up = b.node(OpKind::ResizeBilinear, "up", {res, b.constant("size", Tensor::from_ints({2}, {8, 8}))}, ra);
  const int off = b.node(OpKind::Conv2D, "offsets",
                         {up, b.constant("w2", rand_f32({1, 1, 8, 2}, rng)), b.constant("b2", rand_f32({2}, rng))}, conv_attrs());
  return optimize_for_engine(b.finish({heat, off}), {"heat", "offsets"});
}

// A plan with every field set to something other than its default.
EnginePlan sample_plan(Precision prec = Precision::FP16) {
  EnginePlan p = build_plan(small_optimized(), "movenet-lightning", prec, 3);
  p.target.gpu_name = "NVIDIA H100 80GB HBM3";
  p.target.cc_major = 9;
  p.target.cc_minor = 0;
  p.target.cuda_runtime = 12080;
  p.target.cudnn = 91400;
  // Tactics other than the default where the runtime has several: the first convolution fused
  // cuDNN (IMPLICIT_PRECOMP_GEMM), the other cuDNN's GEMM with PoseRT's epilogue.
  int convs = 0;
  for (auto& l : p.layers) {
    if (l.op == OpKind::Conv2D) l.tactic = convs++ == 0 ? cuda::kConvCudnnFusedBase + 1 : cuda::kConvCudnnBase + 2;
    else if (l.op == OpKind::DepthwiseConv2D) l.tactic = cuda::kDwVec2;
  }
  p.layers[0].attrs.set("test_scale", 0.1);  // a double attribute, the one type the builder never makes
  return p;
}

void expect_same_plan(const EnginePlan& a, const EnginePlan& b) {
  EXPECT_EQ(a.model, b.model);
  EXPECT_EQ(a.precision, b.precision);
  EXPECT_EQ(a.max_batch, b.max_batch);
  EXPECT_EQ(a.target.gpu_name, b.target.gpu_name);
  EXPECT_EQ(a.target.cc_major, b.target.cc_major);
  EXPECT_EQ(a.target.cc_minor, b.target.cc_minor);
  EXPECT_EQ(a.target.cuda_runtime, b.target.cuda_runtime);
  EXPECT_EQ(a.target.cudnn, b.target.cudnn);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    SCOPED_TRACE("tensor " + std::to_string(i));
    EXPECT_EQ(a.tensors[i].name, b.tensors[i].name);
    EXPECT_EQ(a.tensors[i].storage, b.tensors[i].storage);
    EXPECT_EQ(a.tensors[i].kind, b.tensors[i].kind);
    EXPECT_EQ(a.tensors[i].shape, b.tensors[i].shape);
    EXPECT_EQ(a.tensors[i].offset, b.tensors[i].offset);
    EXPECT_EQ(a.tensors[i].bytes, b.tensors[i].bytes);
  }
  ASSERT_EQ(a.layers.size(), b.layers.size());
  for (size_t i = 0; i < a.layers.size(); ++i) {
    SCOPED_TRACE("layer " + std::to_string(i));
    EXPECT_EQ(a.layers[i].op, b.layers[i].op);
    EXPECT_EQ(a.layers[i].name, b.layers[i].name);
    EXPECT_TRUE(a.layers[i].attrs.all() == b.layers[i].attrs.all());
    EXPECT_EQ(a.layers[i].inputs, b.layers[i].inputs);
    EXPECT_EQ(a.layers[i].outputs, b.layers[i].outputs);
    EXPECT_EQ(a.layers[i].tactic, b.layers[i].tactic);
  }
  EXPECT_EQ(a.inputs, b.inputs);
  EXPECT_EQ(a.outputs, b.outputs);
  EXPECT_EQ(a.arena_bytes, b.arena_bytes);
  EXPECT_EQ(a.activation_sum_bytes, b.activation_sum_bytes);
  EXPECT_TRUE(a.weights == b.weights);
}

// ---- byte-level helpers (layout from docs/engine-format.md) ---------------------------------

constexpr size_t kHeader = 28;

template <class T> T get(const std::vector<uint8_t>& b, size_t at) {
  T v;
  std::memcpy(&v, b.data() + at, sizeof(T));
  return v;
}
template <class T> void put(std::vector<uint8_t>& b, size_t at, T v) { std::memcpy(b.data() + at, &v, sizeof(T)); }

// Recomputes the header's body size and checksum after the body was edited.
void reseal(std::vector<uint8_t>& f) {
  const uint64_t body = f.size() - kHeader;
  put<uint64_t>(f, 12, body);
  put<uint64_t>(f, 20, fnv1a64(f.data() + kHeader, body));
}

// File offsets of fields the tests tamper with.
struct Layout {
  size_t model_len, precision, tensor_count, first_tensor_shape_count, layer_count, first_layer_attr_count,
      first_attr_type, weights_size;
};

Layout layout_of(const EnginePlan& p) {
  Layout l{};
  size_t at = kHeader;
  l.model_len = at;
  at += 4 + p.model.size();
  l.precision = at;
  at += 1 + 4;
  at += 4 + p.target.gpu_name.size();
  at += 4 * 4 + 8 + 8;
  l.tensor_count = at;
  at += 4;
  for (size_t i = 0; i < p.tensors.size(); ++i) {
    const auto& t = p.tensors[i];
    at += 4 + t.name.size() + 1 + 1;
    if (i == 0) l.first_tensor_shape_count = at;
    at += 4 + 8 * t.shape.size() + 8 + 8;
  }
  l.layer_count = at;
  at += 4;
  for (size_t i = 0; i < p.layers.size(); ++i) {
    const auto& ly = p.layers[i];
    at += 2 + 4 + ly.name.size();
    if (i == 0) l.first_layer_attr_count = at;
    at += 4;
    bool first = true;
    for (const auto& [k, v] : ly.attrs.all()) {
      at += 4 + k.size();
      if (i == 0 && first) l.first_attr_type = at;
      first = false;
      at += 1;
      if (std::holds_alternative<int64_t>(v) || std::holds_alternative<double>(v)) at += 8;
      else if (auto s = std::get_if<std::string>(&v)) at += 4 + s->size();
      else at += 4 + 8 * std::get<std::vector<int64_t>>(v).size();
    }
    at += 4 + 4 * ly.inputs.size() + 4 + 4 * ly.outputs.size() + 4;
  }
  at += 4 + 4 * p.inputs.size() + 4 + 4 * p.outputs.size();
  l.weights_size = at;
  return l;
}

// Calls f and returns the posert::Error message ("" and a test failure when it does not throw).
template <class F> std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a posert::Error";
  return "";
}

std::string deserialize_error(const std::vector<uint8_t>& bytes) {
  return error_of([&] { deserialize_engine(bytes, "engine file 'x.engine'"); });
}

#define EXPECT_HAS(msg, part) EXPECT_NE((msg).find(part), std::string::npos) << "message: " << (msg)

void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

// ---- round trips ----------------------------------------------------------------------------

TEST(EngineFile, Fnv1a64MatchesTheReferenceVectors) {
  const uint8_t* none = nullptr;
  EXPECT_EQ(fnv1a64(none, 0), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64(reinterpret_cast<const uint8_t*>("a"), 1), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(fnv1a64(reinterpret_cast<const uint8_t*>("foobar"), 6), 0x85944171f73967e8ull);
}

TEST(EngineFile, HeaderIsMagicVersionSizeAndChecksum) {
  const auto bytes = serialize_engine(sample_plan());
  ASSERT_GT(bytes.size(), kHeader);
  EXPECT_EQ(std::memcmp(bytes.data(), "POSERTEN", 8), 0);
  EXPECT_EQ(get<uint32_t>(bytes, 8), kEngineFormatVersion);
  EXPECT_EQ(get<uint32_t>(bytes, 8), 1u);
  EXPECT_EQ(get<uint64_t>(bytes, 12), bytes.size() - kHeader);
  EXPECT_EQ(get<uint64_t>(bytes, 20), fnv1a64(bytes.data() + kHeader, bytes.size() - kHeader));
  // The layout helper agrees with the writer: the model name and the weights sit where the
  // format document says.
  const EnginePlan p = sample_plan();
  const Layout l = layout_of(p);
  EXPECT_EQ(get<uint32_t>(bytes, l.model_len), p.model.size());
  EXPECT_EQ(get<uint32_t>(bytes, l.tensor_count), p.tensors.size());
  EXPECT_EQ(get<uint32_t>(bytes, l.layer_count), p.layers.size());
  EXPECT_EQ(get<uint64_t>(bytes, l.weights_size), p.weights.size());
  EXPECT_EQ(l.weights_size + 8 + p.weights.size(), bytes.size());
}

TEST(EngineFile, SerializeDeserializeRoundTripIsExact) {
  for (Precision prec : {Precision::FP32, Precision::FP16}) {
    SCOPED_TRACE(precision_name(prec));
    const EnginePlan p = sample_plan(prec);
    const auto bytes = serialize_engine(p);
    const EnginePlan q = deserialize_engine(bytes, "memory");
    expect_same_plan(p, q);
    EXPECT_TRUE(serialize_engine(q) == bytes) << "serialization must be deterministic";
  }
}

TEST(EngineFile, EmptyPlanPartsRoundTrip) {
  // An engine whose strings are empty and whose weight blob is empty still round-trips.
  EnginePlan p = sample_plan(Precision::FP32);
  p.model.clear();
  p.target = BuildTarget{};
  for (auto& l : p.layers)  // no cuDNN version recorded: no cuDNN tactic either (see RejectsInconsistentPlans...)
    if (cuda::is_cudnn_tactic(l.tactic)) l.tactic = cuda::kConvDirect;
  const auto q = deserialize_engine(serialize_engine(p), "memory");
  expect_same_plan(p, q);
}

TEST(EngineFile, WriteAndReadFileRoundTrip) {
  const std::string dir = test::temp_dir();
  const std::string path = dir + "/model.engine";
  const EnginePlan p = sample_plan();
  write_engine_file(path, p);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  expect_same_plan(p, read_engine_file(path));
  // Overwriting an existing engine replaces it.
  EnginePlan p2 = sample_plan(Precision::FP32);
  write_engine_file(path, p2);
  expect_same_plan(p2, read_engine_file(path));
  EXPECT_EQ(std::filesystem::file_size(path), serialize_engine(p2).size());
}

TEST(EngineFile, WriteIntoAMissingFolderIsAnError) {
  const std::string path = test::temp_dir() + "/no/such/folder/model.engine";
  const std::string m = error_of([&] { write_engine_file(path, sample_plan()); });
  EXPECT_HAS(m, "cannot write engine file");
  EXPECT_HAS(m, path);
}

TEST(EngineFile, RealModelRoundTrip) {
  if (!test::have_model("movenet-lightning"))
    GTEST_SKIP() << "movenet-lightning is not installed in " << test::models_dir();
  const PlannedEngine pe = plan_engine("movenet-lightning", test::models_dir(), Precision::FP16, 2);
  const std::string path = test::temp_dir() + "/lightning.engine";
  write_engine_file(path, pe.plan);
  expect_same_plan(pe.plan, read_engine_file(path));
}

// ---- files refused --------------------------------------------------------------------------

TEST(EngineFile, RejectsBadMagic) {
  auto bytes = serialize_engine(sample_plan());
  bytes[0] = 'X';
  const std::string m = deserialize_error(bytes);
  EXPECT_HAS(m, "not a PoseRT engine file");
  EXPECT_HAS(m, "x.engine");
  // A PNG is not an engine either.
  std::vector<uint8_t> png(200, 0);
  const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::memcpy(png.data(), png_magic, sizeof png_magic);
  EXPECT_HAS(deserialize_error(png), "not a PoseRT engine file");
}

TEST(EngineFile, RejectsAnotherFormatVersion) {
  for (uint32_t version : {0u, 2u, 0xFFFFFFFFu}) {
    auto bytes = serialize_engine(sample_plan());
    put<uint32_t>(bytes, 8, version);
    const std::string m = deserialize_error(bytes);
    EXPECT_HAS(m, "rebuild");
    EXPECT_HAS(m, "version " + std::to_string(version));
  }
}

TEST(EngineFile, RejectsTruncatedFiles) {
  const auto full = serialize_engine(sample_plan());
  const std::string dir = test::temp_dir();
  for (size_t len : {kHeader, full.size() / 2, kHeader + 1, full.size() - 1}) {
    SCOPED_TRACE("truncated to " + std::to_string(len) + " of " + std::to_string(full.size()) + " bytes");
    const std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
    EXPECT_HAS(deserialize_error(cut), "truncated");
    const std::string path = dir + "/cut" + std::to_string(len) + ".engine";
    write_bytes(path, cut);
    const std::string m = error_of([&] { read_engine_file(path); });
    EXPECT_HAS(m, "truncated");
    EXPECT_HAS(m, path);
  }
}

TEST(EngineFile, RejectsAFileCutInsideTheHeaderAsTruncated) {
  // The magic is intact but the header is incomplete: the file was cut, it is not a foreign file.
  const auto full = serialize_engine(sample_plan());
  for (size_t len : {size_t{12}, size_t{20}, kHeader - 1}) {
    SCOPED_TRACE("truncated to " + std::to_string(len) + " bytes");
    const std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
    EXPECT_HAS(deserialize_error(cut), "truncated");
  }
}

TEST(EngineFile, RejectsAFlippedByteInTheBody) {
  const auto full = serialize_engine(sample_plan());
  for (size_t at : {kHeader, kHeader + 5, full.size() / 2, full.size() - 1}) {
    SCOPED_TRACE("byte " + std::to_string(at));
    auto bytes = full;
    bytes[at] ^= 0x10;
    EXPECT_HAS(deserialize_error(bytes), "checksum");
  }
  // A damaged checksum field itself.
  auto bytes = full;
  bytes[25] ^= 1;
  EXPECT_HAS(deserialize_error(bytes), "checksum");
}

TEST(EngineFile, RejectsAHeaderSizeThatDisagreesWithTheFile) {
  auto bytes = serialize_engine(sample_plan());
  put<uint64_t>(bytes, 12, get<uint64_t>(bytes, 12) + 100);
  EXPECT_HAS(deserialize_error(bytes), "truncated");
  put<uint64_t>(bytes, 12, ~uint64_t{0});
  EXPECT_HAS(deserialize_error(bytes), "truncated");
  put<uint64_t>(bytes, 12, 3);
  EXPECT_HAS(deserialize_error(bytes), "corrupt engine file");
  // Bytes appended after the body (header not updated).
  auto longer = serialize_engine(sample_plan());
  longer.push_back(0);
  EXPECT_HAS(deserialize_error(longer), "corrupt engine file");
}

// A plan edited in memory and serialized: the checksum is valid, the content is not.
std::string error_for_plan_edit(const std::function<void(EnginePlan&)>& edit) {
  EnginePlan p = sample_plan();
  edit(p);
  return deserialize_error(serialize_engine(p));
}

int first_of_kind(const EnginePlan& p, TensorKind k) {
  for (size_t i = 0; i < p.tensors.size(); ++i)
    if (p.tensors[i].kind == k) return static_cast<int>(i);
  return -1;
}

TEST(EngineFile, RejectsInconsistentPlansWithAValidChecksum) {
  struct Case {
    const char* what;
    std::function<void(EnginePlan&)> edit;
    const char* expect;
  };
  const std::vector<Case> cases = {
      {"activation offset at the arena end",
       [](EnginePlan& p) { p.tensors[first_of_kind(p, TensorKind::Activation)].offset = p.arena_bytes; }, "outside the arena"},
      {"activation offset far outside the arena",
       [](EnginePlan& p) { p.tensors[first_of_kind(p, TensorKind::Activation)].offset = int64_t{1} << 40; }, "outside the arena"},
      {"negative activation offset", [](EnginePlan& p) { p.tensors[first_of_kind(p, TensorKind::Output)].offset = -256; },
       "outside the arena"},
      {"offset + bytes overflowing", [](EnginePlan& p) { p.tensors[first_of_kind(p, TensorKind::Input)].offset = INT64_MAX - 8; },
       "outside the arena"},
      {"weight offset outside the blob",
       [](EnginePlan& p) { p.tensors[first_of_kind(p, TensorKind::Weight)].offset = static_cast<int64_t>(p.weights.size()); },
       "outside the weights"},
      {"layer input id 10^6", [](EnginePlan& p) { p.layers[1].inputs[0] = 1000000; }, "refers to tensor #1000000"},
      {"layer output id -1", [](EnginePlan& p) { p.layers[1].outputs[0] = -1; }, "refers to tensor #-1"},
      {"engine output id 10^6", [](EnginePlan& p) { p.outputs[0] = 1000000; }, "refers to tensor #1000000"},
      {"engine input id = tensor count",
       [](EnginePlan& p) { p.inputs[0] = static_cast<int32_t>(p.tensors.size()); }, "refers to tensor #"},
      {"tensor bytes that do not match the shape", [](EnginePlan& p) { p.tensors[0].bytes += 4; }, "does not match"},
      {"unknown storage", [](EnginePlan& p) { p.tensors[0].storage = static_cast<Storage>(9); }, "unknown type"},
      {"unknown tensor kind", [](EnginePlan& p) { p.tensors[0].kind = static_cast<TensorKind>(200); }, "unknown type"},
      {"rank 9", [](EnginePlan& p) { p.tensors[0].shape.assign(9, 1); }, "rank"},
      {"negative dimension", [](EnginePlan& p) { p.tensors[0].shape[1] = -8; }, "invalid dimension"},
      {"unknown op", [](EnginePlan& p) { p.layers[0].op = static_cast<OpKind>(999); }, "unknown"},
      {"too many layer inputs", [](EnginePlan& p) { p.layers[1].inputs.resize(30, p.layers[1].inputs[0]); }, "inputs"},
      {"layer without outputs", [](EnginePlan& p) { p.layers[1].outputs.clear(); }, "no outputs"},
      {"layer writing the engine input", [](EnginePlan& p) { p.layers[1].outputs[0] = p.inputs[0]; }, "writes a weight or input"},
      {"layer writing a weight",
       [](EnginePlan& p) { p.layers[1].outputs[0] = first_of_kind(p, TensorKind::Weight); }, "writes a weight or input"},
      {"max batch 0", [](EnginePlan& p) { p.max_batch = 0; }, "max batch"},
      {"max batch 10^6", [](EnginePlan& p) { p.max_batch = 1000000; }, "max batch"},
      {"negative arena", [](EnginePlan& p) { p.arena_bytes = -1; }, "arena"},
      {"conv tactic between ours and cuDNN's", [](EnginePlan& p) { p.layers[1].tactic = 99; }, "unknown tactic 99"},
      {"conv tactic past cuDNN's algorithms",
       [](EnginePlan& p) { p.layers[1].tactic = cuda::kConvCudnnFusedBase + cuda::kCudnnAlgoCount; }, "unknown tactic 208"},
      {"negative conv tactic", [](EnginePlan& p) { p.layers[1].tactic = -1; }, "unknown tactic -1"},
      {"cuDNN tactic without a cuDNN version", [](EnginePlan& p) { p.target.cudnn = 0; },
       "uses the cuDNN tactic cudnn:IMPLICIT_PRECOMP_GEMM+fused but the engine records no cuDNN version"},
      {"negative cuDNN version", [](EnginePlan& p) { p.target.cudnn = -91400; }, "negative cuDNN version"},
      {"tactic on a layer with one kernel",
       [](EnginePlan& p) {
         for (auto& l : p.layers)
           if (l.op != OpKind::Conv2D && l.op != OpKind::DepthwiseConv2D && l.op != OpKind::ElementwiseChain) {
             l.tactic = 1;
             return;
           }
         ADD_FAILURE() << "the plan has no layer with one kernel";
       },
       "unknown tactic 1"},
      {"elementwise chain tactic out of range",
       [](EnginePlan& p) {
         for (auto& l : p.layers)
           if (l.op == OpKind::ElementwiseChain) {
             l.tactic = 2;
             return;
           }
         ADD_FAILURE() << "the plan has no elementwise chain";
       },
       "unknown tactic 2"},
      {"depthwise tactic out of range",
       [](EnginePlan& p) {
         for (auto& l : p.layers)
           if (l.op == OpKind::DepthwiseConv2D) l.tactic = 99;  // beyond every depthwise tactic
       },
       "unknown tactic 99"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    const std::string m = error_for_plan_edit(c.edit);
    EXPECT_HAS(m, c.expect);
    EXPECT_HAS(m, "x.engine");
  }
}

TEST(EngineFile, CudnnTacticsAndVersionRoundTripAndAreListedByName) {
  const EnginePlan p = sample_plan();
  ASSERT_EQ(p.layers[1].op, OpKind::Conv2D);  // layer 1 is the first convolution
  const EnginePlan q = deserialize_engine(serialize_engine(p), "memory");
  EXPECT_EQ(q.layers[1].tactic, cuda::kConvCudnnFusedBase + 1);
  EXPECT_EQ(q.target.cudnn, 91400);
  const std::string d = describe_plan(q);
  EXPECT_HAS(d, "cuDNN 9.14.0");
  EXPECT_HAS(d, "Conv2D tactic cudnn:IMPLICIT_PRECOMP_GEMM+fused");
  EXPECT_HAS(d, "tactic cudnn:GEMM+epilogue");
  EXPECT_HAS(d, "DepthwiseConv2D tactic vec2");
}

TEST(EngineFile, TacticNamesAndIds) {
  EXPECT_EQ(cuda::conv_tactic_label(cuda::kConvDirect), "direct");
  EXPECT_EQ(cuda::conv_tactic_label(cuda::kConvWmma32), "wmma32x64");
  EXPECT_EQ(cuda::conv_tactic_label(cuda::kConvCudnnBase + 7), "cudnn:WINOGRAD_NONFUSED+epilogue");
  EXPECT_EQ(cuda::conv_tactic_label(cuda::kConvCudnnFusedBase), "cudnn:IMPLICIT_GEMM+fused");
  // Ids stored in engine files (docs/engine-format.md): never renumbered.
  EXPECT_EQ(cuda::kConvChainMma3x3, 20);
  EXPECT_EQ(cuda::kConvMma3x3, 21);
  EXPECT_EQ(cuda::conv_tactic_label(20), "chain+mma3x3");
  EXPECT_EQ(cuda::conv_tactic_label(21), "mma3x3");
  EXPECT_EQ(cuda::kConvStemDwPw, 22);
  EXPECT_EQ(cuda::kConvStemMember, 23);
  EXPECT_EQ(cuda::conv_tactic_label(22), "conv+dw+pw");
  EXPECT_EQ(cuda::conv_tactic_label(23), "in-conv+dw+pw");
  EXPECT_EQ(cuda::conv_tactic_label(cuda::kConvTacticCount), "?");
  EXPECT_EQ(cuda::conv_tactic_label(cuda::kConvCudnnBase + cuda::kCudnnAlgoCount), "?");
  // The ids are stored in engine files.
  EXPECT_EQ(cuda::kConvDirect8, 5);
  EXPECT_EQ(cuda::kConvCudnnBase, 100);
  EXPECT_EQ(cuda::kConvCudnnFusedBase, 200);
  EXPECT_EQ(cuda::cudnn_tactic_algo(cuda::kConvCudnnFusedBase + 6), 6);
  EXPECT_TRUE(cuda::cudnn_tactic_fused(cuda::kConvCudnnFusedBase + 6));
  EXPECT_FALSE(cuda::cudnn_tactic_fused(cuda::kConvCudnnBase + 6));
  EXPECT_EQ(cudnn_version_name(91400), "9.14.0");
  EXPECT_EQ(cudnn_version_name(0), "none");
}

TEST(EngineFile, RejectsAShapeWhoseElementCountOverflows) {
  // 2^31 x 32 x 2^31 elements: the element count overflows int64 to 0, which then "matches" a
  // byte size of 0. The reader must see a tensor that large as invalid, not as empty.
  const std::string m = error_for_plan_edit([](EnginePlan& p) {
    PlanTensor& t = p.tensors[first_of_kind(p, TensorKind::Activation)];
    t.shape = {int64_t{1} << 31, 32, int64_t{1} << 31};
    t.bytes = 0;
  });
  EXPECT_HAS(m, "x.engine");
}

TEST(EngineFile, RejectsALayerWhoseTensorShapesDoNotFitItsOp) {
  // The CUDA runtime takes a convolution's geometry from its tensors' shapes (input rank 4) and a
  // chain constant's length from its shape; a file that breaks these passes every size and offset
  // check above but would make the kernels index outside the buffers.
  const std::string conv_rank = error_for_plan_edit([](EnginePlan& p) {
    PlanTensor& x = p.tensors[p.layers[1].inputs[0]];  // layer 1 is the first convolution
    ASSERT_EQ(x.shape.size(), 4u);
    x.shape = {1, x.shape[1] * x.shape[2] * x.shape[3]};  // same element count, same bytes
  });
  EXPECT_HAS(conv_rank, "x.engine");
  const std::string chain_const = error_for_plan_edit([](EnginePlan& p) {
    PlanTensor& mean = p.tensors[p.layers[0].inputs[1]];  // layer 0 is the chain; input 1 its mean
    ASSERT_EQ(mean.shape, Shape{3});
    mean.shape = {2};  // neither one value nor one per channel
    mean.bytes = 8;
  });
  EXPECT_HAS(chain_const, "x.engine");
}

TEST(EngineFile, RejectsHugeOrBrokenFieldsWithAValidChecksum) {
  const EnginePlan p = sample_plan();
  const auto full = serialize_engine(p);
  const Layout l = layout_of(p);
  struct Case {
    const char* what;
    std::function<void(std::vector<uint8_t>&)> edit;
    const char* expect;
  };
  const std::vector<Case> cases = {
      {"model name length 2^32-1", [&](auto& b) { put<uint32_t>(b, l.model_len, 0xFFFFFFFFu); }, "exceeds the limit"},
      {"model name length 2^20", [&](auto& b) { put<uint32_t>(b, l.model_len, 1u << 20); }, "truncated"},
      {"unknown precision", [&](auto& b) { b[l.precision] = 7; }, "unknown precision"},
      {"tensor count 2^32-1", [&](auto& b) { put<uint32_t>(b, l.tensor_count, 0xFFFFFFFFu); }, "exceeds the limit"},
      {"shape rank count 2^32-1", [&](auto& b) { put<uint32_t>(b, l.first_tensor_shape_count, 0xFFFFFFFFu); },
       "exceeds the limit"},
      {"layer count 2^32-1", [&](auto& b) { put<uint32_t>(b, l.layer_count, 0xFFFFFFFFu); }, "exceeds the limit"},
      {"attribute count 2^32-1", [&](auto& b) { put<uint32_t>(b, l.first_layer_attr_count, 0xFFFFFFFFu); }, "exceeds the limit"},
      {"unknown attribute type", [&](auto& b) { b[l.first_attr_type] = 9; }, "unknown type"},
      {"weights size 2^64-1", [&](auto& b) { put<uint64_t>(b, l.weights_size, ~uint64_t{0}); }, "truncated"},
      {"weights size 2^63", [&](auto& b) { put<uint64_t>(b, l.weights_size, uint64_t{1} << 63); }, "truncated"},
      {"weights size + 1", [&](auto& b) { put<uint64_t>(b, l.weights_size, p.weights.size() + 1); }, "truncated"},
      {"weights size - 1", [&](auto& b) { put<uint64_t>(b, l.weights_size, p.weights.size() - 1); }, "unexpected bytes"},
      {"a byte after the weights", [&](auto& b) { b.push_back(0); }, "unexpected bytes"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    auto bytes = full;
    c.edit(bytes);
    reseal(bytes);
    const std::string m = deserialize_error(bytes);
    EXPECT_HAS(m, c.expect);
    EXPECT_HAS(m, "x.engine");
  }
}

TEST(EngineFile, RejectsEmptyMissingAndFolderPaths) {
  const std::string dir = test::temp_dir();
  const std::string empty = dir + "/empty.engine";
  write_bytes(empty, {});
  std::string m = error_of([&] { read_engine_file(empty); });
  EXPECT_HAS(m, "not a PoseRT engine file");
  EXPECT_HAS(m, empty);
  const std::string missing = dir + "/missing.engine";
  m = error_of([&] { read_engine_file(missing); });
  EXPECT_HAS(m, "does not exist");
  EXPECT_HAS(m, missing);
  m = error_of([&] { read_engine_file(dir); });
  EXPECT_HAS(m, "directory");
}

// Random edits of a real model's engine, resealed so the checksum holds (a file crafted on
// purpose, not a damaged one): each edit of the structure (fields, counts, names, attributes,
// ids, offsets; the weight bytes are opaque) must be refused with a posert::Error naming the file,
// or give a plan that passed validation and that writes and reads back as itself. Deterministic;
// POSERT_FUZZ_ITERS sets the number of edited files per model (default 150) and POSERT_FUZZ_SEED
// shifts the series. The thorough run: thousands in a sanitizer build (scripts/sanitize.sh).
void fuzz_engine_file(const std::string& model, Precision prec, uint32_t seed) {
  if (!test::have_model(model)) GTEST_SKIP() << model << " is not installed in " << test::models_dir();
  const PlannedEngine pe = plan_engine(model, test::models_dir(), prec, 3);
  const auto good = serialize_engine(pe.plan);
  const size_t structure_end = layout_of(pe.plan).weights_size + 8;  // the weights' size field included
  const int iters = static_cast<int>(test::env_number("POSERT_FUZZ_ITERS", 150, 1, 1000000));
  seed += static_cast<uint32_t>(test::env_number("POSERT_FUZZ_SEED", 0, 0, 1L << 30));
  std::mt19937 rng(seed);
  auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  const uint64_t interesting[] = {0, 1, 2, 3, 7, 8, 255, 0x7fff, 0xffff, 0x7fffffff, 0x80000000u, 0xffffffffu,
                                  uint64_t{1} << 32, uint64_t{1} << 62, ~uint64_t{0}, uint64_t{1} << 63};
  int accepted = 0, refused = 0, failures = 0;
  for (int it = 0; it < iters && failures < 5; ++it) {
    std::vector<uint8_t> b = good;
    size_t end = structure_end;
    std::string what;
    const int edits = 1 + static_cast<int>(pick(4));
    for (int e = 0; e < edits; ++e) {
      const size_t at = kHeader + pick(end - kHeader - 8);
      switch (pick(6)) {
        case 0:
          b[at] = static_cast<uint8_t>(pick(256));
          what += " byte@" + std::to_string(at);
          break;
        case 1:
          b[at] ^= static_cast<uint8_t>(1u << pick(8));
          what += " bitflip@" + std::to_string(at);
          break;
        case 2:
          put<uint32_t>(b, at, static_cast<uint32_t>(interesting[pick(16)]));
          what += " u32@" + std::to_string(at);
          break;
        case 3:
          put<uint64_t>(b, at, interesting[pick(16)]);
          what += " u64@" + std::to_string(at);
          break;
        case 4: {
          const size_t n = 1 + pick(8);
          b.erase(b.begin() + static_cast<std::ptrdiff_t>(at), b.begin() + static_cast<std::ptrdiff_t>(at + n));
          end -= n;
          what += " erase" + std::to_string(n) + "@" + std::to_string(at);
          break;
        }
        default: {
          const size_t n = 1 + pick(8);
          std::vector<uint8_t> ins(n);
          for (auto& v : ins) v = static_cast<uint8_t>(pick(256));
          b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), ins.begin(), ins.end());
          end += n;
          what += " insert" + std::to_string(n) + "@" + std::to_string(at);
        }
      }
    }
    reseal(b);
    const std::string ctx = model + " iteration " + std::to_string(it) + ":" + what;
    try {
      const EnginePlan got = deserialize_engine(b, "engine file 'x.engine'");
      ++accepted;
      // Accepted: valid, and stable through another write and read.
      SCOPED_TRACE(ctx);
      expect_same_plan(got, deserialize_engine(serialize_engine(got), "engine file 'y.engine'"));
    } catch (const Error& e) {
      ++refused;
      if (std::string(e.what()).find("x.engine") == std::string::npos) {
        ++failures;
        ADD_FAILURE() << ctx << "\n  refused without naming the file: " << e.what();
      }
    } catch (const std::exception& e) {
      ++failures;
      ADD_FAILURE() << ctx << "\n  threw a " << typeid(e).name() << " instead of posert::Error: " << e.what();
    }
  }
  std::printf("[ fuzz     ] %s %s engine (seed %u): %d edited files, %d accepted, %d refused\n", model.c_str(),
              precision_name(prec), seed, iters, accepted, refused);
  if (iters >= 100 && failures == 0) {
    EXPECT_GT(refused, iters / 2) << "most random edits should be caught";
  }
}

TEST(EngineFile, RandomEditsWithAValidChecksumAreRefusedOrReadBackExactly) {
  fuzz_engine_file("movenet-lightning", Precision::FP16, 11);
  fuzz_engine_file("movenet-multipose", Precision::FP32, 22);
}

// ---- allocations bounded by the file --------------------------------------------------------

// Lets the address space grow by at most `headroom` bytes from now on (the child of a death test
// only). Not meaningful under sanitizers, which reserve huge shadow mappings.
void limit_address_space_growth(uint64_t headroom) {
  long pages = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld", &pages) != 1) pages = 0;
    std::fclose(f);
  }
  const rlim_t lim = static_cast<rlim_t>(pages) * static_cast<rlim_t>(sysconf(_SC_PAGESIZE)) + headroom;
  const rlimit rl{lim, lim};
  setrlimit(RLIMIT_AS, &rl);
}

// Exit codes of the child: 0 posert::Error (refused cleanly), 1 accepted, 2 out of memory,
// 3 a valid file failed under the same limit (limit too tight to judge).
[[noreturn]] void deserialize_in_limited_memory(const std::vector<uint8_t>& good, const std::vector<uint8_t>& bad,
                                               uint64_t headroom) {
  limit_address_space_growth(headroom);
  try {
    deserialize_engine(good, "good");
  } catch (...) {
    std::_Exit(3);
  }
  try {
    deserialize_engine(bad, "bad");
  } catch (const Error&) {
    std::_Exit(0);
  } catch (const std::bad_alloc&) {
    std::_Exit(2);
  }
  std::_Exit(1);
}

TEST(EngineFileDeathTest, CountsAtTheirLimitDoNotAllocateMoreThanTheFileJustifies) {
  // A few hundred bytes announcing 2^20 tensors or layers (the largest counts the reader accepts)
  // must be refused as truncated without first allocating 2^20 empty records (80-150 MB).
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "an address-space limit cannot be judged under AddressSanitizer (its shadow memory); "
                  "run this test in a plain build";
#endif
  const EnginePlan p = sample_plan();
  const auto good = serialize_engine(p);
  const Layout l = layout_of(p);
  struct Case {
    const char* what;
    size_t at;
  };
  for (const Case& c : {Case{"tensor count", l.tensor_count}, Case{"layer count", l.layer_count}}) {
    SCOPED_TRACE(c.what);
    auto bad = good;
    put<uint32_t>(bad, c.at, 1u << 20);
    reseal(bad);
    // Control: with memory to spare the file is refused cleanly, so a failure below is the allocation.
    EXPECT_EXIT(deserialize_in_limited_memory(good, bad, uint64_t{1} << 30), ::testing::ExitedWithCode(0), "");
    EXPECT_EXIT(deserialize_in_limited_memory(good, bad, uint64_t{32} << 20), ::testing::ExitedWithCode(0), "")
        << "exit 2: out of memory with 32 MB of headroom for a " << bad.size() << "-byte file (2^20 records of "
        << sizeof(PlanTensor) << " / " << sizeof(PlanLayer) << " bytes per tensor / layer)";
  }
}

}  // namespace
}  // namespace posert
