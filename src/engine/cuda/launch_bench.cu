// posert bench --stage launch (see engine/launch_bench.h). Each step of every variant reads what
// the step before wrote elsewhere on the GPU (another block's element, or another block's shared
// memory), so no step can run ahead of the one before it; the persistent kernels count their
// steps, and the count is checked after the runs.
#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "engine/cuda/device_engine.h"
#include "engine/cuda/gpu_timing.h"
#include "engine/launch_bench.h"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_kernels.h"
#include "posert/engine.h"
#include "posert/error.h"

namespace cg = cooperative_groups;

namespace posert {

namespace {

constexpr int kThreads = 256;

// One step as a kernel: y[i] = x[(i + 256) % n] * 0.5 + step (another block's element when the
// grid has several). pdl_wait() first, as every engine kernel does (a no-op when the launch was
// not programmatic).
__global__ void step_kernel(const float* x, float* y, int n, int step) {
  cuda::pdl_wait();
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = x[(i + kThreads) % n] * 0.5f + static_cast<float>(step);
}

// N steps in one kernel, a grid-wide barrier after each; *done counts the steps.
__global__ void grid_steps_kernel(float* a, float* b, int n, int steps, int* done) {
  cg::grid_group g = cg::this_grid();
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  for (int s = 0; s < steps; ++s) {
    const float* x = (s & 1) ? b : a;
    float* y = (s & 1) ? a : b;
    if (i < n) y[i] = x[(i + kThreads) % n] * 0.5f + static_cast<float>(s);
    g.sync();
  }
  if (i == 0) *done = steps;
}

// N steps in one thread-block cluster, a cluster barrier after each: each block writes its shared
// memory, then reads its neighbour's (double-buffered: a block writes a buffer again only after
// the next barrier, which its neighbour reaches after its reads). *done counts the steps.
__global__ void cluster_steps_kernel(float* out, int steps, int* done) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  cg::cluster_group c = cg::this_cluster();
  __shared__ float buf[2][kThreads];
  const unsigned rank = c.block_rank(), size = c.num_blocks();
  float v = static_cast<float>(threadIdx.x + rank);
  for (int s = 0; s < steps; ++s) {
    buf[s & 1][threadIdx.x] = v;
    c.sync();
    const float* peer = c.map_shared_rank(&buf[s & 1][0], (rank + 1) % size);
    v = peer[(threadIdx.x + 1) % kThreads] * 0.5f + static_cast<float>(s);
  }
  c.sync();  // no block leaves while its neighbour may still read its shared memory
  out[blockIdx.x * kThreads + threadIdx.x] = v;
  if (blockIdx.x == 0 && threadIdx.x == 0) *done = steps;
#endif
}

void launch_step(bool pdl, dim3 grid, const float* x, float* y, int n, int step, cudaStream_t s) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = dim3(kThreads);
  cfg.stream = s;
  cudaLaunchAttribute attr[1] = {};
  if (pdl) {
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
  }
  cuda::check(cudaLaunchKernelEx(&cfg, step_kernel, x, y, n, step), "step_kernel launch (launch bench)");
}

// A launch of one cluster of `blocks` blocks (kThreads threads each) on `s`.
struct ClusterLaunch {
  cudaLaunchConfig_t cfg = {};
  cudaLaunchAttribute attr[1] = {};
  ClusterLaunch(int blocks, cudaStream_t s) {
    cfg.gridDim = dim3(blocks);
    cfg.blockDim = dim3(kThreads);
    cfg.stream = s;
    attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim.x = blocks;
    attr[0].val.clusterDim.y = 1;
    attr[0].val.clusterDim.z = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
  }
  ClusterLaunch(const ClusterLaunch&) = delete;
  ClusterLaunch& operator=(const ClusterLaunch&) = delete;
};

void check_done(const int* d_done, int steps, const std::string& what) {
  int got = -1;
  cuda::check(cudaMemcpy(&got, d_done, sizeof(int), cudaMemcpyDeviceToHost), "reading the step count (launch bench)");
  if (got != steps)
    throw Error("launch bench: " + what + " ran " + std::to_string(got) + " steps, expected " + std::to_string(steps));
}

}  // namespace

