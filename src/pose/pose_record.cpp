// The pose wire format: PoseItemLayout bytes <-> std::vector<Pose>. Items may be unaligned
// (they come from staging buffers), so every field goes through memcpy.
#include "pose/pose_record.h"

#include <cstring>
#include <string>

#include "posert/error.h"

namespace posert {

std::vector<Pose> poses_from_item(const void* item, int max_poses) {
  if (max_poses < 0) throw Error("pose item: max_poses " + std::to_string(max_poses) + " is negative");
  const auto* bytes = static_cast<const unsigned char*>(item);
  int32_t count = 0;
  std::memcpy(&count, bytes, sizeof(count));
  if (count < 0 || count > max_poses)
    throw Error("pose item: count " + std::to_string(count) + " is outside [0, " + std::to_string(max_poses) +
                "] (corrupt or mismatched result buffer)");
  std::vector<Pose> poses(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    PoseRecord r;
    std::memcpy(&r, bytes + 16 + static_cast<size_t>(i) * sizeof(PoseRecord), sizeof(r));
    Pose& p = poses[static_cast<size_t>(i)];
    p.score = r.score;
    for (int j = 0; j < 4; ++j) p.bbox[j] = r.bbox[j];
    p.keypoints.resize(kPoseKeypoints);
    for (int k = 0; k < kPoseKeypoints; ++k) p.keypoints[k] = Keypoint{r.kpt[k][0], r.kpt[k][1], r.kpt[k][2]};
  }
  return poses;
}

void poses_to_item(const std::vector<Pose>& poses, int max_poses, void* item) {
  if (max_poses < 0) throw Error("pose item: max_poses " + std::to_string(max_poses) + " is negative");
  auto* bytes = static_cast<unsigned char*>(item);
  std::memset(bytes, 0, PoseItemLayout{max_poses}.item_bytes());
  const int count = poses.size() < static_cast<size_t>(max_poses) ? static_cast<int>(poses.size()) : max_poses;
  for (int i = 0; i < count; ++i) {
    const Pose& p = poses[static_cast<size_t>(i)];
    if (p.keypoints.size() != kPoseKeypoints)
      throw Error("pose item: pose " + std::to_string(i) + " has " + std::to_string(p.keypoints.size()) +
                  " keypoints, the wire format holds " + std::to_string(kPoseKeypoints));
    PoseRecord r;
    r.score = p.score;
    for (int j = 0; j < 4; ++j) r.bbox[j] = p.bbox[j];
    for (int k = 0; k < kPoseKeypoints; ++k) {
      r.kpt[k][0] = p.keypoints[k].x;
      r.kpt[k][1] = p.keypoints[k].y;
      r.kpt[k][2] = p.keypoints[k].score;
    }
    std::memcpy(bytes + 16 + static_cast<size_t>(i) * sizeof(PoseRecord), &r, sizeof(r));
  }
  const int32_t c = count;
  std::memcpy(bytes, &c, sizeof(c));
}

void map_pose(Pose& p, const CropTransform& t) {
  for (auto& kp : p.keypoints) {
    kp.x = kp.x * t.scale_x + t.offset_x;
    kp.y = kp.y * t.scale_y + t.offset_y;
  }
  p.bbox[0] = p.bbox[0] * t.scale_x + t.offset_x;
  p.bbox[1] = p.bbox[1] * t.scale_y + t.offset_y;
  p.bbox[2] *= t.scale_x;
  p.bbox[3] *= t.scale_y;
}

}  // namespace posert
