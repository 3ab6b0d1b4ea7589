// The CUDA decoders (src/pose/cuda/gpu_decode.h) against the CPU reference decoders: random heads
// (several seeds, batch 1 and 7, realistic ranges, tie-heavy quantized values, NaN), structured
// heads whose answers are known independently (blobs at chosen cells, exact quadratic bumps), and
// non-identity crop transforms. Runs on the GPU machine; skips with the reason elsewhere.
#include <gtest/gtest.h>

#include "gpu/gpu_test_util.h"

#if POSERT_HAVE_CUDA
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_kernels.h"
#include "pose/cuda/gpu_decode.h"
#include "pose/heatmap_decode.h"
#include "pose/model_spec.h"
#include "pose/movenet_single.h"
#include "pose/pose_record.h"
#include "pose/posenet.h"
#include "posert/error.h"
#include "support/test_support.h"
#endif

namespace posert {
namespace {

#if POSERT_HAVE_CUDA

void cuda_ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

// A device buffer for one test.
struct DevBuf {
  void* p = nullptr;
  size_t bytes = 0;
  explicit DevBuf(size_t n) : bytes(n) { cuda_ok(cudaMalloc(&p, n ? n : 1), "cudaMalloc"); }
  DevBuf(const void* host, size_t n) : DevBuf(n) {
    cuda_ok(cudaMemcpy(p, host, n, cudaMemcpyHostToDevice), "upload");
    cuda_ok(cudaDeviceSynchronize(), "upload");  // a pageable copy's DMA may outlive the call
  }
  ~DevBuf() { cudaFree(p); }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  void fill(int byte) { cuda_ok(cudaMemset(p, byte, bytes), "cudaMemset"); }
  template <class T> std::vector<T> download() const {
    std::vector<T> v(bytes / sizeof(T));
    cuda_ok(cudaMemcpy(v.data(), p, v.size() * sizeof(T), cudaMemcpyDeviceToHost), "download");
    return v;
  }
};

float sigmoidf(float v) { return 1.0f / (1.0f + std::exp(-v)); }

// A few transforms that are not the identity (letterbox-like and crop-like, scales != 1, x != y).
CropTransform transform_for(int b) {
  static const CropTransform t[] = {{2.5f, 2.5f, -0.0f, -140.0f},
                                    {0.8125f, 1.375f, 37.0f, -12.0f},
                                    {3.3333333f, 3.3333333f, 101.0f, 55.5f},
                                    {1.0f, 1.0f, 0.0f, 0.0f},
                                    {0.5f, 0.75f, -20.0f, 300.0f},
                                    {7.1f, 2.9f, 1000.0f, 13.0f},
                                    {1.7f, 1.7f, -64.0f, -64.0f}};
  return t[b % 7];
}

Pose map_pose(Pose p, const CropTransform& tf) {
  for (auto& k : p.keypoints) {
    k.x = k.x * tf.scale_x + tf.offset_x;
    k.y = k.y * tf.scale_y + tf.offset_y;
  }
  p.bbox = {p.bbox[0] * tf.scale_x + tf.offset_x, p.bbox[1] * tf.scale_y + tf.offset_y, p.bbox[2] * tf.scale_x,
            p.bbox[3] * tf.scale_y};
  return p;
}

// Host heads of one model for n items: [n, G, G, C] per head, spec.head_values order.
struct Heads {
  std::vector<Tensor> t;
  std::vector<const Tensor*> ptrs() const {
    std::vector<const Tensor*> v;
    for (const auto& x : t) v.push_back(&x);
    return v;
  }
};

int grid_of(const ModelSpec& s) { return s.decoder == DecoderKind::PoseNet ? (s.input_size - 1) / 16 + 1 : s.input_size / 4; }

std::vector<int> channels_of(const ModelSpec& s) {
  switch (s.decoder) {
    case DecoderKind::MoveNetSingle: return {1, 17, 34, 34};
    case DecoderKind::MoveNetMulti: return {1, 17, 34, 34, 2, 2};
    case DecoderKind::PoseNet: return {17, 34, 32, 32};
  }
  return {};
}

Heads zero_heads(const ModelSpec& spec, int n) {
  Heads h;
  const int G = grid_of(spec);
  for (int c : channels_of(spec)) h.t.emplace_back(DType::F32, Shape{n, G, G, c});
  return h;
}

enum class Values { Smooth, Quantized };

// Random heads with realistic ranges: probabilities as sigmoid(logits), regression within part of
// the grid, offsets within a cell (PoseNet: pixels). Quantized: few distinct values, many ties.
Heads random_heads(const ModelSpec& spec, int n, uint32_t seed, Values values) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> logit(0.0f, 2.0f);
  Heads h = zero_heads(spec, n);
  const float G = static_cast<float>(grid_of(spec));
  auto fill = [&](Tensor& t, auto gen) {
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = gen();
  };
  auto uni = [&](float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); };
  auto prob = [&]() {
    if (values == Values::Quantized) return sigmoidf(static_cast<float>(static_cast<int>(rng() % 5) - 2));
    return sigmoidf(logit(rng));
  };
  auto coarse = [&](float lo, float hi) {  // quantized to 1/4: ties in positions too
    const float v = uni(lo, hi);
    return values == Values::Quantized ? std::round(v * 4.0f) / 4.0f : v;
  };
  switch (spec.decoder) {
    case DecoderKind::MoveNetSingle:
      fill(h.t[0], prob);
      fill(h.t[1], prob);
      fill(h.t[2], [&] { return coarse(-G / 3, G / 3); });
      fill(h.t[3], [&] { return coarse(-1.0f, 1.0f); });
      break;
    case DecoderKind::MoveNetMulti:
      fill(h.t[0], prob);
      fill(h.t[1], prob);
      fill(h.t[2], [&] { return coarse(-12.0f, 12.0f); });
      fill(h.t[3], [&] { return coarse(-1.0f, 1.0f); });
      fill(h.t[4], [&] { return coarse(-3.0f, 30.0f); });  // negative sizes are clipped to 0
      fill(h.t[5], [&] { return coarse(-3.0f, 3.0f); });
      break;
    case DecoderKind::PoseNet:
      fill(h.t[0], [&] {
        return values == Values::Quantized ? static_cast<float>(static_cast<int>(rng() % 7) - 3) : 1.5f * logit(rng);
      });
      fill(h.t[1], [&] { return coarse(-20.0f, 20.0f); });
      fill(h.t[2], [&] { return coarse(-60.0f, 60.0f); });
      fill(h.t[3], [&] { return coarse(-60.0f, 60.0f); });
      break;
  }
  return h;
}

struct GpuResult {
  std::vector<std::vector<Pose>> poses;
  std::vector<uint8_t> bytes;
};

// Runs the GPU decoder on n items (transform_for(b)); checks the wire format of every item. The
// heads start head_shift bytes (a multiple of 4) past a cudaMalloc'd address.
GpuResult run_gpu(const ModelSpec& spec, const Heads& heads, int n, const DecodeOptions& opt, bool graph = false,
                  size_t head_shift = 0) {
  cuda::GpuPoseDecoder dec(spec, n, opt);
  std::vector<std::unique_ptr<DevBuf>> dh;
  std::vector<const float*> ptrs;
  for (const auto& t : heads.t) {
    dh.push_back(std::make_unique<DevBuf>(t.nbytes() + head_shift));
    char* at = static_cast<char*>(dh.back()->p) + head_shift;
    cuda_ok(cudaMemcpy(at, t.raw(), t.nbytes(), cudaMemcpyHostToDevice), "upload");
    ptrs.push_back(reinterpret_cast<const float*>(at));
  }
  std::vector<CropTransform> tf(n);
  for (int b = 0; b < n; ++b) tf[b] = transform_for(b);
  DevBuf dtf(tf.data(), tf.size() * sizeof(CropTransform));
  DevBuf out(dec.output_bytes(n));
  out.fill(0xCD);  // the decoder must write every byte
  cudaStream_t s;
  cuda_ok(cudaStreamCreate(&s), "cudaStreamCreate");
  if (graph) {
    // Captured in a CUDA graph as the pipeline does: enqueue must not allocate or synchronize.
    cudaGraph_t g;
    cudaGraphExec_t ge;
    cuda_ok(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), "begin capture");
    dec.enqueue(ptrs, n, static_cast<const CropTransform*>(dtf.p), out.p, s);
    cuda_ok(cudaStreamEndCapture(s, &g), "end capture");
    cuda_ok(cudaGraphInstantiate(&ge, g, 0), "instantiate");
    cuda_ok(cudaGraphLaunch(ge, s), "graph launch");
    cuda_ok(cudaStreamSynchronize(s), "graph sync");
    cudaGraphExecDestroy(ge);
    cudaGraphDestroy(g);
  } else {
    dec.enqueue(ptrs, n, static_cast<const CropTransform*>(dtf.p), out.p, s);
  }
  cuda_ok(cudaStreamSynchronize(s), "decoder run");
  cudaStreamDestroy(s);
  GpuResult r;
  r.bytes = out.download<uint8_t>();
  const size_t item = dec.layout().item_bytes();
  for (int b = 0; b < n; ++b) {
    const uint8_t* it = r.bytes.data() + b * item;
    int32_t head[4];
    std::memcpy(head, it, sizeof(head));
    EXPECT_TRUE(head[0] >= 0 && head[0] <= dec.max_poses()) << "item " << b << " count " << head[0];
    EXPECT_EQ(head[1] | head[2] | head[3], 0) << "item " << b << ": header padding not zeroed";
    const int count = std::clamp(head[0], 0, dec.max_poses());
    for (size_t i = 16 + count * sizeof(PoseRecord); i < item; ++i)
      if (it[i] != 0) {
        ADD_FAILURE() << "item " << b << ": byte " << i << " beyond the " << count << " records is not zero";
        break;
      }
    r.poses.push_back(poses_from_item(it, dec.max_poses()));
  }
  return r;
}

