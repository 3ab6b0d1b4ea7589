#include "engine/gpu_bench.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>

#include "engine/cuda/device_engine.h"
#include "engine/cuda/gpu_timing.h"
#include "posert/engine.h"

namespace posert {

namespace {

std::string version(int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); }

}  // namespace

GpuBenchReport run_gpu_bench(const GpuBenchOptions& opt) {
  if (opt.engine_per_batch && opt.engine_path.empty() && opt.batches.size() > 1) {
    const int largest = *std::max_element(opt.batches.begin(), opt.batches.end());
    GpuBenchReport kept;  // the largest batch's engine facts, every batch's row
    std::vector<GpuBenchRow> rows;
    double build = 0;
    for (int b : opt.batches) {
      GpuBenchOptions one = opt;
      one.batches = {b};
      one.profile = opt.profile && b == largest;
      GpuBenchReport r = run_gpu_bench(one);
      build += r.build_s;
      rows.push_back(r.rows.at(0));
      if (b == largest) kept = std::move(r);
    }
    kept.rows = std::move(rows);
    kept.build_s = build;
    return kept;
  }
  GpuBenchReport r;
  std::string why;
  if (!cuda_available(&why)) throw Error("--backend cuda: " + why + "; use --backend cpu");
  size_t free0 = 0, total = 0;
  cuda::check(cudaMemGetInfo(&free0, &total), "cudaMemGetInfo");
  const int max_batch = *std::max_element(opt.batches.begin(), opt.batches.end());
  const auto t0 = std::chrono::steady_clock::now();
  std::shared_ptr<Engine> engine;
  if (!opt.engine_path.empty()) {
    engine = Engine::load(opt.engine_path);
    if (engine->max_batch() < max_batch)
      throw Error("engine file '" + opt.engine_path + "' has max batch " + std::to_string(engine->max_batch()) +
                  ", less than the batch " + std::to_string(max_batch) + " asked for", ErrorKind::Usage);
  } else {
    BuildOptions bo;
    bo.precision = opt.precision;
    bo.max_batch = max_batch;
    bo.timing_cache = opt.timing_cache;
    bo.verbose = true;
    engine = Engine::build(opt.model, opt.models_dir, bo);
  }
  r.build_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto t = cuda::current_target();
  r.gpu = t.gpu_name + " (sm_" + std::to_string(t.cc_major) + std::to_string(t.cc_minor) + ")";
  r.cuda_runtime = version(t.cuda_runtime);
  int drv = 0;
  cudaDriverGetVersion(&drv);
  r.driver = "CUDA driver API " + version(drv);
  r.weight_bytes = engine->weight_bytes();
  r.arena_bytes = engine->arena_bytes();
  r.tensor_sum_bytes = engine->tensor_sum_bytes();

  // Enough contexts that their arenas together exceed the L2 (50 MB on an H100), at most 8.
  int dev = 0;
  cudaGetDevice(&dev);
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, dev);
  const int64_t l2 = prop.l2CacheSize;
  r.contexts = static_cast<int>(std::clamp<int64_t>(2 * l2 / std::max<int64_t>(engine->arena_bytes(), 1) + 1, 1, 8));
  std::vector<std::unique_ptr<Context>> ctxs;
  for (int i = 0; i < r.contexts; ++i) {
    ctxs.push_back(std::make_unique<Context>(engine));
    ctxs.back()->set_use_graphs(opt.use_graphs);
  }
  // Random (never all-zero) inputs, different in each context.
  std::mt19937 rng(42);
  const auto inputs = engine->inputs();
  for (auto& c : ctxs) {
    for (size_t i = 0; i < inputs.size(); ++i) {
      int64_t n = max_batch;
      for (auto d : inputs[i].shape) n *= d;
      std::vector<uint8_t> host(static_cast<size_t>(n) * 4);
      for (int64_t k = 0; k < n; ++k) {
        if (inputs[i].dtype == "i32") {
          const int32_t v = static_cast<int32_t>(rng() % 256);
          std::memcpy(host.data() + 4 * k, &v, 4);
        } else {
          const float v = static_cast<float>(rng() % 2001) / 1000.0f - 1.0f;
          std::memcpy(host.data() + 4 * k, &v, 4);
        }
      }
      c->upload_input(static_cast<int>(i), host.data(), host.size());
    }
  }
  size_t free1 = 0;
  cuda::check(cudaMemGetInfo(&free1, &total), "cudaMemGetInfo");
  r.peak_device_bytes = static_cast<int64_t>(free0) - static_cast<int64_t>(free1);

  cudaEvent_t e0, e1;
  cuda::check(cudaEventCreate(&e0), "cudaEventCreate");
  cuda::check(cudaEventCreate(&e1), "cudaEventCreate");
  auto time_ms = [&](cudaStream_t s, auto&& fn) {
    cuda::check(cudaEventRecord(e0, s), "cudaEventRecord");
    fn();
    cuda::check(cudaEventRecord(e1, s), "cudaEventRecord");
    cuda::check(cudaEventSynchronize(e1), "cudaEventSynchronize");
    float ms = 0;
    cuda::check(cudaEventElapsedTime(&ms, e0, e1), "cudaEventElapsedTime");
    return static_cast<double>(ms);
  };
  const auto outputs = engine->outputs();
  for (int b : opt.batches) {
    GpuBenchRow row;
    row.batch = b;
    const int iters = opt.iters > 0 ? opt.iters : (b <= 8 ? 300 : 100);
    for (int i = 0; i < opt.warmup; ++i) ctxs[i % ctxs.size()]->run(b);
    std::vector<double> ms;
    for (int i = 0; i < iters; ++i) {
      Context& c = *ctxs[i % ctxs.size()];
      ms.push_back(time_ms(static_cast<cudaStream_t>(c.stream()), [&] { c.enqueue(b); }));
    }
    row.p50_ms = cuda::percentile(ms, 0.5);
    row.p99_ms = cuda::percentile(ms, 0.99);
    row.images_per_s = b / (row.p50_ms / 1000.0);
    // Transfers through pinned host memory: the input batch in, every head out.
    for (const auto& in : inputs) {
      int64_t n = b;
      for (auto d : in.shape) n *= d;
      row.upload_bytes += n * 4;
    }
    for (const auto& o : outputs) {
      int64_t n = b;
      for (auto d : o.shape) n *= d;
      row.download_bytes += n * 4;
    }
    void *hin = nullptr, *hout = nullptr;
    cuda::check(cudaMallocHost(&hin, static_cast<size_t>(row.upload_bytes)), "cudaMallocHost");
    cuda::check(cudaMallocHost(&hout, static_cast<size_t>(row.download_bytes)), "cudaMallocHost");
    std::memset(hin, 1, static_cast<size_t>(row.upload_bytes));
    Context& c = *ctxs[0];
    auto s = static_cast<cudaStream_t>(c.stream());
    std::vector<double> up, down;
    for (int i = 0; i < 50; ++i) {
      up.push_back(time_ms(s, [&] {
        size_t off = 0;
        for (size_t k = 0; k < inputs.size(); ++k) {
          int64_t n = b;
          for (auto d : inputs[k].shape) n *= d;
          cudaMemcpyAsync(c.input(static_cast<int>(k)), static_cast<uint8_t*>(hin) + off, n * 4, cudaMemcpyHostToDevice, s);
          off += n * 4;
        }
      }));
      down.push_back(time_ms(s, [&] {
        size_t off = 0;
        for (size_t k = 0; k < outputs.size(); ++k) {
          int64_t n = b;
          for (auto d : outputs[k].shape) n *= d;
          cudaMemcpyAsync(static_cast<uint8_t*>(hout) + off, c.output(static_cast<int>(k)), n * 4, cudaMemcpyDeviceToHost, s);
          off += n * 4;
        }
      }));
    }
    cudaFreeHost(hin);
    cudaFreeHost(hout);
    row.upload_ms = cuda::percentile(up, 0.5);
    row.download_ms = cuda::percentile(down, 0.5);
    r.rows.push_back(row);
  }
  if (opt.profile) r.profile = ctxs[0]->profile_layers(max_batch);
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  return r;
}

}  // namespace posert
