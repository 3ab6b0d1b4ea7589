// CUDA preprocessing: uint8 RGB/BGR frames in device memory -> crop / pad / bilinear resize
// (half-pixel centres) / encode, straight into the engine's input buffer, one kernel for a whole
// batch with a crop rectangle per item. Reproduces preprocess_crop_into (src/pose/preprocess.h)
// bit for bit. Plain C++ header: streams are void*.
#pragma once
#include <cstdint>
#include <vector>

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

// Bytes of one source row segment the mapped kernel stages in shared memory: frames up to
// (kMappedRowBytes - 32) / 3 = 5450 pixels wide (a crop narrower than the frame needs less).
constexpr int kMappedRowBytes = 16384;
inline bool mapped_preprocess_fits(int frame_width) { return static_cast<int64_t>(frame_width) * 3 + 32 <= kMappedRowBytes; }

// out: [n, out_h, out_w, 3] int32 or float32 per `enc`; desc: n device FrameDescs. Asynchronous on
// `stream`, capturable in a CUDA graph; checks the launch (cudaGetLastError), not the result.
void preprocess_frames(const uint8_t* frames, const FrameDesc* desc, int n, int out_w, int out_h, PreprocessOut enc,
                       void* out, void* stream);

// The same from pinned host memory read in place: `frames` and `desc` are the mapped device
// addresses of pinned host buffers (cudaHostAlloc ... cudaHostAllocMapped), laid out as above with
// each frame's slot a multiple of 16 bytes long from a 16-byte aligned offset (rows are read in
// aligned 16-byte pieces that may run up to 15 bytes past a row's end, never past the slot).
// Only the rows and columns the resize samples cross PCIe: for a full-frame letterbox about
// 2 * out_h rows of crop width, instead of the whole frame. Bit for bit the result of
// preprocess_frames.
void preprocess_frames_mapped(const uint8_t* frames, const FrameDesc* desc, int n, int out_w, int out_h,
                              PreprocessOut enc, void* out, void* stream);

// Which frame rows, and which bytes of each, preprocess_frames_mapped reads for one item: the
// frame rows the resize samples (sampled_indices, inside the frame), each from byte `first` to
// byte `last` (exclusive) of the row, relative to the row's start; `bytes` is what its blocks read
// over PCIe (the 16-byte widening included; a row that several output rows sample is read by
// each of their blocks). Host code (gpu_pipeline.cpp), with the CPU's float taps.
struct MappedRows {
  std::vector<int> rows;
  int first = 0, last = 0;
  int64_t bytes = 0;
};
MappedRows mapped_rows(const FrameDesc& d, int out_w, int out_h);

}  // namespace posert::cuda
