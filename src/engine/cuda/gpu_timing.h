// Helpers of the GPU benchmarks (posert bench --stage decode|launch): CUDA events around work
// launched on one stream, optionally queued behind a spin kernel, the same work captured once as a
// CUDA graph and replayed, percentiles, and a scoped device buffer.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "engine/cuda/device_engine.h"
#include "kernels/cuda/cuda_kernels.h"

namespace posert::cuda {

// The q-quantile (0.5: median) of v, nearest rank.
inline double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1) + 0.5))];
}

// A device allocation (at least one byte) owned by a benchmark, freed at scope exit.
struct BenchBuffer {
  void* p = nullptr;
  explicit BenchBuffer(size_t bytes) { check(cudaMalloc(&p, std::max<size_t>(bytes, 1)), "cudaMalloc (benchmark)"); }
  ~BenchBuffer() { cudaFree(p); }
  BenchBuffer(const BenchBuffer&) = delete;
  BenchBuffer& operator=(const BenchBuffer&) = delete;
};

// fn() between two events on `s`: `warmup` untimed calls, then `iters` timed ones (ms each).
// queued: a 50 us spin kernel before the first event, so that the event, fn()'s launches and the
// last event are queued before the GPU reaches them and the events time the GPU's work, not the
// host's launch calls.
template <class Fn>
std::vector<double> time_events(cudaStream_t s, int warmup, int iters, bool queued, Fn&& fn) {
  cudaEvent_t e0, e1;
  check(cudaEventCreate(&e0), "cudaEventCreate");
  check(cudaEventCreate(&e1), "cudaEventCreate");
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> ms;
  for (int i = 0; i < iters; ++i) {
    if (queued) spin(50000, s);
    check(cudaEventRecord(e0, s), "cudaEventRecord");
    fn();
    check(cudaEventRecord(e1, s), "cudaEventRecord");
    check(cudaEventSynchronize(e1), "cudaEventSynchronize");
    float m = 0;
    check(cudaEventElapsedTime(&m, e0, e1), "cudaEventElapsedTime");
    ms.push_back(m);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  return ms;
}

// fn()'s launches captured as one CUDA graph (after one call outside capture, which loads the
// kernels' modules), replayed under time_events: queued, then from an idle stream (empty when
// !with_idle).
template <class Fn>
std::pair<std::vector<double>, std::vector<double>> time_graph(cudaStream_t s, int warmup, int iters, bool with_idle,
                                                               Fn&& fn) {
  fn();
  check(cudaStreamSynchronize(s), "benchmark warm-up");
  cudaGraph_t graph = nullptr;
  check(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture (benchmark)");
  try {
    fn();
  } catch (...) {
    cudaStreamEndCapture(s, &graph);
    if (graph) cudaGraphDestroy(graph);
    throw;
  }
  check(cudaStreamEndCapture(s, &graph), "cudaStreamEndCapture (benchmark)");
  cudaGraphExec_t exec = nullptr;
  const cudaError_t ei = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  check(ei, "cudaGraphInstantiate (benchmark)");
  try {
    auto replay = [&] { check(cudaGraphLaunch(exec, s), "cudaGraphLaunch (benchmark)"); };
    auto queued = time_events(s, warmup, iters, true, replay);
    std::vector<double> idle;
    if (with_idle) idle = time_events(s, warmup, iters, false, replay);
    cudaGraphExecDestroy(exec);
    return {std::move(queued), std::move(idle)};
  } catch (...) {
    cudaGraphExecDestroy(exec);
    throw;
  }
}

}  // namespace posert::cuda
