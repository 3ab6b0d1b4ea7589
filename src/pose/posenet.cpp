// PoseNet multi-person decoding: part peaks -> score-ordered roots -> tree traversal along the
// displacement fields with offset refinement -> NMS against earlier poses by keypoint distance.
#include "pose/decode_common.h"
#include "pose/posenet.h"

#include <algorithm>
#include <cmath>

namespace posert {

namespace {

constexpr int kKeypoints = 17;
constexpr int kEdges = 16;
constexpr int kStride = 16;


struct Point {
  double y = 0, x = 0;
};


class Decoder {
 public:
  explicit Decoder(const PoseNetHeads& h) : G_(h.grid), logits_(h.logits), offsets_(h.offsets), fwd_(h.fwd), bwd_(h.bwd) {}

  // The part score: sigmoid of the heatmap logit (computed where needed).
  float score(int y, int x, int k) const { return posenet_score(logits_[(y * G_ + x) * kKeypoints + k]); }

  // Cell position * stride + the keypoint's offset there.
  Point image_coords(int y, int x, int k) const {
    const float* o = offsets_ + (y * G_ + x) * 2 * kKeypoints;
    return {static_cast<double>(y) * kStride + o[k], static_cast<double>(x) * kStride + o[kKeypoints + k]};
  }

  // The nearest cell to a position (JS Math.round: halves go up), clamped to the grid; clamped
  // before the cast so that NaN or huge values from a broken head stay defined (cell 0 for NaN).
  int nearest_index(double v) const {
    const double c = std::floor(v / kStride + 0.5);
    return c >= G_ - 1 ? G_ - 1 : c >= 0 ? static_cast<int>(c) : 0;
  }
  void nearest_cell(const Point& p, int* y, int* x) const {
    *y = nearest_index(p.y);
    *x = nearest_index(p.x);
  }

  // Follows edge `edge` from `source` to keypoint `target` by the displacement field, then snaps to
  // the target's offset-refined position `refine_steps` times. Returns the score at the final cell.
  float traverse(int edge, const Point& source, int target, bool forward, int refine_steps, Point* pos) const {
    int sy, sx;
    nearest_cell(source, &sy, &sx);
    const float* d = (forward ? fwd_ : bwd_) + (sy * G_ + sx) * 2 * kEdges;
    Point t{source.y + d[edge], source.x + d[kEdges + edge]};
    for (int i = 0; i < refine_steps; ++i) {
      int ty, tx;
      nearest_cell(t, &ty, &tx);
      t = image_coords(ty, tx, target);
    }
    int ty, tx;
    nearest_cell(t, &ty, &tx);
    *pos = t;
    return score(ty, tx, target);
  }

