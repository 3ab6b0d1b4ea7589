// GpuPoseDecoder: checks the model and batch, maps DecodeOptions onto the decoder's settings as
// decode_heads does, and hands the launches to the model's DeviceDecoder.
#include "pose/cuda/gpu_decode.h"

#include <algorithm>
#include <string>

#include "pose/cuda/device_decoders.h"
#include "pose/movenet_multi.h"
#include "posert/error.h"

namespace posert::cuda {

GpuPoseDecoder::GpuPoseDecoder(const ModelSpec& spec, int max_batch, const DecodeOptions& opt) : max_batch_(max_batch) {
  if (max_batch < 1) throw Error(spec.name + " GPU decoder: max_batch must be at least 1, got " + std::to_string(max_batch));
  head_count_ = spec.head_values.size();
  switch (spec.decoder) {
    case DecoderKind::MoveNetSingle:
      if (head_count_ != 4) throw Error(spec.name + " GPU decoder: the model spec names " + std::to_string(head_count_) + " heads, expected 4");
      layout_.max_poses = 1;
      impl_ = detail::make_movenet_single_decoder(spec, max_batch, layout_);
      break;
    case DecoderKind::MoveNetMulti:
      if (head_count_ != 6) throw Error(spec.name + " GPU decoder: the model spec names " + std::to_string(head_count_) + " heads, expected 6");
      layout_.max_poses = kMoveNetMultiPeople;
      impl_ = detail::make_movenet_multi_decoder(spec, max_batch, layout_, opt.min_pose_score);
      break;
    case DecoderKind::PoseNet: {
      if (head_count_ != 4) throw Error(spec.name + " GPU decoder: the model spec names " + std::to_string(head_count_) + " heads, expected 4");
      if (spec.max_people < 1 || spec.max_people > kMaxPosesPerItem)
        throw Error(spec.name + " GPU decoder: max_people " + std::to_string(spec.max_people) + " is not in 1.." +
                    std::to_string(kMaxPosesPerItem));
      // As decode_heads: 0 (the default) keeps tfjs-models' part threshold of 0.5.
      PoseNetParams p;
      if (opt.min_keypoint_score > 0) p.part_threshold = opt.min_keypoint_score;
      p.max_detections = spec.max_people;
      p.min_pose_score = opt.min_pose_score;
      layout_.max_poses = spec.max_people;
      impl_ = detail::make_posenet_decoder(spec, max_batch, layout_, p);
      break;
    }
  }
  if (!impl_) throw Error("internal: model '" + spec.name + "' names an unknown decoder");
}

GpuPoseDecoder::~GpuPoseDecoder() = default;

void GpuPoseDecoder::enqueue(const std::vector<const float*>& d_heads, int n, const CropTransform* d_transforms,
                             void* d_out, void* stream) {
  if (n < 1 || n > max_batch_)
    throw Error("GPU pose decoder: batch " + std::to_string(n) + " is not in 1.." + std::to_string(max_batch_));
  if (d_heads.size() != head_count_)
    throw Error("GPU pose decoder: got " + std::to_string(d_heads.size()) + " head buffers, expected " +
                std::to_string(head_count_));
  if (std::find(d_heads.begin(), d_heads.end(), nullptr) != d_heads.end() || !d_transforms || !d_out)
    throw Error("GPU pose decoder: null device buffer");
  impl_->enqueue(d_heads, n, d_transforms, d_out, stream);
}

}  // namespace posert::cuda
