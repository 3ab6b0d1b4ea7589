// The end-to-end GPU pipeline: host uint8 frames in, poses out, on one CUDA stream:
//   upload (pinned -> device; see Transfer) -> preprocess kernel (crop/letterbox, resize, encode)
//   -> engine -> GPU decoder (reads the heads in place) -> download of the pose records only.
// The whole sequence is captured as one CUDA graph per (batch size, total frame bytes, transfer
// mode); the per-item frame descriptors and crop transforms live in a fixed-size pinned block that
// the graph copies (or reads in place), so new frames of the same sizes replay the same graph.
// Plain C++ header (no CUDA types); exists only in CUDA builds.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pipeline/transfer.h"
#include "pose/model_spec.h"
#include "pose/preprocess.h"
#include "posert/engine.h"

namespace posert::cuda {

struct FrameView {
  const uint8_t* pixels = nullptr;  // host memory, rows of `pitch` bytes
  int width = 0, height = 0;
  int pitch = 0;     // 0: width * 3
  bool bgr = false;  // byte order B, G, R instead of R, G, B
};

// Milliseconds of each stage, measured with CUDA events between the stages (run_profiled).
struct StageTimes {
  double upload = 0, preprocess = 0, inference = 0, decode = 0, download = 0, total = 0;
  // What crossed PCIe: for the mapped modes, what the preprocessing kernel read (mapped_read_bytes)
  // and the pose records it wrote.
  int64_t upload_bytes = 0, download_bytes = 0;
};

// Host milliseconds of one run() (set_timing): packing the frames into the pinned buffer and
// picking the mode, queueing the work (graph launch), waiting for the GPU, reading the poses.
struct HostTimes {
  double stage = 0, launch = 0, wait = 0, results = 0;
};

class GpuPipeline {
 public:
  // The engine's max batch bounds the batch. The pipeline owns one execution context.
  GpuPipeline(std::shared_ptr<Engine> engine, const ModelSpec& spec, const DecodeOptions& opt);
  ~GpuPipeline();
  GpuPipeline(const GpuPipeline&) = delete;
  GpuPipeline& operator=(const GpuPipeline&) = delete;

  int max_batch() const;
  // Where frame `item` of a batch of width x height frames (all that size, packed rows) goes in
  // the pinned upload buffer: a caller that writes (decodes, captures) a frame there and passes
  // that pointer to run() saves the host copy; run() uploads it from there (Transfer).
  // Valid until a run() or frame_slot() with larger frames grows the buffer.
  uint8_t* frame_slot(int item, int width, int height);
  // Poses per frame, in frame pixels. crops: one CropRect per frame, or null for the letterbox of
  // each frame (the CPU path's preprocessing). Synchronous.
  std::vector<std::vector<Pose>> run(const std::vector<FrameView>& frames, const std::vector<CropRect>* crops = nullptr);
  // The same, launched stage by stage (no pipeline graph; the engine still replays its own) with
  // CUDA events between the stages, all queued behind a spin kernel so that the events time the
  // GPU's work rather than the host's launches; fills *times.
  std::vector<std::vector<Pose>> run_profiled(const std::vector<FrameView>& frames, StageTimes* times,
                                              const std::vector<CropRect>* crops = nullptr);
  // The transfer mode (default Transfer::Mapped). A batch runs with Copy instead where a frame is
  // wider than the mapped kernel takes (mapped_preprocess_fits), where the mapped kernel would
  // read more bytes than the frames hold (each block reads its output row's source rows: a resize
  // that shrinks by less than 2x, or enlarges, reads rows more than once), or on a device that
  // cannot map host memory.
  void set_transfer(Transfer t);
  Transfer transfer() const;
  // The mode the last run() or run_profiled() actually ran with (Copy where it fell back).
  Transfer last_transfer() const;
  // Off: launch the stages one by one in run() too (for comparisons).
  void set_use_graphs(bool on);
  // On: run() records CUDA events around its launch; last_gpu_ms() is then the GPU time from the
  // start of the upload to the end of the download of the last run(), and last_host_times() its
  // host side.
  void set_timing(bool on);
  double last_gpu_ms() const;
  HostTimes last_host_times() const;
  void* stream() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace posert::cuda
