// CUDA preprocessing: uint8 RGB/BGR frames in device memory -> crop / pad / bilinear resize
// (half-pixel centres) / encode, straight into the engine's input buffer, one kernel for a whole
// batch with a crop rectangle per item. Reproduces preprocess_crop_into (src/pose/preprocess.h)
// bit for bit. Plain C++ header: streams are void*.
#pragma once
#include <cstdint>

namespace posert::cuda {

// Where batch item b's frame lies in the frame buffer and which part of it to take.
struct FrameDesc {
  int64_t offset = 0;             // byte offset of the frame's first row in the frame buffer
  int32_t width = 0, height = 0;  // frame size in pixels
  int32_t pitch = 0;              // bytes per row, >= width * 3
  int32_t bgr = 0;                // 1: bytes are B, G, R; 0: R, G, B
  int32_t crop_x = 0, crop_y = 0, crop_w = 0, crop_h = 0;  // CropRect in frame pixels
};

enum class PreprocessOut : int { RoundedInt32 = 0, FloatMinus1To1 = 1 };

// out: [n, out_h, out_w, 3] int32 or float32 per `enc`; desc: n device FrameDescs. Asynchronous on
// `stream`, capturable in a CUDA graph; checks the launch (cudaGetLastError), not the result.
void preprocess_frames(const uint8_t* frames, const FrameDesc* desc, int n, int out_w, int out_h, PreprocessOut enc,
                       void* out, void* stream);

}  // namespace posert::cuda
