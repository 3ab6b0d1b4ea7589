// Detector: the public entry point. Loads a model by name and finds poses in RGB images.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "posert/error.h"
#include "posert/pose.h"

namespace posert {

struct DetectorOptions {
  std::string model = "movenet-thunder";  // see `posert models`
  std::string models_dir;                 // empty: POSERT_MODELS, else the default models folder
  std::string backend = "cpu";            // "cpu" (reference executor) or "cuda" (optimized engine)
  float min_pose_score = 0.0f;            // multi-person models drop poses scoring below this
  // CUDA backend: an engine file to load (must match model), or else an engine is built for this
  // GPU and kept in engine_cache_dir (default $POSERT_ENGINE_CACHE or ~/.cache/posert) for reuse.
  std::string engine_path;
  std::string engine_cache_dir;
  std::string precision = "fp16";
  int max_batch = 1;  // CUDA backend: the most frames one detect_batch call may pass
  // CUDA backend: how frames reach the GPU and poses come back. "mapped" (default): the
  // preprocessing kernel reads only the frame rows it samples from pinned host memory and the
  // poses are written straight back; "mapped-in": the poses are copied back; "copy": async copies
  // of the whole frames (src/pipeline/cuda/gpu_pipeline.h, cuda::Transfer). A batch runs as copy
  // where a frame is over 5,450 px wide, the resize shrinks it by less than 2x (the mapped reads
  // would exceed the frame), or the GPU cannot map host memory.
  std::string transfer = "mapped";
  bool verbose = false;
};

// One frame for detect_batch: host memory, 8-bit RGB (or BGR) rows of `pitch` bytes.
struct FrameRef {
  const uint8_t* pixels = nullptr;
  int width = 0, height = 0;
  int pitch = 0;     // bytes per row; 0: width * 3
  bool bgr = false;  // bytes in B, G, R order
  // The part of the frame to run the network on, in frame pixels (it may extend past the frame,
  // which reads as black): a person box from a previous frame or a detector. crop_w == 0: the
  // whole frame, letterboxed to a centred square.
  int crop_x = 0, crop_y = 0, crop_w = 0, crop_h = 0;
};

class Detector {
 public:
  explicit Detector(const DetectorOptions& opt);  // throws posert::Error
  ~Detector();
  Detector(const Detector&) = delete;
  Detector& operator=(const Detector&) = delete;

  // rgb: width*height*3 bytes, row-major. Poses are in the image's pixel coordinates.
  std::vector<Pose> detect(const uint8_t* rgb, int width, int height);
  // Poses of each frame, in that frame's pixel coordinates. With the CUDA backend the batch runs
  // as one CUDA graph (frame transfer per DetectorOptions::transfer, preprocessing, engine, GPU
  // decoding, only the poses back) and may hold up to max_batch() frames; the CPU backend takes
  // any number, one after another.
  std::vector<std::vector<Pose>> detect_batch(const std::vector<FrameRef>& frames);
  // Where to put frame `item` (0 <= item < max_batch(); the CPU backend takes up to 4096) of a
  // batch of width x height frames so that detect_batch reads it without a host copy: width *
  // height * 3 bytes of packed rows (RGB, or BGR with FrameRef::bgr). Capture or decode the frame
  // straight into it and pass the pointer in a FrameRef with pitch 0; every frame of that batch
  // must then be width x height. With the CUDA backend this is the pinned upload buffer, which the
  // call's CUDA graph reads in place (the rows the resize samples; transfer "copy": an async copy
  // of the whole frame); with the CPU backend, ordinary memory. Valid
  // until the next frame_buffer or detect_batch call with larger frames.
  uint8_t* frame_buffer(int item, int width, int height);
  int max_batch() const;

  const std::string& model_name() const;
  int input_size() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Default folder for models: $POSERT_MODELS, else <dir of the executable>/../../models when it
// exists (a build tree inside the checkout), else ./models.
std::string default_models_dir();

}  // namespace posert
