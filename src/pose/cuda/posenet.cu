// PoseNet decodeMultiplePoses on the GPU, as decode_posenet + the crop transform: sigmoid
// (element per thread), part peaks compacted in (y, x, k) order (block per item), the stable
// score order by counting ranks (thread per candidate), then the tree traversal and NMS grouping
// (warp per item: lanes test 32 roots against the earlier poses at once, lane 0 grows the pose).
// Positions are double as on the CPU, with _rn intrinsics so nothing is contracted into FMAs.
#include <cuda_runtime.h>

#include "pose/cuda/decode_common.cuh"
#include "pose/cuda/device_decoders.h"
#include "pose/posenet.h"

namespace posert::cuda::detail {

namespace {

constexpr int kK = kPoseKeypoints;
constexpr int kEdges = 16;
constexpr double kStride = 16.0;

__constant__ int c_edges[kEdges][2];

struct Candidate {
  float score;
  int index;  // (y * G + x) * 17 + k: the CPU's push order
};

struct PoseNetArgs {
  const float *logits, *offsets, *fwd, *bwd;
  int G;
  float part_threshold;
  int local_maximum_radius;
  int refine_steps;
  int max_detections;
  double sq_radius;
  float min_pose_score;
  float* scores;        // [N, G, G, 17] after sigmoid
  Candidate* cand;      // [N, cap] peaks in index order
  Candidate* sorted;    // [N, cap] peaks in score order
  int* cand_count;      // [N]
  int cap;              // G * G * 17
  const CropTransform* tf;
  void* out;
  int max_poses;
};

__global__ void posenet_sigmoid_kernel(const float* __restrict__ logits, float* __restrict__ scores, int64_t total) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < total) scores[i] = __fdiv_rn(1.0f, __fadd_rn(1.0f, exp_as_cpu(-logits[i])));
}

constexpr int kCandThreads = 1024;

// Parts scoring at least the threshold with no larger score within the radius, in index order:
// each thread takes a contiguous run of indices, then a block scan gives each run its place.
__global__ void __launch_bounds__(kCandThreads) posenet_candidates_kernel(PoseNetArgs a) {
  const int b = blockIdx.x, G = a.G, total = a.cap, tid = threadIdx.x;
  const float* s = a.scores + static_cast<size_t>(b) * total;
  const int per = (total + kCandThreads - 1) / kCandThreads;
  const int lo = min(tid * per, total), hi = min(lo + per, total);
  const int r = a.local_maximum_radius;
  auto is_peak = [&](int i) {
    const float v = s[i];
    if (!(v >= a.part_threshold)) return false;  // also NaN
    const int k = i % kK, cell = i / kK, y = cell / G, x = cell % G;
    for (int yy = max(0, y - r); yy <= min(G - 1, y + r); ++yy)
      for (int xx = max(0, x - r); xx <= min(G - 1, x + r); ++xx)
        if (s[(yy * G + xx) * kK + k] > v) return false;
    return true;
  };
  int mine = 0;
  for (int i = lo; i < hi; ++i) mine += is_peak(i) ? 1 : 0;

  // Exclusive block scan of the per-thread counts (warp scans, then over the warp totals).
  __shared__ int s_warp[kCandThreads / 32];
  const int lane = tid & 31, warp = tid >> 5;
  int incl = mine;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const int v = __shfl_up_sync(0xffffffffu, incl, o);
    if (lane >= o) incl += v;
  }
  if (lane == 31) s_warp[warp] = incl;
  __syncthreads();
  if (warp == 0) {
    int w = s_warp[lane];
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int v = __shfl_up_sync(0xffffffffu, w, o);
      if (lane >= o) w += v;
    }
    s_warp[lane] = w;  // inclusive over warps
  }
  __syncthreads();
  int pos = incl - mine + (warp > 0 ? s_warp[warp - 1] : 0);
  Candidate* out = a.cand + static_cast<size_t>(b) * total;
  for (int i = lo; i < hi; ++i)
    if (is_peak(i)) out[pos++] = {s[i], i};
  if (tid == kCandThreads - 1) a.cand_count[b] = pos;
}

constexpr int kRankThreads = 256;

