#include "pose/preprocess.h"

#include <algorithm>
#include <cmath>

namespace posert {

Letterbox make_letterbox(int width, int height, int input_size) {
  if (width <= 0 || height <= 0 || input_size <= 0)
    throw Error("cannot letterbox a " + std::to_string(width) + "x" + std::to_string(height) + " image");
  Letterbox lb;
  lb.side = std::max(width, height);
  lb.pad_x = (lb.side - width) / 2;
  lb.pad_y = (lb.side - height) / 2;
  lb.input_size = input_size;
  return lb;
}

namespace {

// TF half-pixel-centre source coordinate for output index i: (i + 0.5) * scale - 0.5, split into
// the two neighbours (clamped to [0, n-1]) and the weight of the upper one.
struct Tap {
  int lo, hi;
  float w;
};

Tap tap_at(int i, float scale, int in_size) {
  const float in = (static_cast<float>(i) + 0.5f) * scale - 0.5f;
  const float f = std::floor(in);
  return {std::max(static_cast<int>(f), 0), std::min(static_cast<int>(std::ceil(in)), in_size - 1), in - f};
}

float tap_scale(int out_size, int in_size) { return static_cast<float>(in_size) / static_cast<float>(out_size); }

std::vector<Tap> taps(int out_size, int in_size) {
  std::vector<Tap> t(static_cast<size_t>(out_size));
  const float scale = tap_scale(out_size, in_size);
  for (int i = 0; i < out_size; ++i) t[i] = tap_at(i, scale, in_size);
  return t;
}

}  // namespace

std::vector<int> sampled_indices(int out_size, int in_size) {
  if (out_size <= 0 || in_size <= 0) return {};
  std::vector<char> used(static_cast<size_t>(in_size), 0);
  for (const Tap& t : taps(out_size, in_size)) used[t.lo] = used[t.hi] = 1;
  std::vector<int> r;
  for (int i = 0; i < in_size; ++i)
    if (used[i]) r.push_back(i);
  return r;
}

std::vector<std::pair<int, int>> sampled_pairs(int out_size, int in_size) {
  std::vector<std::pair<int, int>> r;
  if (out_size <= 0 || in_size <= 0) return r;
  r.reserve(static_cast<size_t>(out_size));
  for (const Tap& t : taps(out_size, in_size)) r.emplace_back(t.lo, t.hi);
  return r;
}

std::pair<int, int> sampled_span(int out_size, int in_size) {
  if (out_size <= 0 || in_size <= 0) return {0, -1};
  const float scale = tap_scale(out_size, in_size);
  return {tap_at(0, scale, in_size).lo, tap_at(out_size - 1, scale, in_size).hi};
}

CropRect letterbox_crop(const Letterbox& lb) { return {-lb.pad_x, -lb.pad_y, lb.side, lb.side}; }

CropTransform crop_transform(const CropRect& crop, int out_w, int out_h) {
  CropTransform t;
  t.scale_x = static_cast<float>(crop.w) / static_cast<float>(out_w);
  t.scale_y = static_cast<float>(crop.h) / static_cast<float>(out_h);
  t.offset_x = static_cast<float>(crop.x);
  t.offset_y = static_cast<float>(crop.y);
  return t;
}

void preprocess_crop_into(const uint8_t* rgb, int width, int height, const CropRect& crop, InputEncoding enc,
                          Tensor& input, int b) {
  if (input.rank() != 4 || input.dim(3) != 3 || b < 0 || b >= input.dim(0))
    throw Error("internal: preprocess target has shape " + shape_str(input.shape()));
  const DType want = enc == InputEncoding::RoundedInt32 ? DType::I32 : DType::F32;
  if (input.dtype() != want) throw Error("internal: preprocess target has the wrong element type");
  if (!rgb || width <= 0 || height <= 0) throw Error("internal: empty frame");
  if (crop.w <= 0 || crop.h <= 0)
    throw Error("crop " + std::to_string(crop.w) + "x" + std::to_string(crop.h) + " is empty");
  const int out_h = static_cast<int>(input.dim(1)), out_w = static_cast<int>(input.dim(2));
  const auto ty = taps(out_h, crop.h), tx = taps(out_w, crop.w);
  // Crop pixel (x, y) is the frame pixel (crop.x + x, crop.y + y), or zero outside the frame.
  auto px = [&](int x, int y, int c) -> float {
    const int ix = crop.x + x, iy = crop.y + y;
    if (ix < 0 || iy < 0 || ix >= width || iy >= height) return 0.0f;
    return rgb[(static_cast<size_t>(iy) * width + ix) * 3 + c];
  };
  const size_t base = static_cast<size_t>(b) * out_h * out_w * 3;
  for (int y = 0; y < out_h; ++y) {
    for (int x = 0; x < out_w; ++x) {
      for (int c = 0; c < 3; ++c) {
        const float top = px(tx[x].lo, ty[y].lo, c) + (px(tx[x].hi, ty[y].lo, c) - px(tx[x].lo, ty[y].lo, c)) * tx[x].w;
        const float bot = px(tx[x].lo, ty[y].hi, c) + (px(tx[x].hi, ty[y].hi, c) - px(tx[x].lo, ty[y].hi, c)) * tx[x].w;
        const float v = std::clamp(std::round(top + (bot - top) * ty[y].w), 0.0f, 255.0f);
        const size_t i = base + (static_cast<size_t>(y) * out_w + x) * 3 + c;
        if (enc == InputEncoding::RoundedInt32) input.data<int32_t>()[i] = static_cast<int32_t>(v);
        else input.data<float>()[i] = v / 127.5f - 1.0f;
      }
    }
  }
}

void preprocess_into(const Image& img, const ModelSpec& spec, Tensor& input, int b, Letterbox* lb_out) {
  const int S = spec.input_size;
  if (input.rank() != 4 || input.dim(1) != S || input.dim(2) != S || input.dim(3) != 3 || b < 0 || b >= input.dim(0))
    throw Error("internal: preprocess target has shape " + shape_str(input.shape()));
  if (img.width <= 0 || img.height <= 0 || img.rgb.size() != static_cast<size_t>(img.width) * img.height * 3)
    throw Error("internal: image buffer does not match its size");
  const Letterbox lb = make_letterbox(img.width, img.height, S);
  if (lb_out) *lb_out = lb;
  preprocess_crop_into(img.rgb.data(), img.width, img.height, letterbox_crop(lb), spec.encoding, input, b);
}

Tensor preprocess(const Image& img, const ModelSpec& spec, Letterbox* lb) {
  const DType dt = spec.encoding == InputEncoding::RoundedInt32 ? DType::I32 : DType::F32;
  Tensor t(dt, {1, spec.input_size, spec.input_size, 3});
  preprocess_into(img, spec, t, 0, lb);
  return t;
}

void poses_to_image(std::vector<Pose>& poses, const Letterbox& lb) {
  for (auto& p : poses) {
    for (auto& k : p.keypoints) {
      k.x = lb.to_image_x(k.x);
      k.y = lb.to_image_y(k.y);
    }
    const float s = static_cast<float>(lb.side) / lb.input_size;
    p.bbox[0] = lb.to_image_x(p.bbox[0]);
    p.bbox[1] = lb.to_image_y(p.bbox[1]);
    p.bbox[2] *= s;
    p.bbox[3] *= s;
  }
}

}  // namespace posert
