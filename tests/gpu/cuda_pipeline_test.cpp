// The GPU pipeline: the preprocessing kernel against the CPU preprocessing (bit for bit, over odd
// frame sizes, crops inside and beyond the frame, BGR, row pitch, both encodings, non-square
// outputs), and whole pipelines (upload -> preprocess -> engine -> GPU decoder -> download) against
// the same engine fed by the CPU preprocessing and decoded by the CPU reference decoders, and
// against the CPU backend. Runs on the GPU machine; skips with the reason elsewhere.
#include <gtest/gtest.h>

#include <filesystem>

#include "gpu/gpu_test_util.h"
#include "support/test_support.h"

#if POSERT_HAVE_CUDA
#include <cuda_runtime.h>

#include <cstring>

#include "engine/cuda/device_engine.h"
#include "io/image.h"
#include "pipeline/cuda/gpu_pipeline.h"
#include "pipeline/cuda/gpu_preprocess.h"
#include "pose/model_spec.h"
#include "pose/preprocess.h"
#include "posert/detector.h"
#endif

namespace posert {
namespace {

#if POSERT_HAVE_CUDA

struct Frame {
  int w, h, pitch;
  bool bgr;
  std::vector<uint8_t> bytes;  // pitch * h, in the frame's byte order
  std::vector<uint8_t> rgb;    // packed RGB, for the CPU
};

Frame random_frame(int w, int h, int extra_pitch, bool bgr, std::mt19937& rng) {
  Frame f{w, h, w * 3 + extra_pitch, bgr, {}, {}};
  f.rgb.resize(static_cast<size_t>(w) * h * 3);
  for (auto& v : f.rgb) v = static_cast<uint8_t>(rng());
  f.bytes.assign(static_cast<size_t>(f.pitch) * h, 0xAB);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c)
        f.bytes[static_cast<size_t>(y) * f.pitch + x * 3 + (bgr ? 2 - c : c)] = f.rgb[(static_cast<size_t>(y) * w + x) * 3 + c];
  return f;
}

TEST(CudaPipeline, PreprocessKernelMatchesCpuBitForBit) {
  POSERT_REQUIRE_GPU();
  std::mt19937 rng(11);
  struct Item {
    Frame f;
    CropRect crop;
  };
  std::vector<Item> items;
  items.push_back({random_frame(37, 53, 0, false, rng), {}});
  items.back().crop = letterbox_crop(make_letterbox(37, 53, 192));
  items.push_back({random_frame(640, 480, 5, true, rng), {}});
  items.back().crop = letterbox_crop(make_letterbox(640, 480, 192));
  items.push_back({random_frame(101, 77, 3, false, rng), {5, 7, 20, 31}});      // inside the frame
  items.push_back({random_frame(64, 64, 0, true, rng), {-10, -20, 100, 90}});   // beyond every edge
  items.push_back({random_frame(1, 1, 0, false, rng), {0, 0, 1, 1}});           // one pixel
  items.push_back({random_frame(500, 40, 1, false, rng), {450, 30, 300, 500}}); // mostly outside
  // Rows wider than the mapped kernel stages (kMappedRowBytes): it reads those pixel by pixel.
  items.push_back({random_frame(6000, 5, 0, true, rng), {-100, -3, 6300, 11}});
  ASSERT_FALSE(cuda::mapped_preprocess_fits(6000));
  items.push_back({random_frame(333, 250, 7, false, rng), {300, 200, 40, 30}});  // upscaled corner crop
  const int n = static_cast<int>(items.size());
  std::vector<uint8_t> packed;
  std::vector<cuda::FrameDesc> desc(n);
  for (int b = 0; b < n; ++b) {
    packed.resize((packed.size() + 15) / 16 * 16);
    desc[b].offset = static_cast<int64_t>(packed.size());
    desc[b].width = items[b].f.w;
    desc[b].height = items[b].f.h;
    desc[b].pitch = items[b].f.pitch;
    desc[b].bgr = items[b].f.bgr;
    desc[b].crop_x = items[b].crop.x;
    desc[b].crop_y = items[b].crop.y;
    desc[b].crop_w = items[b].crop.w;
    desc[b].crop_h = items[b].crop.h;
    packed.insert(packed.end(), items[b].f.bytes.begin(), items[b].f.bytes.end());
  }
  packed.resize((packed.size() + 15) / 16 * 16);  // the mapped kernel's slots end on 16 bytes
  void *d_frames = nullptr, *d_desc = nullptr, *d_out = nullptr;
  // The same frames and descriptors in mapped pinned host memory, for the mapped kernel.
  void *h_frames = nullptr, *h_desc = nullptr, *m_frames = nullptr, *m_desc = nullptr;
  cuda::check(cudaHostAlloc(&h_frames, packed.size(), cudaHostAllocMapped), "host alloc");
  cuda::check(cudaHostAlloc(&h_desc, n * sizeof(cuda::FrameDesc), cudaHostAllocMapped), "host alloc");
  cuda::check(cudaHostGetDevicePointer(&m_frames, h_frames, 0), "mapped pointer");
  cuda::check(cudaHostGetDevicePointer(&m_desc, h_desc, 0), "mapped pointer");
  std::memcpy(h_frames, packed.data(), packed.size());
  std::memcpy(h_desc, desc.data(), n * sizeof(cuda::FrameDesc));
  cuda::check(cudaMalloc(&d_frames, packed.size()), "malloc");
  cuda::check(cudaMalloc(&d_desc, n * sizeof(cuda::FrameDesc)), "malloc");
  cuda::check(cudaMemcpy(d_frames, packed.data(), packed.size(), cudaMemcpyHostToDevice), "upload");
  cuda::check(cudaMemcpy(d_desc, desc.data(), n * sizeof(cuda::FrameDesc), cudaMemcpyHostToDevice), "upload");
  const std::pair<int, int> sizes[] = {{192, 192}, {48, 64}, {257, 255}};
  int compared = 0;
  for (const auto& [ow, oh] : sizes) {
    for (InputEncoding enc : {InputEncoding::RoundedInt32, InputEncoding::FloatMinus1To1}) {
      const DType dt = enc == InputEncoding::RoundedInt32 ? DType::I32 : DType::F32;
      Tensor want(dt, {n, oh, ow, 3});
      for (int b = 0; b < n; ++b)
        preprocess_crop_into(items[b].f.rgb.data(), items[b].f.w, items[b].f.h, items[b].crop, enc, want, b);
      for (bool mapped : {false, true}) {
        cuda::check(cudaMalloc(&d_out, want.nbytes()), "malloc");
        cuda::check(cudaMemset(d_out, 0xFF, want.nbytes()), "memset");
        const auto pe = enc == InputEncoding::RoundedInt32 ? cuda::PreprocessOut::RoundedInt32 : cuda::PreprocessOut::FloatMinus1To1;
        if (mapped)
          cuda::preprocess_frames_mapped(static_cast<const uint8_t*>(m_frames), static_cast<const cuda::FrameDesc*>(m_desc), n, ow,
                                         oh, pe, d_out, nullptr);
        else
          cuda::preprocess_frames(static_cast<const uint8_t*>(d_frames), static_cast<const cuda::FrameDesc*>(d_desc), n, ow, oh,
                                  pe, d_out, nullptr);
        Tensor got(dt, {n, oh, ow, 3});
        cuda::check(cudaMemcpy(got.raw(), d_out, got.nbytes(), cudaMemcpyDeviceToHost), "download");
        cudaFree(d_out);
        for (int b = 0; b < n; ++b) {
          const size_t per = got.nbytes() / n;
          EXPECT_EQ(0, std::memcmp(got.raw() + b * per, want.raw() + b * per, per))
              << (mapped ? "mapped kernel" : "kernel") << ", item " << b << " (" << items[b].f.w << "x" << items[b].f.h
              << ", crop " << items[b].crop.x << "," << items[b].crop.y << " " << items[b].crop.w << "x" << items[b].crop.h
              << ") output " << ow << "x" << oh << (enc == InputEncoding::RoundedInt32 ? " int32" : " float");
          ++compared;
        }
      }
    }
  }
  EXPECT_EQ(compared, n * 12);
  // What the mapped kernel reads for a 640x480 letterbox at 192x192: about 2 * 144 rows of 1920
  // bytes, not the 921,600-byte frame.
  cuda::FrameDesc lb;
  lb.width = 640;
  lb.height = 480;
  lb.pitch = 1920;
  const CropRect c = letterbox_crop(make_letterbox(640, 480, 192));
  lb.crop_x = c.x;
  lb.crop_y = c.y;
  lb.crop_w = c.w;
  lb.crop_h = c.h;
  const cuda::MappedRows read = cuda::mapped_rows(lb, 192, 192);
  EXPECT_GE(read.rows.size(), 280u);
  EXPECT_LE(read.rows.size(), 292u);
  // Columns 1 (centre 0.5 * 640/192 - 0.5 = 1.17) to 638 (191.5 * 640/192 - 0.5 = 637.8, up).
  EXPECT_EQ(read.first, 3);
  EXPECT_EQ(read.last, 639 * 3);
  EXPECT_EQ(read.bytes, static_cast<int64_t>(read.rows.size()) * 1920) << "rows of 1920 bytes start 16-byte aligned";
  cudaFree(d_frames);
  cudaFree(d_desc);
  cudaFreeHost(h_frames);
  cudaFreeHost(h_desc);
}

std::vector<Image> photos() {
  std::vector<Image> r;
  for (const char* p : {"messi5.jpg", "person_multi_det.jpg", "astronaut.png"}) {
    const std::string path = test::photos_dir() + "/" + p;
    if (std::filesystem::exists(path)) r.push_back(read_image(path));
  }
  if (r.empty()) {  // no photos installed: random frames keep the test meaningful
    std::mt19937 rng(5);
    for (auto [w, h] : {std::pair{640, 480}, std::pair{333, 500}}) {
      Image im;
      im.width = w;
      im.height = h;
      im.rgb.resize(static_cast<size_t>(w) * h * 3);
      for (auto& v : im.rgb) v = static_cast<uint8_t>(rng());
      r.push_back(std::move(im));
    }
  }
  return r;
}

// The oracle for a pipeline: the same engine fed by the CPU preprocessing, its heads downloaded
// and decoded by the CPU reference decoder, mapped through the crop's transform.
std::vector<Pose> oracle(const std::shared_ptr<Engine>& engine, const ModelSpec& spec, const Image& img, const CropRect& crop) {
  const DType dt = spec.encoding == InputEncoding::RoundedInt32 ? DType::I32 : DType::F32;
  Tensor in(dt, {1, spec.input_size, spec.input_size, 3});
  preprocess_crop_into(img.rgb.data(), img.width, img.height, crop, spec.encoding, in, 0);
  Context ctx(engine);
  ctx.upload_input(0, in.raw(), in.nbytes());
  ctx.run(1);
  const auto outs = engine->outputs();
  std::vector<Tensor> heads;
  for (const auto& h : spec.head_values)
    for (size_t i = 0; i < outs.size(); ++i)
      if (outs[i].name == h) {
        Shape s(outs[i].shape.begin(), outs[i].shape.end());
        s[0] = 1;
        Tensor t(DType::F32, s);
        ctx.download_output(static_cast<int>(i), t.raw(), t.nbytes());
        heads.push_back(std::move(t));
      }
  std::vector<const Tensor*> ph;
  for (auto& t : heads) ph.push_back(&t);
  auto poses = decode_heads(spec, ph, 0, DecodeOptions{});
  const CropTransform tf = crop_transform(crop, spec.input_size, spec.input_size);
  for (auto& p : poses) map_pose(p, tf);
  return poses;
}

// Same poses in the same order: keypoints within tol_px frame pixels, scores within 1e-5.
void expect_same_poses(const std::vector<Pose>& got, const std::vector<Pose>& want, double tol_px, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t p = 0; p < want.size(); ++p) {
    EXPECT_NEAR(got[p].score, want[p].score, 1e-5) << what << " pose " << p;
    ASSERT_EQ(got[p].keypoints.size(), want[p].keypoints.size());
    for (size_t k = 0; k < want[p].keypoints.size(); ++k) {
      EXPECT_NEAR(got[p].keypoints[k].x, want[p].keypoints[k].x, tol_px) << what << " pose " << p << " kp " << k;
      EXPECT_NEAR(got[p].keypoints[k].y, want[p].keypoints[k].y, tol_px) << what << " pose " << p << " kp " << k;
      EXPECT_NEAR(got[p].keypoints[k].score, want[p].keypoints[k].score, 1e-5) << what << " pose " << p << " kp " << k;
    }
    for (int i = 0; i < 4; ++i) EXPECT_NEAR(got[p].bbox[i], want[p].bbox[i], tol_px) << what << " pose " << p << " bbox " << i;
  }
}

