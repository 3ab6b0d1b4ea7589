// Whole models through the CUDA engine against the reference executor, engine files through
// save/load (bit-identical outputs), refusal of an engine built for another GPU, and several
// contexts (streams) sharing one engine. Runs on the GPU machine; skips with the reason elsewhere.
#include <gtest/gtest.h>

#include <filesystem>

#include "gpu/gpu_test_util.h"
#include "support/test_support.h"

#if POSERT_HAVE_CUDA
#include <cstring>

#include "engine/cuda/device_engine.h"
#include "engine/cuda/tuner.h"
#include "engine/engine_builder.h"
#include "engine/engine_file.h"
#include "engine/ref_executor.h"
#include "import/tfjs/tfjs_importer.h"
#include "io/image.h"
#include "pose/model_spec.h"
#include "pose/preprocess.h"
#endif

namespace posert {
namespace {

#if POSERT_HAVE_CUDA

const char* kModels[] = {"movenet-lightning", "movenet-thunder", "movenet-multipose", "posenet"};
const char* kPhotos[] = {"messi5.jpg", "person_multi_det.jpg", "astronaut.png"};

struct Inputs {
  std::vector<Tensor> per_image;  // [1,S,S,3] each
  Tensor batch;                   // [N,S,S,3]
};

Inputs photo_inputs(const ModelSpec& spec) {
  Inputs r;
  for (const char* p : kPhotos) {
    const std::string path = test::photos_dir() + "/" + p;
    if (!std::filesystem::exists(path)) continue;
    r.per_image.push_back(preprocess(read_image(path), spec, nullptr));
  }
  if (r.per_image.empty()) {  // no photos installed: random images keep the test meaningful
    std::mt19937 rng(3);
    const DType dt = spec.encoding == InputEncoding::RoundedInt32 ? DType::I32 : DType::F32;
    for (int i = 0; i < 3; ++i) r.per_image.push_back(test::random_tensor(dt, {1, spec.input_size, spec.input_size, 3}, rng));
  }
  const Tensor& f = r.per_image[0];
  r.batch = Tensor(f.dtype(), {static_cast<int64_t>(r.per_image.size()), f.dim(1), f.dim(2), f.dim(3)});
  for (size_t i = 0; i < r.per_image.size(); ++i) std::memcpy(r.batch.raw() + i * f.nbytes(), r.per_image[i].raw(), f.nbytes());
  return r;
}

// Runs the engine on the batch; returns per output a [N, ...] f32 tensor.
std::vector<Tensor> run_engine(cuda::DeviceEngine& eng, cuda::DeviceContext& ctx, const Tensor& batch) {
  const EnginePlan& p = eng.plan();
  const int n = static_cast<int>(batch.dim(0));
  cuda::check(cudaMemcpy(ctx.tensor(p.inputs[0]), batch.raw(), batch.nbytes(), cudaMemcpyHostToDevice), "upload");
  cuda::check(cudaDeviceSynchronize(), "upload");  // the DMA of a pageable copy may still be running
  ctx.enqueue(n);
  ctx.synchronize();
  std::vector<Tensor> outs;
  for (int o : p.outputs) {
    Shape s = p.tensors[o].shape;
    s[0] = n;
    Tensor t(DType::F32, s);
    cuda::check(cudaMemcpy(t.raw(), ctx.tensor(o), t.nbytes(), cudaMemcpyDeviceToHost), "download");
    outs.push_back(std::move(t));
  }
  return outs;
}

Tensor slice(const Tensor& t, int i) {
  Shape s = t.shape();
  s[0] = 1;
  Tensor r(DType::F32, s);
  std::memcpy(r.raw(), t.raw() + i * r.nbytes(), r.nbytes());
  return r;
}

void check_model(const char* model, Precision prec) {
  if (!test::have_model(model)) GTEST_SKIP() << "model " << model << " not installed";
  const ModelSpec& spec = find_model_spec(model);
  const Inputs in = photo_inputs(spec);
  const int n = static_cast<int>(in.per_image.size());
  PlannedEngine pe = plan_engine(model, test::models_dir(), prec, n);
  pe.plan.target = cuda::current_target();
  cuda::DeviceEngine eng(pe.plan);
  TimingCache cache("");
  cuda::tune_engine(eng, cache, false);
  cuda::DeviceContext ctx(std::shared_ptr<const cuda::DeviceEngine>(&eng, [](const cuda::DeviceEngine*) {}));
  const auto outs = run_engine(eng, ctx, in.batch);

  ImportOptions io;
  io.input_size = spec.input_size;
  const Graph g = import_tfjs(test::models_dir() + "/" + spec.file_stem + ".json", io);
  RefExecutor ref(g);
  const bool snaps_allowed = prec == Precision::FP16 && spec.decoder == DecoderKind::PoseNet;
  int checked = 0, snapped = 0;
  for (int i = 0; i < n; ++i) {
    const auto want = ref.run({in.per_image[i]}, spec.head_values);
    std::vector<Tensor> got;
    for (size_t h = 0; h < want.size(); ++h) {
      got.push_back(slice(outs[h], i));
      const double err = test::rel_l2(got[h], want[h]);
      // fp16 whole networks: activations are rounded to fp16 at every layer, so head errors grow
      // with depth (PyTorch's own fp16 PoseNet shows 1.5e-2..1.9e-2, bench/README.md); the bound
      // here catches broken kernels, and the keypoint check below is the accuracy requirement.
      // Single kernels are held to 1e-2 in cuda_ops_test.cpp.
      EXPECT_LE(err, prec == Precision::FP32 ? 1e-4 : 1e-1) << model << " image " << i << " head " << spec.head_values[h];
      std::printf("[engine-vs-ref] %s %s image %d head %s rel_err %.3g\n", model, precision_name(prec), i,
                  spec.head_values[h].c_str(), err);
    }
    // Decoded keypoints of the confident poses (score >= 0.5): fp32 within 0.05 px, fp16 within 1 px at model
    // resolution. Poses are matched by position, since near-equal scores may swap their order.
    std::vector<const Tensor*> pg, pw;
    for (auto& t : got) pg.push_back(&t);
    for (auto& t : want) pw.push_back(&t);
    const auto a = decode_heads(spec, pg, 0, DecodeOptions{});
    const auto b = decode_heads(spec, pw, 0, DecodeOptions{});
    for (size_t p = 0; p < b.size(); ++p) {
      if (b[p].score < 0.5f) continue;
      auto dist = [&](const Pose& x, size_t k) {
        return std::hypot(x.keypoints[k].x - b[p].keypoints[k].x, x.keypoints[k].y - b[p].keypoints[k].y);
      };
      const Pose* best = nullptr;
      double best_d = 1e30;
      for (const auto& q : a) {
        double d = 0;
        for (size_t k = 0; k < q.keypoints.size(); ++k) d += dist(q, k);
        if (d < best_d) best_d = d, best = &q;
      }
      ASSERT_NE(best, nullptr) << model << " image " << i << ": pose " << p << " not found";
      for (size_t k = 0; k < b[p].keypoints.size(); ++k) {
        if (b[p].keypoints[k].score < 0.5f) continue;  // a weak peak may move between near-equal maxima
        ++checked;
        const double d = dist(*best, k);
        if (snaps_allowed && d > 1.0 && d <= 8.0) {
          // PoseNet finds a keypoint by following its parent's displacement to the nearest 16-px
          // cell and that cell's offset: where the displaced point lies near a cell border, fp16
          // noise picks the neighbouring cell, whose offset lands a few pixels away. Counted,
          // printed and bounded below rather than hidden.
          ++snapped;
          std::printf("[engine-vs-ref] %s fp16 image %d pose %zu keypoint %zu: traversal snapped %.2f px\n", model, i, p, k, d);
          continue;
        }
        EXPECT_LE(d, prec == Precision::FP32 ? 0.05 : 1.0) << model << " image " << i << " pose " << p << " keypoint " << k;
      }
    }
  }
  // At most 1 in 20 confident PoseNet keypoints may snap to a neighbouring cell, each within half a cell.
  EXPECT_LE(snapped * 20, checked) << model << ": " << snapped << " of " << checked << " keypoints snapped";
}

TEST(CudaEngine, ModelsMatchReferenceFp32) {
  POSERT_REQUIRE_GPU();
  for (const char* m : kModels) check_model(m, Precision::FP32);
}

TEST(CudaEngine, ModelsMatchReferenceFp16) {
  POSERT_REQUIRE_GPU();
  for (const char* m : kModels) check_model(m, Precision::FP16);
}

TEST(CudaEngine, SaveLoadGivesBitIdenticalOutputs) {
  POSERT_REQUIRE_GPU();
  if (!test::have_model("movenet-lightning")) GTEST_SKIP() << "model not installed";
  const ModelSpec& spec = find_model_spec("movenet-lightning");
  const Inputs in = photo_inputs(spec);
  BuildOptions bo;
  bo.precision = "fp16";
  bo.max_batch = static_cast<int>(in.per_image.size());
  auto e1 = Engine::build("movenet-lightning", test::models_dir(), bo);
  const std::string path = test::temp_dir() + "/l.engine";
  e1->save(path);
  auto e2 = Engine::load(path);
  std::vector<std::vector<uint8_t>> res[2];
  int k = 0;
  for (auto& e : {e1, e2}) {
    Context c(e);
    c.upload_input(0, in.batch.raw(), in.batch.nbytes());
    c.run(bo.max_batch);
    const auto outs = e->outputs();  // a local: ranging over a temporary's member would dangle
    for (size_t o = 0; o < outs.size(); ++o) {
      int64_t bytes = 4 * bo.max_batch;
      for (auto d : outs[o].shape) bytes *= d;
      std::vector<uint8_t> h(static_cast<size_t>(bytes));
      c.download_output(static_cast<int>(o), h.data(), h.size());
      res[k].push_back(std::move(h));
    }
    ++k;
  }
  ASSERT_EQ(res[0].size(), res[1].size());
  for (size_t o = 0; o < res[0].size(); ++o) EXPECT_EQ(res[0][o], res[1][o]) << "output " << o;
}

TEST(CudaEngine, RefusesEngineForAnotherGpu) {
  POSERT_REQUIRE_GPU();
  if (!test::have_model("movenet-lightning")) GTEST_SKIP() << "model not installed";
  PlannedEngine pe = plan_engine("movenet-lightning", test::models_dir(), Precision::FP16, 1);
  pe.plan.target = cuda::current_target();
  pe.plan.target.gpu_name = "Imaginary GPU 9000";
  const std::string path = test::temp_dir() + "/other.engine";
  write_engine_file(path, pe.plan);
  try {
    Engine::load(path);
    FAIL() << "loaded an engine built for another GPU";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Imaginary GPU 9000"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("posert build"), std::string::npos) << e.what();
  }
}

TEST(CudaEngine, GraphsContextsAndStreamsAgree) {
  POSERT_REQUIRE_GPU();
  if (!test::have_model("movenet-lightning")) GTEST_SKIP() << "model not installed";
  const ModelSpec& spec = find_model_spec("movenet-lightning");
  const Inputs in = photo_inputs(spec);
  BuildOptions bo;
  bo.max_batch = 4;
  auto e = Engine::build("movenet-lightning", test::models_dir(), bo);
  Context a(e), b(e);  // two contexts, two streams, one engine
  b.set_use_graphs(false);
  a.upload_input(0, in.per_image[0].raw(), in.per_image[0].nbytes());
  b.upload_input(0, in.per_image[0].raw(), in.per_image[0].nbytes());
  for (int rep = 0; rep < 3; ++rep) {  // graph replays must keep giving the same answer
    a.enqueue(1);
    b.enqueue(1);
    a.synchronize();
    b.synchronize();
    const auto outs = e->outputs();  // a local: ranging over a temporary's member would dangle
    for (size_t o = 0; o < outs.size(); ++o) {
      int64_t bytes = 4;
      for (auto d : outs[o].shape) bytes *= d;
      std::vector<uint8_t> ha(static_cast<size_t>(bytes)), hb(static_cast<size_t>(bytes));
      a.download_output(static_cast<int>(o), ha.data(), ha.size());
      b.download_output(static_cast<int>(o), hb.data(), hb.size());
      EXPECT_EQ(ha, hb) << "output " << o << " rep " << rep;
    }
  }
}

// An fp16 engine for `model` at max batch n, tuned on this GPU (no timing cache).
std::shared_ptr<cuda::DeviceEngine> tuned_fp16_engine(const char* model, int n) {
  PlannedEngine pe = plan_engine(model, test::models_dir(), Precision::FP16, n);
  pe.plan.target = cuda::current_target();
  auto eng = std::make_shared<cuda::DeviceEngine>(pe.plan);
  TimingCache cache("");
  cuda::tune_engine(*eng, cache, false);
  return eng;
}

// Multi-stream execution (independent branches on extra streams inside the graph) gives the
// same bytes as one stream, for every model, in graph replays and launched directly.
TEST(CudaEngine, MultiStreamMatchesOneStream) {
  POSERT_REQUIRE_GPU();
  int branched = 0;
  for (const char* model : kModels) {
    if (!test::have_model(model)) continue;
    const Inputs in = photo_inputs(find_model_spec(model));
    const auto eng = tuned_fp16_engine(model, static_cast<int>(in.per_image.size()));
    cuda::DeviceContext one(eng), many(eng);
    one.set_max_streams(1);
    const uint64_t epoch = many.capture_epoch();
    many.set_max_streams(4);
    EXPECT_GT(many.capture_epoch(), epoch) << "new streams must tell callers their captured graphs are stale";
    EXPECT_EQ(one.streams_used(), 1);
    std::printf("[streams] %s: %d streams\n", model, many.streams_used());
    branched += many.streams_used() > 1;
    for (bool graphs : {true, false}) {
      one.set_use_graphs(graphs);
      many.set_use_graphs(graphs);
      for (int rep = 0; rep < 3; ++rep) {
        const auto a = run_engine(*eng, one, in.batch);
        const auto b = run_engine(*eng, many, in.batch);
        ASSERT_EQ(a.size(), b.size());
        for (size_t o = 0; o < a.size(); ++o)
          EXPECT_EQ(0, std::memcmp(a[o].raw(), b[o].raw(), a[o].nbytes()))
              << model << " output " << o << (graphs ? " graph" : " direct") << " rep " << rep;
      }
    }
  }
  EXPECT_GT(branched, 0) << "no model ran on more than one stream";
}

// Programmatic dependent launch changes only when kernels are scheduled, never what they compute:
// outputs with it on equal those with it off, bit for bit, in captured graphs and direct launches.
TEST(CudaEngine, ProgrammaticLaunchMatchesSerialLaunch) {
  POSERT_REQUIRE_GPU();
  if (!cuda::programmatic_launch_supported())
    GTEST_SKIP() << "programmatic dependent launch needs compute capability 9.0+ running sm_90 code";
  const bool before = cuda::programmatic_launch();
  int ran = 0;
  for (const char* model : kModels) {
    if (!test::have_model(model)) continue;
    const Inputs in = photo_inputs(find_model_spec(model));
    const auto eng = tuned_fp16_engine(model, static_cast<int>(in.per_image.size()));
    for (bool graphs : {true, false}) {
      cuda::DeviceContext serial(eng), pdl(eng);
      serial.set_use_graphs(graphs);
      pdl.set_use_graphs(graphs);
      for (int rep = 0; rep < 3; ++rep) {  // rep 0 runs directly and captures, later reps replay
        cuda::set_programmatic_launch(false);
        const auto a = run_engine(*eng, serial, in.batch);
        cuda::set_programmatic_launch(true);
        const auto b = run_engine(*eng, pdl, in.batch);
        ASSERT_EQ(a.size(), b.size());
        for (size_t o = 0; o < a.size(); ++o)
          EXPECT_EQ(0, std::memcmp(a[o].raw(), b[o].raw(), a[o].nbytes()))
              << model << " output " << o << (graphs ? " graph" : " direct") << " rep " << rep;
      }
    }
    ++ran;
  }
  cuda::set_programmatic_launch(before);
  if (ran == 0) GTEST_SKIP() << "no model files (run scripts/setup.sh)";
}

#else

TEST(CudaEngine, NotBuilt) { GTEST_SKIP() << "no GPU test: this build has no CUDA backend (nvcc not found at configure time)"; }

#endif

}  // namespace
}  // namespace posert
