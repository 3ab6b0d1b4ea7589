// The CPU half of posert bench --stage decode: the optimized CPU decoder timed on the bench's
// random heads, per batch size. The CUDA bench (cuda/decode_bench.cpp) fills its CPU columns
// with it; with --backend cpu it is the whole bench, on machines without a GPU.
#include <algorithm>
#include <cstdio>

#include "pipeline/pipeline_bench.h"
#include "pose/cpu_decode.h"
#include "pose/decode_bench.h"
#include "pose/heatmap_decode.h"

namespace posert {

namespace {

// CPU runs: the requested count, or as many as fit in ~5 s (at least 5, at most 50).
int cpu_runs(const DecodeBenchOptions& o, double one_run_ms) {
  if (o.iters > 0) return o.iters;
  return std::clamp(static_cast<int>(5000.0 / std::max(one_run_ms, 1e-3)), 5, 50);
}

}  // namespace

HeatmapDecodeParams decode_bench_heatmap_params(const DecodeBenchOptions& o) {
  HeatmapDecodeParams hp;
  hp.out_h = o.in_h;
  hp.out_w = o.in_w;
  hp.top_k = o.top_k;
  return hp;
}

uint32_t decode_bench_seed(int batch) { return 17 + static_cast<uint32_t>(batch); }

void describe_decode_bench(const DecodeBenchOptions& o, DecodeBenchReport& r) {
  if (o.model == "heatmap") {
    check_heatmap_params(decode_bench_heatmap_params(o), o.hm_h, o.hm_w, o.keypoints);
    r.what = "generic heatmap decoder, " + std::to_string(o.keypoints) + " heatmaps of " + std::to_string(o.hm_h) + "x" +
             std::to_string(o.hm_w) + " upsampled to " + std::to_string(o.in_h) + "x" + std::to_string(o.in_w) +
             ", NMS 3x3, quadratic refinement, top-" + std::to_string(o.top_k);
    r.cpu_threads = CpuHeatmapDecoder(o.threads).threads();
  } else {
    const ModelSpec& spec = find_model_spec(o.model);
    r.what = spec.name + " decoder (heads of the model's shapes)";
    r.cpu_threads = CpuPoseDecoder(spec, DecodeOptions{}, o.threads).threads();
  }
}

void time_cpu_decoder(const DecodeBenchOptions& o, int n, DecodeBenchRow& row) {
  const uint32_t seed = decode_bench_seed(n);
  DecodeTiming cpu;
  if (o.model == "heatmap") {
    const HeatmapDecodeParams hp = decode_bench_heatmap_params(o);
    const DecodeTiming probe = bench_cpu_heatmap_decode(n, o.hm_h, o.hm_w, o.keypoints, hp, o.threads, 0, 1, seed);
    cpu = bench_cpu_heatmap_decode(n, o.hm_h, o.hm_w, o.keypoints, hp, o.threads, o.warmup,
                                   cpu_runs(o, probe.median_ms), seed);
  } else {
    const ModelSpec& spec = find_model_spec(o.model);
    const DecodeOptions dopt{};
    const DecodeTiming probe = bench_cpu_pose_decode(spec, dopt, n, o.threads, 0, 1, seed);
    cpu = bench_cpu_pose_decode(spec, dopt, n, o.threads, o.warmup, cpu_runs(o, probe.median_ms), seed);
  }
  row.cpu_p50_ms = cpu.median_ms;
  row.cpu_p99_ms = cpu.p99_ms;
  row.cpu_runs = static_cast<int>(cpu.run_ms.size());
}

DecodeBenchReport run_cpu_decode_bench(const DecodeBenchOptions& o) {
  DecodeBenchReport r;
  describe_decode_bench(o, r);
  for (int n : o.batches) {
    std::fprintf(stderr, "decode bench (CPU): batch %d\n", n);
    DecodeBenchRow row;
    row.batch = n;
    time_cpu_decoder(o, n, row);
    r.rows.push_back(row);
  }
  return r;
}

}  // namespace posert
