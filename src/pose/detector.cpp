// Detector implementation. CPU backend: import -> reference executor cut at the heads -> the
// optimized CPU decoder (cpu_decode.h). CUDA backend: the optimized engine (built once per GPU and cached, or loaded from a
// file) runs inside the GPU pipeline (src/pipeline/cuda): upload, preprocessing kernel, engine and
// GPU decoder on one stream in one CUDA graph, so only the poses come back. Both map poses back
// through the letterbox to image coordinates.
#include "posert/detector.h"

#include <cstdlib>
#include <filesystem>
#include <unistd.h>

#include "engine/ref_executor.h"
#include "import/tfjs/tfjs_importer.h"
#include "pipeline/transfer.h"
#include "pose/cpu_decode.h"
#include "pose/model_spec.h"
#include "pose/preprocess.h"
#include "posert/engine.h"
#if POSERT_HAVE_CUDA
#include "pipeline/cuda/gpu_pipeline.h"
#endif

namespace posert {

namespace fs = std::filesystem;

std::string default_models_dir() {
  if (const char* m = std::getenv("POSERT_MODELS"); m && *m) return m;
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) {
    buf[n] = '\0';
    const fs::path cand = fs::path(buf).parent_path() / ".." / ".." / "models";
    std::error_code ec;
    if (fs::is_directory(cand, ec)) return fs::weakly_canonical(cand, ec).string();
  }
  return "models";
}

namespace {

std::string default_engine_cache() {
  if (const char* c = std::getenv("POSERT_ENGINE_CACHE"); c && *c) return c;
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/posert";
  return ".posert-cache";
}

}  // namespace

struct Detector::Impl {
  const ModelSpec* spec = nullptr;
  DecodeOptions decode;
  // CPU backend
  Graph graph;
  std::unique_ptr<CpuPoseDecoder> cpu_decoder;  // the optimized CPU decoder (same poses as decode_heads)
  std::vector<uint8_t> item;                    // one decoded item (PoseItemLayout)
  std::vector<std::vector<uint8_t>> frames;     // frame_buffer's buffers
  // CUDA backend
  std::shared_ptr<Engine> engine;
#if POSERT_HAVE_CUDA
  std::unique_ptr<cuda::GpuPipeline> pipeline;
#endif
};

