// posert bench --stage e2e: the GPU pipeline from host frames to host poses.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <random>

#include "engine/cuda/device_engine.h"
#include "engine/cuda/gpu_timing.h"
#include "pipeline/cuda/gpu_pipeline.h"
#include "pipeline/pipeline_bench.h"

namespace posert {

E2eBenchReport run_e2e_bench(const E2eBenchOptions& opt) {
  std::string why;
  if (!cuda_available(&why)) throw Error("--stage e2e runs on a GPU only: " + why);
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
    std::vector<cuda::Transfer> modes;
    for (const auto& t : opt.transfers) modes.push_back(cuda::parse_transfer(t, "transfer mode"));
    const size_t M = modes.size();
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
    for (int i = 0; i < opt.warmup; ++i)
      for (auto t : modes) {
        pipe.set_transfer(t);
        pipe.run(sets[i % kSets]);
      }
    // The modes alternate run by run, so a drift of the machine shows in all of them alike.
    std::vector<std::vector<double>> gpu(M), wall(M), pinned_wall(M), pinned_gpu(M);
    std::vector<std::vector<double>> h_stage(M), h_launch(M), h_wait(M), h_results(M);
    for (int i = 0; i < iters; ++i)
      for (size_t m = 0; m < M; ++m) {
        pipe.set_transfer(modes[m]);
        const auto t0 = std::chrono::steady_clock::now();
        pipe.run(sets[i % kSets]);
        wall[m].push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        gpu[m].push_back(pipe.last_gpu_ms());
      }
    // Frames written into the pinned upload buffer beforehand (not timed: a capture or decode
    // stage would have put them there), then the same call.
    std::vector<cuda::FrameView> in_place(b);
    for (int i = 0; i < iters; ++i)
      for (size_t m = 0; m < M; ++m) {
        for (int k = 0; k < b; ++k) {
          uint8_t* slot = pipe.frame_slot(k, opt.width, opt.height);
          const cuda::FrameView& src = sets[i % kSets][k];
          std::memcpy(slot, src.pixels, static_cast<size_t>(opt.width) * opt.height * 3);
          in_place[k] = src;
          in_place[k].pixels = slot;
        }
        pipe.set_transfer(modes[m]);
        const auto t0 = std::chrono::steady_clock::now();
        pipe.run(in_place);
        pinned_wall[m].push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        pinned_gpu[m].push_back(pipe.last_gpu_ms());
        const cuda::HostTimes h = pipe.last_host_times();
        h_stage[m].push_back(h.stage);
        h_launch[m].push_back(h.launch);
        h_wait[m].push_back(h.wait);
        h_results[m].push_back(h.results);
      }
    struct Stages {
      std::vector<double> up, pre, inf, dec, down, tot;
      int64_t up_bytes = 0, down_bytes = 0;
      bool fell_back = false;  // ran as copy (frames too wide, or mapped reads over the frame bytes)
    };
    std::vector<Stages> st(M);
    for (int i = 0; i < std::min(iters, 100); ++i)
      for (size_t m = 0; m < M; ++m) {
        pipe.set_transfer(modes[m]);
        cuda::StageTimes t;
        pipe.run_profiled(sets[i % kSets], &t);
        st[m].up.push_back(t.upload);
        st[m].pre.push_back(t.preprocess);
        st[m].inf.push_back(t.inference);
        st[m].dec.push_back(t.decode);
        st[m].down.push_back(t.download);
        st[m].tot.push_back(t.total);
        st[m].up_bytes = t.upload_bytes;
        if (pipe.last_transfer() != modes[m]) st[m].fell_back = true;
        st[m].down_bytes = t.download_bytes;
      }
    for (size_t m = 0; m < M; ++m) {
      E2eBenchRow row;
      row.batch = b;
      row.transfer = std::string(cuda::transfer_name(modes[m])) + (st[m].fell_back ? ">copy" : "");
      row.gpu_p50_ms = cuda::percentile(gpu[m], 0.5);
      row.gpu_p99_ms = cuda::percentile(gpu[m], 0.99);
      row.wall_p50_ms = cuda::percentile(wall[m], 0.5);
      row.wall_p99_ms = cuda::percentile(wall[m], 0.99);
      row.images_per_s = b / (row.wall_p50_ms / 1000.0);
      row.pinned_wall_p50_ms = cuda::percentile(pinned_wall[m], 0.5);
      row.pinned_wall_p99_ms = cuda::percentile(pinned_wall[m], 0.99);
      row.pinned_gpu_p50_ms = cuda::percentile(pinned_gpu[m], 0.5);
      row.pinned_stage_ms = cuda::percentile(h_stage[m], 0.5);
      row.pinned_launch_ms = cuda::percentile(h_launch[m], 0.5);
      row.pinned_wait_ms = cuda::percentile(h_wait[m], 0.5);
      row.pinned_results_ms = cuda::percentile(h_results[m], 0.5);
      row.upload_ms = cuda::percentile(st[m].up, 0.5);
      row.preprocess_ms = cuda::percentile(st[m].pre, 0.5);
      row.inference_ms = cuda::percentile(st[m].inf, 0.5);
      row.decode_ms = cuda::percentile(st[m].dec, 0.5);
      row.download_ms = cuda::percentile(st[m].down, 0.5);
      row.staged_total_ms = cuda::percentile(st[m].tot, 0.5);
      row.upload_bytes = st[m].up_bytes;
      row.download_bytes = st[m].down_bytes;
      r.rows.push_back(row);
    }
  }
  return r;
}

}  // namespace posert