LaunchBenchReport run_launch_bench(const LaunchBenchOptions& o) {
  std::string why;
  if (!cuda_available(&why)) throw Error("--stage launch runs on a GPU only: " + why);
  LaunchBenchReport r;
  const auto t = cuda::current_target();
  r.gpu = t.gpu_name + " (sm_" + std::to_string(t.cc_major) + std::to_string(t.cc_minor) + ")";
  int dev = 0;
  cuda::check(cudaGetDevice(&dev), "cudaGetDevice");
  cuda::check(cudaDeviceGetAttribute(&r.sms, cudaDevAttrMultiProcessorCount, dev), "cudaDeviceGetAttribute");
  int coop = 0;
  cuda::check(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, dev), "cudaDeviceGetAttribute");
  const bool pdl_ok = t.cc_major >= 9, clusters_ok = t.cc_major >= 9;
  r.runs = o.iters;

  cudaStream_t s = nullptr;
  cuda::check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
  const int n_full = r.sms * kThreads;
  cuda::BenchBuffer a(n_full * sizeof(float)), b(n_full * sizeof(float)), done(sizeof(int));
  cuda::check(cudaMemset(a.p, 0, n_full * sizeof(float)), "cudaMemset");
  cuda::check(cudaMemset(b.p, 0, n_full * sizeof(float)), "cudaMemset");
  float* pa = static_cast<float*>(a.p);
  float* pb = static_cast<float*>(b.p);
  int* pdone = static_cast<int*>(done.p);

  r.floor_p50_ms = cuda::percentile(cuda::time_graph(s, o.warmup, o.iters, false, [&] { cuda::spin(0, s); }).first, 0.5);

  auto add = [&](const std::string& what, int steps, const std::function<std::vector<double>()>& run,
                 const std::string& skip) {
    LaunchBenchRow row;
    row.what = what;
    row.steps = steps;
    if (!skip.empty()) {
      row.why_not = skip;
    } else {
      std::fprintf(stderr, "launch bench: %s, %d steps\n", what.c_str(), steps);
      const auto v = run();
      row.ran = true;
      row.p50_ms = cuda::percentile(v, 0.5);
      row.p99_ms = cuda::percentile(v, 0.99);
    }
    r.rows.push_back(row);
  };

  for (int steps : o.steps) {
    for (bool full : {false, true})
      for (bool pdl : {false, true}) {
        const dim3 grid(full ? r.sms : 1);
        const int n = full ? n_full : kThreads;
        const std::string what = std::string("graph of kernels, ") + (full ? "1 block per SM" : "1 block") +
                                 (pdl ? ", programmatic launch" : ", stream-ordered");
        add(what, steps,
            [&] {
              return cuda::time_graph(s, o.warmup, o.iters, false, [&] {
                       for (int i = 0; i < steps; ++i) launch_step(pdl, grid, (i & 1) ? pb : pa, (i & 1) ? pa : pb, n, i, s);
                     }).first;
            },
            pdl && !pdl_ok ? "programmatic launch needs sm_90" : "");
      }

    // One persistent kernel, a block per SM, grid barriers.
    std::string skip;
    if (!coop) {
      skip = "this GPU cannot launch cooperative kernels";
    } else {
      int per_sm = 0;
      cuda::check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, grid_steps_kernel, kThreads, 0), "occupancy");
      if (per_sm < 1) skip = "the grid-barrier kernel does not fit on an SM";
    }
    add("one kernel, 1 block per SM, grid barriers", steps,
        [&] {
          int n = n_full, st = steps;
          void* args[] = {&pa, &pb, &n, &st, &pdone};
          cuda::check(cudaMemset(pdone, 0, sizeof(int)), "cudaMemset");
          auto v = cuda::time_events(s, o.warmup, o.iters, true, [&] {
            cuda::check(cudaLaunchCooperativeKernel(reinterpret_cast<void*>(grid_steps_kernel), dim3(r.sms), dim3(kThreads),
                                                    args, 0, s),
                        "cudaLaunchCooperativeKernel (launch bench)");
          });
          check_done(pdone, steps, "the grid-barrier kernel");
          return v;
        },
        skip);

    // One cluster, cluster barriers (16 blocks is past the portable limit of 8: allowed on H100).
    for (int cluster : {8, 16}) {
      std::string cskip = clusters_ok ? "" : "thread-block clusters need sm_90";
      if (cskip.empty() && cluster > 8 &&
          cudaFuncSetAttribute(cluster_steps_kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1) != cudaSuccess) {
        cudaGetLastError();
        cskip = "this GPU refuses clusters of more than 8 blocks";
      }
      if (cskip.empty()) {
        ClusterLaunch cl(cluster, s);
        int clusters = 0;
        if (cudaOccupancyMaxActiveClusters(&clusters, cluster_steps_kernel, &cl.cfg) != cudaSuccess || clusters < 1) {
          cudaGetLastError();
          cskip = "a cluster of " + std::to_string(cluster) + " blocks does not fit on this GPU";
        }
      }
      add("one cluster of " + std::to_string(cluster) + " blocks, cluster barriers", steps,
          [&] {
            cuda::check(cudaMemset(pdone, 0, sizeof(int)), "cudaMemset");
            auto v = cuda::time_events(s, o.warmup, o.iters, true, [&] {
              ClusterLaunch cl(cluster, s);
              cuda::check(cudaLaunchKernelEx(&cl.cfg, cluster_steps_kernel, pa, steps, pdone),
                          "cluster_steps_kernel launch (launch bench)");
            });
            check_done(pdone, steps, "the cluster-barrier kernel");
            return v;
          },
          cskip);
    }
  }
  cuda::check(cudaStreamSynchronize(s), "launch bench");
  cudaStreamDestroy(s);
  return r;
}

}  // namespace posert
