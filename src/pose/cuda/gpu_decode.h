// Batched CUDA decoders: read a model's output heads in device memory and write only the final
// poses (PoseItemLayout items) or heatmap peaks, so that only keypoints cross PCIe. Plain C++
// header: streams are void*; enqueue never allocates or synchronizes (it is captured in graphs).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "pose/heatmap_decode.h"
#include "pose/model_spec.h"
#include "pose/pose_record.h"

namespace posert::cuda {

namespace detail {
class DeviceDecoder;  // one per DecoderKind, in src/pose/cuda/*.cu
}

// The GPU counterpart of decode_heads followed by the crop's transform: the same poses, in the
// same order, with coordinates in frame pixels (keypoints and bbox x, y mapped through the item's
// CropTransform, bbox w, h scaled). MoveNet decoders match the CPU bit for bit except where the
// CPU calls expf (MultiPose's Gaussian, PoseNet's sigmoid): there the GPU computes exp in double
// and rounds, the correctly rounded value, which glibc's expf (<= 0.502 ulp) also returns in all
// but rare halfway cases.
class GpuPoseDecoder {
 public:
  // Allocates the device workspace for up to max_batch items. Throws posert::Error on a bad
  // max_batch or a CUDA failure.
  GpuPoseDecoder(const ModelSpec& spec, int max_batch, const DecodeOptions& opt);
  ~GpuPoseDecoder();
  GpuPoseDecoder(const GpuPoseDecoder&) = delete;
  GpuPoseDecoder& operator=(const GpuPoseDecoder&) = delete;

  int max_batch() const { return max_batch_; }
  int max_poses() const { return layout_.max_poses; }
  PoseItemLayout layout() const { return layout_; }
  size_t output_bytes(int n) const { return static_cast<size_t>(n) * layout_.item_bytes(); }

  // d_heads: the head buffers (float32 NHWC, spec.head_values order, batch >= n) on the device;
  // d_transforms: n CropTransforms on the device; d_out: output_bytes(n) bytes on the device, one
  // PoseItemLayout item per batch item (records beyond the count are zeroed). Asynchronous on
  // `stream` (a cudaStream_t); checks the launches, not the results. Throws posert::Error when
  // n is not in 1..max_batch or the head count is wrong. One decoder's launches must not run at
  // the same time (enqueue it on one stream, or order the streams): its workspace carries state
  // from launch to launch, and the single-pose decoder's blocks may wait for each other's
  // results there.
  void enqueue(const std::vector<const float*>& d_heads, int n, const CropTransform* d_transforms, void* d_out,
               void* stream);

 private:
  int max_batch_ = 0;
  size_t head_count_ = 0;
  PoseItemLayout layout_;
  std::unique_ptr<detail::DeviceDecoder> impl_;
};

// The generic heatmap decoder of src/pose/heatmap_decode.h on the GPU, with the same float
// arithmetic (no FMA contraction): equal to decode_heatmaps_reference bit for bit.
class GpuHeatmapDecoder {
 public:
  // Heatmaps [max_batch, h, w, k]. The upsampled maps live only in shared memory, tile by tile;
  // allocates the per-tile peak candidates (max_batch * k * tiles * top_k, 24 bytes each, tiles of
  // 32x32 output pixels). Throws posert::Error on bad parameters or a CUDA failure.
  GpuHeatmapDecoder(int max_batch, int h, int w, int k, const HeatmapDecodeParams& p);
  ~GpuHeatmapDecoder();
  GpuHeatmapDecoder(const GpuHeatmapDecoder&) = delete;
  GpuHeatmapDecoder& operator=(const GpuHeatmapDecoder&) = delete;

  const HeatmapDecodeParams& params() const { return p_; }

  // d_heatmaps [n, h, w, k] float32; d_transforms: n CropTransforms; d_peaks: n * k * top_k
  // peaks, peak i of keypoint c of item b at (b * k + c) * top_k + i (slots beyond the count are
  // zeroed); d_counts: n * k counts. All in device memory; asynchronous on `stream`.
  void enqueue(const float* d_heatmaps, int n, const CropTransform* d_transforms, HeatmapPeak* d_peaks,
               int32_t* d_counts, void* stream);

 private:
  int max_batch_ = 0, h_ = 0, w_ = 0, k_ = 0;
  HeatmapDecodeParams p_;
  int tiles_x_ = 0, tiles_ = 0;    // output tiles per map: across, in all
  void* candidates_ = nullptr;     // [max_batch, k, tiles, top_k] best peaks of each tile
};

}  // namespace posert::cuda
