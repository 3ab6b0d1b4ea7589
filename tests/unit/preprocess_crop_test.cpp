// preprocess_crop_into: the crop rectangle generalization of the letterbox preprocessing, checked
// against answers known independently of the code (identity crops, constant frames, zeros
// outside the frame, a hand-computed 2x -> 1x downscale), and crop_transform.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "pose/preprocess.h"

namespace posert {
namespace {

std::vector<uint8_t> random_rgb(int w, int h, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(static_cast<size_t>(w) * h * 3);
  for (auto& x : v) x = static_cast<uint8_t>(rng());
  return v;
}

TEST(PreprocessCrop, IdentityCropCopiesThePixels) {
  const int w = 13, h = 9;
  const auto rgb = random_rgb(w, h, 1);
  Tensor t(DType::I32, {1, h, w, 3});
  preprocess_crop_into(rgb.data(), w, h, {0, 0, w, h}, InputEncoding::RoundedInt32, t, 0);
  for (size_t i = 0; i < rgb.size(); ++i) ASSERT_EQ(t.data<int32_t>()[i], rgb[i]) << i;
}

TEST(PreprocessCrop, ShiftedCropReadsShiftedPixelsAndZerosOutside) {
  const int w = 10, h = 8;
  const auto rgb = random_rgb(w, h, 2);
  // A same-size crop starting at (3, -2): output (x, y) = frame (x + 3, y - 2), zero where outside.
  Tensor t(DType::I32, {1, 6, 5, 3});
  preprocess_crop_into(rgb.data(), w, h, {3, -2, 5, 6}, InputEncoding::RoundedInt32, t, 0);
  for (int y = 0; y < 6; ++y)
    for (int x = 0; x < 5; ++x)
      for (int c = 0; c < 3; ++c) {
        const int fx = x + 3, fy = y - 2;
        const int want = (fx < w && fy >= 0) ? rgb[(static_cast<size_t>(fy) * w + fx) * 3 + c] : 0;
        ASSERT_EQ(t.data<int32_t>()[(y * 5 + x) * 3 + c], want) << x << "," << y << "," << c;
      }
}

TEST(PreprocessCrop, HalvingAveragesPixelPairs) {
  // Half-pixel centres at scale 2: output i samples source 2i + 0.5, the mean of pixels 2i and
  // 2i + 1 in each direction; values chosen so the mean of 4 is exact.
  const int w = 4, h = 2;
  std::vector<uint8_t> rgb(w * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) rgb[(y * w + x) * 3 + c] = static_cast<uint8_t>(4 * (x + 10 * y) + 40 * c);
  Tensor t(DType::F32, {1, 1, 2, 3});
  preprocess_crop_into(rgb.data(), w, h, {0, 0, 4, 2}, InputEncoding::FloatMinus1To1, t, 0);
  for (int x = 0; x < 2; ++x)
    for (int c = 0; c < 3; ++c) {
      // mean of x = 2i, 2i+1 and y = 0, 1: 4 * (2i + 0.5 + 10 * 0.5) + 40c, exactly an integer
      const float v = 4.0f * (2 * x + 0.5f + 5.0f) + 40.0f * c;
      EXPECT_FLOAT_EQ(t.data<float>()[x * 3 + c], v / 127.5f - 1.0f) << x << "," << c;
    }
}

TEST(PreprocessCrop, CropEntirelyOutsideIsZero) {
  const auto rgb = random_rgb(5, 5, 3);
  Tensor t(DType::I32, {1, 4, 4, 3});
  preprocess_crop_into(rgb.data(), 5, 5, {100, 100, 7, 7}, InputEncoding::RoundedInt32, t, 0);
  for (int64_t i = 0; i < t.numel(); ++i) ASSERT_EQ(t.data<int32_t>()[i], 0);
}

TEST(PreprocessCrop, LetterboxCropEqualsPreprocessInto) {
  Image img;
  img.width = 37;
  img.height = 23;
  img.rgb = random_rgb(img.width, img.height, 4);
  const ModelSpec& spec = find_model_spec("movenet-lightning");
  Letterbox lb;
  const Tensor a = preprocess(img, spec, &lb);
  EXPECT_EQ(lb.side, 37);
  EXPECT_EQ(lb.pad_y, 7);
  const CropRect c = letterbox_crop(lb);
  EXPECT_EQ(c.x, 0);
  EXPECT_EQ(c.y, -7);
  EXPECT_EQ(c.w, 37);
  EXPECT_EQ(c.h, 37);
  // The letterbox transform maps model pixels to image pixels as Letterbox does.
  const CropTransform tf = crop_transform(c, spec.input_size, spec.input_size);
  for (float m : {0.0f, 17.5f, 191.0f}) {
    EXPECT_NEAR(m * tf.scale_x + tf.offset_x, lb.to_image_x(m), 1e-4);
    EXPECT_NEAR(m * tf.scale_y + tf.offset_y, lb.to_image_y(m), 1e-4);
  }
}

// sampled_indices names the rows and columns the resize reads: scrambling every other row and
// column leaves the output unchanged; the known counts for a 2x halving and a 1:1 copy.
TEST(PreprocessCrop, SampledIndicesAreWhatTheResizeReads) {
  EXPECT_EQ(sampled_indices(4, 4), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(sampled_indices(2, 4), (std::vector<int>{0, 1, 2, 3}));  // centres 0.5 and 2.5
  EXPECT_EQ(sampled_indices(1, 3), (std::vector<int>{1}));            // centre 1.0 exactly
  EXPECT_EQ(sampled_indices(3, 1), (std::vector<int>{0}));
  struct Case {
    int w, h;
    CropRect crop;
    int ow, oh;
  };
  const Case cases[] = {{640, 480, {0, -80, 640, 640}, 192, 192},  // letterbox, 3.3x down
                        {200, 150, {20, 10, 37, 29}, 96, 80},      // enlarged crop
                        {300, 200, {-50, 30, 400, 100}, 33, 17}};  // past the left edge
  for (const Case& c : cases) {
    const auto rows = sampled_indices(c.oh, c.crop.h), cols = sampled_indices(c.ow, c.crop.w);
    ASSERT_FALSE(rows.empty());
    ASSERT_TRUE(std::is_sorted(rows.begin(), rows.end()) && std::adjacent_find(rows.begin(), rows.end()) == rows.end());
    ASSERT_TRUE(std::is_sorted(cols.begin(), cols.end()) && std::adjacent_find(cols.begin(), cols.end()) == cols.end());
    EXPECT_LE(rows.size(), std::min<size_t>(2 * c.oh, c.crop.h));
    EXPECT_EQ(sampled_span(c.ow, c.crop.w), std::make_pair(cols.front(), cols.back()));
    std::vector<int> from_pairs;  // the pairs name exactly the sampled rows
    for (const auto& [lo, hi] : sampled_pairs(c.oh, c.crop.h)) from_pairs.insert(from_pairs.end(), {lo, hi});
    std::sort(from_pairs.begin(), from_pairs.end());
    from_pairs.erase(std::unique(from_pairs.begin(), from_pairs.end()), from_pairs.end());
    EXPECT_EQ(from_pairs, rows);
    EXPECT_EQ(sampled_pairs(c.oh, c.crop.h).size(), static_cast<size_t>(c.oh));
    std::vector<uint8_t> rgb = random_rgb(c.w, c.h, 9);
    Tensor want(DType::I32, {1, c.oh, c.ow, 3}), got(DType::I32, {1, c.oh, c.ow, 3});
    preprocess_crop_into(rgb.data(), c.w, c.h, c.crop, InputEncoding::RoundedInt32, want, 0);
    std::mt19937 rng(4);
    size_t changed = 0;
    for (int y = 0; y < c.h; ++y)
      for (int x = 0; x < c.w; ++x) {
        const bool row = std::binary_search(rows.begin(), rows.end(), y - c.crop.y);
        const bool col = std::binary_search(cols.begin(), cols.end(), x - c.crop.x);
        if (row && col) continue;
        for (int k = 0; k < 3; ++k) rgb[(static_cast<size_t>(y) * c.w + x) * 3 + k] = static_cast<uint8_t>(rng());
        ++changed;
      }
    EXPECT_GT(changed, 0u);
    preprocess_crop_into(rgb.data(), c.w, c.h, c.crop, InputEncoding::RoundedInt32, got, 0);
    EXPECT_EQ(0, std::memcmp(want.raw(), got.raw(), want.nbytes())) << c.w << "x" << c.h << " -> " << c.ow << "x" << c.oh;
  }
  EXPECT_EQ(sampled_indices(192, 640).size(), 384u);  // 3.33x: two distinct rows per output row
}

TEST(PreprocessCrop, RejectsEmptyCropAndWrongTarget) {
  const auto rgb = random_rgb(4, 4, 5);
  Tensor t(DType::I32, {1, 4, 4, 3});
  EXPECT_THROW(preprocess_crop_into(rgb.data(), 4, 4, {0, 0, 0, 4}, InputEncoding::RoundedInt32, t, 0), Error);
  EXPECT_THROW(preprocess_crop_into(rgb.data(), 4, 4, {0, 0, 4, 4}, InputEncoding::FloatMinus1To1, t, 0), Error);
  EXPECT_THROW(preprocess_crop_into(rgb.data(), 4, 4, {0, 0, 4, 4}, InputEncoding::RoundedInt32, t, 1), Error);
}

}  // namespace
}  // namespace posert
