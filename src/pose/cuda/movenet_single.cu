// MoveNet SinglePose on the GPU: movenet_single_raw + decode_movenet_single + the crop transform,
// one block per batch item, bit for bit equal to the CPU (same float operations, same order,
// first index on argmax ties). The centre weights are a table uploaded once.
#include <cuda_runtime.h>

#include <vector>

#include "pose/cuda/decode_common.cuh"
#include "pose/cuda/device_decoders.h"
#include "pose/movenet_single.h"

namespace posert::cuda::detail {

namespace {

constexpr int kK = kPoseKeypoints;
constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

struct SingleArgs {
  const float* centre;  // [N, G, G, 1]
  const float* heat;    // [N, G, G, 17]
  const float* reg;     // [N, G, G, 34]
  const float* off;     // [N, G, G, 34]
  const float* weight;  // [G, G] movenet_centre_weight
  int G;
  float out_scale;   // movenet_output_scale(G)
  float input_size;  // keypoints = raw * input_size
  const CropTransform* tf;
  void* out;
  int max_poses;
};

__device__ __forceinline__ float keypoint_value(const float* heat, int i, int k, int G, float ry, float rx) {
  const float dy = __fsub_rn(static_cast<float>(i / G), ry);
  const float dx = __fsub_rn(static_cast<float>(i % G), rx);
  const float dist = __fsqrt_rn(__fadd_rn(__fmul_rn(dy, dy), __fmul_rn(dx, dx)));
  return __fdiv_rn(heat[i * kK + k], __fadd_rn(dist, kMoveNetKeypointDistEps));
}

__global__ void __launch_bounds__(kThreads) movenet_single_kernel(SingleArgs a) {
  const int b = blockIdx.x;
  const int G = a.G, cells = G * G;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const float* centre = a.centre + static_cast<size_t>(b) * cells;
  const float* heat = a.heat + static_cast<size_t>(b) * cells * kK;
  const float* reg = a.reg + static_cast<size_t>(b) * cells * 2 * kK;
  const float* off = a.off + static_cast<size_t>(b) * cells * 2 * kK;

  __shared__ ArgMax s_part[kWarps][kK];
  __shared__ int s_centre;
  __shared__ float s_ry[kK], s_rx[kK];
  __shared__ float s_kp[kK][3];  // x, y, score in model-input pixels

  // 1. Centre: argmax of centre * weight.
  ArgMax c = argmax_empty();
  for (int i = tid; i < cells; i += kThreads) argmax_take(c, __fmul_rn(centre[i], a.weight[i]), i);
  c = warp_argmax(c);
  if (lane == 0) s_part[warp][0] = c;
  __syncthreads();
  if (tid == 0) {
    ArgMax m = s_part[0][0];
    for (int w = 1; w < kWarps; ++w) argmax_take(m, s_part[w][0].v, s_part[w][0].i);
    s_centre = isnan(__fmul_rn(centre[0], a.weight[0])) ? 0 : m.i;
  }
  __syncthreads();
  const int best = s_centre;

  // 2. Regressed keypoint positions from the centre cell, in grid units.
  if (tid < kK) {
    s_ry[tid] = __fadd_rn(static_cast<float>(best / G), reg[best * 2 * kK + 2 * tid]);
    s_rx[tid] = __fadd_rn(static_cast<float>(best % G), reg[best * 2 * kK + 2 * tid + 1]);
  }
  __syncthreads();

  // 3. Per keypoint: argmax of heat / (distance + eps). Each thread scans its cells for all 17
  // keypoints (the 17 heat values of a cell are contiguous), then warps and the block reduce.
  float ry[kK], rx[kK];
  ArgMax m[kK];
#pragma unroll
  for (int k = 0; k < kK; ++k) {
    ry[k] = s_ry[k];
    rx[k] = s_rx[k];
    m[k] = argmax_empty();
  }
  for (int i = tid; i < cells; i += kThreads) {
#pragma unroll
    for (int k = 0; k < kK; ++k) argmax_take(m[k], keypoint_value(heat, i, k, G, ry[k], rx[k]), i);
  }
#pragma unroll
  for (int k = 0; k < kK; ++k) {
    const ArgMax r = warp_argmax(m[k]);
    if (lane == 0) s_part[warp][k] = r;
  }
  __syncthreads();
  if (tid < kK) {
    const int k = tid;
    ArgMax r = s_part[0][k];
    for (int w = 1; w < kWarps; ++w) argmax_take(r, s_part[w][k].v, s_part[w][k].i);
    const int kb = isnan(keypoint_value(heat, 0, k, G, s_ry[k], s_rx[k])) ? 0 : r.i;
    const float y = __fadd_rn(static_cast<float>(kb / G), off[kb * 2 * kK + 2 * k]);
    const float x = __fadd_rn(static_cast<float>(kb % G), off[kb * 2 * kK + 2 * k + 1]);
    s_kp[k][0] = __fmul_rn(__fmul_rn(x, a.out_scale), a.input_size);
    s_kp[k][1] = __fmul_rn(__fmul_rn(y, a.out_scale), a.input_size);
    s_kp[k][2] = heat[kb * kK + k];
  }
  __syncthreads();

  // 4. The pose: score = mean keypoint score, bbox = min/max of the keypoints, then frame pixels.
  PoseRecord* rec = item_records(a.out, b, a.max_poses);
  const CropTransform t = a.tf[b];
  if (tid < kK) {
    rec->kpt[tid][0] = frame_x(t, s_kp[tid][0]);
    rec->kpt[tid][1] = frame_y(t, s_kp[tid][1]);
    rec->kpt[tid][2] = s_kp[tid][2];
  }
  if (tid == 0) {
    float sum = 0, x0 = 0, y0 = 0, x1 = 0, y1 = 0;
    for (int k = 0; k < kK; ++k) {
      const float kx = s_kp[k][0], ky = s_kp[k][1];
      sum = __fadd_rn(sum, s_kp[k][2]);
      x0 = k == 0 ? kx : std_min(x0, kx);
      y0 = k == 0 ? ky : std_min(y0, ky);
      x1 = k == 0 ? kx : std_max(x1, kx);
      y1 = k == 0 ? ky : std_max(y1, ky);
    }
    rec->score = __fdiv_rn(sum, static_cast<float>(kK));
    rec->bbox[0] = frame_x(t, x0);
    rec->bbox[1] = frame_y(t, y0);
    rec->bbox[2] = __fmul_rn(__fsub_rn(x1, x0), t.scale_x);
    rec->bbox[3] = __fmul_rn(__fsub_rn(y1, y0), t.scale_y);
    write_item_header(a.out, b, a.max_poses, 1);
  }
  zero_item_records(a.out, b, a.max_poses, 1);
}

class MoveNetSingleDecoder : public DeviceDecoder {
 public:
  MoveNetSingleDecoder(const ModelSpec& spec, const PoseItemLayout& layout)
      : G_(spec.input_size / 4),
        input_size_(static_cast<float>(spec.input_size)),
        max_poses_(layout.max_poses),
        weight_(static_cast<size_t>(G_) * G_ * sizeof(float), "MoveNet centre weight table") {
    std::vector<float> w(static_cast<size_t>(G_) * G_);
    for (int y = 0; y < G_; ++y)
      for (int x = 0; x < G_; ++x) w[static_cast<size_t>(y) * G_ + x] = movenet_centre_weight(G_, y, x);
    cuda_check(cudaMemcpy(weight_.as<float>(), w.data(), w.size() * sizeof(float), cudaMemcpyHostToDevice),
               "uploading the MoveNet centre weight table");
    out_scale_ = movenet_output_scale(G_);
  }

  void enqueue(const std::vector<const float*>& heads, int n, const CropTransform* transforms, void* out,
               void* stream) override {
    SingleArgs a{heads[0], heads[1],    heads[2],    heads[3],   weight_.as<float>(), G_,
                 out_scale_, input_size_, transforms, out,        max_poses_};
    movenet_single_kernel<<<n, kThreads, 0, static_cast<cudaStream_t>(stream)>>>(a);
    launch_check("movenet_single_kernel");
  }

 private:
  int G_;
  float input_size_;
  int max_poses_;
  float out_scale_ = 0;
  DeviceBuffer weight_;
};

}  // namespace

std::unique_ptr<DeviceDecoder> make_movenet_single_decoder(const ModelSpec& spec, int /*max_batch*/,
                                                           const PoseItemLayout& layout) {
  return std::make_unique<MoveNetSingleDecoder>(spec, layout);
}

}  // namespace posert::cuda::detail
