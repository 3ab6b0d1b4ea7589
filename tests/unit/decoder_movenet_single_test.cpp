// MoveNet SinglePose decoder on hand-built heads: centre weighting, distance-weighted keypoint
// pick, offsets, the fp16 output scale, first-index ties, batch items and malformed heads.
// Expected values follow from the synthetic heads and the graph constants, worked out by hand.
#include <gtest/gtest.h>

#include <cmath>

#include "pose/decode_launch.h"
#include "pose/model_spec.h"
#include "pose/movenet_single.h"
#include "posert/error.h"

namespace posert {
namespace {

constexpr int G = 48;  // lightning: 192 / 4
constexpr int K = 17;
// "Reshape_13" of the graph: fp16(1/48), so one grid cell is 192 * 0.0208282470703125 pixels.
constexpr double kScale = 0.0208282470703125;

struct Heads {
  Tensor centre, heat, reg, off;
  explicit Heads(int n = 1)
      : centre(DType::F32, {n, G, G, 1}), heat(DType::F32, {n, G, G, K}), reg(DType::F32, {n, G, G, 2 * K}),
        off(DType::F32, {n, G, G, 2 * K}) {}
  float& c(int y, int x, int b = 0) { return centre.data<float>()[(b * G + y) * G + x]; }
  float& h(int y, int x, int k, int b = 0) { return heat.data<float>()[((b * G + y) * G + x) * K + k]; }
  float& r(int y, int x, int ch, int b = 0) { return reg.data<float>()[((b * G + y) * G + x) * 2 * K + ch]; }
  float& o(int y, int x, int ch, int b = 0) { return off.data<float>()[((b * G + y) * G + x) * 2 * K + ch]; }
  std::vector<const Tensor*> list() const { return {&centre, &heat, &reg, &off}; }
};

const ModelSpec& lightning() { return find_model_spec("movenet-lightning"); }

TEST(DecoderMoveNetSingle, GraphConstants) {
  // Values read from movenet-lightning.bin / movenet-thunder.bin (fp16 constants).
  EXPECT_EQ(movenet_centre_weight(48, 0, 0), 0.027984619140625f);
  EXPECT_EQ(movenet_centre_weight(48, 0, 1), 0.028533935546875f);
  EXPECT_EQ(movenet_centre_weight(64, 2, 13), 0.0268096923828125f);  // the one rounded-up value
  // At the centre cell: fp16(1 / 1.8) = 1138 / 2048.
  EXPECT_EQ(movenet_centre_weight(48, 24, 24), 0.5556640625f);
  EXPECT_EQ(movenet_output_scale(48), 0.0208282470703125f);
  EXPECT_EQ(movenet_output_scale(64), 0.015625f);
  EXPECT_EQ(kMoveNetKeypointDistEps, 1.7998046875f);
}

TEST(DecoderMoveNetSingle, CentreWeightingRegressionOffsetsAndScale) {
  Heads hd;
  // Person A far from the image centre scores higher raw, but the weight 1/(d+1.8) favours B:
  // A: 0.9 / (19.8 + 1.8) ~ 0.042, B: 0.8 / (2 + 1.8) ~ 0.21.
  hd.c(10, 10) = 0.9f;
  hd.c(24, 26) = 0.8f;
  for (int k = 0; k < K; ++k) {
    const int ky = 16 + k, kx = 28 + k % 3;
    hd.r(24, 26, 2 * k) = static_cast<float>(ky - 24);      // regression y -> exactly on ky
    hd.r(24, 26, 2 * k + 1) = static_cast<float>(kx - 26);  // regression x -> exactly on kx
    hd.h(ky, kx, k) = 0.6f;  // at the regressed point: 0.6 / 1.8 = 0.33
    hd.h(ky, 5, k) = 0.7f;   // higher but >= 23 cells away: 0.7 / 24.8 = 0.028
    hd.o(ky, kx, 2 * k) = 0.25f;
    hd.o(ky, kx, 2 * k + 1) = -0.5f;
    // Regression at A would put keypoints elsewhere; it must not be used.
    hd.r(10, 10, 2 * k) = 5.0f;
  }
  const auto raw = movenet_single_raw(lightning(), hd.list(), 0);
  ASSERT_EQ(raw.size(), 51u);
  for (int k = 0; k < K; ++k) {
    EXPECT_NEAR(raw[3 * k], (16 + k + 0.25) * kScale, 1e-7) << k;
    EXPECT_NEAR(raw[3 * k + 1], (28 + k % 3 - 0.5) * kScale, 1e-7) << k;
    EXPECT_EQ(raw[3 * k + 2], 0.6f) << k;
  }
  const auto poses = decode_heads(lightning(), hd.list(), 0, DecodeOptions{});
  ASSERT_EQ(poses.size(), 1u);
  const Pose& p = poses[0];
  ASSERT_EQ(p.keypoints.size(), 17u);
  const double px = 192 * kScale;  // ~3.999 input pixels per cell
  for (int k = 0; k < K; ++k) {
    EXPECT_NEAR(p.keypoints[k].y, (16 + k + 0.25) * px, 1e-4) << k;
    EXPECT_NEAR(p.keypoints[k].x, (28 + k % 3 - 0.5) * px, 1e-4) << k;
    EXPECT_FLOAT_EQ(p.keypoints[k].score, 0.6f);
  }
  EXPECT_NEAR(p.score, 0.6f, 1e-6);
  EXPECT_NEAR(p.bbox[0], 27.5 * px, 1e-4);
  EXPECT_NEAR(p.bbox[1], 16.25 * px, 1e-4);
  EXPECT_NEAR(p.bbox[2], 2.0 * px, 1e-4);
  EXPECT_NEAR(p.bbox[3], 16.0 * px, 1e-4);
}

TEST(DecoderMoveNetSingle, TiesGoToTheFirstIndex) {
  Heads hd;
  // Two centres at the same distance (4 cells) from (24,24) with equal values: (20,24) comes first.
  hd.c(20, 24) = 0.5f;
  hd.c(28, 24) = 0.5f;
  for (int y = 0; y < G; ++y)
    for (int x = 0; x < G; ++x)
      for (int k = 0; k < K; ++k) hd.h(y, x, k) = 0.5f;  // flat heatmaps: nearest cell wins
  // Keypoint 0 regressed to (20.5, 24): cells (20,24) and (21,24) tie at distance 0.5.
  hd.r(20, 24, 0) = 0.5f;
  hd.r(28, 24, 0) = 0.5f;
  const auto raw = movenet_single_raw(lightning(), hd.list(), 0);
  EXPECT_NEAR(raw[0], 20 * kScale, 1e-7);  // keypoint 0 at cell row 20, not 21, not 28
  EXPECT_NEAR(raw[1], 24 * kScale, 1e-7);
  EXPECT_NEAR(raw[3], 20 * kScale, 1e-7);  // keypoint 1: regression 0 -> the centre cell itself
  EXPECT_EQ(raw[5], 0.5f);
}

TEST(DecoderMoveNetSingle, DecodesTheRequestedBatchItem) {
  Heads hd(2);
  hd.c(24, 24, 0) = 0.9f;
  hd.c(12, 30, 1) = 0.9f;
  for (int k = 0; k < K; ++k) {
    hd.h(24, 24, k, 0) = 0.3f;
    hd.h(12, 30, k, 1) = 0.4f;
  }
  const auto p0 = decode_heads(lightning(), hd.list(), 0, {});
  const auto p1 = decode_heads(lightning(), hd.list(), 1, {});
  EXPECT_NEAR(p0[0].keypoints[3].y, 24 * 192 * kScale, 1e-4);
  EXPECT_NEAR(p1[0].keypoints[3].y, 12 * 192 * kScale, 1e-4);
  EXPECT_NEAR(p1[0].keypoints[3].x, 30 * 192 * kScale, 1e-4);
  EXPECT_FLOAT_EQ(p1[0].keypoints[3].score, 0.4f);
  EXPECT_THROW(decode_heads(lightning(), hd.list(), 2, {}), Error);
  EXPECT_THROW(decode_heads(lightning(), hd.list(), -1, {}), Error);
}

TEST(DecoderMoveNetSingle, MalformedHeadsThrow) {
  Heads hd;
  auto heads = hd.list();
  EXPECT_THROW(decode_heads(lightning(), {heads[0], heads[1], heads[2]}, 0, {}), Error);

  Tensor wrong_channels(DType::F32, {1, G, G, 16});
  EXPECT_THROW(decode_heads(lightning(), {heads[0], &wrong_channels, heads[2], heads[3]}, 0, {}), Error);
  Tensor thunder_grid(DType::F32, {1, 64, 64, 1});
  EXPECT_THROW(decode_heads(lightning(), {&thunder_grid, heads[1], heads[2], heads[3]}, 0, {}), Error);
  Tensor ints(DType::I32, {1, G, G, 34});
  EXPECT_THROW(decode_heads(lightning(), {heads[0], heads[1], &ints, heads[3]}, 0, {}), Error);
  Tensor rank3(DType::F32, {G, G, 34});
  EXPECT_THROW(decode_heads(lightning(), {heads[0], heads[1], heads[2], &rank3}, 0, {}), Error);
  EXPECT_THROW(decode_heads(lightning(), {heads[0], nullptr, heads[2], heads[3]}, 0, {}), Error);
  try {
    decode_heads(lightning(), {heads[0], &wrong_channels, heads[2], heads[3]}, 0, {});
  } catch (const Error& e) {
    // The message names the model, the head and what was expected.
    EXPECT_NE(std::string(e.what()).find("StatefulPartitionedCall/Sigmoid"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[N,48,48,17]"), std::string::npos) << e.what();
  }
}

TEST(DecoderMoveNetSingle, NanHeadsStillGiveOnePose) {
  Heads hd;
  for (Tensor* t : {&hd.centre, &hd.heat, &hd.reg, &hd.off})
    for (int64_t i = 0; i < t->numel(); ++i) t->data<float>()[i] = std::nanf("");
  EXPECT_EQ(decode_heads(lightning(), hd.list(), 0, {}).size(), 1u);
}

}  // namespace
// The GPU kernel's split of a batch into blocks (host arithmetic; expected values worked out by
// hand for an H100: 132 SMs, 3 blocks of the kernel per SM = 396 resident).
TEST(DecoderMoveNetSingle, GpuBlocksPerItem) {
  // Lightning, 48 x 48 = 2304 cells = 72 cells of 32 lanes.
  EXPECT_EQ(movenet_single_cells_per_lane(2304, 1, 132, 396, 2), 2);    // 36 blocks
  EXPECT_EQ(movenet_single_cells_per_lane(2304, 8, 132, 396, 2), 5);    // 8 x 15 = 120 blocks (4: 144)
  EXPECT_EQ(movenet_single_cells_per_lane(2304, 16, 132, 396, 2), 9);   // 16 x 8 = 128 (8: 144)
  EXPECT_EQ(movenet_single_cells_per_lane(2304, 64, 132, 396, 2), 12);  // one per SM needs 36: 64 x 6 = 384
  EXPECT_EQ(movenet_single_cells_per_lane(2304, 256, 132, 396, 2), 72); // one block per item
  // Thunder, 64 x 64 = 4096 cells = 128 cells of 32 lanes.
  EXPECT_EQ(movenet_single_cells_per_lane(4096, 1, 132, 396, 2), 2);    // 64 blocks
  EXPECT_EQ(movenet_single_cells_per_lane(4096, 16, 132, 396, 2), 16);  // 16 x 8 = 128 (15: 144)
  EXPECT_EQ(movenet_single_cells_per_lane(4096, 64, 132, 396, 2), 22);  // one per SM needs 64: 64 x 6 = 384
  // The general rule stops at one block per item.
  EXPECT_EQ(cells_per_lane(100, 1, 1, 2), 4);
  EXPECT_EQ(cells_per_lane(100, 5, 1, 2), 4);
  // Blocks per item and cells per block.
  EXPECT_EQ(split_cells(2304, 9).blocks, 8);
  EXPECT_EQ(split_cells(2304, 9).chunk, 288);
  EXPECT_EQ(split_cells(2304, 5).blocks, 15);
  EXPECT_EQ(split_cells(2304, 5).chunk, 154);
  EXPECT_EQ(split_cells(100, 2).blocks, 2);
  EXPECT_EQ(split_cells(100, 2).chunk, 50);
  EXPECT_EQ(split_cells(100, 4).blocks, 1);
  EXPECT_EQ(split_cells(100, 4).chunk, 100);
}

}  // namespace posert
