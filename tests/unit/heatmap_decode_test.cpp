// The generic heatmap decoder's reference against answers worked out by hand from
// heatmap_decode.h's definition: upsampling ratios 1 and 4, plateaus (ties), borders, the
// refinement clamp, NMS radius, threshold, top-k order, NaN, a quadratic bump whose vertex the
// refinement recovers exactly, transforms and the (item, keypoint) slot layout.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "pose/heatmap_decode.h"
#include "posert/error.h"

namespace posert {
namespace {

HeatmapDecodeParams params(int oh, int ow, int r, float thr, int top_k) {
  HeatmapDecodeParams p;
  p.out_h = oh;
  p.out_w = ow;
  p.nms_radius = r;
  p.threshold = thr;
  p.top_k = top_k;
  return p;
}

void expect_peak(const HeatmapPeaks& r, int slot, int i, float x, float y, float score) {
  const HeatmapPeak& p = r.peaks[static_cast<size_t>(slot * r.top_k + i)];
  EXPECT_EQ(p.x, x) << "slot " << slot << " peak " << i;
  EXPECT_EQ(p.y, y) << "slot " << slot << " peak " << i;
  EXPECT_EQ(p.score, score) << "slot " << slot << " peak " << i;
}

TEST(HeatmapDecodeReference, SinglePeakRatioOne) {
  // 3x3, ratio 1 (U = H): only the centre is a local max; dx from (0.2, 1, 0.6): den = -1.2,
  // 0.5 * (-0.4) / -1.2 = 1/6; dy = 0 (equal rows above and below).
  const float H[9] = {0.1f, 0.4f, 0.1f, 0.2f, 1.0f, 0.6f, 0.1f, 0.4f, 0.1f};
  const HeatmapPeaks r = decode_heatmaps_reference(H, 1, 3, 3, 1, nullptr, params(3, 3, 1, 0.05f, 4));
  ASSERT_EQ(r.counts.size(), 1u);
  ASSERT_EQ(r.counts[0], 1);
  EXPECT_NEAR(r.peaks[0].x, 1.5 + 1.0 / 6.0, 1e-6);
  EXPECT_EQ(r.peaks[0].y, 1.5f);
  EXPECT_EQ(r.peaks[0].score, 1.0f);
  for (int i = 1; i < 4; ++i) EXPECT_EQ(r.peaks[i].score, 0.0f);  // unused slots zeroed
}

TEST(HeatmapDecodeReference, QuadraticVertexRecoveredExactly) {
  // f = 1 - (x - 5.25)^2 / 8 - (y - 2.75)^2 / 4 on a 10x12 grid (every value and step is exact in
  // float32): peak at cell (5, 3), dx = 0.5 * (-0.125) / -0.25 = 0.25, dy = 0.5 * 0.25 / -0.5 = -0.25,
  // so the refined position is the vertex + 0.5 (pixel centres at i + 0.5).
  const int h = 10, w = 12;
  std::vector<float> H(h * w);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const double dx = x - 5.25, dy = y - 2.75;
      H[y * w + x] = static_cast<float>(1.0 - dx * dx / 8 - dy * dy / 4);
    }
  HeatmapPeaks r = decode_heatmaps_reference(H.data(), 1, h, w, 1, nullptr, params(h, w, 2, 0.5f, 3));
  ASSERT_EQ(r.counts[0], 1);
  expect_peak(r, 0, 0, 5.75f, 3.25f, 0.9765625f);
  // Through a crop transform: x * 2 - 10, y * 0.5 + 3.
  const CropTransform t{2.0f, 0.5f, -10.0f, 3.0f};
  r = decode_heatmaps_reference(H.data(), 1, h, w, 1, &t, params(h, w, 2, 0.5f, 3));
  ASSERT_EQ(r.counts[0], 1);
  expect_peak(r, 0, 0, 1.5f, 4.625f, 0.9765625f);
}

TEST(HeatmapDecodeReference, RatioFourPlateauTiesBordersAndClamp) {
  // 2x2 -> 8x8 with a 1 at (0, 0): output x = 0, 1 map to source x = -0.375, -0.125 (both taps
  // column 0) and x = 2 to 0.125 (1 + (0 - 1) * 0.125 = 0.875). So U is 1 on the 2x2 corner, a
  // plateau of four equal maxima, ranked by raster index: (0,0), (0,1), (1,0), (1,1).
  // (0,0): both borders, no refinement. (0,1): L = C = 1, R = 0.875, den = -0.125,
  // dx = 0.5 * 0.125 / -0.125 = -0.5 (at the clamp) -> x = 1.0; likewise dy for (1,0).
  const float H[4] = {1, 0, 0, 0};
  const HeatmapPeaks r = decode_heatmaps_reference(H, 1, 2, 2, 1, nullptr, params(8, 8, 1, 0.5f, 3));
  ASSERT_EQ(r.counts[0], 3);
  expect_peak(r, 0, 0, 0.5f, 0.5f, 1.0f);
  expect_peak(r, 0, 1, 1.0f, 0.5f, 1.0f);
  expect_peak(r, 0, 2, 0.5f, 1.0f, 1.0f);
  const HeatmapPeaks all = decode_heatmaps_reference(H, 1, 2, 2, 1, nullptr, params(8, 8, 1, 0.5f, 16));
  EXPECT_EQ(all.counts[0], 4);
  // (1,1): both neighbours pull back by the clamp.
  expect_peak(all, 0, 3, 1.0f, 1.0f, 1.0f);
}

TEST(HeatmapDecodeReference, NmsRadiusThresholdAndOrder) {
  // One row, ratio 1: 0.9 at x=0, 0.8 at x=2, 0.7 at x=5 (zeros elsewhere; the zeros are below the
  // threshold). Radius 1 keeps all three; radius 2 drops 0.8 (0.9 is 2 away); radius 3 drops 0.7.
  const float H[7] = {0.9f, 0, 0.8f, 0, 0, 0.7f, 0};
  auto run = [&](int r, float thr) { return decode_heatmaps_reference(H, 1, 1, 7, 1, nullptr, params(1, 7, r, thr, 5)); };
  HeatmapPeaks r1 = run(1, 0.1f);
  ASSERT_EQ(r1.counts[0], 3);
  // x = 2: den = 0 - 1.6 + 0 = -1.6, dx = 0.5 * 0 / -1.6 = 0 (a sign-carrying zero added to 2.5).
  expect_peak(r1, 0, 0, 0.5f, 0.5f, 0.9f);
  expect_peak(r1, 0, 1, 2.5f, 0.5f, 0.8f);
  expect_peak(r1, 0, 2, 5.5f, 0.5f, 0.7f);
  HeatmapPeaks r2 = run(2, 0.1f);
  ASSERT_EQ(r2.counts[0], 2);
  expect_peak(r2, 0, 0, 0.5f, 0.5f, 0.9f);
  expect_peak(r2, 0, 1, 5.5f, 0.5f, 0.7f);
  HeatmapPeaks r3 = run(3, 0.1f);
  ASSERT_EQ(r3.counts[0], 1);
  // Threshold: >= keeps a peak equal to it.
  HeatmapPeaks t = run(1, 0.8f);
  ASSERT_EQ(t.counts[0], 2);
  expect_peak(t, 0, 1, 2.5f, 0.5f, 0.8f);
  EXPECT_EQ(run(1, 0.95f).counts[0], 0);
  // top_k 1 keeps the best.
  HeatmapPeaks k1 = decode_heatmaps_reference(H, 1, 1, 7, 1, nullptr, params(1, 7, 1, 0.1f, 1));
  ASSERT_EQ(k1.counts[0], 1);
  expect_peak(k1, 0, 0, 0.5f, 0.5f, 0.9f);
}

TEST(HeatmapDecodeReference, NanIsNeverAPeakAndDoesNotSuppress) {
  // 0.6 at x=1 next to NaN: still a peak, and its refinement sees R = NaN -> den NaN -> dx = 0.
  // 0.1 at x=3 between NaN and 0.05: a peak, dx = 0 again.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float H[5] = {0.2f, 0.6f, nan, 0.1f, 0.05f};
  const HeatmapPeaks r = decode_heatmaps_reference(H, 1, 1, 5, 1, nullptr, params(1, 5, 1, 0.01f, 4));
  ASSERT_EQ(r.counts[0], 2);
  expect_peak(r, 0, 0, 1.5f, 0.5f, 0.6f);
  expect_peak(r, 0, 1, 3.5f, 0.5f, 0.1f);
}

TEST(HeatmapDecodeReference, ItemsKeypointsAndTransforms) {
  // n = 2, k = 2, 1x3 maps, ratio 1. Item b, keypoint c has its single peak at x = (b + c) % 3.
  float H[2 * 3 * 2] = {};
  for (int b = 0; b < 2; ++b)
    for (int c = 0; c < 2; ++c) H[(b * 3 + (b + c) % 3) * 2 + c] = 0.5f + 0.1f * (2 * b + c);
  const CropTransform t[2] = {{1, 1, 0, 0}, {10, 1, 100, -1}};
  const HeatmapPeaks r = decode_heatmaps_reference(H, 2, 1, 3, 2, t, params(1, 3, 1, 0.2f, 2));
  ASSERT_EQ(r.counts.size(), 4u);
  for (int s = 0; s < 4; ++s) ASSERT_EQ(r.counts[s], 1) << s;
  // x of the peak cell + 0.5 (dx = 0: the zeros around it give L - R = 0 or a border).
  expect_peak(r, 0, 0, 0.5f, 0.5f, 0.5f);
  expect_peak(r, 1, 0, 1.5f, 0.5f, 0.6f);
  expect_peak(r, 2, 0, 1.5f * 10 + 100, 0.5f - 1, 0.7f);
  expect_peak(r, 3, 0, 2.5f * 10 + 100, 0.5f - 1, 0.8f);
}

TEST(HeatmapDecodeReference, RejectsBadParameters) {
  EXPECT_THROW(check_heatmap_params(params(8, 8, 0, 0.1f, 1), 2, 2, 1), Error);
  EXPECT_THROW(check_heatmap_params(params(8, 8, 4, 0.1f, 1), 2, 2, 1), Error);
  EXPECT_THROW(check_heatmap_params(params(8, 8, 1, 0.1f, 0), 2, 2, 1), Error);
  EXPECT_THROW(check_heatmap_params(params(8, 8, 1, 0.1f, kMaxHeatmapPeaks + 1), 2, 2, 1), Error);
  EXPECT_THROW(check_heatmap_params(params(0, 8, 1, 0.1f, 1), 2, 2, 1), Error);
  EXPECT_THROW(check_heatmap_params(params(8, 8, 1, 0.1f, 1), 0, 2, 1), Error);
  EXPECT_THROW(check_heatmap_params(params(8, 8, 1, 0.1f, 1), 2, 2, 0), Error);
  EXPECT_NO_THROW(check_heatmap_params(params(8, 8, 3, 0.1f, kMaxHeatmapPeaks), 2, 2, 1));
}

}  // namespace
}  // namespace posert