Detector::Detector(const DetectorOptions& opt) : impl_(std::make_unique<Impl>()) {
  if (opt.backend != "cpu" && opt.backend != "cuda")
    throw Error("backend '" + opt.backend + "' is unknown (cpu or cuda)", ErrorKind::Usage);
  if (!opt.engine_path.empty() && opt.backend != "cuda")
    throw Error("an engine file needs --backend cuda", ErrorKind::Usage);
  [[maybe_unused]] const cuda::Transfer transfer = cuda::parse_transfer(opt.transfer, "transfer mode");
  if (!opt.model.empty()) impl_->spec = &find_model_spec(opt.model);
  impl_->decode.min_pose_score = opt.min_pose_score;
  const std::string dir = opt.models_dir.empty() ? default_models_dir() : opt.models_dir;

  if (opt.backend == "cuda") {
    std::string why;
    // An engine file is read and checked first, so a bad file is reported as such anywhere.
    if (opt.engine_path.empty() && !cuda_available(&why)) throw Error("--backend cuda: " + why + "; use --backend cpu");
    if (!opt.engine_path.empty()) {
      impl_->engine = Engine::load(opt.engine_path);
      if (!impl_->spec) impl_->spec = &find_model_spec(impl_->engine->model());
      if (impl_->engine->model() != impl_->spec->name)
        throw Error("engine file '" + opt.engine_path + "' holds model " + impl_->engine->model() + ", not " + impl_->spec->name,
                    ErrorKind::Usage);
      if (opt.max_batch < 1 || opt.max_batch > impl_->engine->max_batch())
        throw Error("engine file '" + opt.engine_path + "' was built for batches up to " +
                        std::to_string(impl_->engine->max_batch()) + ", not " + std::to_string(opt.max_batch) +
                        " (posert build --max-batch N)",
                    ErrorKind::Usage);
    } else {
      if (!impl_->spec) throw Error("no model given", ErrorKind::Usage);
      // One engine per (model, precision, GPU); rebuilt if the cached file cannot run here.
      const std::string cache = opt.engine_cache_dir.empty() ? default_engine_cache() : opt.engine_cache_dir;
      std::error_code ec;
      fs::create_directories(cache, ec);
      if (opt.max_batch < 1 || opt.max_batch > 4096)
        throw Error("max batch " + std::to_string(opt.max_batch) + " is out of range 1..4096", ErrorKind::Usage);
      const std::string path =
          cache + "/" + impl_->spec->name + "-" + opt.precision + "-b" + std::to_string(opt.max_batch) + ".engine";
      try {
        if (fs::exists(path)) impl_->engine = Engine::load(path);
      } catch (const Error& e) {
        if (opt.verbose) std::fprintf(stderr, "rebuilding cached engine: %s\n", e.what());
      }
      if (!impl_->engine) {
        if (opt.verbose) std::fprintf(stderr, "building a CUDA engine for %s (%s); cached in %s\n", impl_->spec->name.c_str(),
                                      opt.precision.c_str(), path.c_str());
        BuildOptions bo;
        bo.precision = opt.precision;
        bo.max_batch = opt.max_batch;
        bo.timing_cache = cache + "/timing.cache";
        bo.verbose = opt.verbose;
        impl_->engine = Engine::build(impl_->spec->name, dir, bo);
        impl_->engine->save(path);
      }
    }
#if POSERT_HAVE_CUDA
    impl_->pipeline = std::make_unique<cuda::GpuPipeline>(impl_->engine, *impl_->spec, impl_->decode);
    impl_->pipeline->set_transfer(transfer);
#endif
    return;
  }

  if (!impl_->spec) throw Error("no model given (--model NAME)", ErrorKind::Usage);
  const std::string json = (fs::path(dir) / (impl_->spec->file_stem + ".json")).string();
  if (!fs::exists(json))
    throw Error("model '" + opt.model + "' is not installed: " + json +
                " not found. Install the models with scripts/fetch_models.sh (or scripts/setup.sh), "
                "or point POSERT_MODELS at the folder that holds them");
  ImportOptions io;
  io.input_size = impl_->spec->input_size;
  impl_->graph = import_tfjs(json, io);
  for (const auto& h : impl_->spec->head_values)
    if (impl_->graph.find_value(h) < 0)
      throw Error("model file " + json + " has no tensor '" + h + "' where PoseRT cuts the " + opt.model +
                  " graph: is it the right model file?");
  impl_->cpu_decoder = std::make_unique<CpuPoseDecoder>(*impl_->spec, impl_->decode);
  impl_->item.resize(impl_->cpu_decoder->layout().item_bytes());
}

Detector::~Detector() = default;

const std::string& Detector::model_name() const { return impl_->spec->name; }
int Detector::input_size() const { return impl_->spec->input_size; }

int Detector::max_batch() const { return impl_->engine ? impl_->engine->max_batch() : 1 << 30; }

uint8_t* Detector::frame_buffer(int item, int width, int height) {
  if (width <= 0 || height <= 0 || width > 32768 || height > 32768)
    throw Error("frame_buffer: frame of " + std::to_string(width) + "x" + std::to_string(height) + " is empty or too large");
#if POSERT_HAVE_CUDA
  if (impl_->pipeline) return impl_->pipeline->frame_slot(item, width, height);
#endif
  constexpr int kMaxCpuFrames = 4096;
  if (item < 0 || item >= kMaxCpuFrames)
    throw Error("frame_buffer: item " + std::to_string(item) + " is outside 0.." + std::to_string(kMaxCpuFrames - 1));
  if (impl_->frames.size() <= static_cast<size_t>(item)) impl_->frames.resize(static_cast<size_t>(item) + 1);
  auto& f = impl_->frames[static_cast<size_t>(item)];
  const size_t bytes = static_cast<size_t>(width) * height * 3;
  if (f.size() < bytes) f.resize(bytes);
  return f.data();
}

std::vector<Pose> Detector::detect(const uint8_t* rgb, int width, int height) {
  if (!rgb || width <= 0 || height <= 0) throw Error("detect: empty image");
  FrameRef f;
  f.pixels = rgb;
  f.width = width;
  f.height = height;
  return std::move(detect_batch({f}).at(0));
}