std::vector<std::vector<Pose>> run_cpu(const ModelSpec& spec, const Heads& heads, int n, const DecodeOptions& opt) {
  std::vector<std::vector<Pose>> r(n);
  for (int b = 0; b < n; ++b)
    for (const Pose& p : decode_heads(spec, heads.ptrs(), b, opt)) r[b].push_back(map_pose(p, transform_for(b)));
  return r;
}

// Largest differences seen, reported with each test.
struct Diff {
  double px = 0, score = 0;  // coordinates in model-input pixels, scores
  long values = 0, identical = 0;
};

bool same_nan(float a, float b) { return std::isnan(a) && std::isnan(b); }

// got vs want: same count and order; coordinates within tol_model_px model-input pixels (mapped
// to frame pixels by the item's scale), scores within tol_score; exact: every value bit-equal.
void expect_same(const std::vector<std::vector<Pose>>& got, const std::vector<std::vector<Pose>>& want,
                 double tol_model_px, double tol_score, bool exact, const std::string& what, Diff* diff = nullptr) {
  ASSERT_EQ(got.size(), want.size()) << what;
  Diff d;
  for (size_t b = 0; b < want.size(); ++b) {
    ASSERT_EQ(got[b].size(), want[b].size()) << what << " item " << b << ": pose count";
    const CropTransform tf = transform_for(static_cast<int>(b));
    const double sx = std::fabs(tf.scale_x), sy = std::fabs(tf.scale_y);
    auto cmp = [&](float g, float w, double tol, double unit, bool is_score, const std::string& where) {
      ++d.values;
      if (std::memcmp(&g, &w, sizeof(float)) == 0 || same_nan(g, w)) {
        ++d.identical;
        return;
      }
      const double e = std::fabs(static_cast<double>(g) - w) / unit;
      if (is_score) d.score = std::max(d.score, e);
      else d.px = std::max(d.px, e);
      EXPECT_FALSE(exact) << what << " item " << b << " " << where << ": " << g << " != " << w << " (not bit-equal)";
      EXPECT_LE(e, tol) << what << " item " << b << " " << where << ": got " << g << " want " << w;
    };
    for (size_t p = 0; p < want[b].size(); ++p) {
      const Pose &g = got[b][p], &w = want[b][p];
      const std::string at = "pose " + std::to_string(p);
      cmp(g.score, w.score, tol_score, 1, true, at + " score");
      for (int i = 0; i < 4; ++i) cmp(g.bbox[i], w.bbox[i], tol_model_px, i % 2 ? sy : sx, false, at + " bbox " + std::to_string(i));
      ASSERT_EQ(g.keypoints.size(), w.keypoints.size());
      for (size_t k = 0; k < w.keypoints.size(); ++k) {
        const std::string kp = at + " kp " + std::to_string(k);
        cmp(g.keypoints[k].x, w.keypoints[k].x, tol_model_px, sx, false, kp + " x");
        cmp(g.keypoints[k].y, w.keypoints[k].y, tol_model_px, sy, false, kp + " y");
        cmp(g.keypoints[k].score, w.keypoints[k].score, tol_score, 1, true, kp + " score");
      }
    }
  }
  if (diff) {
    diff->px = std::max(diff->px, d.px);
    diff->score = std::max(diff->score, d.score);
    diff->values += d.values;
    diff->identical += d.identical;
  }
}

void report(const char* what, const Diff& d) {
  std::printf("[ %s ] %ld of %ld values bit-identical; max |diff| %.3g model px, %.3g score\n", what, d.identical,
              d.values, d.px, d.score);
}

// The random-head comparison for one model: seeds x batch sizes x value kinds.
void check_random(const ModelSpec& spec, bool exact, double tol_px, double tol_score, const DecodeOptions& opt = {}) {
  const char* model = spec.name.c_str();
  Diff diff;
  for (Values v : {Values::Smooth, Values::Quantized})
    for (int n : {1, 7})
      for (uint32_t seed : {1u, 2u, 3u}) {
        const Heads h = random_heads(spec, n, seed * 97 + n, v);
        const std::string what = std::string(model) + (v == Values::Smooth ? " smooth" : " quantized") + " n=" +
                                 std::to_string(n) + " seed=" + std::to_string(seed);
        expect_same(run_gpu(spec, h, n, opt).poses, run_cpu(spec, h, n, opt), tol_px, tol_score, exact, what, &diff);
      }
  report(model, diff);
}

void check_random(const char* model, bool exact, double tol_px, double tol_score, const DecodeOptions& opt = {}) {
  check_random(find_model_spec(model), exact, tol_px, tol_score, opt);
}

TEST(CudaDecode, MoveNetSingleMatchesCpuBitForBit) {
  POSERT_REQUIRE_GPU();
  check_random("movenet-lightning", true, 1e-3, 1e-5);
  check_random("movenet-thunder", true, 1e-3, 1e-5);
}

// The single-pose kernel has compiled cases for lightning's and thunder's grids (48, 64) and a
// general one: grids of 49 (an odd cell count: no 16-byte centre loads) and 50 cells a side.
// `model` at other input sizes: check_random, then batch 40 (seed `seed`), against the CPU.
void check_other_inputs(const char* model, std::initializer_list<int> inputs, bool exact, uint32_t seed) {
  for (int input : inputs) {
    ModelSpec spec = find_model_spec(model);
    spec.input_size = input;
    spec.name += " at " + std::to_string(input);
    check_random(spec, exact, 1e-3, 1e-5);
    const Heads h = random_heads(spec, 40, seed, Values::Smooth);
    expect_same(run_gpu(spec, h, 40, {}).poses, run_cpu(spec, h, 40, {}), 1e-3, 1e-5, exact, spec.name + " n=40");
  }
}

TEST(CudaDecode, MoveNetSingleOtherGridSizes) {
  POSERT_REQUIRE_GPU();
  check_other_inputs("movenet-lightning", {196, 200}, true, 5);
}

// $POSERT_DECODE_CELLS_PER_LANE sets how many cells each lane searches (and so the blocks per
// item) in place of the batch's choice: any value gives the CPU's bits, from one cell per lane to
// one block per item (4096 is clamped to the grid).
TEST(CudaDecode, MoveNetSingleAnyCellsPerLane) {
  POSERT_REQUIRE_GPU();
  for (const char* model : {"movenet-lightning", "movenet-thunder"}) {
    const ModelSpec& spec = find_model_spec(model);
    for (const char* per_lane : {"1", "3", "9", "17", "4096"}) {
      const test::ScopedEnv env("POSERT_DECODE_CELLS_PER_LANE", per_lane);
      for (int n : {1, 16}) {
        const Heads h = random_heads(spec, n, 41 + n, Values::Smooth);
        expect_same(run_gpu(spec, h, n, {}).poses, run_cpu(spec, h, n, {}), 1e-3, 1e-5, true,
                    std::string(model) + " cells per lane " + per_lane + " n=" + std::to_string(n));
      }
    }
  }
}

