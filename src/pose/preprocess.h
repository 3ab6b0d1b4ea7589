// Single-image preprocessing on the CPU: pad to a centred square with zeros (floor on the
// top/left), bilinear resize with half-pixel centres to the model size, then the model's input
// encoding. Letterbox maps coordinates between the model input and the original image.
#pragma once
#include <utility>
#include "core/tensor.h"
#include "io/image.h"
#include "pose/model_spec.h"
#include "pose/pose_record.h"

namespace posert {

struct Letterbox {
  int side = 0;        // square side in original pixels = max(width, height)
  int pad_x = 0;       // zeros added on the left:  floor((side - width) / 2)
  int pad_y = 0;       // zeros added on the top:   floor((side - height) / 2)
  int input_size = 0;  // model input side
  // model-input pixel coordinate -> original image coordinate
  float to_image_x(float mx) const { return mx * side / input_size - pad_x; }
  float to_image_y(float my) const { return my * side / input_size - pad_y; }
};

Letterbox make_letterbox(int width, int height, int input_size);

// A rectangle of a frame in frame pixels, resized to the model input. It may extend past the
// frame: pixels outside the frame read as zero. The letterbox is the crop
// {-pad_x, -pad_y, side, side}; MoveNet's crop-from-previous-frame tracking and top-down person
// crops use others.
struct CropRect {
  int x = 0, y = 0, w = 0, h = 0;
};
CropRect letterbox_crop(const Letterbox& lb);
// Model-input pixel -> frame pixel for `crop` resized to out_w x out_h.
CropTransform crop_transform(const CropRect& crop, int out_w, int out_h);

// The one definition of preprocessing, which the CUDA kernel reproduces bit for bit: the crop of
// an RGB frame (width x height, rows of width * 3 bytes) is resized to out_w x out_h with bilinear
// interpolation and half-pixel centres (TF ResizeBilinear, source index clamped to the crop),
// rounded half away from zero and clamped to 0..255, then encoded per `enc` into item b of
// `input` ([N, out_h, out_w, 3], int32 or float32 per the encoding). All arithmetic in float32.
void preprocess_crop_into(const uint8_t* rgb, int width, int height, const CropRect& crop, InputEncoding enc,
                          Tensor& input, int b);
// The crop indices (0..in_size-1, ascending, each once) that this resize of in_size to out_size
// samples along one axis: which rows (or columns) of a crop preprocess_crop_into reads. The GPU
// pipeline's mapped transfer copies and reads only these rows.
std::vector<int> sampled_indices(int out_size, int in_size);
// Per output index, the two crop indices it interpolates (lo, hi; equal where it samples one).
std::vector<std::pair<int, int>> sampled_pairs(int out_size, int in_size);
// The first and last of those (the taps are monotone), without the list.
std::pair<int, int> sampled_span(int out_size, int in_size);
// Writes batch item b of `input` ([N, S, S, 3], dtype per spec.encoding).
void preprocess_into(const Image& img, const ModelSpec& spec, Tensor& input, int b, Letterbox* lb);
// Convenience: a [1, S, S, 3] tensor for one image.
Tensor preprocess(const Image& img, const ModelSpec& spec, Letterbox* lb);
// Maps poses from model-input pixels to original image pixels (keypoints and bbox).
void poses_to_image(std::vector<Pose>& poses, const Letterbox& lb);

}  // namespace posert
