// Fixed-size pose results: what every batched decoder (CPU or GPU) writes, and what crosses PCIe
// from the GPU. Coordinates are in frame pixels: each batch item carries the CropTransform that
// maps its model-input pixels back to the frame it was cut from (letterbox or crop rectangle).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "posert/pose.h"

namespace posert {

inline constexpr int kPoseKeypoints = 17;  // COCO-17
inline constexpr int kMaxPosesPerItem = 6;  // the most any decoder keeps per batch item

// Model-input pixel (x, y) of batch item b -> frame pixel (x * scale_x + offset_x,
// y * scale_y + offset_y). Widths and heights scale by scale_x / scale_y. For the letterbox of
// preprocess.h: scale = side / input_size, offset = -pad.
struct CropTransform {
  float scale_x = 1, scale_y = 1, offset_x = 0, offset_y = 0;
};

// One pose, 224 bytes: score, bbox (x, y, w, h) and 17 x (x, y, score), all in frame pixels.
struct PoseRecord {
  float score;
  float bbox[4];
  float kpt[kPoseKeypoints][3];
};
static_assert(sizeof(PoseRecord) == 224, "PoseRecord is a wire format");

// The results of one batch item: a 16-byte header (count, then 3 zero words) followed by
// max_poses PoseRecords, of which the first `count` are valid, in the decoder's order.
struct PoseItemLayout {
  int max_poses = 1;
  size_t item_bytes() const { return 16 + static_cast<size_t>(max_poses) * sizeof(PoseRecord); }
};

// Maps a pose from model-input pixels to frame pixels: keypoints and bbox x, y through the
// transform, bbox width and height scaled.
void map_pose(Pose& p, const CropTransform& t);

// Poses of one item read back from its bytes (count checked against max_poses).
std::vector<Pose> poses_from_item(const void* item, int max_poses);
// Writes poses into one item (at most max_poses; the rest of the item is zeroed).
void poses_to_item(const std::vector<Pose>& poses, int max_poses, void* item);

}  // namespace posert