 private:
  int G_;
  const float* logits_;
  const float* offsets_;
  const float* fwd_;
  const float* bwd_;
};

struct RawPose {
  Point pos[kKeypoints];
  float kscore[kKeypoints];
  float score;
};

bool within_nms_radius(const std::vector<RawPose>& poses, double sq_radius, const Point& p, int k) {
  for (const auto& q : poses) {
    const double dy = q.pos[k].y - p.y, dx = q.pos[k].x - p.x;
    if (dy * dy + dx * dx <= sq_radius) return true;
  }
  return false;
}

}  // namespace

std::vector<Pose> decode_posenet(const ModelSpec& spec, const std::vector<const Tensor*>& heads, int b,
                                 const PoseNetParams& params) {
  if (heads.size() != 4 || spec.head_values.size() != 4)
    throw Error(spec.name + " decoder needs 4 head tensors (heatmap, offsets, forward and backward "
                            "displacements), got " + std::to_string(heads.size()));
  const int G = (spec.input_size - 1) / kStride + 1;
  const size_t cells = static_cast<size_t>(G) * G;
  const float* logits =
      checked_head(spec, heads, 0, b, G, kKeypoints, "heatmap logits").data<float>() + b * cells * kKeypoints;
  const float* offsets = checked_head(spec, heads, 1, b, G, 2 * kKeypoints, "offsets").data<float>() +
                         b * cells * 2 * kKeypoints;
  const float* fwd = checked_head(spec, heads, 2, b, G, 2 * kEdges, "forward displacements").data<float>() +
                     b * cells * 2 * kEdges;
  const float* bwd = checked_head(spec, heads, 3, b, G, 2 * kEdges, "backward displacements").data<float>() +
                     b * cells * 2 * kEdges;

  std::vector<float> scores(cells * kKeypoints);
  for (size_t i = 0; i < scores.size(); ++i) scores[i] = posenet_score(logits[i]);
  auto score = [&](int y, int x, int k) { return scores[(y * G + x) * kKeypoints + k]; };

  // Root candidates: parts scoring at least the threshold with no larger score nearby.
  std::vector<PoseNetRoot> queue;
  const int r = params.local_maximum_radius;
  for (int y = 0; y < G; ++y)
    for (int x = 0; x < G; ++x)
      for (int k = 0; k < kKeypoints; ++k) {
        const float s = score(y, x, k);
        if (!(s >= params.part_threshold)) continue;  // also skips NaN
        bool is_max = true;
        for (int yy = std::max(0, y - r); yy <= std::min(G - 1, y + r) && is_max; ++yy)
          for (int xx = std::max(0, x - r); xx <= std::min(G - 1, x + r); ++xx)
            if (score(yy, xx, k) > s) {
              is_max = false;
              break;
            }
        if (is_max) queue.push_back({s, y, x, k});
      }
  std::stable_sort(queue.begin(), queue.end(), [](const PoseNetRoot& a, const PoseNetRoot& c) { return a.score > c.score; });

  size_t next = 0;
  return posenet_group({G, logits, offsets, fwd, bwd}, params, [&](PoseNetRoot* r) {
    if (next >= queue.size()) return false;
    *r = queue[next++];
    return true;
  });
}

std::vector<Pose> posenet_group(const PoseNetHeads& heads, const PoseNetParams& params,
                                const std::function<bool(PoseNetRoot*)>& next_root) {
  const Decoder dec(heads);
  const double sq_radius = static_cast<double>(params.nms_radius) * params.nms_radius;
  std::vector<RawPose> poses;
  PoseNetRoot root;
  while (static_cast<int>(poses.size()) < params.max_detections && next_root(&root)) {
    const Point root_pos = dec.image_coords(root.y, root.x, root.k);
    if (within_nms_radius(poses, sq_radius, root_pos, root.k)) continue;

    RawPose pose{};
    bool have[kKeypoints] = {};
    pose.pos[root.k] = root_pos;
    pose.kscore[root.k] = root.score;
    have[root.k] = true;
    // Up the tree (child -> parent) by the backward field, then down (parent -> child) forward.
    for (int e = kEdges - 1; e >= 0; --e) {
      const int src = kPoseNetEdges[e][1], dst = kPoseNetEdges[e][0];
      if (have[src] && !have[dst]) {
        pose.kscore[dst] = dec.traverse(e, pose.pos[src], dst, false, params.refine_steps, &pose.pos[dst]);
        have[dst] = true;
      }
    }
    for (int e = 0; e < kEdges; ++e) {
      const int src = kPoseNetEdges[e][0], dst = kPoseNetEdges[e][1];
      if (have[src] && !have[dst]) {
        pose.kscore[dst] = dec.traverse(e, pose.pos[src], dst, true, params.refine_steps, &pose.pos[dst]);
        have[dst] = true;
      }
    }
    // Instance score: keypoints already claimed by an earlier pose do not count.
    double sum = 0;
    for (int k = 0; k < kKeypoints; ++k)
      if (!within_nms_radius(poses, sq_radius, pose.pos[k], k)) sum += pose.kscore[k];
    pose.score = static_cast<float>(sum / kKeypoints);
    poses.push_back(pose);
  }

  std::vector<Pose> out;
  for (const RawPose& rp : poses) {
    if (rp.score < params.min_pose_score) continue;
    Pose p;
    p.score = rp.score;
    p.keypoints.resize(kKeypoints);
    float x0 = 0, y0 = 0, x1 = 0, y1 = 0;
    for (int k = 0; k < kKeypoints; ++k) {
      // PoseNet positions put pixel centres on integers; ours put them at i + 0.5.
      Keypoint& kp = p.keypoints[k];
      kp.x = static_cast<float>(rp.pos[k].x + 0.5);
      kp.y = static_cast<float>(rp.pos[k].y + 0.5);
      kp.score = rp.kscore[k];
      x0 = k == 0 ? kp.x : std::min(x0, kp.x);
      y0 = k == 0 ? kp.y : std::min(y0, kp.y);
      x1 = k == 0 ? kp.x : std::max(x1, kp.x);
      y1 = k == 0 ? kp.y : std::max(y1, kp.y);
    }
    p.bbox = {x0, y0, x1 - x0, y1 - y0};
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace posert
