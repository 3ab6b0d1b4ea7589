// Optimized batched CPU decoders: every pose decoder (MoveNet single/multi, PoseNet) and the
// generic heatmap decoder, split over a thread pool and vectorized, with the same results as the
// reference decoders (bit for bit, see cpu_decode.cpp). The baseline the CUDA decoders are
// measured against (posert bench --stage decode), and the decoder of the Detector's CPU backend.
#pragma once
#include <memory>
#include <vector>

#include "core/thread_pool.h"
#include "pose/heatmap_decode.h"
#include "pose/model_spec.h"
#include "pose/pose_record.h"

namespace posert {

class CpuPoseDecoder {
 public:
  // threads: workers including the caller; 0 = hardware_concurrency.
  CpuPoseDecoder(const ModelSpec& spec, const DecodeOptions& opt, int threads = 0);
  ~CpuPoseDecoder();
  CpuPoseDecoder(const CpuPoseDecoder&) = delete;
  CpuPoseDecoder& operator=(const CpuPoseDecoder&) = delete;

  int max_poses() const;  // 1 for MoveNet single, spec.max_people otherwise
  PoseItemLayout layout() const { return PoseItemLayout{max_poses()}; }
  int grid() const;                 // G of the [N, G, G, C] heads
  int head_channels(int i) const;   // C of head i (spec.head_values order)
  int threads() const;

  // heads: host float32 NHWC, batch-major, spec.head_values order, each [n, G, G, C].
  // transforms: n CropTransforms (nullptr: identity, poses in model-input pixels).
  // out: n * layout().item_bytes() bytes; item b gets the poses of the reference decoder
  // (decode_heads) mapped through transforms[b].
  void decode(const std::vector<const float*>& heads, int n, const CropTransform* transforms, void* out);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Generic heatmap decoder (heatmap_decode.h) with a thread pool and scratch that persist across
// calls. Same peaks as decode_heatmaps_reference, bit for bit.
class CpuHeatmapDecoder {
 public:
  explicit CpuHeatmapDecoder(int threads = 0);
  ~CpuHeatmapDecoder();
  CpuHeatmapDecoder(const CpuHeatmapDecoder&) = delete;
  CpuHeatmapDecoder& operator=(const CpuHeatmapDecoder&) = delete;

  int threads() const { return pool_.size(); }
  // heatmaps [n, h, w, k] float32; results into `out` (its vectors reused).
  void decode(const float* heatmaps, int n, int h, int w, int k, const CropTransform* transforms,
              const HeatmapDecodeParams& p, HeatmapPeaks& out);
  HeatmapPeaks decode(const float* heatmaps, int n, int h, int w, int k, const CropTransform* transforms,
                      const HeatmapDecodeParams& p);

  struct Scratch;

 private:
  ThreadPool pool_;
  std::vector<Scratch> scratch_;  // one per worker
};

// One-shot form on a caller-owned pool (allocates its scratch per call).
HeatmapPeaks decode_heatmaps_cpu(const float* heatmaps, int n, int h, int w, int k, const CropTransform* transforms,
                                 const HeatmapDecodeParams& p, ThreadPool& pool);

}  // namespace posert
