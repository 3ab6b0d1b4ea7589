// Benchmarks of the pose pipeline (posert bench --stage e2e|decode):
// - e2e: host uint8 frames in, host poses out through the GPU pipeline (one CUDA graph), as CUDA
//   event time of the whole graph and host wall time of the call, median and p99, plus the
//   stage-by-stage breakdown (upload, preprocess, inference, decode, download) and the bytes that
//   cross PCIe;
// - decode: the optimized CPU decoder against the CUDA decoder on the same random heads, per
//   batch size, for a model's decoder or the generic heatmap decoder; or the CPU decoder alone.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "pose/heatmap_decode.h"

namespace posert {

struct E2eBenchOptions {
  std::string model, models_dir, precision = "fp16", timing_cache;
  std::vector<int> batches{1};
  int iters = 0;  // 0: 300 for batch <= 8, else 100
  int warmup = 30;
  int width = 640, height = 480;  // random frames
  // GPU pipeline transfer modes to measure ("copy", "mapped-in", "mapped"; see
  // cuda::Transfer), alternated run by run on one pipeline.
  std::vector<std::string> transfers{"copy", "mapped-in", "mapped"};
};

struct E2eBenchRow {
  int batch = 0;
  std::string transfer;
  double gpu_p50_ms = 0, gpu_p99_ms = 0;    // CUDA events around the pipeline graph (upload .. download)
  double wall_p50_ms = 0, wall_p99_ms = 0;  // host: staging copy + launch + sync + reading the poses
  // The same with the frames already in the pinned upload buffer (GpuPipeline::frame_slot, as a
  // capture or decode stage writing there would leave them): launch + sync + reading the poses.
  double pinned_wall_p50_ms = 0, pinned_wall_p99_ms = 0;
  double pinned_gpu_p50_ms = 0;  // CUDA events around the pipeline graph in those runs
  // Their host side, medians: staging (checks, mode), queueing the graph, waiting, reading the poses.
  double pinned_stage_ms = 0, pinned_launch_ms = 0, pinned_wait_ms = 0, pinned_results_ms = 0;
  double images_per_s = 0;                  // batch / wall p50
  // Medians of the stage-by-stage run (events between stages, no pipeline graph).
  double upload_ms = 0, preprocess_ms = 0, inference_ms = 0, decode_ms = 0, download_ms = 0, staged_total_ms = 0;
  int64_t upload_bytes = 0, download_bytes = 0;
};

struct E2eBenchReport {
  std::string gpu;
  std::vector<E2eBenchRow> rows;
};

E2eBenchReport run_e2e_bench(const E2eBenchOptions& opt);

struct DecodeBenchOptions {
  std::string model;  // a model name, or "heatmap" for the generic heatmap decoder
  std::vector<int> batches{1, 16, 64, 256};
  int iters = 0;   // 0: 50 for the CPU (at most 5 s per batch), 200 for the GPU
  int warmup = 3;
  int threads = 0;  // CPU decoder threads, 0: all cores
  // generic heatmap decoder: K heatmaps of hm_h x hm_w upsampled to in_h x in_w
  int hm_h = 64, hm_w = 48, keypoints = 17, in_h = 256, in_w = 192, top_k = 1;
};

struct DecodeBenchRow {
  int batch = 0;
  double cpu_p50_ms = 0, cpu_p99_ms = 0;
  double gpu_p50_ms = 0, gpu_p99_ms = 0;  // the decoder's kernels replayed as one CUDA graph, queued behind
                                          // other work (as the pipeline runs them after the engine)
  double gpu_idle_p50_ms = 0;             // the same graph launched on an idle stream (host launch included)
  double gpu_direct_p50_ms = 0;           // the same kernels launched one by one from the host
  int cpu_runs = 0, gpu_runs = 0;
};

struct DecodeBenchReport {
  std::string gpu, what;
  int cpu_threads = 0;
  double floor_p50_ms = 0, floor_idle_p50_ms = 0;  // a graph of one empty kernel, timed as the decoders are
  std::vector<DecodeBenchRow> rows;
};

// CPU decoder against CUDA decoder (needs a GPU and the CUDA backend).
DecodeBenchReport run_decode_bench(const DecodeBenchOptions& opt);
// The CPU decoder alone (any machine): the rows' CPU columns; the GPU ones stay 0.
DecodeBenchReport run_cpu_decode_bench(const DecodeBenchOptions& opt);

// Shared by both: the report's description and CPU thread count (checks the heatmap sizes), the
// heatmap decoder's parameters, the random heads' seed for a batch size, and a row's CPU columns.
void describe_decode_bench(const DecodeBenchOptions& opt, DecodeBenchReport& r);
HeatmapDecodeParams decode_bench_heatmap_params(const DecodeBenchOptions& opt);
uint32_t decode_bench_seed(int batch);
void time_cpu_decoder(const DecodeBenchOptions& opt, int batch, DecodeBenchRow& row);

}  // namespace posert
