// posert bench --stage e2e: the GPU pipeline from host frames to host poses.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <random>

#include "engine/cuda/device_engine.h"
#include "pipeline/cuda/gpu_pipeline.h"
#include "pipeline/pipeline_bench.h"

namespace posert {

namespace {

double pct(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1) + 0.5))];
}

}  // namespace

E2eBenchReport run_e2e_bench(const E2eBenchOptions& opt) {
  std::string why;
  if (!cuda_available(&why)) throw Error("--backend cuda: " + why);
  if (opt.width < 1 || opt.height < 1 || opt.width > 16384 || opt.height > 16384)
    throw Error("frame size " + std::to_string(opt.width) + "x" + std::to_string(opt.height) + " is out of range", ErrorKind::Usage);
  const ModelSpec& spec = find_model_spec(opt.model);
  E2eBenchReport r;
  const auto t = cuda::current_target();
  r.gpu = t.gpu_name + " (sm_" + std::to_string(t.cc_major) + std::to_string(t.cc_minor) + ")";
  // Four sets of random frames, rotated, so no run sees the previous run's frame.
  std::mt19937 rng(7);
  const int max_b = *std::max_element(opt.batches.begin(), opt.batches.end());
  constexpr int kSets = 4;
  std::vector<std::vector<uint8_t>> pixels(static_cast<size_t>(kSets) * max_b);
  for (auto& p : pixels) {
    p.resize(static_cast<size_t>(opt.width) * opt.height * 3);
    for (size_t i = 0; i < p.size(); i += 4) {
      const uint32_t v = rng();
      for (size_t k = 0; k < 4 && i + k < p.size(); ++k) p[i + k] = static_cast<uint8_t>(v >> (8 * k));
    }
  }
  for (int b : opt.batches) {
    // One engine per batch size, tuned for it, as the engine benchmark does.
    std::fprintf(stderr, "building the %s %s engine for batch %d\n", spec.name.c_str(), opt.precision.c_str(), b);
    BuildOptions bo;
    bo.precision = opt.precision;
    bo.max_batch = b;
    bo.timing_cache = opt.timing_cache;
    auto engine = Engine::build(spec.name, opt.models_dir, bo);
    cuda::GpuPipeline pipe(engine, spec, DecodeOptions{});
    pipe.set_timing(true);
    std::vector<std::vector<cuda::FrameView>> sets(kSets);
    for (int s = 0; s < kSets; ++s)
      for (int i = 0; i < b; ++i) {
        cuda::FrameView f;
        f.pixels = pixels[static_cast<size_t>(s) * max_b + i].data();
        f.width = opt.width;
        f.height = opt.height;
        sets[s].push_back(f);
      }
    const int iters = opt.iters > 0 ? opt.iters : (b <= 8 ? 300 : 100);
    for (int i = 0; i < opt.warmup; ++i) pipe.run(sets[i % kSets]);
    std::vector<double> gpu, wall;
    for (int i = 0; i < iters; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      pipe.run(sets[i % kSets]);
      wall.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      gpu.push_back(pipe.last_gpu_ms());
    }
    E2eBenchRow row;
    row.batch = b;
    row.gpu_p50_ms = pct(gpu, 0.5);
    row.gpu_p99_ms = pct(gpu, 0.99);
    row.wall_p50_ms = pct(wall, 0.5);
    row.wall_p99_ms = pct(wall, 0.99);
    row.images_per_s = b / (row.wall_p50_ms / 1000.0);
    // Frames written into the pinned upload buffer beforehand (not timed: a capture or decode
    // stage would have put them there), then the same call.
    std::vector<cuda::FrameView> in_place(b);
    std::vector<double> pinned_wall;
    for (int i = 0; i < iters; ++i) {
      for (int k = 0; k < b; ++k) {
        uint8_t* slot = pipe.frame_slot(k, opt.width, opt.height);
        const cuda::FrameView& src = sets[i % kSets][k];
        std::memcpy(slot, src.pixels, static_cast<size_t>(opt.width) * opt.height * 3);
        in_place[k] = src;
        in_place[k].pixels = slot;
      }
      const auto t0 = std::chrono::steady_clock::now();
      pipe.run(in_place);
      pinned_wall.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    row.pinned_wall_p50_ms = pct(pinned_wall, 0.5);
    row.pinned_wall_p99_ms = pct(pinned_wall, 0.99);
    std::vector<double> up, pre, inf, dec, down, tot;
    for (int i = 0; i < std::min(iters, 100); ++i) {
      cuda::StageTimes st;
      pipe.run_profiled(sets[i % kSets], &st);
      up.push_back(st.upload);
      pre.push_back(st.preprocess);
      inf.push_back(st.inference);
      dec.push_back(st.decode);
      down.push_back(st.download);
      tot.push_back(st.total);
      row.upload_bytes = st.upload_bytes;
      row.download_bytes = st.download_bytes;
    }
    row.upload_ms = pct(up, 0.5);
    row.preprocess_ms = pct(pre, 0.5);
    row.inference_ms = pct(inf, 0.5);
    row.decode_ms = pct(dec, 0.5);
    row.download_ms = pct(down, 0.5);
    row.staged_total_ms = pct(tot, 0.5);
    r.rows.push_back(row);
  }
  return r;
}

}  // namespace posert