// The single-pose decoder screens cells by an estimate of heat / (distance + eps) and computes
// the exact value only where the estimate comes near the lane's best. Keypoint heats built to
// defeat a careless screen, against the CPU's bits, screened and with $POSERT_DECODE_EXHAUSTIVE=1
// (every cell exact), at batch 1 and 16 (several tiles per lane):
//   near ties (heat = V * (distance + eps): every cell's value within an ulp or two of V), ties
//   (heat = distance + eps), all zero, all negative, tiny (1e-35 .. 1e-38, subnormals among them),
//   around the screen's floor (1e-31 .. 1e-29), huge (1e37 .. 3e38), a few infinities among
//   random values, random values with the regressed position far off the grid (1e7 cells), and
//   one pair of cells 32 apart in a row (one lane's cells where a block holds both) above all
//   others (which are at half the value): near-tied (value V within an ulp or two), or tied
//   exactly (the pair symmetric about the regressed position; the first cell wins).
TEST(CudaDecode, MoveNetSingleScreenedSearchGivesTheExactBits) {
  POSERT_REQUIRE_GPU();
  for (const char* model : {"movenet-lightning", "movenet-thunder"}) {
    const ModelSpec& spec = find_model_spec(model);
    const int G = spec.input_size / 4;
    for (int n : {1, 16}) {
      Heads h = random_heads(spec, n, 77 + n, Values::Smooth);
      std::mt19937 rng(1234 + n);
      auto uni = [&](float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); };
      for (int b = 0; b < n; ++b) {
        float* centre = h.t[0].data<float>() + static_cast<size_t>(b) * G * G;
        float* heat = h.t[1].data<float>() + static_cast<size_t>(b) * G * G * 17;
        float* reg = h.t[2].data<float>() + static_cast<size_t>(b) * G * G * 34;
        // One clear centre, so the test knows each keypoint's regressed position.
        const int cy = static_cast<int>(rng() % G), cx = static_cast<int>(rng() % G);
        for (int i = 0; i < G * G; ++i) centre[i] = 0.01f;
        centre[cy * G + cx] = 1.0f;
        for (int k = 0; k < 17; ++k) {
          const int kind = (k + b) % 11;
          float* r = reg + (static_cast<size_t>(cy) * G + cx) * 34 + 2 * k;
          if (kind == 8) r[0] = 1e7f, r[1] = -1e7f;
          int pair = -1;  // kinds 9 and 10: cells pair and pair + 32
          if (kind == 9 || kind == 10) {
            const int py = static_cast<int>(rng() % G), px = static_cast<int>(rng() % (G - 32));
            pair = py * G + px;
            if (kind == 10) r[0] = static_cast<float>(py - cy), r[1] = static_cast<float>(px + 16 - cx);
          }
          const float ry = static_cast<float>(cy) + r[0], rx = static_cast<float>(cx) + r[1];
          const float v = uni(0.05f, 0.5f);
          for (int i = 0; i < G * G; ++i) {
            const float dy = static_cast<float>(i / G) - ry, dx = static_cast<float>(i % G) - rx;
            const float den = std::sqrt(dy * dy + dx * dx) + kMoveNetKeypointDistEps;
            float& x = heat[static_cast<size_t>(i) * 17 + k];
            switch (kind) {
              case 0: x = v * den; break;
              case 1: x = den; break;
              case 2: x = 0.0f; break;
              case 3: x = -uni(0.0f, 1.0f); break;
              case 4: x = uni(1e-38f, 1e-35f) * (rng() % 4 == 0 ? 1e-3f : 1.0f); break;
              case 5: x = uni(1e-31f, 1e-29f); break;
              case 6: x = uni(1e37f, 3e38f); break;
              case 7: x = rng() % 500 == 0 ? INFINITY : uni(0.0f, 1.0f); break;
              case 9:
              case 10: x = (i == pair || i == pair + 32 ? 1.0f : 0.5f) * v * den; break;
              default: x = uni(0.0f, 1.0f); break;
            }
          }
        }
      }
      const auto want = run_cpu(spec, h, n, {});
      for (const char* exhaustive : {"0", "1"}) {
        const test::ScopedEnv env("POSERT_DECODE_EXHAUSTIVE", exhaustive);
        expect_same(run_gpu(spec, h, n, {}).poses, want, 1e-3, 1e-5, true,
                    std::string(model) + " n=" + std::to_string(n) + " exhaustive=" + exhaustive);
      }
    }
  }
}

// On sm_90+ the single-pose decoder copies each block's chunk of heat values into shared memory
// whole (the copy engine takes the 16-byte-aligned middle, threads the ragged ends) where the
// chunk has at most 640 cells; $POSERT_DECODE_STAGED=0 takes the tile-by-tile loads. Both give
// the CPU's bits with the heads at every word alignment and with chunks that start off a 16-byte
// boundary (17 cells per lane: 461-cell chunks on lightning's grid) or are too large to stage
// (4096: one block per item). Each way, with each item's last block in x waiting for the other blocks'
// keys where an item has at most 8 blocks (batch 16's choice, 17 and 4096 cells per lane) and
// ($POSERT_DECODE_POLL=0) with the last block to count assembling the pose.
TEST(CudaDecode, MoveNetSingleStagedAndTiledAtAnyAlignment) {
  POSERT_REQUIRE_GPU();
  for (const char* model : {"movenet-lightning", "movenet-thunder"}) {
    const ModelSpec& spec = find_model_spec(model);
    for (int n : {1, 16}) {
      const Heads h = random_heads(spec, n, 300 + n, Values::Smooth);
      const auto want = run_cpu(spec, h, n, {});
      for (const char* staged : {"1", "0"})
        for (const char* poll : {"1", "0"})
          for (const char* per_lane : {"", "3", "17", "4096"}) {
            const test::ScopedEnv s("POSERT_DECODE_STAGED", staged), q("POSERT_DECODE_POLL", poll),
                p("POSERT_DECODE_CELLS_PER_LANE", per_lane);
            for (const size_t shift : {0, 4, 8, 12})
              expect_same(run_gpu(spec, h, n, {}, false, shift).poses, want, 1e-3, 1e-5, true,
                          std::string(model) + " n=" + std::to_string(n) + " staged=" + staged + " poll=" + poll +
                              " cells per lane '" + per_lane + "' heads " + std::to_string(shift) + " bytes past 16");
          }
    }
  }
}

// exp: the GPU's double exp rounded to float vs glibc's expf may differ by one ulp in rare
// halfway cases; everything else is bit-equal.
TEST(CudaDecode, MoveNetMultiMatchesCpu) {
  POSERT_REQUIRE_GPU();
  check_random("movenet-multipose", false, 1e-3, 1e-5);
  DecodeOptions opt;
  opt.min_pose_score = 0.3f;
  check_random("movenet-multipose", false, 1e-3, 1e-5, opt);
}

TEST(CudaDecode, PoseNetMatchesCpu) {
  POSERT_REQUIRE_GPU();
  check_random("posenet", false, 1e-3, 1e-5);
  DecodeOptions opt;
  opt.min_keypoint_score = 0.8f;
  opt.min_pose_score = 0.2f;
  check_random("posenet", false, 1e-3, 1e-5, opt);
}

// The grouping kernel copies an item's offsets into shared memory where they fit (PoseNet's 25 x 25
// grid, 85 KB; a 35 x 35 grid, input 545, 167 KB, on sm_80 and sm_90) and reads them in place where
// they do not: a 51 x 51 grid (input 801, 354 KB).
TEST(CudaDecode, PoseNetLargeGridReadsOffsetsInPlace) {
  POSERT_REQUIRE_GPU();
  for (const int input : {545, 801}) {
    ModelSpec spec = find_model_spec("posenet");
    spec.input_size = input;
    spec.name += " at " + std::to_string(input);
    check_random(spec, false, 1e-3, 1e-5);
  }
}

