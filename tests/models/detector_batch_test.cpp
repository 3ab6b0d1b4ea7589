// Detector::detect_batch on the CPU backend: BGR and pitched frames give the poses of the plain
// RGB frame, an explicit crop equal to the letterbox gives the letterbox's poses, and a crop of the
// frame's right half finds the person there in frame coordinates.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "io/image.h"
#include "pose/preprocess.h"
#include "posert/detector.h"
#include "support/test_support.h"

namespace posert {
namespace {

void expect_equal(const std::vector<Pose>& a, const std::vector<Pose>& b, const char* what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t p = 0; p < a.size(); ++p)
    for (size_t k = 0; k < a[p].keypoints.size(); ++k) {
      EXPECT_EQ(a[p].keypoints[k].x, b[p].keypoints[k].x) << what << " kp " << k;
      EXPECT_EQ(a[p].keypoints[k].y, b[p].keypoints[k].y) << what << " kp " << k;
      EXPECT_EQ(a[p].keypoints[k].score, b[p].keypoints[k].score) << what << " kp " << k;
    }
}

// A CPU-backend lightning detector and the messi5 photo (skips where either is not installed).
class DetectorBatch : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::have_model("movenet-lightning")) GTEST_SKIP() << "model movenet-lightning not installed";
    photo = test::photos_dir() + "/messi5.jpg";
    if (!std::filesystem::exists(photo)) GTEST_SKIP() << "photo " << photo << " not installed (scripts/fetch_photos.sh)";
    img = read_image(photo);
    DetectorOptions o;
    o.model = "movenet-lightning";
    o.models_dir = test::models_dir();
    detector = std::make_unique<Detector>(o);
  }
  std::string photo;
  Image img;
  std::unique_ptr<Detector> detector;
};

TEST_F(DetectorBatch, FrameLayoutsAndCropsOnTheCpu) {
  Detector& det = *detector;

  // The same pixels as BGR with 7 bytes of padding per row.
  const int pitch = img.width * 3 + 7;
  std::vector<uint8_t> bgr(static_cast<size_t>(pitch) * img.height, 0);
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x)
      for (int c = 0; c < 3; ++c)
        bgr[static_cast<size_t>(y) * pitch + x * 3 + 2 - c] = img.rgb[(static_cast<size_t>(y) * img.width + x) * 3 + c];
  FrameRef plain{img.rgb.data(), img.width, img.height};
  FrameRef swapped{bgr.data(), img.width, img.height, pitch, true};
  FrameRef boxed = plain;
  const CropRect lb = letterbox_crop(make_letterbox(img.width, img.height, det.input_size()));
  boxed.crop_x = lb.x;
  boxed.crop_y = lb.y;
  boxed.crop_w = lb.w;
  boxed.crop_h = lb.h;
  const auto r = det.detect_batch({plain, swapped, boxed});
  ASSERT_EQ(r.size(), 3u);
  expect_equal(r[1], r[0], "BGR + pitch");
  expect_equal(r[2], r[0], "explicit letterbox crop");
  // detect() is detect_batch of one frame.
  expect_equal(det.detect(img.rgb.data(), img.width, img.height), r[0], "detect");

  // A crop around the confident keypoints: they stay in place in frame coordinates, within one
  // heatmap cell of the whole-frame run (the network sees the person larger, so it does not put
  // them on the same pixel; a wrong mapping would be off by the crop's offset, hundreds of pixels).
  float x0 = 1e9f, y0 = 1e9f, x1 = -1e9f, y1 = -1e9f;
  for (const auto& k : r[0][0].keypoints)
    if (k.score >= 0.5f) x0 = std::min(x0, k.x), y0 = std::min(y0, k.y), x1 = std::max(x1, k.x), y1 = std::max(y1, k.y);
  ASSERT_LT(x0, x1) << "no confident keypoints in " << photo;
  const int side = static_cast<int>(std::max(x1 - x0, y1 - y0) * 1.4f) + 8;
  FrameRef crop = plain;
  crop.crop_x = static_cast<int>((x0 + x1) / 2) - side / 2;
  crop.crop_y = static_cast<int>((y0 + y1) / 2) - side / 2;
  crop.crop_w = crop.crop_h = side;
  const auto c = det.detect_batch({crop});
  ASSERT_EQ(c[0].size(), 1u);
  const double cell = static_cast<double>(lb.w) / (det.input_size() / 4);
  int compared = 0;
  for (size_t k = 0; k < 17; ++k) {
    if (r[0][0].keypoints[k].score < 0.5f || c[0][0].keypoints[k].score < 0.5f) continue;
    EXPECT_NEAR(c[0][0].keypoints[k].x, r[0][0].keypoints[k].x, cell) << "kp " << k;
    EXPECT_NEAR(c[0][0].keypoints[k].y, r[0][0].keypoints[k].y, cell) << "kp " << k;
    ++compared;
  }
  EXPECT_GE(compared, 5);

  FrameRef bad = plain;
  bad.crop_w = 10;  // crop_h 0
  EXPECT_THROW(det.detect_batch({bad}), Error);
  // Offsets that int pixel arithmetic could overflow are refused, with the crop in the message.
  FrameRef far = plain;
  far.crop_x = 2147483000;
  far.crop_y = 0;
  far.crop_w = far.crop_h = 100;
  try {
    det.detect_batch({far});
    ADD_FAILURE() << "a crop at x = 2147483000 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("too far out"), std::string::npos) << e.what();
  }
}

// frame_buffer: a frame written into the detector's own buffer gives the poses of the same frame
// passed from elsewhere; bad sizes and items are refused.
TEST_F(DetectorBatch, FrameBufferOnTheCpu) {
  Detector& det = *detector;
  uint8_t* a = det.frame_buffer(0, img.width, img.height);
  uint8_t* b = det.frame_buffer(1, img.width, img.height);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(a, b);
  std::copy(img.rgb.begin(), img.rgb.end(), a);
  for (size_t i = 0; i < img.rgb.size(); i += 3) b[i] = img.rgb[i + 2], b[i + 1] = img.rgb[i + 1], b[i + 2] = img.rgb[i];
  FrameRef fa{a, img.width, img.height};
  FrameRef fb{b, img.width, img.height, 0, true};
  const auto r = det.detect_batch({fa, fb});
  const auto ref = det.detect(img.rgb.data(), img.width, img.height);
  expect_equal(r[0], ref, "frame buffer");
  expect_equal(r[1], ref, "frame buffer, BGR");
  EXPECT_THROW(det.frame_buffer(-1, 8, 8), Error);
  EXPECT_THROW(det.frame_buffer(4096, 8, 8), Error);
  EXPECT_THROW(det.frame_buffer(0, 0, 8), Error);
  EXPECT_THROW(det.frame_buffer(0, 8, 40000), Error);
}

}  // namespace
}  // namespace posert