// The CPU's stable sort by score descending: candidate j goes to the number of candidates that
// rank before it (higher score, or equal score and earlier index).
__global__ void __launch_bounds__(kRankThreads) posenet_rank_kernel(PoseNetArgs a) {
  const int b = blockIdx.y;
  const int count = a.cand_count[b];
  if (static_cast<int>(blockIdx.x) * kRankThreads >= count) return;  // the whole block
  const Candidate* cand = a.cand + static_cast<size_t>(b) * a.cap;
  const int j = blockIdx.x * kRankThreads + threadIdx.x;
  const Candidate me = j < count ? cand[j] : Candidate{0, 0};
  __shared__ Candidate tile[kRankThreads];
  int rank = 0;
  for (int base = 0; base < count; base += kRankThreads) {
    const int t = base + threadIdx.x;
    if (t < count) tile[threadIdx.x] = cand[t];
    __syncthreads();
    const int m = min(kRankThreads, count - base);
    for (int i = 0; i < m; ++i) {
      const Candidate o = tile[i];
      rank += (o.score > me.score || (o.score == me.score && o.index < me.index)) ? 1 : 0;
    }
    __syncthreads();
  }
  if (j < count) a.sorted[static_cast<size_t>(b) * a.cap + rank] = me;
}

struct Point {
  double y, x;
};

struct Grouping {
  const float *scores, *offsets, *fwd, *bwd;
  int G;

  __device__ float score(int y, int x, int k) const { return scores[(y * G + x) * kK + k]; }
  __device__ Point image_coords(int y, int x, int k) const {
    const float* o = offsets + (y * G + x) * 2 * kK;
    return {__dadd_rn(__dmul_rn(static_cast<double>(y), kStride), static_cast<double>(o[k])),
            __dadd_rn(__dmul_rn(static_cast<double>(x), kStride), static_cast<double>(o[kK + k]))};
  }
  // JS Math.round to a cell, clamped before the cast (NaN -> 0), as the CPU.
  __device__ int nearest_index(double v) const {
    const double c = floor(__dadd_rn(__ddiv_rn(v, kStride), 0.5));
    return c >= G - 1 ? G - 1 : c >= 0 ? static_cast<int>(c) : 0;
  }
  __device__ float traverse(int edge, Point source, int target, bool forward, int refine_steps, Point* pos) const {
    const int sy = nearest_index(source.y), sx = nearest_index(source.x);
    const float* d = (forward ? fwd : bwd) + (sy * G + sx) * 2 * kEdges;
    Point t{__dadd_rn(source.y, static_cast<double>(d[edge])), __dadd_rn(source.x, static_cast<double>(d[kEdges + edge]))};
    for (int i = 0; i < refine_steps; ++i) t = image_coords(nearest_index(t.y), nearest_index(t.x), target);
    *pos = t;
    return score(nearest_index(t.y), nearest_index(t.x), target);
  }
};

struct RawPose {
  Point pos[kK];
  float kscore[kK];
  float score;
};

__device__ bool within_nms_radius(const RawPose* poses, int n, double sq_radius, Point p, int k) {
  for (int q = 0; q < n; ++q) {
    const double dy = __dsub_rn(poses[q].pos[k].y, p.y), dx = __dsub_rn(poses[q].pos[k].x, p.x);
    if (__dadd_rn(__dmul_rn(dy, dy), __dmul_rn(dx, dx)) <= sq_radius) return true;
  }
  return false;
}

