// The pose wire format: byte layout of an item, round trip, truncation and the count check.
#include <gtest/gtest.h>

#include <cstring>

#include "pose/pose_record.h"
#include "posert/error.h"

namespace posert {
namespace {

Pose make_pose(float base) {
  Pose p;
  p.score = base;
  p.bbox = {base + 1, base + 2, base + 3, base + 4};
  p.keypoints.resize(17);
  for (int k = 0; k < 17; ++k) p.keypoints[k] = Keypoint{base + 10 + k, base + 40 + k, 0.01f * k};
  return p;
}

float f32_at(const std::vector<unsigned char>& b, size_t off) {
  float v;
  std::memcpy(&v, b.data() + off, 4);
  return v;
}
int32_t i32_at(const std::vector<unsigned char>& b, size_t off) {
  int32_t v;
  std::memcpy(&v, b.data() + off, 4);
  return v;
}

TEST(PoseRecord, LayoutAndRoundTrip) {
  EXPECT_EQ(PoseItemLayout{3}.item_bytes(), 16u + 3u * 224u);
  std::vector<unsigned char> item(PoseItemLayout{3}.item_bytes(), 0xAB);
  poses_to_item({make_pose(1), make_pose(100)}, 3, item.data());
  EXPECT_EQ(i32_at(item, 0), 2);
  EXPECT_EQ(i32_at(item, 4), 0);
  EXPECT_EQ(i32_at(item, 8), 0);
  EXPECT_EQ(i32_at(item, 12), 0);
  // Record 1 starts at 16 + 224: score, bbox, then keypoint 0 (x, y, score), keypoint 1 ...
  EXPECT_EQ(f32_at(item, 240), 100.0f);
  EXPECT_EQ(f32_at(item, 244), 101.0f);
  EXPECT_EQ(f32_at(item, 256), 104.0f);
  EXPECT_EQ(f32_at(item, 260), 110.0f);
  EXPECT_EQ(f32_at(item, 264), 140.0f);
  EXPECT_EQ(f32_at(item, 272 + 0), 111.0f);
  // The unused third record is zeroed.
  for (size_t i = 16 + 2 * 224; i < item.size(); ++i) ASSERT_EQ(item[i], 0) << i;

  // Unaligned item pointer.
  std::vector<unsigned char> shifted(item.size() + 1);
  std::memcpy(shifted.data() + 1, item.data(), item.size());
  const std::vector<Pose> back = poses_from_item(shifted.data() + 1, 3);
  ASSERT_EQ(back.size(), 2u);
  const Pose want[2] = {make_pose(1), make_pose(100)};
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(back[i].score, want[i].score);
    EXPECT_EQ(back[i].bbox, want[i].bbox);
    ASSERT_EQ(back[i].keypoints.size(), 17u);
    for (int k = 0; k < 17; ++k) {
      EXPECT_EQ(back[i].keypoints[k].x, want[i].keypoints[k].x);
      EXPECT_EQ(back[i].keypoints[k].y, want[i].keypoints[k].y);
      EXPECT_EQ(back[i].keypoints[k].score, want[i].keypoints[k].score);
    }
  }
}

TEST(PoseRecord, TruncatesToMaxPosesAndEmpty) {
  std::vector<unsigned char> item(PoseItemLayout{1}.item_bytes());
  poses_to_item({make_pose(1), make_pose(2)}, 1, item.data());
  EXPECT_EQ(i32_at(item, 0), 1);
  EXPECT_EQ(poses_from_item(item.data(), 1).at(0).score, 1.0f);
  poses_to_item({}, 1, item.data());
  EXPECT_TRUE(poses_from_item(item.data(), 1).empty());
  for (unsigned char c : item) EXPECT_EQ(c, 0);
}

TEST(PoseRecord, BadCountThrows) {
  std::vector<unsigned char> item(PoseItemLayout{2}.item_bytes(), 0);
  int32_t c = 3;
  std::memcpy(item.data(), &c, 4);
  EXPECT_THROW(poses_from_item(item.data(), 2), Error);
  c = -1;
  std::memcpy(item.data(), &c, 4);
  EXPECT_THROW(poses_from_item(item.data(), 2), Error);
  c = 2;
  std::memcpy(item.data(), &c, 4);
  EXPECT_EQ(poses_from_item(item.data(), 2).size(), 2u);
  Pose bad = make_pose(1);
  bad.keypoints.resize(5);
  EXPECT_THROW(poses_to_item({bad}, 2, item.data()), Error);
}

}  // namespace
}  // namespace posert

namespace posert {
namespace {

TEST(PoseRecord, MapPoseScalesAndOffsets) {
  Pose p;
  p.keypoints.assign(17, Keypoint{2.0f, 3.0f, 0.5f});
  p.bbox = {1.0f, 2.0f, 10.0f, 20.0f};
  map_pose(p, CropTransform{2.0f, 0.5f, -7.0f, 100.0f});
  EXPECT_FLOAT_EQ(p.keypoints[16].x, 2.0f * 2.0f - 7.0f);
  EXPECT_FLOAT_EQ(p.keypoints[16].y, 3.0f * 0.5f + 100.0f);
  EXPECT_FLOAT_EQ(p.keypoints[16].score, 0.5f);
  EXPECT_FLOAT_EQ(p.bbox[0], -5.0f);
  EXPECT_FLOAT_EQ(p.bbox[1], 101.0f);
  EXPECT_FLOAT_EQ(p.bbox[2], 20.0f);
  EXPECT_FLOAT_EQ(p.bbox[3], 10.0f);
}

}  // namespace
}  // namespace posert
