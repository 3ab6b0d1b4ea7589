// The generic heatmap decoder's parameter check and its plain reference (the oracle): each step of
// heatmap_decode.h's definition written out as directly as possible, one (item, keypoint) at a time.
#include "pose/heatmap_decode.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "posert/error.h"

namespace posert {

void check_heatmap_params(const HeatmapDecodeParams& p, int h, int w, int k) {
  auto fail = [](const std::string& what) { throw Error("heatmap decoder: " + what, ErrorKind::Usage); };
  constexpr int kMaxSide = 1 << 14;
  if (h <= 0 || w <= 0 || k <= 0)
    fail("heatmaps must have positive sizes, got h=" + std::to_string(h) + " w=" + std::to_string(w) +
         " k=" + std::to_string(k));
  if (p.out_h <= 0 || p.out_w <= 0)
    fail("output size must be positive, got " + std::to_string(p.out_h) + "x" + std::to_string(p.out_w));
  if (h > kMaxSide || w > kMaxSide || p.out_h > kMaxSide || p.out_w > kMaxSide || k > 4096)
    fail("sizes too large (sides at most " + std::to_string(kMaxSide) + ", at most 4096 heatmaps)");
  if (p.nms_radius < 1 || p.nms_radius > 3) fail("nms_radius must be 1..3, got " + std::to_string(p.nms_radius));
  if (p.top_k < 1 || p.top_k > kMaxHeatmapPeaks)
    fail("top_k must be 1.." + std::to_string(kMaxHeatmapPeaks) + ", got " + std::to_string(p.top_k));
}

namespace {

struct Candidate {
  float score, x, y;
  int64_t raster;
};

}  // namespace

HeatmapPeaks decode_heatmaps_reference(const float* heatmaps, int n, int h, int w, int k,
                                       const CropTransform* transforms, const HeatmapDecodeParams& p) {
  check_heatmap_params(p, h, w, k);
  if (n < 0) throw Error("heatmap decoder: negative batch size", ErrorKind::Usage);
  const int OH = p.out_h, OW = p.out_w, K = k, r = p.nms_radius;
  HeatmapPeaks res;
  res.n = n;
  res.k = K;
  res.top_k = p.top_k;
  res.peaks.assign(static_cast<size_t>(n) * K * p.top_k, HeatmapPeak{0, 0, 0});
  res.counts.assign(static_cast<size_t>(n) * K, 0);
  std::vector<float> U(static_cast<size_t>(OH) * OW);
  const float ry = static_cast<float>(h) / static_cast<float>(OH);
  const float rx = static_cast<float>(w) / static_cast<float>(OW);
  for (int b = 0; b < n; ++b) {
    const float* H = heatmaps + static_cast<size_t>(b) * h * w * K;
    const CropTransform t = transforms ? transforms[b] : CropTransform{};
    for (int c = 0; c < K; ++c) {
      auto src = [&](int y, int x) { return H[(static_cast<size_t>(y) * w + x) * K + c]; };
      // 1. Upsample.
      for (int y = 0; y < OH; ++y)
        for (int x = 0; x < OW; ++x) {
          const float sy = (static_cast<float>(y) + 0.5f) * ry - 0.5f;
          const float sx = (static_cast<float>(x) + 0.5f) * rx - 0.5f;
          const int y0 = std::max(static_cast<int>(std::floor(sy)), 0);
          const int y1 = std::min(static_cast<int>(std::ceil(sy)), h - 1);
          const int x0 = std::max(static_cast<int>(std::floor(sx)), 0);
          const int x1 = std::min(static_cast<int>(std::ceil(sx)), w - 1);
          const float fy = sy - std::floor(sy), fx = sx - std::floor(sx);
          const float top = src(y0, x0) + (src(y0, x1) - src(y0, x0)) * fx;
          const float bot = src(y1, x0) + (src(y1, x1) - src(y1, x0)) * fx;
          U[static_cast<size_t>(y) * OW + x] = top + (bot - top) * fy;
        }
      auto u = [&](int y, int x) { return U[static_cast<size_t>(y) * OW + x]; };
      std::vector<Candidate> cands;
      for (int y = 0; y < OH; ++y)
        for (int x = 0; x < OW; ++x) {
          // 2. Peak: at least the threshold (false for NaN) and no larger value in the window.
          const float v = u(y, x);
          if (!(v >= p.threshold)) continue;
          bool is_peak = true;
          for (int yy = std::max(0, y - r); yy <= std::min(OH - 1, y + r); ++yy)
            for (int xx = std::max(0, x - r); xx <= std::min(OW - 1, x + r); ++xx)
              if (u(yy, xx) > v) is_peak = false;
          if (!is_peak) continue;
          // 3. Refinement.
          float dx = 0, dy = 0;
          if (x > 0 && x < OW - 1) {
            const float L = u(y, x - 1), C = v, R = u(y, x + 1);
            const float den = L - 2.0f * C + R;
            if (den < 0) dx = std::clamp(0.5f * (L - R) / den, -0.5f, 0.5f);
          }
          if (y > 0 && y < OH - 1) {
            const float T = u(y - 1, x), C = v, B = u(y + 1, x);
            const float den = T - 2.0f * C + B;
            if (den < 0) dy = std::clamp(0.5f * (T - B) / den, -0.5f, 0.5f);
          }
          // 4. Model-input pixels, then frame pixels.
          const float mx = static_cast<float>(x) + 0.5f + dx;
          const float my = static_cast<float>(y) + 0.5f + dy;
          cands.push_back({v, mx * t.scale_x + t.offset_x, my * t.scale_y + t.offset_y,
                           static_cast<int64_t>(y) * OW + x});
        }
      // 5. Score descending, raster index ascending; keep top_k.
      std::sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) {
        return a.score > b.score || (a.score == b.score && a.raster < b.raster);
      });
      const int count = std::min(static_cast<int>(cands.size()), p.top_k);
      const size_t slot = static_cast<size_t>(b) * K + c;
      res.counts[slot] = count;
      for (int i = 0; i < count; ++i)
        res.peaks[slot * p.top_k + i] = HeatmapPeak{cands[i].x, cands[i].y, cands[i].score};
    }
  }
  return res;
}

}  // namespace posert