// One warp per item.
__global__ void __launch_bounds__(32) posenet_group_kernel(PoseNetArgs a) {
  const int b = blockIdx.x, lane = threadIdx.x, G = a.G;
  const size_t cells = static_cast<size_t>(G) * G;
  const Grouping g{a.scores + static_cast<size_t>(b) * cells * kK, a.offsets + static_cast<size_t>(b) * cells * 2 * kK,
                   a.fwd + static_cast<size_t>(b) * cells * 2 * kEdges,
                   a.bwd + static_cast<size_t>(b) * cells * 2 * kEdges, G};
  const Candidate* roots = a.sorted + static_cast<size_t>(b) * a.cap;
  const int count = a.cand_count[b];
  __shared__ RawPose s_poses[kMaxPosesPerItem];
  __shared__ int s_slot[kMaxPosesPerItem];

  int npose = 0, next = 0;
  while (npose < a.max_detections && next < count) {
    // The first of the next 32 roots that no earlier pose claims (same keypoint within radius).
    const int j = next + lane;
    bool free_root = false;
    Point root_pos{0, 0};
    Candidate root{0, 0};
    if (j < count) {
      root = roots[j];
      const int cell = root.index / kK;
      root_pos = g.image_coords(cell / G, cell % G, root.index % kK);
      free_root = !within_nms_radius(s_poses, npose, a.sq_radius, root_pos, root.index % kK);
    }
    const unsigned mask = __ballot_sync(0xffffffffu, free_root);
    if (mask == 0) {
      next += 32;
      continue;
    }
    const int first = __ffs(mask) - 1;
    if (lane == first) {
      RawPose& pose = s_poses[npose];
      bool have[kK];
      for (int k = 0; k < kK; ++k) have[k] = false;
      const int rk = root.index % kK;
      pose.pos[rk] = root_pos;
      pose.kscore[rk] = root.score;
      have[rk] = true;
      // Up the tree (child -> parent) by the backward field, then down by the forward field.
      for (int e = kEdges - 1; e >= 0; --e) {
        const int src = c_edges[e][1], dst = c_edges[e][0];
        if (have[src] && !have[dst]) {
          pose.kscore[dst] = g.traverse(e, pose.pos[src], dst, false, a.refine_steps, &pose.pos[dst]);
          have[dst] = true;
        }
      }
      for (int e = 0; e < kEdges; ++e) {
        const int src = c_edges[e][0], dst = c_edges[e][1];
        if (have[src] && !have[dst]) {
          pose.kscore[dst] = g.traverse(e, pose.pos[src], dst, true, a.refine_steps, &pose.pos[dst]);
          have[dst] = true;
        }
      }
      // Instance score: keypoints already claimed by an earlier pose do not count.
      double sum = 0;
      for (int k = 0; k < kK; ++k)
        if (!within_nms_radius(s_poses, npose, a.sq_radius, pose.pos[k], k))
          sum = __dadd_rn(sum, static_cast<double>(pose.kscore[k]));
      pose.score = __double2float_rn(__ddiv_rn(sum, static_cast<double>(kK)));
    }
    __syncwarp();
    ++npose;
    next += first + 1;
  }

  // Poses scoring at least min_pose_score -> records in frame pixels.
  if (lane == 0) {
    int n = 0;
    for (int p = 0; p < npose; ++p) s_slot[p] = s_poses[p].score < a.min_pose_score ? -1 : n++;
    write_item_header(a.out, b, a.max_poses, n);
    for (int p = npose; p < kMaxPosesPerItem; ++p) s_slot[p] = -1;
  }
  __syncwarp();
  const CropTransform t = a.tf[b];
  PoseRecord* recs = item_records(a.out, b, a.max_poses);
  int written = 0;
  for (int p = 0; p < npose; ++p) {
    const int slot = s_slot[p];
    if (slot < 0) continue;
    ++written;
    const RawPose& rp = s_poses[p];
    PoseRecord& r = recs[slot];
    // PoseNet puts pixel centres on integers; model-input pixels put them at i + 0.5.
    if (lane < kK) {
      r.kpt[lane][0] = frame_x(t, __double2float_rn(__dadd_rn(rp.pos[lane].x, 0.5)));
      r.kpt[lane][1] = frame_y(t, __double2float_rn(__dadd_rn(rp.pos[lane].y, 0.5)));
      r.kpt[lane][2] = rp.kscore[lane];
    }
    if (lane == 0) {
      float x0 = 0, y0 = 0, x1 = 0, y1 = 0;
      for (int k = 0; k < kK; ++k) {
        const float kx = __double2float_rn(__dadd_rn(rp.pos[k].x, 0.5));
        const float ky = __double2float_rn(__dadd_rn(rp.pos[k].y, 0.5));
        x0 = k == 0 ? kx : std_min(x0, kx);
        y0 = k == 0 ? ky : std_min(y0, ky);
        x1 = k == 0 ? kx : std_max(x1, kx);
        y1 = k == 0 ? ky : std_max(y1, ky);
      }
      r.score = rp.score;
      r.bbox[0] = frame_x(t, x0);
      r.bbox[1] = frame_y(t, y0);
      r.bbox[2] = __fmul_rn(__fsub_rn(x1, x0), t.scale_x);
      r.bbox[3] = __fmul_rn(__fsub_rn(y1, y0), t.scale_y);
    }
  }
  zero_item_records(a.out, b, a.max_poses, written);
}