void check_pipeline(const char* model, const char* precision) {
  if (!test::have_model(model)) GTEST_SKIP() << "model " << model << " not installed";
  const ModelSpec& spec = find_model_spec(model);
  const auto imgs = photos();
  const int n = static_cast<int>(imgs.size());
  BuildOptions bo;
  bo.precision = precision;
  bo.max_batch = n;
  auto engine = Engine::build(model, test::models_dir(), bo);
  cuda::GpuPipeline pipe(engine, spec, DecodeOptions{});
  std::vector<cuda::FrameView> frames;
  std::vector<CropRect> letterboxes, crops;
  for (const auto& im : imgs) {
    cuda::FrameView f;
    f.pixels = im.rgb.data();
    f.width = im.width;
    f.height = im.height;
    frames.push_back(f);
    letterboxes.push_back(letterbox_crop(make_letterbox(im.width, im.height, spec.input_size)));
    // A top-down style crop: the central part of the frame, not square.
    crops.push_back({im.width / 5, im.height / 6, im.width / 2 + 3, im.height * 2 / 3});
  }
  const auto batched = pipe.run(frames);                 // one graph for the batch
  const auto again = pipe.run(frames);                   // graph replay
  const auto cropped = pipe.run(frames, &crops);         // same sizes, other crops: same graph
  cuda::StageTimes st;
  const auto profiled = pipe.run_profiled(frames, &st);  // stage by stage
  pipe.set_use_graphs(false);
  const auto single = pipe.run({frames[n - 1]});         // batch 1, no graph
  EXPECT_GT(st.total, 0.0);
  EXPECT_EQ(st.download_bytes, static_cast<int64_t>(n * PoseItemLayout{spec.max_people}.item_bytes()))
      << "only pose records come back";
  // 1e-3 model-input pixels, in frame pixels.
  for (int b = 0; b < n; ++b) {
    const double scale = static_cast<double>(letterboxes[b].w) / spec.input_size;
    const std::string what = std::string(model) + " " + precision + " image " + std::to_string(b);
    expect_same_poses(batched[b], oracle(engine, spec, imgs[b], letterboxes[b]), 1e-3 * scale, what + " letterbox");
    expect_same_poses(again[b], batched[b], 0.0, what + " graph replay");
    expect_same_poses(profiled[b], batched[b], 0.0, what + " profiled");
    expect_same_poses(cropped[b], oracle(engine, spec, imgs[b], crops[b]),
                      1e-3 * static_cast<double>(crops[b].w) / spec.input_size, what + " crop");
  }
  expect_same_poses(single[0], batched[n - 1], 0.0, std::string(model) + " batch 1 vs batch " + std::to_string(n));
  // A frame written straight into the pinned upload buffer (frame_slot) gives the same poses.
  pipe.set_use_graphs(true);
  const auto& last = imgs[n - 1];
  ASSERT_EQ(last.rgb.size(), static_cast<size_t>(last.width) * last.height * 3);
  uint8_t* slot = pipe.frame_slot(0, last.width, last.height);
  std::memcpy(slot, last.rgb.data(), last.rgb.size());
  cuda::FrameView in_place = frames[n - 1];
  in_place.pixels = slot;
  const auto pinned = pipe.run({in_place});
  const auto pinned_again = pipe.run({in_place});  // graph replay
  expect_same_poses(pinned[0], single[0], 0.0, std::string(model) + " frame in the pinned slot");
  expect_same_poses(pinned_again[0], single[0], 0.0, std::string(model) + " frame in the pinned slot, replay");
  // Every transfer mode gives the same poses bit for bit (batched ran in the default mode).
  EXPECT_EQ(pipe.transfer(), cuda::Transfer::Mapped) << "the default transfer mode";
  int64_t copy_bytes = 0;
  for (cuda::Transfer t : {cuda::Transfer::Copy, cuda::Transfer::MappedIn, cuda::Transfer::Mapped}) {
    pipe.set_transfer(t);
    const std::string what = std::string(model) + " " + precision + " transfer " + cuda::transfer_name(t);
    const auto r = pipe.run(frames);
    const auto r_replay = pipe.run(frames);
    const auto r_crop = pipe.run(frames, &crops);
    cuda::StageTimes ts;
    const auto r_staged = pipe.run_profiled(frames, &ts);
    for (int b = 0; b < n; ++b) {
      expect_same_poses(r[b], batched[b], 0.0, what + " image " + std::to_string(b));
      expect_same_poses(r_replay[b], batched[b], 0.0, what + " replay, image " + std::to_string(b));
      expect_same_poses(r_crop[b], cropped[b], 0.0, what + " crop, image " + std::to_string(b));
      expect_same_poses(r_staged[b], batched[b], 0.0, what + " staged, image " + std::to_string(b));
    }
    // Copy runs first: the mapped modes never read more than it uploads (they run as Copy
    // where they would).
    if (t == cuda::Transfer::Copy) copy_bytes = ts.upload_bytes;
    else EXPECT_LE(ts.upload_bytes, copy_bytes) << what;
  }
  std::printf("[pipeline] %s %s batch %d: upload %.3f preprocess %.3f inference %.3f decode %.3f download %.3f total %.3f ms\n",
              model, precision, n, st.upload, st.preprocess, st.inference, st.decode, st.download, st.total);
}

