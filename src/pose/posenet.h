// PoseNet multi-person decoder (the decodeMultiplePoses algorithm of tfjs-models posenet): part
// peaks become pose roots in score order; each root grows a pose along the 17-keypoint tree by
// the displacement fields, refined by the offsets; roots near an existing pose are skipped.
#pragma once
#include <cmath>
#include <functional>
#include <vector>

#include "pose/model_spec.h"

namespace posert {

struct PoseNetParams {
  float part_threshold = 0.5f;   // a peak must score at least this to seed a pose
  float nms_radius = 20.0f;      // model-input pixels
  int max_detections = 6;
  int local_maximum_radius = 1;  // peak = no larger score within this many cells (Chebyshev)
  int refine_steps = 2;          // offset refinements after each displacement step
  float min_pose_score = 0.0f;   // drop poses scoring below this
};

// heads, in spec.head_values order: heatmap logits [N,G,G,17], offsets [N,G,G,34] (y in channels
// 0..16, x in 17..33), forward and backward displacements [N,G,G,32] (y in 0..15, x in 16..31,
// edge order of the tree), G = (input_size - 1) / 16 + 1. Poses come in model-input pixels,
// pixel i spanning [i, i+1): PoseNet's cell c lies at pixel centre 16c, i.e. 16c + 0.5 here.
// Keypoint score = sigmoid of the heatmap at the nearest cell; pose score = sum of the scores of
// the keypoints not within nms_radius of the same keypoint of an earlier pose, / 17; bbox =
// min/max of the 17 keypoints. Ties in the peak queue go to the earlier cell (y, x, keypoint).
// Throws posert::Error on other shapes.
std::vector<Pose> decode_posenet(const ModelSpec& spec, const std::vector<const Tensor*>& heads, int b,
                                 const PoseNetParams& params);

// The pieces decode_posenet is made of, shared with the optimized CPU decoder (cpu_decode.cpp),
// which finds the same roots faster and hands them over in the same order.
struct PoseNetHeads {
  int grid;  // G
  const float* logits;   // [G, G, 17]
  const float* offsets;  // [G, G, 34]
  const float* fwd;      // [G, G, 32]
  const float* bwd;      // [G, G, 32]
};
struct PoseNetRoot {
  float score;  // posenet_score of the part
  int y, x, k;
};
// A part's score: the sigmoid of its heatmap logit, in float as TF.js computes it.
inline float posenet_score(float logit) { return 1.0f / (1.0f + std::exp(-logit)); }
// Grows poses from the roots next_root hands out (best first; it returns false when there are no
// more), skipping roots within nms_radius of the same keypoint of an earlier pose, until
// max_detections poses; scores them and drops those under min_pose_score. Model-input pixels.
std::vector<Pose> posenet_group(const PoseNetHeads& heads, const PoseNetParams& params,
                                const std::function<bool(PoseNetRoot*)>& next_root);

// The PoseNet tree: edge e goes from parent kPoseNetEdges[e][0] to child kPoseNetEdges[e][1].
inline constexpr int kPoseNetEdges[16][2] = {{0, 1},  {1, 3},   {0, 2},   {2, 4},   {0, 5},  {5, 7},
                                             {7, 9},  {5, 11},  {11, 13}, {13, 15}, {0, 6},  {6, 8},
                                             {8, 10}, {6, 12},  {12, 14}, {14, 16}};

}  // namespace posert