std::vector<std::vector<Pose>> Detector::detect_batch(const std::vector<FrameRef>& frames) {
  if (frames.empty()) return {};
  std::vector<CropRect> crops;
  bool any_crop = false;
  for (const auto& f : frames) {
    if (!f.pixels || f.width <= 0 || f.height <= 0 || f.width > 32768 || f.height > 32768)
      throw Error("detect: frame of " + std::to_string(f.width) + "x" + std::to_string(f.height) + " is empty or too large");
    if (f.pitch != 0 && f.pitch < f.width * 3) throw Error("detect: frame pitch is smaller than width * 3");
    if (f.crop_w < 0 || f.crop_h < 0 || (f.crop_w == 0) != (f.crop_h == 0))
      throw Error("detect: crop " + std::to_string(f.crop_w) + "x" + std::to_string(f.crop_h) + " is not a rectangle");
    // Crop offsets are added to pixel indices in int arithmetic: bounded, as the sizes are.
    if (f.crop_w > 65536 || f.crop_h > 65536 || std::abs(f.crop_x) > 65536 || std::abs(f.crop_y) > 65536)
      throw Error("detect: crop " + std::to_string(f.crop_w) + "x" + std::to_string(f.crop_h) + " at " +
                  std::to_string(f.crop_x) + "," + std::to_string(f.crop_y) + " is too large or too far out (limit 65536)");
    any_crop |= f.crop_w > 0;
    crops.push_back(f.crop_w > 0 ? CropRect{f.crop_x, f.crop_y, f.crop_w, f.crop_h}
                                 : letterbox_crop(make_letterbox(f.width, f.height, impl_->spec->input_size)));
  }
#if POSERT_HAVE_CUDA
  if (impl_->pipeline) {
    if (static_cast<int>(frames.size()) > impl_->pipeline->max_batch())
      throw Error("detect: " + std::to_string(frames.size()) + " frames, but the engine's max batch is " +
                      std::to_string(impl_->pipeline->max_batch()) + " (DetectorOptions::max_batch)",
                  ErrorKind::Usage);
    std::vector<cuda::FrameView> views;
    for (const auto& f : frames) {
      cuda::FrameView v;
      v.pixels = f.pixels;
      v.width = f.width;
      v.height = f.height;
      v.pitch = f.pitch;
      v.bgr = f.bgr;
      views.push_back(v);
    }
    return impl_->pipeline->run(views, any_crop ? &crops : nullptr);
  }
#endif
  std::vector<std::vector<Pose>> out;
  const DType dt = impl_->spec->encoding == InputEncoding::RoundedInt32 ? DType::I32 : DType::F32;
  RefExecutor exec(impl_->graph);
  for (size_t i = 0; i < frames.size(); ++i) {
    const FrameRef& f = frames[i];
    // Packed RGB for the CPU preprocessing (a copy only when the frame is pitched or BGR).
    std::vector<uint8_t> packed;
    const uint8_t* rgb = f.pixels;
    const size_t row = static_cast<size_t>(f.width) * 3;
    if ((f.pitch != 0 && static_cast<size_t>(f.pitch) != row) || f.bgr) {
      packed.resize(row * f.height);
      for (int y = 0; y < f.height; ++y) {
        const uint8_t* src = f.pixels + static_cast<size_t>(y) * (f.pitch ? f.pitch : row);
        uint8_t* dst = packed.data() + y * row;
        for (size_t x = 0; x < row; x += 3) {
          dst[x] = src[x + (f.bgr ? 2 : 0)];
          dst[x + 1] = src[x + 1];
          dst[x + 2] = src[x + (f.bgr ? 0 : 2)];
        }
      }
      rgb = packed.data();
    }
    Tensor input(dt, {1, impl_->spec->input_size, impl_->spec->input_size, 3});
    preprocess_crop_into(rgb, f.width, f.height, crops[i], impl_->spec->encoding, input, 0);
    std::vector<Tensor> heads = exec.run({input}, impl_->spec->head_values);
    std::vector<const float*> ph;
    const CpuPoseDecoder& dec = *impl_->cpu_decoder;
    for (size_t k = 0; k < heads.size(); ++k) {
      // The decoder reads raw [1, G, G, C] buffers: a model whose heads differ is refused here.
      const int64_t want = static_cast<int64_t>(dec.grid()) * dec.grid() * dec.head_channels(static_cast<int>(k));
      if (heads[k].dtype() != DType::F32 || heads[k].numel() != want)
        throw Error("model " + impl_->spec->name + ": head '" + impl_->spec->head_values[k] + "' has shape " +
                    shape_str(heads[k].shape()) + ", the decoder expects " + std::to_string(want) + " float32 values");
      ph.push_back(heads[k].data<float>());
    }
    const CropTransform tf = crop_transform(crops[i], impl_->spec->input_size, impl_->spec->input_size);
    impl_->cpu_decoder->decode(ph, 1, &tf, impl_->item.data());
    out.push_back(poses_from_item(impl_->item.data(), impl_->cpu_decoder->max_poses()));
  }
  return out;
}

}  // namespace posert