TEST(CudaPipeline, LightningFp32) { POSERT_REQUIRE_GPU(); check_pipeline("movenet-lightning", "fp32"); }
TEST(CudaPipeline, ThunderFp16) { POSERT_REQUIRE_GPU(); check_pipeline("movenet-thunder", "fp16"); }
TEST(CudaPipeline, MultiPoseFp16) { POSERT_REQUIRE_GPU(); check_pipeline("movenet-multipose", "fp16"); }
TEST(CudaPipeline, PoseNetFp16) { POSERT_REQUIRE_GPU(); check_pipeline("posenet", "fp16"); }

// Which batches the mapped modes take: Full-HD frames, reading about a fifth of each frame's bytes;
// not frames wider than the mapped kernel stages, nor small frames that the resize enlarges (the
// kernel would read more than the frame holds). Every mode gives the same poses.
TEST(CudaPipeline, TransferModeChoice) {
  POSERT_REQUIRE_GPU();
  if (!test::have_model("movenet-lightning")) GTEST_SKIP() << "model movenet-lightning not installed";
  const ModelSpec& spec = find_model_spec("movenet-lightning");
  BuildOptions bo;
  bo.precision = "fp16";
  bo.max_batch = 2;
  auto engine = Engine::build(spec.name, test::models_dir(), bo);
  cuda::GpuPipeline pipe(engine, spec, DecodeOptions{});
  std::mt19937 rng(3);
  const Frame wide = random_frame(6000, 700, 0, false, rng), vga = random_frame(640, 480, 0, false, rng);
  const Frame hd1 = random_frame(1920, 1080, 0, true, rng), hd2 = random_frame(1920, 1080, 0, false, rng);
  const Frame tiny = random_frame(120, 90, 0, false, rng);
  // 256 -> 192: neighbouring output rows share source rows, each block reads its own: about 1.5x
  // the frame's bytes, so copy.
  const Frame square = random_frame(256, 256, 0, false, rng);
  ASSERT_FALSE(cuda::mapped_preprocess_fits(wide.w));
  ASSERT_TRUE(cuda::mapped_preprocess_fits(hd1.w));
  auto view = [](const Frame& f) { return cuda::FrameView{f.bytes.data(), f.w, f.h, 0, f.bgr}; };
  struct Case {
    const char* name;
    std::vector<cuda::FrameView> batch;
    bool mapped;  // whether the mapped modes should run it mapped
  };
  const Case cases[] = {{"wide + VGA", {view(vga), view(wide)}, false},
                        {"two Full-HD", {view(hd1), view(hd2)}, true},
                        {"tiny", {view(tiny)}, false},
                        {"256x256", {view(square)}, false}};
  for (const Case& c : cases) {
    int64_t frame_bytes = 0;
    for (const auto& f : c.batch) frame_bytes += static_cast<int64_t>(f.width) * f.height * 3;
    pipe.set_transfer(cuda::Transfer::Copy);
    const auto want = pipe.run(c.batch);
    for (cuda::Transfer t : {cuda::Transfer::MappedIn, cuda::Transfer::Mapped}) {
      pipe.set_transfer(t);
      cuda::StageTimes ts;
      const auto got = pipe.run(c.batch), staged = pipe.run_profiled(c.batch, &ts);
      const std::string what = std::string(c.name) + ", " + cuda::transfer_name(t);
      for (size_t b = 0; b < c.batch.size(); ++b) {
        expect_same_poses(got[b], want[b], 0.0, what + " item " + std::to_string(b));
        expect_same_poses(staged[b], want[b], 0.0, what + " staged, item " + std::to_string(b));
      }
      EXPECT_EQ(pipe.last_transfer(), c.mapped ? t : cuda::Transfer::Copy) << what;
      if (c.mapped) EXPECT_LT(ts.upload_bytes, frame_bytes / 4) << what << ": only the sampled rows cross PCIe";
      else EXPECT_GE(ts.upload_bytes, frame_bytes) << what << ": ran with Copy";
    }
  }
}

