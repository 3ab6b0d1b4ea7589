// CPU decode timing for `posert bench --stage decode`: random heads for a model (or random
// heatmaps for the generic decoder) at batch n, timed on the optimized CPU decoders (and, for
// comparison, on the reference decoders). CPU only; the CUDA bench can reuse the same inputs.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "pose/heatmap_decode.h"
#include "pose/model_spec.h"

namespace posert {

struct DecodeTiming {
  std::vector<double> run_ms;  // every timed run, in order
  double median_ms = 0, p99_ms = 0, mean_ms = 0;
};
// Fills median/p99/mean from run_ms.
void summarize(DecodeTiming& t);

// Head tensors [n, G, G, C] of `spec` in spec.head_values order, random (never all-zero) in the
// ranges the real heads take: sigmoid heads in [0, 1), regressions within a quarter grid, box
// scales up to half the grid, PoseNet logits in [-8, 2), offsets and displacements of a cell or two.
std::vector<Tensor> random_pose_heads(const ModelSpec& spec, int n, uint32_t seed);
// Heatmaps [n, h, w, k] in [0, 1).
Tensor random_heatmaps(int n, int h, int w, int k, uint32_t seed);
// n crop transforms (a letterbox-like scale and offset each).
std::vector<CropTransform> random_transforms(int n, uint32_t seed);

// The optimized CPU decoder (CpuPoseDecoder / CpuHeatmapDecoder with `threads`, 0 = all cores):
// `warmup` untimed runs, then `runs` timed runs of one batch each.
DecodeTiming bench_cpu_pose_decode(const ModelSpec& spec, const DecodeOptions& opt, int n, int threads, int warmup,
                                   int runs, uint32_t seed = 1);
DecodeTiming bench_cpu_heatmap_decode(int n, int h, int w, int k, const HeatmapDecodeParams& p, int threads,
                                      int warmup, int runs, uint32_t seed = 1);
// The reference decoders on the same inputs (decode_heads per item + mapping to frame pixels;
// decode_heatmaps_reference), single-threaded: the "before" of the optimized numbers.
DecodeTiming bench_reference_pose_decode(const ModelSpec& spec, const DecodeOptions& opt, int n, int warmup, int runs,
                                         uint32_t seed = 1);
DecodeTiming bench_reference_heatmap_decode(int n, int h, int w, int k, const HeatmapDecodeParams& p, int warmup,
                                            int runs, uint32_t seed = 1);

}  // namespace posert