// The grouping kernel is launched programmatically where the GPU supports it (sm_90: its blocks
// stage the heads while the peaks kernel finishes, then wait for the peaks) and in stream order
// otherwise: both give the CPU's poses. Where the GPU lacks it, only stream order runs.
TEST(CudaDecode, PoseNetWithAndWithoutProgrammaticLaunch) {
  POSERT_REQUIRE_GPU();
  cuda::init_programmatic_launch();  // first, so that a decoder's own call cannot undo the switch below
  const bool before = cuda::programmatic_launch();
  for (const bool on : {false, true}) {
    if (on && !cuda::programmatic_launch_supported()) {
      std::printf("programmatic launch: not supported on this GPU, stream order only\n");
      continue;
    }
    SCOPED_TRACE(on ? "programmatic launch" : "stream order");
    cuda::set_programmatic_launch(on);
    check_random("posenet", false, 1e-3, 1e-5);
    DecodeOptions opt;
    opt.min_pose_score = 0.2f;
    check_random("posenet", false, 1e-3, 1e-5, opt);
  }
  cuda::set_programmatic_launch(before);
}

// Heads that start 4, 8 or 12 bytes past a 16-byte boundary: the grouping kernel's copies into
// shared memory take the ragged ends word by word (sm_90) or copy 4 bytes at a time (older GPUs).
TEST(CudaDecode, PoseNetHeadsAtAnyWordAlignment) {
  POSERT_REQUIRE_GPU();
  const ModelSpec& spec = find_model_spec("posenet");
  const int n = 3;
  const Heads h = random_heads(spec, n, 23, Values::Smooth);
  const auto want = run_cpu(spec, h, n, {});
  for (const size_t shift : {4, 8, 12})
    expect_same(run_gpu(spec, h, n, {}, false, shift).poses, want, 1e-3, 1e-5, false,
                "posenet heads " + std::to_string(shift) + " bytes past 16");
}

// NaN in the heads (a broken engine): the CPU's argmax and min/max rules, value for value.
TEST(CudaDecode, NaNHeadsFollowTheCpuRules) {
  POSERT_REQUIRE_GPU();
  for (const char* model : {"movenet-lightning", "movenet-multipose", "posenet"}) {
    const ModelSpec& spec = find_model_spec(model);
    const int n = 3;
    Heads h = random_heads(spec, n, 5, Values::Smooth);
    std::mt19937 rng(9);
    for (auto& t : h.t)
      for (int i = 0; i < 40; ++i) t.data<float>()[rng() % t.numel()] = NAN;
    h.t[0].data<float>()[0] = NAN;  // item 0's first cell: the argmax keeps index 0
    expect_same(run_gpu(spec, h, n, {}).poses, run_cpu(spec, h, n, {}), 1e-3, 1e-5, false, model);
  }
}

// Offsets and displacements a broken engine may give: NaN, infinities, values whose position lies
// past int's range once divided by the stride, huge, tiny and negative zero, one in eight. The
// positions built from them go through the nearest-cell rule (floor of v / 16 + 0.5, then clamped
// to the grid; NaN gives cell 0) on both sides: the GPU's floor-convert saturates and is clamped
// as an integer, the CPU clamps a double.
TEST(CudaDecode, PoseNetOutlandishOffsetsFollowTheCpuRules) {
  POSERT_REQUIRE_GPU();
  const ModelSpec& spec = find_model_spec("posenet");
  const int n = 3;
  Heads h = random_heads(spec, n, 31, Values::Smooth);
  const float special[] = {NAN,     INFINITY, -INFINITY, 1e30f,  -1e30f,  3.4e10f, -3.4e10f, 3.5e10f,
                           -3.5e10f, 1e-40f,  -0.0f,     400.0f, -400.0f, 392.0f,  -8.0f,    7.999f};
  std::mt19937 rng(17);
  for (size_t t = 1; t < h.t.size(); ++t) {  // offsets, forward and backward displacements
    float* v = h.t[t].data<float>();
    for (int64_t i = 0; i < h.t[t].numel() / 8; ++i) v[rng() % h.t[t].numel()] = special[rng() % std::size(special)];
  }
  const auto want = run_cpu(spec, h, n, {});
  size_t poses = 0;
  for (const auto& item : want) poses += item.size();
  ASSERT_GT(poses, 0u) << "the CPU found no pose: the test would check nothing";
  expect_same(run_gpu(spec, h, n, {}).poses, want, 1e-3, 1e-5, false, "posenet outlandish offsets");
}

TEST(CudaDecode, CapturedInAGraphGivesTheSameBytes) {
  POSERT_REQUIRE_GPU();
  for (const char* model : {"movenet-thunder", "movenet-multipose", "posenet"}) {
    const ModelSpec& spec = find_model_spec(model);
    const Heads h = random_heads(spec, 4, 17, Values::Smooth);
    EXPECT_EQ(run_gpu(spec, h, 4, {}, false).bytes, run_gpu(spec, h, 4, {}, true).bytes) << model;
  }
}

// Larger batches: the decoders pick fewer, bigger blocks per item as the batch grows.
TEST(CudaDecode, LargerBatchesMatchCpu) {
  POSERT_REQUIRE_GPU();
  for (const char* model : {"movenet-lightning", "movenet-thunder", "movenet-multipose", "posenet"}) {
    const ModelSpec& spec = find_model_spec(model);
    const int n = 40;
    const Heads h = random_heads(spec, n, 31, Values::Smooth);
    const bool exact = spec.decoder == DecoderKind::MoveNetSingle;
    expect_same(run_gpu(spec, h, n, {}).poses, run_cpu(spec, h, n, {}), 1e-3, 1e-5, exact, model);
  }
}

// The decoders keep per-item state in their workspace between launches (argmax keys and
// last-block counters, the single-pose decoder's poll slots, PoseNet's peak counts) that each
// launch must leave reset: one decoder, enqueued again and again with different batch sizes,
// directly and as a replayed graph, on two sets of heads in turn (so that a value a launch left
// behind would give the next launch the other set's keypoints), gives every item the bytes a
// fresh decoder gives it. (The single-pose decoders' last block in x polls for the other blocks'
// keys where an item has at most 8 blocks and the GPU holds every block at once; on an H100 here
// at batch 64 (6 blocks an item; thunder's 683-cell chunks tile by tile), 16 (8) and 17
// (lightning: 7), and not at 17 on thunder's grid (22), 7, 3 or 1: both ways in one decoder,
// directly and as a graph; and again with $POSERT_DECODE_POLL=0.)
TEST(CudaDecode, RepeatedAndReplayedEnqueuesGiveTheSameBytes) {
  POSERT_REQUIRE_GPU();
  for (const char* model : {"movenet-lightning", "movenet-thunder", "movenet-multipose", "posenet", "movenet-lightning/0",
                            "movenet-thunder/0"}) {
    const std::string name(model);
    const test::ScopedEnv q("POSERT_DECODE_POLL", name.find("/0") != std::string::npos ? "0" : "");
    const ModelSpec& spec = find_model_spec(name.substr(0, name.find('/')));
    const int N = 64;
    std::vector<Heads> h;
    std::vector<std::vector<uint8_t>> want;
    for (unsigned seed : {43u, 44u}) {
      h.push_back(random_heads(spec, N, seed, Values::Smooth));
      want.push_back(run_gpu(spec, h.back(), N, {}).bytes);
    }

    cuda::GpuPoseDecoder dec(spec, N, {});
    const size_t item = dec.layout().item_bytes();
    std::vector<std::unique_ptr<DevBuf>> dh;
    std::vector<const float*> ptrs[2];
    for (int v = 0; v < 2; ++v)
      for (const auto& t : h[v].t) {
        dh.push_back(std::make_unique<DevBuf>(t.raw(), t.nbytes()));
        ptrs[v].push_back(static_cast<const float*>(dh.back()->p));
      }
    std::vector<CropTransform> tf(N);
    for (int b = 0; b < N; ++b) tf[b] = transform_for(b);
    DevBuf dtf(tf.data(), tf.size() * sizeof(CropTransform));
    DevBuf out(dec.output_bytes(N));
    cudaStream_t s;
    cuda_ok(cudaStreamCreate(&s), "cudaStreamCreate");
    auto check = [&](int n, int v, const std::string& what) {
      cuda_ok(cudaStreamSynchronize(s), "decoder run");
      const std::vector<uint8_t> got = out.download<uint8_t>();
      EXPECT_TRUE(std::equal(got.begin(), got.begin() + n * item, want[v].begin()))
          << model << " " << what << " (heads " << v << ")";
    };
    int v = 0;
    for (int n : {N, 1, 16, 17, 7, N, 3, 16, 1, 17, N}) {
      out.fill(0xCD);
      dec.enqueue(ptrs[v], n, static_cast<const CropTransform*>(dtf.p), out.p, s);
      check(n, v, "direct n=" + std::to_string(n));
      v = 1 - v;
    }
    const int gn = 16;
    cudaGraph_t g;
    cudaGraphExec_t ge;
    cuda_ok(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), "begin capture");
    dec.enqueue(ptrs[0], gn, static_cast<const CropTransform*>(dtf.p), out.p, s);
    cuda_ok(cudaStreamEndCapture(s, &g), "end capture");
    cuda_ok(cudaGraphInstantiate(&ge, g, 0), "instantiate");
    for (int r = 0; r < 3; ++r) {
      out.fill(0xCD);
      cuda_ok(cudaGraphLaunch(ge, s), "graph launch");
      check(gn, 0, "graph replay " + std::to_string(r));
      cuda_ok(cudaGraphLaunch(ge, s), "graph launch");  // twice in a row, without a sync between
      check(gn, 0, "graph replay twice " + std::to_string(r));
      out.fill(0xCD);
      dec.enqueue(ptrs[1], r == 1 ? gn : N, static_cast<const CropTransform*>(dtf.p), out.p, s);
      check(r == 1 ? gn : N, 1, "direct after replay " + std::to_string(r));
    }
    cudaGraphExecDestroy(ge);
    cudaGraphDestroy(g);
    cudaStreamDestroy(s);
  }
}

