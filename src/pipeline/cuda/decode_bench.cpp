// posert bench --stage decode: the optimized CPU decoder against the CUDA decoder on the same
// random heads (src/pose/decode_bench.h makes them), per batch size. The GPU figure is the decode
// kernels alone on heads already in device memory (what the pipeline runs after the engine),
// captured once as a CUDA graph and replayed, as the pipeline's graph runs them, timed with CUDA
// events. In the pipeline the decoder's kernels are queued behind the engine's, so the GPU never
// waits for the host to launch them; the main figure reproduces that: a spin kernel keeps the
// stream busy while the first event, the graph and the last event are queued (the "queued"
// columns). Also reported: the same graph launched on an idle stream (its time then includes
// the host's launch call and the GPU's wake-up) and the kernels launched one by one from the host.
// The CPU figure is the multi-threaded decoder on heads in host memory (decode_bench_cpu.cpp).
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "engine/cuda/device_engine.h"
#include "engine/cuda/gpu_timing.h"
#include "kernels/cuda/cuda_kernels.h"
#include "pipeline/pipeline_bench.h"
#include "pose/cuda/gpu_decode.h"
#include "pose/decode_bench.h"
#include "posert/engine.h"

namespace posert {

namespace {

// Fills the row's GPU columns: graph replays and direct launches of fn().
template <class Fn>
void time_decoder(cudaStream_t s, int iters, DecodeBenchRow& row, Fn&& fn) {
  const auto [queued, idle] = cuda::time_graph(s, 10, iters, true, fn);
  const auto direct = cuda::time_events(s, 10, iters, false, fn);
  row.gpu_p50_ms = cuda::percentile(queued, 0.5);
  row.gpu_p99_ms = cuda::percentile(queued, 0.99);
  row.gpu_idle_p50_ms = cuda::percentile(idle, 0.5);
  row.gpu_direct_p50_ms = cuda::percentile(direct, 0.5);
  row.gpu_runs = iters;
}

}  // namespace

DecodeBenchReport run_decode_bench(const DecodeBenchOptions& o) {
  std::string why;
  if (!cuda_available(&why))
    throw Error("--stage decode compares the CPU decoder with the CUDA one and needs a GPU (--backend cpu times the CPU "
                "decoder alone): " + why);
  DecodeBenchReport r;
  describe_decode_bench(o, r);
  const auto t = cuda::current_target();
  r.gpu = t.gpu_name + " (sm_" + std::to_string(t.cc_major) + std::to_string(t.cc_minor) + ")";
  cudaStream_t s = nullptr;
  cuda::check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
  const int gpu_iters = o.iters > 0 ? o.iters : 200;
  const bool heatmap = o.model == "heatmap";
  const HeatmapDecodeParams hp = decode_bench_heatmap_params(o);
  {
    const auto [queued, idle] = cuda::time_graph(s, 10, gpu_iters, true, [&] { cuda::spin(0, s); });
    r.floor_p50_ms = cuda::percentile(queued, 0.5);
    r.floor_idle_p50_ms = cuda::percentile(idle, 0.5);
  }
  for (int n : o.batches) {
    std::fprintf(stderr, "decode bench: batch %d\n", n);
    DecodeBenchRow row;
    row.batch = n;
    time_cpu_decoder(o, n, row);
    const uint32_t seed = decode_bench_seed(n);
    const auto tf = random_transforms(n, seed);
    cuda::BenchBuffer d_tf(n * sizeof(CropTransform));
    cuda::check(cudaMemcpy(d_tf.p, tf.data(), n * sizeof(CropTransform), cudaMemcpyHostToDevice), "upload");
    if (heatmap) {
      const Tensor hm = random_heatmaps(n, o.hm_h, o.hm_w, o.keypoints, seed);
      cuda::BenchBuffer d_hm(hm.nbytes()), d_peaks(static_cast<size_t>(n) * o.keypoints * o.top_k * sizeof(HeatmapPeak)),
          d_counts(static_cast<size_t>(n) * o.keypoints * sizeof(int32_t));
      cuda::check(cudaMemcpy(d_hm.p, hm.raw(), hm.nbytes(), cudaMemcpyHostToDevice), "upload");
      cuda::check(cudaDeviceSynchronize(), "upload");  // pageable copies; `s` is non-blocking
      cuda::GpuHeatmapDecoder dec(n, o.hm_h, o.hm_w, o.keypoints, hp);
      time_decoder(s, gpu_iters, row, [&] {
        dec.enqueue(static_cast<const float*>(d_hm.p), n, static_cast<const CropTransform*>(d_tf.p),
                    static_cast<HeatmapPeak*>(d_peaks.p), static_cast<int32_t*>(d_counts.p), s);
      });
    } else {
      const ModelSpec& spec = find_model_spec(o.model);
      const DecodeOptions dopt{};
      const auto heads = random_pose_heads(spec, n, seed);
      std::vector<std::unique_ptr<cuda::BenchBuffer>> d_heads;
      std::vector<const float*> ptrs;
      for (const auto& h : heads) {
        d_heads.push_back(std::make_unique<cuda::BenchBuffer>(h.nbytes()));
        cuda::check(cudaMemcpy(d_heads.back()->p, h.raw(), h.nbytes(), cudaMemcpyHostToDevice), "upload");
        ptrs.push_back(static_cast<const float*>(d_heads.back()->p));
      }
      cuda::check(cudaDeviceSynchronize(), "upload");  // pageable copies; `s` is non-blocking
      cuda::GpuPoseDecoder dec(spec, n, dopt);
      cuda::BenchBuffer d_out(dec.output_bytes(n));
      time_decoder(s, gpu_iters, row, [&] { dec.enqueue(ptrs, n, static_cast<const CropTransform*>(d_tf.p), d_out.p, s); });
    }
    r.rows.push_back(row);
  }
  cudaStreamDestroy(s);
  return r;
}

}  // namespace posert
