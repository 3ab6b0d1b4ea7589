#include "pose/decode_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

#include "pose/cpu_decode.h"
#include "pose/movenet_multi.h"

namespace posert {

void summarize(DecodeTiming& t) {
  if (t.run_ms.empty()) return;
  std::vector<double> s = t.run_ms;
  std::sort(s.begin(), s.end());
  t.median_ms = s[s.size() / 2];
  const size_t i99 = std::min(s.size() - 1, static_cast<size_t>(std::ceil(0.99 * static_cast<double>(s.size()))) - 1);
  t.p99_ms = s[i99];
  double sum = 0;
  for (double v : s) sum += v;
  t.mean_ms = sum / static_cast<double>(s.size());
}

namespace {

void fill(Tensor& t, std::mt19937& rng, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  float* p = t.data<float>();
  const int64_t n = t.numel();
  for (int64_t i = 0; i < n; ++i) p[i] = d(rng);
}

template <class F>
DecodeTiming time_runs(int warmup, int runs, F&& fn) {
  for (int i = 0; i < warmup; ++i) fn();
  DecodeTiming t;
  for (int i = 0; i < runs; ++i) {
    const auto a = std::chrono::steady_clock::now();
    fn();
    const auto b = std::chrono::steady_clock::now();
    t.run_ms.push_back(std::chrono::duration<double, std::milli>(b - a).count());
  }
  summarize(t);
  return t;
}

}  // namespace

std::vector<Tensor> random_pose_heads(const ModelSpec& spec, int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<Tensor> heads;
  if (spec.decoder == DecoderKind::PoseNet) {
    const int64_t G = (spec.input_size - 1) / 16 + 1;
    heads.emplace_back(DType::F32, Shape{n, G, G, 17});
    heads.emplace_back(DType::F32, Shape{n, G, G, 34});
    heads.emplace_back(DType::F32, Shape{n, G, G, 32});
    heads.emplace_back(DType::F32, Shape{n, G, G, 32});
    fill(heads[0], rng, -8.0f, 2.0f);
    fill(heads[1], rng, -16.0f, 16.0f);
    fill(heads[2], rng, -32.0f, 32.0f);
    fill(heads[3], rng, -32.0f, 32.0f);
    return heads;
  }
  const int64_t G = spec.input_size / 4;
  const float g = static_cast<float>(G);
  heads.emplace_back(DType::F32, Shape{n, G, G, 1});
  heads.emplace_back(DType::F32, Shape{n, G, G, 17});
  heads.emplace_back(DType::F32, Shape{n, G, G, 34});
  heads.emplace_back(DType::F32, Shape{n, G, G, 34});
  fill(heads[0], rng, 0.0f, 1.0f);
  fill(heads[1], rng, 0.0f, 1.0f);
  fill(heads[2], rng, -g / 4, g / 4);
  fill(heads[3], rng, -0.5f, 1.5f);
  if (spec.decoder == DecoderKind::MoveNetMulti) {
    heads.emplace_back(DType::F32, Shape{n, G, G, 2});
    heads.emplace_back(DType::F32, Shape{n, G, G, 2});
    fill(heads[4], rng, 0.0f, g / 2);
    fill(heads[5], rng, -1.0f, 1.0f);
  }
  return heads;
}

Tensor random_heatmaps(int n, int h, int w, int k, uint32_t seed) {
  std::mt19937 rng(seed);
  Tensor t(DType::F32, Shape{n, h, w, k});
  fill(t, rng, 0.0f, 1.0f);
  return t;
}

std::vector<CropTransform> random_transforms(int n, uint32_t seed) {
  std::mt19937 rng(seed ^ 0x9e3779b9u);
  std::uniform_real_distribution<float> s(0.5f, 4.0f), o(-200.0f, 200.0f);
  std::vector<CropTransform> t(static_cast<size_t>(n));
  for (auto& c : t) c = CropTransform{s(rng), s(rng), o(rng), o(rng)};
  return t;
}

DecodeTiming bench_cpu_pose_decode(const ModelSpec& spec, const DecodeOptions& opt, int n, int threads, int warmup,
                                   int runs, uint32_t seed) {
  const std::vector<Tensor> heads = random_pose_heads(spec, n, seed);
  const std::vector<CropTransform> tf = random_transforms(n, seed);
  std::vector<const float*> ptrs;
  for (const auto& t : heads) ptrs.push_back(t.data<float>());
  CpuPoseDecoder dec(spec, opt, threads);
  std::vector<unsigned char> out(static_cast<size_t>(n) * dec.layout().item_bytes());
  return time_runs(warmup, runs, [&] { dec.decode(ptrs, n, tf.data(), out.data()); });
}

DecodeTiming bench_cpu_heatmap_decode(int n, int h, int w, int k, const HeatmapDecodeParams& p, int threads,
                                      int warmup, int runs, uint32_t seed) {
  const Tensor hm = random_heatmaps(n, h, w, k, seed);
  const std::vector<CropTransform> tf = random_transforms(n, seed);
  CpuHeatmapDecoder dec(threads);
  HeatmapPeaks out;
  return time_runs(warmup, runs, [&] { dec.decode(hm.data<float>(), n, h, w, k, tf.data(), p, out); });
}

DecodeTiming bench_reference_pose_decode(const ModelSpec& spec, const DecodeOptions& opt, int n, int warmup, int runs,
                                         uint32_t seed) {
  const std::vector<Tensor> heads = random_pose_heads(spec, n, seed);
  const std::vector<CropTransform> tf = random_transforms(n, seed);
  std::vector<const Tensor*> ptrs;
  for (const auto& t : heads) ptrs.push_back(&t);
  return time_runs(warmup, runs, [&] {
    for (int b = 0; b < n; ++b) {
      std::vector<Pose> poses = decode_heads(spec, ptrs, b, opt);
      for (auto& p : poses) map_pose(p, tf[b]);
    }
  });
}

DecodeTiming bench_reference_heatmap_decode(int n, int h, int w, int k, const HeatmapDecodeParams& p, int warmup,
                                            int runs, uint32_t seed) {
  const Tensor hm = random_heatmaps(n, h, w, k, seed);
  const std::vector<CropTransform> tf = random_transforms(n, seed);
  return time_runs(warmup, runs, [&] { decode_heatmaps_reference(hm.data<float>(), n, h, w, k, tf.data(), p); });
}

}  // namespace posert
