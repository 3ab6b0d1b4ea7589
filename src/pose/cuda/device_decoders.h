// The per-model GPU decoders behind GpuPoseDecoder: one implementation per DecoderKind, each in
// its own .cu file. Internal to src/pose/cuda; plain C++ (streams are void*).
#pragma once
#include <memory>
#include <vector>

#include "pose/model_spec.h"
#include "pose/pose_record.h"
#include "pose/posenet.h"

namespace posert::cuda::detail {

class DeviceDecoder {
 public:
  virtual ~DeviceDecoder() = default;
  // heads: device pointers in spec.head_values order (count already checked); out: n items of
  // `layout`. Launches only: no allocation, no synchronization.
  virtual void enqueue(const std::vector<const float*>& heads, int n, const CropTransform* transforms, void* out,
                       void* stream) = 0;
};

// MoveNet SinglePose: one pose per item (layout.max_poses == 1).
std::unique_ptr<DeviceDecoder> make_movenet_single_decoder(const ModelSpec& spec, int max_batch,
                                                           const PoseItemLayout& layout);
// MoveNet MultiPose: up to 6 poses per item, those scoring > 0 and >= min_pose_score.
std::unique_ptr<DeviceDecoder> make_movenet_multi_decoder(const ModelSpec& spec, int max_batch,
                                                          const PoseItemLayout& layout, float min_pose_score);
// PoseNet decodeMultiplePoses with `params` (max_detections <= layout.max_poses).
std::unique_ptr<DeviceDecoder> make_posenet_decoder(const ModelSpec& spec, int max_batch, const PoseItemLayout& layout,
                                                    const PoseNetParams& params);

}  // namespace posert::cuda::detail