class PoseNetDecoder : public DeviceDecoder {
 public:
  PoseNetDecoder(const ModelSpec& spec, int max_batch, const PoseItemLayout& layout, const PoseNetParams& params)
      : G_((spec.input_size - 1) / 16 + 1),
        cap_(G_ * G_ * kK),
        params_(params),
        max_poses_(layout.max_poses),
        scores_(static_cast<size_t>(max_batch) * cap_ * sizeof(float), "PoseNet score workspace"),
        cand_(static_cast<size_t>(max_batch) * cap_ * sizeof(Candidate), "PoseNet candidate workspace"),
        sorted_(static_cast<size_t>(max_batch) * cap_ * sizeof(Candidate), "PoseNet candidate workspace"),
        count_(static_cast<size_t>(max_batch) * sizeof(int), "PoseNet candidate workspace") {
    if (params.max_detections < 0 || params.max_detections > layout.max_poses)
      throw Error(spec.name + ": max_detections " + std::to_string(params.max_detections) + " is not in 0.." +
                  std::to_string(layout.max_poses));
    if (params.local_maximum_radius < 0 || params.refine_steps < 0)
      throw Error(spec.name + ": negative local_maximum_radius or refine_steps");
    cuda_check(cudaMemcpyToSymbol(c_edges, kPoseNetEdges, sizeof(c_edges)), "uploading the PoseNet tree");
  }

  void enqueue(const std::vector<const float*>& heads, int n, const CropTransform* transforms, void* out,
               void* stream) override {
    PoseNetArgs a{};
    a.logits = heads[0];
    a.offsets = heads[1];
    a.fwd = heads[2];
    a.bwd = heads[3];
    a.G = G_;
    a.part_threshold = params_.part_threshold;
    a.local_maximum_radius = params_.local_maximum_radius;
    a.refine_steps = params_.refine_steps;
    a.max_detections = params_.max_detections;
    a.sq_radius = static_cast<double>(params_.nms_radius) * params_.nms_radius;
    a.min_pose_score = params_.min_pose_score;
    a.scores = scores_.as<float>();
    a.cand = cand_.as<Candidate>();
    a.sorted = sorted_.as<Candidate>();
    a.cand_count = count_.as<int>();
    a.cap = cap_;
    a.tf = transforms;
    a.out = out;
    a.max_poses = max_poses_;
    const auto s = static_cast<cudaStream_t>(stream);
    const int64_t total = static_cast<int64_t>(n) * cap_;
    posenet_sigmoid_kernel<<<static_cast<unsigned>((total + 255) / 256), 256, 0, s>>>(a.logits, a.scores, total);
    launch_check("posenet_sigmoid_kernel");
    posenet_candidates_kernel<<<n, kCandThreads, 0, s>>>(a);
    launch_check("posenet_candidates_kernel");
    posenet_rank_kernel<<<dim3((cap_ + kRankThreads - 1) / kRankThreads, n), kRankThreads, 0, s>>>(a);
    launch_check("posenet_rank_kernel");
    posenet_group_kernel<<<n, 32, 0, s>>>(a);
    launch_check("posenet_group_kernel");
  }

 private:
  int G_, cap_;
  PoseNetParams params_;
  int max_poses_;
  DeviceBuffer scores_, cand_, sorted_, count_;
};

}  // namespace

std::unique_ptr<DeviceDecoder> make_posenet_decoder(const ModelSpec& spec, int max_batch, const PoseItemLayout& layout,
                                                    const PoseNetParams& params) {
  return std::make_unique<PoseNetDecoder>(spec, max_batch, layout, params);
}

}  // namespace posert::cuda::detail