// PoseNet with every part a peak of equal score, all offsets and displacements zero: each pose
// sits on its root's cell and claims the roots of the next cell too, so the roots come from
// deep in the queue (well past the first 32), in index order among equal scores.
TEST(CudaDecode, PoseNetWalksFarIntoTheRootQueue) {
  POSERT_REQUIRE_GPU();
  const ModelSpec& spec = find_model_spec("posenet");
  const int n = 2;
  Heads h = zero_heads(spec, n);
  for (int64_t i = 0; i < h.t[0].numel(); ++i) h.t[0].data<float>()[i] = 2.0f;
  // Item 1: a few larger logits in a column, so that the roots there come first.
  const int G = grid_of(spec);
  const size_t item = static_cast<size_t>(G) * G * 17;
  for (int y = 0; y < G; y += 3) h.t[0].data<float>()[item + (static_cast<size_t>(y) * G + 7) * 17 + 4] = 3.0f;
  const auto cpu = run_cpu(spec, h, n, {});
  ASSERT_EQ(cpu[0].size(), 6u);
  expect_same(run_gpu(spec, h, n, {}).poses, cpu, 1e-3, 1e-5, false, "posenet flat");
}

// PoseNet's first roots come from a score histogram where at most 64 peaks lie in the bins from the
// one that holds the 32nd best up, and from a full sort otherwise. One item per case around those
// edges: no peak, 1, 31, 32, 33; 64 and 65 peaks of one score (the 32nd best's bin then holds them
// all: the histogram path at 64, the sort at 65); 40 peaks whose 32nd and 33rd best share a score;
// logits a float step apart; 300 peaks of random scores. Peaks sit on every other cell so that
// each is a local maximum, and the offsets and displacements are zero, so each pose lies on its root's
// cell and, up to 169 peaks, no root is within the NMS radius of another.
TEST(CudaDecode, PoseNetRootsAroundTheHistogramCut) {
  POSERT_REQUIRE_GPU();
  const ModelSpec& spec = find_model_spec("posenet");
  const int G = grid_of(spec);
  const std::vector<int> peaks_per_item = {0, 1, 31, 32, 33, 64, 65, 40, 48, 300};
  const int n = static_cast<int>(peaks_per_item.size());
  Heads h = zero_heads(spec, n);
  float* logits = h.t[0].data<float>();
  std::fill(logits, logits + h.t[0].numel(), -10.0f);
  std::mt19937 rng(77);
  std::uniform_real_distribution<float> uni(0.0f, 3.0f);
  const size_t item = static_cast<size_t>(G) * G * 17;
  const int side = (G + 1) / 2;  // every other cell in y and x
  for (int b = 0; b < n; ++b) {
    const int count = peaks_per_item[b];
    ASSERT_LE(count, side * side * 17);
    for (int p = 0; p < count; ++p) {
      const int k = p % 17, c = p * 7 % (side * side);  // distinct cells for p < 169
      const int y = 2 * (c / side), x = 2 * (c % side);
      float v = 1.0f + 0.01f * static_cast<float>(p);     // distinct scores
      if (b == 5 || b == 6) v = 1.5f;                     // one score
      if (b == 7) v = p == 31 || p == 32 ? 0.75f : p < 31 ? 2.0f - 0.01f * p : 0.5f - 0.001f * p;
      if (b == 8) v = std::nextafter(1.0f, 2.0f) + static_cast<float>(p) * 1.2e-7f;  // a float step apart
      if (b == 9) v = uni(rng);
      logits[b * item + (static_cast<size_t>(y) * G + x) * 17 + k] = v;
    }
  }
  const auto cpu = run_cpu(spec, h, n, {});
  for (int b = 0; b < n; ++b) EXPECT_EQ(cpu[b].size(), std::min<size_t>(peaks_per_item[b], 6)) << "item " << b;
  expect_same(run_gpu(spec, h, n, {}).poses, cpu, 1e-3, 1e-5, false, "posenet histogram cut");

  // Logits from 17 up in steps of 0.02 on neighbouring cells: every score rounds to 1, so no
  // neighbour scores higher and each cell is a peak, although its neighbours' logits are 0.02
  // above (the peaks kernel decides on logits alone only up to 8). Then 7.9 to 8.1.
  for (const float base : {17.0f, 7.9f}) {
    Heads flat = zero_heads(spec, 1);
    float* lg = flat.t[0].data<float>();
    std::fill(lg, lg + flat.t[0].numel(), -10.0f);
    for (int y = 0; y < 6; ++y)
      for (int x = 0; x < 6; ++x) lg[(static_cast<size_t>(y) * G + x) * 17 + 3] = base + 0.02f * (y * 6 + x);
    const auto want = run_cpu(spec, flat, 1, {});
    ASSERT_FALSE(want[0].empty());
    expect_same(run_gpu(spec, flat, 1, {}).poses, want, 1e-3, 1e-5, false, "posenet logits from " + std::to_string(base));
  }
}

TEST(CudaDecode, RejectsBadBatchAndHeads) {
  POSERT_REQUIRE_GPU();
  const ModelSpec& spec = find_model_spec("movenet-lightning");
  cuda::GpuPoseDecoder dec(spec, 2, {});
  EXPECT_EQ(dec.max_poses(), 1);
  EXPECT_EQ(dec.output_bytes(2), 2 * (16 + sizeof(PoseRecord)));
  std::vector<const float*> four(4, reinterpret_cast<const float*>(16));
  EXPECT_THROW(dec.enqueue(four, 0, reinterpret_cast<const CropTransform*>(16), reinterpret_cast<void*>(16), nullptr), Error);
  EXPECT_THROW(dec.enqueue(four, 3, reinterpret_cast<const CropTransform*>(16), reinterpret_cast<void*>(16), nullptr), Error);
  EXPECT_THROW(dec.enqueue({four[0]}, 1, reinterpret_cast<const CropTransform*>(16), reinterpret_cast<void*>(16), nullptr), Error);
  EXPECT_THROW(cuda::GpuPoseDecoder(spec, 0, {}), Error);
  EXPECT_EQ(cuda::GpuPoseDecoder(find_model_spec("movenet-multipose"), 1, {}).max_poses(), 6);
  EXPECT_EQ(cuda::GpuPoseDecoder(find_model_spec("posenet"), 1, {}).max_poses(), 6);
}

float gauss(float dy, float dx, float sigma) { return std::exp(-(dy * dy + dx * dx) / (2 * sigma * sigma)); }

// Keypoint layout of a standing person in cells relative to the nose (y, x), COCO order; every
// keypoint on its own cell.
constexpr int kBody[17][2] = {{0, 0}, {-1, -1}, {-1, 1}, {0, -2}, {0, 2},  {2, -2}, {2, 2},  {3, -3}, {3, 3},
                              {4, -4}, {4, 4},  {5, -1}, {5, 1},  {7, -1}, {7, 1},  {9, -1}, {9, 1}};

