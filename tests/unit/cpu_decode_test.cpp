// The optimized CPU decoders against the reference decoders: random heads (several seeds, batch
// 1 and 7, 1 and 3 threads) and structured heads (sparse people, boxes over the first cells,
// negative and NaN values, plateaus), bitwise; plus the thread pool and the bench summary.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <thread>

#include "core/thread_pool.h"
#include "pose/cpu_decode.h"
#include "pose/decode_bench.h"
#include "pose/heatmap_decode.h"
#include "pose/model_spec.h"
#include "pose/movenet_single.h"
#include "posert/error.h"

namespace posert {
namespace {

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Same float, bit for bit (NaN payloads included).
#define EXPECT_SAME_FLOAT(a, b, what) EXPECT_EQ(bits(a), bits(b)) << what << ": " << (a) << " vs " << (b)

struct Heads {
  std::vector<Tensor> t;
  std::vector<const Tensor*> tensors() const {
    std::vector<const Tensor*> v;
    for (const auto& x : t) v.push_back(&x);
    return v;
  }
  std::vector<const float*> ptrs() const {
    std::vector<const float*> v;
    for (const auto& x : t) v.push_back(x.data<float>());
    return v;
  }
};

std::vector<int64_t> channels(const ModelSpec& s) {
  switch (s.decoder) {
    case DecoderKind::MoveNetSingle: return {1, 17, 34, 34};
    case DecoderKind::MoveNetMulti: return {1, 17, 34, 34, 2, 2};
    case DecoderKind::PoseNet: return {17, 34, 32, 32};
  }
  return {};
}
int64_t grid(const ModelSpec& s) {
  return s.decoder == DecoderKind::PoseNet ? (s.input_size - 1) / 16 + 1 : s.input_size / 4;
}

// Random heads drawn here (not by the code under test), in per-head ranges.
Heads random_heads(const ModelSpec& s, int n, uint32_t seed, bool wide) {
  std::mt19937 rng(seed);
  Heads h;
  const int64_t G = grid(s);
  const auto ch = channels(s);
  for (size_t i = 0; i < ch.size(); ++i) {
    h.t.emplace_back(DType::F32, Shape{n, G, G, ch[i]});
    float lo = 0, hi = 1;
    if (s.decoder == DecoderKind::PoseNet) {
      lo = i == 0 ? -6.0f : -30.0f, hi = i == 0 ? 3.0f : 30.0f;
    } else if (i == 2) {
      lo = -static_cast<float>(G) / 3, hi = static_cast<float>(G) / 3;
    } else if (i == 3 || i == 5) {
      lo = -1, hi = 1;
    } else if (i == 4) {
      lo = wide ? -2.0f : 0.0f, hi = static_cast<float>(G) * (wide ? 1.2f : 0.6f);
    } else if (wide) {
      lo = -0.2f;  // sigmoid heads slightly negative: exercises signed zeros and the bounds
    }
    std::uniform_real_distribution<float> d(lo, hi);
    float* p = h.t[i].data<float>();
    for (int64_t j = 0; j < h.t[i].numel(); ++j) p[j] = d(rng);
  }
  return h;
}

std::vector<CropTransform> transforms(int n, uint32_t seed) {
  std::mt19937 rng(seed + 1000);
  std::uniform_real_distribution<float> s(0.5f, 3.0f), o(-50.0f, 50.0f);
  std::vector<CropTransform> t(static_cast<size_t>(n));
  for (auto& c : t) c = CropTransform{s(rng), s(rng), o(rng), o(rng)};
  return t;
}

// Reference: decode_heads per item, mapped to frame pixels the way CropTransform documents it.
std::vector<Pose> reference(const ModelSpec& s, const Heads& h, int b, const DecodeOptions& opt,
                            const CropTransform& t) {
  std::vector<Pose> poses = decode_heads(s, h.tensors(), b, opt);
  for (auto& p : poses) {
    for (auto& k : p.keypoints) {
      k.x = k.x * t.scale_x + t.offset_x;
      k.y = k.y * t.scale_y + t.offset_y;
    }
    p.bbox[0] = p.bbox[0] * t.scale_x + t.offset_x;
    p.bbox[1] = p.bbox[1] * t.scale_y + t.offset_y;
    p.bbox[2] = p.bbox[2] * t.scale_x;
    p.bbox[3] = p.bbox[3] * t.scale_y;
  }
  return poses;
}

void expect_same_poses(const std::vector<Pose>& got, const std::vector<Pose>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    const std::string w = what + " pose " + std::to_string(i);
    EXPECT_SAME_FLOAT(got[i].score, want[i].score, w + " score");
    for (int j = 0; j < 4; ++j) EXPECT_SAME_FLOAT(got[i].bbox[j], want[i].bbox[j], w + " bbox");
    for (int k = 0; k < 17; ++k) {
      EXPECT_SAME_FLOAT(got[i].keypoints[k].x, want[i].keypoints[k].x, w + " kpt " + std::to_string(k) + " x");
      EXPECT_SAME_FLOAT(got[i].keypoints[k].y, want[i].keypoints[k].y, w + " kpt " + std::to_string(k) + " y");
      EXPECT_SAME_FLOAT(got[i].keypoints[k].score, want[i].keypoints[k].score, w + " kpt " + std::to_string(k) + " s");
    }
  }
}

void check_against_reference(const ModelSpec& s, const Heads& h, int n, int threads, const DecodeOptions& opt,
                             uint32_t seed, const std::string& what) {
  const auto tf = transforms(n, seed);
  CpuPoseDecoder dec(s, opt, threads);
  std::vector<unsigned char> out(static_cast<size_t>(n) * dec.layout().item_bytes(), 0xCD);
  dec.decode(h.ptrs(), n, tf.data(), out.data());
  for (int b = 0; b < n; ++b) {
    const auto got = poses_from_item(out.data() + static_cast<size_t>(b) * dec.layout().item_bytes(), dec.max_poses());
    expect_same_poses(got, reference(s, h, b, opt, tf[static_cast<size_t>(b)]),
                      what + " item " + std::to_string(b));
  }
}

class CpuPoseDecoderRandom : public ::testing::TestWithParam<std::string> {};

TEST_P(CpuPoseDecoderRandom, MatchesReferenceBitwise) {
  const ModelSpec& s = find_model_spec(GetParam());
  for (uint32_t seed : {1u, 2u, 3u})
    for (int n : {1, 7})
      for (int threads : {1, 3})
        for (bool wide : {false, true}) {
          DecodeOptions opt;
          if (s.decoder == DecoderKind::PoseNet && wide) opt.min_keypoint_score = 0.3f, opt.min_pose_score = 0.2f;
          if (s.decoder == DecoderKind::MoveNetMulti && wide) opt.min_pose_score = 0.05f;
          check_against_reference(s, random_heads(s, n, seed, wide), n, threads, opt, seed,
                                  s.name + " seed " + std::to_string(seed) + " n " + std::to_string(n) + " threads " +
                                      std::to_string(threads) + (wide ? " wide" : ""));
        }
}

INSTANTIATE_TEST_SUITE_P(Models, CpuPoseDecoderRandom,
                         ::testing::Values("movenet-lightning", "movenet-thunder", "movenet-multipose", "posenet"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (auto& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

// Realistic-looking heads: low background, Gaussian blobs, a few people.
Heads blob_heads(const ModelSpec& s, int n, uint32_t seed) {
  Heads h = random_heads(s, n, seed, false);
  std::mt19937 rng(seed * 7 + 1);
  const int64_t G = grid(s);
  std::uniform_real_distribution<float> u(0, 1);
  const size_t heat_head = s.decoder == DecoderKind::PoseNet ? 0 : 1;
  for (int b = 0; b < n; ++b) {
    for (size_t i : {size_t{0}, heat_head}) {
      Tensor& t = h.t[i];
      const int64_t C = t.dim(3);
      float* p = t.data<float>() + b * G * G * C;
      for (int64_t j = 0; j < G * G * C; ++j) p[j] = s.decoder == DecoderKind::PoseNet && i == 0 ? -6.0f : 0.01f * u(rng);
      for (int blob = 0; blob < 3; ++blob) {
        const float cy = u(rng) * G, cx = u(rng) * G, amp = 0.3f + 0.6f * u(rng);
        for (int64_t y = 0; y < G; ++y)
          for (int64_t x = 0; x < G; ++x)
            for (int64_t c = 0; c < C; ++c) {
              const float dy = y - cy - c % 3, dx = x - cx + c % 2;
              const float v = amp * std::exp(-(dy * dy + dx * dx) / 8.0f);
              float& dst = p[(y * G + x) * C + c];
              if (s.decoder == DecoderKind::PoseNet && i == 0) dst = std::max(dst, std::log(v / (1.0f - v + 1e-6f) + 1e-30f));
              else dst += v;
            }
      }
    }
  }
  return h;
}

TEST(CpuPoseDecoder, StructuredHeadsMatchReference) {
  for (const char* name : {"movenet-lightning", "movenet-thunder", "movenet-multipose", "posenet"}) {
    const ModelSpec& s = find_model_spec(name);
    for (uint32_t seed : {5u, 6u})
      check_against_reference(s, blob_heads(s, 3, seed), 3, 2, DecodeOptions{}, seed, std::string(name) + " blobs");
  }
}

TEST(CpuPoseDecoder, EdgeCaseHeadsMatchReference) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (const char* name : {"movenet-lightning", "movenet-multipose", "posenet"}) {
    const ModelSpec& s = find_model_spec(name);
    const int64_t G = grid(s);
    const int n = 6;
    Heads h = random_heads(s, n, 11, true);
    auto at = [&](size_t head, int b, int64_t y, int64_t x, int64_t c) -> float& {
      const int64_t C = h.t[head].dim(3);
      return h.t[head].data<float>()[((b * G + y) * G + x) * C + c];
    };
    const size_t heat = s.decoder == DecoderKind::PoseNet ? 0 : 1;
    // item 0: all heads zero (ties everywhere: the first cell must win).
    for (auto& t : h.t) std::memset(t.data<float>() + 0, 0, static_cast<size_t>(G * G * t.dim(3)) * 4);
    // item 1: NaN in the first cell of every heatmap and some later cells; inf in one heatmap.
    for (int64_t c = 0; c < h.t[heat].dim(3); ++c) at(heat, 1, 0, 0, c) = nan, at(heat, 1, 3, 4, c) = nan;
    at(0, 1, 0, 0, 0) = nan;
    at(heat, 1, 5, 5, 2) = inf;
    // item 2: a plateau: every heatmap constant (ties broken by index), negative values.
    for (int64_t y = 0; y < G; ++y)
      for (int64_t x = 0; x < G; ++x)
        for (int64_t c = 0; c < h.t[heat].dim(3); ++c) at(heat, 2, y, x, c) = (c % 2) ? 0.5f : -0.25f;
    if (s.decoder == DecoderKind::MoveNetMulti) {
      // item 3: huge boxes around every cell (the whole grid, cell 0 inside); item 4: no boxes;
      // item 5: NaN regression and box values.
      for (int64_t y = 0; y < G; ++y)
        for (int64_t x = 0; x < G; ++x) {
          at(4, 3, y, x, 0) = at(4, 3, y, x, 1) = 1000.0f;
          at(4, 4, y, x, 0) = at(4, 4, y, x, 1) = 0.0f;
          at(2, 5, y, x, 3) = nan;
          at(5, 5, y, x, 0) = nan;
        }
    } else {
      for (int64_t y = 0; y < G; ++y)
        for (int64_t x = 0; x < G; ++x) at(2, 5, y, x, 3) = nan;
    }
    for (int threads : {1, 4}) check_against_reference(s, h, n, threads, DecodeOptions{}, 11, std::string(name) + " edge");
  }
}

// The single-pose keypoint search skips blocks of cells whose bound is below a value already
// known. Item 0: for every keypoint a cell far from the regressed position, earlier in the scan,
// whose value ties exactly with the regressed cell's and equals its block's bound (the block's
// only nonzero heat, in the column of the regressed position): the first cell must still win.
// Item 1: every heat value negative, where a block's values are not bounded by its largest heat
// over its smallest distance: the maximum, -1e-3 at (30, 47), 27 columns from the regressed
// position (value -3.5e-5), beats the regressed cell's -7.2e-5 / eps (-4e-5), and the block's
// nearest column is 20 away (-1e-3 / 21.8 = -4.6e-5). Item 2: regression 1e18 cells away, so
// every distance is the same float and the values are the random heat over it; the seeds are
// the cells at the grid's edge, and blocks of smaller heat are skipped. Item 3: regression 1e30
// cells away (squared distances overflow: every value 0). Item 4: random heat with NaN at the
// regressed cell, +inf beside it (even keypoints) and NaN at cell 0 (odd keypoints: the scan
// keeps cell 0). Lightning's grid; 6 threads splits the items.
TEST(CpuPoseDecoder, SinglePoseBlockSkippingKeepsTheReferenceArgmax) {
  const ModelSpec& s = find_model_spec("movenet-lightning");
  const int64_t G = grid(s);
  ASSERT_EQ(G, 48);
  const int n = 5;
  Heads h = random_heads(s, n, 21, false);
  auto at = [&](size_t head, int b, int64_t y, int64_t x, int64_t c) -> float& {
    const int64_t C = h.t[head].dim(3);
    return h.t[head].data<float>()[((b * G + y) * G + x) * C + c];
  };
  const float eps = kMoveNetKeypointDistEps;
  const float v_near = 0.5f / (0.0f + eps);  // h = 0.5 at distance 0
  const float den_far = std::sqrt(28.0f * 28.0f) + eps;  // 28 rows above
  float h_far = v_near * den_far;
  for (int step = 0; step < 64 && h_far / den_far != v_near; ++step)
    h_far = std::nextafter(h_far, h_far / den_far < v_near ? HUGE_VALF : 0.0f);
  ASSERT_EQ(bits(h_far / den_far), bits(v_near)) << "no exact tie found; pick other values";
  ASSERT_NE(h_far, 0.5f);
  for (int b = 0; b < n; ++b)
    for (int64_t y = 0; y < G; ++y)
      for (int64_t x = 0; x < G; ++x) {
        at(0, b, y, x, 0) = y == 24 && x == 24 ? 1.0f : 0.0f;  // the centre: cell (24, 24)
        if (b <= 1 || b == 3)
          for (int c = 0; c < 17; ++c) at(1, b, y, x, c) = b == 1 ? -1.0f : b == 3 ? 0.3f : 0.0f;
      }
  for (int c = 0; c < 17; ++c) {
    // Regressed position (30, 20) for items 0, 1 and 4.
    for (int b : {0, 1, 4}) at(2, b, 24, 24, 2 * c) = 6.0f, at(2, b, 24, 24, 2 * c + 1) = -4.0f;
    at(2, 2, 24, 24, 2 * c) = 1e18f, at(2, 2, 24, 24, 2 * c + 1) = -1e18f;
    at(2, 3, 24, 24, 2 * c) = 1e30f, at(2, 3, 24, 24, 2 * c + 1) = -1e30f;
    at(1, 0, 30, 20, c) = 0.5f;
    at(1, 0, 2, 20, c) = h_far;
    at(1, 1, 30, 20, c) = -7.2e-5f;
    at(1, 1, 30, 47, c) = -1e-3f;
    at(1, 4, 30, 20, c) = std::numeric_limits<float>::quiet_NaN();
    if (c % 2 == 0) at(1, 4, 31, 21, c) = HUGE_VALF;
    if (c % 2 == 1) at(1, 4, 0, 0, c) = std::numeric_limits<float>::quiet_NaN();  // cell 0 NaN: the answer
  }
  // The reference takes the earlier cell (2, 20) of item 0, whose score is h_far, (30, 47) of
  // item 1, the +inf cell of item 4's even keypoints and cell 0 (NaN) of its odd ones.
  for (int b : {0, 1, 4}) {
    const auto want = decode_heads(s, h.tensors(), b, DecodeOptions{});
    ASSERT_EQ(want.size(), 1u);
    for (int k = 0; k < 17; ++k) {
      if (b == 4 && k % 2 == 1) {
        EXPECT_TRUE(std::isnan(want[0].keypoints[k].score)) << "item 4 reference keypoint " << k;
        continue;
      }
      EXPECT_SAME_FLOAT(want[0].keypoints[k].score, b == 0 ? h_far : b == 1 ? -1e-3f : HUGE_VALF,
                        "item " << b << " reference keypoint " << k);
    }
  }
  for (int threads : {1, 2, 6}) check_against_reference(s, h, n, threads, DecodeOptions{}, 21, "block skipping");
}

// Grids whose side is not a multiple of the 8-cell blocks (45, 9) and a one-cell grid, on random
// heads, against the reference.
TEST(CpuPoseDecoder, SinglePoseOddGridsMatchReference) {
  for (int input : {180, 36, 4}) {
    ModelSpec s = find_model_spec("movenet-lightning");
    s.input_size = input;
    for (uint32_t seed : {31u, 32u})
      for (bool wide : {false, true})
        for (int threads : {1, 3})
          check_against_reference(s, random_heads(s, 2, seed, wide), 2, threads, DecodeOptions{}, seed,
                                  "input " + std::to_string(input) + " seed " + std::to_string(seed) +
                                      (wide ? " wide" : "") + " threads " + std::to_string(threads));
  }
}

TEST(CpuPoseDecoder, IdentityTransformAndBadInput) {
  const ModelSpec& s = find_model_spec("movenet-lightning");
  const Heads h = random_heads(s, 2, 3, false);
  CpuPoseDecoder dec(s, DecodeOptions{}, 2);
  EXPECT_EQ(dec.max_poses(), 1);
  EXPECT_EQ(find_model_spec("posenet").max_people, CpuPoseDecoder(find_model_spec("posenet"), {}, 1).max_poses());
  std::vector<unsigned char> out(2 * dec.layout().item_bytes());
  dec.decode(h.ptrs(), 2, nullptr, out.data());
  for (int b = 0; b < 2; ++b)
    expect_same_poses(poses_from_item(out.data() + b * dec.layout().item_bytes(), 1),
                      decode_heads(s, h.tensors(), b, DecodeOptions{}), "identity");
  std::vector<const float*> three(3, h.ptrs()[0]);
  EXPECT_THROW(dec.decode(three, 2, nullptr, out.data()), Error);
  std::vector<const float*> null_head = h.ptrs();
  null_head[1] = nullptr;
  EXPECT_THROW(dec.decode(null_head, 2, nullptr, out.data()), Error);
}

// ---- generic heatmap decoder

void expect_same_peaks(const HeatmapPeaks& got, const HeatmapPeaks& want, const std::string& what) {
  ASSERT_EQ(got.n, want.n) << what;
  ASSERT_EQ(got.k, want.k) << what;
  ASSERT_EQ(got.top_k, want.top_k) << what;
  ASSERT_EQ(got.counts, want.counts) << what;
  ASSERT_EQ(got.peaks.size(), want.peaks.size()) << what;
  for (size_t i = 0; i < got.peaks.size(); ++i) {
    EXPECT_SAME_FLOAT(got.peaks[i].x, want.peaks[i].x, what + " peak " + std::to_string(i) + " x");
    EXPECT_SAME_FLOAT(got.peaks[i].y, want.peaks[i].y, what + " peak " + std::to_string(i) + " y");
    EXPECT_SAME_FLOAT(got.peaks[i].score, want.peaks[i].score, what + " peak " + std::to_string(i) + " score");
  }
}

struct HmCase {
  int h, w, k, oh, ow, r, top_k;
  float thr;
};

TEST(CpuHeatmapDecoder, MatchesReferenceBitwise) {
  const HmCase cases[] = {
      {64, 48, 17, 256, 192, 1, 1, 0.1f},  {16, 12, 17, 64, 48, 2, 5, 0.3f}, {7, 5, 3, 29, 19, 3, 16, 0.0f},
      {9, 9, 2, 9, 9, 1, 4, 0.2f},         {20, 14, 4, 10, 7, 2, 3, 0.5f},  {1, 6, 2, 3, 25, 1, 6, 0.05f},
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (const HmCase& c : cases)
    for (uint32_t seed : {1u, 2u})
      for (int n : {1, 7})
        for (int threads : {1, 3})
          for (int variant : {0, 1}) {
            std::mt19937 rng(seed * 31 + static_cast<uint32_t>(n));
            std::uniform_real_distribution<float> u(0, 1);
            Tensor hm(DType::F32, Shape{n, c.h, c.w, c.k});
            float* p = hm.data<float>();
            for (int64_t i = 0; i < hm.numel(); ++i) {
              p[i] = u(rng);
              // variant 1: coarse values (plateaus and ties), some negatives and NaN
              if (variant == 1) p[i] = std::floor(p[i] * 4) / 4 - 0.25f;
              if (variant == 1 && i % 37 == 5) p[i] = nan;
            }
            std::vector<CropTransform> tf = transforms(n, seed);
            HeatmapDecodeParams prm;
            prm.out_h = c.oh, prm.out_w = c.ow, prm.nms_radius = c.r, prm.threshold = c.thr, prm.top_k = c.top_k;
            const HeatmapPeaks want = decode_heatmaps_reference(p, n, c.h, c.w, c.k, tf.data(), prm);
            CpuHeatmapDecoder dec(threads);
            HeatmapPeaks got = dec.decode(p, n, c.h, c.w, c.k, tf.data(), prm);
            const std::string what = std::to_string(c.h) + "x" + std::to_string(c.w) + "->" + std::to_string(c.oh) +
                                     "x" + std::to_string(c.ow) + " n " + std::to_string(n) + " t " +
                                     std::to_string(threads) + " v " + std::to_string(variant);
            expect_same_peaks(got, want, what);
            // Second call on the same decoder (reused scratch) and the pool-taking form.
            dec.decode(p, n, c.h, c.w, c.k, tf.data(), prm, got);
            expect_same_peaks(got, want, what + " again");
            ThreadPool pool(threads);
            expect_same_peaks(decode_heatmaps_cpu(p, n, c.h, c.w, c.k, tf.data(), prm, pool), want, what + " pool");
          }
}

TEST(CpuHeatmapDecoder, RejectsBadParameters) {
  CpuHeatmapDecoder dec(1);
  const float H[4] = {};
  HeatmapDecodeParams p;
  p.out_h = 4, p.out_w = 4, p.top_k = 0;
  EXPECT_THROW(dec.decode(H, 1, 2, 2, 1, nullptr, p), Error);
}

// ---- thread pool and bench helpers

TEST(ThreadPool, RunsEveryTaskOnceAndPropagatesErrors) {
  ThreadPool pool(3);
  EXPECT_EQ(pool.size(), 3);
  for (int round = 0; round < 20; ++round) {
    std::vector<std::atomic<int>> hits(101);
    std::atomic<int> bad_worker{0};
    pool.parallel_for(101, [&](int i, int w) {
      hits[static_cast<size_t>(i)]++;
      if (w < 0 || w >= 3) bad_worker++;
    });
    for (auto& h : hits) ASSERT_EQ(h.load(), 1);
    EXPECT_EQ(bad_worker.load(), 0);
  }
  EXPECT_THROW(pool.parallel_for(50, [](int i, int) {
    if (i == 17) throw Error("task 17");
  }), Error);
  std::atomic<int> after{0};
  pool.parallel_for(10, [&](int, int) { after++; });
  EXPECT_EQ(after.load(), 10);
}

// Both ways of waiting (asleep at once, and spinning first) run every task once, across jobs
// that follow at once and jobs after the workers have gone to sleep, and pass errors on.
TEST(ThreadPool, SpinningAndSleepingWaitsRunEveryJob) {
  const int hw = static_cast<int>(std::thread::hardware_concurrency());
  for (int spin : {0, 50, 100000}) {
    ThreadPool pool(2, spin);
    EXPECT_EQ(pool.spin_us(), hw >= 2 ? spin : 0) << spin;
    for (int round = 0; round < 40; ++round) {
      // Every 8th round waits past the spin, so the next job has to wake sleeping workers.
      if (spin < 1000 && round % 8 == 7)
        std::this_thread::sleep_for(std::chrono::microseconds(spin + 2000));
      const int n = 1 + round % 9;
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      pool.parallel_for(n, [&](int i, int) { hits[static_cast<size_t>(i)]++; });
      for (auto& h : hits) ASSERT_EQ(h.load(), 1) << "spin " << spin << " round " << round;
    }
    EXPECT_THROW(pool.parallel_for(8, [](int i, int) {
      if (i == 5) throw Error("task 5");
    }), Error);
  }
  // More threads than the machine has: never spins.
  ThreadPool over(std::max(2, hw + 1), 100000);
  EXPECT_EQ(over.spin_us(), 0);
  std::atomic<int> sum{0};
  over.parallel_for(100, [&](int i, int) { sum += i; });
  EXPECT_EQ(sum.load(), 4950);
}

TEST(DecodeBench, SummaryAndSmoke) {
  DecodeTiming t;
  for (int i = 100; i >= 1; --i) t.run_ms.push_back(i);
  summarize(t);
  EXPECT_EQ(t.median_ms, 51.0);
  EXPECT_EQ(t.p99_ms, 99.0);
  EXPECT_EQ(t.mean_ms, 50.5);
  const DecodeTiming c = bench_cpu_pose_decode(find_model_spec("movenet-multipose"), {}, 2, 2, 1, 2);
  EXPECT_EQ(c.run_ms.size(), 2u);
  EXPECT_GT(c.median_ms, 0.0);
}

}  // namespace
}  // namespace posert
