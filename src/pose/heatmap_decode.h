// Generic heatmap decoder, as used by SimpleBaseline/HRNet-style top-down models: K heatmaps of
// h x w cells per batch item are upsampled to the network input size, peaks are found by
// local-maximum NMS, refined to sub-pixel positions by a quadratic fit, thresholded, and the
// top-k peaks of each keypoint are kept, mapped to frame pixels through the item's crop.
//
// Exact definition (the CPU reference, the optimized CPU decoder and the CUDA decoder all follow
// it; float32 arithmetic in this order, no fused multiply-add):
// 1. Upsample: U[y][x][k] for y < out_h, x < out_w from H[h][w][k] (NHWC, float32), bilinear
//    with half-pixel centres as TF ResizeBilinear(half_pixel_centers=true):
//      sy = (y + 0.5f) * (h / (float)out_h) - 0.5f; y0 = max(floor(sy), 0); y1 = min(ceil(sy), h - 1);
//      fy = sy - floor(sy); likewise x; then
//      top = H[y0][x0] + (H[y0][x1] - H[y0][x0]) * fx; bot = H[y1][x0] + (H[y1][x1] - H[y1][x0]) * fx;
//      U = top + (bot - top) * fy.
// 2. Peak: (y, x) is a peak of keypoint k when U[y][x][k] >= threshold and U[y][x][k] equals the
//    maximum of U[.][.][k] over the (2r+1) x (2r+1) window around it, clipped at the borders
//    (r = nms_radius). NaN is never a peak, and NaN neighbours never suppress one (the rule is "no
//    window value is greater").
// 3. Refinement: dx = 0 at the left/right border; otherwise with L = U[y][x-1], C = U[y][x],
//    R = U[y][x+1], den = L - 2C + R: dx = den < 0 ? clamp(0.5f * (L - R) / den, -0.5f, 0.5f) : 0.
//    dy likewise from the rows above and below. (Heatmaps holding infinities give a NaN dx here,
//    which the decoders need not agree on; finite heatmaps are the contract.)
// 4. Position in model-input pixels (pixel i spans [i, i+1)): (x + 0.5f + dx, y + 0.5f + dy); then
//    frame pixels through the item's CropTransform. The score is U at the peak (unrefined).
// 5. Per keypoint, peaks sorted by score descending, ties by raster index y * out_w + x ascending;
//    the first top_k are kept.
#pragma once
#include <cstdint>
#include <vector>

#include "pose/pose_record.h"

namespace posert {

struct HeatmapDecodeParams {
  int out_h = 0, out_w = 0;  // network input size (the upsampling target)
  int nms_radius = 1;        // window (2r+1)^2, 1..3
  float threshold = 0.1f;    // minimum peak score
  int top_k = 1;             // peaks kept per keypoint, 1..kMaxHeatmapPeaks
};
inline constexpr int kMaxHeatmapPeaks = 16;

struct HeatmapPeak {
  float x, y, score;  // frame pixels
};

// Results for n items x K keypoints: peaks[(b * K + k) * top_k + i] for i < counts[b * K + k].
struct HeatmapPeaks {
  int n = 0, k = 0, top_k = 0;
  std::vector<HeatmapPeak> peaks;
  std::vector<int32_t> counts;
};

// Throws posert::Error on bad parameters (sizes <= 0, radius or top_k out of range).
void check_heatmap_params(const HeatmapDecodeParams& p, int h, int w, int k);

// Plain reference (the oracle): heatmaps [n, h, w, k] float32, one CropTransform per item.
HeatmapPeaks decode_heatmaps_reference(const float* heatmaps, int n, int h, int w, int k,
                                       const CropTransform* transforms, const HeatmapDecodeParams& p);

}  // namespace posert