// MoveNet single: a centre blob at the grid centre, regression pointing at keypoint blobs, known
// offsets: every keypoint lands at (cell + offset) * scale * input_size, score = the blob's peak.
TEST(CudaDecode, MoveNetSingleFindsPlacedKeypoints) {
  POSERT_REQUIRE_GPU();
  const ModelSpec& spec = find_model_spec("movenet-lightning");
  const int G = spec.input_size / 4, n = 3, c = G / 2;
  Heads h = zero_heads(spec, n);
  for (int b = 0; b < n; ++b) {
    float* centre = h.t[0].data<float>() + b * G * G;
    float* heat = h.t[1].data<float>() + b * G * G * 17;
    float* reg = h.t[2].data<float>() + b * G * G * 34;
    float* off = h.t[3].data<float>() + b * G * G * 34;
    for (int y = 0; y < G; ++y)
      for (int x = 0; x < G; ++x) centre[y * G + x] = 0.9f * gauss(y - c, x - c, 1.0f);
    for (int k = 0; k < 17; ++k) {
      const int ky = c - 8 + 2 * b + kBody[k][0] * 2, kx = c + kBody[k][1] * 2 - b;
      reg[(c * G + c) * 34 + 2 * k] = static_cast<float>(ky - c);
      reg[(c * G + c) * 34 + 2 * k + 1] = static_cast<float>(kx - c);
      for (int y = 0; y < G; ++y)
        for (int x = 0; x < G; ++x) heat[(y * G + x) * 17 + k] += (0.5f + 0.02f * k) * gauss(y - ky, x - kx, 0.8f);
      off[(ky * G + kx) * 34 + 2 * k] = 0.25f - 0.03f * k;
      off[(ky * G + kx) * 34 + 2 * k + 1] = -0.4f + 0.05f * k;
    }
  }
  const auto got = run_gpu(spec, h, n, {}).poses;
  expect_same(got, run_cpu(spec, h, n, {}), 1e-3, 1e-5, true, "structured lightning");
  const double scale = movenet_output_scale(G) * static_cast<double>(spec.input_size);  // fp16(1/G) * S
  for (int b = 0; b < n; ++b) {
    ASSERT_EQ(got[b].size(), 1u);
    const CropTransform tf = transform_for(b);
    double sum = 0;
    for (int k = 0; k < 17; ++k) {
      const int ky = c - 8 + 2 * b + kBody[k][0] * 2, kx = c + kBody[k][1] * 2 - b;
      const double mx = (kx + static_cast<double>(-0.4f + 0.05f * k)) * scale;
      const double my = (ky + static_cast<double>(0.25f - 0.03f * k)) * scale;
      const Keypoint& kp = got[b][0].keypoints[k];
      EXPECT_NEAR(kp.x, mx * tf.scale_x + tf.offset_x, 1e-3 * tf.scale_x) << "item " << b << " kp " << k;
      EXPECT_NEAR(kp.y, my * tf.scale_y + tf.offset_y, 1e-3 * tf.scale_y) << "item " << b << " kp " << k;
      EXPECT_NEAR(kp.score, 0.5f + 0.02f * k, 1e-5) << "item " << b << " kp " << k;
      sum += 0.5 + 0.02 * k;
    }
    EXPECT_NEAR(got[b][0].score, sum / 17, 1e-5);
  }
}

// MoveNet MultiPose: two people (centre blobs, boxes, keypoint blobs); the higher centre first,
// keypoints at (cell + offset) * 4 px, keypoint score = blob peak, pose score = centre * mean,
// bbox = the model's box.
TEST(CudaDecode, MoveNetMultiFindsPlacedPeople) {
  POSERT_REQUIRE_GPU();
  const ModelSpec& spec = find_model_spec("movenet-multipose");
  const int G = spec.input_size / 4, n = 2;
  struct Person {
    int cy, cx;
    float centre, bh, bw;
  };
  const Person people[2] = {{20, 20, 0.9f, 24, 20}, {44, 40, 0.8f, 24, 20}};
  Heads h = zero_heads(spec, n);
  for (int b = 0; b < n; ++b) {
    float* centre = h.t[0].data<float>() + b * G * G;
    float* heat = h.t[1].data<float>() + b * G * G * 17;
    float* reg = h.t[2].data<float>() + b * G * G * 34;
    float* off = h.t[3].data<float>() + b * G * G * 34;
    float* bscale = h.t[4].data<float>() + b * G * G * 2;
    for (const Person& P : people) {
      for (int y = 0; y < G; ++y)
        for (int x = 0; x < G; ++x) centre[y * G + x] = std::max(centre[y * G + x], P.centre * gauss(y - P.cy, x - P.cx, 1.0f));
      bscale[(P.cy * G + P.cx) * 2] = P.bh;
      bscale[(P.cy * G + P.cx) * 2 + 1] = P.bw;
      for (int k = 0; k < 17; ++k) {
        const int ky = P.cy - 8 + kBody[k][0] * 2 + b, kx = P.cx + kBody[k][1] * 2;
        reg[(P.cy * G + P.cx) * 34 + 2 * k] = static_cast<float>(ky - P.cy);
        reg[(P.cy * G + P.cx) * 34 + 2 * k + 1] = static_cast<float>(kx - P.cx);
        for (int y = 0; y < G; ++y)
          for (int x = 0; x < G; ++x)
            heat[(y * G + x) * 17 + k] = std::max(heat[(y * G + x) * 17 + k], 0.7f * gauss(y - ky, x - kx, 0.8f));
        off[(ky * G + kx) * 34 + 2 * k] = 0.375f;
        off[(ky * G + kx) * 34 + 2 * k + 1] = -0.125f;
      }
    }
  }
  const auto got = run_gpu(spec, h, n, {}).poses;
  expect_same(got, run_cpu(spec, h, n, {}), 1e-3, 1e-5, false, "structured multipose");
  for (int b = 0; b < n; ++b) {
    ASSERT_EQ(got[b].size(), 2u) << "item " << b;
    const CropTransform tf = transform_for(b);
    for (int p = 0; p < 2; ++p) {
      const Person& P = people[p];
      const Pose& pose = got[b][p];
      EXPECT_NEAR(pose.score, P.centre * 0.7f, 1e-5);
      EXPECT_NEAR(pose.bbox[0], (P.cx - P.bw / 2) * 4 * tf.scale_x + tf.offset_x, 1e-3 * tf.scale_x);
      EXPECT_NEAR(pose.bbox[1], (P.cy - P.bh / 2) * 4 * tf.scale_y + tf.offset_y, 1e-3 * tf.scale_y);
      EXPECT_NEAR(pose.bbox[2], P.bw * 4 * tf.scale_x, 1e-3 * tf.scale_x);
      EXPECT_NEAR(pose.bbox[3], P.bh * 4 * tf.scale_y, 1e-3 * tf.scale_y);
      for (int k = 0; k < 17; ++k) {
        const int ky = P.cy - 8 + kBody[k][0] * 2 + b, kx = P.cx + kBody[k][1] * 2;
        EXPECT_NEAR(pose.keypoints[k].x, (kx - 0.125) * 4 * tf.scale_x + tf.offset_x, 1e-3 * tf.scale_x);
        EXPECT_NEAR(pose.keypoints[k].y, (ky + 0.375) * 4 * tf.scale_y + tf.offset_y, 1e-3 * tf.scale_y);
        EXPECT_NEAR(pose.keypoints[k].score, 0.7f, 1e-5);
      }
    }
  }
}

// MultiPose on grids other than 64 x 64 (the centres kernel's generic case, box spans on a
// 40-cell and an odd 25-cell grid): the CPU's poses, at batch 1, 7 and 40.
TEST(CudaDecode, MoveNetMultiOtherGridSizes) {
  POSERT_REQUIRE_GPU();
  check_other_inputs("movenet-multipose", {160, 100}, false, 13);
}

