// posert bench --stage launch: what N dependent steps cost on this GPU when each does almost no
// work, the floor under a batch-1 forward pass of N layers. Compared: N kernels in a CUDA graph
// (stream-ordered and with programmatic dependent launch, one block each and one block per SM),
// one persistent kernel with N grid-wide barriers, and one thread-block cluster with N cluster
// barriers. Every figure is queued behind a spin kernel and timed with CUDA events, as the
// decode benchmark times its graph.
#pragma once
#include <string>
#include <vector>

namespace posert {

struct LaunchBenchOptions {
  std::vector<int> steps{60};
  int iters = 200;
  int warmup = 20;
};

struct LaunchBenchRow {
  std::string what;
  int steps = 0;
  bool ran = false;
  std::string why_not;  // when !ran
  double p50_ms = 0, p99_ms = 0;
};

struct LaunchBenchReport {
  std::string gpu;
  int sms = 0;
  double floor_p50_ms = 0;  // a CUDA graph of one empty kernel, queued
  int runs = 0;
  std::vector<LaunchBenchRow> rows;
};

LaunchBenchReport run_launch_bench(const LaunchBenchOptions& opt);

}  // namespace posert