// The CUDA detector (what `posert run --backend cuda` uses) against the CPU detector on real
// photos, through detect() and through detect_batch() with a BGR pitched frame and a crop: fp32
// keypoints of confident poses within 0.05 model-input pixels.
TEST(CudaPipeline, DetectorMatchesCpuBackend) {
  POSERT_REQUIRE_GPU();
  if (!test::have_model("movenet-lightning")) GTEST_SKIP() << "model movenet-lightning not installed";
  DetectorOptions o;
  o.model = "movenet-lightning";
  o.models_dir = test::models_dir();
  o.backend = "cpu";
  Detector cpu(o);
  o.backend = "cuda";
  o.precision = "fp32";
  o.max_batch = 3;
  o.engine_cache_dir = test::temp_dir();
  Detector gpu(o);
  EXPECT_EQ(gpu.max_batch(), 3);
  auto compare = [](const std::vector<Pose>& a, const std::vector<Pose>& b, double scale, const std::string& what) {
    ASSERT_EQ(a.size(), 1u) << what;
    ASSERT_EQ(b.size(), 1u) << what;
    for (size_t k = 0; k < a[0].keypoints.size(); ++k) {
      if (a[0].keypoints[k].score < 0.5f) continue;
      EXPECT_NEAR(b[0].keypoints[k].x, a[0].keypoints[k].x, 0.05 * scale) << what << " kp " << k;
      EXPECT_NEAR(b[0].keypoints[k].y, a[0].keypoints[k].y, 0.05 * scale) << what << " kp " << k;
    }
  };
  for (const auto& im : photos()) {
    const double scale = static_cast<double>(std::max(im.width, im.height)) / 192;
    compare(cpu.detect(im.rgb.data(), im.width, im.height), gpu.detect(im.rgb.data(), im.width, im.height), scale, "detect");
    const int pitch = im.width * 3 + 5;
    std::vector<uint8_t> bgr(static_cast<size_t>(pitch) * im.height, 0);
    for (int y = 0; y < im.height; ++y)
      for (int x = 0; x < im.width; ++x)
        for (int c = 0; c < 3; ++c)
          bgr[static_cast<size_t>(y) * pitch + x * 3 + 2 - c] = im.rgb[(static_cast<size_t>(y) * im.width + x) * 3 + c];
    FrameRef plain{im.rgb.data(), im.width, im.height};
    FrameRef swapped{bgr.data(), im.width, im.height, pitch, true};
    FrameRef crop = plain;
    crop.crop_x = im.width / 6;
    crop.crop_y = -im.height / 10;
    crop.crop_w = crop.crop_h = std::max(im.width, im.height) * 3 / 4;
    const std::vector<FrameRef> batch{plain, swapped, crop};
    const auto a = cpu.detect_batch(batch), b = gpu.detect_batch(batch);
    compare(a[0], b[0], scale, "batch plain");
    compare(a[1], b[1], scale, "batch BGR");
    compare(a[2], b[2], static_cast<double>(crop.crop_w) / 192, "batch crop");
  }
  EXPECT_THROW(gpu.detect_batch(std::vector<FrameRef>(4, FrameRef{photos()[0].rgb.data(), 8, 8})), Error);

  // Frames written into the pinned upload buffer (frame_buffer) give the bytes of the same frames
  // passed from ordinary memory; a slot frame in a batch of another frame size is refused.
  const auto all = photos();  // by value: an element of the temporary would dangle
  const auto& im = all.at(0);
  std::vector<FrameRef> slots;
  for (int i = 0; i < 3; ++i) {
    uint8_t* p = gpu.frame_buffer(i, im.width, im.height);
    std::copy(im.rgb.begin(), im.rgb.end(), p);
    slots.push_back(FrameRef{p, im.width, im.height});
  }
  const auto from_slots = gpu.detect_batch(slots);
  const auto from_host = gpu.detect_batch(std::vector<FrameRef>(3, FrameRef{im.rgb.data(), im.width, im.height}));
  ASSERT_EQ(from_slots.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(from_slots[i].size(), from_host[i].size());
    for (size_t k = 0; k < from_host[i][0].keypoints.size(); ++k) {
      EXPECT_EQ(from_slots[i][0].keypoints[k].x, from_host[i][0].keypoints[k].x) << "item " << i << " kp " << k;
      EXPECT_EQ(from_slots[i][0].keypoints[k].y, from_host[i][0].keypoints[k].y) << "item " << i << " kp " << k;
      EXPECT_EQ(from_slots[i][0].keypoints[k].score, from_host[i][0].keypoints[k].score) << "item " << i << " kp " << k;
    }
  }
  uint8_t* p1 = gpu.frame_buffer(1, im.width, im.height);
  std::vector<uint8_t> small(static_cast<size_t>(64) * 48 * 3, 100);
  EXPECT_THROW(gpu.detect_batch({FrameRef{small.data(), 64, 48}, FrameRef{p1, im.width, im.height}}), Error);
  EXPECT_THROW(gpu.frame_buffer(3, im.width, im.height), Error);  // beyond max_batch
}

#else
TEST(CudaPipeline, NeedsCudaBuild) { GTEST_SKIP() << "no GPU test: this build has no CUDA backend"; }
#endif

}  // namespace
}  // namespace posert