// The MultiPose keypoint search computes a person's keypoint values inside the person's box only
// and takes the first cell with a finite heat value outside it (where every value is +-0);
// $POSERT_DECODE_EXHAUSTIVE=1 computes every cell. Both give the same bytes on heads made to
// stress that: one heat value in eight huge, negative, infinite, NaN, zero or subnormal (a
// chunk's first cells outside the box may be NaN); of every three items, the second and third
// with boxes over the whole grid (no cell outside), the second also with its keypoints regressed
// 38-44 rows above the grid (exp(-d2 / sigma) down in the subnormal floats); batch 1, 16 and 40
// (1 to 16 cells per lane).
TEST(CudaDecode, MoveNetMultiBoxSpansGiveTheExhaustiveBytes) {
  POSERT_REQUIRE_GPU();
  const ModelSpec& spec = find_model_spec("movenet-multipose");
  const int G = grid_of(spec);
  const float special[] = {1e38f, 3e38f, 1e30f, 2.0f, -0.5f, -1e30f, INFINITY, -INFINITY, NAN, 0.0f, -0.0f, 1e-40f};
  for (int n : {1, 16, 40}) {
    Heads h = random_heads(spec, n, 61 + n, Values::Smooth);
    std::mt19937 rng(7 + n);
    auto uni = [&](float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); };
    float* heat = h.t[1].data<float>();
    for (int64_t i = 0; i < h.t[1].numel(); ++i)
      if (rng() % 8 == 0) heat[i] = special[rng() % (sizeof(special) / sizeof(special[0]))];
    for (int b = 0; b < n; ++b) {
      float* reg = h.t[2].data<float>() + static_cast<size_t>(b) * G * G * 34;
      float* bscale = h.t[4].data<float>() + static_cast<size_t>(b) * G * G * 2;
      for (int cell = 0; cell < G * G; ++cell) {
        const int y = cell / G, x = cell % G;
        if (b % 3 == 1)
          for (int k = 0; k < 17; ++k) {
            reg[cell * 34 + 2 * k] = -static_cast<float>(y) - uni(38.0f, 44.0f);
            reg[cell * 34 + 2 * k + 1] = uni(0.0f, static_cast<float>(G)) - static_cast<float>(x);
          }
        if (b % 3 != 0) bscale[cell * 2] = bscale[cell * 2 + 1] = 4.0f * G;
      }
    }
    const GpuResult all = [&] {
      const test::ScopedEnv env("POSERT_DECODE_EXHAUSTIVE", "1");
      return run_gpu(spec, h, n, {});
    }();
    const GpuResult spans = [&] {
      const test::ScopedEnv env("POSERT_DECODE_EXHAUSTIVE", "0");
      return run_gpu(spec, h, n, {});
    }();
    EXPECT_EQ(spans.bytes, all.bytes) << "n=" << n;
    int poses = 0;
    for (const auto& item : all.poses) poses += static_cast<int>(item.size());
    std::printf("[ box spans ] n=%d: %d poses, same bytes as every cell computed: %s\n", n, poses,
                spans.bytes == all.bytes ? "yes" : "no");
  }
}

// PoseNet: two people drawn into all four heads (peaks, offsets, displacements exactly between
// the keypoints' positions): every keypoint at 16 * cell + offset + 0.5, score = its sigmoid.
TEST(CudaDecode, PoseNetFollowsPlacedSkeletons) {
  POSERT_REQUIRE_GPU();
  const ModelSpec& spec = find_model_spec("posenet");
  const int G = grid_of(spec), n = 2;
  struct Person {
    int y, x;
    float logit;
  };
  const Person people[2] = {{3, 5, 3.0f}, {13, 17, 2.0f}};
  Heads h = zero_heads(spec, n);
  auto cell_of = [&](const Person& P, int k) { return std::pair<int, int>{P.y + kBody[k][0], P.x + kBody[k][1]}; };
  auto off_of = [&](int k) { return std::pair<float, float>{-5.5f + 0.5f * k, 4.75f - 0.25f * k}; };
  auto pos_of = [&](const Person& P, int k) {  // PoseNet position: 16 * cell + offset
    const auto [y, x] = cell_of(P, k);
    const auto [oy, ox] = off_of(k);
    return std::pair<double, double>{16.0 * y + oy, 16.0 * x + ox};
  };
  for (int b = 0; b < n; ++b) {
    float* logit = h.t[0].data<float>() + b * G * G * 17;
    float* off = h.t[1].data<float>() + b * G * G * 34;
    float* fwd = h.t[2].data<float>() + b * G * G * 32;
    float* bwd = h.t[3].data<float>() + b * G * G * 32;
    for (int i = 0; i < G * G * 17; ++i) logit[i] = -6.0f;
    for (const Person& P : people) {
      for (int k = 0; k < 17; ++k) {
        const auto [y, x] = cell_of(P, k);
        logit[(y * G + x) * 17 + k] = P.logit;
        off[(y * G + x) * 34 + k] = off_of(k).first;
        off[(y * G + x) * 34 + 17 + k] = off_of(k).second;
      }
      for (int e = 0; e < 16; ++e) {
        const int parent = kPoseNetEdges[e][0], child = kPoseNetEdges[e][1];
        const auto pp = pos_of(P, parent), pc = pos_of(P, child);
        const auto [py, px] = cell_of(P, parent);
        const auto [cy, cx] = cell_of(P, child);
        fwd[(py * G + px) * 32 + e] = static_cast<float>(pc.first - pp.first);
        fwd[(py * G + px) * 32 + 16 + e] = static_cast<float>(pc.second - pp.second);
        bwd[(cy * G + cx) * 32 + e] = static_cast<float>(pp.first - pc.first);
        bwd[(cy * G + cx) * 32 + 16 + e] = static_cast<float>(pp.second - pc.second);
      }
    }
  }
  const auto got = run_gpu(spec, h, n, {}).poses;
  expect_same(got, run_cpu(spec, h, n, {}), 1e-3, 1e-5, false, "structured posenet");
  for (int b = 0; b < n; ++b) {
    ASSERT_EQ(got[b].size(), 2u) << "item " << b;
    const CropTransform tf = transform_for(b);
    for (int p = 0; p < 2; ++p) {
      const float s = sigmoidf(people[p].logit);
      EXPECT_NEAR(got[b][p].score, s, 1e-5);
      for (int k = 0; k < 17; ++k) {
        const auto [y, x] = pos_of(people[p], k);
        EXPECT_NEAR(got[b][p].keypoints[k].x, (x + 0.5) * tf.scale_x + tf.offset_x, 1e-3 * tf.scale_x) << p << " " << k;
        EXPECT_NEAR(got[b][p].keypoints[k].y, (y + 0.5) * tf.scale_y + tf.offset_y, 1e-3 * tf.scale_y) << p << " " << k;
        EXPECT_NEAR(got[b][p].keypoints[k].score, s, 1e-5);
      }
    }
  }
}

// ---- The generic heatmap decoder ----

HeatmapPeaks run_gpu_heatmaps(const std::vector<float>& heat, int n, int h, int w, int k, const HeatmapDecodeParams& p,
                              const std::vector<CropTransform>& tf) {
  cuda::GpuHeatmapDecoder dec(n, h, w, k, p);
  DevBuf dh(heat.data(), heat.size() * sizeof(float));
  DevBuf dtf(tf.data(), tf.size() * sizeof(CropTransform));
  DevBuf dpk(static_cast<size_t>(n) * k * p.top_k * sizeof(HeatmapPeak));
  DevBuf dct(static_cast<size_t>(n) * k * sizeof(int32_t));
  dpk.fill(0xCD);
  dct.fill(0xCD);
  dec.enqueue(static_cast<const float*>(dh.p), n, static_cast<const CropTransform*>(dtf.p),
              static_cast<HeatmapPeak*>(dpk.p), static_cast<int32_t*>(dct.p), nullptr);
  cuda_ok(cudaDeviceSynchronize(), "heatmap decoder run");
  HeatmapPeaks r;
  r.n = n;
  r.k = k;
  r.top_k = p.top_k;
  r.peaks = dpk.download<HeatmapPeak>();
  r.counts = dct.download<int32_t>();
  return r;
}

// Bit-equal peaks (the same float operations in the same order), including the zeroed empty slots.
void expect_same_peaks(const HeatmapPeaks& got, const HeatmapPeaks& want, const std::string& what) {
  ASSERT_EQ(got.counts, want.counts) << what;
  ASSERT_EQ(got.peaks.size(), want.peaks.size()) << what;
  for (size_t i = 0; i < want.peaks.size(); ++i) {
    const HeatmapPeak &g = got.peaks[i], &w = want.peaks[i];
    EXPECT_TRUE(std::memcmp(&g, &w, sizeof(g)) == 0)
        << what << " slot " << i << ": got (" << g.x << ", " << g.y << ", " << g.score << ") want (" << w.x << ", "
        << w.y << ", " << w.score << ")";
  }
}

TEST(CudaDecode, HeatmapDecoderMatchesReferenceBitForBit) {
  POSERT_REQUIRE_GPU();
  struct Case {
    int n, h, w, k, out_h, out_w, radius, top_k;
    float threshold;
    Values values;
  };
  const Case cases[] = {
      {1, 64, 48, 17, 256, 192, 1, 1, 0.1f, Values::Smooth},   {7, 64, 48, 17, 256, 192, 2, 5, 0.3f, Values::Smooth},
      {3, 17, 13, 5, 67, 41, 3, 16, 0.0f, Values::Smooth},     {2, 64, 48, 3, 256, 192, 1, 16, 0.2f, Values::Quantized},
      {1, 9, 11, 2, 9, 11, 1, 4, 0.1f, Values::Quantized},     {7, 32, 24, 17, 50, 30, 2, 3, 0.5f, Values::Smooth},
      {1, 5, 5, 1, 3, 2, 1, 16, -1.0f, Values::Smooth},  // downsampling, tiny output
      // 2x2 quantized maps over 3x3 tiles of 32x32: plateaus of equal values across tile borders
      // (every plateau pixel is a peak; ties go to the lowest raster index of the whole map).
      {3, 2, 2, 3, 96, 80, 3, 16, 0.0f, Values::Quantized},
      // Strong downsampling: a tile's source cells do not fit the staging area (read from memory).
      {2, 200, 160, 2, 40, 30, 2, 4, 0.3f, Values::Smooth},
  };
  int ci = 0;
  for (const Case& c : cases) {
    std::mt19937 rng(100 + ci);
    std::normal_distribution<float> logit(0.0f, 2.0f);
    std::vector<float> heat(static_cast<size_t>(c.n) * c.h * c.w * c.k);
    for (auto& v : heat)
      v = c.values == Values::Smooth ? sigmoidf(logit(rng)) : static_cast<float>(rng() % 4) * 0.25f;
    std::vector<CropTransform> tf(c.n);
    for (int b = 0; b < c.n; ++b) tf[b] = transform_for(b + ci);
    HeatmapDecodeParams p;
    p.out_h = c.out_h;
    p.out_w = c.out_w;
    p.nms_radius = c.radius;
    p.top_k = c.top_k;
    p.threshold = c.threshold;
    expect_same_peaks(run_gpu_heatmaps(heat, c.n, c.h, c.w, c.k, p, tf),
                      decode_heatmaps_reference(heat.data(), c.n, c.h, c.w, c.k, tf.data(), p),
                      "case " + std::to_string(ci));
    ++ci;
  }
}

// Exact quadratic bumps with upsampling factor 1 (U = H): the 3-point fit recovers the bump's
// sub-pixel centre, model-input position = centre + 0.5, in descending height order.
TEST(CudaDecode, HeatmapDecoderRecoversQuadraticPeaks) {
  POSERT_REQUIRE_GPU();
  const int n = 2, h = 40, w = 32, k = 3;
  struct Bump {
    double y, x, height;
  };
  const Bump bumps[k][2] = {{{12.3, 7.8, 0.9}, {30.1, 20.45, 0.6}},
                            {{5.1, 25.2, 0.7}, {20.49, 10.0, 0.8}},
                            {{33.6, 3.7, 0.5}, {8.2, 16.35, 0.95}}};
  const double a = 0.05;  // height falls by a per squared cell: about 4 cells of support
  std::vector<float> heat(static_cast<size_t>(n) * h * w * k, 0.0f);
  for (int b = 0; b < n; ++b)
    for (int c = 0; c < k; ++c)
      for (const Bump& bp : bumps[c])
        for (int y = 0; y < h; ++y)
          for (int x = 0; x < w; ++x) {
            const double dy = y - bp.y - 0.5 * b, dx = x - bp.x + 0.25 * b;
            float& v = heat[((static_cast<size_t>(b) * h + y) * w + x) * k + c];
            v = std::max(v, static_cast<float>(bp.height - a * (dy * dy + dx * dx)));
          }
  std::vector<CropTransform> tf = {transform_for(1), transform_for(2)};
  HeatmapDecodeParams p;
  p.out_h = h;
  p.out_w = w;
  p.nms_radius = 2;
  p.top_k = 4;
  p.threshold = 0.1f;
  const HeatmapPeaks got = run_gpu_heatmaps(heat, n, h, w, k, p, tf);
  expect_same_peaks(got, decode_heatmaps_reference(heat.data(), n, h, w, k, tf.data(), p), "quadratic bumps");
  for (int b = 0; b < n; ++b)
    for (int c = 0; c < k; ++c) {
      const size_t slot = static_cast<size_t>(b) * k + c;
      ASSERT_EQ(got.counts[slot], 2) << "item " << b << " keypoint " << c;
      const int first = bumps[c][0].height > bumps[c][1].height ? 0 : 1;
      for (int i = 0; i < 2; ++i) {
        const Bump& bp = bumps[c][i == 0 ? first : 1 - first];
        const HeatmapPeak& pk = got.peaks[slot * p.top_k + i];
        const double mx = bp.x - 0.25 * b + 0.5, my = bp.y + 0.5 * b + 0.5;
        EXPECT_NEAR(pk.x, mx * tf[b].scale_x + tf[b].offset_x, 1e-3 * tf[b].scale_x) << b << " " << c << " " << i;
        EXPECT_NEAR(pk.y, my * tf[b].scale_y + tf[b].offset_y, 1e-3 * tf[b].scale_y) << b << " " << c << " " << i;
        // The score is U at the peak cell (unrefined), below the bump's height.
        EXPECT_LE(pk.score, bp.height + 1e-6);
        EXPECT_GE(pk.score, bp.height - a * 0.5 - 1e-6);
      }
    }
}

// A Gaussian blob in a 4x-upsampled map: bilinear interpolation is piecewise linear, so the
// upsampled maximum sits at the source cell nearest the blob centre, model-input position
// (cell + 0.5) * 4 (half-pixel centres), and the refinement moves it by at most one model pixel.
TEST(CudaDecode, HeatmapDecoderPlacesUpsampledBlobs) {
  POSERT_REQUIRE_GPU();
  const int h = 16, w = 12, k = 1;
  const double cy = 6.3, cx = 4.6;  // nearest source cell (6, 5)
  std::vector<float> heat(static_cast<size_t>(h) * w);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) heat[y * w + x] = static_cast<float>(std::exp(-((y - cy) * (y - cy) + (x - cx) * (x - cx)) / 4.5));
  const std::vector<CropTransform> tf = {transform_for(2)};
  HeatmapDecodeParams p;
  p.out_h = 4 * h;
  p.out_w = 4 * w;
  p.top_k = 1;
  const HeatmapPeaks got = run_gpu_heatmaps(heat, 1, h, w, k, p, tf);
  expect_same_peaks(got, decode_heatmaps_reference(heat.data(), 1, h, w, k, tf.data(), p), "upsampled blob");
  ASSERT_EQ(got.counts[0], 1);
  EXPECT_NEAR(got.peaks[0].x, (5 + 0.5) * 4 * tf[0].scale_x + tf[0].offset_x, 1.0 * tf[0].scale_x);
  EXPECT_NEAR(got.peaks[0].y, (6 + 0.5) * 4 * tf[0].scale_y + tf[0].offset_y, 1.0 * tf[0].scale_y);
}

TEST(CudaDecode, HeatmapDecoderRejectsBadParams) {
  POSERT_REQUIRE_GPU();
  HeatmapDecodeParams p;
  p.out_h = 8;
  p.out_w = 8;
  p.top_k = kMaxHeatmapPeaks + 1;
  EXPECT_THROW(cuda::GpuHeatmapDecoder(1, 4, 4, 1, p), Error);
  p.top_k = 1;
  p.nms_radius = 0;
  EXPECT_THROW(cuda::GpuHeatmapDecoder(1, 4, 4, 1, p), Error);
  p.nms_radius = 1;
  cuda::GpuHeatmapDecoder dec(2, 4, 4, 1, p);
  EXPECT_THROW(dec.enqueue(reinterpret_cast<const float*>(16), 3, reinterpret_cast<const CropTransform*>(16),
                           reinterpret_cast<HeatmapPeak*>(16), reinterpret_cast<int32_t*>(16), nullptr),
               Error);
}

#else

TEST(CudaDecode, NeedsCudaBuild) { GTEST_SKIP() << "no GPU test: built without CUDA"; }

#endif

}  // namespace
}  // namespace posert
